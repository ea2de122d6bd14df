/*
 * pipeline - one batch of lines through rules, jails and the store, then
 * enforcement.  Shared by replay and run so both behave the same.
 *
 *   pipeline_line()    match, store the event (a row if a jail needs it for
 *                      a restart, else only counted), count it in the jails,
 *                      store the verdicts (inside the batch's transaction)
 *   pipeline_commit()  save every log's position (and journal cursor),
 *                      COMMIT, then hand the batch's verdicts to the
 *                      enforcement backends and raise its alarms
 *                      (pipeline_alarm: a log line and the metric; the
 *                      notification is queued in the batch's transaction)
 *
 * The database commits before the kernel or the map is touched: after a
 * crash in between, the start-up restore re-applies every active ban, so
 * nothing is lost and the record never claims more than was decided.
 *
 * When to commit (the daemon asks pipeline_commit_due; replay commits at
 * the end of each batch it reads): lines that arrive close together share
 * one transaction, as one commit costs more than the lines of a quiet
 * second (with SQLite: locks and WAL writes; with PostgreSQL: a round
 * trip).  A batch is due at once when one of its lines issued a verdict
 * (the ban reaches the kernel now: the ban latency does not change) or an
 * alarm (told now), when
 * a write of it failed (it is rolled back now), when it holds commit_lines
 * lines, or when a rotated log waits for it; otherwise when its first line
 * is commit_delay_ms old, or 3/4 of that at a wake-up for another line (no
 * timer wake-up while lines keep coming).  Until its commit a batch is only in memory and
 * in an open transaction, and the logs' saved positions are before its
 * lines, so a crash loses nothing: they are read again, exactly once.
 *
 * Memory: the pipeline borrows rules, jails, store and backends (the caller
 * owns them) and owns its pending-verdict array and statistics.
 */
#ifndef MAILJAIL_PIPELINE_H
#define MAILJAIL_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "enforce.h"
#include "follow.h"
#include "journal.h"
#include "jail.h"
#include "logtime.h"
#include "rules.h"
#include "store.h"

struct metrics;
struct notify_config;

#define PIPELINE_BACKENDS_MAX 4
#define PIPELINE_ALARMS_MAX 16     /* per batch; more are said at once */
/* Sources told apart in the lines metric (CONFIG_LOGS_MAX). */
#define PIPELINE_SOURCES_MAX 16

struct pipeline_stats {
	uint64_t lines;
	uint64_t bad_lines;        /* no stamp/program, NUL, invalid UTF-8 */
	uint64_t bad_fields;       /* a rule matched but a capture was invalid */
	uint64_t events;
	uint64_t verdicts;
	uint64_t fleet_bans;       /* bans and lifts of other nodes applied */
	uint64_t fleet_events;     /* events of other nodes counted */
	uint64_t alarms;           /* raised (committed) */
	uint64_t *rule_hits;       /* per rule index */
	size_t nrules;
	uint64_t *jail_verdicts;   /* per jail index */
	size_t njails;
};

struct pipeline {
	struct ruleset *rules;
	struct jailset *jails;
	struct store *store;       /* NULL: no DB (test-rules) */
	struct logtime lt;
	bool log_clock;            /* replay: the clock is the log's time */
	bool verbose_verdicts;     /* log one line per verdict, once committed */
	const struct enforcer_ops *backend[PIPELINE_BACKENDS_MAX];
	void *backend_state[PIPELINE_BACKENDS_MAX];
	size_t nbackends;
	struct verdict *pending;   /* verdicts of the open batch */
	size_t npending, cap;
	/* Alarms of the open batch (jails_take_alarm): notified in its
	 * transaction, said once it commits; a batch rolled back raises none
	 * (its lines are read again). */
	struct alarm alarms[PIPELINE_ALARMS_MAX];
	size_t nalarms;
	bool in_tx;
	bool failed;               /* a DB write of the open batch failed */
	bool enforce_failed;       /* a committed verdict did not reach a backend:
	                            * the caller re-applies the active bans */
	struct pipeline_saved {    /* positions as last committed, per log */
		uint64_t inode, offset, first_hash;
	} *saved;
	size_t nsaved;
	uint64_t commits;          /* batches committed since pipeline_init */
	/* Fleet: verdicts of this node another node's row won over (jail
	 * owned by the jailset): when that row comes, the jails have it. */
	struct pipeline_lost {
		const char *jail;
		char target[MJ_TARGET_MAX];
	} *lost;
	size_t nlost, caplost;
	/* The commit policy (see above) and the open batch's place in it. */
	int commit_delay_ms;       /* 0: every pipeline_commit_due is true */
	size_t commit_lines;
	size_t uncommitted;        /* lines since the last commit or rollback */
	int64_t first_line_ms;     /* pipeline_clock_ms() of the first of them */
	int64_t last_time;         /* newest event time seen */
	struct pipeline_stats st;
	/* Operator signals (pipeline_set_signals); both may be NULL. */
	const struct notify_config *notify;
	struct metrics *metrics;
	uint64_t notes_committed;  /* notifications committed since init */
	uint64_t notes_now_committed;  /* ... of them to be sent at once (no
	                            * digest): the notifier's kick */
	size_t notes_pending, notes_now_pending;   /* ... queued in the open batch */
	/* What the open batch read, for the metrics at its commit. */
	uint32_t batch_lines[PIPELINE_SOURCES_MAX];          /* by follow index */
	uint32_t batch_journal_lines[PIPELINE_SOURCES_MAX];  /* by journal */
	uint32_t *batch_rule_hits;                           /* per rule */
	int *rule_series;          /* metrics handle of each rule's event */
	int file_series[PIPELINE_SOURCES_MAX];               /* -2: not looked up */
};

