/*
 * store_backend - what a store backend provides (internal to the store:
 * store.c, store_sqlite.c, store_pgsql.c; nothing else includes this).
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

	int (*add_event)(void *be, const struct event *ev);
	int (*count_event)(void *be, const struct event *ev);
	int (*add_ban)(void *be, const struct verdict *v, int64_t *id);
	/* may be NULL: add_ban for each */
	int (*add_bans)(void *be, const struct verdict *v, size_t n, int *outcome);
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

#endif
