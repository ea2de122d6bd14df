/*
 * test_daemon - "mailjail run" as a real process following real files
 * (inotify), in dry-run mode (no kernel needed; the nft suite covers that),
 * and the operator commands on a known database.
 */
#include <criterion/criterion.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

static char dir[256], db[600], bin[512], cfg[600], logf[600], errf[600];

static void
setup(void)
{
	tu_mkdtemp(dir, sizeof(dir));
	snprintf(db, sizeof(db), "%s/mj.db", dir);
	snprintf(bin, sizeof(bin), "%s/mailjail", tu_builddir());
	snprintf(logf, sizeof(logf), "%s/mail.log", dir);
	snprintf(errf, sizeof(errf), "%s/daemon.err", dir);
}

static void
teardown(void)
{
	tu_kill_children();
	tu_rmrf(dir);
}

TestSuite(daemon, .init = setup, .fini = teardown, .timeout = 120);

/* The disk-full cases: the DB on a 2 MiB tmpfs mounted in a mount namespace
 * of this test process only (the daemon and sqlite3 inherit it; nothing
 * reaches the host, and the mount goes when the test ends). */
static char fs[300];

static void
setup_small_fs(void)
{
	setup();
	tu_small_fs(dir, fs, sizeof(fs));
	snprintf(db, sizeof(db), "%s/mj.db", fs);
}

static void
teardown_small_fs(void)
{
	tu_kill_children();
	(void)umount2(fs, MNT_DETACH);
	tu_rmrf(dir);
}

TestSuite(diskfull, .init = setup_small_fs, .fini = teardown_small_fs, .timeout = 120);
TestSuite(operator, .init = setup, .fini = teardown, .timeout = 60);

/* write_config - logs is a comma list; jails a directory or file */
static void
write_config(const char *logs, const char *jails, const char *user)
{
	char text[4096];

	snprintf(text, sizeof(text),
	    "[mailjail]\nlog = %s\ndb = %s\nrules = %s/rules\njails = %s\nuser = %s\n",
	    logs, db, tu_srcdir(), jails, user);
	tu_write(dir, "mailjail.conf", text, cfg, sizeof(cfg));
}

static const char *
maps_db(const char *maps)
{
	static char p[800];

	snprintf(p, sizeof(p), "%s/hold.db", maps);
	return p;
}

/* Cleared by a test that enforces for real (maps only: no kernel needed). */
static bool dry_run = true;

