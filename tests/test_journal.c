/*
 * test_journal - "journal:" log sources read from real journal files.
 *
 * There is no journald here: systemd-journal-remote (Debian package
 * systemd-journal-remote, in tools/deps.sh) turns journal export format into
 * real .journal files in a directory, and mailjail reads that directory
 * ([journal] directory).  Appending to an existing file and adding a second
 * file both work, so entries can arrive while the daemon runs or is stopped.
 *
 * Every daemon started is killed in the suite's .fini (and by
 * PR_SET_PDEATHSIG if this process dies), so a failed assertion never leaves
 * one holding meson's output pipe.
 *
 * The jdiskfull suite puts the DB on a 2 MiB tmpfs, as test_daemon's
 * diskfull suite does for file logs, to prove that a batch the database
 * refuses is read again from the journal (journal_rewind) and counted once.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "journal.h"
#include "testutil.h"

#define JOURNAL_REMOTE "/lib/systemd/systemd-journal-remote"
#define BOOT_ID "4a0b1c2d3e4f40718293a4b5c6d7e8f9"

static char dir[256], jdir[600], db[600], bin[512], cfg[600], errf[600];
static pid_t daemon_pid = -1;
static uint64_t base_usec, seq;

static void
setup(void)
{
	struct timeval tv;

	tu_mkdtemp(dir, sizeof(dir));
	snprintf(jdir, sizeof(jdir), "%s/journal", dir);
	cr_assert_eq(mkdir(jdir, 0755), 0);
	snprintf(db, sizeof(db), "%s/mj.db", dir);
	snprintf(bin, sizeof(bin), "%s/mailjail", tu_builddir());
	snprintf(errf, sizeof(errf), "%s/daemon.err", dir);
	gettimeofday(&tv, NULL);
	/* Entries are stamped from a minute ago on, a millisecond apart. */
	base_usec = ((uint64_t)tv.tv_sec - 60) * 1000000 + (uint64_t)tv.tv_usec;
	seq = 0;
	daemon_pid = -1;
}

static void
kill_daemon(void)
{
	if (daemon_pid > 0) {
		kill(daemon_pid, SIGKILL);
		(void)waitpid(daemon_pid, NULL, 0);
		daemon_pid = -1;
	}
}

static void
teardown(void)
{
	kill_daemon();
	tu_rmrf(dir);
}

TestSuite(journal, .init = setup, .fini = teardown, .timeout = 120);

/* The disk-full cases: the DB on a 2 MiB tmpfs mounted in a mount namespace
 * of this test process only (the daemon, sqlite3 and systemd-journal-remote
 * inherit it; nothing reaches the host, and the mount goes when the test
 * ends).  The journal files stay outside it, in dir/journal. */
static char fs[300];
static pid_t holder_pid = -1;   /* hold_db's sqlite3 */
static int holder_fd = -1;      /* its stdin */

/* release_db - hold_db's sqlite3 reads EOF and goes */
static void
release_db(void)
{
	if (holder_fd >= 0)
		(void)close(holder_fd);
	holder_fd = -1;
	if (holder_pid > 0)
		(void)waitpid(holder_pid, NULL, 0);
	holder_pid = -1;
}

static void
setup_small_fs(void)
{
	setup();
	tu_small_fs(dir, fs, sizeof(fs));
	snprintf(db, sizeof(db), "%s/mj.db", fs);
	holder_pid = -1;
	holder_fd = -1;
}

static void
teardown_small_fs(void)
{
	kill_daemon();
	if (holder_pid > 0)
		kill(holder_pid, SIGKILL);
	release_db();
	(void)umount2(fs, MNT_DETACH);
	tu_rmrf(dir);
}

TestSuite(jdiskfull, .init = setup_small_fs, .fini = teardown_small_fs, .timeout = 120);

/* One journal entry; NULL fields are left out. */
struct jentry {
	const char *ident;         /* SYSLOG_IDENTIFIER */
	const char *unit;          /* _SYSTEMD_UNIT */
	int facility;              /* SYSLOG_FACILITY, -1: none */
	const char *msg;           /* MESSAGE (may hold newlines) */
};

/* field - one field in export format; with a newline in it, the binary
 * form: the name, a newline, the length as LE64, the bytes */
static void
field(FILE *p, const char *name, const char *value)
{
	uint64_t len = strlen(value);
	unsigned char le[8];

	if (strchr(value, '\n') == NULL) {
		fprintf(p, "%s=%s\n", name, value);
		return;
	}
	for (int b = 0; b < 8; b++)
		le[b] = (unsigned char)(len >> (8 * b));
	fprintf(p, "%s\n", name);
	fwrite(le, 1, 8, p);
	fwrite(value, 1, (size_t)len, p);
	fputc('\n', p);
}

/* jwrite_in - append entries to the journal file d/name */
static void
jwrite_in(const char *d, const char *name, const struct jentry *e, size_t n)
{
	char cmd[2048];
	FILE *p;

	cr_assert_eq(access(JOURNAL_REMOTE, X_OK), 0,
	    "%s missing: apt-get install systemd-journal-remote (tools/deps.sh)",
	    JOURNAL_REMOTE);
	snprintf(cmd, sizeof(cmd), "%s --output='%s/%s' - 2>>'%s/journal-remote.err'",
	    JOURNAL_REMOTE, d, name, dir);
	p = popen(cmd, "w");
	cr_assert_not_null(p);
	for (size_t i = 0; i < n; i++) {
		uint64_t t = base_usec + ++seq * 1000;

		fprintf(p, "__REALTIME_TIMESTAMP=%llu\n__MONOTONIC_TIMESTAMP=%llu\n"
		    "_BOOT_ID=%s\n_HOSTNAME=mx\n_PID=%llu\n", (unsigned long long)t,
		    (unsigned long long)(1000000 + seq * 1000), BOOT_ID,
		    (unsigned long long)(1000 + seq));
		if (e[i].facility >= 0)
			fprintf(p, "SYSLOG_FACILITY=%d\n", e[i].facility);
		if (e[i].ident)
			field(p, "SYSLOG_IDENTIFIER", e[i].ident);
		if (e[i].unit)
			field(p, "_SYSTEMD_UNIT", e[i].unit);
		field(p, "MESSAGE", e[i].msg);
		fputc('\n', p);
	}
	cr_assert_eq(pclose(p), 0, "systemd-journal-remote failed (see %s)", dir);
}

/* jwrite - append entries to the journal file dir/journal/name */
static void
jwrite(const char *name, const struct jentry *e, size_t n)
{
	jwrite_in(jdir, name, e, n);
}

/* failures_in - n SASL failures from ip under ident into d/name, users
 * u<seq> (distinct) */
static void
failures_in(const char *d, const char *name, const char *ident, const char *unit,
    int facility, const char *ip, int n)
{
	struct jentry e[16];
	char msg[16][256];

	cr_assert(n <= 16);
	for (int i = 0; i < n; i++) {
		snprintf(msg[i], sizeof(msg[i]), "warning: unknown[%s]: SASL LOGIN "
		    "authentication failed: UGFzc3dvcmQ6, sasl_username=u%llu", ip,
		    (unsigned long long)(seq + 1 + (uint64_t)i));
		e[i] = (struct jentry){ ident, unit, facility, msg[i] };
	}
	jwrite_in(d, name, e, (size_t)n);
}

