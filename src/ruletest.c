/*
 * ruletest - "mailjail test-rules": what the rules make of a log, or of one
 * line, shown the way an admin writing a rule needs it (fail2ban-regex is
 * the yardstick): per rule the lines it matched, samples shown as the line
 * itself (cut to the width), its time in words and its captures; every
 * match on request; the lines no rule matched, whole.
 *
 * Every shown byte comes from a log line, i.e. from whoever talked to
 * Postfix: control characters are printed as \xNN, so a line cannot move
 * the cursor, clear the screen or forge a line of this output.
 *
 * Memory: the samples (SAMPLES_PER_RULE per rule) are owned by the run's
 * context and freed at its end; nothing else is kept per line.
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "cmdhelp.h"
#include "follow.h"
#include "log.h"
#include "logfiles.h"
#include "rules.h"

#define SAMPLES_PER_RULE 3
#define WIDTH_NOT_A_TTY 120
#define WIDTH_MIN 20

struct ruletest_opts {
	const char *cfgpath;
	const char *rules_path;
	const char *rule;          /* --rule: that one alone */
	bool all;                  /* every match, not only samples */
	bool missed;
	uint64_t missed_max;       /* 0: all of them */
	size_t width;              /* 0: never cut */
};

struct ruletest {
	const struct ruletest_opts *o;
	struct ruleset *rules;
	struct logtime lt;
	uint64_t lines, nomatch, bad_lines, bad_fields, missed_shown;
	uint64_t *hits;
	char **samples;            /* nrules * SAMPLES_PER_RULE, each malloc'd */
};

/* ---- showing text --------------------------------------------------------- */

/* shown_char - how s[i] is shown: *n bytes taken, and its columns (4 for
 * a byte shown as \xNN: a control byte, or any byte >= 0x80 if raw_high) */
static size_t
shown_char(const char *s, size_t len, size_t i, bool raw_high, size_t *n)
{
	unsigned char c = (unsigned char)s[i];

	*n = 1;
	if (c < 0x20 || c == 0x7f || (raw_high && c >= 0x80))
		return 4;
	if (c >= 0xc0)
		while (i + *n < len && ((unsigned char)s[i + *n] & 0xc0) == 0x80)
			(*n)++;
	return 1;
}

/* put_shown - s[0..len) as it may be shown: control bytes as \xNN, and, if
 * raw_high, every byte >= 0x80 too (a line that is not valid UTF-8); cut
 * to width columns (0: never), "..." marking the cut.  One column per
 * character: mail logs are ASCII but for the odd UTF-8 name. */
static void
put_shown(FILE *fp, const char *s, size_t len, size_t width, bool raw_high)
{
	size_t cols = 0, limit = width, n;

	if (width) {
		for (size_t i = 0; i < len && cols <= width; i += n)
			cols += shown_char(s, len, i, raw_high, &n);
		limit = cols > width ? width - 3 : width;
		cols = 0;
	}
	for (size_t i = 0; i < len; i += n) {
		size_t w = shown_char(s, len, i, raw_high, &n);
		if (width && cols + w > limit) {
			fputs("...", fp);
			return;
		}
		if (w == 4)
			fprintf(fp, "\\x%02x", (unsigned char)s[i]);
		else
			fwrite(s + i, 1, n, fp);
		cols += w;
	}
}

static void
put_shown_str(FILE *fp, const char *s)
{
	put_shown(fp, s, strlen(s), 0, false);
}

/* readable_time - "2026-11-22 10:00:01 CET": the year syslog left out and
 * the zone the stamp was read in */
static void
readable_time(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (localtime_r(&tt, &tm) == NULL || strftime(buf, len, "%Y-%m-%d %H:%M:%S %Z", &tm) == 0)
		snprintf(buf, len, "@%" PRId64, t);
}

