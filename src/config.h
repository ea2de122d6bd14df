/*
 * config - mailjail.conf: where the logs, DB, rules and jails are, and the
 * settings of the enforcement backends.  Keys are declared in one table
 * (name, default, parser), Postfix-style, so each is checked the same way.
 * Relative paths are resolved against the directory of the config file.
 *
 * "auto" in [mailjail] log (the default) is resolved when the file is
 * loaded: log_auto_file (default /var/log/mail.log, where rsyslog writes
 * Postfix's lines) if it exists, else the journal source log_auto_journal
 * (default journal:postfix@-.service, Postfix's unit on a Debian 12 with
 * journald only).  logs[] then holds the choice, so everything that reads
 * the logs sees a plain file or journal source; log_auto says which item it
 * was, for the start-up message and for the daemon, which must not count a
 * line twice when the choice changes between starts (daemon.c).
 *
 * Memory: struct config owns every string in it; config_free() releases.
 */
#ifndef MAILJAIL_CONFIG_H
#define MAILJAIL_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "cfgfile.h"
#include "nft.h"

#define CONFIG_DEFAULT_PATH "/etc/mailjail/mailjail.conf"
#define CONFIG_LOGS_MAX 16
#define CONFIG_LOG_AUTO "auto"
#define CONFIG_NODE_MAX 63
#define NOTIFY_MAILTO_MAX 8

/* [notify]: who hears of bans and holds, and how (notify.h). */
struct notify_config {
	char *mailto[NOTIFY_MAILTO_MAX];   /* checked local@domain addresses */
	size_t nmailto;
	char *from;                  /* NULL: mailjail@ the node's name */
	char *smtp;                  /* host:port of the local Postfix */
	char *command;               /* an executable file, or NULL */
	char *node;                  /* this host's name: a copy of config's node */
	int64_t digest;              /* seconds: the longest a digest waits */
	int64_t timeout;             /* seconds a delivery may take */
};

/* [metrics]: where the exposition goes (metrics.h). */
struct metrics_config {
	char *textfile;              /* node_exporter textfile, or NULL */
	char *listen;                /* "IP:PORT" for /metrics over HTTP, or NULL */
};

struct config {
	char *path;                  /* the file read */
	char *logs[CONFIG_LOGS_MAX];
	size_t nlogs;
	int log_auto;                /* index in logs of what "auto" chose; -1: none */
	char *log_auto_file;         /* "auto": this file if it exists, */
	char *log_auto_journal;      /* else this journal source */
	char *db;                    /* a path, or a URI (postgresql://...) */
	char *node;                  /* this host's name in a fleet, in notifications
	                              * and saved metric counters */
	char *rules;
	char *jails;
	char *nft_table, *nft_set_v4, *nft_set_v6, *nft_chain;
	uint16_t nft_ports[NFT_PORTS_MAX];
	size_t nft_nports;           /* 0: all */
	char *hold_map;              /* "sqlite:/path" or "hash:/path" */
	char *reject_map;
	char *postfix_config_dir;    /* NULL: Postfix's default / MAIL_CONFIG */
	char *journal_dir;           /* NULL: the system journal (journal.h) */
	char *user;                  /* unprivileged user for run */
	uint64_t batch_lines;        /* lines per transaction */
	struct notify_config notify;
	struct metrics_config metrics;
};

/* Load path; a missing key keeps its default.  Returns 0, or -1 with diags. */
int config_load(const char *path, struct config *cfg, struct diag *d);
/* Defaults only (no file). */
int config_defaults(struct config *cfg);
void config_free(struct config *cfg);
/* If the logs came from "auto": what it chose and why, one line for
 * people ("log = auto: ..."), into buf; returns 1.  Otherwise 0. */
int config_describe_log_auto(const struct config *cfg, char *buf, size_t len);
/* nft options view of the config (pointers into cfg). */
void config_nft_options(const struct config *cfg, struct nft_options *o);

#endif
