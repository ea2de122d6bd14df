/*
 * store_sqlite - the SQLite backend of the store: the embedded default, one
 * file (any `db` value that is not a PostgreSQL URI).  See store.h for the
 * contracts and store_backend.h for how store.c calls it.
 *
 * The schema comes from schemas/ (compiled in as schema_steps[]); a DB at
 * user_version V gets steps V+1.. applied, each in its own transaction.
 * WAL mode lets the sqlite3 CLI read while the daemon writes; a busy timeout
 * makes a CLI holding a lock a wait, not an error.  synchronous=NORMAL in WAL
 * mode keeps the DB consistent after a crash (a power loss may lose the last
 * commits, which then are simply re-read from the log: offsets commit with
 * the events they caused).
 *
 * Memory: struct sqlite_store owns the connection and every prepared
 * statement; they are finalized by sq_close().
 */
#include "store_backend.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "schema.h"

enum stmt_id {
	ST_BEGIN, ST_COMMIT, ST_ROLLBACK,
	ST_ADD_EVENT, ST_ADD_DELIVERY, ST_ADD_BAN, ST_LIFT_ANY, ST_LIFT_JAIL,
	ST_GET_POS, ST_SAVE_POS,
	ST_EVENTS_SINCE, ST_BANS_SINCE, ST_BANS_ACTIVE, ST_PURGE_EVENTS, ST_NEWEST,
	ST_BANS_FILTER, ST_EVENT_COUNTS, ST_POSITIONS, ST_ACCOUNT_QIDS,
	ST_GET_CURSOR, ST_SAVE_CURSOR, ST_CURSORS,
	ST_ADD_COUNT, ST_PURGE_COUNTS,
	ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_ADD_EVENT] =
	    "INSERT INTO events(time, rule, event, ip, account, sender, qid, nrcpt)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	/* a delivery result or link: rare, so its two columns are not bound
	 * for every other row (two NULL columns more cost a row ~12 %) */
	[ST_ADD_DELIVERY] =
	    "INSERT INTO events(time, rule, event, ip, account, sender, qid, nrcpt,"
	    " rcpt, newqid) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
	[ST_ADD_BAN] =
	    "INSERT INTO bans(jail, target, target_kind, level, reason, actions,"
	    " reply, started_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
	[ST_LIFT_ANY] =
	    "UPDATE bans SET lifted_at = ?2 WHERE target = ?1 AND lifted_at IS NULL"
	    " AND expires_at > ?2",
	[ST_LIFT_JAIL] =
	    "UPDATE bans SET lifted_at = ?2 WHERE target = ?1 AND lifted_at IS NULL"
	    " AND expires_at > ?2 AND jail = ?3",
	[ST_GET_POS] =
	    "SELECT inode, offset, first_hash FROM log_position WHERE path = ?1",
	[ST_SAVE_POS] =
	    "INSERT INTO log_position(path, inode, offset, first_hash, updated_at)"
	    " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(path) DO UPDATE SET"
	    " inode = excluded.inode, offset = excluded.offset,"
	    " first_hash = excluded.first_hash, updated_at = excluded.updated_at",
	[ST_EVENTS_SINCE] =
	    "SELECT time, rule, event, ip, account, sender, qid, nrcpt, rcpt, newqid"
	    " FROM events WHERE time >= ?1 ORDER BY id",
	[ST_BANS_SINCE] =
	    "SELECT id, jail, target, target_kind, level, reason, actions, reply,"
	    " started_at, expires_at, lifted_at FROM bans WHERE started_at >= ?1"
	    " ORDER BY started_at, id",
	[ST_BANS_ACTIVE] =
	    "SELECT id, jail, target, target_kind, level, reason, actions, reply,"
	    " started_at, expires_at, lifted_at FROM bans WHERE lifted_at IS NULL"
	    " AND expires_at > ?1 ORDER BY started_at, id",
	[ST_PURGE_EVENTS] = "DELETE FROM events WHERE time < ?1",
	[ST_PURGE_COUNTS] = "DELETE FROM event_counts WHERE minute < ?1",
	[ST_ADD_COUNT] =
	    "INSERT INTO event_counts(minute, rule, event, n) VALUES (?1, ?2, ?3, ?4)"
	    " ON CONFLICT(minute, rule) DO UPDATE SET n = n + excluded.n",
	[ST_BANS_FILTER] =
	    "SELECT id, jail, target, target_kind, level, reason, actions, reply,"
	    " started_at, expires_at, lifted_at FROM bans"
	    " WHERE (?1 IS NULL OR jail = ?1) AND (?2 IS NULL OR target = ?2)"
	    " AND (?3 = 0 OR (lifted_at IS NULL AND expires_at > ?4))"
	    " ORDER BY started_at DESC, id DESC",
	[ST_EVENT_COUNTS] =
	    "SELECT event, sum(n) FROM event_counts WHERE minute >= ?1"
	    " GROUP BY event ORDER BY event",
	[ST_POSITIONS] =
	    "SELECT path, inode, offset, first_hash, updated_at FROM log_position ORDER BY path",
	[ST_ACCOUNT_QIDS] =
	    "SELECT qid FROM events WHERE event = 'submission' AND account = ?1"
	    " AND qid IS NOT NULL ORDER BY time DESC, id DESC LIMIT ?2",
	[ST_GET_CURSOR] = "SELECT cursor FROM journal_cursor WHERE source = ?1",
	[ST_SAVE_CURSOR] =
	    "INSERT INTO journal_cursor(source, cursor, updated_at) VALUES (?1, ?2, ?3)"
	    " ON CONFLICT(source) DO UPDATE SET cursor = excluded.cursor,"
	    " updated_at = excluded.updated_at",
	[ST_CURSORS] =
	    "SELECT source, cursor, updated_at FROM journal_cursor ORDER BY source",
	[ST_NEWEST] =
	    "SELECT max(coalesce((SELECT max(time) FROM events), 0),"
	    " coalesce((SELECT max(started_at) FROM bans), 0))",
};

/* Events are written EVENT_ROWS at a time with one multi-row INSERT: one
 * statement run per row cost more than the row itself (cursor set-up,
 * record buffers and statement end, each with its mallocs). */
#define EVENT_ROWS 64
#define EVENT_COLS 8

/* The open transaction's per-minute counts (store_counts, in
 * store_backend.h) are written at flush, COUNT_ROWS per multi-row upsert. */
#define COUNT_ROWS 32

/* Statements of the operator signals' block (near the end of this file). */
#define STORE_SIG_STMTS 12

struct sqlite_store {
	sqlite3 *db;
	sqlite3_stmt *stmt[ST_COUNT];
	sqlite3_stmt *add_events;            /* EVENT_ROWS rows */
	sqlite3_stmt *add_counts;            /* COUNT_ROWS rows */
	struct event pending[EVENT_ROWS];    /* added, not yet written */
	size_t npending;
	struct store_counts counts;
	bool in_tx;
	/* SQLite rolled the open transaction back by itself (IOERR, some FULL,
	 * NOMEM, INTERRUPT): every write until store_rollback would commit on
	 * its own, outside the batch, so none is made. */
	bool tx_lost;
	char *path;
	char lasterr[512];         /* the last failure, kept past a rollback */
	char logged[512];          /* the last failure logged: repeats are not */
	int errcode;               /* its extended code (0: none since begin) */
	int errsys;                /* its OS errno, for IOERR and CANTOPEN */
	struct timespec busy_since;
	bool busy_warned;
	const volatile sig_atomic_t *stop;   /* set: the busy wait gives up */
	dev_t dev;                 /* the file opened, for store_check_file */
	ino_t ino;
	bool created;              /* store_open made the file */
	/* Operator signals (near the end of this file): prepared on first use. */
	sqlite3_stmt *sig[STORE_SIG_STMTS];
};

static int flush_pending(struct sqlite_store *st);
static void sq_close(void *be);

