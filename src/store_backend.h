/*
 * store_backend - what a store backend provides (internal to the store:
 * store.c, store_sqlite.c, store_pgsql.c, and store_util.c, the helpers
 * both backends share; nothing else includes this).
 *
 * The store is a table of backends chosen by the `db` value, the way
 * enforce.c chooses by action (OpenBSD smtpd's queue backends are the
 * model): store.c picks one at store_open() and forwards every store.h call
 * to it.  Each operation is the store.h function of the same name, with the
 * backend's own state (be) in place of the struct store; the contracts are
 * the ones store.h states.  Every operation must be set, except those
 * marked "may be NULL": a backend that is one node (SQLite) leaves the
 * fleet ones unset and store.c answers for it (no node, no news).
 *
 * Memory: open() allocates the backend's state; close() frees it.  struct
 * store (store.c) owns only the pointer.
 */
#ifndef MAILJAIL_STORE_BACKEND_H
#define MAILJAIL_STORE_BACKEND_H

#include "store.h"

struct store_backend {
	const char *name;
	/* Does this backend take this `db` value?  The last backend of the
	 * table takes anything (a SQLite path). */
	bool (*takes)(const char *db);

	int (*open)(const char *db, bool create, void **be, char *err, size_t errlen);
	void (*close)(void *be);
	int (*check_file)(const void *be, char *err, size_t errlen);
	const char *(*errmsg)(const void *be);
	bool (*error_is_transient)(const void *be);
	void (*clear_error)(void *be);
	void (*set_stop_flag)(void *be, const volatile sig_atomic_t *flag);
	const char *(*path)(const void *be);
	const char *(*file)(const void *be);
	bool (*created)(const void *be);
	uint64_t (*round_trips)(const void *be);               /* may be NULL */

	int (*begin)(void *be);
	int (*commit)(void *be);
	int (*rollback)(void *be);
	bool (*in_transaction)(const void *be);

	int (*add_event)(void *be, const struct event *ev);
	int (*count_event)(void *be, const struct event *ev);
	int (*add_ban)(void *be, const struct verdict *v, int64_t *id);
	/* may be NULL: add_ban for each */
	int (*add_bans)(void *be, const struct verdict *v, size_t n, int *outcome,
	    int64_t *id);
	int (*lift_bans)(void *be, const char *jail, const char *target, int64_t now);

	int (*get_position)(void *be, const char *path, struct log_position *out);
	int (*save_position)(void *be, const struct log_position *pos);
	int (*get_cursor)(void *be, const char *source, char **out);
	int (*save_cursor)(void *be, const char *source, const char *cursor);
	int (*each_cursor)(void *be, store_cursor_cb cb, void *arg);

	int (*each_event_since)(void *be, int64_t since, store_event_cb cb, void *arg);
	int (*each_ban_since)(void *be, int64_t since, store_ban_cb cb, void *arg);
	int (*each_active_ban)(void *be, int64_t now, store_ban_cb cb, void *arg);
	int (*each_ban)(void *be, const struct ban_filter *f, store_ban_cb cb, void *arg);
	int (*event_counts_since)(void *be, int64_t since, store_count_cb cb, void *arg);
	int (*each_position)(void *be, store_position_cb cb, void *arg);
	int (*account_qids)(void *be, const char *account, char (*qids)[MJ_QID_MAX],
	    size_t max);
	int (*newest_time)(void *be, int64_t *out);
	int (*purge_events)(void *be, int64_t before);
	int (*each_event_about)(void *be, const struct event_about *about,
	    store_event_cb cb, void *arg);

