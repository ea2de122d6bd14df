/*
 * test_nft_daemon - "mailjail run" with real nftables, in a network
 * namespace this test makes for itself (never the host's ruleset): bans a
 * brute-forcing IPv4 and IPv6 address as the lines are appended, spares an
 * ignored one, and restores its bans after "nft flush ruleset" and after
 * its own restart.  If no namespace can be made, the test fails loudly.
 */
#include <criterion/criterion.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

static char dir[256], db[600], bin[512], cfg[600], logf[600], errf[600], jails[600];

static void
enter_netns(void)
{
	cr_assert_eq(geteuid(), 0, "the nftables tests need root (CI runs as root)");
	if (unshare(CLONE_NEWNET) != 0)
		cr_assert_fail("cannot create a network namespace (unshare CLONE_NEWNET): "
		    "this machine cannot run the nftables tests");
	cr_assert_eq(tu_sh("ip link set lo up"), 0);
	cr_assert_eq(tu_sh("nft list ruleset | grep -q . && exit 1 || exit 0"), 0,
	    "a fresh namespace has an empty ruleset");
}

static void
setup(void)
{
	char text[4096];

	enter_netns();
	tu_mkdtemp(dir, sizeof(dir));
	snprintf(db, sizeof(db), "%s/mj.db", dir);
	snprintf(bin, sizeof(bin), "%s/mailjail", tu_builddir());
	snprintf(errf, sizeof(errf), "%s/daemon.err", dir);
	tu_write(dir, "mail.log", "", logf, sizeof(logf));
	tu_write(dir, "test.jail",
	    "[sasl-bruteforce]\nevents = auth_failure\nkey = ip\nfindtime = 10m\n"
	    "maxretry = 5\naction = nft\nbantime = 1h\n"
	    "ignore = 127.0.0.0/8, ::1, 198.51.100.0/24\n", jails, sizeof(jails));
	snprintf(text, sizeof(text),
	    "[mailjail]\nlog = %s\ndb = %s\nrules = %s/rules\njails = %s\nuser = root\n"
	    "[nft]\nports = 25, 465, 587\n", logf, db, tu_srcdir(), jails);
	tu_write(dir, "mailjail.conf", text, cfg, sizeof(cfg));
}

static void
teardown(void)
{
	tu_kill_children();
	tu_rmrf(dir);
}

TestSuite(nft_daemon, .init = setup, .fini = teardown, .timeout = 120);

