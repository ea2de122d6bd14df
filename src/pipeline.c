/*
 * pipeline - lines to events to verdicts, batched.  See pipeline.h.
 */
#include "pipeline.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "metrics.h"
#include "notify.h"

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
	p->batch_rule_hits = calloc(p->st.nrules ? p->st.nrules : 1, sizeof(uint32_t));
	for (size_t i = 0; i < PIPELINE_SOURCES_MAX; i++)
		p->file_series[i] = -2;
	if (p->st.rule_hits == NULL || p->st.jail_verdicts == NULL || p->pending == NULL ||
	    p->batch_rule_hits == NULL) {
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
	free(p->batch_rule_hits);
	free(p->rule_series);
	free(p->lost);
	memset(p, 0, sizeof(*p));
}

int
pipeline_set_signals(struct pipeline *p, const struct notify_config *notify,
    struct metrics *metrics)
{
	p->notify = notify;
	p->metrics = metrics;
	if (metrics == NULL)
		return 0;
	/* The hot series, looked up once: each rule's event. */
	if (p->rule_series == NULL &&
	    (p->rule_series = calloc(p->st.nrules ? p->st.nrules : 1, sizeof(int))) == NULL)
		return -1;
	for (size_t r = 0; r < p->st.nrules; r++)
		p->rule_series[r] = metrics_series(metrics, METRIC_EVENTS,
		    rules_event(p->rules, r), NULL);
	return 0;
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

