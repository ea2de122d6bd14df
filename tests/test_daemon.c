/*
 * test_daemon - "mailjail run" as a real process following real files
 * (inotify), in dry-run mode (no kernel needed; the nft suite covers that),
 * and the operator commands on a known database.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
	tu_rmrf(dir);
}

TestSuite(daemon, .init = setup, .fini = teardown, .timeout = 120);
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

static pid_t
start_daemon(void)
{
	pid_t pid = fork();

	cr_assert_neq(pid, -1);
	if (pid == 0) {
		FILE *e = freopen(errf, "a", stderr);
		(void)e;
		execl(bin, "mailjail", "run", "--dry-run", "-c", cfg, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static int
stop_daemon(pid_t pid, int sig)
{
	int st;

	kill(pid, sig);
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* wait_for - poll a SQL query until it prints want (or 15 s pass) */
static bool
wait_for(const char *sql, const char *want)
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
	/* A writer appends 30 copies of the sample while the daemon reads. */
	writer = fork();
	cr_assert_neq(writer, -1);
	if (writer == 0) {
		for (int i = 0; i < 30; i++) {
			char cmd[1400];
			/* Dated yesterday: the daemon keeps two days of events. */
			snprintf(cmd, sizeof(cmd), "d=$(date -d yesterday '+%%b %%e'); "
			    "sed \"s/^Nov 21/$d/\" '%s' >> '%s'", sample, logf);
			if (system(cmd) != 0)
				_exit(1);
			usleep(20000);
		}
		_exit(0);
	}
	usleep(250000);
	cr_assert_eq(stop_daemon(pid, SIGTERM), 0, "clean stop mid-stream");
	cr_assert_eq(waitpid(writer, NULL, 0), writer);
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
	usleep(300000);
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
	cr_assert_eq(chmod(dir, 0777), 0);
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

Test(daemon, unknown_user_is_fatal)
{
	pid_t pid;
	int st;

	cr_assert_eq(geteuid(), 0, "this test needs root (CI runs as root)");
	tu_write(dir, "mail.log", "", logf, sizeof(logf));
	write_config(logf, jails_dir(), "no-such-user-mailjail");
	pid = start_daemon();
	cr_assert_eq(waitpid(pid, &st, 0), pid);
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
	if ((pid = fork()) == 0) {
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
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	text = tu_sh_output("cat '%s'", out);
	cr_assert(strstr(text, "203.0.113.61") != NULL, "new file has the new ban: %s", text);
	cr_assert(strstr(text, "203.0.113.60") == NULL, "%s", text);
	free(text);
	text = tu_sh_output("cat '%s'", moved);
	cr_assert(strstr(text, "ban ip 203.0.113.60 jail=sasl-bruteforce level=1") != NULL,
	    "one line per ban with jail, target, level: %s", text);
	free(text);
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
