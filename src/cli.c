/*
 * cli - argument parsing and output of the subcommands.  The work itself is
 * done by the modules (replay, daemon, rules...); this file only wires them
 * to the command line.
 */
#include "cli.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "daemon.h"
#include "follow.h"
#include "holdmap.h"
#include "log.h"
#include "replay.h"
#include "runuser.h"

/* load_or_report - app_load, printing every diag; exit status on failure */
static int
load_or_report(struct app *a, const char *cfgpath, const char *rules, bool jails)
{
	struct diag d;
	int rc;

	diag_init(&d);
	rc = app_load(a, cfgpath, rules, jails, &d);
	diag_print(&d);
	diag_free(&d);
	return rc == 0 ? 0 : EXIT_USAGE;
}

int
cli_replay(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "db", required_argument, NULL, 'd' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "notify", no_argument, NULL, 'N' },
		{ NULL, 0, NULL, 0 },
	};
	struct replay_options o = { .progress = isatty(STDERR_FILENO) };
	const char *cfgpath = NULL, *db = NULL;
	struct app a;
	int c, rc;

	while ((c = getopt_long(argc, argv, "c:d:nq", opts, NULL)) != -1) {
		switch (c) {
		case 'c': cfgpath = optarg; break;
		case 'd': db = optarg; break;
		case 'n': o.dry_run = true; break;
		case 'q': o.quiet = true; o.progress = false; break;
		case 'N': o.notify = true; break;
		default: return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "usage: mailjail replay [-c FILE] [--db PATH] [--dry-run] "
		    "[--notify] LOG...\n");
		return EXIT_USAGE;
	}
	if ((rc = load_or_report(&a, cfgpath, NULL, true)) != 0) {
		app_free(&a);
		return rc;
	}
	if (app_open_store(&a, db, true) != 0) {
		app_free(&a);
		return EXIT_RUNTIME;
	}
	log_set_quiet(true);   /* one line per verdict is for the daemon */
	rc = replay_files(&a, argv + optind, (size_t)(argc - optind), &o);
	app_free(&a);
	return rc;
}

/* test-rules: per rule the lines matched, with a few sample captures */

#define SAMPLES_PER_RULE 3

struct sample {
	char text[MJ_FIELD_MAX * 2 + 160];
};

struct test_rules_ctx {
	struct ruleset *rules;
	struct logtime lt;
	uint64_t lines, nomatch, bad_lines, bad_fields;
	uint64_t *hits;
	struct sample *samples;   /* nrules * SAMPLES_PER_RULE */
};

static void
format_captures(const struct event *ev, char *buf, size_t len)
{
	size_t off = 0;

	off += (size_t)snprintf(buf + off, len - off, "time=%" PRId64, ev->time);
#define FIELD(name, val) \
	if ((val)[0] && off < len) \
		off += (size_t)snprintf(buf + off, len - off, " " name "=%s", (val));
	FIELD("ip", ev->ip);
	FIELD("user", ev->user);
	FIELD("sender", ev->sender);
	FIELD("qid", ev->qid);
#undef FIELD
	if (ev->nrcpt >= 0 && off < len)
		snprintf(buf + off, len - off, " nrcpt=%ld", ev->nrcpt);
}

static int
test_rules_line(void *arg, size_t file, const char *line, size_t len)
{
	struct test_rules_ctx *c = arg;
	struct event ev;
	size_t rule = 0;

	(void)file;
	c->lines++;
	switch (rules_match(c->rules, &c->lt, line, len, &ev, &rule)) {
	case RULES_NOMATCH:
		c->nomatch++;
		break;
	case RULES_BADLINE:
		c->bad_lines++;
		break;
	case RULES_BADFIELD:
		c->bad_fields++;
		break;
	case RULES_MATCH:
		if (c->hits[rule] < SAMPLES_PER_RULE)
			format_captures(&ev, c->samples[rule * SAMPLES_PER_RULE +
			    c->hits[rule]].text, sizeof(c->samples[0].text));
		c->hits[rule]++;
		break;
	}
	return 0;
}

