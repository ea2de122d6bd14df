/*
 * store - the record of truth: events, per-minute counts, bans, log
 * positions and journal cursors, one transaction per batch, and the
 * history views.  The one interface the jails, pipeline, daemon and
 * commands use; which backend runs is chosen by the `db` value at
 * store_open() (store.c, store_backend.h):
 *
 *   a path                 SQLite, one file, one node (store_sqlite.c:
 *                          schemas/NNN-NAME.sql by PRAGMA user_version, WAL)
 *   postgresql://... or    PostgreSQL through libpq, shared by a fleet of
 *   postgres://...         nodes (store_pgsql.c: schemas/pg/, schema_version)
 *
 * Everything a batch of lines causes (event rows and per-minute event
 * counts, bans, the log positions or journal cursors after those lines)
 * is written between store_begin() and store_commit(), so a crash loses or
 * repeats nothing.  All SQL uses bound parameters.
 *
 * Fleet: with PostgreSQL every row names the node that wrote it (its
 * `[mailjail] node`), positions and cursors are per node, and
 * store_fleet_poll() hands a node what the others committed since it last
 * looked.  A SQLite file is one node: its fleet functions do nothing.
 *
 * Memory: struct store owns the connection and its statements.  Strings
 * passed to callbacks are valid during the call only.
 */
#ifndef MAILJAIL_STORE_H
#define MAILJAIL_STORE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "types.h"

struct store;

/* Open db (a SQLite path or a PostgreSQL URI), creating the file or the
 * tables if create is true, and migrate.  On failure returns -1 and a
 * one-line reason in err (a URI's password never appears in it). */
/* Is db (a `db` value) a file the store opens by name (SQLite), rather
 * than a server's URI?  Start-up checks and the hand-over of files ask. */
bool store_db_is_file(const char *db);
int store_open(const char *db, bool create, struct store **out, char *err,
    size_t errlen);
void store_close(struct store *st);
/* Is the file at the path still the one open?  0 yes; -1 if it was deleted
 * or replaced (what is written goes to a file nobody will open again), with
 * the reason in err. */
int store_check_file(const struct store *st, char *err, size_t errlen);
const char *store_errmsg(const struct store *st);
/* Whether the last failure (since store_begin or store_clear_error) may
 * clear by itself, so the work is worth trying again later: the disk or
 * quota full, the DB locked past the busy wait, an I/O error the OS calls
 * temporary.  False for the rest (corrupt, read-only, I/O error, constraint,
 * out of memory) and when no DB call failed.  See store.c for the list. */
bool store_error_is_transient(const struct store *st);
/* Forget the last failure: before work whose failure may not be the DB's. */
void store_clear_error(struct store *st);
/* While *flag (set by a signal handler; may be NULL) is non-zero, waiting
 * for a lock gives up at once: the statement fails with SQLITE_BUSY. */
void store_set_stop_flag(struct store *st, const volatile sig_atomic_t *flag);
/* What was opened, fit to print: the file, or the URI with its password
 * hidden (owned by the store, valid until store_close). */
const char *store_path(const struct store *st);
/* The file the store writes (to hand to the run user), or NULL (a server). */
const char *store_file(const struct store *st);
/* Did store_open create the record (a new file, tables in an empty DB)? */
bool store_created(const struct store *st);
/* Round trips to a database server since store_open (0 for SQLite). */
uint64_t store_round_trips(const struct store *st);

/*
 * Nodes.  store_set_node names the node this store writes as (once, right
 * after store_open): its rows carry the name, and positions and cursors
 * are this node's.  store_claim_node (run) makes this process the node:
 * refused, -1 with the reason in err and not transient, while another
 * process holds the name; kept across reconnections.  store_fleet: do the
 * rows carry nodes (PostgreSQL) or is the store one node (SQLite: the
 * three do nothing)?
 */
int store_set_node(struct store *st, const char *node);
int store_claim_node(struct store *st, char *err, size_t errlen);
bool store_fleet(const struct store *st);

