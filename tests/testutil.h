/*
 * testutil - small helpers shared by the tests: temp dirs and files, and the
 * source/build directories meson tells us about.
 */
#ifndef MAILJAIL_TESTUTIL_H
#define MAILJAIL_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* A fresh directory under $TMPDIR (or /tmp); the path is static storage
 * per call site's buffer. */
void tu_mkdtemp(char *buf, size_t len);
/* Write text to dir/name, mode 0644 whatever the umask (a config file
 * others can write is refused); returns the full path in out. */
void tu_write(const char *dir, const char *name, const char *text, char *out, size_t len);
/* Remove a directory tree (best effort). */
void tu_rmrf(const char *dir);
const char *tu_srcdir(void);
const char *tu_builddir(void);
/* Run a shell command; returns its exit status (or -1). */
int tu_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Run a shell command and capture its stdout (malloc'd, NUL-terminated). */
char *tu_sh_output(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Load text as a jail file (0644 in a temporary directory, removed after)
 * with jails_load: its result, *js and d as it left them; path (len)
 * names the file, for the file:line of its messages. */
struct jailset;
struct diag;
int tu_jails_load(const char *text, struct jailset **js, struct diag *d, char *path,
    size_t len);
/* The same, failing the test (with the messages) if text is refused. */
struct jailset *tu_jails_load_ok(const char *text, char *path, size_t len);

/* "Nov  2 09:00:05": t as syslog stamps it (local time, no year). */
void tu_syslog_stamp(long long t, char *buf, size_t len);

/*
 * The store under test.  MAILJAIL_TEST_DB=pgsql (the suites' second meson
 * entry) runs the store-level tests on PostgreSQL: the test runner starts a
 * private cluster (tests/pg.sh, in /tmp, unix socket only) before the first
 * test and stops it after the last; MAILJAIL_TEST_PG=1 starts one too,
 * whatever store the tests use.  No PostgreSQL: every test that needs it
 * fails, none skips.
 */
bool tu_pg(void);
/* The running cluster's directory (pg.sh's DIR); asserts it runs. */
const char *tu_pg_dir(void);
/* A new, empty database for this test, fit for --db and "db =": SQLite
 * dir/name, or (tu_pg) a new database in the cluster, as a URI. */
void tu_db(const char *dir, const char *name, char *out, size_t len);
/* The same, always PostgreSQL. */
void tu_pg_db(const char *name, char *out, size_t len);
/* Run sql (valid for both SQLite and PostgreSQL) on db with the sqlite3
 * CLI or psql: rows one per line, columns '|'-separated (sqlite3's way);
 * malloc'd.  Errors are not shown: the output is what was printed. */
char *tu_sql(const char *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Poll tu_sql(db, sql) until it prints want exactly (15 s at most); never
 * before a SQLite db exists (sqlite3 would create it, as root). */
bool tu_wait_sql(const char *db, const char *sql, const char *want);
/* The descriptor process pid has open on path, or -1. */
int tu_open_fd(pid_t pid, const char *path);
/* The file position of pid's descriptor fd (from /proc: how far a daemon
 * has read a log), or -1. */
long long tu_fd_offset(pid_t pid, int fd);
/* The offset of path saved in db's log_position (-1: none, or no DB yet);
 * through the library, quicker than a sqlite3 process (a daemon that holds
 * read lines for a commit may have committed them by then). */
long long tu_saved_offset(const char *db, const char *path);
/* Poll a file until it contains s (15 s at most). */
bool tu_wait_file_has(const char *path, const char *s);
/* A 2 MiB tmpfs mounted on dir/fs (its path in fs) in a mount namespace of
 * this test process only: the daemons it forks inherit it, nothing reaches
 * the host, and it goes when the test ends.  Needs root; fails, never skips. */
void tu_small_fs(const char *dir, char *fs, size_t len);
/* Fill the filesystem holding dir (a small tmpfs) with dir/filler, to the
 * last block; asserts that nothing is left. */
void tu_fill_fs(const char *dir);

/*
 * Daemons a test forks must die with the test, even when an assertion
 * fails: a leaked daemon keeps meson's output pipe open and hangs the run.
 * tu_fork() forks and records the child (which gets SIGKILL if the test
 * process dies first: PR_SET_PDEATHSIG, kept across exec until a uid
 * change); tu_waitpid() reaps one and forgets it; the suite's
 * .fini calls tu_kill_children(), which SIGKILLs and reaps what is left.
 */
pid_t tu_fork(void);
void tu_reaped(pid_t pid);
/* waitpid(pid, st, 0), then tu_reaped(pid). */
pid_t tu_waitpid(pid_t pid, int *st);
void tu_kill_children(void);

#endif