/* failures - the same into the journal directory */
static void
failures(const char *name, const char *ident, const char *unit, int facility,
    const char *ip, int n)
{
	failures_in(jdir, name, ident, unit, facility, ip, n);
}

/*
 * A writer (journald, systemd-journal-remote) adds an entry in steps: it
 * counts it in the file's header, links it to the DATA object of each of
 * its fields (where a reader with matches finds it), then tells inotify
 * (an ftruncate to the same size).  half_linked puts a finished file back
 * between the first two steps for its last entry and one field: that
 * field's DATA object counts one entry less.  Journal file format
 * (systemd's journal-def.h): incompatible_flags is the le32 at byte 12 of
 * the header, COMPACT is its bit 4; a DATA object is type 1, its size the
 * le64 at +8, n_entries the le64 at +56, and its payload FIELD=VALUE starts
 * at +72 in a compact file (+64 else).  Returns where n_entries is.
 */
#define OBJECT_DATA 1
#define HEADER_INCOMPATIBLE_COMPACT (1u << 4)

static uint64_t
le64_at(const unsigned char *p)
{
	uint64_t v = 0;

	for (int b = 7; b >= 0; b--)
		v = v << 8 | p[b];
	return v;
}

static void
put_le64(int fd, off_t at, uint64_t v)
{
	unsigned char le[8];

	for (int b = 0; b < 8; b++)
		le[b] = (unsigned char)(v >> (8 * b));
	cr_assert_eq(pwrite(fd, le, 8, at), 8);
}

static off_t
half_linked(const char *path, const char *field_value, uint64_t entries)
{
	size_t pl = strlen(field_value), hdr;
	unsigned char *b, *p;
	struct stat st;
	off_t obj;
	int fd = open(path, O_RDWR | O_CLOEXEC);

	cr_assert(fd >= 0 && fstat(fd, &st) == 0, "%s", path);
	cr_assert_not_null(b = malloc((size_t)st.st_size));
	cr_assert_eq(pread(fd, b, (size_t)st.st_size, 0), st.st_size);
	cr_assert_eq(memcmp(b, "LPKSHHRH", 8), 0, "a journal file");
	hdr = (b[12] | (uint32_t)b[13] << 8 | (uint32_t)b[14] << 16 |
	    (uint32_t)b[15] << 24) & HEADER_INCOMPATIBLE_COMPACT ? 72 : 64;
	p = memmem(b, (size_t)st.st_size, field_value, pl);
	cr_assert(p != NULL && p - b >= (ptrdiff_t)hdr, "%s in %s", field_value, path);
	obj = (off_t)(p - b) - (off_t)hdr;
	cr_assert_eq(b[obj], OBJECT_DATA, "the DATA object of %s", field_value);
	cr_assert_eq(le64_at(b + obj + 8), hdr + pl, "its size");
	cr_assert_eq(le64_at(b + obj + 56), entries, "it counts every entry");
	put_le64(fd, obj + 56, entries - 1);
	free(b);
	close(fd);
	return obj + 56;
}

/* linked - the writer's last two steps: the count, then the notice */
static void
linked(const char *path, off_t count_at, uint64_t entries)
{
	struct stat st;
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	cr_assert(fd >= 0 && fstat(fd, &st) == 0, "%s", path);
	put_le64(fd, count_at, entries);
	cr_assert_eq(ftruncate(fd, st.st_size), 0);
	close(fd);
}

static void
write_config_user(const char *log, bool with_dir, const char *user)
{
	char text[4096];

	/* The shipped jails hold accounts: the map next to the DB (check-config
	 * refuses a map directory the run user cannot write). */
	snprintf(text, sizeof(text),
	    "[mailjail]\nlog = %s\ndb = %s\nrules = %s/rules\njails = %s/jails\n"
	    "user = %s\n[hold]\nmap = sqlite:%s/hold.db\n%s%s\n", log, db, tu_srcdir(),
	    tu_srcdir(), user, dir, with_dir ? "[journal]\ndirectory = " : "",
	    with_dir ? jdir : "");
	tu_write(dir, "mailjail.conf", text, cfg, sizeof(cfg));
}

static void
write_config(const char *log, bool with_dir)
{
	write_config_user(log, with_dir, "root");
}

/* count_in_file - occurrences of s in path */
static int
count_in_file(const char *path, const char *s)
{
	char *out = tu_sh_output("grep -c -F -- '%s' '%s' 2>/dev/null", s, path);
	int n = atoi(out);

	free(out);
	return n;
}

/* start_daemon - run --dry-run; waits until the nth "running:" line (it has
 * opened and positioned in the journal) */
static void
start_daemon(int nth)
{
	pid_t pid = fork();

	cr_assert_neq(pid, -1);
	if (pid == 0) {
		FILE *e = freopen(errf, "a", stderr);
		(void)e;
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		execl(bin, "mailjail", "run", "--dry-run", "-c", cfg, (char *)NULL);
		_exit(127);
	}
	daemon_pid = pid;
	for (int i = 0; i < 300 && count_in_file(errf, "running:") < nth; i++) {
		int st;
		cr_assert_eq(waitpid(pid, &st, WNOHANG), 0, "daemon exited: %s",
		    tu_sh_output("cat '%s'", errf));
		usleep(50000);
	}
	cr_assert_eq(count_in_file(errf, "running:"), nth, "daemon did not start: %s",
	    tu_sh_output("cat '%s'", errf));
}

static void
stop_daemon(void)
{
	int st;

	cr_assert_gt(daemon_pid, 0);
	kill(daemon_pid, SIGTERM);
	cr_assert_eq(waitpid(daemon_pid, &st, 0), daemon_pid);
	daemon_pid = -1;
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "clean stop: %s",
	    tu_sh_output("cat '%s'", errf));
}

static char *
query(const char *sql)
{
	return tu_sh_output("sqlite3 '%s' \"%s\" 2>/dev/null", db, sql);
}

/* wait_for - poll a SQL query until it prints want (or 15 s pass) */
static bool
wait_for(const char *sql, const char *want)
{
	return tu_wait_sql(db, sql, want);
}

#define SUBMISSION "postfix/submission/smtpd"
#define EVENTS_OK "SELECT count(*) || ' ' || count(DISTINCT account) FROM events"

Test(journal, matching_entries_ban_others_are_ignored)
{
	char *out;

	write_config("journal:SYSLOG_IDENTIFIER=" SUBMISSION, true);
	failures("a.journal", SUBMISSION, NULL, 2, "192.0.2.10", 5);  /* before the start */
	start_daemon(1);
	/* Not the configured identifier: no event, although a rule would match. */
	failures("a.journal", "postfix/smtpd", NULL, 2, "198.51.100.20", 6);
	failures("a.journal", SUBMISSION, NULL, 2, "203.0.113.30", 5);
	cr_assert(wait_for("SELECT target FROM ban_history", "203.0.113.30\n"),
	    "five failures from the journal ban");
	cr_assert(wait_for(EVENTS_OK, "5 5\n"));
	stop_daemon();
	out = query("SELECT count(*) FROM events WHERE ip IN ('198.51.100.20', '192.0.2.10')");
	cr_assert_str_eq(out, "0\n", "other identifiers and entries from before the "
	    "first start are not read");
	free(out);
}