int store_begin(struct store *st);
int store_commit(struct store *st);
int store_rollback(struct store *st);
/* Whether a transaction is open (a daemon's batch waits up to its commit
 * delay with one open: work between its lines writes into it). */
bool store_in_transaction(const struct store *st);

/*
 * Events.  store_add_event keeps ev as a row of events (for the jails'
 * restore, release's queue ids) and counts it; store_count_event only
 * counts it in event_counts (per minute and rule: status, the truth check).
 * Inside a transaction both are buffered and written with the next
 * EVENT_ROWS rows, at store_commit() at the latest (reads of events in the
 * same transaction see them); ev->rule and ev->type must stay valid until
 * then (the rule name's address identifies the rule).  An error writing
 * may surface from a later call (add, count or commit).
 */
int store_add_event(struct store *st, const struct event *ev);
int store_count_event(struct store *st, const struct event *ev);
/* Records a ban; *id (may be NULL) gets its row id.  Returns 0, -1 on error,
 * or 1 if no row was written because a ban of the same jail and target is
 * already in force: another node made it at the same moment (one offence,
 * one row), and it reaches this node through store_fleet_poll. */
int store_add_ban(struct store *st, const struct verdict *v, int64_t *id);
/* The verdicts of a batch, v[0..n), at once (one round trip to a server);
 * outcome[i] is what store_add_ban would return, 0 or 1, and id[i] (id may
 * be NULL) the row's id when written.  Returns 0 or -1. */
int store_add_bans(struct store *st, const struct verdict *v, size_t n, int *outcome,
    int64_t *id);
/* Lift the active bans of target (jail NULL: any jail) at time now.
 * Returns how many rows were lifted, or -1. */
int store_lift_bans(struct store *st, const char *jail, const char *target, int64_t now);

/* Saved position of path: 1 found, 0 none, -1 error. */
int store_get_position(struct store *st, const char *path, struct log_position *out);
int store_save_position(struct store *st, const struct log_position *pos);

/* Saved journal cursor of source (journal.h): 1 found (*out malloc'd, the
 * caller frees), 0 none, -1 error. */
int store_get_cursor(struct store *st, const char *source, char **out);
int store_save_cursor(struct store *st, const char *source, const char *cursor);
/* node: whose cursor (NULL: the store is one node). */
typedef int (*store_cursor_cb)(void *arg, const char *node, const char *source,
    const char *cursor, int64_t updated_at);
/* Every saved journal cursor, of every node, by node and source. */
int store_each_cursor(struct store *st, store_cursor_cb cb, void *arg);

struct stored_ban {
	int64_t id;
	const char *node;          /* who decided it (NULL: the store is one node) */
	const char *jail, *target, *target_kind, *reason, *reply;
	int level;
	unsigned actions;
	int64_t started_at, expires_at, lifted_at;   /* lifted_at 0: not lifted */
};
typedef int (*store_ban_cb)(void *arg, const struct stored_ban *b);
typedef int (*store_event_cb)(void *arg, const struct event *ev);

/* Events with time >= since, in the order they were added: the order the
 * jails counted them when they were live, so a restart rebuilds the same
 * state (one pass over the table, no index, no sort).  Returns 0, or the
 * first non-zero callback result, or -1 on a DB error.
 * Fleet: this node's events and the other nodes' that store_fleet_poll
 * has handed over (at the first call, all), so that what a refused batch
 * had polled comes again from store_fleet_poll, not from here.  An event
 * of another node names it (ev->node, valid during the call; NULL for this
 * node's): queue ids are unique per host only. */
int store_each_event_since(struct store *st, int64_t since, store_event_cb cb, void *arg);
/* Bans started at or after since, oldest first.  Fleet: as they are now;
 * store_fleet_poll then hands over the changes made after this read. */
