/*
 * holdmap - the Postfix access maps mailjail writes and Postfix reads (HOLD
 * for accounts, reject for client IPs).  See holdmap.h for the two kinds of
 * map and the file layout.
 *
 * struct holdmap owns its SQLite handle and statements (sqlite:), or its
 * in-memory entry array (hash:, the whole map: it is rewritten from memory
 * at each sync), and every path string.  holdmap_close frees all of it.
 *
 * SECURITY: keys and values are text from the mail log, i.e. attacker
 * influenced.  For sqlite: they only ever travel as bound parameters, and
 * Postfix quotes the key itself when it expands %s in the query.  For hash:
 * a key that could change the shape of the source file (whitespace, control
 * characters, quotes, '#', empty) is refused.  Postfix commands are run with
 * fork/execv, never through a shell.
 */
#include "holdmap.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define POSTMAP_PATH    "/usr/sbin/postmap"
#define POSTQUEUE_PATH  "/usr/sbin/postqueue"
#define POSTSUPER_PATH  "/usr/sbin/postsuper"
#define HOLDMAP_BUSY_MS 5000
#define QID_MAX         64
#define MAP_CORRUPT     (-2)    /* open_sqlite: damaged pages (reopen_corrupt) */

/*
 * SQLite's lock bytes on a database file (the "lock-byte page" of the file
 * format, the same in every version): readers hold a read lock on the
 * SHARED range.  Only ever queried with F_GETLK here, never locked.
 */
#define SQLITE_PENDING_BYTE 0x40000000
#define SQLITE_SHARED_FIRST (SQLITE_PENDING_BYTE + 2)
#define SQLITE_SHARED_SIZE  510

enum map_type { MAP_SQLITE, MAP_HASH };

struct entry {
	char *key;
	char *value;
	int64_t expires_at;
};

struct holdmap {
	enum map_type type;
	enum holdmap_kind kind;
	char *path;             /* sqlite: the .db; hash: the text source */
	char *cfpath;           /* sqlite: postfix-hold.cf / postfix-reject.cf */
	char *exppath;          /* hash: the expiry sidecar */
	char *hashdb;           /* hash: path.db, what postmap makes */
	char *confdir;          /* Postfix config dir for postmap, or NULL */
	sqlite3 *db;
	sqlite3_stmt *st_add, *st_del, *st_expire;
	struct entry *ents;
	size_t nents, cap;
	bool dirty;
	int lockfd;             /* sqlite: read-only fd for peeking at locks */
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

/* seterr - printf into the caller's error buffer (which may be NULL) */
static void MJ_PRINTF(3, 4)
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* xasprintf - asprintf that returns NULL on failure */
static char * MJ_PRINTF(1, 2)
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return n < 0 ? NULL : s;
}

/* fold_key - lower-case copy; Postfix folds lookup keys (ASCII here) */
static char *
fold_key(const char *key)
{
	char *k = strdup(key);

	if (k != NULL)
		for (char *p = k; *p; p++)
			*p = (char)tolower((unsigned char)*p);
	return k;
}

/* has_ctl - any control character (a value with one would break a line) */
static bool
has_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/* hash_key_ok - can this key go into a postmap source file as one entry? */
static bool
hash_key_ok(const char *key)
{
	if (*key == '\0')
		return false;
	for (const char *p = key; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (c <= 0x20 || c == 0x7f || c == '"' || c == '\'' || c == '#'
		    || c == '\\')
			return false;
	}
	return true;
}

/* path_ok - absolute, and usable in main.cf and a .cf file as is */
static bool
path_ok(const char *p)
{
	if (p[0] != '/')
		return false;
	for (; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == ',')
			return false;
	return true;
}

/*
 * parse_spec - split "type:/path"; *pathp points into spec.  texthash: is
 * refused here so every entry point gives the same reason.
 */
static int
parse_spec(const char *spec, enum map_type *type, const char **pathp,
    char *err, size_t errlen)
{
	if (strncmp(spec, "sqlite:", 7) == 0) {
		*type = MAP_SQLITE;
		*pathp = spec + 7;
	} else if (strncmp(spec, "hash:", 5) == 0) {
		*type = MAP_HASH;
		*pathp = spec + 5;
	} else if (strncmp(spec, "texthash:", 9) == 0) {
		seterr(err, errlen, "%s: texthash: maps are read once when a "
		    "Postfix process starts, so a hold would need a \"postfix "
		    "reload\" to take effect; use sqlite: or hash:", spec);
		return -1;
	} else {
		seterr(err, errlen, "%s: unsupported map type (use sqlite:/path "
		    "or hash:/path)", spec);
		return -1;
	}
	if (!path_ok(*pathp)) {
		seterr(err, errlen, "%s: the path must be absolute, without "
		    "spaces, commas or control characters", spec);
		return -1;
	}
	return 0;
}

/* cf_path - the sqlite_table(5) file next to the .db (malloc'd) */
static char *
cf_path(const char *dbpath, enum holdmap_kind kind)
{
	const char *slash = strrchr(dbpath, '/');

	return xasprintf("%.*s/%s", (int)(slash - dbpath), dbpath, cfnames[kind]);
}

/*
 * write_atomic - replace path with data: temp file in the same directory,
 * fsync, rename, fsync the directory, so Postfix and a crash see either the
 * old or the new file, never a half-written one.  Mode is set explicitly
 * because the daemon's umask is not ours to trust.
 */