/* Waiting for a sqlite3 CLI that holds a lock is normal; a minute is not:
 * then the write fails with SQLITE_BUSY and the caller retries the batch. */
#define STORE_BUSY_MS 60000
/* A wait this long is worth a warning (once per wait). */
#define STORE_BUSY_WARN_MS 2000

static const char *
sq_path(const void *be)
{
	const struct sqlite_store *st = be;

	return st->path;
}

static bool
sq_created(const void *be)
{
	const struct sqlite_store *st = be;

	return st->created;
}

static const char *
sq_errmsg(const void *be)
{
	const struct sqlite_store *st = be;

	if (st->lasterr[0])
		return st->lasterr;
	/* A batch can fail before any SQL did (no memory for a verdict). */
	if (sqlite3_errcode(st->db) == SQLITE_OK)
		return "no database error (out of memory?)";
	return sqlite3_errmsg(st->db);
}

/* os_errno - the OS error behind the connection's last failure, or 0.
 * SQLite records it for IOERR and CANTOPEN only and never clears it, so for
 * any other code it is a stale one from an earlier failure. */
static int
os_errno(sqlite3 *db)
{
	int code = sqlite3_extended_errcode(db) & 0xff;

	return code == SQLITE_IOERR || code == SQLITE_CANTOPEN ? sqlite3_system_errno(db) : 0;
}

/* disk_full - did the last failure come from a full filesystem?  SQLite
 * says SQLITE_FULL for its files' growth, but a plain "disk I/O error" when
 * the -shm or -wal file cannot be made: the OS error tells. */
static bool
disk_full(sqlite3 *db)
{
	int sys = os_errno(db);

	return (sqlite3_extended_errcode(db) & 0xff) == SQLITE_FULL || sys == ENOSPC ||
	    sys == EDQUOT;
}

/* note_error - keep SQLite's words and codes for the failure (and say what
 * a full disk means); logged once here, with the file named */
static void
note_error(struct sqlite_store *st)
{
	if (st->in_tx && sqlite3_get_autocommit(st->db))
		st->tx_lost = true;
	st->errcode = sqlite3_extended_errcode(st->db);
	st->errsys = os_errno(st->db);
	if (disk_full(st->db))
		snprintf(st->lasterr, sizeof(st->lasterr), "%s (disk full: no space "
		    "left for %s or its -wal file)", sqlite3_errmsg(st->db), st->path);
	else
		snprintf(st->lasterr, sizeof(st->lasterr), "%s", sqlite3_errmsg(st->db));
	/* A retried batch failing the same way is not news until it works. */
	if (strcmp(st->logged, st->lasterr) == 0)
		return;
	snprintf(st->logged, sizeof(st->logged), "%s", st->lasterr);
	log_warnx("database %s: %s", st->path, st->lasterr);
}

static double
ms_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) * 1e3 +
	    (double)(now.tv_nsec - t0->tv_nsec) / 1e6;
}

/*
 * busy_wait - SQLite's busy handler: another process (a sqlite3 shell in a
 * transaction, a backup) holds the lock.  Sleep and try again, warn once if
 * it lasts, give up after STORE_BUSY_MS or when the stop flag is set (the
 * sleep ends early on the signal that sets it).  Replaces sqlite3_busy_timeout so
 * the wait is visible in the log.
 */
static int
busy_wait(void *arg, int count)
{
	struct sqlite_store *st = arg;
	double waited;

	if (count == 0) {
		clock_gettime(CLOCK_MONOTONIC, &st->busy_since);
		st->busy_warned = false;
	}
	waited = ms_since(&st->busy_since);
	/* A stop asked for (SIGTERM) must not wait out the minute: the
	 * statement fails with SQLITE_BUSY, and the batch is read again at
	 * the next start.  The failure is logged as such, not as a release. */
	if (waited >= STORE_BUSY_MS || (st->stop != NULL && *st->stop)) {
		st->busy_warned = false;
		return 0;
	}
	if (!st->busy_warned && waited >= STORE_BUSY_WARN_MS) {
		log_warnx("database %s: locked by another process for %.0f s (a sqlite3 "
		    "shell in a transaction?); waiting up to %d s", st->path, waited / 1e3,
		    STORE_BUSY_MS / 1000);
		st->busy_warned = true;
	}
	usleep(count < 10 ? 1000u * (unsigned)(count + 1) : 20000u);
	return 1;
}

/* busy_done - after a statement that may have waited: say the wait is over */
static void
busy_done(struct sqlite_store *st)
{
	if (!st->busy_warned)
		return;
	st->busy_warned = false;
	log_info("database %s: lock released after %.1f s, going on", st->path,
	    ms_since(&st->busy_since) / 1e3);
}

/* exec_simple - run SQL without results, reporting into err */
static int
exec_simple(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errlen, "%s%s", msg ? msg : sqlite3_errmsg(db),
		    disk_full(db) ? " (disk full)" : "");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

/* store_migrate - bring the schema to the newest version, one step per tx */
static int
store_migrate(sqlite3 *db, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	int version = 0;
	int latest = schema_nsteps ? schema_steps[schema_nsteps - 1].version : 0;

	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK ||
	    sqlite3_step(s) != SQLITE_ROW) {
		snprintf(err, errlen, "cannot read schema version: %s", sqlite3_errmsg(db));
		sqlite3_finalize(s);
		return -1;
	}
	version = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	if (version > latest) {
		snprintf(err, errlen, "database schema version %d is newer than this "
		    "mailjail understands (%d)", version, latest);
		return -1;
	}
	for (unsigned i = 0; i < schema_nsteps; i++) {
		char pragma[64];

		if (schema_steps[i].version <= version)
			continue;
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d",
		    schema_steps[i].version);
		if (exec_simple(db, "BEGIN IMMEDIATE", err, errlen) != 0)
			return -1;
		if (exec_simple(db, schema_steps[i].sql, err, errlen) != 0 ||
		    exec_simple(db, pragma, err, errlen) != 0) {
			char tmp[256];
			snprintf(tmp, sizeof(tmp), "%s", err);
			snprintf(err, errlen, "schema %s: %s", schema_steps[i].name, tmp);
			(void)exec_simple(db, "ROLLBACK", tmp, sizeof(tmp));
			return -1;
		}
		if (exec_simple(db, "COMMIT", err, errlen) != 0)
			return -1;
	}
	return 0;
}

/* prepare_rows - head, then nrows copies of row, comma-separated, then tail */
static int
prepare_rows(struct sqlite_store *st, const char *head, const char *row, int nrows,
    const char *tail, sqlite3_stmt **out)
{
	size_t hl = strlen(head), rl = strlen(row), tl = strlen(tail);
	size_t len = hl + (size_t)nrows * (rl + 1) + tl + 1, off = hl;
	char *sql = malloc(len);
	int rc;

	if (sql == NULL)
		return -1;
	memcpy(sql, head, hl);
	for (int i = 0; i < nrows; i++) {
		if (i)
			sql[off++] = ',';
		memcpy(sql + off, row, rl);
		off += rl;
	}
	memcpy(sql + off, tail, tl + 1);
	rc = sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL);
	free(sql);
	return rc == SQLITE_OK ? 0 : -1;
}

/* prepare_multi - the multi-row forms of ST_ADD_EVENT and ST_ADD_COUNT */
static int
prepare_multi(struct sqlite_store *st)
{
	if (prepare_rows(st, "INSERT INTO events(time, rule, event, ip, account, sender,"
	    " qid, nrcpt) VALUES ", "(?,?,?,?,?,?,?,?)", EVENT_ROWS, "", &st->add_events) != 0)
		return -1;
	return prepare_rows(st, "INSERT INTO event_counts(minute, rule, event, n) VALUES ",
	    "(?,?,?,?)", COUNT_ROWS, " ON CONFLICT(minute, rule) DO UPDATE SET n = n + excluded.n",
	    &st->add_counts);
}

