/*
 * holdmap - the Postfix access maps mailjail writes and Postfix reads:
 *   HOLD map   accounts (SASL login names) -> "HOLD ...", for
 *              smtpd_*_restrictions = check_sasl_access <map>
 *   reject map client IPs -> "450 4.7.1 ...", for check_client_access <map>
 *
 * Two kinds of map:
 *   sqlite:/path/x.db  a small SQLite file of its own, rollback-journal mode
 *                      (not WAL: Postfix reads it as user postfix and a WAL
 *                      reader needs write access), mode 0644.  Postfix sees
 *                      a change on its next lookup, no reload.  A ready
 *                      Postfix sqlite_table(5) file is written next to it
 *                      (postfix-hold.cf / postfix-reject.cf); its query also
 *                      checks expiry, so an entry stops matching at its
 *                      expiry time even if mailjail is not running.
 *   hash:/path/x       a text file "key value" per line written atomically
 *                      (temp + fsync + rename) and compiled with postmap(1);
 *                      expiry times live in a sidecar "/path/x.expires"
 *                      ("key epoch" per line, written the same way), since a
 *                      hash: map cannot filter by time.  Changes are made in
 *                      memory and reach Postfix at holdmap_sync().
 *   texthash: is refused (it needs a Postfix reload to notice changes).
 *
 * Keys are exactly what Postfix logs; they go into SQLite only as bound
 * parameters (Postfix quotes lookup keys itself with %s), and into hash maps
 * only if they contain no whitespace, control characters or quotes (refused
 * otherwise: such a key could add a second entry).  Postfix folds lookup
 * keys to lower case, so keys are stored folded (ASCII only).
 *
 * Files: holdmap.c is the front (chooses the backend by the spec's type,
 * checks keys and values), holdmap_sqlite.c and holdmap_hash.c the two
 * backends (their shared interface: holdmap_impl.h; shared helpers:
 * holdmap_util.c), holdqueue.c the release of held mail (at the end here).
 *
 * Memory: struct holdmap owns its DB handle, paths and (for hash:) the
 * in-memory entry list.
 */
#ifndef MAILJAIL_HOLDMAP_H
#define MAILJAIL_HOLDMAP_H

#include <stddef.h>
#include <stdint.h>

enum holdmap_kind {
	HOLDMAP_HOLD,              /* accounts, check_sasl_access */
	HOLDMAP_REJECT,            /* client IPs, check_client_access */
};

struct holdmap;

/* spec: "sqlite:/abs/path.db" or "hash:/abs/path".  postfix_config_dir may be
 * NULL (MAIL_CONFIG or Postfix's default).  Creates the map (and the .cf
 * file for sqlite:) if missing. */
int holdmap_open(struct holdmap **out, const char *spec, enum holdmap_kind kind,
    const char *postfix_config_dir, char *err, size_t errlen);
void holdmap_close(struct holdmap *m);

/* Add or replace an entry until expires_at (Unix seconds).  value is the
 * access(5) action, e.g. "HOLD mailjail: over quota" or "450 4.7.1 ...".
 * Returns 0, or -1 if the key was refused or writing failed. */
int holdmap_add(struct holdmap *m, const char *key, const char *value,
    int64_t expires_at);
/* Remove an entry; 1 removed, 0 was not there, -1 error. */
int holdmap_remove(struct holdmap *m, const char *key);
/* Remove entries whose time is over; returns how many, or -1. */
int holdmap_expire(struct holdmap *m, int64_t now);
/* Make pending changes visible to Postfix (hash: rewrite + postmap). */
int holdmap_sync(struct holdmap *m);

/* The files the map writes (the .db, the .cf; hash: the text, its .db and
 * the expiry sidecar), for giving them to the user the daemon drops to.
 * The strings are m's.  Returns how many. */
#define HOLDMAP_FILES_MAX 3
size_t holdmap_files(const struct holdmap *m, const char *out[HOLDMAP_FILES_MAX]);

/* Can Postfix read the map?  Checks that the file (and .cf) exist and are
 * readable by user "postfix" (permissions of the file and of each directory
 * on the way).  0 yes; -1 with the reason in err. */
int holdmap_check_readable(const char *spec, enum holdmap_kind kind, char *err,
    size_t errlen);

/* The main.cf fragment naming this map (e.g. "sqlite:/var/lib/mailjail/
 * postfix-hold.cf" or "hash:/etc/postfix/mailjail_hold") into buf. */
const char *holdmap_postfix_name(const char *spec, enum holdmap_kind kind,
    char *buf, size_t len);

/* Release held mail: messages in Postfix's "hold" queue whose queue id is
 * one of qids, or whose envelope sender equals sender (if not NULL), are
 * moved back with "postsuper -H -" and delivered now with "postqueue -i".
 * Runs the Postfix commands with fork/execv (no shell), with "-c dir" when
 * postfix_config_dir is not NULL.  *released gets the number of messages.
 * 0 ok, -1 error (logged). */
int holdmap_release_queue(const char *postfix_config_dir,
    const char *const *qids, size_t nqids, const char *sender, int *released);

/* Parse one line of "postqueue -j" output (one JSON object) and copy its
 * string fields "queue_name", "queue_id" and "sender" (JSON escapes
 * decoded; "" when absent).  0 ok, -1 malformed (also: not UTF-8, a member
 * named twice, one of the three not a string), a field too long or
 * containing NUL; the three are "" after -1.  Exposed for tests. */
int holdmap_parse_queue_line(const char *line, char *queue_name,
    size_t qnlen, char *queue_id, size_t qilen, char *sender, size_t slen);

#endif
