/*
 * main - mailjail's one binary: pick the subcommand, print help or the
 * version (meson's project version, from the generated mailjail_version.h).
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "log.h"
#include "mailjail_version.h"

static const char usage_text[] =
"usage: mailjail COMMAND [OPTIONS]\n"
"       mailjail --version | -V | --help | -h\n"
"\n"
"Follows Postfix's mail log, counts SASL failures per IP and mail per\n"
"account in SQLite, and bans IPs in nftables or puts accounts on HOLD.\n"
"\n"
"commands:\n"
"  run [-c FILE] [--db PATH] [--dry-run] [--syslog | --log-file PATH]\n"
"        the daemon, in the foreground; follows the configured logs from\n"
"        the saved positions; logs to stderr unless told otherwise.\n"
"        SIGHUP reloads, SIGTERM stops, SIGUSR1 reopens the log file\n"
"  replay [-c FILE] [--db PATH] [--dry-run] [--quiet] [--notify] LOG...\n"
"        read whole files with the log's own time as the clock, then print\n"
"        a summary; --dry-run records verdicts but touches neither\n"
"        nftables nor the hold map; --notify queues notifications of the\n"
"        verdicts (off: history is not news)\n"
"  test-rules [-c FILE] [--rules PATH] LOG\n"
"        per rule, lines matched with sample captures; lines no rule matched\n"
"  check-config [-c FILE]\n"
"        parse everything; print each error as file:line: message\n"
"  status [-c FILE]\n"
"        per jail keys tracked and active bans; events in the last hour;\n"
"        saved log positions; whether the daemon runs\n"
"  bans [--jail J] [--all] [--json]\n"
"        active (or all) bans and holds as a table, or JSON\n"
"  history TARGET [--json]\n"
"        every ban or hold of an IP or account\n"
"  ban IP[/LEN] [--jail J] [--for DURATION] [--dry-run]\n"
"  unban IP[/LEN] [--dry-run]\n"
"        ban or unban by hand: the database and nftables together\n"
"  hold ACCOUNT [--jail J] [--for DURATION] [--dry-run]\n"
"        put an account on the Postfix HOLD map by hand\n"
"  release ACCOUNT [--requeue] [--dry-run]\n"
"        take it off the map; --requeue also releases its mail from\n"
"        Postfix's hold queue (postsuper -H) and delivers it now\n"
"  metrics [-c FILE]\n"
"        print the Prometheus metrics once (the daemon's counters as it\n"
"        last saved them, gauges read now)\n"
"\n"
"Every command takes -c FILE and --db PATH.\n"
"\n"
"-c FILE defaults to /etc/mailjail/mailjail.conf.\n"
"Exit status: 0 success, 1 runtime failure, 2 bad usage or configuration.\n"
"\n"
"-V, --version prints \"mailjail VERSION\".  This is mailjail " MAILJAIL_VERSION ".\n";

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
};

static const struct command commands[] = {
	{ "run", cli_run },
	{ "replay", cli_replay },
	{ "test-rules", cli_test_rules },
	{ "check-config", cli_check_config },
	{ "status", cli_status },
	{ "bans", cli_bans },
	{ "history", cli_history },
	{ "ban", cli_ban },
	{ "unban", cli_unban },
	{ "hold", cli_hold },
	{ "release", cli_release },
	{ "metrics", cli_metrics },
};

int
main(int argc, char **argv)
{
	log_init("mailjail", false);
	if (argc < 2) {
		fputs(usage_text, stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0) {
		printf("mailjail %s\n", MAILJAIL_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "mailjail: unknown command \"%s\" (see mailjail --help)\n", argv[1]);
	return EXIT_USAGE;
}