/* put_captures - "ip=... user=..." of ev */
static void
put_captures(FILE *fp, const struct event *ev)
{
	static const char *const names[] = { "ip", "user", "sender", "qid", "rcpt", "newqid" };
	const char *vals[] = { ev->ip, ev->user, ev->sender, ev->qid, ev->rcpt, ev->newqid };
	bool any = false;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (vals[i][0] == '\0')
			continue;
		fprintf(fp, "%s%s=", any ? " " : "", names[i]);
		put_shown_str(fp, vals[i]);
		any = true;
	}
	if (ev->nrcpt >= 0) {
		fprintf(fp, "%snrcpt=%ld", any ? " " : "", ev->nrcpt);
		any = true;
	}
	if (!any)
		fputs("(no captures)", fp);
}

/* put_match - a matched line as shown: the line (cut), then its time and
 * captures, indented under it */
static void
put_match(FILE *fp, const char *indent, const char *line, size_t len, const struct event *ev,
    size_t width)
{
	char when[64];
	size_t ind = strlen(indent);

	fputs(indent, fp);
	put_shown(fp, line, len, width > ind ? width - ind : (width ? 1 : 0), false);
	readable_time(ev->time, when, sizeof(when));
	fprintf(fp, "\n%s  %s  ", indent, when);
	put_captures(fp, ev);
	fputc('\n', fp);
}

/* ---- reading -------------------------------------------------------------- */

/* keep_sample - the shown form of a match, for the summary */
static int
keep_sample(struct ruletest *c, size_t rule, const char *line, size_t len,
    const struct event *ev)
{
	char *text = NULL;
	size_t tlen = 0;
	FILE *fp = open_memstream(&text, &tlen);

	if (fp == NULL)
		return -1;
	put_match(fp, "    ", line, len, ev, c->o->width);
	if (fclose(fp) != 0) {
		free(text);
		return -1;
	}
	c->samples[rule * SAMPLES_PER_RULE + c->hits[rule]] = text;
	return 0;
}

static void
show_missed(struct ruletest *c, const char *line, size_t len, bool bad)
{
	if (!c->o->missed || (c->o->missed_max && c->missed_shown >= c->o->missed_max))
		return;
	c->missed_shown++;
	fputs(bad ? "no rule (bad line): " : "no rule: ", stdout);
	put_shown(stdout, line, len, 0, bad);
	fputc('\n', stdout);
}

static int
test_line(void *arg, size_t file, const char *line, size_t len)
{
	struct ruletest *c = arg;
	struct event ev;
	size_t rule = 0;

	(void)file;
	c->lines++;
	switch (rules_match(c->rules, &c->lt, line, len, &ev, &rule)) {
	case RULES_NOMATCH:
		c->nomatch++;
		show_missed(c, line, len, false);
		break;
	case RULES_BADLINE:
		c->bad_lines++;
		show_missed(c, line, len, true);
		break;
	case RULES_BADFIELD:
		c->bad_fields++;
		if (c->o->all) {
			printf("%s (a capture is invalid: no event)\n    ", rules_name(c->rules, rule));
			put_shown(stdout, line, len, c->o->width > 4 ? c->o->width - 4 : c->o->width, false);
			fputc('\n', stdout);
		}
		break;
	case RULES_MATCH:
		if (c->o->all) {
			printf("%s\n", rules_name(c->rules, rule));
			put_match(stdout, "    ", line, len, &ev, c->o->width);
		} else if (c->hits[rule] < SAMPLES_PER_RULE &&
		    keep_sample(c, rule, line, len, &ev) != 0) {
			log_warnx("out of memory");
			return -1;
		}
		c->hits[rule]++;
		break;
	}
	return 0;
}