static int
write_atomic(const char *path, const char *data, size_t len, mode_t mode,
    char *err, size_t errlen)
{
	char *tmp = NULL, *dir = NULL, *slash;
	int fd = -1, dfd = -1, rc = -1;
	size_t off = 0;

	if ((tmp = xasprintf("%s.tmpXXXXXX", path)) == NULL
	    || (dir = strdup(path)) == NULL) {
		seterr(err, errlen, "%s: out of memory", path);
		goto out;
	}
	if ((fd = mkstemp(tmp)) == -1) {
		seterr(err, errlen, "%s: %s", tmp, strerror(errno));
		free(tmp);
		tmp = NULL;
		goto out;
	}
	while (off < len) {
		ssize_t n = write(fd, data + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			seterr(err, errlen, "write %s: %s", tmp, strerror(errno));
			goto out;
		}
		off += (size_t)n;
	}
	if (fchmod(fd, mode) == -1 || fsync(fd) == -1) {
		seterr(err, errlen, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	if (close(fd) == -1) {
		fd = -1;
		seterr(err, errlen, "close %s: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) == -1) {
		seterr(err, errlen, "rename %s to %s: %s", tmp, path,
		    strerror(errno));
		goto out;
	}
	free(tmp);
	tmp = NULL;
	slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	/* The rename is durable only once the directory is. */
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1
	    || fsync(dfd) == -1) {
		seterr(err, errlen, "fsync directory %s: %s", dir, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (fd != -1)
		(void)close(fd);
	if (dfd != -1)
		(void)close(dfd);
	if (tmp != NULL)
		(void)unlink(tmp);
	free(tmp);
	free(dir);
	return rc;
}

/* ---------------------------------------------------------------- */
/* running Postfix commands                                          */
/* ---------------------------------------------------------------- */

/*
 * run_cmd - fork/execv argv[0] with argv; feed `in` (if not NULL) to its
 * stdin, or collect its stdout into *out (malloc'd, NUL-terminated) if out
 * is not NULL.  Never both: the data here is small and one-way.  Returns
 * the exit status (0..255), or -1 (logged) if it could not run or died.
 */
static int
run_cmd(char *const argv[], const char *in, size_t inlen, char **out)
{
	int pin[2] = { -1, -1 }, pout[2] = { -1, -1 };
	char *buf = NULL;
	size_t len = 0, cap = 0;
	sigset_t pipeset, oldset;
	bool masked = false;
	pid_t pid = -1;
	int status, rc = -1;

	if (out != NULL)
		*out = NULL;
	if ((in != NULL && pipe2(pin, O_CLOEXEC) == -1)
	    || (out != NULL && pipe2(pout, O_CLOEXEC) == -1)) {
		log_warn("%s: pipe", argv[0]);
		goto out;
	}
	if ((pid = fork()) == -1) {
		log_warn("%s: fork", argv[0]);
		goto out;
	}
	if (pid == 0) {
		int nullfd = open("/dev/null", O_RDWR);

		if (nullfd == -1
		    || dup2(in != NULL ? pin[0] : nullfd, 0) == -1
		    || dup2(out != NULL ? pout[1] : nullfd, 1) == -1)
			_exit(127);
		/* stderr stays ours: Postfix's complaints reach our log. */
		closefrom(3);
		execv(argv[0], argv);
		_exit(127);
	}
	if (in != NULL) {
		size_t off = 0;

		(void)close(pin[0]);
		pin[0] = -1;
		/* A child that exits early must not kill us with SIGPIPE. */
		sigemptyset(&pipeset);
		sigaddset(&pipeset, SIGPIPE);
		if (pthread_sigmask(SIG_BLOCK, &pipeset, &oldset) == 0)
			masked = true;
		while (off < inlen) {
			ssize_t n = write(pin[1], in + off, inlen - off);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				log_warn("%s: writing its input", argv[0]);
				break;
			}
			off += (size_t)n;
		}
		(void)close(pin[1]);
		pin[1] = -1;
		if (masked) {
			struct timespec zero = { 0, 0 };

			while (sigtimedwait(&pipeset, NULL, &zero) > 0)
				;
			(void)pthread_sigmask(SIG_SETMASK, &oldset, NULL);
		}
	}
	if (out != NULL) {
		(void)close(pout[1]);
		pout[1] = -1;
		for (;;) {
			ssize_t n;

			if (cap - len < 4096) {
				char *nb = realloc(buf, cap ? cap * 2 : 8192);

				if (nb == NULL) {
					log_warnx("%s: out of memory", argv[0]);
					break;
				}
				buf = nb;
				cap = cap ? cap * 2 : 8192;
			}
			n = read(pout[0], buf + len, cap - len - 1);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				log_warn("%s: reading its output", argv[0]);
				break;
			}
			if (n == 0)
				break;
			len += (size_t)n;
		}
	}
	while (waitpid(pid, &status, 0) == -1) {
		if (errno != EINTR) {
			log_warn("%s: waitpid", argv[0]);
			goto out;
		}
	}
	if (!WIFEXITED(status)) {
		log_warnx("%s: killed by signal %d", argv[0], WTERMSIG(status));
		goto out;
	}
	rc = WEXITSTATUS(status);
	if (rc == 127)
		log_warnx("%s: could not be run (is Postfix installed?)", argv[0]);
	if (out != NULL && buf != NULL) {
		buf[len] = '\0';
		*out = buf;
		buf = NULL;
	}
out:
	for (int i = 0; i < 2; i++) {
		if (pin[i] != -1)
			(void)close(pin[i]);
		if (pout[i] != -1)
			(void)close(pout[i]);
	}
	free(buf);
	return rc;
}

/* ---------------------------------------------------------------- */
/* sqlite: maps                                                      */
/* ---------------------------------------------------------------- */

/* write_cf - the ready sqlite_table(5) file Postfix is pointed at */
static int
write_cf(struct holdmap *m, char *err, size_t errlen)
{
	char *text;
	int rc;

	text = xasprintf(
	    "# Written by mailjail; rewritten when mailjail opens the map.\n"
	    "# main.cf: %s sqlite:%s\n"
	    "dbpath = %s\n"
	    "query = SELECT value FROM %s WHERE key = '%%s'"
	    " AND expires_at > CAST(strftime('%%%%s', 'now') AS INTEGER)\n",
	    m->kind == HOLDMAP_HOLD ? "check_sasl_access" : "check_client_access",
	    m->cfpath, m->path, tables[m->kind]);
	if (text == NULL) {
		seterr(err, errlen, "%s: out of memory", m->cfpath);
		return -1;
	}
	rc = write_atomic(m->cfpath, text, strlen(text), 0644, err, errlen);
	free(text);
	return rc;
}

/*
 * readers_present - does another process hold SQLite's shared lock on the
 * map, i.e. is a lookup running?  Asks the kernel (F_GETLK), takes no lock.
 */
static bool
readers_present(const struct holdmap *m)
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
step_busy(struct holdmap *m, sqlite3_stmt *st, bool writes)
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
exec_busy(struct holdmap *m, const char *sql)
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

/* open_sqlite - create or open the map file in rollback-journal mode */
static int
open_sqlite(struct holdmap *m, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	const char *mode;
	int rc = -1;

	if (sqlite3_open_v2(m->path, &m->db, SQLITE_OPEN_READWRITE
	    | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		seterr(err, errlen, "%s: %s", m->path,
		    m->db ? sqlite3_errmsg(m->db) : "out of memory");
		goto out;
	}
	/*
	 * No busy handler: step_busy() and prepare_busy() retry themselves,
	 * holding no lock while they wait (see step_busy).
	 */
	sqlite3_busy_timeout(m->db, 0);
	if ((m->lockfd = open(m->path, O_RDONLY | O_CLOEXEC)) == -1) {
		seterr(err, errlen, "%s: %s", m->path, strerror(errno));
		goto out;
	}
	/*
	 * Refuse a WAL file rather than convert it: it is most likely the
	 * daemon's own database named by mistake, and Postfix could not read
	 * it anyway without write access.
	 */
	if (prepare_busy(m->db, "PRAGMA journal_mode", 0, &st) != SQLITE_OK
	    || step_busy(m, st, false) != SQLITE_ROW) {
		seterr(err, errlen, "%s: %s", m->path, sqlite3_errmsg(m->db));
		goto out;
	}
	mode = (const char *)sqlite3_column_text(st, 0);
	if (mode != NULL && strcmp(mode, "wal") == 0) {
		seterr(err, errlen, "%s: is in WAL mode (the daemon's own "
		    "database?); Postfix needs a separate map file in rollback-"
		    "journal mode", m->path);
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (prepare_busy(m->db, "PRAGMA journal_mode = DELETE", 0, &st)
	    != SQLITE_OK || step_busy(m, st, false) != SQLITE_ROW) {
		seterr(err, errlen, "%s: %s", m->path, sqlite3_errmsg(m->db));
		goto out;
	}
	mode = (const char *)sqlite3_column_text(st, 0);
	if (mode == NULL || strcmp(mode, "delete") != 0) {
		seterr(err, errlen, "%s: cannot set rollback-journal mode (got "
		    "%s)", m->path, mode ? mode : "nothing");
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
		seterr(err, errlen, "%s: %s", m->path, sqlite3_errmsg(m->db));
		goto out;
	}
	if (prepare_busy(m->db, sql_add[m->kind], SQLITE_PREPARE_PERSISTENT,
	    &m->st_add) != SQLITE_OK
	    || prepare_busy(m->db, sql_del[m->kind], SQLITE_PREPARE_PERSISTENT,
	    &m->st_del) != SQLITE_OK
	    || prepare_busy(m->db, sql_expire[m->kind],
	    SQLITE_PREPARE_PERSISTENT, &m->st_expire) != SQLITE_OK) {
		seterr(err, errlen, "%s: %s", m->path, sqlite3_errmsg(m->db));
		goto out;
	}
	/* Postfix's smtpd reads it as user postfix. */
	if (chmod(m->path, 0644) == -1) {
		seterr(err, errlen, "chmod %s: %s", m->path, strerror(errno));
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
reopen_corrupt(struct holdmap *m, char *err, size_t errlen)
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
	if ((aside = xasprintf("%s.corrupt", m->path)) == NULL) {
		seterr(err, errlen, "%s: out of memory", m->path);
		return -1;
	}
	if (rename(m->path, aside) == -1) {
		seterr(err, errlen, "%s is damaged, and moving it to %s failed: %s",
		    m->path, aside, strerror(errno));
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
step_done(struct holdmap *m, sqlite3_stmt *st)
{
	int rc = step_busy(m, st, true);

	if (rc != SQLITE_DONE)
		log_warnx("%s: %s", m->path, sqlite3_errmsg(m->db));
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* ---------------------------------------------------------------- */
/* hash: maps                                                        */
/* ---------------------------------------------------------------- */

static struct entry *
find_entry(struct holdmap *m, const char *key)
{
	for (size_t i = 0; i < m->nents; i++)
		if (strcmp(m->ents[i].key, key) == 0)
			return &m->ents[i];
	return NULL;
}

static void
drop_entry(struct holdmap *m, size_t i)
{
	free(m->ents[i].key);
	free(m->ents[i].value);
	m->ents[i] = m->ents[--m->nents];
}

/* put_entry - add or replace; takes ownership of key (not of value) */
static int
put_entry(struct holdmap *m, char *key, const char *value, int64_t exp)
{
	struct entry *e = find_entry(m, key);
	char *v = strdup(value);

	if (v == NULL) {
		free(key);
		return -1;
	}
	if (e != NULL) {
		free(key);
		free(e->value);
		e->value = v;
		e->expires_at = exp;
		return 0;
	}
	if (m->nents == m->cap) {
		size_t ncap = m->cap ? m->cap * 2 : 16;
		struct entry *ne = reallocarray(m->ents, ncap, sizeof(*ne));

		if (ne == NULL) {
			free(key);
			free(v);
			return -1;
		}
		m->ents = ne;
		m->cap = ncap;
	}
	m->ents[m->nents].key = key;
	m->ents[m->nents].value = v;
	m->ents[m->nents].expires_at = exp;
	m->nents++;
	return 0;
}

/*
 * load_hash - read back the text source and the expiry sidecar, so a
 * restart keeps the map.  The sidecar is written before the source (see
 * sync_hash): an entry found in the source without an expiry is left over
 * from an interrupted removal, so it gets "expired now" -- the daemon
 * re-adds every active hold from its own database at start anyway.
 */
static int
load_hash(struct holdmap *m, char *err, size_t errlen)
{
	FILE *fp = NULL;
	char *line = NULL, *sp;
	size_t cap = 0;
	ssize_t n;
	int rc = -1;
	int64_t now = (int64_t)time(NULL);
	const int64_t unknown = INT64_MIN;

	if ((fp = fopen(m->path, "re")) == NULL) {
		if (errno == ENOENT) {
			m->dirty = true;        /* create it at the first sync */
			rc = 0;
		} else
			seterr(err, errlen, "%s: %s", m->path, strerror(errno));
		goto out;
	}
	while ((n = getline(&line, &cap, fp)) != -1) {
		char *key;

		if (n > 0 && line[n - 1] == '\n')
			line[--n] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		if ((sp = strchr(line, ' ')) == NULL) {
			log_warnx("%s: ignoring line without a value", m->path);
			continue;
		}
		*sp = '\0';
		if (!hash_key_ok(line)) {
			log_warnx("%s: ignoring a malformed key", m->path);
			continue;
		}
		if ((key = fold_key(line)) == NULL
		    || put_entry(m, key, sp + 1, unknown) == -1) {
			seterr(err, errlen, "%s: out of memory", m->path);
			goto out;
		}
	}
	if (ferror(fp)) {
		seterr(err, errlen, "%s: %s", m->path, strerror(errno));
		goto out;
	}
	fclose(fp);
	if ((fp = fopen(m->exppath, "re")) == NULL) {
		if (errno != ENOENT) {
			seterr(err, errlen, "%s: %s", m->exppath, strerror(errno));
			goto out;
		}
	} else {
		while ((n = getline(&line, &cap, fp)) != -1) {
			struct entry *e;
			char *end;
			long long v;

			if ((sp = strchr(line, ' ')) == NULL)
				continue;
			*sp = '\0';
			errno = 0;
			v = strtoll(sp + 1, &end, 10);
			if (errno != 0 || end == sp + 1
			    || (*end != '\n' && *end != '\0'))
				continue;
			if ((e = find_entry(m, line)) != NULL)
				e->expires_at = v;
		}
		if (ferror(fp)) {
			seterr(err, errlen, "%s: %s", m->exppath, strerror(errno));
			goto out;
		}
	}
	for (size_t i = 0; i < m->nents; i++)
		if (m->ents[i].expires_at == unknown) {
			log_warnx("%s: %s has no expiry in %s; it expires now",
			    m->path, m->ents[i].key, m->exppath);
			m->ents[i].expires_at = now;
		}
	rc = 0;
out:
	if (fp != NULL)
		fclose(fp);
	free(line);
	return rc;
}

/* postmap - compile the text source into path.db */
static int
postmap(struct holdmap *m)
{
	char *spec = xasprintf("hash:%s", m->path);
	char *argv[6];
	int i = 0, rc = -1;
	char *db = NULL;

	if (spec == NULL || (db = xasprintf("%s.db", m->path)) == NULL) {
		log_warnx("%s: out of memory", m->path);
		goto out;
	}
	argv[i++] = (char *)POSTMAP_PATH;
	if (m->confdir != NULL) {
		argv[i++] = (char *)"-c";
		argv[i++] = m->confdir;
	}
	argv[i++] = spec;
	argv[i] = NULL;
	if (run_cmd(argv, NULL, 0, NULL) != 0) {
		log_warnx("%s: postmap failed; Postfix still sees the previous "
		    "map", m->path);
		goto out;
	}
	if (chmod(db, 0644) == -1) {
		log_warn("chmod %s", db);
		goto out;
	}
	rc = 0;
out:
	free(spec);
	free(db);
	return rc;
}

/* append - grow a text buffer; false when out of memory */
static bool
append(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
	if (*len + n + 1 > *cap) {
		size_t nc = *cap ? *cap : 4096;
		char *nb;

		while (*len + n + 1 > nc)
			nc *= 2;
		if ((nb = realloc(*buf, nc)) == NULL)
			return false;
		*buf = nb;
		*cap = nc;
	}
	memcpy(*buf + *len, s, n);
	*len += n;
	(*buf)[*len] = '\0';
	return true;
}

/*
 * sync_hash - sidecar first, then source, then postmap.  The order makes a
 * crash in between harmless: see load_hash.
 */
static int
sync_hash(struct holdmap *m)
{
	char *src = NULL, *exp = NULL, num[32];
	size_t slen = 0, scap = 0, elen = 0, ecap = 0;
	char err[512];
	const char *hdr = "# Written by mailjail; edits are lost at the next "
	    "change.  Expiry times: see the .expires file.\n";
	int rc = -1;

	if (!append(&src, &slen, &scap, hdr, strlen(hdr))
	    || !append(&exp, &elen, &ecap, "", 0))
		goto nomem;
	for (size_t i = 0; i < m->nents; i++) {
		struct entry *e = &m->ents[i];

		snprintf(num, sizeof(num), " %" PRId64 "\n", e->expires_at);
		if (!append(&src, &slen, &scap, e->key, strlen(e->key))
		    || !append(&src, &slen, &scap, " ", 1)
		    || !append(&src, &slen, &scap, e->value, strlen(e->value))
		    || !append(&src, &slen, &scap, "\n", 1)
		    || !append(&exp, &elen, &ecap, e->key, strlen(e->key))
		    || !append(&exp, &elen, &ecap, num, strlen(num)))
			goto nomem;
	}
	if (write_atomic(m->exppath, exp, elen, 0644, err, sizeof(err)) == -1
	    || write_atomic(m->path, src, slen, 0644, err, sizeof(err)) == -1) {
		log_warnx("%s", err);
		goto out;
	}
	if (postmap(m) == -1)
		goto out;
	m->dirty = false;
	rc = 0;
	goto out;
nomem:
	log_warnx("%s: out of memory", m->path);
out:
	free(src);
	free(exp);
	return rc;
}

/* ---------------------------------------------------------------- */
/* API                                                               */
/* ---------------------------------------------------------------- */

/* holdmap_open - parse spec, create or load the map */
int
holdmap_open(struct holdmap **out, const char *spec, enum holdmap_kind kind,
    const char *postfix_config_dir, char *err, size_t errlen)
{
	struct holdmap *m = NULL;
	enum map_type type;
	const char *path;
	struct stat sb;
	int rc = -1, orc;

	*out = NULL;
	if (kind != HOLDMAP_HOLD && kind != HOLDMAP_REJECT) {
		seterr(err, errlen, "%s: bad map kind", spec);
		goto out;
	}
	if (parse_spec(spec, &type, &path, err, errlen) == -1)
		goto out;
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		seterr(err, errlen, "%s: out of memory", spec);
		goto out;
	}
	m->lockfd = -1;
	if ((m->path = strdup(path)) == NULL
	    || (postfix_config_dir != NULL
	    && (m->confdir = strdup(postfix_config_dir)) == NULL)) {
		seterr(err, errlen, "%s: out of memory", spec);
		goto out;
	}
	m->type = type;
	m->kind = kind;
	if (type == MAP_SQLITE) {
		if ((m->cfpath = cf_path(m->path, kind)) == NULL) {
			seterr(err, errlen, "%s: out of memory", spec);
			goto out;
		}
		if ((orc = open_sqlite(m, err, errlen)) == MAP_CORRUPT)
			orc = reopen_corrupt(m, err, errlen);
		if (orc != 0)
			goto out;
	} else {
		if ((m->exppath = xasprintf("%s.expires", m->path)) == NULL
		    || (m->hashdb = xasprintf("%s.db", m->path)) == NULL) {
			seterr(err, errlen, "%s: out of memory", spec);
			goto out;
		}
		if (load_hash(m, err, errlen) == -1)
			goto out;
		/* Postfix reads path.db: make sure it exists from the start. */
		if (stat(m->hashdb, &sb) == -1)
			m->dirty = true;
		if (m->dirty && sync_hash(m) == -1) {
			seterr(err, errlen, "%s: cannot write or compile the map "
			    "(see the messages above)", spec);
			goto out;
		}
	}
	*out = m;
	m = NULL;
	rc = 0;
out:
	holdmap_close(m);
	return rc;
}

/* holdmap_close - free everything; pending hash: changes are dropped */
void
holdmap_close(struct holdmap *m)
{
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
	for (size_t i = 0; i < m->nents; i++) {
		free(m->ents[i].key);
		free(m->ents[i].value);
	}
	free(m->ents);
	free(m->path);
	free(m->cfpath);
	free(m->exppath);
	free(m->hashdb);
	free(m->confdir);
	free(m);
}

size_t
holdmap_files(const struct holdmap *m, const char *out[HOLDMAP_FILES_MAX])
{
	size_t n = 0;

	out[n++] = m->path;
	if (m->type == MAP_SQLITE) {
		out[n++] = m->cfpath;
	} else {
		out[n++] = m->exppath;
		out[n++] = m->hashdb;
	}
	return n;
}

/* holdmap_add - add or replace key until expires_at */
int
holdmap_add(struct holdmap *m, const char *key, const char *value,
    int64_t expires_at)
{
	char *k = NULL;
	int rc = -1;

	if (*key == '\0') {
		log_warnx("%s: refusing an empty key", m->path);
		goto out;
	}
	if (*value == '\0' || has_ctl(value)) {
		log_warnx("%s: refusing an empty value or one with control "
		    "characters", m->path);
		goto out;
	}
	if (m->type == MAP_HASH && !hash_key_ok(key)) {
		/* Not echoing the key: it may hold the very bytes refused. */
		log_warnx("%s: refusing a key with whitespace, control "
		    "characters, quotes, '\\' or '#' (it could add a second "
		    "entry to a hash: map; use a sqlite: map)", m->path);
		goto out;
	}
	if ((k = fold_key(key)) == NULL) {
		log_warnx("%s: out of memory", m->path);
		goto out;
	}
	if (m->type == MAP_SQLITE) {
		if (sqlite3_bind_text(m->st_add, 1, k, -1, SQLITE_STATIC)
		    != SQLITE_OK
		    || sqlite3_bind_text(m->st_add, 2, value, -1, SQLITE_STATIC)
		    != SQLITE_OK
		    || sqlite3_bind_int64(m->st_add, 3, expires_at) != SQLITE_OK) {
			log_warnx("%s: %s", m->path, sqlite3_errmsg(m->db));
			sqlite3_reset(m->st_add);
			goto out;
		}
		rc = step_done(m, m->st_add);
		goto out;
	}
	if (put_entry(m, k, value, expires_at) == -1) {
		k = NULL;
		log_warnx("%s: out of memory", m->path);
		goto out;
	}
	k = NULL;
	m->dirty = true;
	rc = 0;
out:
	free(k);
	return rc;
}

/* holdmap_remove - 1 removed, 0 absent, -1 error */
int
holdmap_remove(struct holdmap *m, const char *key)
{
	char *k = fold_key(key);
	int rc = -1;

	if (k == NULL) {
		log_warnx("%s: out of memory", m->path);
		goto out;
	}
	if (m->type == MAP_SQLITE) {
		if (sqlite3_bind_text(m->st_del, 1, k, -1, SQLITE_STATIC)
		    != SQLITE_OK) {
			log_warnx("%s: %s", m->path, sqlite3_errmsg(m->db));
			goto out;
		}
		if (step_done(m, m->st_del) == 0)
			rc = sqlite3_changes(m->db) > 0 ? 1 : 0;
		goto out;
	}
	rc = 0;
	for (size_t i = 0; i < m->nents; i++) {
		if (strcmp(m->ents[i].key, k) == 0) {
			drop_entry(m, i);
			m->dirty = true;
			rc = 1;
			break;
		}
	}
out:
	free(k);
	return rc;
}

/* holdmap_expire - drop entries with expires_at <= now */
int
holdmap_expire(struct holdmap *m, int64_t now)
{
	int n = 0;

	if (m->type == MAP_SQLITE) {
		if (sqlite3_bind_int64(m->st_expire, 1, now) != SQLITE_OK) {
			log_warnx("%s: %s", m->path, sqlite3_errmsg(m->db));
			return -1;
		}
		if (step_done(m, m->st_expire) == -1)
			return -1;
		return sqlite3_changes(m->db);
	}
	for (size_t i = 0; i < m->nents;) {
		if (m->ents[i].expires_at <= now) {
			drop_entry(m, i);
			n++;
		} else
			i++;
	}
	if (n > 0)
		m->dirty = true;
	return n;
}

/* holdmap_sync - sqlite: already live; hash: rewrite + postmap if changed */
int
holdmap_sync(struct holdmap *m)
{
	if (m->type == MAP_SQLITE || !m->dirty)
		return 0;
	return sync_hash(m);
}

/* ---------------------------------------------------------------- */
/* can Postfix read it?                                              */
/* ---------------------------------------------------------------- */

struct reader {
	const char *name;
	uid_t uid;
	gid_t groups[64];
	int ngroups;
	bool known;             /* false: no user postfix; test "other" bits */
};

static void
get_reader(struct reader *r)
{
	struct passwd *pw;

	memset(r, 0, sizeof(*r));
	r->name = "postfix";
	errno = 0;
	if ((pw = getpwnam("postfix")) == NULL)
		return;
	r->known = true;
	r->uid = pw->pw_uid;
	r->ngroups = (int)(sizeof(r->groups) / sizeof(r->groups[0]));
	if (getgrouplist("postfix", pw->pw_gid, r->groups, &r->ngroups) == -1) {
		/* Too many groups: the primary one is what matters here. */
		r->groups[0] = pw->pw_gid;
		r->ngroups = 1;
	}
}

/* may - does r get `bit` (4 read, 1 search) on sb?  (ACLs not looked at) */
static bool
may(const struct reader *r, const struct stat *sb, unsigned bit)
{
	if (r->known && r->uid == 0)
		return true;
	if (r->known && sb->st_uid == r->uid)
		return (sb->st_mode >> 6) & bit;
	for (int i = 0; r->known && i < r->ngroups; i++)
		if (sb->st_gid == r->groups[i])
			return (sb->st_mode >> 3) & bit;
	return sb->st_mode & bit;
}

/* check_one - every directory on the way searchable, the file readable */
static int
check_one(const struct reader *r, const char *file, char *err, size_t errlen)
{
	char *p = strdup(file);
	struct stat sb;
	char *s;
	int rc = -1;
	const char *who = r->known ? "user postfix" : "others (no user postfix "
	    "here)";

	if (p == NULL) {
		seterr(err, errlen, "%s: out of memory", file);
		goto out;
	}
	/* Each directory on the way, "/" first: p is cut at each slash. */
	for (s = p; (s = strchr(s, '/')) != NULL; s++) {
		const char *dir = s == p ? "/" : p;

		*s = '\0';
		if (stat(dir, &sb) == -1) {
			seterr(err, errlen, "%s: %s", dir, strerror(errno));
			goto out;
		}
		if (!S_ISDIR(sb.st_mode)) {
			seterr(err, errlen, "%s: not a directory", dir);
			goto out;
		}
		if (!may(r, &sb, 1)) {
			seterr(err, errlen, "directory %s (mode %04o, owner %u:%u):"
			    " %s cannot enter it (no x permission), so Postfix "
			    "cannot open %s", dir, (unsigned)(sb.st_mode & 07777),
			    (unsigned)sb.st_uid, (unsigned)sb.st_gid, who, file);
			goto out;
		}
		*s = '/';
	}
	if (stat(file, &sb) == -1) {
		seterr(err, errlen, "%s: %s (Postfix cannot read a missing map)",
		    file, strerror(errno));
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		seterr(err, errlen, "%s: not a regular file", file);
		goto out;
	}
	if (!may(r, &sb, 4)) {
		seterr(err, errlen, "%s (mode %04o, owner %u:%u): %s cannot read "
		    "it; chmod 0644 it", file, (unsigned)(sb.st_mode & 07777),
		    (unsigned)sb.st_uid, (unsigned)sb.st_gid, who);
		goto out;
	}
	rc = 0;
out:
	free(p);
	return rc;
}

/* holdmap_check_readable - can user postfix read the map (and its .cf)? */
int
holdmap_check_readable(const char *spec, enum holdmap_kind kind, char *err,
    size_t errlen)
{
	struct reader r;
	enum map_type type;
	const char *path;
	char *f = NULL;
	int rc = -1;

	if (kind != HOLDMAP_HOLD && kind != HOLDMAP_REJECT) {
		seterr(err, errlen, "%s: bad map kind", spec);
		goto out;
	}
	if (parse_spec(spec, &type, &path, err, errlen) == -1)
		goto out;
	get_reader(&r);
	if (type == MAP_SQLITE) {
		if ((f = cf_path(path, kind)) == NULL) {
			seterr(err, errlen, "out of memory");
			goto out;
		}
		if (check_one(&r, path, err, errlen) == -1
		    || check_one(&r, f, err, errlen) == -1)
			goto out;
	} else {
		if ((f = xasprintf("%s.db", path)) == NULL) {
			seterr(err, errlen, "out of memory");
			goto out;
		}
		if (check_one(&r, f, err, errlen) == -1)
			goto out;
	}
	rc = 0;
out:
	free(f);
	return rc;
}

/* holdmap_postfix_name - what goes after check_sasl_access in main.cf */
const char *
holdmap_postfix_name(const char *spec, enum holdmap_kind kind, char *buf,
    size_t len)
{
	enum map_type type;
	const char *path, *slash;
	int n;

	if ((kind != HOLDMAP_HOLD && kind != HOLDMAP_REJECT)
	    || parse_spec(spec, &type, &path, NULL, 0) == -1)
		return NULL;
	if (type == MAP_HASH)
		n = snprintf(buf, len, "hash:%s", path);
	else {
		slash = strrchr(path, '/');
		n = snprintf(buf, len, "sqlite:%.*s/%s", (int)(slash - path),
		    path, cfnames[kind]);
	}
	return n < 0 || (size_t)n >= len ? NULL : buf;
}

/* ---------------------------------------------------------------- */
/* releasing held mail                                               */
/* ---------------------------------------------------------------- */

/* skip_ws - JSON whitespace */
static const char *
skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
		p++;
	return p;
}

/* hex4 - four hex digits, or -1 */
static long
hex4(const char *p)
{
	long v = 0;

	for (int i = 0; i < 4; i++) {
		int c = (unsigned char)p[i], d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return -1;
		v = v * 16 + d;
	}
	return v;
}

/* put_utf8 - encode cp into out[*n], staying below len; false if no room */
static bool
put_utf8(char *out, size_t len, size_t *n, unsigned long cp)
{
	char b[4];
	size_t k;

	if (cp < 0x80) {
		b[0] = (char)cp;
		k = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xc0 | (cp >> 6));
		b[1] = (char)(0x80 | (cp & 0x3f));
		k = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xe0 | (cp >> 12));
		b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f));
		k = 3;
	} else {
		b[0] = (char)(0xf0 | (cp >> 18));
		b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (char)(0x80 | (cp & 0x3f));
		k = 4;
	}
	if (out != NULL) {
		if (*n + k >= len)
			return false;
		memcpy(out + *n, b, k);
	}
	*n += k;
	return true;
}

/*
 * json_string - p at the opening quote; decode into out (NULL: just skip).
 * Returns the position after the closing quote, or NULL if malformed, too
 * long or containing \u0000 (which would silently shorten a C string).
 */
static const char *
json_string(const char *p, char *out, size_t len)
{
	size_t n = 0;

	if (*p++ != '"')
		return NULL;
	for (;;) {
		unsigned char c = (unsigned char)*p;
		unsigned long cp;
		long h, lo;

		if (c == '\0' || c < 0x20)
			return NULL;
		if (c == '"')
			break;
		if (c != '\\') {
			if (out != NULL) {
				if (n + 1 >= len)
					return NULL;
				out[n] = (char)c;
			}
			n++;
			p++;
			continue;
		}
		p++;
		switch (*p) {
		case '"': case '\\': case '/':
			cp = (unsigned char)*p;
			p++;
			break;
		case 'b': cp = '\b'; p++; break;
		case 'f': cp = '\f'; p++; break;
		case 'n': cp = '\n'; p++; break;
		case 'r': cp = '\r'; p++; break;
		case 't': cp = '\t'; p++; break;
		case 'u':
			if ((h = hex4(p + 1)) < 0)
				return NULL;
			p += 5;
			if (h >= 0xd800 && h <= 0xdbff) {
				if (p[0] != '\\' || p[1] != 'u'
				    || (lo = hex4(p + 2)) < 0xdc00 || lo > 0xdfff)
					return NULL;
				p += 6;
				cp = 0x10000 + (((unsigned long)h - 0xd800) << 10)
				    + ((unsigned long)lo - 0xdc00);
			} else if (h >= 0xdc00 && h <= 0xdfff)
				return NULL;
			else
				cp = (unsigned long)h;
			if (cp == 0)
				return NULL;
			break;
		default:
			return NULL;
		}
		if (!put_utf8(out, len, &n, cp))
			return NULL;
	}
	if (out != NULL)
		out[n] = '\0';
	return p + 1;
}

/* json_skip - skip any JSON value (nested ones too), bounded depth */
static const char *
json_skip(const char *p, int depth)
{
	p = skip_ws(p);
	if (depth > 32)
		return NULL;
	if (*p == '"')
		return json_string(p, NULL, 0);
	if (*p == '{' || *p == '[') {
		char close = *p == '{' ? '}' : ']';

		p = skip_ws(p + 1);
		if (*p == close)
			return p + 1;
		for (;;) {
			if (close == '}') {
				if ((p = json_string(skip_ws(p), NULL, 0)) == NULL)
					return NULL;
				p = skip_ws(p);
				if (*p++ != ':')
					return NULL;
			}
			if ((p = json_skip(p, depth + 1)) == NULL)
				return NULL;
			p = skip_ws(p);
			if (*p == close)
				return p + 1;
			if (*p++ != ',')
				return NULL;
		}
	}
	/* number, true, false, null */
	if (!(*p == '-' || isalnum((unsigned char)*p)))
		return NULL;
	while (*p == '-' || *p == '+' || *p == '.' || isalnum((unsigned char)*p))
		p++;
	return p;
}

/* holdmap_parse_queue_line - see holdmap.h */
int
holdmap_parse_queue_line(const char *line, char *queue_name, size_t qnlen,
    char *queue_id, size_t qilen, char *sender, size_t slen)
{
	char name[32];
	const char *p = skip_ws(line);

	if (qnlen == 0 || qilen == 0 || slen == 0)
		return -1;
	queue_name[0] = queue_id[0] = sender[0] = '\0';
	if (*p++ != '{')
		return -1;
	p = skip_ws(p);
	if (*p == '}')
		return *skip_ws(p + 1) == '\0' ? 0 : -1;
	for (;;) {
		const char *q;

		p = skip_ws(p);
		/* A member name we don't know may be long: then it is skipped. */
		if ((q = json_string(p, name, sizeof(name))) == NULL) {
			name[0] = '\0';
			if ((q = json_string(p, NULL, 0)) == NULL)
				return -1;
		}
		p = skip_ws(q);
		if (*p++ != ':')
			return -1;
		p = skip_ws(p);
		if (strcmp(name, "queue_name") == 0 || strcmp(name, "queue_id") == 0
		    || strcmp(name, "sender") == 0) {
			char *dst = name[6] == 'n' ? queue_name
			    : name[6] == 'i' ? queue_id : sender;
			size_t dlen = name[6] == 'n' ? qnlen
			    : name[6] == 'i' ? qilen : slen;

			if (*p != '"' || (p = json_string(p, dst, dlen)) == NULL)
				return -1;
		} else if ((p = json_skip(p, 0)) == NULL)
			return -1;
		p = skip_ws(p);
		if (*p == '}')
			break;
		if (*p++ != ',')
			return -1;
	}
	return *skip_ws(p + 1) == '\0' ? 0 : -1;
}

/* qid_ok - Postfix queue ids are alphanumeric; anything else is not one */
static bool
qid_ok(const char *q)
{
	if (*q == '\0' || strlen(q) >= QID_MAX)
		return false;
	for (; *q; q++)
		if (!isalnum((unsigned char)*q))
			return false;
	return true;
}

/* holdmap_release_queue - see holdmap.h */
int
holdmap_release_queue(const char *postfix_config_dir,
    const char *const *qids, size_t nqids, const char *sender, int *released)
{
	char *argv[8], *json = NULL, *line, *save = NULL;
	char qname[32], qid[QID_MAX], *from = NULL;
	char *ids = NULL;
	size_t idlen = 0, idcap = 0, slen = sender ? strlen(sender) + 1 : 1;
	char **picked = NULL;
	size_t npicked = 0;
	int i, rc = -1, st;

	*released = 0;
	if ((from = malloc(slen < 4096 ? 4096 : slen)) == NULL) {
		log_warnx("release: out of memory");
		goto out;
	}
	i = 0;
	argv[i++] = (char *)POSTQUEUE_PATH;
	if (postfix_config_dir != NULL) {
		argv[i++] = (char *)"-c";
		argv[i++] = (char *)postfix_config_dir;
	}
	argv[i++] = (char *)"-j";
	argv[i] = NULL;
	if ((st = run_cmd(argv, NULL, 0, &json)) != 0 || json == NULL) {
		log_warnx("postqueue -j failed (status %d)", st);
		goto out;
	}
	for (line = strtok_r(json, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		bool want = false;

		if (holdmap_parse_queue_line(line, qname, sizeof(qname), qid,
		    sizeof(qid), from, slen < 4096 ? 4096 : slen) == -1) {
			log_warnx("postqueue -j: skipping a line I cannot parse");
			continue;
		}
		if (strcmp(qname, "hold") != 0 || !qid_ok(qid))
			continue;
		for (size_t k = 0; k < nqids && !want; k++)
			want = strcmp(qids[k], qid) == 0;
		if (sender != NULL && strcmp(sender, from) == 0)
			want = true;
		if (!want)
			continue;
		{
			char **np = reallocarray(picked, npicked + 1,
			    sizeof(*np));

			if (np == NULL) {
				log_warnx("release: out of memory");
				goto out;
			}
			picked = np;
			if ((picked[npicked] = strdup(qid)) == NULL) {
				log_warnx("release: out of memory");
				goto out;
			}
			npicked++;
		}
		if (!append(&ids, &idlen, &idcap, qid, strlen(qid))
		    || !append(&ids, &idlen, &idcap, "\n", 1)) {
			log_warnx("release: out of memory");
			goto out;
		}
	}
	if (npicked == 0) {
		rc = 0;
		goto out;
	}
	i = 0;
	argv[i++] = (char *)POSTSUPER_PATH;
	if (postfix_config_dir != NULL) {
		argv[i++] = (char *)"-c";
		argv[i++] = (char *)postfix_config_dir;
	}
	argv[i++] = (char *)"-H";
	argv[i++] = (char *)"-";
	argv[i] = NULL;
	if ((st = run_cmd(argv, ids, idlen, NULL)) != 0) {
		log_warnx("postsuper -H failed (status %d)", st);
		goto out;
	}
	*released = (int)npicked;
	/* Released mail waits for the next queue run unless we ask now. */
	for (size_t k = 0; k < npicked; k++) {
		i = 0;
		argv[i++] = (char *)POSTQUEUE_PATH;
		if (postfix_config_dir != NULL) {
			argv[i++] = (char *)"-c";
			argv[i++] = (char *)postfix_config_dir;
		}
		argv[i++] = (char *)"-i";
		argv[i++] = picked[k];
		argv[i] = NULL;
		if ((st = run_cmd(argv, NULL, 0, NULL)) != 0)
			log_warnx("postqueue -i %s failed (status %d); it will "
			    "go at the next queue run", picked[k], st);
	}
	rc = 0;
out:
	for (size_t k = 0; k < npicked; k++)
		free(picked[k]);
	free(picked);
	free(ids);
	free(json);
	free(from);
	return rc;
}
