/*
 * test_rules - the shipped rules against real and crafted log lines (the
 * table in tests/data/rule-cases.txt, one criterion parameter per line, in
 * the spirit of sshguard's tests.txt), rule-file errors, and the
 * prefilters (first byte, required literal): crafted patterns, the shipped
 * rules' literals, and random patterns against PCRE2 itself.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "rules.h"
#include "testutil.h"

/*
 * PCRE2 runs, counted: the mailjail library is static and libpcre2 shared,
 * so these definitions win at link time and rules_match's calls land here
 * before going on to libpcre2's (dlsym RTLD_NEXT).  A line rules_match
 * answers without a run was skipped by a prefilter.
 */
static unsigned long pcre2_runs;

typedef int (*match_fn)(const pcre2_code *, PCRE2_SPTR, PCRE2_SIZE, PCRE2_SIZE, uint32_t,
    pcre2_match_data *, pcre2_match_context *);

static match_fn
real_fn(const char *name)
{
	void *sym = dlsym(RTLD_NEXT, name);
	match_fn f;

	if (sym == NULL)
		abort();
	memcpy(&f, &sym, sizeof(f));
	return f;
}

int
pcre2_jit_match(const pcre2_code *code, PCRE2_SPTR subject, PCRE2_SIZE length,
    PCRE2_SIZE start, uint32_t options, pcre2_match_data *md, pcre2_match_context *mctx)
{
	static match_fn real;

	if (real == NULL)
		real = real_fn("pcre2_jit_match_8");
	pcre2_runs++;
	return real(code, subject, length, start, options, md, mctx);
}

int
pcre2_match(const pcre2_code *code, PCRE2_SPTR subject, PCRE2_SIZE length,
    PCRE2_SIZE start, uint32_t options, pcre2_match_data *md, pcre2_match_context *mctx)
{
	static match_fn real;

	if (real == NULL)
		real = real_fn("pcre2_match_8");
	pcre2_runs++;
	return real(code, subject, length, start, options, md, mctx);
}

/* pcre2_says - whether PCRE2 itself (compiled as rules.c compiles, same
 * limits) matches subj: 1, 0, or -1 at a limit */
static int
pcre2_says(const pcre2_code *re, const char *subj, size_t len)
{
	pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
	pcre2_match_context *mctx = pcre2_match_context_create(NULL);
	int rc;

	cr_assert(md != NULL && mctx != NULL);
	pcre2_set_match_limit(mctx, 100000);
	pcre2_set_depth_limit(mctx, 1000);
	rc = pcre2_match(re, (PCRE2_SPTR)subj, len, 0, 0, md, mctx);
	pcre2_match_data_free(md);
	pcre2_match_context_free(mctx);
	return rc >= 0 ? 1 : rc == PCRE2_ERROR_NOMATCH ? 0 : -1;
}

static pcre2_code *
compile(const char *pat)
{
	PCRE2_SIZE erroff;
	int errcode;
	pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, 0, &errcode,
	    &erroff, NULL);

	if (re != NULL)
		(void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
	return re;
}

#define CASES_MAX 600

struct rule_case {
	int lineno;
	char expect[32], ip[64], user[300], sender[300], qid[40], nrcpt[16];
	char rcpt[300], newqid[40];
	char line[6000];
};

static void
field(char **p, char *out, size_t len)
{
	char *tab = strchr(*p, '\t');
	size_t n = tab ? (size_t)(tab - *p) : strlen(*p);

	snprintf(out, len, "%.*s", (int)n, *p);
	if (strcmp(out, "-") == 0)
		out[0] = '\0';
	*p += n + (tab ? 1 : 0);
}

ParameterizedTestParameters(rules, table)
{
	static char path[4096];
	struct rule_case *cases;
	char *buf = NULL;
	size_t cap = 0, n = 0;
	int lineno = 0;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/tests/data/rule-cases.txt", getenv("MAILJAIL_SRCDIR"));
	cases = cr_malloc(CASES_MAX * sizeof(*cases));
	if (cases == NULL || (fp = fopen(path, "r")) == NULL)
		return cr_make_param_array(struct rule_case, cases, 0);
	while (getline(&buf, &cap, fp) > 0 && n < CASES_MAX) {
		char *p = buf;
		lineno++;
		buf[strcspn(buf, "\n")] = '\0';
		if (buf[0] == '#' || buf[0] == '\0')
			continue;
		memset(&cases[n], 0, sizeof(cases[n]));
		cases[n].lineno = lineno;
		field(&p, cases[n].expect, sizeof(cases[n].expect));
		field(&p, cases[n].ip, sizeof(cases[n].ip));
		field(&p, cases[n].user, sizeof(cases[n].user));
		field(&p, cases[n].sender, sizeof(cases[n].sender));
		field(&p, cases[n].qid, sizeof(cases[n].qid));
		field(&p, cases[n].nrcpt, sizeof(cases[n].nrcpt));
		field(&p, cases[n].rcpt, sizeof(cases[n].rcpt));
		field(&p, cases[n].newqid, sizeof(cases[n].newqid));
		snprintf(cases[n].line, sizeof(cases[n].line), "%s", p);
		n++;
	}
	/* never drop rows silently: the last case then fails, saying why */
	if (n == CASES_MAX && getline(&buf, &cap, fp) > 0)
		snprintf(cases[n - 1].expect, sizeof(cases[n - 1].expect), "(raise CASES_MAX)");
	free(buf);
	fclose(fp);
	return cr_make_param_array(struct rule_case, cases, n);
}

static struct ruleset *
shipped_rules(void)
{
	char path[4096];
	struct ruleset *rs;
	struct diag d;

	snprintf(path, sizeof(path), "%s/rules", tu_srcdir());
	diag_init(&d);
	cr_assert_eq(rules_load(path, &rs, &d), 0, "shipped rules load: %s",
	    d.n ? d.msgs[0] : "");
	diag_free(&d);
	return rs;
}