/* print_summary - lines, then per rule its count and samples */
static void
print_summary(const struct ruletest *c, const char *what)
{
	size_t n = rules_count(c->rules);
	uint64_t matched = c->lines - c->nomatch - c->bad_lines - c->bad_fields;

	if (c->o->all || c->o->missed)
		fputc('\n', stdout);
	printf("%s: %" PRIu64 " lines: %" PRIu64 " matched a rule, %" PRIu64 " matched no rule, %"
	    PRIu64 " bad lines, %" PRIu64 " bad captures\n", what, c->lines, matched, c->nomatch,
	    c->bad_lines, c->bad_fields);
	if (c->bad_lines)
		printf("  (a bad line has no time stamp or program tag, a NUL byte or invalid "
		    "UTF-8)\n");
	for (size_t i = 0; i < n; i++) {
		printf("\n%s (event %s): %" PRIu64 " matched\n", rules_name(c->rules, i),
		    rules_event(c->rules, i), c->hits[i]);
		for (uint64_t k = 0; k < c->hits[i] && k < SAMPLES_PER_RULE; k++)
			if (c->samples[i * SAMPLES_PER_RULE + k])
				fputs(c->samples[i * SAMPLES_PER_RULE + k], stdout);
	}
}

/* test_one_line - LINE given on the command line: what becomes of it */
static int
test_one_line(struct ruletest *c, const char *line)
{
	size_t len = strlen(line), rule = 0;
	struct event ev;

	switch (rules_match(c->rules, &c->lt, line, len, &ev, &rule)) {
	case RULES_MATCH:
		printf("rule %s (event %s) matches:\n", rules_name(c->rules, rule),
		    rules_event(c->rules, rule));
		put_match(stdout, "    ", line, len, &ev, c->o->width);
		break;
	case RULES_NOMATCH:
		printf("no rule matches%s:\n    ", c->o->rule ? " (tried the one rule)" : "");
		put_shown(stdout, line, len, 0, false);
		fputc('\n', stdout);
		break;
	case RULES_BADLINE:
		/* it may have been meant as a file name */
		printf("no such file, and as a log line a bad line (no time stamp and program "
		    "tag, a NUL byte or invalid UTF-8): no rule is tried\n");
		break;
	case RULES_BADFIELD:
		printf("rule %s matches, but a capture is invalid (an ip inet_pton rejects, a "
		    "field too long): no event\n", rules_name(c->rules, rule));
		break;
	}
	return 0;
}

/* test_file - a whole log (plain or compressed) */
static int
test_file(struct ruletest *c, const char *path)
{
	struct logfile_info info;
	struct follow *f = NULL;
	char err[600], what[700];
	long got;
	int rc = EXIT_RUNTIME;

	switch (logfiles_inspect(path, &c->lt, &info, err, sizeof(err))) {
	case LOGFILES_LOG:
		break;
	case LOGFILES_NOT_LOG:
		log_warnx("%s", err);
		return EXIT_USAGE;
	case LOGFILES_UNREADABLE:
		log_warnx("%s", err);
		return EXIT_RUNTIME;
	}
	if (follow_open(&f, false) != 0 || follow_add(f, path, NULL) < 0)
		goto out;
	while ((got = follow_read(f, test_line, c, 65536)) > 0)
		;
	if (got < 0)
		goto out;
	snprintf(what, sizeof(what), "%s (%s)", path, unpack_format_name(info.format));
	print_summary(c, what);
	rc = 0;
out:
	follow_close(f);
	return rc;
}

/* ---- the command ---------------------------------------------------------- */

/* load_rules - --rules PATH, or the configuration's rules; --rule NAME */
static int
load_rules(const struct ruletest_opts *o, struct ruleset **out)
{
	struct diag d;
	struct app a;
	int rc = EXIT_USAGE;

	*out = NULL;
	diag_init(&d);
	if (o->rules_path != NULL) {
		if (rules_load(o->rules_path, out, &d) != 0)
			goto out;
	} else {
		/* The configuration only says where the rules are. */
		if (app_load(&a, o->cfgpath, NULL, false, &d) != 0) {
			app_free(&a);
			goto out;
		}
		*out = a.rules;
		a.rules = NULL;
		app_free(&a);
	}
	if (o->rule != NULL && rules_keep_only(*out, o->rule) != 0) {
		fprintf(stderr, "mailjail test-rules: no rule named \"%s\"\n", o->rule);
		goto out;
	}
	rc = 0;
out:
	diag_print(&d);
	diag_free(&d);
	if (rc != 0) {
		rules_free(*out);
		*out = NULL;
	}
	return rc;
}

