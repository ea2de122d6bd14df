/*
 * log - diagnostics to stderr or syslog.  See log.h.
 */
#include "log.h"

#include <errno.h>
#include <unistd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "safefile.h"

static const char *log_progname = "mailjail";
static bool log_verbose;
static bool log_syslog;
static bool log_quiet;
static char log_path[4096];

/*
 * open_log_file - point stderr at log_path.  Whoever runs this (root at
 * start), the name is not followed if it is a symbolic link and must be a
 * regular file of one link (safefile.h): it may sit in a directory the
 * daemon's run user writes.
 */
static int
open_log_file(bool *created)
{
	char err[600];
	int fd;

	if (log_path[0] == '\0')
		return 0;
	if ((fd = safefile_open_append(log_path, 0640, created, err, sizeof(err))) < 0) {
		log_warnx("cannot open log file %s", err);
		return -1;
	}
	if (dup2(fd, STDERR_FILENO) < 0) {
		log_warn("log file %s", log_path);
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

void
log_init(const char *progname, bool verbose)
{
	log_progname = progname;
	log_verbose = verbose;
}

void
log_use_syslog(bool on)
{
	if (on && !log_syslog)
		openlog(log_progname, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	else if (!on && log_syslog)
		closelog();
	log_syslog = on;
}

void
log_set_quiet(bool quiet)
{
	log_quiet = quiet;
}

/* vlog - one line, with an optional errno text; never allocates */
static void
vlog(int prio, int errnum, const char *fmt, va_list ap)
{
	char msg[1024];
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);

	if (n < 0)
		return;
	if (errnum != 0 && (size_t)n < sizeof(msg))
		snprintf(msg + n, sizeof(msg) - (size_t)n, ": %s", strerror(errnum));
	if (log_syslog)
		syslog(prio, "%s", msg);
	else
		fprintf(stderr, "%s: %s\n", log_progname, msg);
}

int
log_set_file(const char *path, bool *created)
{
	snprintf(log_path, sizeof(log_path), "%s", path);
	return open_log_file(created);
}

int
log_reopen(void)
{
	return open_log_file(NULL);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	if (log_quiet)
		return;
	va_start(ap, fmt);
	vlog(LOG_INFO, 0, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	if (!log_verbose || log_quiet)
		return;
	va_start(ap, fmt);
	vlog(LOG_DEBUG, 0, fmt, ap);
	va_end(ap);
}

void
log_warn(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_WARNING, saved, fmt, ap);
	va_end(ap);
	errno = saved;
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_WARNING, 0, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_CRIT, saved, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_CRIT, 0, fmt, ap);
	va_end(ap);
	exit(1);
}
