/*
 * fuzz_rules - libFuzzer harness for the line parser: timestamps, the
 * "host program[pid]: " header, every shipped rule, capture validation.
 * The input is one log line (any bytes, newlines included).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "logtime.h"
#include "rules.h"

static struct ruleset *rs;
static struct logtime lt;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = getenv("MAILJAIL_RULES");
	struct diag d;

	(void)argc; (void)argv;
	diag_init(&d);
	if (dir == NULL || rules_load(dir, &rs, &d) != 0) {
		diag_print(&d);
		fprintf(stderr, "fuzz_rules: set MAILJAIL_RULES to the rules directory\n");
		exit(1);
	}
	diag_free(&d);
	logtime_init(&lt, 1763800000);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct event ev;
	size_t rule;
	int64_t t;
	size_t used;

	(void)rules_match(rs, &lt, (const char *)data, size, &ev, &rule);
	(void)logtime_parse(&lt, (const char *)data, size, &t, &used);
	return 0;
}