/* tune_library - once per process, before SQLite initialises itself: no
 * memory statistics, which take a global mutex around every malloc (and
 * Debian's SQLite, built without lookaside, mallocs every record buffer).
 * If SQLite is already initialised (another module opened a database
 * first) the call is refused and the statistics simply stay on. */
static void
tune_library(void)
{
	static bool done;

	if (done)
		return;
	done = true;
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static int
sq_open(const char *path, bool create, void **out, char *err, size_t errlen)
{
	struct sqlite_store *st = NULL;
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
	const char *slash = strrchr(path, '/');
	bool created;

	*out = NULL;
	if (!create && access(path, F_OK) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	/* Name the missing directory rather than let SQLite say "unable to open". */
	if (slash != NULL && slash != path) {
		char dir[4096];
		struct stat sb;

		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
		if (stat(dir, &sb) != 0) {
			snprintf(err, errlen, "%s: directory %s: %s", path, dir, strerror(errno));
			return -1;
		}
	}
	if (create)
		flags |= SQLITE_OPEN_CREATE;
	tune_library();
	created = create && access(path, F_OK) != 0;
	if ((st = calloc(1, sizeof(*st))) == NULL || (st->path = strdup(path)) == NULL) {
		snprintf(err, errlen, "out of memory");
		free(st);
		return -1;
	}
	if (sqlite3_open_v2(path, &st->db, flags, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path,
		    st->db ? sqlite3_errmsg(st->db) : "cannot open");
		goto fail;
	}
	sqlite3_extended_result_codes(st->db, 1);
	sqlite3_busy_handler(st->db, busy_wait, st);
	/* A file that is not a database fails here, with SQLite's own words.
	 * The page cache is 512 KiB, not SQLite's 2 MiB: the daemon appends
	 * (the rightmost pages) and reads the window back once at start, so a
	 * bigger cache bought no speed, only 1.6 MB of RSS. */
	if (exec_simple(st->db, "PRAGMA journal_mode = WAL", err, errlen) != 0 ||
	    exec_simple(st->db, "PRAGMA synchronous = NORMAL", err, errlen) != 0 ||
	    exec_simple(st->db, "PRAGMA foreign_keys = ON", err, errlen) != 0 ||
	    exec_simple(st->db, "PRAGMA temp_store = MEMORY", err, errlen) != 0 ||
	    exec_simple(st->db, "PRAGMA cache_size = -512", err, errlen) != 0)
		goto fail_prefix;
	if (store_migrate(st->db, err, errlen) != 0)
		goto fail_prefix;
	{
		struct stat sb;
		if (stat(path, &sb) != 0) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			goto fail;
		}
		st->dev = sb.st_dev;
		st->ino = sb.st_ino;
	}
	st->created = created;
	for (int i = 0; i < ST_COUNT; i++) {
		if (sqlite3_prepare_v3(st->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
		    &st->stmt[i], NULL) != SQLITE_OK) {
			snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(st->db));
			goto fail;
		}
	}
	if (prepare_multi(st) != 0) {
		snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(st->db));
		goto fail;
	}
	*out = st;
	return 0;

fail_prefix: {
		char tmp[512];
		snprintf(tmp, sizeof(tmp), "%s", err);
		snprintf(err, errlen, "%s: %s", path, tmp);
	}
fail:
	sq_close(st);
	return -1;
}

static void
sq_set_stop_flag(void *be, const volatile sig_atomic_t *flag)
{
	struct sqlite_store *st = be;

	st->stop = flag;
}

/*
 * store_error_is_transient - may the last failure clear by itself?
 * Disk or quota full (the admin frees space), the lock held past the busy
 * wait (a long sqlite3 session, a backup; SQLITE_BUSY and _LOCKED, and
 * SQLITE_PROTOCOL, a lost race on the WAL locks), or an I/O error whose OS
 * error says "try again" (EAGAIN, EINTR, ETIMEDOUT, ENOLCK: what a slow
 * network filesystem returns).  Everything else does not: a corrupt file,
 * a read-only file or filesystem, EIO from the disk, a constraint, no
 * memory, or no DB error at all.
 */
static bool
sq_error_is_transient(const void *be)
{
	const struct sqlite_store *st = be;

	switch (st->errcode & 0xff) {
	case SQLITE_FULL:
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
	case SQLITE_PROTOCOL:
		return true;
	case SQLITE_IOERR:
	case SQLITE_CANTOPEN:
		switch (st->errsys) {
		case ENOSPC:
		case EDQUOT:
		case EAGAIN:
		case EINTR:
		case ETIMEDOUT:
		case ENOLCK:
			return true;
		}
		return false;
	default:
		return false;
	}
}

static void
sq_clear_error(void *be)
{
	struct sqlite_store *st = be;

	st->lasterr[0] = '\0';
	st->errcode = 0;
	st->errsys = 0;
}

static int
sq_check_file(const void *be, char *err, size_t errlen)
{
	const struct sqlite_store *st = be;
	struct stat sb;

	if (stat(st->path, &sb) != 0) {
		if (errno != ENOENT)
			return 0;   /* cannot look (permissions): not a finding */
		snprintf(err, errlen, "%s: deleted while open", st->path);
		return -1;
	}
	if (sb.st_dev != st->dev || sb.st_ino != st->ino) {
		snprintf(err, errlen, "%s: replaced by another file while open", st->path);
		return -1;
	}
	return 0;
}

static void
sq_close(void *be)
{
	struct sqlite_store *st = be;

	if (st == NULL)
		return;
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(st->stmt[i]);
	sqlite3_finalize(st->add_events);
	sqlite3_finalize(st->add_counts);
	for (int i = 0; i < STORE_SIG_STMTS; i++)
		sqlite3_finalize(st->sig[i]);
	sqlite3_close(st->db);
	free(st->path);
	free(st);
}