	/*
	 * Operator signals (notify.h, metrics.h; SQLite: schemas/004-signals.sql,
	 * PostgreSQL: schemas/pg/002-signals.sql).  The outbox is a table of
	 * notifications; a row is open until every channel it was queued for
	 * is delivered (sent_at set) or it is given up (gave_up_at set).  In a
	 * fleet each node delivers the rows it queued (node = its own name:
	 * the node whose verdict or command it tells of), so none is sent
	 * twice by two nodes.  Strings given are the caller's, valid during
	 * the call; strings passed to callbacks are valid during the callback.
	 */
	/* Insert n, inside the open transaction when there is one (the
	 * verdict's: the row commits or rolls back with it).  n->id, done and
	 * attempts are ignored: a new row has done 0, attempts 0, due_at =
	 * created_at; ban_id 0 and an empty evidence_key are stored as NULL.
	 * *id (may be NULL) gets the new row's id. */
	int (*queue_notification)(void *be, const struct stored_notification *n,
	    int64_t *id);
	/* The open rows (a fleet: this node's), by id ascending, at most max;
	 * every field set.  Stops at and returns the first non-zero callback
	 * result; -1 on error. */
	int (*each_open_notification)(void *be, size_t max, store_notification_cb cb,
	    void *arg);
	/* How many rows are open (a fleet: this node's). */
	int (*count_open_notifications)(void *be, int64_t *out);
	/* done |= channel on row id; if then (done & all) == all, sent_at = now
	 * (it is no longer open).  No transaction needed: one statement. */
	int (*notification_delivered)(void *be, int64_t id, unsigned channel,
	    unsigned all, int64_t now);
	/* attempts + 1, due_at = due_at, last_error = error (NULL or "": none). */
	int (*notification_retry)(void *be, int64_t id, int64_t due_at, const char *error);
	/* attempts + 1, gave_up_at = now, last_error = error. */
	int (*notification_gave_up)(void *be, int64_t id, int64_t now, const char *error);
	/* The submission events (event "submission") with time in (since,
	 * until] whose key is target: key "account", the event's account;
	 * "sender", the envelope sender of the "queued" event with the same
	 * qid; "domain", either of those ending in "@target" (case-folded).
	 * Per client ip: how many, and the recipients (sum of the queued
	 * events' nrcpt).  *out: the totals, the number of distinct ips, the
	 * busiest STORE_EVIDENCE_TOP ips (most first, then by ip), recipients
	 * -1 if no queued event was found for any.  Events added in the open
	 * transaction and not yet written count too.  A fleet: the events of
	 * every node (the jails count them all), a queued line joined on its
	 * node and qid (queue ids are unique per host only). */
	int (*submission_evidence)(void *be, const char *key, const char *target,
	    int64_t since, int64_t until, struct store_evidence *out);
	/* Per (jail, target_kind), by jail then kind: the bans not lifted with
	 * expires_at > now (the active_bans view's rows, with the caller's
	 * clock; a fleet: every node's, as every node enforces them).
	 * Callback as each_open_notification. */
	int (*count_active)(void *be, int64_t now, store_active_cb cb, void *arg);
	/* The saved counters of node (name, labels: the exposition's label text,
	 * value), by name then labels.  Callback as each_open_notification. */
	int (*each_counter)(void *be, const char *node, store_counter_cb cb, void *arg);
	/* Set (insert or replace) the counter (node, name, labels) to value;
	 * called between begin and commit, once per counter. */
	int (*save_counter)(void *be, const char *node, const char *name,
	    const char *labels, double value);

	/* The fleet: may be NULL (one node). */
	int (*set_node)(void *be, const char *node);
	int (*claim_node)(void *be, char *err, size_t errlen);
	int (*fd)(const void *be);
	int (*fleet_wake)(void *be);
	int (*fleet_poll)(void *be, store_ban_cb ban_cb, store_event_cb event_cb, void *arg);
	int (*each_node)(void *be, store_node_cb cb, void *arg);
};

/* The front's handle: which backend, and its state. */
struct store {
	const struct store_backend *ops;
	void *be;
};

extern const struct store_backend store_backend_sqlite;
extern const struct store_backend store_backend_pgsql;

/*
 * What both backends do alike that is no database's business
 * (store_util.c).
 */

/* "nft,hold": the actions column's text of ACTION_* bits, into buf */
const char *store_actions_text(unsigned actions, char *buf, size_t len);
/* The ACTION_* bits of an actions column (NULL: none). */
unsigned store_actions_parse(const char *s);
/* Unix seconds to minutes (event_counts.minute), rounding down. */
int64_t store_minute_of(int64_t t);

/* Every event adds 1 to its (minute, rule) row of event_counts.  The open
 * transaction's counts are summed here and written by the backend (a batch
 * of 20,000 lines spans about an hour of log, ~600 rows).  A slot is free
 * when n is 0; rule and event are borrowed, like a buffered row's. */
#define STORE_COUNT_SLOTS 1024   /* a power of two; written out when 3/4 full */
struct store_count_slot {
	int64_t minute;
	const char *rule, *event;
	uint32_t n;
};
struct store_counts {
	struct store_count_slot slot[STORE_COUNT_SLOTS];
	size_t n;                    /* slots in use */
};
/* 1 for ev's (minute, rule); true when the table is 3/4 full: time for the
 * backend to write it out (and clear it). */
bool store_counts_add(struct store_counts *c, const struct event *ev);
void store_counts_clear(struct store_counts *c);

/* One row of the evidence query (one client address: ip, iplen bytes, not
 * NUL-terminated; its submissions; the recipients of those whose queued
 * line was kept, and how many were) into out's totals; *rcpt_known is set
 * if any queued line was.  An address too long for top[] is counted but
 * not listed.  The caller zeroes out first and sets recipients to -1 at the
 * end if *rcpt_known stayed false. */
void store_evidence_add(struct store_evidence *out, bool *rcpt_known, const char *ip,
    size_t iplen, int64_t submissions, int64_t recipients, int64_t queued);

#endif