ParameterizedTest(struct rule_case *c, rules, table)
{
	struct ruleset *rs = shipped_rules();
	struct logtime lt;
	struct event ev;
	enum rules_result r;
	const char *got;
	char nrcpt[24] = "";

	logtime_init(&lt, 1795339200);   /* 2026-11-22 */
	r = rules_match(rs, &lt, c->line, strlen(c->line), &ev, NULL);
	got = r == RULES_BADLINE ? "BADLINE" : r == RULES_BADFIELD ? "BADFIELD" :
	    r == RULES_NOMATCH ? "" : ev.type;
	cr_assert_str_eq(got, c->expect, "rule-cases.txt:%d: expected \"%s\", got \"%s\"",
	    c->lineno, c->expect, got);
	if (r == RULES_MATCH) {
		if (ev.nrcpt >= 0)
			snprintf(nrcpt, sizeof(nrcpt), "%ld", ev.nrcpt);
		cr_assert_str_eq(ev.ip, c->ip, "rule-cases.txt:%d: ip", c->lineno);
		cr_assert_str_eq(ev.user, c->user, "rule-cases.txt:%d: user", c->lineno);
		cr_assert_str_eq(ev.sender, c->sender, "rule-cases.txt:%d: sender", c->lineno);
		cr_assert_str_eq(ev.qid, c->qid, "rule-cases.txt:%d: qid", c->lineno);
		cr_assert_str_eq(nrcpt, c->nrcpt, "rule-cases.txt:%d: nrcpt", c->lineno);
		cr_assert_str_eq(ev.rcpt, c->rcpt, "rule-cases.txt:%d: rcpt", c->lineno);
		cr_assert_str_eq(ev.newqid, c->newqid, "rule-cases.txt:%d: newqid", c->lineno);
		cr_assert_gt(ev.time, 0);
	}
	rules_free(rs);
}

Test(rules, nul_and_invalid_utf8_are_bad_lines)
{
	struct ruleset *rs = shipped_rules();
	struct logtime lt;
	struct event ev;
	static const char nul[] = "Nov 22 10:00:01 mx postfix/smtpd[1]: warning: unknown[192.0.2.7]:"
	    " SASL LOGIN authentication failed: a\0b";
	static const char bad[] = "Nov 22 10:00:01 mx postfix/smtpd[1]: warning: unknown[192.0.2.7]:"
	    " SASL LOGIN authentication failed: \xc3\x28 \xed\xa0\x80";
	static const char ok[] = "Nov 22 10:00:01 mx postfix/smtpd[1]: warning: unknown[192.0.2.7]:"
	    " SASL LOGIN authentication failed: caf\xc3\xa9, sasl_username=j\xc3\xb6rg";

	logtime_init(&lt, 1795339200);
	cr_assert_eq(rules_match(rs, &lt, nul, sizeof(nul) - 1, &ev, NULL), RULES_BADLINE);
	cr_assert_eq(rules_match(rs, &lt, bad, sizeof(bad) - 1, &ev, NULL), RULES_BADLINE);
	cr_assert_eq(rules_match(rs, &lt, ok, sizeof(ok) - 1, &ev, NULL), RULES_MATCH,
	    "valid UTF-8 is fine");
	cr_assert_str_eq(ev.user, "j\xc3\xb6rg");
	rules_free(rs);
}

Test(rules, program_glob_crosses_slashes)
{
	struct ruleset *rs = shipped_rules();
	struct logtime lt;
	struct event ev;
	const char *progs[] = { "postfix/smtpd", "postfix/submission/smtpd",
	    "postfix/smtps/smtpd", "postfix-incoming/smtpd" };
	char line[512];

	logtime_init(&lt, 1795339200);
	for (size_t i = 0; i < 4; i++) {
		int n = snprintf(line, sizeof(line), "Nov 22 10:00:01 mx %s[7]: warning: "
		    "unknown[192.0.2.8]: SASL LOGIN authentication failed: x", progs[i]);
		cr_assert_eq(rules_match(rs, &lt, line, (size_t)n, &ev, NULL), RULES_MATCH, "%s",
		    progs[i]);
	}
	rules_free(rs);
}

/* expect_error - a rules file that must fail with file:line and a phrase */
static void
expect_error(const char *text, int line, const char *phrase)
{
	char dir[256], path[512], want[600];
	struct ruleset *rs = NULL;
	struct diag d;

	tu_mkdtemp(dir, sizeof(dir));
	tu_write(dir, "bad.rules", text, path, sizeof(path));
	diag_init(&d);
	cr_assert_eq(rules_load(path, &rs, &d), -1, "accepted: %s", text);
	cr_assert_geq(d.n, 1);
	if (line > 0)
		snprintf(want, sizeof(want), "%s:%d: ", path, line);
	else
		snprintf(want, sizeof(want), "%s: ", path);
	cr_assert(strncmp(d.msgs[0], want, strlen(want)) == 0, "got \"%s\", want \"%s...\"",
	    d.msgs[0], want);
	cr_assert(strstr(d.msgs[0], phrase) != NULL, "\"%s\" lacks \"%s\"", d.msgs[0], phrase);
	diag_free(&d);
	tu_rmrf(dir);
}

Test(rules, errors_name_file_line_and_problem)
{
	expect_error("[r]\nprogram = postfix/smtpd\nevent = x\npattern = ^(unclosed\n", 4,
	    "bad pattern");
	expect_error("[r]\nprogram = postfix/smtpd\nevnt = x\npattern = ^a\n", 3,
	    "unknown key");
	expect_error("# comment\n[r]\nprogram = postfix/smtpd\npattern = ^a\n", 2,
	    "missing event");
	expect_error("[r]\nprogram = p\nevent = x\npattern = ^(?<host>a)\n", 4,
	    "unknown named group");
	expect_error("[r]\nprogram = p\nevent = Bad-Name\npattern = ^a\n", 3, "bad event");
	expect_error("[r]\nprogram = p\nevent = x\npattern = ^a\n[r]\nprogram = p\n", 5,
	    "defined twice");
	expect_error("", 0, "no rules");
}