Test(journal, default_match_is_the_mail_facility)
{
	char *out;

	write_config("journal:", true);
	failures("a.journal", "sshd", NULL, 4, "192.0.2.1", 1);   /* the newest at start */
	start_daemon(1);
	failures("a.journal", SUBMISSION, NULL, 10, "198.51.100.21", 6);   /* authpriv */
	failures("a.journal", SUBMISSION, NULL, 2, "203.0.113.31", 5);
	cr_assert(wait_for("SELECT target FROM ban_history", "203.0.113.31\n"));
	stop_daemon();
	out = query("SELECT count(*) FROM events WHERE ip = '198.51.100.21'");
	cr_assert_str_eq(out, "0\n", "facility authpriv is not mail");
	free(out);
}

Test(journal, unit_shorthand_and_alternatives)
{
	char *out;

	/* The unit, or (+) a second identifier. */
	write_config("journal:postfix@-.service + SYSLOG_IDENTIFIER=postfix-other/smtpd", true);
	start_daemon(1);
	failures("a.journal", SUBMISSION, "postfix@-.service", 2, "203.0.113.32", 5);
	failures("a.journal", SUBMISSION, "evil.service", 2, "198.51.100.22", 6);
	failures("a.journal", "postfix-other/smtpd", "other.service", 2, "203.0.113.33", 5);
	cr_assert(wait_for("SELECT group_concat(target) FROM (SELECT target FROM bans "
	    "ORDER BY target)", "203.0.113.32,203.0.113.33\n"));
	stop_daemon();
	out = query("SELECT count(*) FROM events WHERE ip = '198.51.100.22'");
	cr_assert_str_eq(out, "0\n", "another unit is not read");
	free(out);
}

Test(journal, restart_resumes_exactly_at_the_saved_cursor)
{
	char *out;

	write_config("journal:SYSLOG_IDENTIFIER=" SUBMISSION, true);
	failures("a.journal", SUBMISSION, NULL, 2, "192.0.2.11", 2);
	start_daemon(1);
	failures("a.journal", SUBMISSION, NULL, 2, "203.0.113.40", 3);
	cr_assert(wait_for(EVENTS_OK, "3 3\n"));
	stop_daemon();
	/* While stopped: more in the same file, and a second file. */
	failures("a.journal", SUBMISSION, NULL, 2, "203.0.113.40", 1);
	failures("b.journal", SUBMISSION, NULL, 2, "203.0.113.40", 2);
	failures("a.journal", SUBMISSION, NULL, 2, "203.0.113.41", 2);
	start_daemon(2);
	cr_assert(wait_for(EVENTS_OK, "8 8\n"), "everything written while stopped, "
	    "once: %s", query(EVENTS_OK));
	cr_assert(wait_for("SELECT target FROM bans", "203.0.113.40\n"),
	    "3 before the stop + 3 after = a ban");
	stop_daemon();
	/* A third start re-reads nothing: the next entry is the only new one. */
	start_daemon(3);
	failures("b.journal", SUBMISSION, NULL, 2, "203.0.113.41", 1);
	cr_assert(wait_for(EVENTS_OK, "9 9\n"), "%s", query(EVENTS_OK));
	stop_daemon();
	out = query("SELECT count(*) FROM events WHERE ip = '192.0.2.11'");
	cr_assert_str_eq(out, "0\n");
	free(out);
	out = tu_sh_output("'%s' status -c '%s' 2>/dev/null", bin, cfg);
	cr_assert(strstr(out, "journal:SYSLOG_IDENTIFIER=" SUBMISSION ": entry of ") != NULL,
	    "status shows the journal source: %s", out);
	cr_assert(strstr(out, "cursor s=") != NULL, "%s", out);
	free(out);
}

Test(journal, sigkill_mid_stream_loses_and_repeats_nothing)
{
	pid_t writer;

	write_config("journal:SYSLOG_IDENTIFIER=" SUBMISSION, true);
	failures("a.journal", SUBMISSION, NULL, 2, "192.0.2.12", 1);
	start_daemon(1);
	/* 40 writes of 8 entries, into two files; the daemon is killed while
	 * they come in. */
	writer = fork();
	cr_assert_neq(writer, -1);
	if (writer == 0) {
		for (int i = 0; i < 40; i++) {
			char ip[32];
			snprintf(ip, sizeof(ip), "203.0.113.%d", 100 + i);
			failures(i % 3 ? "a.journal" : "b.journal", SUBMISSION, NULL, 2, ip, 8);
			usleep(10000);
		}
		_exit(0);
	}
	usleep(200000);
	kill(daemon_pid, SIGKILL);
	cr_assert_eq(waitpid(daemon_pid, NULL, 0), daemon_pid);
	daemon_pid = -1;
	{
		int st;
		cr_assert_eq(waitpid(writer, &st, 0), writer);
		cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "writer failed");
	}
	start_daemon(2);
	cr_assert(wait_for(EVENTS_OK, "320 320\n"), "every entry once after SIGKILL: %s",
	    query(EVENTS_OK));
	stop_daemon();
}

Test(journal, opened_before_the_privilege_drop)
{
	char *err;

	cr_assert_eq(geteuid(), 0, "this test needs root (CI runs as root)");
	/* Sticky, like /tmp: user nobody makes the DB here, and the config in
	 * it stays root's (cfgfile.h refuses a directory others can write). */
	cr_assert_eq(chmod(dir, 01777), 0);
	write_config_user("journal:SYSLOG_IDENTIFIER=" SUBMISSION, true, "nobody");
	failures("a.journal", SUBMISSION, NULL, 2, "192.0.2.13", 1);   /* 0640 root */
	start_daemon(1);
	failures("a.journal", SUBMISSION, NULL, 2, "203.0.113.70", 5);
	cr_assert(wait_for("SELECT target FROM bans", "203.0.113.70\n"),
	    "the journal opened as root is read as nobody");
	stop_daemon();
	err = tu_sh_output("cat '%s'", errf);
	cr_assert(strstr(err, "user nobody cannot read ") != NULL &&
	    strstr(err, "a.journal: journal files created from now on") != NULL,
	    "the missing group is named: %s", err);
	free(err);
}

Test(journal, entries_appear_while_running_and_in_new_files)
{
	/* An empty directory: the first file is created while the daemon runs. */
	write_config("journal:SYSLOG_IDENTIFIER=" SUBMISSION, true);
	start_daemon(1);
	failures("a.journal", SUBMISSION, NULL, 2, "203.0.113.50", 2);
	cr_assert(wait_for(EVENTS_OK, "2 2\n"), "a new file is picked up");
	failures("a.journal", SUBMISSION, NULL, 2, "203.0.113.50", 3);
	cr_assert(wait_for("SELECT target FROM bans", "203.0.113.50\n"),
	    "entries appended to it are picked up");
	failures("c.journal", SUBMISSION, NULL, 2, "203.0.113.51", 5);
	cr_assert(wait_for("SELECT count(*) FROM bans", "2\n"), "and a second new file");
	cr_assert(wait_for(EVENTS_OK, "10 10\n"));
	stop_daemon();
}

