/*
 * store - the front of the store: picks a backend by the `db` value and
 * forwards every call to it.  See store.h (the contracts) and
 * store_backend.h (what a backend provides).
 *
 * The table is searched in order; the last backend (SQLite, a path) takes
 * whatever no other one claimed, so a path keeps working as it always did.
 *
 * Memory: struct store owns the backend's state through be, released by
 * store_close().
 */
#include "store_backend.h"

#include <stdio.h>
#include <stdlib.h>

static const struct store_backend *const backends[] = {
	&store_backend_pgsql,
	&store_backend_sqlite,
};

/* backend_for - the first backend that takes db (the last takes all) */
static const struct store_backend *
backend_for(const char *db)
{
	size_t n = sizeof(backends) / sizeof(backends[0]);

	for (size_t i = 0; i + 1 < n; i++)
		if (backends[i]->takes(db))
			return backends[i];
	return backends[n - 1];
}

bool
store_db_is_file(const char *db)
{
	return backend_for(db) == &store_backend_sqlite;
}

int
store_open(const char *db, bool create, struct store **out, char *err, size_t errlen)
{
	const struct store_backend *ops = backend_for(db);
	struct store *st;

	*out = NULL;
	if ((st = calloc(1, sizeof(*st))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	st->ops = ops;
	if (ops->open(db, create, &st->be, err, errlen) != 0) {
		free(st);
		return -1;
	}
	*out = st;
	return 0;
}

void
store_close(struct store *st)
{
	if (st == NULL)
		return;
	st->ops->close(st->be);
	free(st);
}

int
store_check_file(const struct store *st, char *err, size_t errlen)
{
	return st->ops->check_file(st->be, err, errlen);
}

const char *
store_errmsg(const struct store *st)
{
	return st->ops->errmsg(st->be);
}

bool
store_error_is_transient(const struct store *st)
{
	return st->ops->error_is_transient(st->be);
}

void
store_clear_error(struct store *st)
{
	st->ops->clear_error(st->be);
}

void
store_set_stop_flag(struct store *st, const volatile sig_atomic_t *flag)
{
	st->ops->set_stop_flag(st->be, flag);
}

const char *
store_path(const struct store *st)
{
	return st->ops->path(st->be);
}

const char *
store_file(const struct store *st)
{
	return st->ops->file(st->be);
}

bool
store_created(const struct store *st)
{
	return st->ops->created(st->be);
}

uint64_t
store_round_trips(const struct store *st)
{
	return st->ops->round_trips ? st->ops->round_trips(st->be) : 0;
}

int
store_begin(struct store *st)
{
	return st->ops->begin(st->be);
}

int
store_commit(struct store *st)
{
	return st->ops->commit(st->be);
}

int
store_rollback(struct store *st)
{
	return st->ops->rollback(st->be);
}

bool
store_in_transaction(const struct store *st)
{
	return st->ops->in_transaction(st->be);
}

int
store_add_event(struct store *st, const struct event *ev)
{
	return st->ops->add_event(st->be, ev);
}

int
store_count_event(struct store *st, const struct event *ev)
{
	return st->ops->count_event(st->be, ev);
}

int
store_add_ban(struct store *st, const struct verdict *v, int64_t *id)
{
	return st->ops->add_ban(st->be, v, id);
}

int
store_add_bans(struct store *st, const struct verdict *v, size_t n, int *outcome,
    int64_t *id)
{
	if (st->ops->add_bans != NULL)
		return st->ops->add_bans(st->be, v, n, outcome, id);
	for (size_t i = 0; i < n; i++)
		if ((outcome[i] = st->ops->add_ban(st->be, &v[i], id ? &id[i] : NULL)) < 0)
			return -1;
	return 0;
}

int
store_lift_bans(struct store *st, const char *jail, const char *target, int64_t now)
{
	return st->ops->lift_bans(st->be, jail, target, now);
}

int
store_get_position(struct store *st, const char *path, struct log_position *out)
{
	return st->ops->get_position(st->be, path, out);
}

int
store_save_position(struct store *st, const struct log_position *pos)
{
	return st->ops->save_position(st->be, pos);
}

int
store_get_cursor(struct store *st, const char *source, char **out)
{
	return st->ops->get_cursor(st->be, source, out);
}

int
store_save_cursor(struct store *st, const char *source, const char *cursor)
{
	return st->ops->save_cursor(st->be, source, cursor);
}

int
store_each_cursor(struct store *st, store_cursor_cb cb, void *arg)
{
	return st->ops->each_cursor(st->be, cb, arg);
}

int
store_each_event_since(struct store *st, int64_t since, store_event_cb cb, void *arg)
{
	return st->ops->each_event_since(st->be, since, cb, arg);
}

int
store_each_ban_since(struct store *st, int64_t since, store_ban_cb cb, void *arg)
{
	return st->ops->each_ban_since(st->be, since, cb, arg);
}

int
store_each_active_ban(struct store *st, int64_t now, store_ban_cb cb, void *arg)
{
	return st->ops->each_active_ban(st->be, now, cb, arg);
}

int
store_each_ban(struct store *st, const struct ban_filter *f, store_ban_cb cb, void *arg)
{
	return st->ops->each_ban(st->be, f, cb, arg);
}

int
store_event_counts_since(struct store *st, int64_t since, store_count_cb cb, void *arg)
{
	return st->ops->event_counts_since(st->be, since, cb, arg);
}

int
store_each_position(struct store *st, store_position_cb cb, void *arg)
{
	return st->ops->each_position(st->be, cb, arg);
}

int
store_account_qids(struct store *st, const char *account, char (*qids)[MJ_QID_MAX],
    size_t max)
{
	return st->ops->account_qids(st->be, account, qids, max);
}

int
store_newest_time(struct store *st, int64_t *out)
{
	return st->ops->newest_time(st->be, out);
}

int
store_purge_events(struct store *st, int64_t before)
{
	return st->ops->purge_events(st->be, before);
}

int
store_each_event_about(struct store *st, const struct event_about *about,
    store_event_cb cb, void *arg)
{
	return st->ops->each_event_about(st->be, about, cb, arg);
}

/* The fleet.  A backend that is one node leaves these unset. */

int
store_set_node(struct store *st, const char *node)
{
	return st->ops->set_node ? st->ops->set_node(st->be, node) : 0;
}

int
store_claim_node(struct store *st, char *err, size_t errlen)
{
	return st->ops->claim_node ? st->ops->claim_node(st->be, err, errlen) : 0;
}

bool
store_fleet(const struct store *st)
{
	return st->ops->fleet_poll != NULL;
}

int
store_fd(const struct store *st)
{
	return st->ops->fd ? st->ops->fd(st->be) : -1;
}

int
store_fleet_wake(struct store *st)
{
	return st->ops->fleet_wake ? st->ops->fleet_wake(st->be) : 0;
}

int
store_fleet_poll(struct store *st, store_ban_cb ban_cb, store_event_cb event_cb, void *arg)
{
	return st->ops->fleet_poll ? st->ops->fleet_poll(st->be, ban_cb, event_cb, arg) : 0;
}

int
store_each_node(struct store *st, store_node_cb cb, void *arg)
{
	return st->ops->each_node ? st->ops->each_node(st->be, cb, arg) : 0;
}

/* Operator signals. */

int
store_queue_notification(struct store *st, const struct stored_notification *n,
    int64_t *id)
{
	return st->ops->queue_notification(st->be, n, id);
}

int
store_each_open_notification(struct store *st, size_t max, store_notification_cb cb,
    void *arg)
{
	return st->ops->each_open_notification(st->be, max, cb, arg);
}

int
store_count_open_notifications(struct store *st, int64_t *out)
{
	return st->ops->count_open_notifications(st->be, out);
}

int
store_notification_delivered(struct store *st, int64_t id, unsigned channel,
    unsigned all, int64_t now)
{
	return st->ops->notification_delivered(st->be, id, channel, all, now);
}

int
store_notification_retry(struct store *st, int64_t id, int64_t due_at, const char *error)
{
	return st->ops->notification_retry(st->be, id, due_at, error);
}

int
store_notification_gave_up(struct store *st, int64_t id, int64_t now, const char *error)
{
	return st->ops->notification_gave_up(st->be, id, now, error);
}

int
store_submission_evidence(struct store *st, const char *key, const char *target,
    int64_t since, int64_t until, struct store_evidence *out)
{
	return st->ops->submission_evidence(st->be, key, target, since, until, out);
}

int
store_count_active(struct store *st, int64_t now, store_active_cb cb, void *arg)
{
	return st->ops->count_active(st->be, now, cb, arg);
}

int
store_each_counter(struct store *st, const char *node, store_counter_cb cb, void *arg)
{
	return st->ops->each_counter(st->be, node, cb, arg);
}

int
store_save_counter(struct store *st, const char *node, const char *name,
    const char *labels, double value)
{
	return st->ops->save_counter(st->be, node, name, labels, value);
}
