/*
 * pipeline - lines to events to verdicts, batched.  See pipeline.h.
 */
#include "pipeline.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

int
pipeline_init(struct pipeline *p, struct ruleset *rules, struct jailset *jails,
    struct store *store, bool log_clock)
{
	memset(p, 0, sizeof(*p));
	p->rules = rules;
	p->jails = jails;
	p->store = store;
	p->log_clock = log_clock;
	logtime_init(&p->lt, (int64_t)time(NULL));
	p->st.nrules = rules_count(rules);
	p->st.rule_hits = calloc(p->st.nrules ? p->st.nrules : 1, sizeof(uint64_t));
	p->st.njails = jails_count(jails);
	p->st.jail_verdicts = calloc(p->st.njails ? p->st.njails : 1, sizeof(uint64_t));
	p->commit_lines = 1;
	p->cap = 256;
	p->pending = calloc(p->cap, sizeof(*p->pending));
	if (p->st.rule_hits == NULL || p->st.jail_verdicts == NULL || p->pending == NULL) {
		pipeline_fini(p);
		return -1;
	}
	return 0;
}

void
pipeline_fini(struct pipeline *p)
{
	if (p->in_tx && p->store)
		(void)store_rollback(p->store);
	free(p->st.rule_hits);
	free(p->st.jail_verdicts);
	free(p->pending);
	free(p->saved);
	memset(p, 0, sizeof(*p));
}

int
pipeline_add_backend(struct pipeline *p, const struct enforcer_ops *ops, void *state)
{
	if (p->nbackends == PIPELINE_BACKENDS_MAX)
		return -1;
	p->backend[p->nbackends] = ops;
	p->backend_state[p->nbackends] = state;
	p->nbackends++;
	return 0;
}

static int
restore_ban_cb(void *arg, const struct stored_ban *b)
{
	struct pipeline *p = arg;

	return jail_restore_ban(p->jails, b->jail, b->target, b->level,
	    b->started_at, b->expires_at, b->lifted_at) == 0 ? 0 : -1;
}

static int
restore_event_cb(void *arg, const struct event *ev)
{
	struct pipeline *p = arg;

	if (ev->time > p->last_time)
		p->last_time = ev->time;
	return jail_restore_event(p->jails, ev) == 0 ? 0 : -1;
}

int
pipeline_restore(struct pipeline *p, int64_t wall_now)
{
	int64_t now = wall_now;
	int64_t window = jails_longest_window(p->jails);
	int64_t span = jails_history_span(p->jails);

	if (p->store == NULL)
		return 0;
	if (p->log_clock) {
		/* The clock is the log's: count back from where the log got to. */
		if (store_newest_time(p->store, &now) != 0)
			return -1;
	}
	if (store_each_ban_since(p->store, now - span, restore_ban_cb, p) != 0)
		return -1;
	if (store_each_event_since(p->store, now - window, restore_event_cb, p) != 0)
		return -1;
	return 0;
}

/* pending_push - keep a verdict until the batch commits */
static int
pending_push(struct pipeline *p, const struct verdict *v)
{
	if (p->npending == p->cap) {
		size_t cap = p->cap * 2;
		struct verdict *n = realloc(p->pending, cap * sizeof(*n));
		if (n == NULL)
			return -1;
		p->pending = n;
		p->cap = cap;
	}
	p->pending[p->npending++] = *v;
	return 0;
}

static void
log_verdict(const struct verdict *v)
{
	char dur[24];

	cfg_format_duration(v->expires_at - v->started_at, dur, sizeof(dur));
	log_info("%s %s %s jail=%s level=%d for %s: %s",
	    (v->actions & ACTION_HOLD) ? "hold" : "ban",
	    target_kind_name(v->kind), v->target, v->jail, v->level, dur, v->reason);
}

/* count_jail_verdict - per-jail totals for summaries (few jails: a scan) */
static void
count_jail_verdict(struct pipeline *p, const struct verdict *v)
{
	for (size_t j = 0; j < p->st.njails; j++) {
		if (strcmp(jails_name(p->jails, j), v->jail) == 0) {
			p->st.jail_verdicts[j]++;
			return;
		}
	}
}

