/*
 * fuzz_logfile - libFuzzer harness for what replay and test-rules do with a
 * file they are given: the input is the file's bytes (plain, or gzip, xz or
 * bzip2 data, told by its magic).  logfiles_inspect decides whether it is a
 * log; if it is, follow reads it in one-shot mode through the decoder
 * (unpack.c), every line going through rules_match with the shipped rules
 * ($MAILJAIL_RULES).  Corrupt, truncated and concatenated compressed data,
 * and bombs (bounded by the input size libFuzzer allows), must end in a
 * verdict or an error, never a crash or a sanitizer report.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "follow.h"
#include "log.h"
#include "logfiles.h"
#include "rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ruleset *rules;
static struct logtime lt;

static int
line_cb(void *arg, size_t file, const char *line, size_t len)
{
	struct event ev;
	size_t rule;

	(void)arg;
	(void)file;
	(void)rules_match(rules, &lt, line, len, &ev, &rule);
	return 0;
}

static void
load_rules(void)
{
	const char *dir = getenv("MAILJAIL_RULES");
	struct diag d;

	log_set_quiet(true);
	diag_init(&d);
	if (dir == NULL || rules_load(dir, &rules, &d) != 0) {
		fprintf(stderr, "fuzz_logfile: set MAILJAIL_RULES to the shipped rules\n");
		abort();
	}
	diag_free(&d);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct logfile_info info;
	struct follow *f = NULL;
	char path[64], err[600];
	int fd;

	if (rules == NULL)
		load_rules();
	logtime_init(&lt, 1764000000);   /* a fixed "now": the same input, the same run */
	if ((fd = memfd_create("fuzz_logfile", MFD_CLOEXEC)) < 0)
		abort();
	if (size > 0 && write(fd, data, size) != (ssize_t)size)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (logfiles_inspect(path, &lt, &info, err, sizeof(err)) == LOGFILES_LOG &&
	    follow_open(&f, false) == 0 && follow_add(f, path, NULL) >= 0)
		while (follow_read(f, line_cb, NULL, 4096) > 0)
			;
	follow_close(f);
	close(fd);
	return 0;
}
