/*
 * testutil - see testutil.h.
 */
#include "testutil.h"

#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <dirent.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jail.h"

/* Children of this test process not yet reaped (criterion: one process
 * per test, so this is per test). */
#define TU_CHILDREN_MAX 64
static pid_t tu_children[TU_CHILDREN_MAX];

void
tu_mkdtemp(char *buf, size_t len)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(buf, len, "%s/mailjail-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	cr_assert_not_null(mkdtemp(buf), "mkdtemp %s", buf);
}

void
tu_write(const char *dir, const char *name, const char *text, char *out, size_t len)
{
	FILE *fp;

	snprintf(out, len, "%s/%s", dir, name);
	fp = fopen(out, "w");
	cr_assert_not_null(fp, "cannot write %s", out);
	/* Not the umask's: a group-writable config is refused (cfgfile.h). */
	cr_assert_eq(fchmod(fileno(fp), 0644), 0);
	fputs(text, fp);
	cr_assert_eq(fclose(fp), 0);
}

void
tu_rmrf(const char *dir)
{
	if (dir && *dir && strncmp(dir, "/tmp/", 5) == 0)
		(void)tu_sh("rm -rf '%s'", dir);
}

const char *
tu_srcdir(void)
{
	const char *s = getenv("MAILJAIL_SRCDIR");

	cr_assert_not_null(s, "MAILJAIL_SRCDIR not set (run through meson test)");
	return s;
}

const char *
tu_builddir(void)
{
	const char *s = getenv("MAILJAIL_BUILDDIR");

	cr_assert_not_null(s, "MAILJAIL_BUILDDIR not set (run through meson test)");
	return s;
}

