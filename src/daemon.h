/*
 * daemon - "mailjail run": the event loop.  Follows the configured logs,
 * commits one batch per burst of lines, re-applies active bans on start and
 * whenever the nftables table vanished (a firewall reload), reloads on
 * SIGHUP (a bad new configuration is refused and the old one keeps running),
 * stops on SIGTERM/SIGINT after committing the current batch, reopens its
 * log file on SIGUSR1.  Between batches it delivers the notifications the
 * batches queued (notify.h) and writes or serves the metrics (exporter.h).
 */
#ifndef MAILJAIL_DAEMON_H
#define MAILJAIL_DAEMON_H

#include <stdbool.h>

struct daemon_options {
	const char *cfgpath;       /* NULL: the default */
	const char *db;            /* NULL: the config's */
	bool dry_run;              /* decide and record, enforce nothing */
	bool syslog;               /* log to syslog instead of stderr */
	const char *log_file;      /* log to this file (SIGUSR1 reopens it) */
};

/* Returns the exit status. */
int daemon_run(const struct daemon_options *o);

#endif
