/*
 * holdmap_sqlite - the sqlite: map backend: a small SQLite file of its own
 * in rollback-journal mode (Postfix reads it as user postfix; a WAL reader
 * would need write access), mode 0644, that Postfix's sqlite_table(5)
 * lookup reads live, and the ready postfix-hold.cf / postfix-reject.cf
 * next to it.  A change is seen by Postfix at its next lookup.
 *
 * struct sqlite_map owns the SQLite handle, its prepared statements, a
 * read-only descriptor for peeking at locks, and its path strings.
 *
 * SECURITY: keys and values only ever travel as bound parameters, and
 * Postfix quotes the key itself when it expands %s in the query.  Every
 * write avoids making a concurrent Postfix lookup fail (see step_busy).
 */
#include "holdmap_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define HOLDMAP_BUSY_MS 5000
#define MAP_CORRUPT     (-2)    /* open_sqlite: damaged pages (reopen_corrupt) */

/*
 * SQLite's lock bytes on a database file (the "lock-byte page" of the file
 * format, the same in every version): readers hold a read lock on the
 * SHARED range.  Only ever queried with F_GETLK here, never locked.
 */
#define SQLITE_PENDING_BYTE 0x40000000
#define SQLITE_SHARED_FIRST (SQLITE_PENDING_BYTE + 2)
#define SQLITE_SHARED_SIZE  510

struct sqlite_map {
	enum holdmap_kind kind;
	char *path;             /* the .db */
	char *cfpath;           /* postfix-hold.cf / postfix-reject.cf */
	sqlite3 *db;
	sqlite3_stmt *st_add, *st_del, *st_expire;
	int lockfd;             /* read-only fd for peeking at locks */
};

/*
 * The table name depends on the kind only (never on input), so a single
 * file may hold both maps.  The query Postfix runs also filters by time:
 * sqlite_table(5) expands %s to the quoted key and %% to '%', so
 * strftime's %s is written %%s.
 */
static const char *const tables[] = { "hold", "reject" };
static const char *const cfnames[] = { "postfix-hold.cf", "postfix-reject.cf" };

static const char *const sql_create[] = {
	"CREATE TABLE IF NOT EXISTS hold(key TEXT PRIMARY KEY NOT NULL,"
	" value TEXT NOT NULL, expires_at INTEGER NOT NULL)",
	"CREATE TABLE IF NOT EXISTS reject(key TEXT PRIMARY KEY NOT NULL,"
	" value TEXT NOT NULL, expires_at INTEGER NOT NULL)",
};
static const char *const sql_add[] = {
	"INSERT INTO hold(key, value, expires_at) VALUES(?1, ?2, ?3)"
	" ON CONFLICT(key) DO UPDATE SET value = excluded.value,"
	" expires_at = excluded.expires_at",
	"INSERT INTO reject(key, value, expires_at) VALUES(?1, ?2, ?3)"
	" ON CONFLICT(key) DO UPDATE SET value = excluded.value,"
	" expires_at = excluded.expires_at",
};
static const char *const sql_del[] = {
	"DELETE FROM hold WHERE key = ?1",
	"DELETE FROM reject WHERE key = ?1",
};
static const char *const sql_expire[] = {
	"DELETE FROM hold WHERE expires_at <= ?1",
	"DELETE FROM reject WHERE expires_at <= ?1",
};

/* cf_path - the sqlite_table(5) file next to the .db (malloc'd) */
static char *
cf_path(const char *dbpath, enum holdmap_kind kind)
{
	const char *slash = strrchr(dbpath, '/');

	return holdmap_asprintf("%.*s/%s", (int)(slash - dbpath), dbpath,
	    cfnames[kind]);
}

/* write_cf - the ready sqlite_table(5) file Postfix is pointed at */
static int
write_cf(struct sqlite_map *m, char *err, size_t errlen)
{
	char *text;
	int rc;

	text = holdmap_asprintf(
	    "# Written by mailjail; rewritten when mailjail opens the map.\n"
	    "# main.cf: %s sqlite:%s\n"
	    "dbpath = %s\n"
	    "query = SELECT value FROM %s WHERE key = '%%s'"
	    " AND expires_at > CAST(strftime('%%%%s', 'now') AS INTEGER)\n",
	    m->kind == HOLDMAP_HOLD ? "check_sasl_access" : "check_client_access",
	    m->cfpath, m->path, tables[m->kind]);
	if (text == NULL) {
		holdmap_seterr(err, errlen, "%s: out of memory", m->cfpath);
		return -1;
	}
	rc = holdmap_write_atomic(m->cfpath, text, strlen(text), 0644, err,
	    errlen);
	free(text);
	return rc;
}

