/*
 * cmdhelp - the help of every subcommand.  See cmdhelp.h.
 *
 * Option lines are "  -x, --long ARG  what" or "  --long ARG  what": the
 * test (tests/test_cli.c) and the completion read them in that form.
 */
#include "cmdhelp.h"

#include <string.h>

#include "cli.h"
#include "mailjail_version.h"

#define OPT_CONFIG \
"  -c, --config FILE  the configuration (default /etc/mailjail/mailjail.conf)\n"
#define OPT_DB \
"  -d, --db PATH      the database instead of the configured one\n"
#define OPT_HELP \
"  -h, --help         this help\n"
/* ban and hold by hand */
#define OPT_BY_HAND \
"  --jail J           in jail J (its bantime and escalation)\n" \
"  --for DURATION     for this long (30m, 2h, 1d, 1w)\n" \
"  --dry-run          record it, touch neither nftables nor the maps\n"

static const struct cmdhelp commands[] = {
	{ "run",
	  "run [-c FILE] [--db PATH] [--dry-run] [--syslog | --log-file PATH]",
	  "the daemon, in the foreground",
	  "Follow the configured logs from their saved positions (or the journal\n"
	  "from its saved cursor), count, ban and hold.  Re-applies every active\n"
	  "ban and hold at start.  SIGHUP reloads, SIGTERM and SIGINT stop,\n"
	  "SIGUSR1 reopens --log-file.\n"
	  "\n"
	  "options:\n"
	  OPT_CONFIG OPT_DB
	  "  -n, --dry-run      record verdicts, touch neither nftables nor the maps\n"
	  "  --syslog           log to syslog instead of stderr\n"
	  "  --log-file PATH    log to PATH instead of stderr\n"
	  OPT_HELP },
	{ "replay",
	  "replay [-c FILE] [--db PATH] [--dry-run] [--quiet] [--notify] LOG...",
	  "read whole logs with their own time as the clock",
	  "Read whole log files through the daemon's pipeline with the log's own\n"
	  "time as the clock, then print a summary.  Logs may be compressed (gzip,\n"
	  "xz, bzip2: told by their content, not their names); several are read\n"
	  "oldest first by the time stamps they hold, whatever order they are\n"
	  "given in (mail.log mail.log.1 mail.log.*.gz is fine).  A file that is\n"
	  "not a log is refused (exit 2) before anything is read.  Positions are\n"
	  "saved: a file replayed again is read from where it stopped.\n"
	  "\n"
	  "options:\n"
	  OPT_CONFIG OPT_DB
	  "  -n, --dry-run      record verdicts, touch neither nftables nor the maps\n"
	  "  -q, --quiet        no summary\n"
	  "  --notify           queue the notifications of the verdicts ([notify]);\n"
	  "                     the running daemon, or its next start, sends them\n"
	  "                     (without it none: history is not news)\n"
	  OPT_HELP },
	{ "test-rules",
	  "test-rules [-c FILE] [--rules PATH] [--rule NAME] [--all] [--missed[=N]] "
	  "[--width N] LOG|LINE",
	  "what the rules make of a log, or of one line",
	  "Like fail2ban-regex: run the rules over a log (plain or compressed) and\n"
	  "show, per rule, the lines matched with a few samples: each sample is the\n"
	  "line, cut to the width, then its time and its captures.  An argument\n"
	  "that is not a file but a log line is tested directly.  Touches no\n"
	  "database.\n"
	  "\n"
	  "options:\n"
	  OPT_CONFIG
	  "  -r, --rules PATH   a rules file or directory instead of the configured\n"
	  "                     rules (errors as file:line: message, exit 2)\n"
	  "  --rule NAME        test this rule alone\n"
	  "  -a, --all          show every match, in log order, not only samples\n"
	  "  -m, --missed[=N]   print the lines no rule matched, whole (the first N);\n"
	  "                     also --missed N\n"
	  "  -w, --width N      cut shown lines to N columns (0: never); default:\n"
	  "                     the terminal's width, or 120 if not a terminal\n"
	  OPT_HELP },
	{ "check-config",
	  "check-config [-c FILE]",
	  "parse everything, print every error",
	  "Parse the configuration, rules and jails as the daemon would; print each\n"
	  "error as file:line: message and exit 2 if there is any.  Warns when\n"
	  "Postfix could not read a map the jails write.\n"
	  "\n"
	  "options:\n"
	  OPT_CONFIG OPT_HELP },
	{ "status",
	  "status [-c FILE] [--db PATH]",
	  "jails, events of the last hour, log positions",
	  "Per jail the keys tracked and the bans in force, the events of the last\n"
	  "hour, the saved log positions and journal cursors, and whether the\n"
	  "daemon runs.\n"
	  "\n"
	  "options:\n"
	  OPT_CONFIG OPT_DB OPT_HELP },
	{ "bans",
	  "bans [--jail J] [--all] [--json] [-c FILE] [--db PATH]",
	  "bans and holds in force (or all) as a table",
	  "The bans and holds in force, newest first, as an aligned table.\n"
	  "\n"
	  "options:\n"
	  "  --jail J           only those of jail J\n"
	  "  --all              every ban and hold ever made, not only those in force\n"
	  "  --json             a JSON array instead of the table\n"
	  OPT_CONFIG OPT_DB OPT_HELP },
	{ "history",
	  "history TARGET [--json] [-c FILE] [--db PATH]",
	  "every ban or hold of an address or account",
	  "Every ban and hold of TARGET (an address, prefix or account), newest\n"
	  "first, with its reason.  \"mailjail explain\" shows the evidence.\n"
	  "\n"
	  "options:\n"
	  "  --json             a JSON array instead of the table\n"
	  OPT_CONFIG OPT_DB OPT_HELP },
	{ "explain",
	  "explain TARGET [--json] [-c FILE] [--db PATH]",
	  "why TARGET was banned or held: the events that made it",
	  "For each ban and hold of TARGET, the events that made it, as the\n"
	  "database keeps them: their times and rules, and for an account the\n"
	  "client addresses and recipient counts of its messages; for a recidive\n"
	  "ban, the earlier bans it counted.  Events are kept for the longest jail\n"
	  "window and never less than 2 days: the evidence of an older ban is gone\n"
	  "(said so), its reason stays.\n"
	  "\n"
	  "options:\n"
	  "  --json             JSON instead of text\n"
	  OPT_CONFIG OPT_DB OPT_HELP },
	{ "ban",
	  "ban IP[/LEN] [--jail J] [--for DURATION] [--dry-run] [-c FILE] [--db PATH]",
	  "ban an address or prefix by hand",
	  "Ban an address or prefix by hand: the database and nftables together.\n"
	  "Without --jail the built-in jail \"manual\" (1h, escalating on its own\n"
	  "history).\n"
	  "\n"
	  "options:\n"
	  OPT_BY_HAND
	  OPT_CONFIG OPT_DB OPT_HELP },
	{ "unban",
	  "unban IP[/LEN] [--dry-run] [-c FILE] [--db PATH]",
	  "lift the bans of an address",
	  "Lift the bans in force of an address or prefix, in the database and\n"
	  "nftables; exit 1 if it is not banned.\n"
	  "\n"
	  "options:\n"
	  "  --dry-run          record it, touch neither nftables nor the maps\n"
	  OPT_CONFIG OPT_DB OPT_HELP },
	{ "hold",
	  "hold ACCOUNT [--jail J] [--for DURATION] [--dry-run] [-c FILE] [--db PATH]",
	  "put an account on hold by hand",
	  "Put an account on the Postfix HOLD map by hand: its new mail waits in\n"
	  "the hold queue.  Without --jail the built-in jail \"manual\" (1d).\n"
	  "\n"
	  "options:\n"
	  OPT_BY_HAND
	  OPT_CONFIG OPT_DB OPT_HELP },
	{ "release",
	  "release ACCOUNT [--requeue] [--dry-run] [-c FILE] [--db PATH]",
	  "take an account off hold",
	  "Take an account off the HOLD map (exit 1 if it is not on hold, unless\n"
	  "--requeue).\n"
	  "\n"
	  "options:\n"
	  "  --requeue          also release its mail from Postfix's hold queue\n"
	  "                     (postsuper -H, found by the queue ids the log showed)\n"
	  "                     and deliver it now\n"
	  "  --dry-run          record it, touch neither the map nor the queue\n"
	  OPT_CONFIG OPT_DB OPT_HELP },
	{ "metrics",
	  "metrics [-c FILE] [--db PATH]",
	  "the Prometheus metrics, once",
	  "Print the Prometheus metrics (text exposition 0.0.4) once: the daemon's\n"
	  "counters as it last saved them (every 10 seconds and at stop), the\n"
	  "gauges read now.  The same families as [metrics] textfile and /metrics.\n"
	  "\n"
	  "options:\n"
	  OPT_CONFIG OPT_DB OPT_HELP },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

const struct cmdhelp *
cmdhelp_find(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

const struct cmdhelp *
cmdhelp_all(size_t *n)
{
	*n = NCOMMANDS;
	return commands;
}

bool
cmdhelp_asked(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return false;
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
			return true;
	}
	return false;
}

void
cmdhelp_print(const struct cmdhelp *h, FILE *fp)
{
	fprintf(fp, "usage: mailjail %s\n\n%s", h->synopsis, h->text);
}

void
cmdhelp_print_main(FILE *fp)
{
	fputs("usage: mailjail COMMAND [OPTIONS]\n"
	    "       mailjail --version | -V | --help | -h\n"
	    "\n"
	    "Follows Postfix's mail log, counts SASL failures per IP and mail per\n"
	    "account in SQLite, and bans IPs in nftables or puts accounts on HOLD.\n"
	    "\n"
	    "commands:\n", fp);
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(fp, "  %-13s %s\n", commands[i].name, commands[i].summary);
	fputs("\n"
	    "\"mailjail COMMAND --help\" tells a command's options; \"man mailjail\"\n"
	    "tells all.  -c FILE defaults to /etc/mailjail/mailjail.conf.\n"
	    "Exit status: 0 success, 1 runtime failure, 2 bad usage or configuration.\n"
	    "\n"
	    "-V, --version prints \"mailjail VERSION\".  This is mailjail "
	    MAILJAIL_VERSION ".\n", fp);
}

int
cmdhelp_usage_error(const char *name)
{
	const struct cmdhelp *h = cmdhelp_find(name);

	if (h != NULL)
		fprintf(stderr, "usage: mailjail %s\n(mailjail %s --help tells more)\n",
		    h->synopsis, name);
	return EXIT_USAGE;
}
