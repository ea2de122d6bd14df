/*
 * main - mailjail's one binary: pick the subcommand, print help or the
 * version (meson's project version, from the generated mailjail_version.h).
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cmdhelp.h"
#include "log.h"
#include "mailjail_version.h"

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
	{ "explain", cli_explain },
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
		cmdhelp_print_main(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		/* "mailjail help CMD" as well as "mailjail CMD --help" */
		const struct cmdhelp *h = argc > 2 ? cmdhelp_find(argv[2]) : NULL;
		if (h != NULL)
			cmdhelp_print(h, stdout);
		else
			cmdhelp_print_main(stdout);
		return 0;
	}
	if (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0) {
		printf("mailjail %s\n", MAILJAIL_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[1], commands[i].name) != 0)
			continue;
		/* Asked anywhere on the line, help wins over running. */
		if (cmdhelp_asked(argc - 1, argv + 1) && cmdhelp_find(argv[1]) != NULL) {
			cmdhelp_print(cmdhelp_find(argv[1]), stdout);
			return 0;
		}
		return commands[i].fn(argc - 1, argv + 1);
	}
	fprintf(stderr, "mailjail: unknown command \"%s\" (see mailjail --help)\n", argv[1]);
	return EXIT_USAGE;
}