static size_t
default_width(void)
{
	struct winsize ws;

	if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 &&
	    ws.ws_col >= WIDTH_MIN)
		return ws.ws_col;
	return WIDTH_NOT_A_TTY;
}

static bool
all_digits(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* parse_opts - the options; the argument left is argv[optind] */
static int
parse_opts(int argc, char **argv, struct ruletest_opts *o)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "rules", required_argument, NULL, 'r' },
		{ "rule", required_argument, NULL, 'R' },
		{ "all", no_argument, NULL, 'a' },
		{ "missed", optional_argument, NULL, 'm' },
		{ "width", required_argument, NULL, 'w' },
		{ NULL, 0, NULL, 0 },
	};
	bool width_set = false;
	uint64_t u;
	int ch;

	memset(o, 0, sizeof(*o));
	while ((ch = getopt_long(argc, argv, "c:r:am::w:", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': o->cfgpath = optarg; break;
		case 'r': o->rules_path = optarg; break;
		case 'R': o->rule = optarg; break;
		case 'a': o->all = true; break;
		case 'm':
			o->missed = true;
			/* "--missed 10 mail.log" as well as "--missed=10": a
			 * number followed by more arguments is the count */
			if (optarg == NULL && optind + 1 < argc && all_digits(argv[optind]))
				optarg = argv[optind++];
			if (optarg != NULL && (cfg_parse_uint(optarg, UINT32_MAX, &o->missed_max) != 0 ||
			    o->missed_max == 0)) {
				fprintf(stderr, "mailjail test-rules: --missed wants a number > 0, not "
				    "\"%s\"\n", optarg);
				return -1;
			}
			break;
		case 'w':
			if (cfg_parse_uint(optarg, 100000, &u) != 0 || (u > 0 && u < WIDTH_MIN)) {
				fprintf(stderr, "mailjail test-rules: --width wants 0 or a number >= %d\n",
				    WIDTH_MIN);
				return -1;
			}
			o->width = (size_t)u;
			width_set = true;
			break;
		default:
			return -1;
		}
	}
	if (!width_set)
		o->width = default_width();
	return optind + 1 == argc ? 0 : -1;
}

/* is_a_line - the argument is a log line, not a file: there is no such
 * file, and it has the blanks every log line has */
static bool
is_a_line(const char *arg)
{
	struct stat st;

	return stat(arg, &st) != 0 && errno == ENOENT && strchr(arg, ' ') != NULL;
}

int
cli_test_rules(int argc, char **argv)
{
	struct ruletest_opts o;
	struct ruletest c;
	size_t n;
	int rc;

	if (parse_opts(argc, argv, &o) != 0)
		return cmdhelp_usage_error(argv[0]);
	memset(&c, 0, sizeof(c));
	c.o = &o;
	if ((rc = load_rules(&o, &c.rules)) != 0)
		return rc;
	logtime_init(&c.lt, (int64_t)time(NULL));
	if (is_a_line(argv[optind])) {
		rc = test_one_line(&c, argv[optind]);
		goto out;
	}
	n = rules_count(c.rules);
	c.hits = calloc(n ? n : 1, sizeof(*c.hits));
	c.samples = calloc((n ? n : 1) * SAMPLES_PER_RULE, sizeof(*c.samples));
	if (c.hits == NULL || c.samples == NULL) {
		log_warnx("out of memory");
		rc = EXIT_RUNTIME;
		goto out;
	}
	rc = test_file(&c, argv[optind]);
out:
	for (size_t i = 0; c.samples != NULL && i < rules_count(c.rules) * SAMPLES_PER_RULE; i++)
		free(c.samples[i]);
	free(c.samples);
	free(c.hits);
	rules_free(c.rules);
	return rc;
}