void
pipeline_tick(struct pipeline *p, int64_t wall_now)
{
	/* Once a minute is plenty (the inference has a day of slack); it
	 * also drops the stamp caches, which is cheap. */
	if (!p->log_clock && (wall_now - p->lt.ref >= 60 || wall_now < p->lt.ref))
		logtime_init(&p->lt, wall_now);
}

static bool
is_submission(const struct event *ev)
{
	return ev->qid[0] != '\0' && ev->user[0] != '\0' &&
	    strcmp(ev->type, "submission") == 0;
}

int
pipeline_line(struct pipeline *p, const char *line, size_t len)
{
	struct event ev;
	struct verdict v[JAIL_VERDICTS_MAX];
	size_t rule = 0;
	int64_t now;
	int n;

	/* The batch is lost already (it will be rolled back): nothing more
	 * goes into it, and above all no second wait for a locked DB. */
	if (p->failed)
		return -1;
	p->st.lines++;
	if (p->uncommitted++ == 0)
		p->first_line_ms = pipeline_clock_ms();
	switch (rules_match(p->rules, &p->lt, line, len, &ev, &rule)) {
	case RULES_NOMATCH:
		return 0;
	case RULES_BADLINE:
		p->st.bad_lines++;
		return 0;
	case RULES_BADFIELD:
		p->st.bad_fields++;
		return 0;
	case RULES_MATCH:
		break;
	}
	p->st.events++;
	if (rule < p->st.nrules)
		p->st.rule_hits[rule]++;
	if (ev.time > p->last_time)
		p->last_time = ev.time;
	if (p->store == NULL)
		return 0;
	if (!p->in_tx) {
		if (store_begin(p->store) != 0)
			goto fail;
		p->in_tx = true;
	}
	/* A row for what the jails need at a restart, and for every submission:
	 * "release --requeue" finds an account's held mail by its queue ids,
	 * whether or not a jail counts submissions.  Every event counts. */
	if ((jails_want_event(p->jails, &ev) || is_submission(&ev)
	    ? store_add_event(p->store, &ev) : store_count_event(p->store, &ev)) != 0)
		goto fail;
	now = p->log_clock ? ev.time : (int64_t)time(NULL);
	if ((n = jail_record_event(p->jails, &ev, now, v, JAIL_VERDICTS_MAX)) < 0)
		goto fail;
	for (int i = 0; i < n; i++) {
		p->st.verdicts++;
		count_jail_verdict(p, &v[i]);
		if (store_add_ban(p->store, &v[i], NULL) != 0 || pending_push(p, &v[i]) != 0)
			goto fail;
	}
	return 0;
fail:
	/* SQLite may have undone just the statement: the batch must not
	 * commit without this line's writes. */
	p->failed = true;
	return -1;
}

int
pipeline_follow_cb(void *arg, size_t file, const char *line, size_t len)
{
	(void)file;
	return pipeline_line(arg, line, len);
}

void
pipeline_set_commit_policy(struct pipeline *p, int delay_ms, size_t max_lines)
{
	p->commit_delay_ms = delay_ms > 0 ? delay_ms : 0;
	p->commit_lines = max_lines > 0 ? max_lines : 1;
}

int64_t
pipeline_clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool
pipeline_commit_due(const struct pipeline *p, const struct follow *f, int64_t now_ms)
{
	if (p->uncommitted == 0 || p->commit_delay_ms == 0)
		return true;
	/* From 3/4 of the delay on: the wake-up for a later line commits, and
	 * the caller's timer (pipeline_commit_wait_ms: the whole delay) is
	 * only needed when no line comes. */
	return p->failed || p->npending > 0 || p->uncommitted >= p->commit_lines ||
	    now_ms - p->first_line_ms >= p->commit_delay_ms - p->commit_delay_ms / 4 ||
	    (f != NULL && follow_waits_commit(f));
}

int
pipeline_commit_wait_ms(const struct pipeline *p, int64_t now_ms)
{
	int64_t left;

	if (p->uncommitted == 0)
		return -1;
	if (pipeline_commit_due(p, NULL, now_ms))
		return 0;
	left = p->first_line_ms + p->commit_delay_ms - now_ms;
	return left > 0 ? (int)left : 0;
}

