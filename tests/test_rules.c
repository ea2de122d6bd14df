/*
 * test_rules - the shipped rules against real and crafted log lines (the
 * table in tests/data/rule-cases.txt, one criterion parameter per line, in
 * the spirit of sshguard's tests.txt), and rule-file errors.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules.h"
#include "testutil.h"

struct rule_case {
	int lineno;
	char expect[32], ip[64], user[300], sender[300], qid[40], nrcpt[16];
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
	cases = cr_malloc(200 * sizeof(*cases));
	if (cases == NULL || (fp = fopen(path, "r")) == NULL)
		return cr_make_param_array(struct rule_case, cases, 0);
	while (getline(&buf, &cap, fp) > 0 && n < 200) {
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
		snprintf(cases[n].line, sizeof(cases[n].line), "%s", p);
		n++;
	}
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
 * naive reading gives a wrong literal, each with a line it matches. */
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
	};
	size_t n = sizeof(cases) / sizeof(cases[0]);
	char dir[256], path[512], text[8192], line[256];
	size_t off = 0;
	struct ruleset *rs = NULL;
	struct logtime lt;
	struct event ev;
	struct diag d;
	size_t rule;

	for (size_t i = 0; i < n; i++)
		off += (size_t)snprintf(text + off, sizeof(text) - off,
		    "[r%zu]\nprogram = p%zu\nevent = e%zu\npattern = %s\n", i, i, i, cases[i][0]);
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
		cr_assert_eq(rules_match(rs, &lt, line, (size_t)len, &ev, &rule), RULES_MATCH,
		    "pattern %s missed \"%s\"", cases[i][0], cases[i][1]);
		cr_assert_eq(rule, i);
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