Test(rules, catastrophic_pattern_is_bounded)
{
	char dir[256], path[512], line[256];
	struct ruleset *rs;
	struct logtime lt;
	struct event ev;
	struct diag d;
	int n;

	tu_mkdtemp(dir, sizeof(dir));
	tu_write(dir, "slow.rules", "[slow]\nprogram = *\nevent = x\npattern = ^(a+)+$\n",
	    path, sizeof(path));
	diag_init(&d);
	cr_assert_eq(rules_load(path, &rs, &d), 0);
	logtime_init(&lt, 1795339200);
	n = snprintf(line, sizeof(line), "Nov 22 10:00:01 mx p[1]: %s", 
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab");
	cr_assert_eq(rules_match(rs, &lt, line, (size_t)n, &ev, NULL), RULES_NOMATCH);
	cr_assert_eq(rules_limit_hits(rs), 1, "the match limit was hit and counted");
	rules_free(rs);
	diag_free(&d);
	tu_rmrf(dir);
}

/* The literal prefilter (a text every match must contain, read off the
 * pattern) must never skip a line the pattern matches: patterns whose
 * naive reading gives a wrong literal, each with a line it matches (which
 * PCRE2 itself is asked to confirm first). */
Test(rules, literal_prefilter_never_hides_a_match)
{
	static const char *const cases[][2] = {
		{ "^ab?cde", "acde" },                      /* b is optional */
		{ "^xy(?i)ABCD", "xyabcd" },                /* caseless from here on */
		{ "^(?i:abcd)efg", "ABCDefg" },
		{ "^fooo|barbaz", "barbaz" },               /* top-level alternative */
		{ "^a\\Q|(b\\Ecdef", "a|(bcdef" },          /* quoted syntax */
		{ "^a[)(]bcd", "a)bcd" },
		{ "^k\\x{41}BCDE", "kABCDE" },              /* escape with an argument */
		{ "^q{2}rst", "qqrst" },
		{ "^mm(?#c(x)pqrs", "mmpqrs" },             /* a comment ends at the first ")" */
		{ "^[[:digit:]]+ END", "12 END" },
		{ "^p(x)?yes", "pyes" },
		{ "^z\\d{1,3}zzz", "z5zzz" },
		{ "^wx*yzz", "wyzz" },                      /* x may be absent */
		{ "^s[]a]+ tail", "s]a] tail" },              /* ']' first in a class */
		{ "^t[^]x] \\[lit\\]", "ty [lit]" },
		{ "^head (?<ip>[0-9.]+)]: tailtext", "head 192.0.2.1]: tailtext" },
		{ "^lead only here", "lead only here" },
		{ "x{,2}yzw", "x{,2}yzw" },                 /* {,n}: literal before PCRE2 10.43 */
		/* review: "[[:]" is a class of '[' and ':' (PCRE2 stops at the
		 * first ']'), so the '|' is at the top level */
		{ "[[:]?x|abc:]def]ghi", "x" },
		{ "^ab(?:x(*ACCEPT))?cdefg", "abx" },       /* ACCEPT inside a group */
		{ "k?abcd(?#q)?", "abc" },                  /* the '?' applies to the d */
		{ "[\\c]]abc", "\x1d" "abc" },              /* \c] is one character */
		{ "(?:\\c)zzz)", "izzz" },                  /* \c) too: 'i' */
		{ "x\\c(abcd", "xhabcd" },
		/* \Q...\E */
		{ "x\\Q[\\E]yzw", "x[]yzw" },
		{ "(?:\\Q)\\E|q)rstu", "qrstu" },
		{ "[\\Q]\\E]abc", "]abc" },
		{ "\\Eabcd", "abcd" },                      /* a lone \E is ignored */
		/* extended mode: white space is not literal */
		{ "(?x) a b c d", "abcd" },
		{ "^ab(?x) c d e", "abcde" },
		{ "(?x: a b )cdef", "abcdef" },
		{ "(?:(?x) a )b c d", "ab c d" },
		{ "(?xx)[a b]cde f", "acdef" },
		/* caseless */
		{ "(?i)abcd", "ABCD" },
		{ "(?:(?i)a)bcde", "Abcde" },
		{ "ab(?i:cd)efg", "abCDefg" },
		{ "abc(?i)defg", "abcDEFG" },
		{ "(?i-s:x)yzwv", "Xyzwv" },
		/* alternation inside and outside groups, optional groups */
		{ "(?:ab|cd)efgh", "cdefgh" },
		{ "abcd|efgh", "efgh" },
		{ "(?:abc|)defg", "defg" },
		{ "a(?:b|c(?:d|e))fghi", "acefghi" },
		{ "x(?:abcd)?yzw", "xyzw" },
		{ "(?:abcd)*efg", "efg" },
		{ "(abc){0}defg", "defg" },
		{ "(?:abcd){0,2}efg", "efg" },
		{ "ab{0,3}cdef", "acdef" },
		{ "abc{0}defg", "abdefg" },
		{ "abcd(?#x){0}", "abc" },
		{ "abcd(?#x)*+", "abc" },
		/* lookbehind and lookahead */
		{ "(?<=abc)defg", "abcdefg" },
		{ "(?!xyz)abcd", "abcd" },
		{ "x(?<!y)zzzz", "xzzzz" },
		{ "(?=.*wxyz)", "wxyz" },
		{ "ab(?=cd)cdef", "abcdef" },
		{ "(*pla:abc)abcd", "abcd" },
		/* back references, \K, branch reset, atomic, recursion */
		{ "(abc)\\1defg", "abcabcdefg" },
		{ "(?<user>ab)\\k<user>cde", "ababcde" },
		{ "(a)\\g{1}bcde", "aabcde" },
		{ "(?P<user>x)(?P=user)yzw", "xxyzw" },
		{ "(a)\\10bcde", "a\bbcde" },               /* \10 is octal: no group 10 */
		{ "abc\\Kdefg", "abcdefg" },
		{ "(?|ab|cd)efgh", "cdefgh" },
		{ "(?|(abc)|(xyz))\\1mmm", "xyzxyzmmm" },
		{ "(?>x*)abcd", "abcd" },
		{ "(a|b(?1))cdef", "bacdef" },
		{ "(?1)zz(abc)", "abczzabc" },
		/* callouts and conditional groups */
		{ "ab(?C1)cdef", "abcdef" },
		{ "(?C)abcd", "abcd" },
		{ "x(?C'text')yzw", "xyzw" },
		{ "(a)?(?(1)bcde|efgh)", "efgh" },
		{ "(?(?=a)abcd|defg)", "defg" },
		{ "(x)?(?(1)abcd|)efgh", "efgh" },
		{ "(?<user>u)?(?(<user>)wxyz|klm)", "klm" },
		/* verbs */
		{ "(*ACCEPT)abcd", "zz" },
		{ "^ab(*ACCEPT)cdef", "ab" },
		{ "(?:x(*ACCEPT)|y)zzzz", "x" },
		{ "(*UTF)abcd", "abcd" },
		{ "(*CR)abcd", "abcd" },
		{ "(*COMMIT)abcd", "abcd" },
		{ "a(*MARK:x)bcde", "abcde" },
		{ "ab(*:m)cdef", "abcdef" },
		{ "(*NO_START_OPT)abcd", "abcd" },
		/* escapes with arguments */
		{ "\\x41bcd", "Abcd" },
		{ "abc\\x{2e}defg", "abc.defg" },
		{ "[\\x{5d}a]bcd", "]bcd" },
		{ "(*UTF)\\N{U+41}bcd", "Abcd" },
		{ "a\\N{2}bcd", "axybcd" },
		{ "\\101bcd", "Abcd" },
		{ "\\o{102}cde", "Bcde" },
		{ "[\\101]bcd", "Abcd" },
		{ "\\cAbcd", "\x01" "bcd" },
		{ "zz\\e\\tabc", "zz\x1b\tabc" },
		/* end assertions */
		{ "abcd$", "abcd" },
		{ "^wxyz$", "wxyz\n" },                     /* $ before a final newline */
		{ "abcd\\z", "abcd" },
		{ "abcd\\Z", "abcd\n" },
		/* POSIX classes and their look-alikes */
		{ "[[:alpha:]x]bcd", "Qbcd" },
		{ "[[:^digit:]]bcd", "xbcd" },
		{ "[[:<:]]abcd", "abcd" },                  /* a word start, not a class */
		{ "[[.]xyz", ".xyz" },
		{ "[a[:]xyz", ":xyz" },
		{ "(?m)^abcd", "zz\nabcd" },
		{ "(?s)a.bcd", "a\nbcd" },
		{ "(?n)(abc)?defg", "defg" },
	};
	size_t n = sizeof(cases) / sizeof(cases[0]);
	char dir[256], path[512], text[32768], line[256];
	size_t off = 0;
	struct ruleset *rs = NULL;
	struct logtime lt;
	struct event ev;
	struct diag d;
	size_t rule;

	for (size_t i = 0; i < n; i++) {
		pcre2_code *re = compile(cases[i][0]);
		cr_assert_not_null(re, "pattern %s does not compile", cases[i][0]);
		cr_assert_eq(pcre2_says(re, cases[i][1], strlen(cases[i][1])), 1,
		    "PCRE2 itself does not match %s on \"%s\"", cases[i][0], cases[i][1]);
		pcre2_code_free(re);
		off += (size_t)snprintf(text + off, sizeof(text) - off,
		    "[r%zu]\nprogram = p%zu\nevent = e%zu\npattern = %s\n", i, i, i, cases[i][0]);
		cr_assert_lt(off, sizeof(text));
	}
	tu_mkdtemp(dir, sizeof(dir));
	tu_write(dir, "lit.rules", text, path, sizeof(path));
	diag_init(&d);
	if (rules_load(path, &rs, &d) != 0)
		diag_print(&d);
	cr_assert_not_null(rs);
	logtime_init(&lt, 1795339200);
	for (size_t i = 0; i < n; i++) {
		int len = snprintf(line, sizeof(line), "Nov 22 10:00:01 mx p%zu[1]: %s", i,
		    cases[i][1]);
		enum rules_result r = rules_match(rs, &lt, line, (size_t)len, &ev, &rule);
		/* a named group's capture may be an invalid field: still matched;
		 * cr_expect, so that every miss is listed */
		cr_expect(r == RULES_MATCH || r == RULES_BADFIELD,
		    "pattern %s missed \"%s\"", cases[i][0], cases[i][1]);
		if (r == RULES_MATCH || r == RULES_BADFIELD)
			cr_expect_eq(rule, i);
	}
	/* and a line without the literal still does not match */
	{
		int len = snprintf(line, sizeof(line), "Nov 22 10:00:01 mx p15[1]: head 1]: tail");
		cr_assert_eq(rules_match(rs, &lt, line, (size_t)len, &ev, NULL), RULES_NOMATCH);
	}
	rules_free(rs);
	diag_free(&d);
	tu_rmrf(dir);
}

/* The shipped rules keep their literal prefilter (the daemon's speed rests
 * on it): a message that starts with any character (so it passes each
 * rule's first-byte check for one of them) but holds none of the rules'
 * fixed texts never reaches PCRE2, for every program the rules name. */
Test(rules, shipped_rules_skip_lines_without_their_literal)
{
	static const char *const progs[] = { "postfix/smtpd", "postfix/submission/smtpd",
	    "postfix/qmgr", "postfix/postscreen", "postfix/smtp", "postfix/lmtp",
	    "postfix/local" };
	struct ruleset *rs = shipped_rules();
	struct logtime lt;
	struct event ev;
	char line[256];
	unsigned long before;
	int len;

	logtime_init(&lt, 1795339200);
	for (size_t i = 0; i < sizeof(progs) / sizeof(progs[0]); i++) {
		for (int c = '!'; c <= '~'; c++) {
			len = snprintf(line, sizeof(line), "Nov 22 10:00:01 mx %s[7]: %cxxxxxxx "
			    "yyyyyyyy 1234567 zzzz", progs[i], c);
			before = pcre2_runs;
			cr_assert_eq(rules_match(rs, &lt, line, (size_t)len, &ev, NULL), RULES_NOMATCH);
			cr_assert_eq(pcre2_runs, before, "PCRE2 ran on \"%s\": a shipped rule lost "
			    "its literal", line);
		}
	}
	/* the count is real: a line that has the literal does run PCRE2 */
	len = snprintf(line, sizeof(line), "Nov 22 10:00:01 mx postfix/smtpd[7]: warning: "
	    "unknown[192.0.2.7]: SASL LOGIN authentication failed: x");
	before = pcre2_runs;
	cr_assert_eq(rules_match(rs, &lt, line, (size_t)len, &ev, NULL), RULES_MATCH);
	cr_assert_gt(pcre2_runs, before);
	rules_free(rs);
}

/* Rules in a row that need the same literal share one search per line: a
 * line without it runs none of them, a line with it runs each in turn
 * (the memo of one rule's answer never hides another rule's match). */
Test(rules, shared_literal_is_searched_once_and_hides_nothing)
{
	char dir[256], path[512], line[256];
	struct ruleset *rs;
	struct logtime lt;
	struct event ev;
	struct diag d;
	unsigned long before;
	size_t idx = 99;
	int n;

	tu_mkdtemp(dir, sizeof(dir));
	tu_write(dir, "memo.rules",
	    "[a]\nprogram = p\nevent = ea\npattern = ^(?<qid>\\w+): host (?:aaa)\n"
	    "[b]\nprogram = p\nevent = eb\npattern = ^(?<qid>\\w+): host (?:bbb)\n"
	    "[c]\nprogram = p\nevent = ec\npattern = ^(?<qid>\\w+): gate (?:ccc)\n",
	    path, sizeof(path));
	diag_init(&d);
	cr_assert_eq(rules_load(path, &rs, &d), 0);
	logtime_init(&lt, 1795339200);
	n = snprintf(line, sizeof(line), "Nov 22 10:00:01 mx p[1]: Q1: host bbb");
	before = pcre2_runs;
	cr_assert_eq(rules_match(rs, &lt, line, (size_t)n, &ev, &idx), RULES_MATCH);
	cr_assert_eq(idx, 1, "the second rule of the pair matches");
	cr_assert_str_eq(ev.type, "eb");
	cr_assert_eq(pcre2_runs - before, 2);
	n = snprintf(line, sizeof(line), "Nov 22 10:00:01 mx p[1]: Q1: gate ccc");
	before = pcre2_runs;
	cr_assert_eq(rules_match(rs, &lt, line, (size_t)n, &ev, &idx), RULES_MATCH);
	cr_assert_str_eq(ev.type, "ec");
	cr_assert_eq(pcre2_runs - before, 1, "the pair's literal is absent: neither runs");
	rules_free(rs);
	diag_free(&d);
	tu_rmrf(dir);
}

/* The shipped delivery-result rules run PCRE2 on refusals only: a
 * successful delivery line (most of postfix/smtp's lines) runs none. */
Test(rules, delivery_rules_skip_successful_deliveries)
{
	struct ruleset *rs = shipped_rules();
	struct logtime lt;
	struct event ev;
	unsigned long before;
	static const char sent[] = "Nov 22 10:00:01 mx postfix/smtp[7]: 3E6864A008B: "
	    "to=<bob@gmail.example>, relay=gmail-smtp-in.l.google.com[142.250.4.27]:25, "
	    "delay=0.9, delays=0.1/0/0.3/0.5, dsn=2.0.0, status=sent (250 2.0.0 OK  1795132815 "
	    "ff2ec9160c61ef24 - gsmtp)";
	static const char unknown[] = "Nov 22 10:00:01 mx postfix/smtp[7]: 3E6864A008C: "
	    "to=<nobody@example.net>, relay=mx.example.net[198.51.100.25]:25, delay=0.9, "
	    "delays=0.1/0/0.3/0.5, dsn=5.1.1, status=bounced (host mx.example.net[198.51.100.25] "
	    "said: 550 5.1.1 <nobody@example.net>: Recipient address rejected: User unknown "
	    "(in reply to RCPT TO command))";

	logtime_init(&lt, 1795339200);
	before = pcre2_runs;
	cr_assert_eq(rules_match(rs, &lt, sent, sizeof(sent) - 1, &ev, NULL), RULES_NOMATCH);
	cr_assert_eq(pcre2_runs, before, "no PCRE2 run on a successful delivery");
	cr_assert_eq(rules_match(rs, &lt, unknown, sizeof(unknown) - 1, &ev, NULL),
	    RULES_NOMATCH);
	cr_assert_eq(pcre2_runs - before, 2, "a refusal: the listed and the reject rule");
	rules_free(rs);
}

/*
 * The prefilter against PCRE2 on random patterns: prefilter skips a line
 * (rules_match answers without running PCRE2) => PCRE2 finds no match, and
 * more generally rules_match matches exactly when PCRE2 does.  The
 * patterns come from a grammar of PCRE2 pieces (those the prefilter's
 * reader takes and many it must refuse); each has subjects built from
 * samples of what it matches (the grammar makes them along with the
 * pattern) and their mutations (prefixes, a character dropped, case
 * changed, spaces dropped, text around).  Fixed seed: a failure repeats.
 */
#define DIFF_PATTERNS 24000
#define DIFF_BATCH 100         /* rules per file: all their tags stay cached */
#define DIFF_SAMPLES 3
#define PAT_MAX 400
#define SUBJ_MAX 200

struct gen {
	uint64_t pr, sr;          /* pattern and sample random streams */
	char pat[PAT_MAX + 64];
	size_t plen;
	char smp[SUBJ_MAX + 64];
	size_t slen;
	bool icase, xmode;        /* options in force where the generator is */
	bool tame;                /* only pieces inside the prefilter's subset */
	int groups;               /* capture groups opened so far */
	unsigned names;           /* named groups used (bit per name) */
};

static uint64_t
rnd(uint64_t *st)
{
	/* splitmix64 */
	uint64_t z = (*st += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* pick - the pattern's choice among n (the pattern stream) */
static unsigned
pick(struct gen *g, unsigned n)
{
	return (unsigned)(rnd(&g->pr) % n);
}

/* spick - the sample's choice among n (the sample stream: the same pattern
 * with other samples) */
static unsigned
spick(struct gen *g, unsigned n)
{
	return (unsigned)(rnd(&g->sr) % n);
}

static void
emit_p(struct gen *g, const char *s)
{
	size_t n = strlen(s);

	if (g->plen + n < PAT_MAX) {
		memcpy(g->pat + g->plen, s, n);
		g->plen += n;
	}
	g->pat[g->plen] = '\0';
}

static void
emit_s(struct gen *g, const char *s, size_t n)
{
	if (g->slen + n < SUBJ_MAX) {
		memcpy(g->smp + g->slen, s, n);
		g->slen += n;
	}
}

/* sample_char - c as the sample writes it where the options are g's */
static void
sample_char(struct gen *g, char c)
{
	if (g->xmode && c == ' ')
		return;
	if (g->icase && spick(g, 2)) {
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 32);
		else if (c >= 'A' && c <= 'Z')
			c = (char)(c + 32);
	}
	emit_s(g, &c, 1);
}

static void gen_alt(struct gen *g, int depth);

/* pieces: pattern text, one sample of what it matches ("" for none) */
struct piece {
	const char *pat, *smp;
};

/* Each table starts with the pieces inside the prefilter's subset (the
 * first N_TAME_*): a tame pattern (one in two) uses only those, so that
 * the prefilter has literals to get wrong. */
static const struct piece atoms[] = {
	{ "\\.", "." }, { "\\[", "[" }, { "\\]", "]" }, { "\\(", "(" }, { "\\)", ")" },
	{ "\\|", "|" }, { "\\*", "*" }, { "\\?", "?" }, { "\\\\", "\\" }, { "\\{", "{" },
	{ "\\-", "-" }, { "\\:", ":" }, { "\\$", "$" }, { "\\ ", " " }, { "\\#", "#" },
	{ "]", "]" }, { "}", "}" },
	{ "[abc]", "b" }, { "[^a]", "x" }, { "[]a]", "]" }, { "[[:alpha:]x]", "Q" },
	{ "[[:digit:]]", "7" }, { "[\\]a]", "]" }, { "[a-c]", "c" }, { "[\\d:]", ":" },
	{ "[[:^alpha:]]", "5" }, { "[(*]", "*" }, { "[|]", "|" }, { "[\\\\]", "\\" },
	{ "[[:alpha:][:digit:]]", "3" }, { "[^]x]", "a" }, { "[\\b]", "\b" }, { "[#]", "#" },
	{ "[ ]", " " }, { "[)(]", ")" }, { "[\\^]", "^" },
	{ ".", "q" }, { "\\d", "4" }, { "\\w", "w" }, { "\\s", " " }, { "\\D", "d" },
	{ "\\W", ":" }, { "\\h", " " }, { "\\N", "n" }, { "\\X", "x" }, { "\\t", "\t" },
	{ "\\e", "\x1b" }, { "\\a", "\a" }, { "\\f", "\f" },
#define N_TAME_ATOMS 49
	{ "{", "{" }, { "a{", "a{" }, { "{,2}", "{,2}" }, { "[[:]", ":" }, { "[[:]", "[" },
	{ "[\\c]]", "\x1d" }, { "[\\Q]\\E]", "]" }, { "[\\x{5d}b]", "]" }, { "[\\101]", "A" },
	{ "[[:]x:]", "[x:]" }, { "[[.]", "." }, { "[[:a]", "a" }, { "[[=]", "=" },
	{ "[a[:]", ":" }, { "[[:<:]]", "" },
	{ "\\x41", "A" }, { "\\x{62}", "b" }, { "\\101", "A" }, { "\\o{142}", "b" },
	{ "\\cA", "\x01" }, { "\\c]", "\x1d" }, { "\\c)", "i" }, { "\\c(", "h" },
	{ "\\Q|(a\\E", "|(a" }, { "\\Qab)\\E", "ab)" }, { "\\Q[x", "[x" }, { "\\E", "" },
	{ "\\N{2}", "nn" },
};

static const struct piece assertions[] = {
	{ "^", "" }, { "$", "" }, { "\\b", "" }, { "\\B", "" }, { "\\z", "" }, { "\\Z", "" },
	{ "\\A", "" }, { "\\G", "" },
#define N_TAME_ASSERTIONS 8
	{ "\\K", "" },
	{ "(*ACCEPT)", "" }, { "(*FAIL)", "" }, { "(*COMMIT)", "" }, { "(*SKIP)", "" },
	{ "(*PRUNE)", "" }, { "(*THEN)", "" }, { "(*MARK:m)", "" }, { "(*:n)", "" },
	{ "(?#c)", "" }, { "(?#c(x)", "" }, { "(?#)", "" }, { "(?#a|b)", "" },
	{ "(?C)", "" }, { "(?C1)", "" }, { "(?C'x')", "" }, { "(?C{y})", "" },
	{ "\\1", "" }, { "\\g{1}", "" }, { "\\g-1", "" }, { "\\k<user>", "" },
	{ "(?P=user)", "" }, { "(?1)", "" }, { "\\10", "\b" },
};

static const char *const group_opens[] = {
	"(", "(?:", "(?<user>", "(?'qid'", "(?P<sender>", "(?i:", "(?-i:", "(?i-s:", "(?=",
	"(?!", "(?<=", "(?<!", "(?s:", "(?m:", "(?n:", "(?^:",
#define N_TAME_GROUPS 16
	"(?|", "(?>", "(?x:", "(*atomic:", "(*pla:", "(?xx:", "(?(1)", "(?(<user>)", "(?(?=a)",
};

static const char *const settings[] = {
	"(?i)", "(?x)", "(?-i)", "(?s)", "(?m)", "(?n)", "(?^)", "(?xx)", "(?-x)", "(?i-x)",
};

static const char *const quantifiers[] = {
	"?", "*", "+", "{0}", "{2}", "{0,2}", "{1,}", "??", "*+", "+?", "{1,3}?",
#define N_TAME_QUANTIFIERS 11
	"{ 1 }",
};

#define N_OF(a) (unsigned)(sizeof(a) / sizeof((a)[0]))

/* gen_quant - a quantifier for the item whose sample is smp[from..] */
static void
gen_quant(struct gen *g, size_t from)
{
	const char *q = quantifiers[pick(g, g->tame ? N_TAME_QUANTIFIERS : N_OF(quantifiers))];
	size_t n = g->slen - from;
	char item[SUBJ_MAX];
	unsigned lo = 0, hi = 0, times;

	emit_p(g, q);
	if (strcmp(q, "{ 1 }") == 0)
		return;                  /* literal text in PCRE2 10.42 */
	switch (q[0]) {
	case '?': lo = 0; hi = 1; break;
	case '*': lo = 0; hi = 3; break;
	case '+': lo = 1; hi = 3; break;
	default:
		lo = (unsigned)(q[1] - '0');
		hi = q[2] == '}' ? lo : q[3] == '}' ? lo + 2 : (unsigned)(q[3] - '0');
		break;
	}
	memcpy(item, g->smp + from, n);
	times = lo + spick(g, hi - lo + 1);
	g->slen = from;
	for (unsigned i = 0; i < times; i++)
		emit_s(g, item, n);
}

/* gen_item - one item, maybe quantified */
static void
gen_item(struct gen *g, int depth)
{
	size_t from = g->slen;
	unsigned k = pick(g, 20);
	bool quantifiable = true;

	if (k < 7) {
		/* a run of plain characters; a quantifier takes the last one */
		static const char chars[] = "abcxyAB :-=,";
		for (unsigned m = 1 + pick(g, 5); m > 0; m--) {
			char c = chars[pick(g, sizeof(chars) - 1)], s[2] = { c, 0 };
			from = g->slen;
			emit_p(g, s);
			sample_char(g, c);
		}
	} else if (k < 12) {
		const struct piece *a = &atoms[pick(g, g->tame ? N_TAME_ATOMS : N_OF(atoms))];
		emit_p(g, a->pat);
		emit_s(g, a->smp, strlen(a->smp));
	} else if (k < 14) {
		const struct piece *a = &assertions[pick(g, g->tame ? N_TAME_ASSERTIONS :
		    N_OF(assertions))];
		emit_p(g, a->pat);
		emit_s(g, a->smp, strlen(a->smp));
	} else if (k < 15 && !g->tame) {
		const char *s = settings[pick(g, N_OF(settings))];
		emit_p(g, s);
		if (strchr(s, 'i'))
			g->icase = strchr(s, '-') == NULL;
		if (strchr(s, 'x'))
			g->xmode = strchr(s, '-') == NULL || strchr(s, 'x') < strchr(s, '-');
		if (strcmp(s, "(?^)") == 0)
			g->icase = g->xmode = false;
		quantifiable = false;
	} else if (depth < 3) {
		const char *o = group_opens[pick(g, g->tame ? N_TAME_GROUPS : N_OF(group_opens))];
		bool icase = g->icase, xmode = g->xmode, look = o[1] == '?' &&
		    (o[2] == '=' || o[2] == '!' || (o[2] == '<' && (o[3] == '=' || o[3] == '!')));
		size_t keep = g->slen;

		emit_p(g, o);
		if (strchr(o, 'i') && o[1] == '?' && o[2] != '(')
			g->icase = o[2] != '-';
		if (strstr(o, "x:") || strstr(o, "xx:"))
			g->xmode = true;
		if (strcmp(o, "(?^:") == 0)
			g->icase = g->xmode = false;
		gen_alt(g, depth + 1);
		emit_p(g, ")");
		if (look)
			g->slen = keep;  /* an assertion consumes nothing */
		g->icase = icase;
		g->xmode = xmode;
	} else {
		emit_p(g, "z");
		sample_char(g, 'z');
	}
	if (quantifiable && pick(g, 4) == 0)
		gen_quant(g, from);
}

/* gen_alt - a sequence of items, with alternatives now and then; the
 * sample takes one of them */
static void
gen_alt(struct gen *g, int depth)
{
	unsigned nalt = pick(g, depth == 0 ? 6 : 3) == 0 ? 2 + pick(g, 2) : 1;
	unsigned chosen = spick(g, nalt);
	size_t keep = g->slen;

	for (unsigned a = 0; a < nalt; a++) {
		size_t start = g->slen;
		unsigned items = 1 + pick(g, depth == 0 ? 7 : 4);

		if (a > 0)
			emit_p(g, "|");
		for (unsigned i = 0; i < items; i++)
			gen_item(g, depth);
		if (a == chosen) {
			/* keep this alternative's sample: move it to keep */
			memmove(g->smp + keep, g->smp + start, g->slen - start);
			g->slen = keep + (g->slen - start);
			keep = g->slen;
		} else {
			g->slen = keep;
		}
	}
}

/* gen_pattern - pattern number i, with its sample number k in g->smp */
static void
gen_pattern(struct gen *g, unsigned i, unsigned k)
{
	memset(g, 0, sizeof(*g));
	g->pr = 0x5eed0000ULL + i;
	g->sr = ((uint64_t)i << 8) + k + 1;
	g->tame = pick(g, 2) == 0;
	switch (pick(g, 8)) {
	case 0: case 1: case 2:
		emit_p(g, "^");
		break;
	case 3:
		if (!g->tame && pick(g, 4) == 0)
			emit_p(g, "(*UTF)");
		break;
	default:
		break;
	}
	gen_alt(g, 0);
	if (pick(g, 10) == 0)
		emit_p(g, "$");
}

/* mutate - subject m of sample smp (len n) into out; its length */
static size_t
mutate(uint64_t *st, const char *smp, size_t n, unsigned m, char *out)
{
	size_t len = 0, cut = n ? (size_t)(rnd(st) % (n + 1)) : 0;
	static const char junk[] = "abxy AB:-=,z";

	switch (m) {
	case 0:                             /* the sample */
		memcpy(out, smp, n);
		return n;
	case 1:                             /* a prefix (ACCEPT, lost items) */
		memcpy(out, smp, cut);
		return cut;
	case 2:                             /* one character dropped */
		if (n == 0)
			return 0;
		cut = (size_t)(rnd(st) % n);
		memcpy(out, smp, cut);
		memcpy(out + cut, smp + cut + 1, n - cut - 1);
		return n - 1;
	case 3:                             /* case changed here and there */
		for (size_t i = 0; i < n; i++) {
			char c = smp[i];
			if (rnd(st) % 2 && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
				c ^= 0x20;
			out[len++] = c;
		}
		return len;
	case 4:                             /* spaces dropped, or one added */
		for (size_t i = 0; i < n; i++) {
			if (smp[i] != ' ')
				out[len++] = smp[i];
			if (i == cut)
				out[len++] = ' ';
		}
		return len;
	case 5:                             /* text around it */
		for (unsigned i = (unsigned)(rnd(st) % 4); i > 0; i--)
			out[len++] = junk[rnd(st) % (sizeof(junk) - 1)];
		memcpy(out + len, smp, n);
		len += n;
		for (unsigned i = (unsigned)(rnd(st) % 4); i > 0; i--)
			out[len++] = junk[rnd(st) % (sizeof(junk) - 1)];
		return len;
	case 6:                             /* a prefix, then a newline or junk */
		memcpy(out, smp, cut);
		len = cut;
		out[len++] = rnd(st) % 2 ? '\n' : junk[rnd(st) % (sizeof(junk) - 1)];
		return len;
	default:                            /* a character doubled */
		if (n == 0)
			return 0;
		memcpy(out, smp, cut);
		out[cut] = smp[cut < n ? cut : n - 1];
		memcpy(out + cut + 1, smp + cut, n - cut);
		return n + 1;
	}
}

#define DIFF_MUTATIONS 8

/* subject_ok - a subject rules_match takes as a message: no NUL, and
 * ASCII (the grammar writes no other byte) */
static bool
subject_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] == '\0' || (unsigned char)s[i] >= 0x80)
			return false;
	return true;
}