int
pipeline_enforce(struct pipeline *p, const struct verdict *v)
{
	int64_t now = (int64_t)time(NULL);
	int rc = 0;

	for (size_t b = 0; b < p->nbackends; b++) {
		if (!(v->actions & p->backend[b]->action))
			continue;
		if (p->backend[b]->ban(p->backend_state[b], v, now) != 0)
			rc = -1;
	}
	return rc;
}

/* positions_moved - has any log's position changed since the last commit? */
static bool
positions_moved(const struct pipeline *p, struct follow *f)
{
	struct log_position pos;

	if (f == NULL)
		return false;
	if (follow_count(f) != p->nsaved)
		return true;
	for (size_t i = 0; i < p->nsaved; i++) {
		follow_position(f, i, &pos);
		if (pos.inode != p->saved[i].inode || pos.offset != p->saved[i].offset ||
		    pos.first_hash != p->saved[i].first_hash)
			return true;
	}
	return false;
}

/* remember_positions - what was just committed (best effort: on no memory,
 * the next commit simply saves again) */
static void
remember_positions(struct pipeline *p, struct follow *f)
{
	struct log_position pos;
	size_t n = f ? follow_count(f) : 0;
	struct pipeline_saved *s;

	if (n != p->nsaved) {
		if ((s = realloc(p->saved, (n ? n : 1) * sizeof(*s))) == NULL) {
			p->nsaved = 0;
			return;
		}
		p->saved = s;
	}
	for (size_t i = 0; i < n; i++) {
		follow_position(f, i, &pos);
		p->saved[i].inode = pos.inode;
		p->saved[i].offset = pos.offset;
		p->saved[i].first_hash = pos.first_hash;
	}
	p->nsaved = n;
}

int
pipeline_commit(struct pipeline *p, struct follow *f)
{
	return pipeline_commit_sources(p, f, NULL, 0);
}

int
pipeline_commit_sources(struct pipeline *p, struct follow *f, struct journal *const *js,
    size_t nj)
{
	struct log_position pos;
	bool cursors = false;
	int rc = 0;

	if (p->store == NULL) {
		p->uncommitted = 0;
		return 0;
	}
	if (p->failed)
		goto fail;
	for (size_t i = 0; i < nj; i++)
		if (journal_pending_cursor(js[i]) != NULL)
			cursors = true;
	if (!p->in_tx) {
		/* No event in this batch, but the logs moved on: save that too,
		 * or a restart would re-read (not re-count) these lines. */
		if (!positions_moved(p, f) && !cursors) {
			p->uncommitted = 0;
			return 0;
		}
		if (store_begin(p->store) != 0)
			goto fail;
		p->in_tx = true;
	}
	for (size_t i = 0; f && i < follow_count(f); i++) {
		follow_position(f, i, &pos);
		if (store_save_position(p->store, &pos) != 0)
			goto fail;
	}
	for (size_t i = 0; i < nj; i++) {
		const char *c = journal_pending_cursor(js[i]);
		if (c != NULL && store_save_cursor(p->store, journal_source(js[i]), c) != 0)
			goto fail;
	}
	if (store_commit(p->store) != 0)
		goto fail;
	p->in_tx = false;
	p->commits++;
	p->uncommitted = 0;
	for (size_t i = 0; i < nj; i++)
		journal_saved(js[i]);
	remember_positions(p, f);
	if (f != NULL)
		follow_committed(f);   /* a rotation may be crossed now */

	/* Logged now, once: a batch the DB refused is read again and decides
	 * the same verdicts, which were never made. */
	for (size_t i = 0; i < p->npending; i++) {
		if (p->verbose_verdicts)
			log_verdict(&p->pending[i]);
		if (pipeline_enforce(p, &p->pending[i]) != 0)
			rc = -1;
	}
	p->npending = 0;
	for (size_t b = 0; b < p->nbackends; b++)
		if (p->backend[b]->sync(p->backend_state[b]) != 0)
			rc = -1;
	/* An enforcement failure is logged by the backend (naming the
	 * element); the batch itself is safely recorded, and the daemon
	 * re-applies every active ban until that works. */
	if (rc != 0)
		p->enforce_failed = true;
	return 0;
fail:
	(void)store_rollback(p->store);
	p->in_tx = false;
	p->failed = false;
	p->npending = 0;
	p->uncommitted = 0;
	return -1;
}