static pid_t
start_daemon(void)
{
	pid_t pid = tu_fork();

	cr_assert_neq(pid, -1);
	if (pid == 0) {
		FILE *e = freopen(errf, "a", stderr);
		(void)e;
		execl(bin, "mailjail", "run", "-c", cfg, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static void
stop_daemon(pid_t pid)
{
	int st;

	kill(pid, SIGTERM);
	cr_assert_eq(tu_waitpid(pid, &st), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "clean exit");
}

static void
append_failures(const char *ip, int n)
{
	FILE *fp = fopen(logf, "a");
	char stamp[32];
	time_t now = time(NULL);

	cr_assert_not_null(fp);
	strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", localtime(&now));
	for (int i = 0; i < n; i++)
		fprintf(fp, "%s mx postfix/submission/smtpd[7]: warning: unknown[%s]: SASL "
		    "LOGIN authentication failed: UGFzc3dvcmQ6\n", stamp, ip);
	fclose(fp);
}

/* in_set - is addr an element of set (per the nft CLI)? */
static bool
in_set(const char *set, const char *addr)
{
	char *out = tu_sh_output("nft list set inet mailjail %s 2>/dev/null", set);
	bool found = strstr(out, addr) != NULL;

	free(out);
	return found;
}

static bool
wait_in_set(const char *set, const char *addr, int tenths)
{
	for (int i = 0; i < tenths; i++) {
		if (in_set(set, addr))
			return true;
		usleep(100000);
	}
	return false;
}

Test(nft_daemon, bans_v4_and_v6_spares_ignored_and_restores)
{
	pid_t pid = start_daemon();
	char *out;

	for (int i = 0; i < 50 && tu_sh("nft list table inet mailjail >/dev/null 2>&1") != 0; i++)
		usleep(100000);
	append_failures("203.0.113.45", 5);
	append_failures("2001:db8::bad", 5);
	append_failures("198.51.100.7", 5);
	cr_assert(wait_in_set("banned_ipv4", "203.0.113.45", 50), "IPv4 brute-forcer in the set");
	cr_assert(wait_in_set("banned_ipv6", "2001:db8::bad", 50), "IPv6 brute-forcer in the set");
	cr_assert_not(in_set("banned_ipv4", "198.51.100.7"), "ignored address spared");
	out = tu_sh_output("nft list set inet mailjail banned_ipv4");
	cr_assert(strstr(out, "timeout") != NULL || strstr(out, "expires") != NULL,
	    "elements carry a kernel timeout: %s", out);
	free(out);

	/* A firewall reload flushes everything: mailjail puts it back. */
	cr_assert_eq(tu_sh("nft flush ruleset"), 0);
	cr_assert_not(in_set("banned_ipv4", "203.0.113.45"));
	cr_assert(wait_in_set("banned_ipv4", "203.0.113.45", 150), "restored after flush");
	cr_assert(wait_in_set("banned_ipv6", "2001:db8::bad", 10), "IPv6 restored after flush");
	stop_daemon(pid);

	/* Its own restart, with the table gone meanwhile. */
	cr_assert_eq(tu_sh("nft delete table inet mailjail"), 0);
	pid = start_daemon();
	cr_assert(wait_in_set("banned_ipv4", "203.0.113.45", 50), "restored after restart");
	cr_assert(wait_in_set("banned_ipv6", "2001:db8::bad", 10));
	stop_daemon(pid);
}

Test(nft_daemon, manual_ban_and_unban_reach_the_kernel)
{
	char *out;

	out = tu_sh_output("'%s' ban 192.0.2.0/24 --for 2h -c '%s'", bin, cfg);
	cr_assert(strstr(out, "banned 192.0.2.0/24") != NULL, "%s", out);
	free(out);
	cr_assert(in_set("banned_ipv4_net", "192.0.2.0/24"), "prefix in the set");
	out = tu_sh_output("'%s' unban 192.0.2.0/24 -c '%s'", bin, cfg);
	cr_assert(strstr(out, "unbanned") != NULL, "%s", out);
	free(out);
	cr_assert_not(in_set("banned_ipv4_net", "192.0.2.0/24"), "gone from the set");
	cr_assert_eq(tu_sh("'%s' unban 192.0.2.9 -c '%s' 2>/dev/null", bin, cfg), 1,
	    "unknown IP: exit 1");
}

/* err_has - wait until the daemon's stderr says s (or 15 s pass) */
static bool
err_has(const char *s)
{
	return tu_wait_file_has(errf, s);
}

Test(nft_daemon, table_deleted_or_blocked_under_it_no_ban_is_lost)
{
	pid_t pid = start_daemon();
	char *out;

	for (int i = 0; i < 50 && tu_sh("nft list table inet mailjail >/dev/null 2>&1") != 0; i++)
		usleep(100000);
	/* Deleted: found on the next reconcile, re-made, and the ban lands. */
	cr_assert_eq(tu_sh("nft delete table inet mailjail"), 0);
	append_failures("203.0.113.50", 5);
	cr_assert(wait_in_set("banned_ipv4", "203.0.113.50", 150), "ban after the deletion");
	cr_assert(err_has("our table is gone"));

	/* Replaced, in one transaction, by a table with a foreign chain of our
	 * name: mailjail refuses to touch it, the ban fails with its element
	 * named, and stays recorded as active. */
	cr_assert_eq(tu_sh("printf 'delete table inet mailjail\\nadd table inet mailjail\\n"
	    "add chain inet mailjail input\\n' | nft -f -"), 0);
	append_failures("203.0.113.51", 5);
	cr_assert(err_has("nft: adding 203.0.113.51: "), "the element is named");
	cr_assert(err_has("cannot re-create the table"), "the refusal is logged");
	out = tu_sh_output("sqlite3 '%s' \"SELECT count(*) FROM active_bans WHERE "
	    "target = '203.0.113.51'\"", db);
	cr_assert_str_eq(out, "1\n", "the ban is recorded meanwhile: %s", out);
	free(out);
	cr_assert_eq(kill(pid, 0), 0, "still running");

	/* The admin removes the foreign table: both bans are back. */
	cr_assert_eq(tu_sh("nft delete table inet mailjail"), 0);
	cr_assert(wait_in_set("banned_ipv4", "203.0.113.51", 150), "the failed ban landed");
	cr_assert(wait_in_set("banned_ipv4", "203.0.113.50", 10));
	stop_daemon(pid);
}

/* netlink refuses (EPERM: an operator without CAP_NET_ADMIN): the error is
 * said, the ban stays recorded, and the daemon applies it when it starts. */
Test(nft_daemon, refused_by_the_kernel_is_recorded_and_applied_later)
{
	char *out;
	pid_t pid;

	/* Sticky, like /tmp: user nobody makes the DB here, and the config in
	 * it stays root's (cfgfile.h refuses a directory others can write). */
	cr_assert_eq(chmod(dir, 01777), 0);
	/* The DB made by root, writable by the operator. */
	cr_assert_eq(tu_sh("'%s' replay --dry-run --quiet -c '%s' '%s' && chmod 666 '%s'",
	    bin, cfg, logf, db), 0);
	out = tu_sh_output("setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all "
	    "'%s' ban 192.0.2.77 -c '%s' 2>&1; echo rc=$?", bin, cfg);
	cr_assert(strstr(out, "Operation not permitted") != NULL, "the kernel's no: %s", out);
	cr_assert(strstr(out, "recorded, but enforcing failed") != NULL, "%s", out);
	cr_assert(strstr(out, "rc=1") != NULL, "exit 1: %s", out);
	free(out);
	out = tu_sh_output("sqlite3 '%s' \"SELECT count(*) FROM active_bans WHERE target = "
	    "'192.0.2.77'\"", db);
	cr_assert_str_eq(out, "1\n", "never a silent drop: the ban is in the database");
	free(out);
	cr_assert_not(in_set("banned_ipv4", "192.0.2.77"), "not in the kernel yet");
	pid = start_daemon();
	cr_assert(wait_in_set("banned_ipv4", "192.0.2.77", 100), "applied by the daemon's restore");
	stop_daemon(pid);
}
