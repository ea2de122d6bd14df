/*
 * fuzz_prefilter - libFuzzer harness for the rules' prefilters (the first
 * byte and the literal read off a pattern at load): the input is a pattern,
 * a newline, and a message.  The pattern is loaded as a rule and the
 * message matched with rules_match, and by PCRE2 itself: both must agree
 * (a prefilter that skips a message PCRE2 matches aborts).  Patterns that
 * PCRE2 or the rules loader refuse, and messages rules_match must refuse
 * (NUL, invalid UTF-8), are skipped.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "logtime.h"
#include "rules.h"

#define PATTERN_MAX 2000
#define LINE_MAX_FUZZ 8192

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* pcre2_says - 1 match, 0 none, -1 at a limit (rules.c's limits) */
static int
pcre2_says(const pcre2_code *re, const uint8_t *msg, size_t len)
{
	pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
	pcre2_match_context *mctx = pcre2_match_context_create(NULL);
	int rc = -1;

	if (md != NULL && mctx != NULL) {
		pcre2_set_match_limit(mctx, 100000);
		pcre2_set_depth_limit(mctx, 1000);
		rc = pcre2_match(re, msg, len, 0, 0, md, mctx);
		rc = rc >= 0 ? 1 : rc == PCRE2_ERROR_NOMATCH ? 0 : -1;
	}
	pcre2_match_data_free(md);
	pcre2_match_context_free(mctx);
	return rc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char head[] = "Nov 22 10:00:01 mx p[1]: ";
	const uint8_t *nl = memchr(data, '\n', size);
	size_t plen = nl ? (size_t)(nl - data) : size, mlen;
	const uint8_t *msg = nl ? nl + 1 : data + size;
	char pat[PATTERN_MAX + 1], path[80], line[LINE_MAX_FUZZ];
	struct ruleset *rs = NULL;
	pcre2_code *re = NULL;
	struct logtime lt;
	struct event ev;
	enum rules_result r;
	PCRE2_SIZE erroff;
	struct diag d;
	int errcode, want;
	uint64_t hits;
	FILE *fp;

	mlen = (size_t)(data + size - msg);
	/* what a rules file can hold whole: one line, no NUL, no white space
	 * at either end (the INI reader trims it) */
	if (plen == 0 || plen > PATTERN_MAX || memchr(data, '\0', plen) ||
	    memchr(data, '\r', plen) || strchr(" \t\f\v", data[0]) ||
	    strchr(" \t\f\v", data[plen - 1]) || sizeof(head) - 1 + mlen > sizeof(line))
		return 0;
	memcpy(pat, data, plen);
	pat[plen] = '\0';
	if ((re = pcre2_compile((PCRE2_SPTR)pat, plen, 0, &errcode, &erroff, NULL)) == NULL)
		return 0;
	(void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
	snprintf(path, sizeof(path), "/dev/shm/mailjail-fuzz-prefilter-%d.rules", (int)getpid());
	if ((fp = fopen(path, "w")) == NULL)
		goto out;
	fprintf(fp, "[r]\nprogram = p\nevent = e\npattern = %s\n", pat);
	fclose(fp);
	diag_init(&d);
	(void)rules_load(path, &rs, &d);    /* unknown group names: refused */
	diag_free(&d);
	unlink(path);
	if (rs == NULL)
		goto out;
	memcpy(line, head, sizeof(head) - 1);
	memcpy(line + sizeof(head) - 1, msg, mlen);
	logtime_init(&lt, 1795339200);
	hits = rules_limit_hits(rs);
	r = rules_match(rs, &lt, line, sizeof(head) - 1 + mlen, &ev, NULL);
	want = pcre2_says(re, msg, mlen);
	if (r != RULES_BADLINE && want >= 0 && rules_limit_hits(rs) == hits &&
	    (r != RULES_NOMATCH) != (want == 1)) {
		fprintf(stderr, "fuzz_prefilter: pattern \"%s\" message \"%.*s\": rules_match "
		    "%d, PCRE2 %d\n", pat, (int)mlen, (const char *)msg, (int)r, want);
		abort();
	}
out:
	rules_free(rs);
	pcre2_code_free(re);
	return 0;
}