/* diff_check - subject subj of rule j (pattern pat, compiled re) through
 * rules_match and PCRE2; counts what happened */
static void
diff_check(struct ruleset *rs, struct logtime *lt, size_t j, const char *pat,
    const pcre2_code *re, const char *subj, size_t n, unsigned long *skipped,
    unsigned long *matched)
{
	char line[SUBJ_MAX * 2 + 64];
	struct event ev;
	enum rules_result r;
	unsigned long runs;
	uint64_t hits;
	int len, want;

	len = snprintf(line, sizeof(line), "Nov 22 10:00:01 mx p%zu[1]: %.*s", j, (int)n, subj);
	cr_assert(len > 0 && (size_t)len < sizeof(line));
	runs = pcre2_runs;
	hits = rules_limit_hits(rs);
	r = rules_match(rs, lt, line, (size_t)len, &ev, NULL);
	runs = pcre2_runs - runs;
	want = pcre2_says(re, subj, n);
	if (want < 0 || rules_limit_hits(rs) != hits)
		return;                  /* a match limit: no answer to compare */
	cr_assert_neq(r, RULES_BADLINE, "line \"%s\"", line);
	if (runs == 0)
		cr_assert_eq(want, 0, "the prefilter skipped a line PCRE2 matches: pattern "
		    "\"%s\", subject \"%.*s\"", pat, (int)n, subj);
	cr_assert_eq(r != RULES_NOMATCH, want == 1, "pattern \"%s\", subject \"%.*s\": "
	    "rules_match %d, PCRE2 %d", pat, (int)n, subj, r, want);
	*skipped += runs == 0;
	*matched += want == 1;
}