	return jail_restore_ban(p->jails, b->jail, b->target,
	    strcmp(b->target_kind, "ip") == 0 ? TARGET_IP : TARGET_ACCOUNT, b->level,
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

/* verdict_word - what a verdict does, for the log: a watch (no action) is
 * an account attacked, whose failing addresses are banned */
static const char *
verdict_word(const struct verdict *v)
{
	if (v->actions & ACTION_HOLD)
		return "hold";
	if (v->actions & ACTION_DEFER)
		return "defer";
	return v->actions == 0 ? "watch" : "ban";
}

static void
log_verdict(const struct verdict *v)
{
	char dur[24];

	cfg_format_duration(v->expires_at - v->started_at, dur, sizeof(dur));
	log_info("%s %s %s jail=%s level=%d for %s: %s", verdict_word(v),
	    target_kind_name(v->kind), v->target, v->jail, v->level, dur, v->reason);
}

void
pipeline_alarm(struct pipeline *p, const struct alarm *a)
{
	log_warnx("alarm jail=%s event=%s: %s", a->jail, a->event, a->reason);
	p->st.alarms++;
	if (p->metrics)
		metrics_count(p->metrics, METRIC_ALARMS, a->jail, a->event, 1);
}

/* queue_alarm - a's notification, in the open transaction (sent at once,
 * after the commit: at least once, like a verdict's) */
static int
queue_alarm(struct pipeline *p, const struct alarm *a)
{
	int q;

	if (p->notify == NULL)
		return 0;
	if ((q = notify_queue_alarm(p->notify, p->store, a->jail, a->reason, a->time)) < 0)
		return -1;
	p->notes_pending += q > 0;
	p->notes_now_pending += q == NOTIFY_QUEUED_NOW;
	return 0;
}

/* take_alarms - the alarms the last event raised, kept until the commit */
static int
take_alarms(struct pipeline *p)
{
	struct alarm a;

	while (jails_take_alarm(p->jails, &a)) {
		if (p->nalarms < PIPELINE_ALARMS_MAX) {
			p->alarms[p->nalarms++] = a;
			continue;
		}
		/* a flood: said now, not lost (a rolled back batch says it again) */
		if (queue_alarm(p, &a) != 0)
			return -1;
		pipeline_alarm(p, &a);
	}
	return 0;
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
	if (rule < p->st.nrules) {
		p->st.rule_hits[rule]++;
		p->batch_rule_hits[rule]++;
	}
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
	if (take_alarms(p) != 0)
		goto fail;
	/* Written with the batch (store_add_bans: one round trip for all). */
	for (int i = 0; i < n; i++)
		if (pending_push(p, &v[i]) != 0)
			goto fail;
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
	struct pipeline *p = arg;

	if (file < PIPELINE_SOURCES_MAX)
		p->batch_lines[file]++;
	return pipeline_line(p, line, len);
}

int
pipeline_journal_cb(void *arg, size_t index, const char *line, size_t len)
{
	(void)index;
	return pipeline_line(arg, line, len);
}

void
pipeline_journal_lines(struct pipeline *p, size_t i, long n)
{
	if (i < PIPELINE_SOURCES_MAX && n > 0)
		p->batch_journal_lines[i] += (uint32_t)n;
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
	return p->failed || p->npending > 0 || p->nalarms > 0 ||
	    p->uncommitted >= p->commit_lines ||
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
		if (p->backend[b]->ban(p->backend_state[b], v, now) != 0) {
			rc = -1;
			if (p->metrics)
				metrics_count(p->metrics, METRIC_ENFORCE_ERRORS,
				    p->backend[b]->name, NULL, 1);
		}
	}
	return rc;
}

/* clear_batch - forget what the batch read (committed, or rolled back) */
static void
clear_batch(struct pipeline *p)
{
	memset(p->batch_lines, 0, sizeof(p->batch_lines));
	memset(p->batch_journal_lines, 0, sizeof(p->batch_journal_lines));
	memset(p->batch_rule_hits, 0, (p->st.nrules ? p->st.nrules : 1) * sizeof(uint32_t));
	p->notes_pending = p->notes_now_pending = 0;
}

/* count_batch - what a committed batch made, into the metrics */
static void
count_batch(struct pipeline *p, struct follow *f, struct journal *const *js, size_t nj)
{
	static const struct { unsigned bit; const char *name; } actions[] = {
		{ ACTION_NFT, "nft" }, { ACTION_HOLD, "hold" }, { ACTION_REJECT, "reject" },
		{ ACTION_DEFER, "defer" },
	};
	struct log_position pos;

	for (size_t i = 0; i < PIPELINE_SOURCES_MAX; i++) {
		if (p->batch_lines[i] == 0)
			continue;
		/* Named by follow's path, once (follow keeps its indices). */
		if (p->file_series[i] == -2 && f != NULL && i < follow_count(f)) {
			follow_position(f, i, &pos);
			p->file_series[i] = metrics_series(p->metrics, METRIC_LINES, pos.path, NULL);
		}
		metrics_add(p->metrics, p->file_series[i], p->batch_lines[i]);
	}
	for (size_t i = 0; i < nj && i < PIPELINE_SOURCES_MAX; i++)
		if (p->batch_journal_lines[i] > 0)
			metrics_count(p->metrics, METRIC_LINES, journal_source(js[i]), NULL,
			    p->batch_journal_lines[i]);
	for (size_t r = 0; r < p->st.nrules; r++)
		if (p->batch_rule_hits[r] > 0)
			metrics_add(p->metrics, p->rule_series[r], p->batch_rule_hits[r]);
	for (size_t i = 0; i < p->npending; i++) {
		/* a watch (an account attacked, its addresses banned) has none */
		if (p->pending[i].actions == 0)
			metrics_count(p->metrics, METRIC_VERDICTS, p->pending[i].jail, "watch", 1);
		for (size_t a = 0; a < sizeof(actions) / sizeof(actions[0]); a++)
			if (p->pending[i].actions & actions[a].bit)
				metrics_count(p->metrics, METRIC_VERDICTS, p->pending[i].jail,
				    actions[a].name, 1);
	}
}

static double
mono_secs(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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

/* lost_add - remember a verdict another node's row won over (bounded:
 * forgetting one only means its row is counted in the jails again) */
static void
lost_add(struct pipeline *p, const struct verdict *v)
{
	if (p->nlost == p->caplost) {
		size_t cap = p->caplost ? p->caplost * 2 : 16;
		struct pipeline_lost *n;
		if (cap > 4096 || (n = realloc(p->lost, cap * sizeof(*n))) == NULL)
			return;
		p->lost = n;
		p->caplost = cap;
	}
	p->lost[p->nlost].jail = v->jail;
	snprintf(p->lost[p->nlost].target, sizeof(p->lost[0].target), "%s", v->target);
	p->nlost++;
}

/* lost_take - was the ban of target in jail one this node decided too? */
static bool
lost_take(struct pipeline *p, const char *jail, const char *target)
{
	for (size_t i = 0; i < p->nlost; i++) {
		if (strcmp(p->lost[i].jail, jail) == 0 && strcmp(p->lost[i].target, target) == 0) {
			p->lost[i] = p->lost[--p->nlost];
			return true;
		}
	}
	return false;
}

/*
 * write_verdicts - the batch's verdicts into the store, all at once, each
 * with its notification (notify.h) in the same transaction: told at least
 * once.  A verdict the store did not write because the same ban is already
 * in force (another node decided it at the same moment: one offence, one
 * row) is dropped here, unnotified (the node whose row it is tells of it);
 * the other node's row comes with the next fleet poll and is enforced from
 * there.
 */
static int
write_verdicts(struct pipeline *p)
{
	int *outcome;
	int64_t *ids;
	size_t kept = 0;
	int rc = -1;

	if (p->npending == 0)
		return 0;
	outcome = calloc(p->npending, sizeof(*outcome));
	ids = calloc(p->npending, sizeof(*ids));
	if (outcome == NULL || ids == NULL ||
	    store_add_bans(p->store, p->pending, p->npending, outcome, ids) != 0)
		goto out;
	for (size_t i = 0; i < p->npending; i++) {
		int q;

		if (outcome[i] != 0) {
			lost_add(p, &p->pending[i]);
			continue;
		}
		if (p->notify != NULL) {
			if ((q = notify_queue_verdict(p->notify, p->jails, p->store,
			    &p->pending[i], ids[i], (int64_t)time(NULL))) < 0)
				goto out;
			p->notes_pending += q > 0;
			p->notes_now_pending += q == NOTIFY_QUEUED_NOW;
		}
		p->pending[kept++] = p->pending[i];
	}
	p->npending = kept;
	rc = 0;
out:
	free(outcome);
	free(ids);
	return rc;
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
	if (write_verdicts(p) != 0)
		goto fail;
	for (size_t i = 0; i < p->nalarms; i++)
		if (queue_alarm(p, &p->alarms[i]) != 0)
			goto fail;
	{
		double t0 = p->metrics ? mono_secs() : 0;
		int crc = store_commit(p->store);

		if (p->metrics)
			metrics_observe_commit(p->metrics, mono_secs() - t0);
		if (crc != 0)
			goto fail;
	}
	p->in_tx = false;
	p->commits++;
	p->notes_committed += p->notes_pending;
	p->notes_now_committed += p->notes_now_pending;
	if (p->metrics)
		count_batch(p, f, js, nj);
	clear_batch(p);
	p->uncommitted = 0;
	for (size_t i = 0; i < nj; i++)
		journal_saved(js[i]);
	remember_positions(p, f);
	if (f != NULL)
		follow_committed(f);   /* a rotation may be crossed now */

	/* Logged now, once: a batch the DB refused is read again and decides
	 * the same verdicts, which were never made. */
	for (size_t i = 0; i < p->npending; i++) {
		p->st.verdicts++;
		count_jail_verdict(p, &p->pending[i]);
		if (p->verbose_verdicts)
			log_verdict(&p->pending[i]);
		if (pipeline_enforce(p, &p->pending[i]) != 0)
			rc = -1;
	}
	p->npending = 0;
	for (size_t i = 0; i < p->nalarms; i++)
		pipeline_alarm(p, &p->alarms[i]);
	p->nalarms = 0;
	for (size_t b = 0; b < p->nbackends; b++) {
		if (p->backend[b]->sync(p->backend_state[b]) != 0) {
			rc = -1;
			if (p->metrics)
				metrics_count(p->metrics, METRIC_ENFORCE_ERRORS,
				    p->backend[b]->name, NULL, 1);
		}
	}
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
	p->nalarms = 0;
	clear_batch(p);
	p->uncommitted = 0;
	return -1;
}

/* ---- the fleet ----------------------------------------------------------- */

/* verdict_of - a stored ban as a verdict for the backends (strings borrowed) */
static void
verdict_of(const struct stored_ban *b, struct verdict *v)
{
	memset(v, 0, sizeof(*v));
	v->jail = b->jail;
	v->kind = strcmp(b->target_kind, "ip") == 0 ? TARGET_IP : TARGET_ACCOUNT;
	snprintf(v->target, sizeof(v->target), "%s", b->target);
	v->level = b->level;
	v->actions = b->actions;
	v->reply = b->reply;
	v->started_at = b->started_at;
	v->expires_at = b->expires_at;
	snprintf(v->reason, sizeof(v->reason), "%s", b->reason);
}

static int
reenforce_cb(void *arg, const struct stored_ban *b)
{
	struct pipeline *p = arg;
	struct verdict v;

	verdict_of(b, &v);
	if (pipeline_enforce(p, &v) != 0)
		p->enforce_failed = true;
	return 0;
}

/* fleet_lift - a ban lifted (by an operator, on any node): out of the
 * jails, the kernel set and the maps; a ban of the target by another jail
 * that is still in force goes back in */
static int
fleet_lift(struct pipeline *p, const struct stored_ban *b, int64_t now)
{
	struct ban_filter f = { NULL, b->target, true, now };
	enum target_kind kind = strcmp(b->target_kind, "ip") == 0 ? TARGET_IP : TARGET_ACCOUNT;

	(void)lost_take(p, b->jail, b->target);
	/* Not in force here (never seen, or ended): its history still counts. */
	if (jail_lift(p->jails, b->jail, b->target, b->lifted_at) == 0 &&
	    jail_restore_ban(p->jails, b->jail, b->target, kind, b->level, b->started_at,
	    b->expires_at, b->lifted_at) != 0)
		return -1;
	for (size_t i = 0; i < p->nbackends; i++) {
		if (!(b->actions & p->backend[i]->action))
			continue;
		if (p->backend[i]->unban(p->backend_state[i], b->target, kind) != 0)
			p->enforce_failed = true;
	}
	if (p->verbose_verdicts)
		log_info("fleet: %s %s lifted (jail %s, node %s)", target_kind_name(kind),
		    b->target, b->jail, b->node ? b->node : "-");
	return store_each_ban(p->store, &f, reenforce_cb, p);
}

/* fleet_ban_cb - a ban of another node (or an operator's): counted in the
 * jails, enforced here */
static int
fleet_ban_cb(void *arg, const struct stored_ban *b)
{
	struct pipeline *p = arg;
	int64_t now = (int64_t)time(NULL);
	struct verdict v;

	p->st.fleet_bans++;
	if (b->lifted_at != 0)
		return fleet_lift(p, b, now);
	/* This node decided it too and its jails have it (lost_add). */
	verdict_of(b, &v);
	if (!lost_take(p, b->jail, b->target) &&
	    jail_restore_ban(p->jails, b->jail, b->target, v.kind, b->level, b->started_at,
	    b->expires_at, 0) != 0)
		return -1;
	if (b->expires_at <= now)
		return 0;   /* over already: history only */
	if (p->verbose_verdicts) {
		char dur[24];
		cfg_format_duration(v.expires_at - v.started_at, dur, sizeof(dur));
		log_info("fleet: %s %s %s jail=%s level=%d for %s (node %s): %s",
		    verdict_word(&v), target_kind_name(v.kind),
		    v.target, v.jail, v.level, dur, b->node ? b->node : "-", v.reason);
	}
	if (pipeline_enforce(p, &v) != 0)
		p->enforce_failed = true;
	return 0;
}

/* fleet_event_cb - another node's event, counted as this node's lines are */
static int
fleet_event_cb(void *arg, const struct event *ev)
{
	struct pipeline *p = arg;
	struct verdict v[JAIL_VERDICTS_MAX];
	int64_t now = p->log_clock ? ev->time : (int64_t)time(NULL);
	int n;

	/* The poll's events count as seen when this batch commits. */
	if (!p->in_tx) {
		if (store_begin(p->store) != 0)
			return -1;
		p->in_tx = true;
	}
	p->st.fleet_events++;
	if ((n = jail_record_event(p->jails, ev, now, v, JAIL_VERDICTS_MAX)) < 0)
		return -1;
	/* none, in fact: a node raises its own server's alarms (jail.c) */
	if (take_alarms(p) != 0)
		return -1;
	for (int i = 0; i < n; i++)
		if (pending_push(p, &v[i]) != 0)
			return -1;
	return 0;
}

int
pipeline_fleet_sync(struct pipeline *p)
{
	int rc;

	if (p->store == NULL || p->failed)
		return p->failed ? -1 : 0;
	if (p->in_tx)
		return 0;   /* between batches only */
	rc = store_fleet_poll(p->store, fleet_ban_cb, fleet_event_cb, p);
	for (size_t b = 0; b < p->nbackends; b++)
		if (p->backend[b]->sync(p->backend_state[b]) != 0)
			p->enforce_failed = true;
	if (rc != 0) {
		/* Bans the poll handed over after the failure are seen: the
		 * rebuild after the refused batch has them in the jails, and
		 * re-applying every active ban puts them in the kernel. */
		p->enforce_failed = true;
		p->failed = true;
		return -1;
	}
	return 0;
}