Test(journal, newline_in_message_forges_no_line)
{
	char forged[6][512], bad_ident[300];
	struct jentry e[8];
	char *out;
	time_t now = time(NULL);
	char stamp[32];

	strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", localtime(&now));
	write_config("journal:", true);
	start_daemon(1);
	for (int i = 0; i < 6; i++) {
		snprintf(forged[i], sizeof(forged[i]), "hello%s%s mx " SUBMISSION "[1]: "
		    "warning: unknown[198.51.100.66]: SASL LOGIN authentication failed: x, "
		    "sasl_username=f%d", i % 2 ? "\n" : "\r\n", stamp, i);
		e[i] = (struct jentry){ SUBMISSION, NULL, 2, forged[i] };
	}
	/* The identifier, too, is the logging process's choice. */
	snprintf(bad_ident, sizeof(bad_ident), "x: warning: unknown[198.51.100.67]: SASL "
	    "LOGIN authentication failed: y, sasl_username=z\n%s mx " SUBMISSION, stamp);
	e[6] = (struct jentry){ bad_ident, NULL, 2, "hi" };
	e[7] = e[6];
	jwrite("a.journal", e, 8);
	failures("a.journal", SUBMISSION, NULL, 2, "203.0.113.60", 5);
	cr_assert(wait_for("SELECT target FROM bans", "203.0.113.60\n"),
	    "the real failures after the forged ones ban");
	stop_daemon();
	out = query("SELECT count(*) FROM events WHERE ip LIKE '198.51.100.%'");
	cr_assert_str_eq(out, "0\n", "no event from a forged line");
	free(out);
}

Test(journal, bad_match_is_a_file_line_error)
{
	static const char *const bad[][2] = {
		{ "journal:postfix", "expected FIELD=VALUE or a unit name ending in .service" },
		{ "journal:syslog_identifier=postfix/smtpd", "bad field name" },
		{ "journal:__CURSOR=x", "bad field name" },
		{ "journal:+ SYSLOG_FACILITY=2", "\"+\" must stand between two matches" },
		{ "journal:SYSLOG_FACILITY=2 +", "\"+\" must stand between two matches" },
		{ "journal:, journal:", "given twice" },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *out;
		int rc;

		write_config(bad[i][0], false);
		rc = tu_sh("'%s' check-config -c '%s' >'%s/out' 2>&1", bin, cfg, dir);
		out = tu_sh_output("cat '%s/out'", dir);
		cr_assert_eq(rc, 2, "%s: exit %d: %s", bad[i][0], rc, out);
		cr_assert(strstr(out, "mailjail.conf:2: [mailjail] log: ") != NULL,
		    "%s: file:line: %s", bad[i][0], out);
		cr_assert(strstr(out, bad[i][1]) != NULL, "%s: %s", bad[i][0], out);
		free(out);
	}
	/* Good ones pass. */
	write_config("journal:, journal:_SYSTEMD_UNIT=postfix@-.service _COMM=smtpd + "
	    "SYSLOG_IDENTIFIER=postfix/smtpd", true);
	cr_assert_eq(tu_sh("'%s' check-config -c '%s' >/dev/null 2>&1", bin, cfg), 0);
}

/* The module itself: the exact line, the cursor, no second line. */
struct collected {
	char lines[8][1024];
	size_t n;
};

static int
collect(void *arg, size_t file, const char *line, size_t len)
{
	struct collected *c = arg;

	cr_assert_eq(file, 7);
	cr_assert(len < sizeof(c->lines[0]));
	cr_assert_eq(strlen(line), len, "no NUL inside the line");
	if (c->n < 8)
		snprintf(c->lines[c->n++], sizeof(c->lines[0]), "%.*s", (int)len, line);
	return 0;
}

/* stderr_to - fd 2 into path; returns the old one for stderr_back */
static int
stderr_to(const char *path)
{
	int saved = dup(STDERR_FILENO);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	cr_assert(saved >= 0 && fd >= 0, "%s", path);
	cr_assert(dup2(fd, STDERR_FILENO) == STDERR_FILENO);
	close(fd);
	return saved;
}

static void
stderr_back(int saved)
{
	fflush(stderr);
	cr_assert(dup2(saved, STDERR_FILENO) == STDERR_FILENO);
	close(saved);
}