int
cli_test_rules(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "rules", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cfgpath = NULL, *rules_path = NULL;
	struct test_rules_ctx c;
	struct follow *f = NULL;
	struct ruleset *rs = NULL;
	struct diag d;
	size_t n;
	int ch, rc = EXIT_RUNTIME;
	long got;

	memset(&c, 0, sizeof(c));
	while ((ch = getopt_long(argc, argv, "c:r:", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': cfgpath = optarg; break;
		case 'r': rules_path = optarg; break;
		default: return EXIT_USAGE;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "usage: mailjail test-rules [-c FILE] [--rules PATH] LOG\n");
		return EXIT_USAGE;
	}
	diag_init(&d);
	if (rules_path == NULL) {
		/* The config only says where the rules are. */
		struct app a;
		if (load_or_report(&a, cfgpath, NULL, false) != 0) {
			app_free(&a);
			diag_free(&d);
			return EXIT_USAGE;
		}
		rs = a.rules;
		a.rules = NULL;
		app_free(&a);
	} else if (rules_load(rules_path, &rs, &d) != 0) {
		diag_print(&d);
		diag_free(&d);
		rules_free(rs);
		return EXIT_USAGE;
	}
	diag_free(&d);
	n = rules_count(rs);
	c.rules = rs;
	logtime_init(&c.lt, (int64_t)time(NULL));
	c.hits = calloc(n ? n : 1, sizeof(*c.hits));
	c.samples = calloc((n ? n : 1) * SAMPLES_PER_RULE, sizeof(*c.samples));
	if (c.hits == NULL || c.samples == NULL) {
		log_warnx("out of memory");
		goto out;
	}
	if (follow_open(&f, false) != 0 || follow_add(f, argv[optind], NULL) < 0)
		goto out;
	while ((got = follow_read(f, test_rules_line, &c, 65536)) > 0)
		;
	if (got < 0)
		goto out;
	printf("%" PRIu64 " lines: %" PRIu64 " matched no rule, %" PRIu64
	    " bad lines, %" PRIu64 " bad captures\n", c.lines, c.nomatch,
	    c.bad_lines, c.bad_fields);
	for (size_t i = 0; i < n; i++) {
		printf("%-28s %-20s %" PRIu64 "\n", rules_name(rs, i), rules_event(rs, i),
		    c.hits[i]);
		for (uint64_t k = 0; k < c.hits[i] && k < SAMPLES_PER_RULE; k++)
			printf("    %s\n", c.samples[i * SAMPLES_PER_RULE + k].text);
	}
	rc = 0;
out:
	follow_close(f);
	free(c.hits);
	free(c.samples);
	rules_free(rs);
	return rc;
}

/* jail_actions - the ACTION_* bits of every jail */
static unsigned
jail_actions(struct app *a)
{
	unsigned actions = 0;

	for (size_t j = 0; j < jails_count(a->jails); j++)
		actions |= jails_actions(a->jails, j);
	return actions;
}

/* check_maps_readable - can Postfix read the maps the jails write?  A
 * warning, not an error: before the first start the maps do not exist yet
 * (mailjail run creates them), and check-config runs before every start. */
static void
check_maps_readable(struct app *a)
{
	unsigned actions = jail_actions(a);
	char err[512];
	if ((actions & ACTION_HOLD) &&
	    holdmap_check_readable(a->cfg.hold_map, HOLDMAP_HOLD, err, sizeof(err)) != 0)
		fprintf(stderr, "%s: warning: Postfix cannot read the hold map %s: %s\n",
		    a->cfg.path, a->cfg.hold_map, err);
	if ((actions & ACTION_REJECT) &&
	    holdmap_check_readable(a->cfg.reject_map, HOLDMAP_REJECT, err, sizeof(err)) != 0)
		fprintf(stderr, "%s: warning: Postfix cannot read the reject map %s: %s\n",
		    a->cfg.path, a->cfg.reject_map, err);
}

/* check_run_user - can the user run works as do its work?  As run checks
 * it at start (runuser.h), changing nothing. */
static int
check_run_user(struct app *a)
{
	struct runuser u;
	struct diag d;
	int rc = 0;

	diag_init(&d);
	if (runuser_lookup(&a->cfg, &u, &d) != 0 ||
	    runuser_check(&u, &a->cfg, a->cfg.db, jail_actions(a), false, &d) != 0)
		rc = EXIT_USAGE;
	diag_print(&d);
	diag_free(&d);
	return rc;
}

int
cli_check_config(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cfgpath = NULL;
	struct app a;
	int ch, rc;

	while ((ch = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': cfgpath = optarg; break;
		default: return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "usage: mailjail check-config [-c FILE]\n");
		return EXIT_USAGE;
	}
	rc = load_or_report(&a, cfgpath, NULL, true);
	if (rc == 0)
		rc = check_run_user(&a);
	if (rc == 0) {
		char why[1024];

		check_maps_readable(&a);
		if (config_describe_log_auto(&a.cfg, why, sizeof(why)))
			printf("%s: %s\n", a.cfg.path, why);
		printf("%s: %zu rules, %zu jails: OK\n", a.cfg.path, rules_count(a.rules),
		    jails_count(a.jails));
	}
	app_free(&a);
	return rc;
}

int
cli_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "db", required_argument, NULL, 'd' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "syslog", no_argument, NULL, 's' },
		{ "log-file", required_argument, NULL, 'l' },
		{ NULL, 0, NULL, 0 },
	};
	struct daemon_options o;
	int ch;

	memset(&o, 0, sizeof(o));
	while ((ch = getopt_long(argc, argv, "c:d:n", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': o.cfgpath = optarg; break;
		case 'd': o.db = optarg; break;
		case 'n': o.dry_run = true; break;
		case 's': o.syslog = true; break;
		case 'l': o.log_file = optarg; break;
		default: return EXIT_USAGE;
		}
	}
	if (optind != argc || (o.syslog && o.log_file)) {
		fprintf(stderr, "usage: mailjail run [-c FILE] [--db PATH] [--dry-run] "
		    "[--syslog | --log-file PATH]\n");
		return EXIT_USAGE;
	}
	return daemon_run(&o);
}