/*
 * readers_present - does another process hold SQLite's shared lock on the
 * map, i.e. is a lookup running?  Asks the kernel (F_GETLK), takes no lock.
 */
static bool
readers_present(const struct sqlite_map *m)
{
	struct flock fl;

	if (m->lockfd == -1)
		return false;
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = SQLITE_SHARED_FIRST;
	fl.l_len = SQLITE_SHARED_SIZE;
	if (fcntl(m->lockfd, F_GETLK, &fl) == -1)
		return false;
	return fl.l_type != F_UNLCK;
}

/*
 * step_busy - sqlite3_step, retried while the file is busy.
 *
 * Postfix's dict_sqlite sets no busy timeout and treats SQLITE_BUSY as
 * fatal: the smtpd doing the lookup exits and its client's session is lost.
 * A reader gets BUSY whenever a writer holds the PENDING or EXCLUSIVE lock.
 * SQLite's own busy handler waits for readers to leave while *holding*
 * PENDING, so each write that met a lookup made every other lookup in the
 * next milliseconds fatal (the e2e test caught smtpd dying this way).  With
 * no busy handler, a write that meets a reader fails at once, SQLite rolls
 * the autocommit statement back and drops its locks, and we wait here
 * holding none.  A write does not even try while a lookup holds its lock
 * (each try takes PENDING for an instant; `writes` says the statement
 * changes the map, the set-up statements mostly do not).  What is left is the instant
 * between that check and the lock, and the EXCLUSIVE window of the write
 * itself, a few page writes (synchronous = OFF keeps fsync out of it).
 */
static int
step_busy(struct sqlite_map *m, sqlite3_stmt *st, bool writes)
{
	const struct timespec pause = { 0, 1000 * 1000 };
	int rc;

	for (int waited = 0;; waited++) {
		if (writes && waited < HOLDMAP_BUSY_MS && readers_present(m)) {
			(void)nanosleep(&pause, NULL);
			continue;
		}
		rc = sqlite3_step(st);
		if (rc != SQLITE_BUSY || waited >= HOLDMAP_BUSY_MS)
			return rc;
		sqlite3_reset(st);
		(void)nanosleep(&pause, NULL);
	}
}

/* prepare_busy - sqlite3_prepare_v3, retried while the schema is busy */
static int
prepare_busy(sqlite3 *db, const char *sql, unsigned flags, sqlite3_stmt **st)
{
	const struct timespec pause = { 0, 2 * 1000 * 1000 };
	int rc;

	for (int waited = 0;; waited += 2) {
		rc = sqlite3_prepare_v3(db, sql, -1, flags, st, NULL);
		if (rc != SQLITE_BUSY || waited >= HOLDMAP_BUSY_MS)
			return rc;
		(void)nanosleep(&pause, NULL);
	}
}