int
tu_sh(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	if (st == -1 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

char *
tu_sh_output(const char *fmt, ...)
{
	char cmd[8192];
	char *buf = NULL;
	size_t len = 0, cap = 0;
	va_list ap;
	FILE *fp;
	int c;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	fp = popen(cmd, "r");
	cr_assert_not_null(fp, "popen %s", cmd);
	while ((c = fgetc(fp)) != EOF) {
		if (len + 1 >= cap) {
			cap = cap ? cap * 2 : 4096;
			buf = realloc(buf, cap);
			cr_assert_not_null(buf);
		}
		buf[len++] = (char)c;
	}
	pclose(fp);
	if (buf == NULL)
		buf = calloc(1, 1);
	buf[len] = '\0';
	return buf;
}

pid_t
tu_fork(void)
{
	pid_t parent = getpid(), pid;

	fflush(NULL);
	pid = fork();
	cr_assert_neq(pid, -1, "fork");
	if (pid == 0) {
		/* Dies with the test; if the test died before this line ran,
		 * go now. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
			_exit(126);
		return 0;
	}
	for (int i = 0; i < TU_CHILDREN_MAX; i++) {
		if (tu_children[i] == 0) {
			tu_children[i] = pid;
			return pid;
		}
	}
	kill(pid, SIGKILL);
	cr_assert_fail("more than %d children", TU_CHILDREN_MAX);
	return -1;
}

void
tu_reaped(pid_t pid)
{
	for (int i = 0; i < TU_CHILDREN_MAX; i++)
		if (tu_children[i] == pid)
			tu_children[i] = 0;
}

pid_t
tu_waitpid(pid_t pid, int *st)
{
	pid_t r = waitpid(pid, st, 0);

	if (r == pid)
		tu_reaped(pid);
	return r;
}

void
tu_kill_children(void)
{
	for (int i = 0; i < TU_CHILDREN_MAX; i++) {
		if (tu_children[i] <= 0)
			continue;
		kill(tu_children[i], SIGKILL);
		(void)waitpid(tu_children[i], NULL, 0);
		tu_children[i] = 0;
	}
}

bool
tu_wait_sql(const char *db, const char *sql, const char *want)
{
	for (int i = 0; i < 300; i++) {
		char *out;
		bool ok;

		/* Not before the daemon made it: sqlite3 would create it as
		 * root, and a daemon running as another user could not write
		 * it (it hands over only in a directory that user owns). */
		if (strstr(db, "://") == NULL && access(db, F_OK) != 0) {
			usleep(50000);
			continue;
		}
		out = tu_sql(db, "%s", sql);
		ok = strcmp(out, want) == 0;
		free(out);
		if (ok)
			return true;
		usleep(50000);
	}
	return false;
}

int
tu_open_fd(pid_t pid, const char *path)
{
	char dpath[64], link[400], target[4096];
	struct dirent *de;
	DIR *d;
	int fd = -1;
	ssize_t n;

	snprintf(dpath, sizeof(dpath), "/proc/%d/fd", (int)pid);
	if ((d = opendir(dpath)) == NULL)
		return -1;
	while (fd < 0 && (de = readdir(d)) != NULL) {
		snprintf(link, sizeof(link), "%s/%s", dpath, de->d_name);
		if ((n = readlink(link, target, sizeof(target) - 1)) < 0)
			continue;
		target[n] = '\0';
		if (strcmp(target, path) == 0)
			fd = atoi(de->d_name);
	}
	closedir(d);
	return fd;
}

long long
tu_fd_offset(pid_t pid, int fd)
{
	char path[64];
	long long pos = -1;
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", (int)pid, fd);
	if ((fp = fopen(path, "r")) == NULL)
		return -1;
	if (fscanf(fp, "pos: %lld", &pos) != 1)
		pos = -1;
	fclose(fp);
	return pos;
}

long long
tu_saved_offset(const char *db, const char *path)
{
	sqlite3 *h = NULL;
	sqlite3_stmt *s = NULL;
	long long v = -1;

	if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(h, "SELECT offset FROM log_position WHERE path = ?", -1, &s,
	    NULL) == SQLITE_OK && sqlite3_bind_text(s, 1, path, -1, SQLITE_STATIC) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(h);
	return v;
}

bool
tu_wait_file_has(const char *path, const char *s)
{
	for (int i = 0; i < 300; i++) {
		char *text = tu_sh_output("cat '%s' 2>/dev/null", path);
		bool ok = strstr(text, s) != NULL;
		free(text);
		if (ok)
			return true;
		usleep(50000);
	}
	return false;
}

void
tu_fill_fs(const char *dir)
{
	char *out;

	(void)tu_sh("dd if=/dev/zero of='%s/filler' bs=4096 2>/dev/null", dir);
	out = tu_sh_output("df --output=avail -B1 '%s' | tail -1", dir);
	cr_assert_eq(atoll(out), 0, "filesystem full: %s", out);
	free(out);
}

void
tu_small_fs(const char *dir, char *fs, size_t len)
{
	cr_assert_eq(geteuid(), 0, "the disk-full tests need root (CI runs as root)");
	if (unshare(CLONE_NEWNS) != 0)
		cr_assert_fail("cannot create a mount namespace (unshare CLONE_NEWNS): "
		    "this machine cannot run the disk-full tests");
	cr_assert_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0,
	    "make / private in the namespace");
	snprintf(fs, len, "%s/fs", dir);
	cr_assert_eq(mkdir(fs, 0755), 0);
	cr_assert_eq(mount("tmpfs", fs, "tmpfs", MS_NOSUID | MS_NODEV, "size=2m,mode=0755"),
	    0, "mount a small tmpfs on %s", fs);
}

void
tu_syslog_stamp(long long t, char *buf, size_t len)
{
	static const char *const mon[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
	    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t tt = (time_t)t;
	struct tm tm;

	localtime_r(&tt, &tm);
	snprintf(buf, len, "%s %2d %02d:%02d:%02d", mon[tm.tm_mon], tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec);
}

/* ---- PostgreSQL --------------------------------------------------------- */

bool
tu_pg(void)
{
	const char *d = getenv("MAILJAIL_TEST_DB");

	return d != NULL && strcmp(d, "pgsql") == 0;
}

static bool
want_cluster(void)
{
	const char *p = getenv("MAILJAIL_TEST_PG");

	return tu_pg() || (p != NULL && strcmp(p, "1") == 0);
}

/* pg_dir_started - the cluster this runner started (empty: none) */
static char pg_dir_started[256];

/* The runner (not a test process) starts the cluster once, before every
 * test, and says where through the environment the tests inherit. */
ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
	const char *src = getenv("MAILJAIL_SRCDIR");
	char cmd[1024];

	(void)set;
	if (!want_cluster() || src == NULL)
		return;
	snprintf(pg_dir_started, sizeof(pg_dir_started), "/tmp/mailjail-pg-XXXXXX");
	if (mkdtemp(pg_dir_started) == NULL) {
		perror("mkdtemp");
		pg_dir_started[0] = '\0';
		return;
	}
	snprintf(cmd, sizeof(cmd), "bash '%s/tests/pg.sh' start '%s' fast >/dev/null", src,
	    pg_dir_started);
	if (system(cmd) != 0) {
		fprintf(stderr, "testutil: the test PostgreSQL did not start (tests/pg.sh "
		    "start %s): every test that needs it fails\n", pg_dir_started);
		return;
	}
	setenv("MAILJAIL_TEST_PGDIR", pg_dir_started, 1);
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
	const char *src = getenv("MAILJAIL_SRCDIR");
	char cmd[1024];

	(void)stats;
	if (pg_dir_started[0] == '\0' || src == NULL)
		return;
	snprintf(cmd, sizeof(cmd), "bash '%s/tests/pg.sh' stop '%s'; rm -rf '%s'", src,
	    pg_dir_started, pg_dir_started);
	if (system(cmd) != 0)
		fprintf(stderr, "testutil: stopping the test PostgreSQL failed\n");
}

const char *
tu_pg_dir(void)
{
	const char *d = getenv("MAILJAIL_TEST_PGDIR");

	cr_assert_not_null(d, "no test PostgreSQL: it did not start (see the runner's "
	    "stderr), or neither MAILJAIL_TEST_DB=pgsql nor MAILJAIL_TEST_PG=1 is set");
	return d;
}

void
tu_pg_db(const char *name, char *out, size_t len)
{
	static int seq;
	char db[64], *uri;
	size_t n;

	/* One database per test: tests are processes, so the pid tells them
	 * apart. */
	snprintf(db, sizeof(db), "t%d_%d_", (int)getpid(), seq++);
	for (const char *p = name; *p && strlen(db) < sizeof(db) - 1; p++) {
		n = strlen(db);
		db[n] = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ? *p : '_';
		db[n + 1] = '\0';
	}
	uri = tu_sh_output("bash '%s/tests/pg.sh' createdb '%s' '%s'", tu_srcdir(),
	    tu_pg_dir(), db);
	n = strlen(uri);
	cr_assert(n > 1 && uri[n - 1] == '\n', "createdb %s failed", db);
	uri[n - 1] = '\0';
	snprintf(out, len, "%s", uri);
	free(uri);
	/* SQLite's group_concat, so that the tests' SQL reads the same on
	 * both (test scaffolding: mailjail itself never uses it). */
	uri = tu_sql(out, "CREATE FUNCTION group_concat_step(acc text, v text, sep text)"
	    " RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT CASE WHEN v IS NULL THEN acc"
	    " WHEN acc IS NULL THEN v ELSE acc || sep || v END $$;"
	    " CREATE AGGREGATE group_concat(text, text) (sfunc = group_concat_step,"
	    " stype = text); SELECT 'ok'");
	cr_assert_str_eq(uri, "ok\n", "group_concat in %s", out);
	free(uri);
}

void
tu_db(const char *dir, const char *name, char *out, size_t len)
{
	if (tu_pg())
		tu_pg_db(name, out, len);
	else
		snprintf(out, len, "%s/%s", dir, name);
}

char *
tu_sql(const char *db, const char *fmt, ...)
{
	char sql[8192], file[64];
	va_list ap;
	FILE *fp;
	char *out;
	int fd;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	/* Through a file: no shell quoting of the SQL to get wrong. */
	snprintf(file, sizeof(file), "/tmp/mailjail-sql-XXXXXX");
	cr_assert_neq(fd = mkstemp(file), -1);
	fp = fdopen(fd, "w");
	cr_assert_not_null(fp);
	fputs(sql, fp);
	fputc('\n', fp);
	cr_assert_eq(fclose(fp), 0);
	if (strncmp(db, "postgres", 8) == 0)
		out = tu_sh_output("psql -X -A -t -q -F '|' -f '%s' '%s' 2>/dev/null", file, db);
	else
		out = tu_sh_output("sqlite3 '%s' < '%s' 2>/dev/null", db, file);
	unlink(file);
	return out;
}

int
tu_jails_load(const char *text, struct jailset **js, struct diag *d, char *path, size_t len)
{
	char dir[256];
	int rc;

	tu_mkdtemp(dir, sizeof(dir));
	tu_write(dir, "t.jail", text, path, len);
	rc = jails_load(path, js, d);
	tu_rmrf(dir);
	return rc;
}

struct jailset *
tu_jails_load_ok(const char *text, char *path, size_t len)
{
	struct jailset *js = NULL;
	struct diag d;

	diag_init(&d);
	if (tu_jails_load(text, &js, &d, path, len) != 0) {
		diag_print(&d);
		cr_assert_fail("jails_load failed");
	}
	diag_free(&d);
	return js;
}