static pid_t
start_daemon(void)
{
	pid_t pid = tu_fork();

	cr_assert_neq(pid, -1);
	if (pid == 0) {
		FILE *e = freopen(errf, "a", stderr);
		(void)e;
		if (dry_run)
			execl(bin, "mailjail", "run", "--dry-run", "-c", cfg, (char *)NULL);
		else
			execl(bin, "mailjail", "run", "-c", cfg, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static int
stop_daemon(pid_t pid, int sig)
{
	int st;

	kill(pid, sig);
	cr_assert_eq(tu_waitpid(pid, &st), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* wait_for - poll a SQL query until it prints want (or 15 s pass) */
static bool
wait_for(const char *sql, const char *want)
{
	return tu_wait_sql(db, sql, want);
}

/* append_failures - n SASL failures from ip, stamped now (local time) */
static void
append_failures(const char *path, const char *ip, const char *user, int n)
{
	FILE *fp = fopen(path, "a");
	char stamp[32];
	time_t now = time(NULL);

	cr_assert_not_null(fp);
	strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", localtime(&now));
	for (int i = 0; i < n; i++)
		fprintf(fp, "%s mx postfix/submission/smtpd[%d]: warning: unknown[%s]: SASL "
		    "LOGIN authentication failed: UGFzc3dvcmQ6, sasl_username=%s\n",
		    stamp, 100 + i, ip, user);
	fclose(fp);
}

static char *
jails_dir(void)
{
	static char p[600];

	snprintf(p, sizeof(p), "%s/jails", tu_srcdir());
	return p;
}

Test(daemon, bans_the_true_client_of_appended_lines)
{
	pid_t pid;

	tu_write(dir, "mail.log", "", logf, sizeof(logf));
	write_config(logf, jails_dir(), "root");
	pid = start_daemon();
	append_failures(logf, "203.0.113.45", "admin", 6);
	append_failures(logf, "198.51.100.77",
	    "x[192.0.2.66]: SASL LOGIN authentication failed:", 6);
	append_failures(logf, "127.0.0.1", "admin", 6);
	cr_assert(wait_for("SELECT count(*) FROM bans WHERE target = '203.0.113.45'", "1\n"),
	    "brute-forcer banned");
	cr_assert(wait_for("SELECT count(*) FROM bans WHERE target = '198.51.100.77'", "1\n"),
	    "true client banned");
	cr_assert(wait_for("SELECT count(*) || ' ' || (SELECT sum(n) FROM event_counts) FROM events",
	    "18 18\n"));
	cr_assert_eq(stop_daemon(pid, SIGTERM), 0);
	cr_assert(wait_for("SELECT count(*) FROM bans WHERE target IN ('192.0.2.66', "
	    "'127.0.0.1')", "0\n"), "never the spoofed address, never loopback");
}

Test(daemon, missing_log_is_waited_for)
{
	pid_t pid;

	write_config(logf, jails_dir(), "root");
	pid = start_daemon();
	usleep(300000);
	append_failures(logf, "203.0.113.46", "admin", 5);
	cr_assert(wait_for("SELECT count(*) FROM bans WHERE target = '203.0.113.46'", "1\n"));
	cr_assert_eq(stop_daemon(pid, SIGTERM), 0);
}

Test(daemon, sigterm_mid_stream_loses_and_repeats_nothing)
{
	char sample[600], whole[700], *a, *b;
	pid_t pid, writer;
	/* every line recognised (event_counts), and the rows kept for the jails */
	const char *count = "SELECT (SELECT sum(n) FROM event_counts) || char(32) || count(*) "
	    "|| char(32) || count(DISTINCT time || rule || coalesce(ip, '') || "
	    "coalesce(account, '') || coalesce(qid, '')) FROM events";

	snprintf(sample, sizeof(sample), "%s/tests/data/sample-mail.log", tu_srcdir());
	tu_write(dir, "mail.log", "", logf, sizeof(logf));
	write_config(logf, jails_dir(), "root");
	pid = start_daemon();
	/* Running (its handlers set: a SIGTERM while an ASan binary is still
	 * starting on a loaded machine would kill it, and that is not what
	 * this tests), then mid-stream. */
	cr_assert(tu_wait_file_has(errf, "running:"));
	/* A writer appends 30 copies of the sample while the daemon reads. */
	writer = tu_fork();
	cr_assert_neq(writer, -1);
	if (writer == 0) {
		for (int i = 0; i < 30; i++) {
			char cmd[1400];
			/* Dated three hours ago: inside the jails' windows, so
			 * the restart restores all of it (see test_crash). */
			snprintf(cmd, sizeof(cmd), "d=$(date -d '3 hours ago' '+%%b %%e %%H'); "
			    "sed \"s/^Nov 21 09/$d/\" '%s' >> '%s'", sample, logf);
			if (system(cmd) != 0)
				_exit(1);
			usleep(20000);
		}
		_exit(0);
	}
	usleep(250000);
	cr_assert_eq(stop_daemon(pid, SIGTERM), 0, "clean stop mid-stream");
	cr_assert_eq(tu_waitpid(writer, NULL), writer);
	pid = start_daemon();
	/* Wait until the restarted daemon has read everything. */
	{
		struct stat st;
		char want[64];
		cr_assert_eq(stat(logf, &st), 0);
		snprintf(want, sizeof(want), "%lld\n", (long long)st.st_size);
		cr_assert(wait_for("SELECT offset FROM log_position", want), "caught up");
	}
	cr_assert_eq(stop_daemon(pid, SIGTERM), 0);
	a = tu_sh_output("sqlite3 '%s' \"%s\"", db, count);
	/* The same file replayed in one go gives the same events. */
	snprintf(whole, sizeof(whole), "%s/whole.db", dir);
	cr_assert_eq(tu_sh("'%s' replay --dry-run --quiet -c '%s' --db '%s' '%s'", bin, cfg,
	    whole, logf), 0);
	b = tu_sh_output("sqlite3 '%s' \"%s\"", whole, count);
	cr_assert_str_eq(a, b, "run+SIGTERM+run: %s, one replay: %s", a, b);
	cr_assert_str_eq(a, "9960 8640 288\n", "30 copies x 332 events, of which 288 the jails "
	    "count are rows, 288 distinct (the copies repeat)");
	free(a);
	free(b);
}

Test(daemon, reload_refuses_bad_config_and_keeps_running)
{
	char jdir[600], jail[700], *err;
	pid_t pid;

	snprintf(jdir, sizeof(jdir), "%s/jails", dir);
	cr_assert_eq(tu_sh("cp -r '%s' '%s'", jails_dir(), jdir), 0);
	tu_write(dir, "mail.log", "", logf, sizeof(logf));
	write_config(logf, jdir, "root");
	pid = start_daemon();
	/* Up before the SIGHUP: during start-up its default action would end
	 * the daemon (300 ms were not always enough under a loaded full run). */
	cr_assert(tu_wait_file_has(errf, "running:"), "daemon up");
	tu_write(jdir, "broken.jail", "[broken]\nevents = auth_failure\nkey = ip\n"
	    "maxretry = 3\nfindtime = 10 minutes\naction = nft\n", jail, sizeof(jail));
	kill(pid, SIGHUP);
	usleep(500000);
	cr_assert_eq(kill(pid, 0), 0, "still running");
	append_failures(logf, "203.0.113.47", "admin", 5);
	cr_assert(wait_for("SELECT count(*) FROM bans WHERE target = '203.0.113.47'", "1\n"),
	    "old configuration still bans");
	err = tu_sh_output("cat '%s'", errf);
	cr_assert(strstr(err, "reload refused") != NULL, "%s", err);
	cr_assert(strstr(err, "broken.jail:5:") != NULL, "file:line given: %s", err);
	free(err);

	/* Fixed: the reload takes, and the new jail (3 in 10m) works. */
	tu_write(jdir, "broken.jail", "[broken]\nevents = auth_failure\nkey = ip\n"
	    "maxretry = 3\nfindtime = 10m\nbantime = 1h\naction = nft\n", jail, sizeof(jail));
	kill(pid, SIGHUP);
	usleep(500000);
	err = tu_sh_output("cat '%s'", errf);
	cr_assert(strstr(err, "reloaded") != NULL, "%s", err);
	free(err);
	append_failures(logf, "203.0.113.48", "admin", 3);
	cr_assert(wait_for("SELECT jail FROM bans WHERE target = '203.0.113.48'", "broken\n"));
	cr_assert_eq(stop_daemon(pid, SIGTERM), 0);
}

Test(daemon, follows_two_logs_with_their_own_positions)
{
	char other[700], logs[1500];
	pid_t pid;

	snprintf(other, sizeof(other), "%s/other.log", dir);
	tu_write(dir, "mail.log", "", logf, sizeof(logf));
	tu_write(dir, "other.log", "", other, sizeof(other));
	snprintf(logs, sizeof(logs), "%s, %s", logf, other);
	write_config(logs, jails_dir(), "root");
	pid = start_daemon();
	append_failures(logf, "203.0.113.50", "a", 5);
	append_failures(other, "203.0.113.51", "b", 5);
	cr_assert(wait_for("SELECT group_concat(target) FROM (SELECT target FROM bans "
	    "ORDER BY target)", "203.0.113.50,203.0.113.51\n"));
	cr_assert(wait_for("SELECT count(*) FROM log_position WHERE offset > 0", "2\n"));
	cr_assert_eq(stop_daemon(pid, SIGTERM), 0);
}

Test(daemon, runs_without_root_keeping_only_cap_net_admin)
{
	char status[64], *out;
	pid_t pid;

	cr_assert_eq(geteuid(), 0, "this test needs root (CI runs as root)");
	/* Sticky, like /tmp: user nobody makes the DB here, and the config in
	 * it stays root's (cfgfile.h refuses a directory others can write). */
	cr_assert_eq(chmod(dir, 01777), 0);
	tu_write(dir, "mail.log", "", logf, sizeof(logf));
	write_config(logf, jails_dir(), "nobody");
	pid = start_daemon();
	append_failures(logf, "203.0.113.52", "admin", 5);
	cr_assert(wait_for("SELECT count(*) FROM bans WHERE target = '203.0.113.52'", "1\n"),
	    "still works after dropping privileges");
	snprintf(status, sizeof(status), "/proc/%d/status", (int)pid);
	out = tu_sh_output("grep -E '^(Uid|CapEff|CapPrm|NoNewPrivs):' %s", status);
	cr_assert(strstr(out, "Uid:\t65534\t65534\t65534\t65534") != NULL, "%s", out);
	cr_assert(strstr(out, "CapEff:\t0000000000001000") != NULL, "only CAP_NET_ADMIN: %s", out);
	cr_assert(strstr(out, "CapPrm:\t0000000000001000") != NULL, "%s", out);
	cr_assert(strstr(out, "NoNewPrivs:\t1") != NULL, "%s", out);
	free(out);
	cr_assert_eq(stop_daemon(pid, SIGTERM), 0);
}

/* The maps are written by the dropped user, and a reload reopens them as
 * that user: they are handed over at start like the database. */
Test(daemon, hold_map_still_written_after_the_drop_and_a_reload)
{
	char maps[700], jail[700], text[4096], *out;
	FILE *fp;
	pid_t pid;

	cr_assert_eq(geteuid(), 0, "this test needs root (CI runs as root)");
	/* Sticky, like /tmp: user nobody makes the DB here, and the config in
	 * it stays root's (cfgfile.h refuses a directory others can write). */
	cr_assert_eq(chmod(dir, 01777), 0);
	snprintf(maps, sizeof(maps), "%s/maps", dir);
	cr_assert_eq(mkdir(maps, 0755), 0);
	cr_assert_eq(chown(maps, 65534, 65534), 0);
	tu_write(dir, "quota.jail", "[quota]\nevents = submission\nkey = account\n"
	    "limits = 3/1h\naction = hold\nbantime = 1h\n", jail, sizeof(jail));
	tu_write(dir, "mail.log", "", logf, sizeof(logf));
	snprintf(text, sizeof(text), "[mailjail]\nlog = %s\ndb = %s\nrules = %s/rules\n"
	    "jails = %s\nuser = nobody\n[hold]\nmap = sqlite:%s/hold.db\n", logf, db,
	    tu_srcdir(), jail, maps);
	tu_write(dir, "mailjail.conf", text, cfg, sizeof(cfg));
	dry_run = false;
	pid = start_daemon();
	cr_assert(tu_wait_file_has(errf, "running:"), "started");
	kill(pid, SIGHUP);
	cr_assert(tu_wait_file_has(errf, "reloaded"), "the reload takes, as the dropped user");
	fp = fopen(logf, "a");
	cr_assert_not_null(fp);
	for (int i = 0; i < 4; i++) {
		char stamp[32];
		time_t now = time(NULL);
		strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", localtime(&now));
		fprintf(fp, "%s mx postfix/submission/smtpd[%d]: 4F%06X: client=c.example[192.0.2.%d], "
		    "sasl_method=PLAIN, sasl_username=alice\n", stamp, 300 + i, i, 10 + i);
	}
	fclose(fp);
	cr_assert(wait_for("SELECT count(*) FROM bans WHERE target = 'alice'", "1\n"));
	cr_assert(tu_wait_sql(maps_db(maps), "SELECT count(*) FROM hold WHERE key = 'alice'", "1\n"),
	    "alice is on the HOLD map");
	out = tu_sh_output("stat -c %%u '%s/hold.db' '%s/postfix-hold.cf'", maps, maps);
	cr_assert_str_eq(out, "65534\n65534\n", "the map files belong to the user");
	free(out);
	out = tu_sh_output("cat '%s'", errf);
	cr_assert(strstr(out, "reload refused") == NULL, "%s", out);
	free(out);
	cr_assert_eq(stop_daemon(pid, SIGTERM), 0);
}

Test(daemon, unknown_user_is_fatal)
{
	pid_t pid;
	int st;

	cr_assert_eq(geteuid(), 0, "this test needs root (CI runs as root)");
	tu_write(dir, "mail.log", "", logf, sizeof(logf));
	write_config(logf, jails_dir(), "no-such-user-mailjail");
	pid = start_daemon();
	cr_assert_eq(tu_waitpid(pid, &st), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1, "fail closed");
}

Test(daemon, sigusr1_reopens_the_log_file)
{
	char out[700], moved[800], *text;
	pid_t pid;
	int st;

	snprintf(out, sizeof(out), "%s/mailjail.out", dir);
	snprintf(moved, sizeof(moved), "%s.1", out);
	tu_write(dir, "mail.log", "", logf, sizeof(logf));
	write_config(logf, jails_dir(), "root");
	if ((pid = tu_fork()) == 0) {
		execl(bin, "mailjail", "run", "--dry-run", "--log-file", out, "-c", cfg,
		    (char *)NULL);
		_exit(127);
	}
	append_failures(logf, "203.0.113.60", "a", 5);
	cr_assert(wait_for("SELECT count(*) FROM bans", "1\n"));
	cr_assert_eq(rename(out, moved), 0);   /* logrotate */
	kill(pid, SIGUSR1);
	for (int i = 0; i < 100 && access(out, F_OK) != 0; i++)
		usleep(50000);
	cr_assert_eq(access(out, F_OK), 0, "reopened");
	append_failures(logf, "203.0.113.61", "a", 5);
	cr_assert(wait_for("SELECT count(*) FROM bans", "2\n"));
	kill(pid, SIGTERM);
	cr_assert_eq(tu_waitpid(pid, &st), pid);
	text = tu_sh_output("cat '%s'", out);
	cr_assert(strstr(text, "203.0.113.61") != NULL, "new file has the new ban: %s", text);
	cr_assert(strstr(text, "203.0.113.60") == NULL, "%s", text);
	free(text);
	text = tu_sh_output("cat '%s'", moved);
	cr_assert(strstr(text, "ban ip 203.0.113.60 jail=sasl-bruteforce level=1") != NULL,
	    "one line per ban with jail, target, level: %s", text);
	free(text);
}

/*
 * hold_db - an admin's sqlite3 shell: runs sql (e.g. "BEGIN IMMEDIATE;"),
 * touches marker once it is done (-bail: only if it worked), keeps the
 * transaction open for secs seconds, then touches marker.done and ends it.
 * Returns once marker exists, i.e. while the lock or snapshot is held.
 */
static pid_t
hold_db(const char *sql, int secs, const char *marker)
{
	char cmd[3000];
	pid_t pid;

	snprintf(cmd, sizeof(cmd), "(echo '.timeout 10000'; echo \"%s\"; "
	    "echo '.system touch %s'; sleep %d; echo '.system touch %s.done'; "
	    "echo 'COMMIT;') | exec sqlite3 -bail '%s'", sql, marker, secs, marker, db);
	if ((pid = tu_fork()) == 0) {
		/* Its own group: kill(-pid) ends the shell, sqlite3 and sleep. */
		(void)setpgid(0, 0);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200 && access(marker, F_OK) != 0; i++)
		usleep(50000);
	cr_assert_eq(access(marker, F_OK), 0, "sqlite3 got its lock: %s", sql);
	return pid;
}

/* count_now - one query, now */
static char *
count_now(const char *sql)
{
	return tu_sh_output("sqlite3 '%s' \"%s\" 2>&1", db, sql);
}

/* write_lock_case - the daemon waits for a shell holding the write lock,
 * says so, and then records every line */
static void
write_lock_case(const char *begin)
{
	char marker[700], done[800], *err, *out;
	pid_t pid, cli;
	int st;

	snprintf(marker, sizeof(marker), "%s/locked", dir);
	snprintf(done, sizeof(done), "%s.done", marker);
	tu_write(dir, "mail.log", "", logf, sizeof(logf));
	write_config(logf, jails_dir(), "root");
	pid = start_daemon();
	/* The first commit saves the (empty) log's position. */
	cr_assert(wait_for("SELECT offset FROM log_position", "0\n"), "daemon up");
	cli = hold_db(begin, 4, marker);
	append_failures(logf, "203.0.113.70", "a", 5);
	append_failures(logf, "203.0.113.71", "a", 5);
	usleep(1500000);
	/* Still held: nothing can be in the DB yet, and the daemon lives. */
	cr_assert_neq(access(done, F_OK), 0, "the test was too slow to check");
	out = count_now("SELECT count(*) FROM events");
	cr_assert_str_eq(out, "0\n", "blocked while the lock is held: %s", out);
	free(out);
	cr_assert_eq(kill(pid, 0), 0, "still running while locked out");
	cr_assert_eq(tu_waitpid(cli, &st), cli);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the shell's transaction worked");
	cr_assert(wait_for("SELECT count(*) FROM events", "10\n"), "nothing lost");
	cr_assert(wait_for("SELECT group_concat(target) FROM (SELECT target FROM bans "
	    "ORDER BY target)", "203.0.113.70,203.0.113.71\n"), "both banned, once");
	cr_assert_eq(stop_daemon(pid, SIGTERM), 0);
	err = tu_sh_output("cat '%s'", errf);
	cr_assert(strstr(err, "cannot commit") == NULL, "waited, no error: %s", err);
	cr_assert(strstr(err, "mj.db: locked by another process") != NULL,
	    "the wait is logged: %s", err);
	cr_assert(strstr(err, "lock released after") != NULL, "and its end: %s", err);
	free(err);
}

Test(daemon, waits_for_a_sqlite3_cli_holding_the_write_lock)
{
	write_lock_case("BEGIN IMMEDIATE;");
}

Test(daemon, waits_for_a_sqlite3_cli_holding_an_exclusive_lock)
{
	/* In WAL mode EXCLUSIVE excludes writers only: same wait. */
	write_lock_case("BEGIN EXCLUSIVE;");
}

Test(daemon, a_long_read_transaction_does_not_stop_the_daemon)
{
	char marker[700], done[800], *out;
	pid_t pid, cli;
	int st;

	snprintf(marker, sizeof(marker), "%s/reading", dir);
	snprintf(done, sizeof(done), "%s.done", marker);
	tu_write(dir, "mail.log", "", logf, sizeof(logf));
	write_config(logf, jails_dir(), "root");
	pid = start_daemon();
	cr_assert(wait_for("SELECT offset FROM log_position", "0\n"), "daemon up");
	/* A reader's snapshot: in WAL mode it does not block the writer (it
	 * only keeps checkpoints from going past it). */
	cli = hold_db("BEGIN; SELECT count(*) FROM events;", 6, marker);
	for (int k = 0; k < 20; k++)
		append_failures(logf, "203.0.113.72", "b", 10);
	cr_assert(wait_for("SELECT count(*) FROM events", "200\n"), "written meanwhile");
	/* (sasl-bruteforce's: 200 failures naming "b" also make
	 * sasl-targeted-account watch it) */
	cr_assert(wait_for("SELECT count(*) FROM bans WHERE jail = 'sasl-bruteforce'", "1\n"));
	cr_assert_neq(access(done, F_OK), 0, "while the reader still held its snapshot");
	cr_assert_eq(tu_waitpid(cli, &st), cli);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* After the reader: the daemon still writes, the DB is sound. */
	append_failures(logf, "203.0.113.73", "b", 5);
	cr_assert(wait_for("SELECT count(*) FROM events", "205\n"));
	cr_assert_eq(stop_daemon(pid, SIGTERM), 0);
	out = count_now("PRAGMA integrity_check");
	cr_assert_str_eq(out, "ok\n");
	free(out);
}

Test(daemon, replay_waits_for_a_held_write_lock)
{
	char sample[600], marker[700], *out, *ref;
	pid_t cli;
	int st;

	snprintf(marker, sizeof(marker), "%s/locked", dir);
	snprintf(sample, sizeof(sample), "%s/tests/data/sample-mail.log", tu_srcdir());
	write_config(sample, jails_dir(), "root");
	/* The reference: the same replay into another DB, unlocked. */
	cr_assert_eq(tu_sh("'%s' replay --dry-run --quiet -c '%s' --db '%s/ref.db' '%s'",
	    bin, cfg, dir, sample), 0);
	ref = tu_sh_output("sqlite3 '%s/ref.db' 'SELECT count(*), (SELECT count(*) FROM bans) "
	    "FROM events'", dir);
	/* The DB exists (schema applied) before the shell locks it. */
	cr_assert_eq(tu_sh("'%s' replay --dry-run --quiet -c '%s' /dev/null 2>/dev/null; "
	    "sqlite3 '%s' 'SELECT 1' >/dev/null", bin, cfg, db), 0);
	cli = hold_db("BEGIN IMMEDIATE;", 3, marker);
	cr_assert_eq(tu_sh("'%s' replay --dry-run --quiet -c '%s' '%s' 2>'%s'", bin, cfg,
	    sample, errf), 0, "replay waited and finished");
	cr_assert_eq(tu_waitpid(cli, &st), cli);
	out = tu_sh_output("sqlite3 '%s' 'SELECT count(*), (SELECT count(*) FROM bans) "
	    "FROM events'", db);
	cr_assert_str_eq(out, ref, "same events and bans as unlocked: %s vs %s", out, ref);
	free(out);
	free(ref);
	out = tu_sh_output("cat '%s'", errf);
	cr_assert(strstr(out, "locked by another process") != NULL, "%s", out);
	free(out);
}

Test(daemon, corrupt_database_at_start_is_a_clear_error)
{
	pid_t pid;
	int st;
	char *err;

	tu_write(dir, "mail.log", "", logf, sizeof(logf));
	tu_write(dir, "mj.db", "this is not an SQLite database, but it is long enough to "
	    "look like one to a careless reader\n", db, sizeof(db));
	write_config(logf, jails_dir(), "root");
	pid = start_daemon();
	cr_assert_eq(tu_waitpid(pid, &st), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1, "exit 1");
	err = tu_sh_output("cat '%s'", errf);
	cr_assert(strstr(err, "mj.db") != NULL && strstr(err, "not a database") != NULL,
	    "names the file and the problem: %s", err);
	free(err);
}

/* fill_fs - take every free block of the small filesystem */
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

/* err_count - lines of the daemon's stderr holding s */
static int
err_count(const char *s)
{
	char *out = tu_sh_output("grep -c -F -- '%s' '%s'", s, errf);
	int n = atoi(out);

	free(out);
	return n;
}

/* wait_exit - the daemon's exit status once it exits by itself, or -1 if
 * it still runs after 20 s (the suite's .fini kills it) */
static int
wait_exit(pid_t pid)
{
	int st;

	for (int i = 0; i < 400; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid) {
			tu_reaped(pid);
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		}
		usleep(50000);
	}
	return -1;
}

/* notify_socket - systemd's side of sd_notify: a datagram socket whose
 * path goes to the daemons started from now on in NOTIFY_SOCKET */
static int
notify_socket(void)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	cr_assert_geq(fd, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	cr_assert_lt(snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/notify", dir),
	    (int)sizeof(sa.sun_path));
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(setenv("NOTIFY_SOCKET", sa.sun_path, 1), 0);
	return fd;
}

/* notify_wait - read messages (each line appended to log) until a line
 * is want (whole, or only its start if prefix), or 15 s pass */
static bool
notify_wait(int fd, const char *want, bool prefix, char *log, size_t loglen)
{
	size_t wl = strlen(want);

	for (int i = 0; i < 300; i++) {
		char msg[1024];
		ssize_t n;

		while ((n = recv(fd, msg, sizeof(msg) - 1, 0)) > 0) {
			char *save = NULL;

			msg[n] = '\0';
			/* one datagram may carry several lines */
			for (char *l = strtok_r(msg, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
				size_t used = strlen(log);
				snprintf(log + used, loglen - used, "%s\n", l);
				if (strncmp(l, want, wl) == 0 && (prefix || l[wl] == '\0'))
					return true;
			}
		}
		usleep(50000);
	}
	return false;
}

/* banned_then_full - a daemon that committed 5 lines (one ban) and was
 * restarted (so the -wal file starts empty and the next batch needs new
 * blocks), then the disk is filled.  Returns its pid. */
static pid_t
banned_then_full(void)
{
	pid_t pid;

	tu_write(dir, "mail.log", "", logf, sizeof(logf));
	write_config(logf, jails_dir(), "root");
	pid = start_daemon();
	append_failures(logf, "203.0.113.80", "a", 5);
	cr_assert(wait_for("SELECT count(*) FROM bans", "1\n"));
	cr_assert_eq(stop_daemon(pid, SIGTERM), 0);
	pid = start_daemon();
	cr_assert(wait_for("SELECT count(*) FROM log_position", "1\n"));
	usleep(300000);
	fill_fs();
	return pid;
}

Test(diskfull, daemon_waits_for_space_and_loses_nothing)
{
	char *out, notes[8192] = "";
	const char *again;
	pid_t pid;
	int nfd = notify_socket();

	pid = banned_then_full();
	for (int k = 0; k < 20; k++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "203.0.113.%d", 100 + k);
		append_failures(logf, ip, "b", 5);
	}
	cr_assert(err_has("disk full"), "a clear error");
	out = tu_sh_output("cat '%s'", errf);
	cr_assert(strstr(out, "database ") != NULL && strstr(out, "/fs/mj.db") != NULL,
	    "names the DB: %s", out);
	cr_assert(strstr(out, "will be read again") != NULL, "%s", out);
	free(out);
	/* systemd is told what is going on (systemctl status shows it). */
	cr_assert(notify_wait(nfd, "STATUS=database refuses writes", true, notes,
	    sizeof(notes)), "%s", notes);
	cr_assert(strstr(notes, "disk full") != NULL, "%s", notes);
	usleep(4500000);   /* two retries at least, still full */
	cr_assert_eq(kill(pid, 0), 0, "still running while the disk is full");
	out = count_now("PRAGMA integrity_check; SELECT count(*) FROM events; "
	    "SELECT count(*) FROM bans;");
	cr_assert_str_eq(out, "ok\n5\n1\n", "no partial batch, DB sound: %s", out);
	free(out);
	/* Space comes back: every line is recorded exactly once. */
	cr_assert_eq(tu_sh("rm '%s/filler'", fs), 0);
	cr_assert(wait_for("SELECT count(*) || ' ' || count(DISTINCT ip) FROM events",
	    "105 21\n"), "every line once");
	cr_assert(wait_for("SELECT count(*) || ' ' || count(DISTINCT target) FROM bans WHERE "
	    "jail = 'sasl-bruteforce'", "21 21\n"), "one ban per address");
	cr_assert(err_has("writes work again"), "recovery is logged");
	cr_assert(notify_wait(nfd, "STATUS=", false, notes, sizeof(notes)),
	    "the status is cleared: %s", notes);
	cr_assert_eq(stop_daemon(pid, SIGTERM), 0);
	out = count_now("PRAGMA integrity_check");
	cr_assert_str_eq(out, "ok\n");
	free(out);
	/* Each ban is logged once, after its commit, though the batch that
	 * decided it was refused (and decided it) several times. */
	out = tu_sh_output("cat '%s'", errf);
	cr_assert_not_null(again = strstr(out, "writes work again after "), "%s", out);
	cr_assert_geq(atoi(again + strlen("writes work again after ")), 2,
	    "the test did not see two refusals of the batch: %s", out);
	free(out);
	for (int k = 0; k < 20; k++) {
		char line[64];
		snprintf(line, sizeof(line), "ban ip 203.0.113.%d jail=sasl-bruteforce ",
		    100 + k);
		cr_assert_eq(err_count(line), 1, "'%s' logged once", line);
	}
	cr_assert_eq(err_count(" jail=sasl-bruteforce "), 21, "one line per ban");
	close(nfd);
	fprintf(stderr, "[info] disk full: daemon recovered, 105 events, 21 bans\n");
}


/* want_sql - wait_for, saying what the query gave if it never came */
static void
want_sql(const char *sql, const char *want, const char *what)
{
	char got[256], *out;

	if (wait_for(sql, want))
		return;
	out = count_now(sql);
	snprintf(got, sizeof(got), "%s", out);
	free(out);
	cr_assert_fail("%s: want %s got %s", what, want, got);
}

/* five_each - n addresses base.first.. with 5 failures each */
static void
five_each(const char *path, const char *base, int first, int n)
{
	for (int k = 0; k < n; k++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "%s.%d", base, first + k);
		append_failures(path, ip, "b", 5);
	}
}

/*
 * Rename rotation while the DB refuses batches: the lines of the old file
 * after the last commit are only in the old file, which the batch being
 * retried must not leave before they are saved.
 */
Test(diskfull, rename_rotation_while_full_loses_nothing)
{
	char rotated[700], *out;
	pid_t pid = banned_then_full();

	five_each(logf, "203.0.113", 101, 8);   /* 40 lines, refused */
	cr_assert(err_has("disk full"), "a clear error");
	/* logrotate during the outage: rename, then a new file with data. */
	snprintf(rotated, sizeof(rotated), "%s.1", logf);
	cr_assert_eq(rename(logf, rotated), 0);
	five_each(logf, "198.51.100", 9, 1);
	/* A retry has read the old file to its end and seen the new one. */
	cr_assert(err_has("mail.log: rotated"), "the rotation is seen");
	usleep(2500000);   /* and one more retry, still full */
	out = count_now("SELECT count(*) FROM events");
	cr_assert_str_eq(out, "5\n", "nothing saved while full: %s", out);
	free(out);
	cr_assert_eq(tu_sh("rm '%s/filler'", fs), 0);
	want_sql("SELECT count(*) || ' ' || count(DISTINCT ip) FROM events", "50 10\n",
	    "every line of both files once (events, addresses)");
	cr_assert(wait_for("SELECT count(*) FROM (SELECT ip FROM events GROUP BY ip "
	    "HAVING count(*) = 5)", "10\n"), "5 events for each address");
	cr_assert(wait_for("SELECT count(*) || ' ' || count(DISTINCT target) FROM bans WHERE "
	    "jail = 'sasl-bruteforce'", "10 10\n"), "the 8 addresses of the old file are banned too");
	/* Nothing is read again later either. */
	append_failures(logf, "198.51.100.10", "c", 1);
	cr_assert(wait_for("SELECT count(*) FROM events", "51\n"));
	cr_assert_eq(stop_daemon(pid, SIGTERM), 0);
	out = count_now("PRAGMA integrity_check");
	cr_assert_str_eq(out, "ok\n");
	free(out);
}

/*
 * copytruncate while the DB refuses batches, the file refilled beyond the
 * committed offset before the retry goes back there: the retry must see
 * that the file was rewritten and read the new content from its start (no
 * line of it lost, none twice, no half line).  The refused lines of the
 * old content are gone with the truncation (they are in the copy only):
 * as with copytruncate's own race, rename rotation is the safe one.
 */
Test(diskfull, copytruncate_while_full_rereads_the_new_content)
{
	char *out;
	pid_t pid = banned_then_full();

	five_each(logf, "203.0.113", 101, 2);   /* 10 lines, refused */
	cr_assert(err_has("disk full"), "a clear error");
	/* During the 2 s pause before the retry: copy, truncate, refill
	 * beyond the committed 5 lines and beyond what the retry read. */
	cr_assert_eq(tu_sh("cp '%s' '%s.1' && : > '%s'", logf, logf, logf), 0);
	five_each(logf, "198.51.100", 11, 4);   /* 20 lines */
	usleep(2500000);   /* at least one retry, still full */
	out = count_now("SELECT count(*) FROM events");
	cr_assert_str_eq(out, "5\n", "nothing saved while full: %s", out);
	free(out);
	cr_assert_eq(tu_sh("rm '%s/filler'", fs), 0);
	want_sql("SELECT count(*) FROM events WHERE ip LIKE '198.51.100.%'", "20\n",
	    "every line of the new content");
	cr_assert(wait_for("SELECT count(*) || ' ' || count(DISTINCT ip) FROM events",
	    "25 5\n"), "each line once");
	cr_assert(wait_for("SELECT count(*) FROM bans WHERE target LIKE '198.51.100.%' AND "
	    "jail = 'sasl-bruteforce'", "4\n"), "its 4 addresses banned");
	append_failures(logf, "198.51.100.20", "c", 1);
	cr_assert(wait_for("SELECT count(*) FROM events", "26\n"));
	cr_assert_eq(stop_daemon(pid, SIGTERM), 0);
	/* (Seen by the retry, or by a read that caught the file empty.) */
	cr_assert_eq(tu_sh("grep -q -e 'rewritten' -e 'truncated' '%s'", errf), 0,
	    "the rewrite is logged");
}

Test(diskfull, replay_stops_cleanly_and_resumes)
{
	char sample[600], *out, *ref;
	int rc;

	snprintf(sample, sizeof(sample), "%s/tests/data/sample-mail.log", tu_srcdir());
	write_config(sample, jails_dir(), "root");
	cr_assert_eq(tu_sh("'%s' replay --dry-run --quiet -c '%s' --db '%s/ref.db' '%s'",
	    bin, cfg, dir, sample), 0);
	ref = tu_sh_output("sqlite3 '%s/ref.db' 'SELECT count(*), (SELECT count(*) FROM bans) "
	    "FROM events'", dir);
	/* The DB exists (schema applied), then the disk fills. */
	(void)tu_sh("'%s' replay --dry-run --quiet -c '%s' /dev/null 2>/dev/null", bin, cfg);
	fill_fs();
	rc = tu_sh("'%s' replay --dry-run --quiet -c '%s' '%s' 2>'%s'", bin, cfg, sample, errf);
	cr_assert_eq(rc, 1, "runtime error, exit 1");
	out = tu_sh_output("cat '%s'", errf);
	cr_assert(strstr(out, "/fs/mj.db") != NULL && strstr(out, "disk full") != NULL,
	    "names the DB and the cause: %s", out);
	free(out);
	/* (While it is full, no reader can open the WAL-mode DB either: the
	 * -shm file cannot be made.) */
	cr_assert_eq(tu_sh("rm '%s/filler'", fs), 0);
	out = count_now("PRAGMA integrity_check; SELECT count(*) FROM events;");
	cr_assert_str_eq(out, "ok\n0\n", "nothing half-written: %s", out);
	free(out);
	cr_assert_eq(tu_sh("'%s' replay --dry-run --quiet -c '%s' '%s'", bin, cfg, sample), 0);
	out = tu_sh_output("sqlite3 '%s' 'SELECT count(*), (SELECT count(*) FROM bans) "
	    "FROM events'", db);
	cr_assert_str_eq(out, ref, "the re-run records all: %s vs %s", out, ref);
	free(out);
	free(ref);
}

Test(daemon, database_deleted_while_running_stops_it_and_a_restart_recreates)
{
	pid_t pid;
	int st;
	char *err;

	tu_write(dir, "mail.log", "", logf, sizeof(logf));
	write_config(logf, jails_dir(), "root");
	pid = start_daemon();
	/* (Not sqlite3 first: it would create the file.) */
	cr_assert(err_has("running:"));
	append_failures(logf, "203.0.113.90", "a", 5);
	cr_assert(wait_for("SELECT count(*) FROM bans", "1\n"));
	err = tu_sh_output("cat '%s'", errf);
	cr_assert(strstr(err, "did not exist: created") != NULL, "first start: %s", err);
	free(err);
	cr_assert_eq(tu_sh("rm -f '%s' '%s-wal' '%s-shm'", db, db, db), 0);
	/* Found on the next reconcile tick (every 5 s). */
	for (int i = 0; i < 200 && tu_sh("kill -0 %d 2>/dev/null", (int)pid) == 0; i++) {
		int r = waitpid(pid, &st, WNOHANG);
		if (r == pid) {
			tu_reaped(pid);
			break;
		}
		usleep(50000);
	}
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1, "stopped with exit 1");
	err = tu_sh_output("cat '%s'", errf);
	cr_assert(strstr(err, "mj.db: deleted while open; stopping") != NULL, "%s", err);
	free(err);
	/* A restart makes a new DB, says so, and works. */
	cr_assert_eq(truncate(errf, 0), 0);
	pid = start_daemon();
	cr_assert(err_has("running:"));
	append_failures(logf, "203.0.113.91", "a", 5);
	/* No saved position: the log is read from its start again, which
	 * rebuilds what it can of the lost record. */
	cr_assert(wait_for("SELECT group_concat(target) FROM (SELECT target FROM bans "
	    "ORDER BY target)", "203.0.113.90,203.0.113.91\n"));
	cr_assert_eq(stop_daemon(pid, SIGTERM), 0);
	err = tu_sh_output("cat '%s'", errf);
	cr_assert(strstr(err, "did not exist: created a new, empty one") != NULL, "%s", err);
	free(err);
}

Test(diskfull, db_deleted_while_the_disk_is_full_stops_the_daemon)
{
	char *out;
	pid_t pid;

	tu_write(dir, "mail.log", "", logf, sizeof(logf));
	write_config(logf, jails_dir(), "root");
	pid = start_daemon();
	append_failures(logf, "203.0.113.80", "a", 5);
	cr_assert(wait_for("SELECT count(*) FROM bans", "1\n"));
	cr_assert_eq(stop_daemon(pid, SIGTERM), 0);
	pid = start_daemon();   /* an empty -wal file: the next batch needs blocks */
	cr_assert(wait_for("SELECT count(*) FROM log_position", "1\n"));
	usleep(300000);
	fill_fs();
	append_failures(logf, "203.0.113.81", "b", 5);
	cr_assert(err_has("disk full"), "the batch is refused");
	/* The outage does not stop the loop: a reload and a reopen are done
	 * now, not once writes work again. */
	kill(pid, SIGHUP);
	cr_assert(err_has("reloaded"), "SIGHUP during the outage");
	cr_assert_eq(kill(pid, 0), 0, "still running");
	/* The admin frees space by deleting the big DB: the daemon holds it
	 * open, so no block comes free; retrying would go on for ever. */
	cr_assert_eq(unlink(db), 0);
	cr_assert_eq(wait_exit(pid), 1, "exit 1 during the outage");
	out = tu_sh_output("cat '%s'", errf);
	cr_assert(strstr(out, "mj.db: deleted while open; stopping") != NULL, "%s", out);
	free(out);
}

/* refused_for_good - sql (run by an admin's sqlite3 on the running DB)
 * makes every write of a batch fail for good: the daemon stops with exit 1
 * and a clear message (want) instead of retrying, having recorded nothing
 * of the batch. */
static void
refused_for_good(const char *sql, const char *want)
{
	char *out;
	pid_t pid;

	tu_write(dir, "mail.log", "", logf, sizeof(logf));
	write_config(logf, jails_dir(), "root");
	pid = start_daemon();
	cr_assert(wait_for("SELECT offset FROM log_position", "0\n"), "daemon up");
	cr_assert_eq(tu_sh("sqlite3 '%s' \"%s\"", db, sql), 0, "%s", sql);
	append_failures(logf, "203.0.113.82", "a", 5);
	cr_assert_eq(wait_exit(pid), 1, "exit 1, not a retry loop (see %s)", errf);
	out = tu_sh_output("cat '%s'", errf);
	cr_assert(strstr(out, "mj.db: cannot commit: ") != NULL && strstr(out, want) != NULL &&
	    strstr(out, "retrying cannot help: stopping") != NULL, "%s", out);
	cr_assert(strstr(out, "will be read again") == NULL, "no retry: %s", out);
	cr_assert(strstr(out, "ban ip 203.0.113.82") == NULL, "a ban never committed "
	    "is not logged: %s", out);
	free(out);
}

Test(daemon, a_constraint_that_refuses_every_ban_stops_the_daemon)
{
	char *out;

	refused_for_good("CREATE TRIGGER refuse BEFORE INSERT ON bans BEGIN "
	    "SELECT RAISE(ABORT, 'refused by the test'); END;", "refused by the test");
	out = count_now("SELECT count(*) FROM events; SELECT count(*) FROM bans; "
	    "SELECT offset FROM log_position;");
	cr_assert_str_eq(out, "0\n0\n0\n", "the batch is not half-recorded: %s", out);
	free(out);
}

Test(daemon, a_corrupt_database_stops_the_daemon)
{
	/* log_position's b-tree is now an index's: the next save of a position
	 * finds the wrong kind of page (SQLITE_CORRUPT). */
	refused_for_good("PRAGMA writable_schema = ON; UPDATE sqlite_schema SET rootpage = "
	    "(SELECT rootpage FROM sqlite_schema WHERE name = 'events_time') "
	    "WHERE name = 'log_position'; PRAGMA schema_version = 1000;",
	    "malformed");
}

Test(daemon, sigterm_while_a_write_lock_is_held_stops_promptly)
{
	char marker[700], done[800], *out;
	pid_t pid, cli;

	snprintf(marker, sizeof(marker), "%s/locked", dir);
	snprintf(done, sizeof(done), "%s.done", marker);
	tu_write(dir, "mail.log", "", logf, sizeof(logf));
	write_config(logf, jails_dir(), "root");
	pid = start_daemon();
	cr_assert(wait_for("SELECT offset FROM log_position", "0\n"), "daemon up");
	cli = hold_db("BEGIN EXCLUSIVE;", 30, marker);
	append_failures(logf, "203.0.113.74", "a", 5);
	append_failures(logf, "203.0.113.75", "a", 5);
	cr_assert(err_has("locked by another process"), "the daemon waits for the lock");
	/* The busy wait (up to 60 s) gives up on the stop. */
	cr_assert_eq(stop_daemon(pid, SIGTERM), 0, "a clean stop");
	cr_assert_neq(access(done, F_OK), 0, "stopped while the lock was still held");
	out = tu_sh_output("cat '%s'", errf);
	cr_assert(strstr(out, "lock released") == NULL, "%s", out);
	cr_assert(strstr(out, "stopping") != NULL, "%s", out);
	free(out);
	/* The shell goes; a restart records what the stopped daemon could not. */
	cr_assert_eq(kill(-cli, SIGKILL), 0);
	cr_assert_eq(tu_waitpid(cli, NULL), cli);
	pid = start_daemon();
	cr_assert(wait_for("SELECT count(*) FROM events", "10\n"), "nothing lost");
	cr_assert(wait_for("SELECT group_concat(target) FROM (SELECT target FROM bans "
	    "ORDER BY target)", "203.0.113.74,203.0.113.75\n"), "both banned, once");
	cr_assert_eq(stop_daemon(pid, SIGTERM), 0);
}

/* append_raw - bytes as they are (NULs too) */
static void
append_raw(const char *path, const void *buf, size_t len)
{
	FILE *fp = fopen(path, "a");

	cr_assert_not_null(fp);
	cr_assert_eq(fwrite(buf, 1, len, fp), len);
	cr_assert_eq(fclose(fp), 0);
}

/* append_garbage - what a broken or hostile writer can put in a log: NUL
 * bytes inside a matching line, invalid UTF-8, a 1 MiB line, 8 KiB of
 * binary (fixed pseudo-random bytes), stamps from 1970 and 2100 */
static void
append_garbage(const char *path)
{
	static const char nul[] = "Nov 22 10:00:01 mx postfix/smtpd[1]: warning: "
	    "unknown[192.0.2.201]\0: SASL LOGIN authentication failed: x\n";
	static const char utf8[] = "Nov 22 10:00:01 mx postfix/smtpd[1]: warning: "
	    "unknown[192.0.2.202]: SASL LOGIN authentication failed: \xff\xfe\xc3\n";
	char *big = malloc(1024 * 1024 + 1);
	unsigned char bin[8192];
	uint32_t x = 2463534242u;

	cr_assert_not_null(big);
	memset(big, 'A', 1024 * 1024);
	big[1024 * 1024] = '\n';
	for (size_t i = 0; i < sizeof(bin); i++) {
		x ^= x << 13; x ^= x >> 17; x ^= x << 5;
		bin[i] = (unsigned char)x;
	}
	append_raw(path, nul, sizeof(nul) - 1);
	append_raw(path, utf8, sizeof(utf8) - 1);
	append_raw(path, big, 1024 * 1024 + 1);
	append_raw(path, bin, sizeof(bin));
	append_raw(path, "\n", 1);
	for (int i = 0; i < 6; i++) {
		char line[300];
		int n = snprintf(line, sizeof(line), "1970-01-01T00:00:0%dZ mx postfix/smtpd[1]: "
		    "warning: unknown[192.0.2.203]: SASL LOGIN authentication failed: x\n"
		    "2100-01-01T00:00:0%dZ mx postfix/smtpd[1]: warning: unknown[192.0.2.204]: "
		    "SASL LOGIN authentication failed: x\n", i, i);
		append_raw(path, line, (size_t)n);
	}
	free(big);
}

Test(daemon, garbage_in_the_log_is_counted_and_skipped)
{
	char sum[700], *out;
	pid_t pid;

	tu_write(dir, "mail.log", "", logf, sizeof(logf));
	write_config(logf, jails_dir(), "root");
	pid = start_daemon();
	cr_assert(err_has("running:"));
	append_failures(logf, "203.0.113.110", "a", 2);
	append_garbage(logf);
	append_failures(logf, "203.0.113.110", "a", 3);
	cr_assert(wait_for("SELECT count(*) FROM bans WHERE target = '203.0.113.110'", "1\n"),
	    "the good lines around the garbage still ban");
	/* 5 good lines, 6 from 1970 and 6 from 2100 are events; the NUL and
	 * UTF-8 lines, the long line and the binary are not. */
	cr_assert(wait_for("SELECT count(*) FROM events", "17\n"));
	out = count_now("SELECT count(*) FROM events WHERE ip IN ('192.0.2.201', "
	    "'192.0.2.202')");
	cr_assert_str_eq(out, "0\n", "no event from a line with NUL or bad UTF-8");
	free(out);
	/* 1970 is outside every window: counted, never a ban. */
	out = count_now("SELECT count(*) FROM bans WHERE target = '192.0.2.203'");
	cr_assert_str_eq(out, "0\n");
	free(out);
	/* 2100: the stamp is the log's word (syslog writes it, not the
	 * client); six in a minute make a ban starting now, like any. */
	out = count_now("SELECT count(*) FROM bans WHERE target = '192.0.2.204'");
	cr_assert_str_eq(out, "1\n");
	free(out);
	cr_assert_eq(kill(pid, 0), 0, "still running");
	out = tu_sh_output("cat '%s'", errf);
	cr_assert(strstr(out, "longer than 65536 bytes, skipped") != NULL, "%s", out);
	free(out);
	/* The log becomes a directory, then a FIFO, then a file again. */
	cr_assert_eq(tu_sh("mv '%s' '%s.1' && mkdir '%s'", logf, logf, logf), 0);
	cr_assert(err_has("not a regular file, treated as missing"));
	cr_assert_eq(tu_sh("rmdir '%s' && mkfifo '%s'", logf, logf), 0);
	usleep(1500000);
	cr_assert_eq(kill(pid, 0), 0, "alive with a FIFO at the path");
	cr_assert_eq(tu_sh("rm '%s'", logf), 0);
	append_failures(logf, "203.0.113.111", "a", 5);
	cr_assert(wait_for("SELECT count(*) FROM bans WHERE target = '203.0.113.111'", "1\n"),
	    "the file that comes back is followed");
	cr_assert_eq(stop_daemon(pid, SIGTERM), 0);
	/* replay counts what it skipped, and agrees on the events. */
	snprintf(sum, sizeof(sum), "%s/sum.txt", dir);
	cr_assert_eq(tu_sh("'%s' replay --dry-run -c '%s' --db '%s/r.db' '%s.1' >'%s' 2>/dev/null",
	    bin, cfg, dir, logf, sum), 0);
	out = tu_sh_output("head -1 '%s'", sum);
	cr_assert(strstr(out, ": 17 events,") != NULL, "%s", out);
	cr_assert(strstr(out, " 0 bad lines") == NULL, "bad lines are counted: %s", out);
	free(out);
	fprintf(stderr, "[info] garbage: NUL, bad UTF-8, 1 MiB line, 8 KiB binary, 1970/2100, "
	    "directory, FIFO: survived\n");
}

Test(operator, status_bans_history_on_a_known_db)
{
	char sample[600], *out;

	snprintf(sample, sizeof(sample), "%s/tests/data/sample-mail.log", tu_srcdir());
	write_config(logf, jails_dir(), "root");
	cr_assert_eq(tu_sh("'%s' replay --dry-run --quiet -c '%s' '%s'", bin, cfg, sample), 0);

	out = tu_sh_output("'%s' bans --all -c '%s'", bin, cfg);
	cr_assert(strstr(out, "jail") == out, "header first: %s", out);
	cr_assert(strstr(out, "203.0.113.45") != NULL, "%s", out);
	cr_assert(strstr(out, "newsletter@example.org") != NULL, "%s", out);
	free(out);

	out = tu_sh_output("'%s' bans -c '%s'", bin, cfg);
	cr_assert_str_eq(out, "no active bans or holds\n", "the sample's bans are long over");
	free(out);

	out = tu_sh_output("'%s' history 203.0.113.45 -c '%s'", bin, cfg);
	cr_assert(strstr(out, "sasl-bruteforce") != NULL, "%s", out);
	cr_assert(strstr(out, "2026-") != NULL || strstr(out, "-11-21T") != NULL, "%s", out);
	free(out);

	out = tu_sh_output("'%s' bans --all --json -c '%s'", bin, cfg);
	cr_assert(out[0] == '[', "%s", out);
	cr_assert(strstr(out, "\"target\": \"203.0.113.45\"") != NULL, "%s", out);
	free(out);

	out = tu_sh_output("'%s' status -c '%s'", bin, cfg);
	cr_assert(strstr(out, "daemon: not running") != NULL, "%s", out);
	cr_assert(strstr(out, "sasl-bruteforce") != NULL, "%s", out);
	cr_assert(strstr(out, "sample-mail.log: offset") != NULL, "%s", out);
	free(out);
}

/* status counts every kind recognised in the last hour, also those no jail
 * counts (they are not rows of events, only counted per minute). */
Test(operator, status_counts_events_the_jails_do_not_keep)
{
	FILE *fp;
	char stamp[32], *out;
	time_t now = time(NULL);

	write_config(logf, jails_dir(), "root");
	append_failures(logf, "203.0.113.50", "admin", 3);
	fp = fopen(logf, "a");
	cr_assert_not_null(fp);
	strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", localtime(&now));
	for (int i = 0; i < 4; i++)
		fprintf(fp, "%s mx postfix/postscreen[9]: DNSBL rank 3 for [198.51.100.%d]:4000\n",
		    stamp, i + 1);
	fclose(fp);
	cr_assert_eq(tu_sh("'%s' replay --dry-run --quiet -c '%s' '%s'", bin, cfg, logf), 0);
	out = tu_sh_output("sqlite3 '%s' 'SELECT event, count(*) FROM events GROUP BY event'", db);
	cr_assert_str_eq(out, "auth_failure|3\n", "only what a jail counts is a row");
	free(out);
	out = tu_sh_output("'%s' status -c '%s'", bin, cfg);
	cr_assert(strstr(out, "events in the last hour:\n  auth_failure             3\n"
	    "  postscreen_dnsbl         4\n") != NULL, "%s", out);
	free(out);
}

Test(operator, manual_ban_and_unban_in_dry_run)
{
	char *out;

	write_config(logf, jails_dir(), "root");
	out = tu_sh_output("'%s' ban 192.0.2.1 --for 2h --dry-run -c '%s'", bin, cfg);
	cr_assert(strstr(out, "banned 192.0.2.1 in jail") != NULL, "%s", out);
	free(out);
	cr_assert(wait_for("SELECT expires_at - started_at FROM bans", "7200\n"));
	out = tu_sh_output("'%s' unban 192.0.2.1 --dry-run -c '%s'", bin, cfg);
	cr_assert(strstr(out, "unbanned 192.0.2.1") != NULL, "%s", out);
	free(out);
	cr_assert_eq(tu_sh("'%s' unban 192.0.2.1 --dry-run -c '%s' 2>/dev/null", bin, cfg), 1,
	    "not banned any more: exit 1");
	cr_assert_eq(tu_sh("'%s' ban 300.1.2.3 --dry-run -c '%s' 2>/dev/null", bin, cfg), 2);
	cr_assert_eq(tu_sh("'%s' ban '1.2.3.4; rm -rf /' --dry-run -c '%s' 2>/dev/null", bin,
	    cfg), 2);
}

/*
 * catch_uncommitted - append one failure line at a time (each from its own
 * address: no verdict) until the daemon is seen holding lines it has read
 * and not committed (lines that issue no verdict wait tens of ms for the
 * ones after them); returns how far it had read.  *n counts the lines.
 */
static long long
catch_uncommitted(pid_t pid, int *n)
{
	int fd = tu_open_fd(pid, logf);

	cr_assert_geq(fd, 0, "the daemon has the log open");
	for (int tries = 0; tries < 300; tries++) {
		char ip[32];
		long long pos, saved;

		snprintf(ip, sizeof(ip), "198.51.%d.%d", 100 + *n / 250, 1 + *n % 250);
		append_failures(logf, ip, "a", 1);
		(*n)++;
		usleep(2000);
		pos = tu_fd_offset(pid, fd);
		saved = tu_saved_offset(db, logf);
		if (pos > saved)
			return pos;
	}
	cr_assert_fail("never saw read lines waiting for their commit");
	return -1;
}

Test(daemon, sigterm_commits_the_lines_waiting_for_their_commit)
{
	long long pos;
	char want[32];
	int n = 0;
	pid_t pid;

	tu_write(dir, "mail.log", "", logf, sizeof(logf));
	write_config(logf, jails_dir(), "root");
	pid = start_daemon();
	cr_assert(wait_for("SELECT offset FROM log_position", "0\n"), "daemon up");
	pos = catch_uncommitted(pid, &n);
	cr_assert_eq(stop_daemon(pid, SIGTERM), 0);
	cr_assert_geq(tu_saved_offset(db, logf), pos, "what it had read is saved at the stop");
	/* And counted once: a restart reads on from there. */
	pid = start_daemon();
	for (int i = 0; i < 300 && err_count("running:") < 2; i++)
		usleep(20000);
	cr_assert_eq(err_count("running:"), 2, "restarted");
	snprintf(want, sizeof(want), "%d\n", n);
	cr_assert(wait_for("SELECT count(*) FROM events", want), "every line once");
	cr_assert_eq(stop_daemon(pid, SIGTERM), 0);
}

Test(daemon, sighup_commits_the_open_batch_before_the_reload)
{
	char want[32];
	int n = 0;
	pid_t pid;

	tu_write(dir, "mail.log", "", logf, sizeof(logf));
	write_config(logf, jails_dir(), "root");
	pid = start_daemon();
	cr_assert(wait_for("SELECT offset FROM log_position", "0\n"), "daemon up");
	for (int round = 1; round <= 5; round++) {
		(void)catch_uncommitted(pid, &n);
		/* The jails about to be replaced counted those lines: the batch
		 * is committed before they go, not rolled back with them. */
		kill(pid, SIGHUP);
		for (int i = 0; i < 300 && err_count("reloaded") < round; i++)
			usleep(20000);
		cr_assert_eq(err_count("reloaded"), round, "reload %d done", round);
	}
	snprintf(want, sizeof(want), "%d\n", n);
	cr_assert(wait_for("SELECT count(*) FROM events", want), "every line once, none lost");
	cr_assert_eq(stop_daemon(pid, SIGTERM), 0);
}
