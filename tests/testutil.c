/*
 * testutil - see testutil.h.
 */
#include "testutil.h"

#include <criterion/criterion.h>
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
#include <unistd.h>

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
		char *out = tu_sh_output("sqlite3 '%s' \"%s\" 2>/dev/null", db, sql);
		bool ok = strcmp(out, want) == 0;
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