Test(rules, prefilter_skip_implies_pcre2_nomatch, .timeout = 280)
{
	static char pats[DIFF_BATCH][PAT_MAX + 64];
	static pcre2_code *codes[DIFF_BATCH];
	static unsigned idx[DIFF_BATCH];
	const size_t text_cap = (size_t)DIFF_BATCH * (PAT_MAX + 128);
	char *text = malloc(text_cap);
	char dir[256], path[512], subj[SUBJ_MAX * 2];
	unsigned long tried = 0, skipped = 0, matched = 0, refused = 0, subjects = 0;
	uint64_t mst = 42;
	struct logtime lt;
	struct gen g;
	unsigned next = 0;

	cr_assert_not_null(text);
	tu_mkdtemp(dir, sizeof(dir));
	logtime_init(&lt, 1795339200);
	while (tried < DIFF_PATTERNS) {
		struct ruleset *rs = NULL;
		struct diag d;
		size_t off = 0, nb = 0;

		/* a batch of patterns that PCRE2 compiles and inih keeps whole */
		while (nb < DIFF_BATCH) {
			unsigned i = next++;
			gen_pattern(&g, i, 0);
			if (g.plen == 0 || g.pat[0] == ' ' || g.pat[g.plen - 1] == ' ' ||
			    (codes[nb] = compile(g.pat)) == NULL) {
				refused++;
				continue;
			}
			memcpy(pats[nb], g.pat, g.plen + 1);
			idx[nb] = i;
			off += (size_t)snprintf(text + off, text_cap - off,
			    "[r%zu]\nprogram = p%zu\nevent = e\npattern = %s\n", nb, nb, g.pat);
			cr_assert_lt(off, text_cap);
			nb++;
		}
		tu_write(dir, "diff.rules", text, path, sizeof(path));
		diag_init(&d);
		if (rules_load(path, &rs, &d) != 0)
			diag_print(&d);
		cr_assert_not_null(rs, "the batch from pattern %u did not load", idx[0]);
		diag_free(&d);
		for (size_t j = 0; j < nb; j++) {
			/* the samples: the same pattern stream, other sample streams */
			for (unsigned k = 0; k < DIFF_SAMPLES; k++) {
				gen_pattern(&g, idx[j], k);
				cr_assert_str_eq(g.pat, pats[j]);
				for (unsigned m = 0; m < DIFF_MUTATIONS; m++) {
					size_t n = mutate(&mst, g.smp, g.slen, m, subj);
					if (!subject_ok(subj, n))
						continue;
					diff_check(rs, &lt, j, pats[j], codes[j], subj, n, &skipped,
					    &matched);
					subjects++;
				}
			}
			pcre2_code_free(codes[j]);
		}
		rules_free(rs);
		tried += nb;
	}
	free(text);
	tu_rmrf(dir);
	cr_log_info("%lu patterns (%lu refused), %lu subjects: %lu matched, %lu skipped "
	    "by the prefilter", tried, refused, subjects, matched, skipped);
	/* the test means something: many subjects match, many are skipped */
	cr_assert_gt(matched, subjects / 10, "%lu of %lu matched", matched, subjects);
	cr_assert_gt(skipped, subjects / 10, "%lu of %lu skipped", skipped, subjects);
}