int store_each_ban_since(struct store *st, int64_t since, store_ban_cb cb, void *arg);
/* Bans in force at now (not lifted, expires_at > now), oldest first. */
int store_each_active_ban(struct store *st, int64_t now, store_ban_cb cb, void *arg);

/* Bans matching a filter, newest first (for bans/history/status). */
struct ban_filter {
	const char *jail;          /* NULL: any */
	const char *target;        /* NULL: any */
	bool active_only;          /* in force at now */
	int64_t now;
};
int store_each_ban(struct store *st, const struct ban_filter *f, store_ban_cb cb, void *arg);

/* Events counted per event name in the minutes from the one holding since
 * (stored as rows or not). */
typedef int (*store_count_cb)(void *arg, const char *name, int64_t count);
int store_event_counts_since(struct store *st, int64_t since, store_count_cb cb, void *arg);

/* Every saved log position, of every node, with the time it was saved
 * (node NULL: the store is one node). */
typedef int (*store_position_cb)(void *arg, const char *node,
    const struct log_position *pos, int64_t updated_at);
int store_each_position(struct store *st, store_position_cb cb, void *arg);

/* Queue ids of the submissions of account (most recent first, at most max);
 * returns how many were written to qids[], or -1. */
int store_account_qids(struct store *st, const char *account,
    char (*qids)[MJ_QID_MAX], size_t max);

/* ---- explain (issue 15): self-contained, for the lead to port to each
 * backend.  The events kept about a target, for "mailjail explain": rows of
 * events with time >= since whose ip is about->ip, or whose account or
 * sender is about->account, or whose account or sender ends in
 * "@" about->domain (any case); all three NULL: every row with an ip (a
 * prefix target: the caller filters).  Coarse on purpose: the caller asks
 * the jail which events it counts (jail_counts_for).  A submission comes
 * with the sender and nrcpt of its queued line (joined by queue id) when
 * that was kept.  For an account, every delivery result and link too
 * (remote_reject, remote_listed, requeued: the caller joins them to their
 * submissions, jail_join_delivery); in a fleet another node's event names
 * it (ev->node).  Oldest first (the order they were added).  Returns 0,
 * the first non-zero cb result, or -1 on a DB error. */
struct event_about {
	const char *ip;
	const char *account;
	const char *domain;
	int64_t since;
};
int store_each_event_about(struct store *st, const struct event_about *about,
    store_event_cb cb, void *arg);

/* Newest time recorded: max of event row times and ban starts (0 if none);
 * events only counted are not rows, so this may be a little early: a
 * restore from it reads a little more, never less. */
int store_newest_time(struct store *st, int64_t *out);

/* Delete events older than before, and the counts of the minutes before
 * its minute; bans are kept (the history is the point). */
int store_purge_events(struct store *st, int64_t before);

/*
 * Fleet sync (PostgreSQL; for SQLite, no fd, never news, nothing to poll).
 *
 * store_fd is the descriptor to wait on for news from other nodes (-1:
 * none).  store_fleet_wake reads it: 1 if another node committed events or
 * bans since (or the connection needs attention: then poll, and see the
 * error), 0 if not.  store_fleet_poll, outside a transaction, hands over
 * what others committed since the last poll, each row once: first the bans
 * written or lifted (by other nodes, or by operator commands anywhere;
 * lifted_at set for a lift), then the other nodes' events, in the order
 * they were added, each naming its node (ev->node).  The bans count as seen at once; the events when the
 * next store_commit succeeds (a store_rollback hands them over again).
 * Also says, now and then, that this node is alive (store_each_node).
 */
int store_fd(const struct store *st);
int store_fleet_wake(struct store *st);
int store_fleet_poll(struct store *st, store_ban_cb ban_cb, store_event_cb event_cb,
    void *arg);

/* The nodes that ran here: running means its "mailjail run" holds the name
 * now.  SQLite: none. */
