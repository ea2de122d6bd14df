/*
 * daemon - the event loop of "mailjail run".  See daemon.h.
 *
 * Signal handlers only set flags; the loop acts on them between batches, so
 * a batch is always committed whole.  follow_wait() returns early on a
 * signal.  Timers (reconcile, purge) are checked once per loop turn; the wait
 * never exceeds the nearest of them, nor the moment the open batch is due
 * for its commit (pipeline_commit_due: lines that arrive close together
 * share a transaction; a verdict commits at once).  A reload commits the
 * open batch first; a stop commits it on the way out (if the DB refuses,
 * its lines are read again at the next start).
 *
 * A batch the database refused for a reason that may clear (disk full, a
 * lock held too long) sets db_retry_at: until then no source is read, but
 * the loop goes on turning (signals, the deleted-file check, reconcile,
 * map expiry), then the batch is rewound and read again.  Any other refusal
 * (corrupt file, read-only, constraint, no memory) stops the daemon with
 * exit 1, so systemd's restart loop shows it.
 *
 * log = auto (config.h) reads /var/log/mail.log if it exists, else
 * Postfix's journal; both hold the same lines when rsyslog runs.  When the
 * choice changes between two starts (rsyslog installed or removed), the
 * source chosen now starts at its end rather than at a saved place or its
 * beginning: what it holds up to now was read from the other one.  Which
 * was read last is told by the store (updated_at of the file's position and
 * of the journal's cursor); the lines written while the daemon was stopped
 * for the switch are not read.
 *
 * Start-up, in this order: signals; the --log-file (safefile.h); the
 * configuration; the run user's check and the hand-over of root's state
 * files (runuser.h); the journal (root or its groups); the metrics' HTTP
 * socket only if its port is below 1024 (exporter.h); the privilege drop;
 * then, as the run user, the DB, the saved metric counters, the notifier,
 * the metrics' HTTP socket on any other port, the backends (netlink, maps),
 * restore and re-apply, the followed files, the journal's saved cursor, the
 * metrics textfile's first write; READY=1.  So started as root, root opens
 * no name in the run user's directories.
 */
#include "daemon.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "app.h"
#include "cli.h"
#include "enforce.h"
#include "exporter.h"
#include "follow.h"
#include "journal.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "pipeline.h"
#include "privdrop.h"
#include "runuser.h"

/* Lines that issue no verdict wait at most this long for a commit they
 * share with the lines after them (or for batch_lines of them). */
#define COMMIT_DELAY_MS 50
/* A line appended within this long of the last read is read with the
 * lines after it, one wake-up for all (follow_set_pace): at 2,000 lines/s
 * a quarter of the wake-ups; a quieter log, or a burst after 2 ms, is read
 * at once, so the ban latency does not move. */
#define READ_PACE_MS 2
/* How often the nftables table is checked for having been flushed away. */
#define RECONCILE_SECS 5
/* How often old events are purged from the DB. */
#define PURGE_SECS 3600
/* How often map entries whose hold or ban is over are removed. */
#define EXPIRE_SECS 10
/* Events are kept for the longest window, and never less than this. */
#define EVENTS_KEEP_MIN (2 * 86400)
/* After the database refused a batch (disk full, locked for over a minute,
 * a temporary I/O error), wait this long before reading it again. */
#define DB_RETRY_SECS 2
/* While it keeps refusing, say so again this often (the first refusal is
 * logged at once, the recovery too). */
#define DB_WARN_SECS 300

static volatile sig_atomic_t sig_stop, sig_reload, sig_reopen;

static void
on_signal(int sig)
{
	if (sig == SIGHUP)
		sig_reload = 1;
	else if (sig == SIGUSR1)
		sig_reopen = 1;
	else
		sig_stop = 1;
}

static int
install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: a signal must interrupt the wait. */
	if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0 ||
	    sigaction(SIGHUP, &sa, NULL) != 0 || sigaction(SIGUSR1, &sa, NULL) != 0)
		return -1;
	sa.sa_handler = SIG_IGN;
	return sigaction(SIGPIPE, &sa, NULL);
}

/* backends_init - every backend some jail needs (none when dry) */
static int
backends_init(struct backend_set *b, struct app *a, bool dry_run)
{
	b->n = 0;
	if (dry_run)
		return 0;
	return enforce_open(b, &a->cfg, app_actions(a));
}

struct reapply_ctx {
	struct pipeline *p;
	size_t n;
	bool failed;
};

static int
reapply_ban_cb(void *arg, const struct stored_ban *sb)
{
	struct reapply_ctx *c = arg;
	struct verdict v;

	memset(&v, 0, sizeof(v));
	v.jail = sb->jail;
	v.kind = strcmp(sb->target_kind, "ip") == 0 ? TARGET_IP : TARGET_ACCOUNT;
	snprintf(v.target, sizeof(v.target), "%s", sb->target);
	v.level = sb->level;
	v.actions = sb->actions;
	v.reply = sb->reply;
	v.started_at = sb->started_at;
	v.expires_at = sb->expires_at;
	/* A failure is logged by the backend; keep restoring the others. */
	if (pipeline_enforce(c->p, &v) != 0)
		c->failed = true;
	c->n++;
	return 0;
}

