/*
 * cfgfile - INI files (mailjail.conf, rules/NAME.rules, jails/NAME.jail) through
 * inih, with the line number of every key, and a list of "file:line: message"
 * diagnostics.
 *
 * inih's handler is not told the line it is on, so cfgfile feeds inih through
 * its own reader and counts lines itself.  Values may be long (PCRE2 patterns):
 * the line buffer grows on the heap.  Inline comments are off, so a ';' in a
 * pattern stays in the pattern; a comment is a line of its own starting with
 * '#' or ';'.
 *
 * Memory: a struct diag owns its messages; diag_free() releases them.
 * Directory loads visit "NAME.SUFFIX" files in name order.
 *
 * SECURITY: what root reads must be root's.  Every file parsed here (the
 * config, each rules and jails file) must be owned by root or by the user
 * running the command and writable by neither group nor others, and so
 * must the directory holding it (by the name given and, past a symbolic
 * link, by its real name) and a directory of rules or jails itself; a
 * directory with the sticky bit (/tmp) may be writable by others, since
 * nobody else can replace the files in it.  Anything else is refused with
 * one "path: ..." diag, and the load fails (exit 2 for the commands).  A
 * program the configuration names (the notification hook) is held to the
 * same rule (cfgfile_check_trusted): whoever could change it would run
 * code as the daemon's user.
 */
#ifndef MAILJAIL_CFGFILE_H
#define MAILJAIL_CFGFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"

struct diag {
	char **msgs;    /* each "file:line: message" */
	size_t n, cap;
};

void diag_init(struct diag *d);
void diag_free(struct diag *d);
/* line 0 means "the file as a whole" and prints as "file: message" */
void diag_add(struct diag *d, const char *file, int line, const char *fmt, ...)
    MJ_PRINTF(4, 5);
void diag_print(const struct diag *d);   /* one per line on stderr */

/*
 * Called once per key.  section_line is the line of the "[section]" header,
 * line the line of the key.  Return 0 on success; a non-zero return is not
 * treated as an error by cfgfile: the handler reports its own diag.
 */
typedef int (*cfgfile_handler)(void *arg, const char *file, const char *section,
    int section_line, const char *key, const char *value, int line);

/* Parse one INI file.  Syntax errors become diags.  Returns 0, or -1 if the file
 * could not be read or had syntax errors. */
int cfgfile_parse(const char *path, cfgfile_handler h, void *arg, struct diag *d);

/* The same trust for a file the configuration names and the daemon runs
 * ([notify] command): a regular file, root's or the caller's, writable by
 * neither group nor others, in a directory as trusted.  Returns 0, or -1
 * with one "path: ..." diag. */
int cfgfile_check_trusted(const char *path, struct diag *d);

/* Parse path: a directory (every *.suffix inside, sorted) or one file.
 * Returns 0, or -1 if anything failed (diags say what). */
int cfgfile_parse_path(const char *path, const char *suffix, cfgfile_handler h,
    void *arg, struct diag *d);

/* "30s 10m 1h 1d 1w" (a bare number is seconds).  Returns 0 or -1. */
int cfg_parse_duration(const char *s, int64_t *secs);
/* Non-negative decimal integer.  Returns 0 or -1. */
int cfg_parse_uint(const char *s, uint64_t max, uint64_t *out);
/* Resolve path relative to the directory of base (if path is relative); the
 * result is malloc'd. */
char *cfg_resolve_path(const char *base, const char *path);
/* Format a duration the way it is written ("1h", "90m", "2d"); buf >= 24. */
const char *cfg_format_duration(int64_t secs, char *buf, size_t len);

#endif
