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
#include "cmdhelp.h"
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
		default: return cmdhelp_usage_error(argv[0]);
		}
	}
	if (optind >= argc) {
		return cmdhelp_usage_error(argv[0]);
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

/* check_maps_readable - can Postfix read the maps the jails write?  A
 * warning, not an error: before the first start the maps do not exist yet
 * (mailjail run creates them), and check-config runs before every start. */
static void
check_maps_readable(struct app *a)
{
	unsigned actions = app_actions(a);
	char err[512];
	if ((actions & (ACTION_HOLD | ACTION_DEFER)) &&
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
	    runuser_check(&u, &a->cfg, a->cfg.db, app_actions(a), false, &d) != 0)
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
		default: return cmdhelp_usage_error(argv[0]);
		}
	}
	if (optind != argc) {
		return cmdhelp_usage_error(argv[0]);
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
		default: return cmdhelp_usage_error(argv[0]);
		}
	}
	if (optind != argc || (o.syslog && o.log_file)) {
		return cmdhelp_usage_error(argv[0]);
	}
	return daemon_run(&o);
}