struct store_node {
	const char *name, *host;
	long pid;
	int64_t started_at, last_seen;
	bool running;
};
typedef int (*store_node_cb)(void *arg, const struct store_node *n);
int store_each_node(struct store *st, store_node_cb cb, void *arg);

/*
 * ---- Operator signals (issue 12; schemas/004-signals.sql) -------------
 * The notification outbox, the evidence behind an account verdict, the
 * bans in force per jail, and the saved metric counters (each backend's
 * operations: store_backend.h says exactly what each does).  Nothing else
 * in this file depends on them.
 */

/* Delivery channels, as bits of a notification's done mask. */
#define STORE_CHANNEL_MAIL    0x1u
#define STORE_CHANNEL_COMMAND 0x2u

/* One row of the outbox.  Strings are borrowed (the caller's when queueing;
 * valid during the callback when read back). */
struct stored_notification {
	int64_t id;
	const char *event;          /* ban hold defer lift alarm */
	bool digest;                /* summarised in the next digest */
	int64_t ban_id;             /* 0: none */
	const char *jail, *target, *target_kind, *reason, *node;
	const char *evidence_key;   /* account | sender | domain, or NULL */
	int64_t evidence_window;    /* seconds before started_at */
	int level;
	int64_t started_at, expires_at, created_at, due_at;
	unsigned done;              /* STORE_CHANNEL_* delivered */
	int attempts;               /* failed deliveries */
};
typedef int (*store_notification_cb)(void *arg, const struct stored_notification *n);

/* Queue n (id, done, attempts ignored); inside the verdict's transaction
 * when there is one.  *id (may be NULL) gets its id. */
int store_queue_notification(struct store *st, const struct stored_notification *n,
    int64_t *id);
/* The notifications neither delivered nor given up, oldest first, at most
 * max of them (a fleet: this node's; each node sends what it queued).
 * Returns 0, the first non-zero callback result, or -1. */
int store_each_open_notification(struct store *st, size_t max,
    store_notification_cb cb, void *arg);
/* How many there are (for the pending gauge). */
int store_count_open_notifications(struct store *st, int64_t *out);
/* Channel (STORE_CHANNEL_*) delivered notification id at now; once every
 * channel in all is delivered, it is sent (never looked at again). */
int store_notification_delivered(struct store *st, int64_t id, unsigned channel,
    unsigned all, int64_t now);
/* A delivery failed: one attempt more, not tried again before due_at. */
int store_notification_retry(struct store *st, int64_t id, int64_t due_at,
    const char *error);
/* Abandoned at now (failed for too long). */
int store_notification_gave_up(struct store *st, int64_t id, int64_t now,
    const char *error);

/* The submissions behind an account verdict: those of the events table in
 * (since, until] whose key (account, sender: the queued line's envelope
 * sender joined by queue id, or domain: either's @domain) is target. */
#define STORE_EVIDENCE_TOP 5
struct store_evidence {
	int64_t submissions;
	int64_t clients;            /* distinct client addresses */
	int64_t recipients;         /* -1: no queued line kept for them */
	struct {
		char ip[MJ_IP_MAX];
		int64_t submissions;
	} top[STORE_EVIDENCE_TOP];  /* the busiest clients, most first */
	size_t ntop;
};
int store_submission_evidence(struct store *st, const char *key, const char *target,
    int64_t since, int64_t until, struct store_evidence *out);

/* Bans and holds in force at now per jail and target kind: the rows the
 * active_bans view shows. */
typedef int (*store_active_cb)(void *arg, const char *jail, const char *target_kind,
    int64_t n);
int store_count_active(struct store *st, int64_t now, store_active_cb cb, void *arg);

/* Saved metric counters of node. */
typedef int (*store_counter_cb)(void *arg, const char *name, const char *labels,
    double value);
int store_each_counter(struct store *st, const char *node, store_counter_cb cb, void *arg);
/* Between store_begin and store_commit, one per counter. */
int store_save_counter(struct store *st, const char *node, const char *name,
    const char *labels, double value);

#endif