/* run_done - step a statement that returns no rows, then reset it */
static int
run_done(struct sqlite_store *st, sqlite3_stmt *s)
{
	int rc;

	if (st->tx_lost) {
		sqlite3_clear_bindings(s);
		return -1;
	}
	rc = sqlite3_step(s);

	/* The error is the step's: read it before reset can change it. */
	if (rc != SQLITE_DONE)
		note_error(st);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	busy_done(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int
sq_begin(void *be)
{
	struct sqlite_store *st = be;

	sq_clear_error(st);
	if (run_done(st, st->stmt[ST_BEGIN]) != 0)
		return -1;
	st->in_tx = true;
	return 0;
}

static int
sq_commit(void *be)
{
	struct sqlite_store *st = be;

	if (flush_pending(st) != 0 || run_done(st, st->stmt[ST_COMMIT]) != 0)
		return -1;
	st->in_tx = false;
	st->logged[0] = '\0';
	return 0;
}

static bool
sq_in_transaction(const void *be)
{
	return ((const struct sqlite_store *)be)->in_tx;
}

static int
sq_rollback(void *be)
{
	struct sqlite_store *st = be;

	st->npending = 0;
	store_counts_clear(&st->counts);
	st->tx_lost = false;
	if (!st->in_tx)
		return 0;
	st->in_tx = false;
	/* After some errors SQLite has already rolled back; that is fine. */
	if (sqlite3_get_autocommit(st->db))
		return 0;
	/* The failure that caused the rollback is the one to report and
	 * classify, not a failure of the rollback itself. */
	if (st->errcode != 0) {
		int code = st->errcode, sys = st->errsys, rc;
		char msg[sizeof(st->lasterr)];

		memcpy(msg, st->lasterr, sizeof(msg));
		rc = run_done(st, st->stmt[ST_ROLLBACK]);
		st->errcode = code;
		st->errsys = sys;
		memcpy(st->lasterr, msg, sizeof(msg));
		return rc;
	}
	return run_done(st, st->stmt[ST_ROLLBACK]);
}

/* bind_fail - a bind failed: note it, reset, -1 */
static int
bind_fail(struct sqlite_store *st, sqlite3_stmt *s)
{
	note_error(st);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return -1;
}

/* bind_text_or_null - "" is stored as NULL so the sqlite3 CLI shows absence */
static int
bind_text_or_null(sqlite3_stmt *s, int i, const char *v)
{
	if (v == NULL || *v == '\0')
		return sqlite3_bind_null(s, i);
	return sqlite3_bind_text(s, i, v, (int)strlen(v), SQLITE_STATIC);
}

/* bind_text_len - a NUL-terminated text that outlives the statement run */
static int
bind_text_len(sqlite3_stmt *s, int i, const char *v)
{
	return sqlite3_bind_text(s, i, v, (int)strlen(v), SQLITE_STATIC);
}

/* bind_event - ev into parameters base+1 .. base+EVENT_COLS (every one is
 * bound, so no sqlite3_clear_bindings is needed between runs) */
static int
bind_event(sqlite3_stmt *s, int base, const struct event *ev)
{
	if (sqlite3_bind_int64(s, base + 1, ev->time) != SQLITE_OK ||
	    bind_text_len(s, base + 2, ev->rule) != SQLITE_OK ||
	    bind_text_len(s, base + 3, ev->type) != SQLITE_OK ||
	    bind_text_or_null(s, base + 4, ev->ip) != SQLITE_OK ||
	    bind_text_or_null(s, base + 5, ev->user) != SQLITE_OK ||
	    bind_text_or_null(s, base + 6, ev->sender) != SQLITE_OK ||
	    bind_text_or_null(s, base + 7, ev->qid) != SQLITE_OK ||
	    (ev->nrcpt >= 0 ? sqlite3_bind_int64(s, base + 8, ev->nrcpt)
	                    : sqlite3_bind_null(s, base + 8)) != SQLITE_OK)
		return -1;
	return 0;
}

/* write_rows - one run of s with rows ev[0..n) bound */
static int
write_rows(struct sqlite_store *st, sqlite3_stmt *s, const struct event *ev, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (bind_event(s, (int)i * EVENT_COLS, &ev[i]) != 0)
			return bind_fail(st, s);
	return run_done(st, s);
}

/* flush_events - write the events added since the last flush: a full
 * buffer in one statement, a partial one (the end of a batch) row by row */
static int
flush_events(struct sqlite_store *st)
{
	size_t n = st->npending;

	st->npending = 0;
	if (n == EVENT_ROWS)
		return write_rows(st, st->add_events, st->pending, n);
	for (size_t i = 0; i < n; i++)
		if (write_rows(st, st->stmt[ST_ADD_EVENT], &st->pending[i], 1) != 0)
			return -1;
	return 0;
}

/* write_counts - one run of s with count rows c[0..n) bound */
static int
write_counts(struct sqlite_store *st, sqlite3_stmt *s, struct store_count_slot *const *c,
    size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int b = (int)i * 4;
		if (sqlite3_bind_int64(s, b + 1, c[i]->minute) != SQLITE_OK ||
		    bind_text_len(s, b + 2, c[i]->rule) != SQLITE_OK ||
		    bind_text_len(s, b + 3, c[i]->event) != SQLITE_OK ||
		    sqlite3_bind_int64(s, b + 4, c[i]->n) != SQLITE_OK)
			return bind_fail(st, s);
	}
	return run_done(st, s);
}

/* flush_counts - add the summed counts to event_counts, COUNT_ROWS per
 * statement, the rest one by one; the slots are free afterwards */
static int
flush_counts(struct sqlite_store *st)
{
	struct store_count_slot *batch[COUNT_ROWS];
	size_t nb = 0;
	int rc = 0;

	for (size_t i = 0; i < STORE_COUNT_SLOTS && st->counts.n > 0 && rc == 0; i++) {
		if (st->counts.slot[i].n == 0)
			continue;
		batch[nb++] = &st->counts.slot[i];
		if (nb == COUNT_ROWS) {
			rc = write_counts(st, st->add_counts, batch, nb);
			nb = 0;
		}
	}
	for (size_t i = 0; i < nb && rc == 0; i++)
		rc = write_counts(st, st->stmt[ST_ADD_COUNT], &batch[i], 1);
	store_counts_clear(&st->counts);
	return rc;
}

/* flush_pending - write the rows and counts not written yet */
static int
flush_pending(struct sqlite_store *st)
{
	int rc = flush_events(st);

	if (flush_counts(st) != 0)
		rc = -1;
	return rc;
}

/* count_event - 1 for ev's (minute, rule), in memory until flushed */
static int
count_event(struct sqlite_store *st, const struct event *ev)
{
	if (store_counts_add(&st->counts, ev) || !st->in_tx)
		return flush_counts(st);
	return 0;
}

static int
sq_count_event(void *be, const struct event *ev)
{
	struct sqlite_store *st = be;

	return count_event(st, ev);
}

/* add_delivery - a row with a recipient or a new queue id (schema 005):
 * the rows buffered before it are written first, so the table keeps the
 * order the jails counted them in */
static int
add_delivery(struct sqlite_store *st, const struct event *ev)
{
	sqlite3_stmt *s = st->stmt[ST_ADD_DELIVERY];

	if (flush_events(st) != 0)
		return -1;
	if (bind_event(s, 0, ev) != 0 ||
	    bind_text_or_null(s, 9, ev->rcpt) != SQLITE_OK ||
	    bind_text_or_null(s, 10, ev->newqid) != SQLITE_OK)
		return bind_fail(st, s);
	return run_done(st, s);
}

static int
sq_add_event(void *be, const struct event *ev)
{
	struct sqlite_store *st = be;

	if (count_event(st, ev) != 0)
		return -1;
	if (ev->rcpt[0] != '\0' || ev->newqid[0] != '\0')
		return add_delivery(st, ev);
	st->pending[st->npending++] = *ev;
	/* Outside a transaction the row is written (and committed) at once. */
	if (st->npending == EVENT_ROWS || !st->in_tx)
		return flush_events(st);
	return 0;
}

static int
sq_add_ban(void *be, const struct verdict *v, int64_t *id)
{
	struct sqlite_store *st = be;
	sqlite3_stmt *s = st->stmt[ST_ADD_BAN];
	char actions[32];

	store_actions_text(v->actions, actions, sizeof(actions));
	if (sqlite3_bind_text(s, 1, v->jail, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(s, 2, v->target, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(s, 3, target_kind_name(v->kind), -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int(s, 4, v->level) != SQLITE_OK ||
	    sqlite3_bind_text(s, 5, v->reason, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(s, 6, actions, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
	    bind_text_or_null(s, 7, (v->actions & (ACTION_REJECT | ACTION_DEFER)) ? v->reply : NULL)
	    != SQLITE_OK ||
	    sqlite3_bind_int64(s, 8, v->started_at) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 9, v->expires_at) != SQLITE_OK)
		return bind_fail(st, s);
	if (run_done(st, s) != 0)
		return -1;
	if (id)
		*id = sqlite3_last_insert_rowid(st->db);
	return 0;
}

static int
sq_lift_bans(void *be, const char *jail, const char *target, int64_t now)
{
	struct sqlite_store *st = be;
	sqlite3_stmt *s = st->stmt[jail ? ST_LIFT_JAIL : ST_LIFT_ANY];

	if (sqlite3_bind_text(s, 1, target, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 2, now) != SQLITE_OK ||
	    (jail && sqlite3_bind_text(s, 3, jail, -1, SQLITE_STATIC) != SQLITE_OK)) {
		sqlite3_reset(s);
		return -1;
	}
	if (run_done(st, s) != 0)
		return -1;
	return sqlite3_changes(st->db);
}

static int
sq_get_position(void *be, const char *path, struct log_position *out)
{
	struct sqlite_store *st = be;
	sqlite3_stmt *s = st->stmt[ST_GET_POS];
	int rc, found = -1;

	if (sqlite3_bind_text(s, 1, path, -1, SQLITE_STATIC) != SQLITE_OK)
		goto out;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		memset(out, 0, sizeof(*out));
		snprintf(out->path, sizeof(out->path), "%s", path);
		out->inode = (uint64_t)sqlite3_column_int64(s, 0);
		out->offset = (uint64_t)sqlite3_column_int64(s, 1);
		out->first_hash = (uint64_t)sqlite3_column_int64(s, 2);
		found = 1;
	} else if (rc == SQLITE_DONE) {
		found = 0;
	} else {
		note_error(st);
	}
out:
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return found;
}

static int
sq_save_position(void *be, const struct log_position *pos)
{
	struct sqlite_store *st = be;
	sqlite3_stmt *s = st->stmt[ST_SAVE_POS];

	/* The 64-bit hash and inode go in as their two's complement bit pattern. */
	if (sqlite3_bind_text(s, 1, pos->path, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 2, (sqlite3_int64)pos->inode) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 3, (sqlite3_int64)pos->offset) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 4, (sqlite3_int64)pos->first_hash) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 5, (sqlite3_int64)time(NULL)) != SQLITE_OK) {
		sqlite3_reset(s);
		return -1;
	}
	return run_done(st, s);
}

static int
sq_get_cursor(void *be, const char *source, char **out)
{
	struct sqlite_store *st = be;
	sqlite3_stmt *s = st->stmt[ST_GET_CURSOR];
	int rc, found = -1;

	*out = NULL;
	if (sqlite3_bind_text(s, 1, source, -1, SQLITE_STATIC) != SQLITE_OK)
		goto out;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(s, 0);
		if (t == NULL || (*out = strdup((const char *)t)) == NULL)
			log_warnx("database: cannot read the cursor of %s", source);
		else
			found = 1;
	} else if (rc == SQLITE_DONE) {
		found = 0;
	} else {
		log_warnx("database: %s", sqlite3_errmsg(st->db));
	}
out:
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return found;
}

