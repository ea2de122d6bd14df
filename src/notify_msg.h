/*
 * notify_msg - what a notification says, from outbox rows: the plain-text
 * mail a person reads (what happened, the jail, the level, until when, the
 * evidence, the exact command to undo it), the JSON document and the
 * MAILJAIL_* environment of the admin's command.  Pure functions: no I/O.
 *
 * Every field of a row may come from a log line (a target, a reason): in
 * the mail it is kept off the headers' line structure (control characters
 * become '?', non-ASCII too in the Subject), in a suggested command it is
 * shell-quoted, in JSON it is escaped by jansson (and text that is not
 * UTF-8 gets U+FFFD for each byte outside ASCII: jsontext.h).
 *
 * Memory: struct notice owns its strings (notice_free); the texts returned
 * are malloc'd and the caller's.
 */
#ifndef MAILJAIL_NOTIFY_MSG_H
#define MAILJAIL_NOTIFY_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* One outbox row, copied, with the evidence found for it. */
struct notice {
	int64_t id;
	char *event, *jail, *target, *target_kind, *reason, *node, *evidence_key;
	bool digest;
	int64_t ban_id, evidence_window;
	int level;
	int64_t started_at, expires_at, created_at, due_at;
	unsigned done;
	int attempts;
	bool have_evidence;
	struct store_evidence ev;
};

int notice_copy(struct notice *dst, const struct stored_notification *src);
void notice_free(struct notice *n);

/* What the messages need besides the rows. */
struct notify_msg_opts {
	const char *node;          /* this host */
	const char *from;          /* the mail's From */
	const char *const *to;
	size_t nto;
	const char *cfgpath;       /* named with -c in commands, unless the default */
	int64_t now;               /* the Date */
};

/* The mail: headers and body, CRLF line ends.  One notice, or (digest) a
 * summary of n.  NULL: no memory. */
char *notify_mail(const struct notice *v, size_t n, bool digest,
    const struct notify_msg_opts *o, size_t *len);
/* The JSON: an object (one notice), or an array (digest).  NULL: no memory. */
char *notify_json(const struct notice *v, size_t n, bool digest, size_t *len);
/* The environment: MAILJAIL_* (DESIGN.md) plus MAILJAIL_ID and
 * MAILJAIL_COUNT, after base's entries (those named MAILJAIL_*, and
 * systemd's NOTIFY_SOCKET, WATCHDOG_* and LISTEN_*, left out).
 * A NULL-terminated array, each string and the array malloc'd
 * (notify_env_free).  NULL: no memory. */
char **notify_env(const struct notice *v, size_t n, bool digest, const char *node,
    char *const *base);
void notify_env_free(char **env);

/* t as 2025-01-31T12:00:00Z. */
void notify_iso_time(int64_t t, char *buf, size_t len);
/* s for a shell: as is if only [A-Za-z0-9@%+=:,./_-], else single-quoted. */
void notify_sh_quote(const char *s, char *buf, size_t len);

#endif