/* exec_busy - one statement without parameters or rows, via step_busy */
static int
exec_busy(struct sqlite_map *m, const char *sql)
{
	sqlite3_stmt *st;
	int rc;

	if (prepare_busy(m->db, sql, 0, &st) != SQLITE_OK)
		return -1;
	while ((rc = step_busy(m, st, false)) == SQLITE_ROW)
		;
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* db_err - SQLite's last error on the map, into err */
static void
db_err(const struct sqlite_map *m, char *err, size_t errlen)
{
	holdmap_seterr(err, errlen, "%s: %s", m->path, sqlite3_errmsg(m->db));
}

/* open_sqlite - create or open the map file in rollback-journal mode */
static int
open_sqlite(struct sqlite_map *m, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	const char *mode;
	int rc = -1;

	if (sqlite3_open_v2(m->path, &m->db, SQLITE_OPEN_READWRITE
	    | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		holdmap_seterr(err, errlen, "%s: %s", m->path,
		    m->db ? sqlite3_errmsg(m->db) : "out of memory");
		goto out;
	}
	/*
	 * No busy handler: step_busy() and prepare_busy() retry themselves,
	 * holding no lock while they wait (see step_busy).
	 */
	sqlite3_busy_timeout(m->db, 0);
	if ((m->lockfd = open(m->path, O_RDONLY | O_CLOEXEC)) == -1) {
		holdmap_seterr(err, errlen, "%s: %s", m->path, strerror(errno));
		goto out;
	}
	/*
	 * Refuse a WAL file rather than convert it: it is most likely the
	 * daemon's own database named by mistake, and Postfix could not read
	 * it anyway without write access.
	 */
	if (prepare_busy(m->db, "PRAGMA journal_mode", 0, &st) != SQLITE_OK
	    || step_busy(m, st, false) != SQLITE_ROW) {
		db_err(m, err, errlen);
		goto out;
	}
	mode = (const char *)sqlite3_column_text(st, 0);
	if (mode != NULL && strcmp(mode, "wal") == 0) {
		holdmap_seterr(err, errlen, "%s: is in WAL mode (the daemon's "
		    "own database?); Postfix needs a separate map file in "
		    "rollback-journal mode", m->path);
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (prepare_busy(m->db, "PRAGMA journal_mode = DELETE", 0, &st)
	    != SQLITE_OK || step_busy(m, st, false) != SQLITE_ROW) {
		db_err(m, err, errlen);
		goto out;
	}
	mode = (const char *)sqlite3_column_text(st, 0);
	if (mode == NULL || strcmp(mode, "delete") != 0) {
		holdmap_seterr(err, errlen, "%s: cannot set rollback-journal "
		    "mode (got %s)", m->path, mode ? mode : "nothing");
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;
	/*
	 * No fsync while the EXCLUSIVE lock is held: every Postfix lookup in
	 * that window dies (see step_busy).  The map is derived data: the
	 * daemon writes every active ban back into it at start, so an OS
	 * crash costs nothing that is not rebuilt.
	 */
	if (exec_busy(m, "PRAGMA synchronous = OFF") != 0
	    || exec_busy(m, sql_create[m->kind]) != 0) {
		db_err(m, err, errlen);
		goto out;
	}
	if (prepare_busy(m->db, sql_add[m->kind], SQLITE_PREPARE_PERSISTENT,
	    &m->st_add) != SQLITE_OK
	    || prepare_busy(m->db, sql_del[m->kind], SQLITE_PREPARE_PERSISTENT,
	    &m->st_del) != SQLITE_OK
	    || prepare_busy(m->db, sql_expire[m->kind],
	    SQLITE_PREPARE_PERSISTENT, &m->st_expire) != SQLITE_OK) {
		db_err(m, err, errlen);
		goto out;
	}
	/* Postfix's smtpd reads it as user postfix. */
	if (chmod(m->path, 0644) == -1) {
		holdmap_seterr(err, errlen, "chmod %s: %s", m->path,
		    strerror(errno));
		goto out;
	}
	if (write_cf(m, err, errlen) == -1)
		goto out;
	rc = 0;
out:
	sqlite3_finalize(st);
	if (rc != 0 && m->db != NULL && (sqlite3_errcode(m->db) & 0xff) == SQLITE_CORRUPT)
		rc = MAP_CORRUPT;
	return rc;
}

/*
 * reopen_corrupt - the map file is an SQLite file with damaged pages (an
 * OS crash while synchronous = OFF, see open_sqlite).  The map is derived
 * data, rebuilt from the daemon's database at start, so set the damaged
 * file aside (kept for the admin, never deleted) and start a new one.  A
 * file that is not SQLite at all is left alone: it may be something else
 * named by mistake.
 */
static int
reopen_corrupt(struct sqlite_map *m, char *err, size_t errlen)
{
	char *aside;
	int rc = -1;

	sqlite3_finalize(m->st_add);
	sqlite3_finalize(m->st_del);
	sqlite3_finalize(m->st_expire);
	m->st_add = m->st_del = m->st_expire = NULL;
	sqlite3_close(m->db);
	m->db = NULL;
	(void)close(m->lockfd);
	m->lockfd = -1;
	if ((aside = holdmap_asprintf("%s.corrupt", m->path)) == NULL) {
		holdmap_seterr(err, errlen, "%s: out of memory", m->path);
		return -1;
	}
	if (rename(m->path, aside) == -1) {
		holdmap_seterr(err, errlen, "%s is damaged, and moving it to %s "
		    "failed: %s", m->path, aside, strerror(errno));
		goto out;
	}
	log_warnx("%s: the map file was damaged; kept it as %s and started a new "
	    "one (the active bans are written back into it)", m->path, aside);
	rc = open_sqlite(m, err, errlen) == 0 ? 0 : -1;
out:
	free(aside);
	return rc;
}

/* step_done - run a bound statement to completion and reset it */
static int
step_done(struct sqlite_map *m, sqlite3_stmt *st)
{
	int rc = step_busy(m, st, true);

	if (rc != SQLITE_DONE)
		log_warnx("%s: %s", m->path, sqlite3_errmsg(m->db));
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* sqlite_close - finalize, close, free */
static void
sqlite_close(void *state)
{
	struct sqlite_map *m = state;

	if (m == NULL)
		return;
	sqlite3_finalize(m->st_add);
	sqlite3_finalize(m->st_del);
	sqlite3_finalize(m->st_expire);
	if (m->db != NULL)
		sqlite3_close(m->db);
	/* Only now: closing any fd of the file drops this process's POSIX
	 * locks on it, SQLite's included. */
	if (m->lockfd != -1)
		(void)close(m->lockfd);
	free(m->path);
	free(m->cfpath);
	free(m);
}

/* sqlite_open - create or open the map and write its .cf */
static int
sqlite_open(void **state, const char *path, enum holdmap_kind kind,
    const char *confdir, char *err, size_t errlen)
{
	struct sqlite_map *m;
	int rc;

	(void)confdir;          /* Postfix reads the file itself: no postmap */
	*state = NULL;
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		holdmap_seterr(err, errlen, "%s: out of memory", path);
		return -1;
	}
	m->kind = kind;
	m->lockfd = -1;
	if ((m->path = strdup(path)) == NULL
	    || (m->cfpath = cf_path(path, kind)) == NULL) {
		holdmap_seterr(err, errlen, "%s: out of memory", path);
		sqlite_close(m);
		return -1;
	}
	if ((rc = open_sqlite(m, err, errlen)) == MAP_CORRUPT)
		rc = reopen_corrupt(m, err, errlen);
	if (rc != 0) {
		sqlite_close(m);
		return -1;
	}
	*state = m;
	return 0;
}

/* sqlite_add - insert or replace, seen at Postfix's next lookup */
static int
sqlite_add(void *state, const char *key, const char *value,
    int64_t expires_at)
{
	struct sqlite_map *m = state;

	if (sqlite3_bind_text(m->st_add, 1, key, -1, SQLITE_STATIC) != SQLITE_OK
	    || sqlite3_bind_text(m->st_add, 2, value, -1, SQLITE_STATIC)
	    != SQLITE_OK
	    || sqlite3_bind_int64(m->st_add, 3, expires_at) != SQLITE_OK) {
		log_warnx("%s: %s", m->path, sqlite3_errmsg(m->db));
		sqlite3_reset(m->st_add);
		return -1;
	}
	return step_done(m, m->st_add);
}

/* sqlite_remove - 1 removed, 0 absent, -1 error */
static int
sqlite_remove(void *state, const char *key)
{
	struct sqlite_map *m = state;

	if (sqlite3_bind_text(m->st_del, 1, key, -1, SQLITE_STATIC)
	    != SQLITE_OK) {
		log_warnx("%s: %s", m->path, sqlite3_errmsg(m->db));
		return -1;
	}
	if (step_done(m, m->st_del) == -1)
		return -1;
	return sqlite3_changes(m->db) > 0 ? 1 : 0;
}

/* sqlite_expire - delete rows whose time is over; how many, or -1 */
static int
sqlite_expire(void *state, int64_t now)
{
	struct sqlite_map *m = state;

	if (sqlite3_bind_int64(m->st_expire, 1, now) != SQLITE_OK) {
		log_warnx("%s: %s", m->path, sqlite3_errmsg(m->db));
		return -1;
	}
	if (step_done(m, m->st_expire) == -1)
		return -1;
	return sqlite3_changes(m->db);
}

static size_t
sqlite_files(const void *state, const char *out[HOLDMAP_FILES_MAX])
{
	const struct sqlite_map *m = state;

	out[0] = m->path;
	out[1] = m->cfpath;
	return 2;
}

/* sqlite_postfix_reads - Postfix opens the .cf, then the .db it names */
static int
sqlite_postfix_reads(const char *path, enum holdmap_kind kind,
    char *out[HOLDMAP_READS_MAX])
{
	if ((out[0] = strdup(path)) == NULL)
		return -1;
	if ((out[1] = cf_path(path, kind)) == NULL) {
		free(out[0]);
		return -1;
	}
	return 2;
}

/* sqlite_postfix_name - main.cf names the .cf, not the .db */
static const char *
sqlite_postfix_name(const char *path, enum holdmap_kind kind, char *buf,
    size_t len)
{
	const char *slash = strrchr(path, '/');
	int n = snprintf(buf, len, "sqlite:%.*s/%s", (int)(slash - path), path,
	    cfnames[kind]);

	return n < 0 || (size_t)n >= len ? NULL : buf;
}

const struct holdmap_backend holdmap_sqlite_backend = {
	.type = "sqlite",
	.open = sqlite_open,
	.close = sqlite_close,
	.add = sqlite_add,
	.remove = sqlite_remove,
	.expire = sqlite_expire,
	.sync = NULL,
	.files = sqlite_files,
	.postfix_reads = sqlite_postfix_reads,
	.postfix_name = sqlite_postfix_name,
};