static int
sq_save_cursor(void *be, const char *source, const char *cursor)
{
	struct sqlite_store *st = be;
	sqlite3_stmt *s = st->stmt[ST_SAVE_CURSOR];

	if (sqlite3_bind_text(s, 1, source, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(s, 2, cursor, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 3, (sqlite3_int64)time(NULL)) != SQLITE_OK) {
		sqlite3_reset(s);
		return -1;
	}
	return run_done(st, s);
}

static int
sq_each_cursor(void *be, store_cursor_cb cb, void *arg)
{
	struct sqlite_store *st = be;
	sqlite3_stmt *s = st->stmt[ST_CURSORS];
	int rc, ret = 0;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const unsigned char *src = sqlite3_column_text(s, 0);
		const unsigned char *cur = sqlite3_column_text(s, 1);

		if (src == NULL || cur == NULL)
			continue;
		if ((ret = cb(arg, NULL, (const char *)src, (const char *)cur,
		    sqlite3_column_int64(s, 2))) != 0)
			goto out;
	}
	if (rc != SQLITE_DONE) {
		log_warnx("database: %s", sqlite3_errmsg(st->db));
		ret = -1;
	}
out:
	sqlite3_reset(s);
	return ret;
}

/* copy_col - a text column into a fixed buffer; too long means "skip" */
static int
copy_col(sqlite3_stmt *s, int col, char *buf, size_t len)
{
	const unsigned char *t = sqlite3_column_text(s, col);
	int n = sqlite3_column_bytes(s, col);

	if (t == NULL) {
		buf[0] = '\0';
		return 0;
	}
	if ((size_t)n >= len)
		return -1;
	memcpy(buf, t, (size_t)n);
	buf[n] = '\0';
	return 0;
}

/* row_fn - one row of a stepped statement; non-zero stops the rows */
typedef int (*row_fn)(sqlite3_stmt *s, void *arg);

/* The caller's callback (a store.h store_*_cb, cast back by the row
 * function that knows which) and its argument, for the readers. */
struct user_cb {
	void (*fn)(void);
	void *arg;
};

/*
 * step_rows - step the bound statement s, handing each row to on_row,
 * until the rows end (0), on_row returns non-zero (that), or a step fails
 * (noted, -1); then s is reset and its bindings cleared
 */
static int
step_rows(struct sqlite_store *st, sqlite3_stmt *s, row_fn on_row, void *arg)
{
	int rc, ret = 0;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		if ((ret = on_row(s, arg)) != 0)
			goto out;
	if (rc != SQLITE_DONE) {
		note_error(st);
		ret = -1;
	}
out:
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return ret;
}

/* step_rows_with - step_rows for a statement whose one parameter is v */
static int
step_rows_with(struct sqlite_store *st, sqlite3_stmt *s, int64_t v, row_fn on_row,
    void *arg)
{
	if (sqlite3_bind_int64(s, 1, v) != SQLITE_OK) {
		sqlite3_reset(s);
		sqlite3_clear_bindings(s);
		return -1;
	}
	return step_rows(st, s, on_row, arg);
}

/* step_i64 - the first column of the one row s returns, into *out */
static int
step_i64(struct sqlite_store *st, sqlite3_stmt *s, int64_t *out)
{
	int rc = sqlite3_step(s);

	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(s, 0);
	else
		note_error(st);
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? 0 : -1;
}

/* take_event_row - time, rule, event, ip, account, sender, qid, nrcpt,
 * rcpt, newqid to an event for the store_event_cb in arg (a user_cb) */
static int
take_event_row(sqlite3_stmt *s, void *arg)
{
	struct user_cb *u = arg;
	struct event ev;
	char rule[256], type[64];

	memset(&ev, 0, sizeof(ev));
	ev.time = sqlite3_column_int64(s, 0);
	if (copy_col(s, 1, rule, sizeof(rule)) != 0 ||
	    copy_col(s, 2, type, sizeof(type)) != 0 ||
	    copy_col(s, 3, ev.ip, sizeof(ev.ip)) != 0 ||
	    copy_col(s, 4, ev.user, sizeof(ev.user)) != 0 ||
	    copy_col(s, 5, ev.sender, sizeof(ev.sender)) != 0 ||
	    copy_col(s, 6, ev.qid, sizeof(ev.qid)) != 0 ||
	    copy_col(s, 8, ev.rcpt, sizeof(ev.rcpt)) != 0 ||
	    copy_col(s, 9, ev.newqid, sizeof(ev.newqid)) != 0)
		return 0;   /* cannot come from rules_match; not ours */
	ev.rule = rule;
	ev.type = type;
	ev.nrcpt = sqlite3_column_type(s, 7) == SQLITE_NULL ? -1 :
	    (long)sqlite3_column_int64(s, 7);
	return ((store_event_cb)u->fn)(u->arg, &ev);
}

static int
sq_each_event_since(void *be, int64_t since, store_event_cb cb, void *arg)
{
	struct sqlite_store *st = be;
	struct user_cb u = { (void (*)(void))cb, arg };

	if (flush_pending(st) != 0)
		return -1;
	return step_rows_with(st, st->stmt[ST_EVENTS_SINCE], since, take_event_row, &u);
}

