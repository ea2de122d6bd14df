/*
 * cli - the subcommands.  Each takes the arguments after its name (argv[0]
 * is the subcommand) and returns the process exit status: 0 success,
 * 1 runtime failure, 2 bad usage or configuration (DESIGN.md).
 */
#ifndef MAILJAIL_CLI_H
#define MAILJAIL_CLI_H

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

int cli_replay(int argc, char **argv);
int cli_test_rules(int argc, char **argv);   /* ruletest.c */
int cli_check_config(int argc, char **argv);
int cli_run(int argc, char **argv);
int cli_ban(int argc, char **argv);
int cli_unban(int argc, char **argv);
int cli_hold(int argc, char **argv);
int cli_release(int argc, char **argv);
int cli_status(int argc, char **argv);
int cli_bans(int argc, char **argv);
int cli_history(int argc, char **argv);
int cli_metrics(int argc, char **argv);   /* ops.c */
int cli_explain(int argc, char **argv);   /* explain.c */

#endif