int pipeline_init(struct pipeline *p, struct ruleset *rules, struct jailset *jails,
    struct store *store, bool log_clock);
void pipeline_fini(struct pipeline *p);
int pipeline_add_backend(struct pipeline *p, const struct enforcer_ops *ops, void *state);

/*
 * Operator signals: with notify set, each verdict queues its notification
 * (notify.h) in the batch's transaction, and notes_committed counts those
 * committed (notes_now_committed those not waiting for a digest: the
 * notifier's kick, so a storm of digest bans does not make it read the
 * outbox at every commit); with metrics set, each commit counts its
 * lines, events, verdicts and enforcement errors, and times the commit.
 * Replay sets neither unless asked (replay --notify).
 */
int pipeline_set_signals(struct pipeline *p, const struct notify_config *notify,
    struct metrics *metrics);

/* Rebuild jail state from the store: bans within the history span, events
 * within the longest window, counted back from now (the wall clock) or, with
 * the log clock, from the newest event stored. */
int pipeline_restore(struct pipeline *p, int64_t wall_now);

/* The daemon's wall clock, before each read: syslog stamps carry no year,
 * which is inferred from "now", so a daemon that runs across New Year must
 * not keep the year it started in.  (Replay keeps its start time.) */
void pipeline_tick(struct pipeline *p, int64_t wall_now);

/* One line (no newline); opens the batch transaction if needed.  Returns
 * -1 once a write of the open batch failed, without looking at the line
 * (the caller stops reading and commits, which rolls the batch back). */
int pipeline_line(struct pipeline *p, const char *line, size_t len);
/* follow_line_cb adapter: arg is the pipeline, file the follow index. */
int pipeline_follow_cb(void *arg, size_t file, const char *line, size_t len);
/* The same for journal sources (whose index is not a follow index); the
 * caller says how many lines journal js[i] gave (pipeline_journal_lines). */
int pipeline_journal_cb(void *arg, size_t index, const char *line, size_t len);
void pipeline_journal_lines(struct pipeline *p, size_t i, long n);

/* Save positions of every log in f (may be NULL), commit, enforce.
 * Nothing is written when the batch has no event and no log moved since the
 * last commit (an idle daemon does not write).  After the commit, tells f
 * (follow_committed), which from then on crosses a rotation only once the
 * old file's lines are committed.  Returns 0, or -1 if the
 * commit or any write of the batch failed (the batch was rolled back whole:
 * the caller must re-read from the saved positions with jail state rebuilt
 * from the store, or stop). */
int pipeline_commit(struct pipeline *p, struct follow *f);
/* The same, also saving the cursor of each journal source in js[0..nj)
 * that moved (journal_pending_cursor) in the same transaction. */
int pipeline_commit_sources(struct pipeline *p, struct follow *f, struct journal *const *js,
    size_t nj);

/* Lines wait at most delay_ms, and at most max_lines of them (> 0), for
 * a commit they share (see above).  pipeline_init sets no delay. */
void pipeline_set_commit_policy(struct pipeline *p, int delay_ms, size_t max_lines);

/* The clock of the commit policy: CLOCK_MONOTONIC in milliseconds. */
int64_t pipeline_clock_ms(void);

/* Whether the open batch must be committed now (see above) at now_ms
 * (pipeline_clock_ms); f (may be NULL) is asked whether a rotation waits
 * for it.  True too when no line waits: the commit then only saves
 * positions that moved without a line (a skipped line, a rotation, a
 * journal's starting cursor), or does nothing. */
bool pipeline_commit_due(const struct pipeline *p, const struct follow *f, int64_t now_ms);

/* How long the caller may wait before the open batch is due, in ms from
 * now_ms; -1 if no line waits for a commit (wait as long as you like). */
int pipeline_commit_wait_ms(const struct pipeline *p, int64_t now_ms);

/* Say an alarm: one log line ("alarm jail=J event=E: reason") and
 * mailjail_alarms_total{jail,event}.  Called for each alarm of a batch once
 * it committed (its notification committed with it). */
void pipeline_alarm(struct pipeline *p, const struct alarm *a);

/* Hand a verdict made outside the log (operator ban) to the backends. */
int pipeline_enforce(struct pipeline *p, const struct verdict *v);

/*
 * Fleet: what the other nodes committed since the last sync
 * (store_fleet_poll).  Their bans are counted in the jails (levels,
 * recidive, no counting while in force) and enforced here at once, like
 * the start-up restore does; their lifts are lifted in the jails and
 * removed from the kernel set and the maps.  Their events are counted in
 * the jails like this node's own lines, and a verdict they cause goes into
 * a batch opened for them, written and enforced at its commit like one a
 * line caused (the store writes one row per offence: if another node wrote
 * it first, this node's copy is dropped and the other's comes with a later
 * sync).  Call between batches.  Returns 0, or -1 after a DB error (then
 * p->failed is set: the next commit rolls back and fails, as for a line).
 */
int pipeline_fleet_sync(struct pipeline *p);

#endif