/* take_ban_row - a ban query's row to the store_ban_cb in arg (a user_cb) */
static int
take_ban_row(sqlite3_stmt *s, void *arg)
{
	struct user_cb *u = arg;
	struct stored_ban b;

	b.id = sqlite3_column_int64(s, 0);
	b.node = NULL;
	b.jail = (const char *)sqlite3_column_text(s, 1);
	b.target = (const char *)sqlite3_column_text(s, 2);
	b.target_kind = (const char *)sqlite3_column_text(s, 3);
	b.level = sqlite3_column_int(s, 4);
	b.reason = (const char *)sqlite3_column_text(s, 5);
	b.actions = store_actions_parse((const char *)sqlite3_column_text(s, 6));
	b.reply = (const char *)sqlite3_column_text(s, 7);
	b.started_at = sqlite3_column_int64(s, 8);
	b.expires_at = sqlite3_column_int64(s, 9);
	b.lifted_at = sqlite3_column_int64(s, 10);
	if (b.jail == NULL || b.target == NULL || b.target_kind == NULL)
		return 0;
	return ((store_ban_cb)u->fn)(u->arg, &b);
}

static int
sq_each_ban(void *be, const struct ban_filter *f, store_ban_cb cb, void *arg)
{
	struct sqlite_store *st = be;
	sqlite3_stmt *s = st->stmt[ST_BANS_FILTER];
	struct user_cb u = { (void (*)(void))cb, arg };

	if (bind_text_or_null(s, 1, f->jail) != SQLITE_OK ||
	    bind_text_or_null(s, 2, f->target) != SQLITE_OK ||
	    sqlite3_bind_int(s, 3, f->active_only) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 4, f->now) != SQLITE_OK) {
		sqlite3_reset(s);
		return -1;
	}
	return step_rows(st, s, take_ban_row, &u);
}

static int
take_count_row(sqlite3_stmt *s, void *arg)
{
	struct user_cb *u = arg;
	const char *name = (const char *)sqlite3_column_text(s, 0);

	if (name == NULL)
		return 0;
	return ((store_count_cb)u->fn)(u->arg, name, sqlite3_column_int64(s, 1));
}

static int
sq_event_counts_since(void *be, int64_t since, store_count_cb cb, void *arg)
{
	struct sqlite_store *st = be;
	struct user_cb u = { (void (*)(void))cb, arg };

	if (flush_pending(st) != 0)
		return -1;
	/* the minute holding since counts whole: at most 59 s more */
	return step_rows_with(st, st->stmt[ST_EVENT_COUNTS], store_minute_of(since),
	    take_count_row, &u);
}

static int
take_position_row(sqlite3_stmt *s, void *arg)
{
	struct user_cb *u = arg;
	struct log_position pos;

	memset(&pos, 0, sizeof(pos));
	if (copy_col(s, 0, pos.path, sizeof(pos.path)) != 0)
		return 0;
	pos.inode = (uint64_t)sqlite3_column_int64(s, 1);
	pos.offset = (uint64_t)sqlite3_column_int64(s, 2);
	pos.first_hash = (uint64_t)sqlite3_column_int64(s, 3);
	return ((store_position_cb)u->fn)(u->arg, NULL, &pos, sqlite3_column_int64(s, 4));
}

static int
sq_each_position(void *be, store_position_cb cb, void *arg)
{
	struct sqlite_store *st = be;
	struct user_cb u = { (void (*)(void))cb, arg };

	return step_rows(st, st->stmt[ST_POSITIONS], take_position_row, &u);
}

static int
sq_each_ban_since(void *be, int64_t since, store_ban_cb cb, void *arg)
{
	struct sqlite_store *st = be;
	struct user_cb u = { (void (*)(void))cb, arg };

	return step_rows_with(st, st->stmt[ST_BANS_SINCE], since, take_ban_row, &u);
}

static int
sq_each_active_ban(void *be, int64_t now, store_ban_cb cb, void *arg)
{
	struct sqlite_store *st = be;
	struct user_cb u = { (void (*)(void))cb, arg };

	return step_rows_with(st, st->stmt[ST_BANS_ACTIVE], now, take_ban_row, &u);
}

static int
sq_purge_events(void *be, int64_t before)
{
	struct sqlite_store *st = be;
	sqlite3_stmt *s = st->stmt[ST_PURGE_EVENTS], *c = st->stmt[ST_PURGE_COUNTS];

	if (flush_pending(st) != 0)
		return -1;
	if (sqlite3_bind_int64(s, 1, before) != SQLITE_OK) {
		sqlite3_reset(s);
		return -1;
	}
	if (run_done(st, s) != 0)
		return -1;
	/* counts go with the minutes wholly before it */
	if (sqlite3_bind_int64(c, 1, store_minute_of(before)) != SQLITE_OK) {
		sqlite3_reset(c);
		return -1;
	}
	return run_done(st, c);
}

static int
sq_newest_time(void *be, int64_t *out)
{
	struct sqlite_store *st = be;

	if (flush_pending(st) != 0)
		return -1;
	return step_i64(st, st->stmt[ST_NEWEST], out);
}

struct qids_read {
	char (*qids)[MJ_QID_MAX];
	size_t max, n;
};

static int
take_qid(sqlite3_stmt *s, void *arg)
{
	struct qids_read *q = arg;

	if (q->n >= q->max)
		return 1;   /* full: the rest are not wanted */
	if (copy_col(s, 0, q->qids[q->n], MJ_QID_MAX) == 0)
		q->n++;
	return 0;
}

static int
sq_account_qids(void *be, const char *account, char (*qids)[MJ_QID_MAX], size_t max)
{
	struct sqlite_store *st = be;
	sqlite3_stmt *s = st->stmt[ST_ACCOUNT_QIDS];
	struct qids_read q = { qids, max, 0 };

	if (flush_pending(st) != 0)
		return -1;
	if (sqlite3_bind_text(s, 1, account, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 2, (sqlite3_int64)max) != SQLITE_OK) {
		sqlite3_reset(s);
		sqlite3_clear_bindings(s);
		return -1;
	}
	if (step_rows(st, s, take_qid, &q) < 0)
		return -1;
	return (int)q.n;
}

/*
 * sq_each_event_about - store_each_event_about (explain): its own statement,
 * prepared per call (an operator command, not the hot path).
 *
 * The queued lines are grouped by queue id first (a qid's first queued
 * row: qmgr logs again when a deferred message is retried) and joined to
 * the submissions; SQLite indexes that set on the fly.  No index on events
 * is needed: one pass over the rows kept.  For an account, the delivery
 * results and links come too, whoever sent them (few: only those of traced
 * messages are kept); the caller joins them (jail_join_delivery).
 */
static const char explain_events_sql[] =
    "WITH q AS (SELECT qid, sender, nrcpt, min(id) AS first FROM events"
    "  WHERE event = 'queued' AND qid IS NOT NULL AND time >= ?4 GROUP BY qid)"
    " SELECT e.time, e.rule, e.event, e.ip, e.account,"
    "  coalesce(e.sender, q.sender), e.qid, coalesce(e.nrcpt, q.nrcpt), e.rcpt, e.newqid"
    " FROM events e LEFT JOIN q ON e.event = 'submission' AND q.qid = e.qid"
    " WHERE e.time >= ?4 AND ("
    "  (?1 IS NOT NULL AND e.ip = ?1)"
    "  OR (?2 IS NOT NULL AND (e.account = ?2 OR coalesce(e.sender, q.sender) = ?2"
    "   OR e.event IN ('remote_reject', 'remote_listed', 'requeued')))"
    "  OR (?3 IS NOT NULL AND (lower(substr(e.account, -length(?3) - 1)) = '@' || lower(?3)"
    "   OR lower(substr(coalesce(e.sender, q.sender), -length(?3) - 1)) = '@' || lower(?3)))"
    "  OR (?1 IS NULL AND ?2 IS NULL AND ?3 IS NULL AND e.ip IS NOT NULL))"
    " ORDER BY e.id";