/* reapply_active - every ban in force goes back to the kernel and the maps */
static int
reapply_active(struct pipeline *p, struct store *st)
{
	struct reapply_ctx c = { p, 0, false };
	struct timespec t0, t1;
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = store_each_active_ban(st, (int64_t)time(NULL), reapply_ban_cb, &c);
	for (size_t b = 0; b < p->nbackends; b++)
		if (p->backend[b]->sync(p->backend_state[b]) != 0)
			rc = -1;
	if (c.failed)
		rc = -1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (c.n > 0)
		log_info("restored %zu active bans in %.1f ms", c.n,
		    (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
	return rc;
}

/* start_pipeline - pipeline over a's rules and jails, state restored; its
 * verdicts notified and its work counted in m */
static int
start_pipeline(struct pipeline *p, struct app *a, struct backend_set *b, struct metrics *m)
{
	if (pipeline_init(p, a->rules, a->jails, a->store, false) != 0)
		return -1;
	p->verbose_verdicts = true;
	if (metrics_declare(m, &a->cfg, a->rules, a->jails) != 0 ||
	    pipeline_set_signals(p, notify_enabled(&a->cfg.notify) ? &a->cfg.notify : NULL,
	    m) != 0) {
		pipeline_fini(p);
		return -1;
	}
	pipeline_set_commit_policy(p, COMMIT_DELAY_MS, a->cfg.batch_lines);
	for (size_t i = 0; i < b->n; i++)
		(void)pipeline_add_backend(p, b->ops[i], b->state[i]);
	if (pipeline_restore(p, (int64_t)time(NULL)) != 0) {
		pipeline_fini(p);
		return -1;
	}
	return 0;
}

/* logs_differ - do two configs name different logs (in any order)? */
static bool
logs_differ(const struct config *x, const struct config *y)
{
	if (x->nlogs != y->nlogs)
		return true;
	for (size_t i = 0; i < x->nlogs; i++) {
		bool found = false;
		for (size_t k = 0; k < y->nlogs && !found; k++)
			found = strcmp(x->logs[i], y->logs[k]) == 0;
		if (!found)
			return true;
	}
	return false;
}

/* reload - new config, rules and jails; on any error keep the running ones */
static void
reload(struct app *a, struct pipeline *p, struct backend_set *b,
    const struct daemon_options *o, struct metrics *m)
{
	struct app n;
	struct backend_set nb;
	struct pipeline np;
	struct diag d;

	diag_init(&d);
	if (app_load(&n, o->cfgpath, NULL, true, &d) != 0) {
		log_warnx("reload refused, the running configuration stays:");
		for (size_t i = 0; i < d.n; i++)
			log_warnx("%s", d.msgs[i]);
		diag_free(&d);
		app_free(&n);
		return;
	}
	diag_free(&d);
	/* The DB and the logs stay as they are: changing them needs a restart. */
	if (logs_differ(&a->cfg, &n.cfg)) {
		char why[1024];
		log_warnx("reload: [mailjail] log names other logs now; the ones "
		    "read change at the next restart");
		if (config_describe_log_auto(&n.cfg, why, sizeof(why)))
			log_warnx("reload: %s", why);
	}
	n.store = a->store;
	/* Not a->db_path: it may point into the old config, freed below. */
	n.db_path = store_path(a->store);
	if (backends_init(&nb, &n, o->dry_run) != 0) {
		log_warnx("reload refused: enforcement cannot be set up");
		n.store = NULL;
		app_free(&n);
		return;
	}
	if (start_pipeline(&np, &n, &nb, m) != 0) {
		log_warnx("reload refused: cannot rebuild state from the database");
		enforce_close(&nb);
		n.store = NULL;
		app_free(&n);
		return;
	}
	np.enforce_failed = p->enforce_failed;
	pipeline_fini(p);
	enforce_close(b);
	a->store = NULL;
	app_free(a);
	*a = n;
	*b = nb;
	*p = np;
	log_info("reloaded %s: %zu rules, %zu jails", a->cfg.path,
	    rules_count(a->rules), jails_count(a->jails));
}

struct saved_at {
	const char *node;          /* this node's rows only (NULL: one node) */
	const char *name;
	int found;
	int64_t at;
};

/* saved_mine - a saved place of s->name, of this node */
static void
saved_mine(struct saved_at *s, const char *node, const char *name, int64_t updated_at)
{
	if (node != NULL && s->node != NULL && strcmp(node, s->node) != 0)
		return;
	if (strcmp(name, s->name) == 0) {
		s->found = 1;
		s->at = updated_at;
	}
}

static int
position_at(void *arg, const char *node, const struct log_position *pos,
    int64_t updated_at)
{
	saved_mine(arg, node, pos->path, updated_at);
	return 0;
}

static int
cursor_at(void *arg, const char *node, const char *source, const char *cursor,
    int64_t updated_at)
{
	(void)cursor;
	saved_mine(arg, node, source, updated_at);
	return 0;
}

/* saved_at - when the position (file) or cursor (journal source) of name
 * was last committed by this node: 1 (*at set), 0 never, -1 error */
static int
saved_at(struct store *st, const char *node, const char *name, int64_t *at)
{
	struct saved_at s = { node, name, 0, 0 };
	int rc = journal_is_source(name) ? store_each_cursor(st, cursor_at, &s) :
	    store_each_position(st, position_at, &s);

	if (rc != 0)
		return -1;
	*at = s.at;
	return s.found;
}

/* auto_other - the source log = auto did not choose */
static const char *
auto_other(const struct app *a)
{
	return journal_is_source(a->cfg.logs[a->cfg.log_auto]) ?
	    a->cfg.log_auto_file : a->cfg.log_auto_journal;
}

/*
 * auto_switched - logs[i] is what log = auto chose, and the other source it
 * chooses between was read after it (or it never was): 1, it starts at its
 * end; 0, as usual; -1, error.  The same second counts as after: a few
 * lines not read cost less than lines counted twice.
 */
static int
auto_switched(struct app *a, size_t i)
{
	int64_t chosen_at = 0, other_at = 0;
	int chosen, other;

	if (a->cfg.log_auto != (int)i)
		return 0;
	if ((chosen = saved_at(a->store, a->cfg.node, a->cfg.logs[i], &chosen_at)) < 0 ||
	    (other = saved_at(a->store, a->cfg.node, auto_other(a), &other_at)) < 0)
		return -1;
	return other == 1 && (chosen == 0 || other_at >= chosen_at);
}

/*
 * files_open - follow each file log from its saved position, or from its
 * end after an auto switch; starts[k] gets where file k starts (for
 * rewind_batch: a batch refused before anything was saved goes back there)
 */
static int
files_open(struct app *a, struct follow *f, struct log_position *starts)
{
	for (size_t i = 0; i < a->cfg.nlogs; i++) {
		struct log_position pos;
		int found, switched, k;

		if (journal_is_source(a->cfg.logs[i]))
			continue;
		if ((found = store_get_position(a->store, a->cfg.logs[i], &pos)) < 0 ||
		    (switched = auto_switched(a, i)) < 0)
			return -1;
		if (switched) {
			if ((found = follow_end_position(a->cfg.logs[i], &pos)) < 0)
				return -1;
			log_info("log = auto: %s was read last and holds the same "
			    "lines: %s starts at its end (byte %" PRIu64 ")",
			    auto_other(a), a->cfg.logs[i], pos.offset);
		}
		if ((k = follow_add(f, a->cfg.logs[i], found ? &pos : NULL)) < 0)
			return -1;
		follow_position(f, (size_t)k, &starts[k]);
	}
	return 0;
}

/* journals_open - each "journal:" log, not positioned yet (before the drop:
 * reading the system journal needs root or group systemd-journal/adm) */
static int
journals_open(struct app *a, struct journal **js, size_t *nj)
{
	char err[512];

	*nj = 0;
	for (size_t i = 0; i < a->cfg.nlogs; i++) {
		if (!journal_is_source(a->cfg.logs[i]))
			continue;
		if (journal_open(&js[*nj], a->cfg.logs[i], i, a->cfg.journal_dir,
		    err, sizeof(err)) != 0) {
			log_warnx("%s", err);
			return -1;
		}
		(*nj)++;
	}
	return 0;
}

/* journals_position - each journal source at its saved cursor (after the
 * drop: the cursor is in the database) */
static int
journals_position(struct app *a, struct journal **js, size_t nj)
{
	char err[512];

	for (size_t i = 0; i < nj; i++) {
		char *cursor = NULL;
		int rc, switched = 0;

		if (store_get_cursor(a->store, journal_source(js[i]), &cursor) < 0)
			return -1;
		for (size_t k = 0; k < a->cfg.nlogs; k++)
			if (strcmp(a->cfg.logs[k], journal_source(js[i])) == 0)
				switched = auto_switched(a, k);
		if (switched < 0) {
			free(cursor);
			return -1;
		}
		if (switched) {
			/* No cursor: after the newest entry. */
			free(cursor);
			cursor = NULL;
			log_info("log = auto: %s was read last and holds the same "
			    "lines: %s starts after its newest entry", auto_other(a),
			    journal_source(js[i]));
		}
		rc = journal_position(js[i], cursor, err, sizeof(err));
		free(cursor);
		if (rc != 0) {
			log_warnx("%s", err);
			return -1;
		}
	}
	return 0;
}

/* journals_read - up to batch entries from each journal source; -1 on error.
 * None once a write of the batch failed (in the files' lines or a journal
 * before): it is rolled back anyway, and reading on only repeats work. */
static long
journals_read(struct journal **js, size_t nj, struct pipeline *p, size_t batch)
{
	long total = 0;

	for (size_t i = 0; i < nj && !p->failed; i++) {
		long n = journal_read(js[i], pipeline_journal_cb, p, batch);
		if (n < 0)
			return -1;
		pipeline_journal_lines(p, i, n);
		total += n;
	}
	return total;
}

/* wait_sources - sleep until a file or a journal has news, one of the
 * other descriptors is ready (a notification's delivery, a scrape, the
 * store: a fleet's notifications; -1s are skipped), or timeout_ms */
static int
wait_sources(struct follow *f, struct journal **js, size_t nj, const int *other,
    size_t nother, int timeout_ms)
{
	struct pollfd pfd[FOLLOW_EXTRA_FDS_MAX];
	size_t n = nj;

	for (size_t i = 0; i < nj; i++) {
		int t = journal_timeout_ms(js[i]);

		pfd[i].fd = journal_fd(js[i]);
		pfd[i].events = journal_events(js[i]);
		if (t >= 0 && (timeout_ms < 0 || t < timeout_ms))
			timeout_ms = t;
	}
	/* (No room: they are still served within a second, by the timeout.) */
	for (size_t i = 0; i < nother && n < FOLLOW_EXTRA_FDS_MAX; i++) {
		if (other[i] < 0)
			continue;
		pfd[n].fd = other[i];
		pfd[n].events = POLLIN;
		n++;
	}
	if (follow_wait_fds(f, timeout_ms, pfd, n) < 0)
		return -1;
	/* Readable or timed out: sd-journal wants to hear of both. */
	for (size_t i = 0; i < nj; i++)
		if (journal_process(js[i]) != 0)
			return -1;
	return 0;
}

/*
 * The fleet's sync (pipeline_fleet_sync): when another node's commit is
 * told (NOTIFY on the store's socket), but not more often than
 * FLEET_MIN_MS, and at least every FLEET_MAX_MS (a notification can be
 * lost with a connection; the heartbeat rides on the sync too).
 */
#define FLEET_MIN_MS 50
#define FLEET_MAX_MS 1000

struct fleet_clock {
	struct timespec last;
	bool news;
};

static long
ms_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long)(now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

/* fleet_due - is a sync due now?  (Reads the store's notifications.) */
static bool
fleet_due(struct fleet_clock *c, struct store *st)
{
	long ms;

	if (store_fleet_wake(st) > 0)
		c->news = true;
	ms = ms_since(&c->last);
	if (ms < (c->news ? FLEET_MIN_MS : FLEET_MAX_MS))
		return false;
	clock_gettime(CLOCK_MONOTONIC, &c->last);
	c->news = false;
	return true;
}

/* fleet_wait_ms - how long the loop may sleep before the next sync (a
 * notification read during a commit is not on the socket any more) */
static int
fleet_wait_ms(struct fleet_clock *c, struct store *st)
{
	long left;

	if (store_fleet_wake(st) > 0)
		c->news = true;
	left = (c->news ? FLEET_MIN_MS : FLEET_MAX_MS) - ms_since(&c->last);

	return left < 0 ? 0 : (int)left;
}

/* Re-applying after a failed enforcement backs off up to this (a permanent
 * refusal, e.g. an address the admin's own element overlaps, must not make
 * us re-send every ban every few seconds forever). */
#define REAPPLY_BACKOFF_MAX 300

/*
 * reconcile - if the nft table was flushed from outside, put it all back;
 * if a verdict did not reach a backend (netlink error, map write failure),
 * re-apply every active ban, backing off while that keeps failing.  Bans are
 * in the DB before any backend sees them, so this loses none.
 */
static void
reconcile(struct pipeline *p, struct store *st, time_t now)
{
	static time_t next_retry;
	static int backoff = RECONCILE_SECS;
	bool gone = false;

	for (size_t i = 0; i < p->nbackends; i++) {
		if (p->backend[i]->check == NULL)
			continue;
		if (p->backend[i]->check(p->backend_state[i]) == 0) {
			log_warnx("%s: our table is gone (flushed from outside?): restoring",
			    p->backend[i]->name);
			gone = true;
		}
	}
	if (!gone && (!p->enforce_failed || now < next_retry))
		return;
	if (!gone)
		log_warnx("some bans did not reach the kernel or the maps (see above): "
		    "re-applying every active ban");
	p->enforce_failed = false;
	if (reapply_active(p, st) != 0) {
		p->enforce_failed = true;
		next_retry = now + backoff;
		log_warnx("restoring active bans failed; will retry in %d s", backoff);
		if ((backoff *= 2) > REAPPLY_BACKOFF_MAX)
			backoff = REAPPLY_BACKOFF_MAX;
		return;
	}
	backoff = RECONCILE_SECS;
	if (!gone)
		log_info("active bans re-applied");
}

/* pause_until - sleep until due, a second at most, and come back at once on
 * a signal (the slices bound the delay of one that comes just before) */
static void
pause_until(time_t due)
{
	struct timespec ts = { 0, 100 * 1000 * 1000 };

	for (int i = 0; i < 10 && time(NULL) < due; i++) {
		if (sig_stop || sig_reload || sig_reopen)
			return;
		(void)nanosleep(&ts, NULL);
	}
}

/* pipeline_ready - false after a rewind could not rebuild it (zeroed) */
static bool
pipeline_ready(const struct pipeline *p)
{
	return p->rules != NULL;
}

/* The state of a database outage: refused batches in a row, since when,
 * when it was last said. */
struct db_outage {
	unsigned failures;
	time_t since, warned_at;
};

/*
 * db_refused - the database refused a batch (already rolled back), or
 * reading the state back for its retry failed (what says which).  Returns
 * 0 if the failure may clear (retry later), after logging it (the first
 * refused batch, then every DB_WARN_SECS) and telling systemd in STATUS;
 * -1 if it will not, after saying why the daemon stops.
 */
static int
db_refused(struct db_outage *o, struct store *st, time_t now, bool batch,
    const char *what)
{
	char status[700];

	if (!store_error_is_transient(st)) {
		log_warnx("database %s: %s: %s; retrying cannot help: stopping (the "
		    "next start reads the logs from the positions saved with the last "
		    "good batch)", store_path(st), what, store_errmsg(st));
		return -1;
	}
	/* (A read failing can only follow a refused batch.) */
	if (batch && o->failures++ == 0) {
		o->since = o->warned_at = now;
		log_warnx("database %s: %s: %s; the batch is rolled back and will be "
		    "read again from the saved log positions (retrying every %d s)",
		    store_path(st), what, store_errmsg(st), DB_RETRY_SECS);
	} else if (now - o->warned_at >= DB_WARN_SECS) {
		o->warned_at = now;
		log_warnx("database %s: still failing after %u refused batches in %ld s "
		    "(%s: %s); nothing new is recorded or banned meanwhile (bans in "
		    "force stay), retrying every %d s", store_path(st), o->failures,
		    (long)(now - o->since), what, store_errmsg(st), DB_RETRY_SECS);
	} else {
		return 0;
	}
	snprintf(status, sizeof(status), "STATUS=database refuses writes since %ld s "
	    "ago: %s; retrying every %d s", (long)(now - o->since), store_errmsg(st),
	    DB_RETRY_SECS);
	(void)sd_notify(0, status);
	return 0;
}

/*
 * rewind_batch - the database refused a batch (it was rolled back whole).
 * Its lines were counted in the jails but are in no table, so forget the
 * in-memory state, rebuild it from the store as at start, and move every log
 * back to the position saved with the last good commit: the same lines come
 * again, are counted once, and decide the same bans.  Journal sources go
 * back to their saved cursor the same way.  (Positions and cursors come
 * from the store, not from memory: a COMMIT whose answer a lost connection
 * cut off may have gone through.)  A file with no saved position goes back
 * to starts[i], where reading it began (files_open).  Returns 0, or -1 if
 * the store cannot even be read yet (the caller waits and tries again).
 */
static int
rewind_batch(struct app *a, struct pipeline *p, struct backend_set *b,
    struct follow *f, struct journal **js, size_t nj, const struct log_position *starts,
    struct metrics *m)
{
	struct log_position pos;
	bool enforce_failed = p->enforce_failed;

	pipeline_fini(p);
	jails_clear_state(a->jails);
	if (start_pipeline(p, a, b, m) != 0)
		return -1;
	p->enforce_failed = enforce_failed;
	for (size_t i = 0; i < follow_count(f); i++) {
		int found;

		follow_position(f, i, &pos);
		found = store_get_position(a->store, pos.path, &pos);
		if (found < 0)
			return -1;
		/* Never saved: from where reading began, in the file follow
		 * has open (a rotation since would have waited for a commit). */
		if (found == 0)
			pos = starts[i];
		(void)follow_rewind(f, i, &pos);
	}
	for (size_t i = 0; i < nj; i++) {
		char *saved = NULL;
		int rc;

		if (store_get_cursor(a->store, journal_source(js[i]), &saved) < 0)
			return -1;
		rc = journal_rewind_saved(js[i], saved);
		free(saved);
		if (rc != 0)
			return -1;
	}
	return 0;
}

int
daemon_run(const struct daemon_options *o)
{
	struct app a;
	struct backend_set b = { .n = 0 };
	struct pipeline p;
	struct follow *f = NULL;
	struct journal *js[CONFIG_LOGS_MAX];
	size_t nj = 0;
	struct log_position *starts = NULL;   /* of each file (files_open) */
	struct diag d;
	time_t next_reconcile = 0, next_purge = 0, next_expire = 0;
	int status = EXIT_RUNTIME;
	bool pipeline_up = false;
	struct db_outage outage = { 0, 0, 0 };
	time_t db_retry_at = 0;     /* set: a batch was refused; read again then */
	struct runuser ru;
	bool log_created = false;
	struct metrics *mt = NULL;  /* operator signals: counters, */
	struct exporter *ex = NULL; /* ... their textfile and /metrics, */
	struct notifier *nt = NULL; /* ... and the notifications' deliveries */
	bool exported = false;      /* the textfile was written as the run user */
	struct fleet_clock fleet = { { 0, 0 }, false };

	/* First: a SIGTERM during start-up stops us once it is done. */
	if (install_signals() != 0) {
		log_warn("sigaction");
		return EXIT_RUNTIME;
	}
	if (o->log_file && log_set_file(o->log_file, &log_created) != 0)
		return EXIT_RUNTIME;
	log_use_syslog(o->syslog);
	diag_init(&d);
	if (app_load(&a, o->cfgpath, NULL, true, &d) != 0) {
		for (size_t i = 0; i < d.n; i++)
			log_warnx("%s", d.msgs[i]);
		diag_free(&d);
		app_free(&a);
		return EXIT_USAGE;
	}
	/* Who we work as, and what that user must be able to do: said now,
	 * not at the first hold hours later.  Root's files in the user's
	 * directories are handed over first (runuser.h). */
	if (runuser_lookup(&a.cfg, &ru, &d) != 0) {
		for (size_t i = 0; i < d.n; i++)
			log_warnx("%s", d.msgs[i]);
		diag_free(&d);
		app_free(&a);
		return EXIT_RUNTIME;
	}
	if (log_created && ru.drop && fchown(STDERR_FILENO, ru.uid, ru.gid) != 0) {
		/* Made by us just now, through no symbolic link (log.h). */
		log_warn("log file %s: giving it to user %s", o->log_file, ru.name);
		diag_free(&d);
		app_free(&a);
		return EXIT_RUNTIME;
	}
	if (runuser_check(&ru, &a.cfg, o->db ? o->db : a.cfg.db,
	    o->dry_run ? 0 : app_actions(&a), true, &d) != 0) {
		for (size_t i = 0; i < d.n; i++)
			log_warnx("%s", d.msgs[i]);
		log_warnx("refusing to start: user %s could not do its work (see above)",
		    ru.name);
		diag_free(&d);
		app_free(&a);
		return EXIT_USAGE;
	}
	diag_free(&d);
	/*
	 * The root part: only what needs root, and nothing in the run user's
	 * directories.  The journal files and sd-journal's inotify watches
	 * (the system journal needs root or group systemd-journal/adm); the
	 * netlink socket does not need root (CAP_NET_ADMIN is kept).  Then
	 * only CAP_NET_ADMIN, as the run user: the database, the maps and the
	 * followed files are opened as that user, so root never follows a
	 * name it controls.
	 */
	if (journals_open(&a, js, &nj) != 0)
		goto out;
	if (metrics_open(&mt, a.cfg.node) != 0) {
		log_warnx("metrics: out of memory");
		goto out;
	}
	/* /metrics on a port below 1024 is bound now, by root (the drop
	 * leaves no CAP_NET_BIND_SERVICE, also to user root); any other after
	 * the drop, as the run user. */
	if (geteuid() == 0 && exporter_needs_privilege(&a.cfg.metrics) &&
	    exporter_open(&ex, mt, &a.cfg.metrics) != 0)
		goto out;
	{
		char err[512];

		if (privdrop(a.cfg.user, err, sizeof(err)) != 0) {
			log_warnx("dropping privileges: %s", err);
			goto out;
		}
	}
	for (size_t i = 0; i < nj; i++) {
		char path[4096];
		if (journal_unreadable(js[i], path, sizeof(path)))
			log_warnx("%s: user %s cannot read %s: journal files created from "
			    "now on (rotation) would be missed; add it to group "
			    "systemd-journal or adm", journal_source(js[i]), ru.name, path);
	}
	{
		char why[1024];
		if (config_describe_log_auto(&a.cfg, why, sizeof(why)))
			log_info("%s", why);
	}
	{
		char err[600];

		/* The first start makes the DB; later a missing one means it
		 * was deleted, and the history with it: say so. */
		if (app_open_store(&a, o->db, true) != 0)
			goto out;
		if (store_created(a.store))
			log_warnx("database %s did not exist: created a new, empty one "
			    "(first start, or the old one was deleted)", a.db_path);
		/* A fleet: this process is the node (another with its name is
		 * refused). */
		if (store_claim_node(a.store, err, sizeof(err)) != 0) {
			log_warnx("database %s: %s", a.db_path, err);
			goto out;
		}
	}
	/* A stop must not wait out a held lock (up to a minute per statement). */
	store_set_stop_flag(a.store, &sig_stop);
	/* The counters go on from where the last run saved them. */
	if (metrics_load(mt, a.store) != 0) {
		log_warnx("cannot read the saved metric counters: %s", store_errmsg(a.store));
		goto out;
	}
	if (notifier_open(&nt, &a.cfg.notify, a.cfg.path, mt) != 0) {
		log_warnx("cannot set up notifications: out of memory");
		goto out;
	}
	if (ex == NULL && exporter_open(&ex, mt, &a.cfg.metrics) != 0)
		goto out;
	if (backends_init(&b, &a, o->dry_run) != 0)
		goto out;
	if (start_pipeline(&p, &a, &b, mt) != 0) {
		log_warnx("cannot rebuild state from %s", a.db_path);
		goto out;
	}
	pipeline_up = true;
	if (reapply_active(&p, a.store) != 0) {
		log_warnx("some active bans could not be restored; will retry");
		p.enforce_failed = true;
	}
	if ((starts = calloc(CONFIG_LOGS_MAX, sizeof(*starts))) == NULL) {
		log_warn("calloc");
		goto out;
	}
	if (follow_open(&f, true) != 0)
		goto out;
	follow_set_pace(f, READ_PACE_MS);
	if (files_open(&a, f, starts) != 0)
		goto out;
	follow_committed(f);   /* where it starts is saved (or nothing is) */
	if (journals_position(&a, js, nj) != 0)
		goto out;
	/* The textfile is written now, as the run user: a directory it
	 * cannot write is said at start (runuser_check said it already; this
	 * is the write itself), not at the first flush. */
	{
		char err[600];
		if (exporter_flush(ex, a.store, &a.cfg, (int64_t)time(NULL), err, sizeof(err)) != 0) {
			log_warnx("[metrics] textfile: user %s cannot write it: %s", ru.name, err);
			goto out;
		}
		exported = true;
	}
	log_info("running: %zu logs, %zu rules, %zu jails, database %s%s",
	    a.cfg.nlogs, rules_count(a.rules), jails_count(a.jails), a.db_path,
	    o->dry_run ? " (dry run)" : "");
	(void)sd_notify(0, "READY=1");

	while (!sig_stop) {
		time_t now;
		long n = 0, m = 0;
		bool reloading = sig_reload;   /* the open batch commits first */

		if (db_retry_at == 0) {
			pipeline_tick(&p, (int64_t)time(NULL));
			/* Other nodes' bans and events first; a DB error is the
			 * batch's (p.failed): its commit fails below. */
			if (store_fleet(a.store) && fleet_due(&fleet, a.store))
				(void)pipeline_fleet_sync(&p);
			if ((n = follow_read(f, pipeline_follow_cb, &p, a.cfg.batch_lines)) < 0)
				goto out;
			/* Each journal source reads up to a batch of its own into the
			 * same transaction. */
			if ((m = journals_read(js, nj, &p, a.cfg.batch_lines)) < 0)
				goto out;
			if ((reloading || pipeline_commit_due(&p, f, pipeline_clock_ms())) &&
			    pipeline_commit_sources(&p, f, js, nj) != 0) {
				/* A stop gives up waiting for a lock: the batch is
				 * simply read again at the next start. */
				if (sig_stop)
					break;
				if (db_refused(&outage, a.store, time(NULL), true, "cannot commit") != 0)
					goto out;
				db_retry_at = time(NULL) + DB_RETRY_SECS;
				n = m = 0;
			} else if (outage.failures > 0 && p.commits > 0) {
				log_info("database %s: writes work again after %u refused "
				    "batch%s in %ld s; resumed from the saved log positions",
				    a.db_path, outage.failures, outage.failures == 1 ? "" : "es",
				    (long)(time(NULL) - outage.since));
				(void)sd_notify(0, "STATUS=");
				outage.failures = 0;
			}
		} else if (time(NULL) >= db_retry_at ||
		    db_retry_at - time(NULL) > DB_RETRY_SECS) {
			/* (Due, or the clock was set back.)  Forget the refusal:
			 * a failure now may not be the DB's.  A pipeline that
			 * failed to rebuild is zeroed: fini and the next rewind
			 * handle that. */
			store_clear_error(a.store);
			if (rewind_batch(&a, &p, &b, f, js, nj, starts, mt) == 0) {
				db_retry_at = 0;
				continue;   /* read the batch again at once */
			}
			if (db_refused(&outage, a.store, time(NULL), false,
			    "cannot read the state back to retry the refused batch") != 0)
				goto out;
			db_retry_at = time(NULL) + DB_RETRY_SECS;
		}
		if (sig_reopen) {
			sig_reopen = 0;
			if (log_reopen() == 0)
				log_info("log file reopened");
		}
		if (reloading) {
			sig_reload = 0;
			(void)sd_notify(0, "RELOADING=1");
			reload(&a, &p, &b, o, mt);
			if (notifier_configure(nt, &a.cfg.notify, a.cfg.path) != 0)
				log_warnx("notify: out of memory: the old [notify] settings stay");
			(void)sd_notify(0, "READY=1");
		}
		now = time(NULL);
		if (now >= next_reconcile) {
			char err[600];
			/* Writing on into a deleted file would lose it all at the
			 * next restart: stop now, loudly (systemd restarts us on a
			 * new DB, and the kernel keeps the bans meanwhile). */
			if (store_check_file(a.store, err, sizeof(err)) != 0) {
				log_warnx("database %s; stopping", err);
				goto out;
			}
			/* Reading works while writes are refused (a full disk):
			 * a flushed table gets its active bans back. */
			if (pipeline_ready(&p))
				reconcile(&p, a.store, now);
			next_reconcile = now + RECONCILE_SECS;
		}
		if (now >= next_expire) {
			/* From the backends themselves: the pipeline may be down
			 * during an outage, and holds must still end on time. */
			for (size_t i = 0; i < b.n; i++)
				if (b.ops[i]->expire &&
				    b.ops[i]->expire(b.state[i], (int64_t)now) != 0)
					log_warnx("%s: removing expired entries failed",
					    b.ops[i]->name);
			next_expire = now + EXPIRE_SECS;
		}
		/* Purging is a write: it waits until the DB takes writes again. */
		if (now >= next_purge && db_retry_at == 0) {
			int64_t keep = jails_longest_window(a.jails);
			if (keep < EVENTS_KEEP_MIN)
				keep = EVENTS_KEEP_MIN;
			if (store_purge_events(a.store, (int64_t)now - keep) != 0)
				log_warnx("purging old events failed: %s", store_errmsg(a.store));
			/* The counters in memory forget what the DB forgets, so
			 * keys that went quiet do not pile up in a long run. */
			jails_expire(a.jails, (int64_t)now);
			next_purge = now + PURGE_SECS;
		}
		/* Notifications committed are sent at once (the pipeline's
		 * count is the kick); metrics are written on their beat. */
		notifier_tick(nt, a.store, (int64_t)now, p.notes_now_committed);
		exporter_tick(ex, a.store, &a.cfg, (int64_t)now);
		/* More may be waiting: read before sleeping.  (Not for the
		 * files: follow_wait returns at once if a batch left lines.) */
		if (m > 0)
			continue;
		/* Sleep until a line arrives or the nearest timer is due.  A signal
		 * that came while we were busy is handled first; one that comes
		 * between this check and the wait is seen within a second. */
		if (sig_stop || sig_reload || sig_reopen)
			continue;
		{
			time_t due = next_reconcile < next_expire ? next_reconcile : next_expire;
			int wait_ms = due > now ? (int)(due - now) * 1000 : 100, commit_ms;

			if (db_retry_at != 0) {
				/* The logs are not read until the retry: a line
				 * arriving must not wake us. */
				pause_until(db_retry_at < due ? db_retry_at : due);
				continue;
			}
			int other[3] = { notifier_fd(nt), exporter_fd(ex), store_fd(a.store) };

			if (wait_ms > 1000)
				wait_ms = 1000;
			if (store_fleet(a.store)) {
				int fleet_ms = fleet_wait_ms(&fleet, a.store);
				if (fleet_ms < wait_ms)
					wait_ms = fleet_ms;
			}
			commit_ms = pipeline_commit_wait_ms(&p, pipeline_clock_ms());
			if (commit_ms >= 0 && commit_ms < wait_ms)
				wait_ms = commit_ms;
			if (wait_sources(f, js, nj, other, 3, wait_ms) < 0)
				goto out;
		}
	}
	log_info("stopping");
	(void)sd_notify(0, "STOPPING=1");
	/* Lines still waiting for their commit (a stop gives up a lock wait:
	 * then they are read again at the next start).  None after a refused
	 * batch: saving the positions alone would skip its lines. */
	if (db_retry_at == 0 && p.uncommitted > 0 &&
	    pipeline_commit_sources(&p, f, js, nj) != 0)
		log_warnx("database %s: cannot commit the last lines at stop (%s): "
		    "they are read again at the next start", a.db_path, store_errmsg(a.store));
	status = 0;
out:
	/* Deliveries running get a moment; the counters and the textfile are
	 * written a last time. */
	if (nt != NULL && a.store != NULL)
		notifier_close(nt, a.store);
	if (exported) {
		char err[600];
		if (exporter_flush(ex, a.store, &a.cfg, (int64_t)time(NULL), err, sizeof(err)) != 0)
			log_warnx("metrics: cannot write the textfile: %s", err);
	}
	exporter_close(ex);
	metrics_close(mt);
	/* Nothing read since the last commit stays unsaved: it is read again. */
	for (size_t i = 0; i < nj; i++)
		journal_close(js[i]);
	follow_close(f);
	free(starts);
	if (pipeline_up)
		pipeline_fini(&p);
	enforce_close(&b);
	app_free(&a);
	return status;
}
