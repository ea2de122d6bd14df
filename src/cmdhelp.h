/*
 * cmdhelp - what each subcommand is for and the options it takes, written
 * once: "mailjail --help", "mailjail CMD --help" (stdout, exit 0) and the
 * usage line a bad command line gets (stderr, exit 2) all print from here.
 * The options a help lists are the options the command accepts: a test runs
 * every one of them through the real binary, and checks the bash completion
 * (dist/mailjail.bash-completion) and the manual page offer the same.
 *
 * Memory: static text only.
 */
#ifndef MAILJAIL_CMDHELP_H
#define MAILJAIL_CMDHELP_H

#include <stdbool.h>
#include <stdio.h>

struct cmdhelp {
	const char *name;
	const char *synopsis;      /* after "mailjail " */
	const char *summary;       /* one line, for "mailjail --help" */
	const char *text;          /* what it does, then its options */
};

/* The entry for a subcommand, or NULL. */
const struct cmdhelp *cmdhelp_find(const char *name);
/* Every subcommand, in the order "mailjail --help" lists them. */
const struct cmdhelp *cmdhelp_all(size_t *n);

/* Whether args[0..n) ask for help (-h or --help before any "--"). */
bool cmdhelp_asked(int argc, char **argv);
/* "mailjail CMD --help": the whole entry. */
void cmdhelp_print(const struct cmdhelp *h, FILE *fp);
/* "mailjail --help" */
void cmdhelp_print_main(FILE *fp);
/* A bad command line: its usage line on stderr; returns 2 (EXIT_USAGE). */
int cmdhelp_usage_error(const char *name);

#endif