static int
sq_each_event_about(void *be, const struct event_about *about,
    store_event_cb cb, void *arg)
{
	struct sqlite_store *st = be;
	sqlite3_stmt *s = NULL;
	struct user_cb u = { (void (*)(void))cb, arg };
	int ret;

	if (flush_pending(st) != 0)
		return -1;
	if (sqlite3_prepare_v2(st->db, explain_events_sql, -1, &s, NULL) != SQLITE_OK ||
	    bind_text_or_null(s, 1, about->ip) != SQLITE_OK ||
	    bind_text_or_null(s, 2, about->account) != SQLITE_OK ||
	    bind_text_or_null(s, 3, about->domain) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 4, about->since) != SQLITE_OK) {
		note_error(st);
		sqlite3_finalize(s);
		return -1;
	}
	ret = step_rows(st, s, take_event_row, &u);
	sqlite3_finalize(s);
	return ret;
}

/*
 * ---- Operator signals (issue 12; schemas/004-signals.sql) -------------
 * The notification outbox, the evidence of an account verdict, the active
 * counts per jail, and the saved metric counters (store_backend.h, the
 * operator signals' operations).  Self-contained: its own statements,
 * prepared on first use (the daemon without [notify] or [metrics] never
 * prepares them) and finalized by sq_close.
 */

enum sig_stmt {
	SIG_QUEUE, SIG_OPEN, SIG_COUNT_OPEN, SIG_DELIVERED, SIG_RETRY, SIG_GAVE_UP,
	SIG_EVIDENCE, SIG_ACTIVE, SIG_COUNTERS, SIG_SAVE_COUNTER,
	SIG_N
};

_Static_assert(SIG_N <= STORE_SIG_STMTS, "STORE_SIG_STMTS too small");

static const char *const sig_sql[SIG_N] = {
	[SIG_QUEUE] =
	    "INSERT INTO notifications(event, digest, ban_id, jail, target, target_kind,"
	    " level, reason, started_at, expires_at, evidence_key, evidence_window, node,"
	    " created_at, due_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,"
	    " ?12, ?13, ?14, ?14)",
	[SIG_OPEN] =
	    "SELECT id, event, digest, ban_id, jail, target, target_kind, level, reason,"
	    " started_at, expires_at, evidence_key, evidence_window, node, created_at,"
	    " done, attempts, due_at FROM notifications"
	    " WHERE sent_at IS NULL AND gave_up_at IS NULL ORDER BY id LIMIT ?1",
	[SIG_COUNT_OPEN] =
	    "SELECT count(*) FROM notifications WHERE sent_at IS NULL AND gave_up_at IS NULL",
	[SIG_DELIVERED] =
	    "UPDATE notifications SET done = done | ?2, sent_at = CASE WHEN"
	    " ((done | ?2) & ?3) = ?3 THEN ?4 ELSE sent_at END WHERE id = ?1",
	[SIG_RETRY] =
	    "UPDATE notifications SET attempts = attempts + 1, due_at = ?2,"
	    " last_error = ?3 WHERE id = ?1",
	[SIG_GAVE_UP] =
	    "UPDATE notifications SET attempts = attempts + 1, gave_up_at = ?2,"
	    " last_error = ?3 WHERE id = ?1",
	/* Per client address: its submissions, and the recipients of those
	 * whose queued line was kept (a jail joins it by queue id). */
	[SIG_EVIDENCE] =
	    "SELECT s.ip, count(*), sum(q.nrcpt), count(q.nrcpt)"
	    " FROM events s LEFT JOIN events q ON q.qid = s.qid AND q.event = 'queued'"
	    " WHERE s.event = 'submission' AND s.time > ?3 AND s.time <= ?4 AND CASE ?1"
	    " WHEN 'account' THEN s.account = ?2"
	    " WHEN 'sender' THEN q.sender = ?2"
	    " ELSE lower(substr(coalesce(s.account, ''), -length(?2) - 1)) = '@' || ?2"
	    "  OR lower(substr(coalesce(q.sender, ''), -length(?2) - 1)) = '@' || ?2 END"
	    " GROUP BY s.ip ORDER BY 2 DESC, s.ip",
	/* The active_bans view's condition, with the caller's clock. */
	[SIG_ACTIVE] =
	    "SELECT jail, target_kind, count(*) FROM bans WHERE lifted_at IS NULL"
	    " AND expires_at > ?1 GROUP BY jail, target_kind ORDER BY jail, target_kind",
	[SIG_COUNTERS] =
	    "SELECT name, labels, value FROM metric_counters WHERE node = ?1"
	    " ORDER BY name, labels",
	[SIG_SAVE_COUNTER] =
	    "INSERT INTO metric_counters(node, name, labels, value) VALUES (?1, ?2, ?3, ?4)"
	    " ON CONFLICT(node, name, labels) DO UPDATE SET value = excluded.value",
};

/* sig_stmt - statement i, prepared on first use; NULL after noting why */
static sqlite3_stmt *
sig_stmt(struct sqlite_store *st, enum sig_stmt i)
{
	if (st->sig[i] == NULL &&
	    sqlite3_prepare_v3(st->db, sig_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
	    &st->sig[i], NULL) != SQLITE_OK) {
		note_error(st);
		return NULL;
	}
	return st->sig[i];
}

static int
sq_queue_notification(void *be, const struct stored_notification *n,
    int64_t *id)
{
	struct sqlite_store *st = be;
	sqlite3_stmt *s = sig_stmt(st, SIG_QUEUE);

	if (s == NULL)
		return -1;
	if (sqlite3_bind_text(s, 1, n->event, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int(s, 2, n->digest) != SQLITE_OK ||
	    (n->ban_id > 0 ? sqlite3_bind_int64(s, 3, n->ban_id)
	                   : sqlite3_bind_null(s, 3)) != SQLITE_OK ||
	    sqlite3_bind_text(s, 4, n->jail, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(s, 5, n->target, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(s, 6, n->target_kind, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int(s, 7, n->level) != SQLITE_OK ||
	    sqlite3_bind_text(s, 8, n->reason, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 9, n->started_at) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 10, n->expires_at) != SQLITE_OK ||
	    bind_text_or_null(s, 11, n->evidence_key) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 12, n->evidence_window) != SQLITE_OK ||
	    sqlite3_bind_text(s, 13, n->node, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 14, n->created_at) != SQLITE_OK)
		return bind_fail(st, s);
	if (run_done(st, s) != 0)
		return -1;
	if (id)
		*id = sqlite3_last_insert_rowid(st->db);
	return 0;
}

static const char *
col_text(sqlite3_stmt *s, int col)
{
	const unsigned char *t = sqlite3_column_text(s, col);

	return t ? (const char *)t : "";
}

static int
take_note_row(sqlite3_stmt *s, void *arg)
{
	struct user_cb *u = arg;
	struct stored_notification n;

	memset(&n, 0, sizeof(n));
	n.id = sqlite3_column_int64(s, 0);
	n.event = col_text(s, 1);
	n.digest = sqlite3_column_int(s, 2) != 0;
	n.ban_id = sqlite3_column_int64(s, 3);
	n.jail = col_text(s, 4);
	n.target = col_text(s, 5);
	n.target_kind = col_text(s, 6);
	n.level = sqlite3_column_int(s, 7);
	n.reason = col_text(s, 8);
	n.started_at = sqlite3_column_int64(s, 9);
	n.expires_at = sqlite3_column_int64(s, 10);
	n.evidence_key = sqlite3_column_type(s, 11) == SQLITE_NULL ? NULL : col_text(s, 11);
	n.evidence_window = sqlite3_column_int64(s, 12);
	n.node = col_text(s, 13);
	n.created_at = sqlite3_column_int64(s, 14);
	n.done = (unsigned)sqlite3_column_int(s, 15);
	n.attempts = sqlite3_column_int(s, 16);
	n.due_at = sqlite3_column_int64(s, 17);
	return ((store_notification_cb)u->fn)(u->arg, &n);
}

/* sig_rows - step_rows for a signals' read (which says when a wait for
 * the lock is over, as a write does) */
static int
sig_rows(struct sqlite_store *st, sqlite3_stmt *s, row_fn on_row, void *arg)
{
	int ret = step_rows(st, s, on_row, arg);

	busy_done(st);
	return ret;
}

static int
sq_each_open_notification(void *be, size_t max, store_notification_cb cb,
    void *arg)
{
	struct sqlite_store *st = be;
	sqlite3_stmt *s = sig_stmt(st, SIG_OPEN);
	struct user_cb u = { (void (*)(void))cb, arg };

	if (s == NULL)
		return -1;
	if (sqlite3_bind_int64(s, 1, (sqlite3_int64)max) != SQLITE_OK)
		return bind_fail(st, s);
	return sig_rows(st, s, take_note_row, &u);
}

static int
sq_count_open_notifications(void *be, int64_t *out)
{
	struct sqlite_store *st = be;
	sqlite3_stmt *s = sig_stmt(st, SIG_COUNT_OPEN);
	int rc;

	if (s == NULL)
		return -1;
	rc = step_i64(st, s, out);
	busy_done(st);
	return rc;
}

static int
sq_notification_delivered(void *be, int64_t id, unsigned channel,
    unsigned all, int64_t now)
{
	struct sqlite_store *st = be;
	sqlite3_stmt *s = sig_stmt(st, SIG_DELIVERED);

	if (s == NULL)
		return -1;
	if (sqlite3_bind_int64(s, 1, id) != SQLITE_OK ||
	    sqlite3_bind_int(s, 2, (int)channel) != SQLITE_OK ||
	    sqlite3_bind_int(s, 3, (int)all) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 4, now) != SQLITE_OK)
		return bind_fail(st, s);
	return run_done(st, s);
}

/* mark_failed - SIG_RETRY or SIG_GAVE_UP: one failed attempt more */
static int
mark_failed(struct sqlite_store *st, enum sig_stmt which, int64_t id, int64_t t, const char *error)
{
	sqlite3_stmt *s = sig_stmt(st, which);

	if (s == NULL)
		return -1;
	if (sqlite3_bind_int64(s, 1, id) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 2, t) != SQLITE_OK ||
	    bind_text_or_null(s, 3, error) != SQLITE_OK)
		return bind_fail(st, s);
	return run_done(st, s);
}