Test(journal, lines_have_the_rules_format)
{
	struct jentry e[] = {
		{ "sshd", NULL, 4, "older, before the open" },
		{ "postfix/smtpd", NULL, 2, "connect from unknown[192.0.2.1]" },
		{ "postfix/smtpd", NULL, 2, "a\nb\tc" },
		{ NULL, NULL, 2, "no identifier" },
	};
	struct collected c = { .n = 0 };
	struct journal *j;
	char err[512], stamp[40], want[256], *cursor, said[600];
	time_t secs;
	struct tm tm;
	uint64_t usec;
	long r1;
	int r2, saved;

	snprintf(said, sizeof(said), "%s/said", dir);
	jwrite("a.journal", e, 1);
	cr_assert_eq(journal_open(&j, "journal:", 7, jdir, err, sizeof(err)), 0, "%s", err);
	/* Reading or going back before journal_position is the caller's bug:
	 * refused, and said.  (Said into a file: on the test's stderr it
	 * would read as a warning from the daemon.) */
	saved = stderr_to(said);
	r1 = journal_read(j, collect, &c, 100);
	r2 = journal_rewind(j);
	stderr_back(saved);
	cr_assert_eq(r1, -1, "nothing read before positioning");
	cr_assert_eq(r2, -1, "no going back before positioning");
	cr_assert_eq(c.n, 0);
	cr_assert_eq(count_in_file(said, "journal:: read before journal_position"), 1,
	    "%s", tu_sh_output("cat '%s'", said));
	cr_assert_eq(count_in_file(said, "journal:: rewind before journal_position"), 1,
	    "%s", tu_sh_output("cat '%s'", said));
	cr_assert_eq(journal_position(j, NULL, err, sizeof(err)), 0, "%s", err);
	cr_assert_not_null(journal_pending_cursor(j), "the start is saved at once");
	jwrite("a.journal", e + 1, 3);
	cr_assert_eq(journal_process(j), 0);
	cr_assert_eq(journal_read(j, collect, &c, 100), 3);
	cr_assert_eq(c.n, 3);
	/* The second entry: seq 2. */
	usec = base_usec + 2 * 1000;
	secs = (time_t)(usec / 1000000);
	gmtime_r(&secs, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(want, sizeof(want), "%s.%06u+00:00 mx postfix/smtpd[1002]: connect from "
	    "unknown[192.0.2.1]", stamp, (unsigned)(usec % 1000000));
	cr_assert_str_eq(c.lines[0], want);
	cr_assert(strstr(c.lines[1], " postfix/smtpd[1003]: a#012b#011c") != NULL, "%s",
	    c.lines[1]);
	cr_assert(strstr(c.lines[2], " mx -[1004]: no identifier") != NULL, "%s", c.lines[2]);
	cursor = strdup(journal_pending_cursor(j));
	cr_assert_eq(journal_cursor_time(cursor, &usec), 0);
	cr_assert_eq(usec, base_usec + 4 * 1000, "the cursor is the last entry's");
	journal_saved(j);
	cr_assert_null(journal_pending_cursor(j));
	cr_assert_eq(journal_read(j, collect, &c, 100), 0);
	journal_close(j);

	/* Reopened at that cursor: only what came after. */
	c.n = 0;
	jwrite("a.journal", e + 1, 1);
	cr_assert_eq(journal_open(&j, "journal:", 7, jdir, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(journal_position(j, cursor, err, sizeof(err)), 0, "%s", err);
	cr_assert_null(journal_pending_cursor(j));
	cr_assert_eq(journal_read(j, collect, &c, 100), 1);
	cr_assert(strstr(c.lines[0], "[1005]: connect from") != NULL, "%s", c.lines[0]);
	cr_assert_eq(journal_read(j, collect, &c, 100), 0);
	/* A read at the end, then news: going on from the last entry read
	 * (journal.c, catch_up) repeats nothing. */
	jwrite("a.journal", e + 2, 1);
	cr_assert_eq(journal_process(j), 0);
	cr_assert_eq(journal_read(j, collect, &c, 100), 1);
	cr_assert(strstr(c.lines[1], "[1006]: a#012b") != NULL, "%s", c.lines[1]);
	cr_assert_eq(journal_read(j, collect, &c, 100), 0);
	journal_close(j);
	free(cursor);
}

/*
 * An entry its writer had counted but not yet linked to its fields when a
 * read came to the end is read once the writer's notice comes.  sd-journal
 * alone would take the count as seen and not look into the file again
 * until another entry lands in it (src/journal.c): a line left unread on a
 * quiet host.  In CI a loaded machine let the daemon read between
 * systemd-journal-remote's two steps (see the daemon's twin of this test,
 * log_auto_entry_half_linked_is_counted_when_its_writer_is_done).  Here
 * the in-between state is made exactly (half_linked), not hoped for.
 */
Test(journal, entry_half_linked_at_the_end_is_read_after_the_writers_notice)
{
	struct jentry e[] = {
		{ "postfix/smtpd", NULL, 2, "connect from unknown[192.0.2.1]" },
		{ "postfix/smtpd", NULL, 2, "connect from unknown[192.0.2.2]" },
		{ "postfix/smtpd", NULL, 2, "connect from unknown[192.0.2.3]" },
	};
	struct collected c = { .n = 0 };
	struct journal *j;
	char err[512], stage[400], staged[600], path[700], said[600];
	off_t count_at;
	int saved, rc;

	snprintf(said, sizeof(said), "%s/said", dir);
	snprintf(stage, sizeof(stage), "%s/stage", dir);
	snprintf(staged, sizeof(staged), "%s/a.journal", stage);
	snprintf(path, sizeof(path), "%s/a.journal", jdir);
	cr_assert_eq(mkdir(stage, 0755), 0);
	/* Started on an empty directory (which is said): read from its head. */
	saved = stderr_to(said);
	rc = journal_open(&j, "journal:SYSLOG_IDENTIFIER=postfix/smtpd", 7, jdir, err,
	    sizeof(err));
	stderr_back(saved);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_eq(count_in_file(said, "no journal files in "), 1, "%s",
	    tu_sh_output("cat '%s'", said));
	cr_assert_eq(journal_position(j, NULL, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(journal_read(j, collect, &c, 100), 0);

	jwrite_in(stage, "a.journal", e, 2);
	count_at = half_linked(staged, "SYSLOG_IDENTIFIER=postfix/smtpd", 2);
	cr_assert_eq(rename(staged, path), 0);
	cr_assert_eq(journal_process(j), 0);
	cr_assert_eq(journal_read(j, collect, &c, 100), 1, "the first entry only");
	cr_assert(strstr(c.lines[0], "unknown[192.0.2.1]") != NULL, "%s", c.lines[0]);
	cr_assert_eq(journal_read(j, collect, &c, 100), 0, "the second is not linked yet");

	linked(path, count_at, 2);
	cr_assert_eq(journal_process(j), 0);
	cr_assert_eq(journal_read(j, collect, &c, 100), 1, "read after the notice");
	cr_assert(strstr(c.lines[1], "unknown[192.0.2.2]") != NULL, "%s", c.lines[1]);

	/* Going back to the last entry read repeats nothing. */
	cr_assert_eq(journal_process(j), 0);
	cr_assert_eq(journal_read(j, collect, &c, 100), 0);
	jwrite("a.journal", e + 2, 1);
	cr_assert_eq(journal_process(j), 0);
	cr_assert_eq(journal_read(j, collect, &c, 100), 1);
	cr_assert(strstr(c.lines[2], "unknown[192.0.2.3]") != NULL, "%s", c.lines[2]);
	cr_assert_eq(journal_read(j, collect, &c, 100), 0);
	cr_assert_eq(c.n, 3);
	journal_close(j);
}

/* fill_fs - the small tmpfs full to the last block */
static void
fill_fs(void)
{
	tu_fill_fs(fs);
}

/* err_has - wait until the daemon's stderr says s (or 15 s pass) */
static bool
err_has(const char *s)
{
	return tu_wait_file_has(errf, s);
}

/* count_now - one query, now, with sqlite3's errors in the output */
static char *
count_now(const char *sql)
{
	return tu_sh_output("sqlite3 '%s' \"%s\" 2>&1", db, sql);
}

#define BANS_OK "SELECT count(*) || ' ' || count(DISTINCT target) FROM bans"

/*
 * full_then_space - the daemon runs (started nth) on a DB whose -wal file is
 * empty, so its next batch needs new blocks; the disk fills and nips
 * addresses fail 5 times each in the journal.  The batch is refused and read
 * again every 2 s until the filler goes; then every entry counts once.
 * filled: the disk is full already.  before: the events, bans and saved
 * cursors already in the DB.
 */
static void
full_then_space(int nth, bool filled, int nips, int events_before, int bans_before,
    int cursors_before)
{
	char want[64], *out;
	int st, events = events_before + 5 * nips, bans = bans_before + nips;

	if (!filled) {
		usleep(300000);
		fill_fs();
	}
	for (int k = 0; k < nips; k++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "203.0.113.%d", 100 + k);
		failures("a.journal", SUBMISSION, NULL, 2, ip, 5);
	}
	cr_assert(err_has("disk full"), "a clear error: %s", tu_sh_output("cat '%s'", errf));
	out = tu_sh_output("cat '%s'", errf);
	cr_assert(strstr(out, "/fs/mj.db") != NULL && strstr(out, "will be read again")
	    != NULL, "names the DB and what happens: %s", out);
	free(out);
	usleep(2500000);   /* at least one retry (rewind, read again), still full */
	cr_assert_eq(waitpid(daemon_pid, &st, WNOHANG), 0, "still running while the "
	    "disk is full: %s", tu_sh_output("cat '%s'", errf));
	out = count_now("PRAGMA integrity_check; SELECT count(*) FROM events; "
	    "SELECT count(*) FROM bans; SELECT count(*) FROM journal_cursor;");
	snprintf(want, sizeof(want), "ok\n%d\n%d\n%d\n", events_before, bans_before,
	    cursors_before);
	cr_assert_str_eq(out, want, "no partial batch, DB sound: %s", out);
	free(out);

	/* Space comes back: every entry is recorded exactly once (each has its
	 * own account), and every address is banned once. */
	cr_assert_eq(tu_sh("rm '%s/filler'", fs), 0);
	snprintf(want, sizeof(want), "%d %d\n", events, events);
	cr_assert(wait_for(EVENTS_OK, want), "every entry once: %s", query(EVENTS_OK));
	snprintf(want, sizeof(want), "%d %d\n", bans, bans);
	cr_assert(wait_for(BANS_OK, want), "one ban per address: %s", query(BANS_OK));
	snprintf(want, sizeof(want), "%d\n", nips);
	out = query("SELECT count(*) FROM (SELECT ip FROM events WHERE ip LIKE "
	    "'203.0.113.1__' GROUP BY ip HAVING count(*) = 5) JOIN bans ON target = ip");
	cr_assert_str_eq(out, want, "each new address: 5 events and a ban: %s", out);
	free(out);
	cr_assert(err_has("writes work again"), "recovery is logged");
	stop_daemon();
	out = tu_sh_output("cat '%s'", errf);
	cr_assert(strstr(out, "no longer in the journal") == NULL, "no entry was vacuumed, "
	    "and going back says nothing of it: %s", out);
	free(out);
	out = count_now("PRAGMA integrity_check; SELECT count(*) FROM journal_cursor;");
	cr_assert_str_eq(out, "ok\n1\n", "sound, the cursor saved: %s", out);
	free(out);

	/* The cursor saved after the recovery is the last entry's: a restart
	 * counts the next entry only. */
	start_daemon(nth + 1);
	failures("a.journal", SUBMISSION, NULL, 2, "198.51.100.90", 1);
	snprintf(want, sizeof(want), "%d %d\n", events + 1, events + 1);
	cr_assert(wait_for(EVENTS_OK, want), "restart resumes after the last entry: %s",
	    query(EVENTS_OK));
	stop_daemon();
}

Test(jdiskfull, daemon_waits_for_space_and_loses_nothing)
{
	write_config("journal:SYSLOG_IDENTIFIER=" SUBMISSION, true);
	failures("a.journal", SUBMISSION, NULL, 2, "192.0.2.14", 1);   /* before the start */
	start_daemon(1);
	failures("a.journal", SUBMISSION, NULL, 2, "203.0.113.80", 5);
	cr_assert(wait_for("SELECT count(*) FROM bans", "1\n"));
	cr_assert(wait_for(EVENTS_OK, "5 5\n"));
	/* Restart, so the -wal file starts empty and the next batch needs new
	 * blocks; the cursor in the DB is the last entry's. */
	stop_daemon();
	start_daemon(2);
	full_then_space(2, false, 20, 5, 1, 1);
	fprintf(stderr, "[info] journal disk full: daemon recovered, 106 events, 21 bans\n");
}

Test(jdiskfull, first_commit_refused_rereads_from_the_start)
{
	char *out;

	/* An empty journal directory: no cursor to save, so the first start
	 * commits nothing; the second start (empty -wal) still has none, and
	 * its first commit, the one that would save the first cursor, is
	 * refused. */
	write_config("journal:SYSLOG_IDENTIFIER=" SUBMISSION, true);
	start_daemon(1);
	stop_daemon();
	out = query("SELECT count(*) FROM journal_cursor");
	cr_assert_str_eq(out, "0\n", "no cursor saved yet: %s", out);
	free(out);
	start_daemon(2);
	full_then_space(2, false, 4, 0, 0, 0);
}

Test(jdiskfull, refused_batch_after_a_saved_start)
{
	char *out;

	/* The saved cursor is the start: the newest entry when the daemon first
	 * started, one the match does not take (sshd).  A refused batch goes
	 * back there. */
	write_config("journal:SYSLOG_IDENTIFIER=" SUBMISSION, true);
	failures("a.journal", "sshd", NULL, 4, "192.0.2.17", 1);
	start_daemon(1);
	cr_assert(wait_for("SELECT count(*) FROM journal_cursor", "1\n"));
	stop_daemon();
	start_daemon(2);
	full_then_space(2, false, 4, 0, 0, 1);
	out = query("SELECT count(*) FROM events WHERE ip = '192.0.2.17'");
	cr_assert_str_eq(out, "0\n");
	free(out);
}

/* hold_db - a sqlite3 that keeps the DB open, so its -wal and -shm files
 * stay (made and their blocks allocated while there is space): a daemon
 * can then start on a full disk, as one that was running would be */
static void
hold_db(void)
{
	char shm[700];
	int p[2];

	/* Close-on-exec: no daemon or journal writer forked later keeps its
	 * stdin open. */
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	holder_pid = fork();
	cr_assert_neq(holder_pid, -1);
	if (holder_pid == 0) {
		int nul = open("/dev/null", O_WRONLY);
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (dup2(p[0], 0) < 0 || nul < 0 || dup2(nul, 1) < 0)
			_exit(127);
		close(p[0]);
		close(p[1]);
		execlp("sqlite3", "sqlite3", db, (char *)NULL);
		_exit(127);
	}
	close(p[0]);
	holder_fd = p[1];
	cr_assert(write(holder_fd, "SELECT count(*) FROM events;\n", 29) == 29);
	snprintf(shm, sizeof(shm), "%s-shm", db);
	for (int i = 0; i < 300 && access(shm, F_OK) != 0; i++)
		usleep(50000);
	cr_assert_eq(access(shm, F_OK), 0, "sqlite3 holds %s open", db);
}

/*
 * start_on_full_disk - the DB exists (schema applied) but holds no cursor;
 * the journal's newest entry at the start (not to be counted; from ident,
 * which the match may or may not take) is the start,
 * and the commit that would save it is refused: the disk is full from the
 * beginning.
 */
static void
start_on_full_disk(const char *ident, const char *start_ip)
{
	char empty[700], *out;

	write_config("journal:SYSLOG_IDENTIFIER=" SUBMISSION, true);
	tu_write(dir, "empty.log", "", empty, sizeof(empty));
	cr_assert_eq(tu_sh("'%s' replay --dry-run --quiet -c '%s' '%s'", bin, cfg, empty), 0);
	failures("a.journal", ident, NULL, 2, start_ip, 1);
	hold_db();
	fill_fs();
	start_daemon(1);
	cr_assert(err_has("disk full"), "the start cursor is refused: %s",
	    tu_sh_output("cat '%s'", errf));
	out = count_now("SELECT count(*) FROM journal_cursor");
	cr_assert_str_eq(out, "0\n", "%s", out);
	free(out);
}

Test(jdiskfull, start_cursor_refused_then_entries_read_after_the_start)
{
	start_on_full_disk(SUBMISSION, "192.0.2.15");
	full_then_space(1, true, 4, 0, 0, 0);
	release_db();
}

Test(jdiskfull, start_cursor_refused_is_saved_once_space_returns)
{
	char *out;
	int st;

	start_on_full_disk("sshd", "192.0.2.16");
	usleep(2500000);   /* at least one retry */
	cr_assert_eq(waitpid(daemon_pid, &st, WNOHANG), 0, "still running");
	/* No entry comes: the start alone is committed when space returns ... */
	cr_assert_eq(tu_sh("rm '%s/filler'", fs), 0);
	cr_assert(err_has("writes work again"), "the start cursor is committed: %s",
	    tu_sh_output("cat '%s'", errf));
	cr_assert(wait_for("SELECT count(*) FROM journal_cursor", "1\n"));
	stop_daemon();
	/* ... so what comes while the daemon is stopped is read at the next
	 * start, not skipped as older than a new start.  The saved start is
	 * an entry the match does not take, which is not one vacuumed away. */
	failures("a.journal", SUBMISSION, NULL, 2, "203.0.113.90", 5);
	start_daemon(2);
	cr_assert(wait_for(EVENTS_OK, "5 5\n"), "%s", query(EVENTS_OK));
	cr_assert(wait_for("SELECT target FROM bans", "203.0.113.90\n"));
	stop_daemon();
	release_db();
	out = tu_sh_output("cat '%s'", errf);
	cr_assert(strstr(out, "no longer in the journal") == NULL, "%s", out);
	free(out);
}

Test(journal, saved_entry_vacuumed_resumes_after_where_it_was)
{
	char *err;

	write_config("journal:SYSLOG_IDENTIFIER=" SUBMISSION, true);
	start_daemon(1);
	failures("a.journal", SUBMISSION, NULL, 2, "203.0.113.42", 2);
	cr_assert(wait_for(EVENTS_OK, "2 2\n"));
	stop_daemon();
	/* While stopped: later entries in a second file, and the file with the
	 * saved entry goes (as journald's vacuuming removes old files). */
	failures("b.journal", SUBMISSION, NULL, 2, "203.0.113.42", 3);
	cr_assert_eq(tu_sh("rm '%s/a.journal'", jdir), 0);
	start_daemon(2);
	cr_assert(wait_for(EVENTS_OK, "5 5\n"), "%s", query(EVENTS_OK));
	cr_assert(wait_for("SELECT target FROM bans", "203.0.113.42\n"));
	stop_daemon();
	err = tu_sh_output("cat '%s'", errf);
	cr_assert(strstr(err, "the saved entry is no longer in the journal (vacuumed?)")
	    != NULL, "said once: %s", err);
	cr_assert_eq(count_in_file(errf, "no longer in the journal"), 1, "%s", err);
	free(err);
}

/*
 * log = auto: /var/log/mail.log if it exists, else Postfix's journal.
 * dir/log stands in for /var/log (log_auto_file), the journal is the test's
 * journal directory, and Postfix's entries carry _SYSTEMD_UNIT=postfix@-.service
 * as on Debian 12.  When rsyslog comes or goes between two starts, both
 * sources hold the same lines: each must be counted once.
 */
#define POSTFIX_UNIT "postfix@-.service"

static char logdir[700], maillog[800];
static unsigned file_seq;

static void
write_config_auto(void)
{
	char text[4096];

	snprintf(logdir, sizeof(logdir), "%s/log", dir);
	snprintf(maillog, sizeof(maillog), "%s/mail.log", logdir);
	(void)mkdir(logdir, 0755);
	snprintf(text, sizeof(text),
	    "[mailjail]\nlog = auto\nlog_auto_file = %s\ndb = %s\nrules = %s/rules\n"
	    "jails = %s/jails\nuser = root\n[hold]\nmap = sqlite:%s/hold.db\n"
	    "[journal]\ndirectory = %s\n",
	    maillog, db, tu_srcdir(), tu_srcdir(), dir, jdir);
	tu_write(dir, "mailjail.conf", text, cfg, sizeof(cfg));
}

/* file_failures - n SASL failures from ip appended to mail.log, as rsyslog
 * writes Postfix's lines (stamped on the journal entries' clock, so the
 * two sources' lines are in time order; users f<N>, distinct) */
static void
file_failures(const char *ip, int n)
{
	FILE *fp = fopen(maillog, "a");

	cr_assert_not_null(fp);
	for (int i = 0; i < n; i++, file_seq++) {
		uint64_t t = base_usec + ++seq * 1000;
		time_t secs = (time_t)(t / 1000000);
		char stamp[64];

		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", gmtime(&secs));
		fprintf(fp, "%s.%06u+00:00 mx " SUBMISSION "[%u]: warning: unknown[%s]: "
		    "SASL LOGIN authentication failed: UGFzc3dvcmQ6, sasl_username=f%u\n",
		    stamp, (unsigned)(t % 1000000), 1000 + file_seq, ip, file_seq);
	}
	cr_assert_eq(fclose(fp), 0);
}

/* age_saved - make source's saved place look older than anything saved
 * since (a second is updated_at's grain: the tests are faster than that) */
static void
age_saved(bool journal)
{
	cr_assert_eq(tu_sh("sqlite3 '%s' 'UPDATE %s SET updated_at = updated_at - 100'",
	    db, journal ? "journal_cursor" : "log_position"), 0);
}

Test(journal, log_auto_reads_the_journal_without_mail_log_and_the_file_with_it)
{
	char *out;

	write_config_auto();
	out = tu_sh_output("'%s' check-config -c '%s' 2>&1", bin, cfg);
	cr_assert(strstr(out, "log = auto: journal:" POSTFIX_UNIT " (no ") != NULL,
	    "check-config says what auto chose: %s", out);
	free(out);
	start_daemon(1);
	cr_assert_eq(count_in_file(errf, "log = auto: journal:" POSTFIX_UNIT), 1,
	    "said at start: %s", tu_sh_output("cat '%s'", errf));
	failures("a.journal", SUBMISSION, "evil.service", 2, "198.51.100.50", 6);
	failures("a.journal", SUBMISSION, POSTFIX_UNIT, 2, "203.0.113.50", 5);
	cr_assert(wait_for("SELECT target FROM bans", "203.0.113.50\n"),
	    "Postfix's journal entries ban; another unit's are not read");
	/* rsyslog installed while running: a reload says so, and keeps the
	 * journal until a restart. */
	file_failures("203.0.113.51", 0);
	kill(daemon_pid, SIGHUP);
	cr_assert(tu_wait_file_has(errf, "reload: [mailjail] log names other logs now"),
	    "%s", tu_sh_output("cat '%s'", errf));
	cr_assert(tu_wait_file_has(errf, "(it exists"), "%s", tu_sh_output("cat '%s'", errf));
	stop_daemon();

	out = tu_sh_output("'%s' check-config -c '%s' 2>&1", bin, cfg);
	cr_assert(strstr(out, "log = auto: ") != NULL && strstr(out, maillog) != NULL &&
	    strstr(out, "(it exists") != NULL, "%s", out);
	free(out);
	start_daemon(2);
	file_failures("203.0.113.51", 5);
	cr_assert(wait_for("SELECT group_concat(target) FROM (SELECT target FROM bans "
	    "ORDER BY target)", "203.0.113.50,203.0.113.51\n"), "the file is read now");
	stop_daemon();
	out = query("SELECT count(*) FROM events WHERE ip = '198.51.100.50'");
	cr_assert_str_eq(out, "0\n");
	free(out);
}

Test(journal, log_auto_journal_to_file_counts_each_line_once)
{
	char *err;

	write_config_auto();
	start_daemon(1);
	failures("a.journal", SUBMISSION, POSTFIX_UNIT, 2, "203.0.113.60", 3);
	cr_assert(wait_for(EVENTS_OK, "3 3\n"), "%s", query(EVENTS_OK));
	stop_daemon();
	/* rsyslog installed while mailjail ran on the journal: mail.log holds
	 * lines the journal gave already. */
	file_failures("203.0.113.60", 3);
	start_daemon(2);
	err = tu_sh_output("cat '%s'", errf);
	cr_assert(strstr(err, "log = auto: journal:" POSTFIX_UNIT " was read last and "
	    "holds the same lines: ") != NULL && strstr(err, "starts at its end") != NULL,
	    "%s", err);
	free(err);
	file_failures("203.0.113.60", 2);
	cr_assert(wait_for("SELECT target FROM bans", "203.0.113.60\n"),
	    "3 from the journal + 2 new in the file = 5: a ban");
	cr_assert(wait_for(EVENTS_OK, "5 5\n"), "the file's first 3 lines are not "
	    "counted again: %s", query(EVENTS_OK));
	stop_daemon();

	/* From now on the file is the one read last: a restart resumes it
	 * where it stopped, with a line written while stopped. */
	age_saved(true);
	file_failures("203.0.113.61", 1);
	start_daemon(3);
	cr_assert(wait_for(EVENTS_OK, "6 6\n"), "%s", query(EVENTS_OK));
	stop_daemon();
	cr_assert_eq(count_in_file(errf, "was read last"), 1, "one switch only");
}

Test(journal, log_auto_file_to_journal_counts_each_line_once)
{
	char *err;

	write_config_auto();
	start_daemon(1);
	failures("a.journal", SUBMISSION, POSTFIX_UNIT, 2, "203.0.113.70", 2);
	cr_assert(wait_for(EVENTS_OK, "2 2\n"), "%s", query(EVENTS_OK));
	stop_daemon();
	age_saved(true);
	/* rsyslog comes: while mailjail reads mail.log, the journal holds the
	 * same lines (rsyslog takes them from journald). */
	file_failures("203.0.113.70", 0);
	start_daemon(2);
	file_failures("203.0.113.70", 2);
	failures("a.journal", SUBMISSION, POSTFIX_UNIT, 2, "203.0.113.70", 2);
	cr_assert(wait_for(EVENTS_OK, "4 4\n"), "%s", query(EVENTS_OK));
	stop_daemon();
	/* rsyslog purged with its logs: auto is the journal again, whose saved
	 * cursor is from before the file; the two entries after it were read
	 * from the file. */
	cr_assert_eq(unlink(maillog), 0);
	start_daemon(3);
	err = tu_sh_output("cat '%s'", errf);
	cr_assert(strstr(err, "was read last and holds the same lines: journal:"
	    POSTFIX_UNIT " starts after its newest entry") != NULL, "%s", err);
	free(err);
	failures("a.journal", SUBMISSION, POSTFIX_UNIT, 2, "203.0.113.70", 1);
	cr_assert(wait_for("SELECT target FROM bans", "203.0.113.70\n"),
	    "2 + 2 + 1 = 5: a ban");
	cr_assert(wait_for(EVENTS_OK, "5 5\n"), "the journal's 2 entries read from "
	    "the file are not counted again: %s", query(EVENTS_OK));
	stop_daemon();
}

/*
 * log_auto_file_to_journal_counts_each_line_once failed in CI at its first
 * wait with "1 1": under load the daemon read a.journal while
 * systemd-journal-remote had counted the second entry but not yet linked
 * it to _SYSTEMD_UNIT, and sd-journal then took the file as read (see
 * entry_half_linked_at_the_end_is_read_after_the_writers_notice).  The
 * same start, with that moment made exactly: the line is counted once the
 * writer is done, not when a later entry happens to come.
 */
Test(journal, log_auto_entry_half_linked_is_counted_when_its_writer_is_done)
{
	char stage[400], staged[600], path[700];
	off_t count_at;

	snprintf(stage, sizeof(stage), "%s/stage", dir);
	snprintf(staged, sizeof(staged), "%s/a.journal", stage);
	snprintf(path, sizeof(path), "%s/a.journal", jdir);
	cr_assert_eq(mkdir(stage, 0755), 0);
	write_config_auto();
	start_daemon(1);
	failures_in(stage, "a.journal", SUBMISSION, POSTFIX_UNIT, 2, "203.0.113.75", 2);
	count_at = half_linked(staged, "_SYSTEMD_UNIT=" POSTFIX_UNIT, 2);
	cr_assert_eq(rename(staged, path), 0);
	cr_assert(wait_for(EVENTS_OK, "1 1\n"), "%s", query(EVENTS_OK));
	linked(path, count_at, 2);
	cr_assert(wait_for(EVENTS_OK, "2 2\n"), "the second entry, once linked: %s",
	    query(EVENTS_OK));
	stop_daemon();
}

Test(jdiskfull, log_auto_switch_with_its_start_refused_rereads_nothing_before_it)
{
	char *out;

	write_config_auto();
	start_daemon(1);
	failures("a.journal", SUBMISSION, POSTFIX_UNIT, 2, "203.0.113.95", 2);
	cr_assert(wait_for(EVENTS_OK, "2 2\n"), "%s", query(EVENTS_OK));
	stop_daemon();
	/* rsyslog comes; mail.log holds lines the journal gave already.  The
	 * disk is full when the daemon starts at mail.log's end, so that start
	 * is not saved, and the batch with the next lines is refused and read
	 * again: from the start of the switch, not from the file's first byte. */
	file_failures("203.0.113.95", 3);
	hold_db();
	fill_fs();
	start_daemon(2);
	cr_assert(err_has("starts at its end"), "%s", tu_sh_output("cat '%s'", errf));
	file_failures("203.0.113.95", 2);
	cr_assert(err_has("disk full"), "%s", tu_sh_output("cat '%s'", errf));
	usleep(2500000);   /* at least one retry (rewind, read again), still full */
	out = count_now("SELECT count(*) FROM log_position");
	cr_assert_str_eq(out, "0\n", "the start was not saved: %s", out);
	free(out);
	cr_assert_eq(tu_sh("rm '%s/filler'", fs), 0);
	cr_assert(err_has("writes work again"), "%s", tu_sh_output("cat '%s'", errf));
	cr_assert(wait_for(EVENTS_OK, "4 4\n"), "2 from the journal, 2 new in the "
	    "file: %s", query(EVENTS_OK));
	stop_daemon();
	release_db();
	out = query("SELECT count(*) FROM bans");
	cr_assert_str_eq(out, "0\n", "4 failures: no ban");
	free(out);
}
