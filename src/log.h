/*
 * log - diagnostics for the daemon and the command line tools.
 *
 * OpenBSD-style: log_warn appends strerror(errno), log_warnx does not;
 * fatal/fatalx print and exit(1) and are for start-up only.  Messages go to
 * stderr (journald picks them up) or to syslog after log_use_syslog().
 * Nothing here allocates; messages longer than 1 KiB are truncated.
 */
#ifndef MAILJAIL_LOG_H
#define MAILJAIL_LOG_H

#include <stdbool.h>

#define MJ_PRINTF(a, b) __attribute__((format(printf, a, b)))

void log_init(const char *progname, bool verbose);
void log_use_syslog(bool on);
void log_set_quiet(bool quiet);   /* suppress info/debug (tests, replay) */
/* Log to a file instead of stderr (stderr itself is pointed at it, so
 * library messages land there too); log_reopen() after logrotate.  The
 * file is opened as safefile.h says (no symbolic link, a regular file of
 * one link); *created (may be NULL) says whether it was made now. */
int log_set_file(const char *path, bool *created);
int log_reopen(void);
void log_info(const char *fmt, ...) MJ_PRINTF(1, 2);
void log_debug(const char *fmt, ...) MJ_PRINTF(1, 2);
void log_warn(const char *fmt, ...) MJ_PRINTF(1, 2);
void log_warnx(const char *fmt, ...) MJ_PRINTF(1, 2);
_Noreturn void fatal(const char *fmt, ...) MJ_PRINTF(1, 2);
_Noreturn void fatalx(const char *fmt, ...) MJ_PRINTF(1, 2);

#endif