static int
sq_notification_retry(void *be, int64_t id, int64_t due_at, const char *error)
{
	struct sqlite_store *st = be;
	return mark_failed(st, SIG_RETRY, id, due_at, error);
}

static int
sq_notification_gave_up(void *be, int64_t id, int64_t now, const char *error)
{
	struct sqlite_store *st = be;
	return mark_failed(st, SIG_GAVE_UP, id, now, error);
}

struct evidence_read {
	struct store_evidence *out;
	bool rcpt_known;
};

static int
take_evidence_row(sqlite3_stmt *s, void *arg)
{
	struct evidence_read *e = arg;
	const char *ip = (const char *)sqlite3_column_text(s, 0);
	size_t iplen = ip ? (size_t)sqlite3_column_bytes(s, 0) : 0;

	store_evidence_add(e->out, &e->rcpt_known, ip, iplen, sqlite3_column_int64(s, 1),
	    sqlite3_column_int64(s, 2), sqlite3_column_int64(s, 3));
	return 0;
}

static int
sq_submission_evidence(void *be, const char *key, const char *target,
    int64_t since, int64_t until, struct store_evidence *out)
{
	struct sqlite_store *st = be;
	sqlite3_stmt *s = sig_stmt(st, SIG_EVIDENCE);
	struct evidence_read e = { out, false };
	int ret;

	memset(out, 0, sizeof(*out));
	if (s == NULL)
		return -1;
	if (flush_pending(st) != 0)
		return -1;
	if (sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(s, 2, target, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 3, since) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 4, until) != SQLITE_OK)
		return bind_fail(st, s);
	ret = sig_rows(st, s, take_evidence_row, &e);
	if (!e.rcpt_known)
		out->recipients = -1;
	return ret;
}

static int
take_active_row(sqlite3_stmt *s, void *arg)
{
	struct user_cb *u = arg;

	return ((store_active_cb)u->fn)(u->arg, col_text(s, 0), col_text(s, 1),
	    sqlite3_column_int64(s, 2));
}

static int
sq_count_active(void *be, int64_t now, store_active_cb cb, void *arg)
{
	struct sqlite_store *st = be;
	sqlite3_stmt *s = sig_stmt(st, SIG_ACTIVE);
	struct user_cb u = { (void (*)(void))cb, arg };

	if (s == NULL)
		return -1;
	if (sqlite3_bind_int64(s, 1, now) != SQLITE_OK)
		return bind_fail(st, s);
	return sig_rows(st, s, take_active_row, &u);
}

static int
take_counter_row(sqlite3_stmt *s, void *arg)
{
	struct user_cb *u = arg;

	return ((store_counter_cb)u->fn)(u->arg, col_text(s, 0), col_text(s, 1),
	    sqlite3_column_double(s, 2));
}

static int
sq_each_counter(void *be, const char *node, store_counter_cb cb, void *arg)
{
	struct sqlite_store *st = be;
	sqlite3_stmt *s = sig_stmt(st, SIG_COUNTERS);
	struct user_cb u = { (void (*)(void))cb, arg };

	if (s == NULL)
		return -1;
	if (sqlite3_bind_text(s, 1, node, -1, SQLITE_STATIC) != SQLITE_OK)
		return bind_fail(st, s);
	return sig_rows(st, s, take_counter_row, &u);
}

static int
sq_save_counter(void *be, const char *node, const char *name,
    const char *labels, double value)
{
	struct sqlite_store *st = be;
	sqlite3_stmt *s = sig_stmt(st, SIG_SAVE_COUNTER);

	if (s == NULL)
		return -1;
	if (sqlite3_bind_text(s, 1, node, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(s, 3, labels, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_double(s, 4, value) != SQLITE_OK)
		return bind_fail(st, s);
	return run_done(st, s);
}

static bool
sq_takes(const char *db)
{
	(void)db;
	return true;   /* a path: the last resort of the table */
}

const struct store_backend store_backend_sqlite = {
	.name = "sqlite",
	.takes = sq_takes,
	.open = sq_open,
	.close = sq_close,
	.check_file = sq_check_file,
	.errmsg = sq_errmsg,
	.error_is_transient = sq_error_is_transient,
	.clear_error = sq_clear_error,
	.set_stop_flag = sq_set_stop_flag,
	.path = sq_path,
	.file = sq_path,
	.created = sq_created,
	.begin = sq_begin,
	.commit = sq_commit,
	.rollback = sq_rollback,
	.in_transaction = sq_in_transaction,
	.add_event = sq_add_event,
	.count_event = sq_count_event,
	.add_ban = sq_add_ban,
	.lift_bans = sq_lift_bans,
	.get_position = sq_get_position,
	.save_position = sq_save_position,
	.get_cursor = sq_get_cursor,
	.save_cursor = sq_save_cursor,
	.each_cursor = sq_each_cursor,
	.each_event_since = sq_each_event_since,
	.each_ban_since = sq_each_ban_since,
	.each_active_ban = sq_each_active_ban,
	.each_ban = sq_each_ban,
	.event_counts_since = sq_event_counts_since,
	.each_position = sq_each_position,
	.account_qids = sq_account_qids,
	.newest_time = sq_newest_time,
	.purge_events = sq_purge_events,
	.each_event_about = sq_each_event_about,
	.queue_notification = sq_queue_notification,
	.each_open_notification = sq_each_open_notification,
	.count_open_notifications = sq_count_open_notifications,
	.notification_delivered = sq_notification_delivered,
	.notification_retry = sq_notification_retry,
	.notification_gave_up = sq_notification_gave_up,
	.submission_evidence = sq_submission_evidence,
	.count_active = sq_count_active,
	.each_counter = sq_each_counter,
	.save_counter = sq_save_counter,
};
