/*
 * test_fleet - several nodes, one PostgreSQL: real "mailjail run" daemons,
 * each in a network namespace of its own (its own nftables set, its own
 * Postfix maps) following its own log, sharing the database of the test's
 * own PostgreSQL (MAILJAIL_TEST_PG=1: the runner starts it; its unix socket
 * is reached from every namespace).  Never the host's ruleset or cluster.
 *
 * The database URI carries a password (the tests' role "mailjail", scram):
 * no log line, status or error of any node may show it.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
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

#define SECRET "mailjail-test-secret"
#define NODES_MAX 4

struct node {
	char name[16];
	pid_t netns;               /* a child that holds the node's namespace */
	pid_t daemon;
	char dir[400], log[500], cfg[500], err[500], hold_cf[500];
};

static char dir[256], bin[512], db[700], admin_db[700], pfx[400];
static struct node nodes[NODES_MAX];

/* db_with_password - the test database's URI for the role with a password */
static void
db_with_password(const char *plain, char *out, size_t len)
{
	const char *name = plain + strlen("postgresql:///");
	const char *sock = strstr(plain, "host=") + 5;

	snprintf(out, len, "postgresql://mailjail:" SECRET "@/%.*s?host=%.*s",
	    (int)strcspn(name, "?"), name, (int)strcspn(sock, "&"), sock);
}

static void
setup(void)
{
	char path[600];

	cr_assert_eq(geteuid(), 0, "the fleet tests need root (namespaces, nftables)");
	tu_mkdtemp(dir, sizeof(dir));
	cr_assert_eq(chmod(dir, 0755), 0);
	snprintf(bin, sizeof(bin), "%s/mailjail", tu_builddir());
	tu_pg_db("fleet", admin_db, sizeof(admin_db));
	db_with_password(admin_db, db, sizeof(db));
	/* Postfix's lookups (postmap -q) read this main.cf, not the host's. */
	snprintf(pfx, sizeof(pfx), "%s/pfx", dir);
	cr_assert_eq(mkdir(pfx, 0755), 0);
	tu_write(pfx, "main.cf", "compatibility_level = 3.6\n", path, sizeof(path));
	cr_assert_eq(tu_sh("touch -d @%lld '%s'", (long long)time(NULL) - 60, path), 0);
	memset(nodes, 0, sizeof(nodes));
}

/* no_secret - no node's log shows the password */
static void
no_secret(void)
{
	for (int i = 0; i < NODES_MAX; i++) {
		char *text;
		if (nodes[i].err[0] == '\0')
			continue;
		text = tu_sh_output("cat '%s' 2>/dev/null", nodes[i].err);
		cr_assert(strstr(text, SECRET) == NULL, "%s's log shows the password:\n%s",
		    nodes[i].name, text);
		free(text);
	}
}

static void
teardown(void)
{
	tu_kill_children();
	no_secret();
	tu_rmrf(dir);
}

TestSuite(fleet, .init = setup, .fini = teardown, .timeout = 300);

/* netns_holder - a child in a new network namespace, sleeping: the node's
 * namespace lives as long as it does, across the node's daemons */
static pid_t
netns_holder(void)
{
	int ready[2];
	pid_t pid;
	char c;

	cr_assert_eq(pipe(ready), 0);
	if ((pid = tu_fork()) == 0) {
		close(ready[0]);
		if (unshare(CLONE_NEWNET) != 0 || system("ip link set lo up") != 0)
			_exit(1);
		(void)write(ready[1], "x", 1);
		for (;;)
			pause();
	}
	close(ready[1]);
	cr_assert_eq(read(ready[0], &c, 1), 1, "cannot make a network namespace "
	    "(unshare CLONE_NEWNET): this machine cannot run the fleet tests");
	close(ready[0]);
	return pid;
}

/* node_init - node i's directory, log, configuration and namespace */
static struct node *
node_init(int i, const char *name, const char *extra)
{
	struct node *n = &nodes[i];
	char text[4096], d[400];

	snprintf(n->name, sizeof(n->name), "%s", name);
	snprintf(d, sizeof(d), "%s/%d-%s", dir, i, name);
	snprintf(n->dir, sizeof(n->dir), "%s", d);
	cr_assert_eq(mkdir(d, 0755), 0);
	snprintf(n->err, sizeof(n->err), "%s/daemon.err", d);
	snprintf(n->hold_cf, sizeof(n->hold_cf), "sqlite:%s/postfix-hold.cf", d);
	tu_write(n->dir, "mail.log", "", n->log, sizeof(n->log));
	snprintf(text, sizeof(text),
	    "[mailjail]\nlog = %s\ndb = %s\nnode = %s\nrules = %s/rules\njails = %s/jails\n"
	    "user = root\n%s[hold]\nmap = sqlite:%s/hold.db\n[reject]\nmap = sqlite:%s/reject.db\n",
	    n->log, db, name, tu_srcdir(), tu_srcdir(), extra ? extra : "", n->dir, n->dir);
	tu_write(n->dir, "mailjail.conf", text, n->cfg, sizeof(n->cfg));
	n->netns = netns_holder();
	return n;
}

/* in_netns - the calling process joins n's network namespace */
static int
in_netns(const struct node *n)
{
	char path[64];
	int fd, rc;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)n->netns);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	rc = setns(fd, CLONE_NEWNET);
	close(fd);
	return rc;
}

static void
node_start(struct node *n)
{
	pid_t pid = tu_fork();

	if (pid == 0) {
		FILE *e = freopen(n->err, "a", stderr);
		(void)e;
		if (in_netns(n) != 0)
			_exit(126);
		execl(bin, "mailjail", "run", "-c", n->cfg, (char *)NULL);
		_exit(127);
	}
	n->daemon = pid;
	cr_assert(tu_wait_file_has(n->err, "running:"), "%s started", n->name);
}

static void
node_stop(struct node *n)
{
	int st;

	kill(n->daemon, SIGTERM);
	cr_assert_eq(tu_waitpid(n->daemon, &st), n->daemon);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s stops cleanly", n->name);
	n->daemon = 0;
}

/* node_sh - a command in n's namespace (nft, mailjail's operator commands);
 * its output */
static char *
node_sh(const struct node *n, const char *fmt, const char *arg)
{
	char cmd[2048];

	snprintf(cmd, sizeof(cmd), fmt, arg);
	return tu_sh_output("nsenter -t %d -n sh -c '%s' 2>&1", (int)n->netns, cmd);
}

/* in_set - is addr in n's kernel set? */
static bool
in_set(const struct node *n, const char *addr)
{
	char *out = node_sh(n, "nft list set inet mailjail banned_ipv4 %s", "");
	bool found = strstr(out, addr) != NULL;

	free(out);
	return found;
}

static bool
wait_in_set(const struct node *n, const char *addr, bool want)
{
	for (int i = 0; i < 200; i++) {
		if (in_set(n, addr) == want)
			return true;
		usleep(50000);
	}
	return false;
}

/* postmap - what Postfix's own lookup answers for key in n's hold map */
static char *
postmap(const struct node *n, const char *key)
{
	return tu_sh_output("/usr/sbin/postmap -c '%s' -q '%s' '%s' 2>&1", pfx, key, n->hold_cf);
}

static bool
wait_held(const struct node *n, const char *key, const char *want)
{
	for (int i = 0; i < 200; i++) {
		char *out = postmap(n, key);
		bool ok = strstr(out, want) != NULL;
		free(out);
		if (ok)
			return true;
		usleep(50000);
	}
	return false;
}

static void
stamp_now(char *buf, size_t len)
{
	time_t now = time(NULL);

	strftime(buf, len, "%b %e %H:%M:%S", localtime(&now));
}

/* failures - n SASL failures from ip, appended to node's log, now */
static void
failures(const struct node *n, const char *ip, int count)
{
	FILE *fp = fopen(n->log, "a");
	char stamp[32];

	cr_assert_not_null(fp);
	stamp_now(stamp, sizeof(stamp));
	for (int i = 0; i < count; i++)
		fprintf(fp, "%s %s postfix/submission/smtpd[7]: warning: unknown[%s]: SASL "
		    "LOGIN authentication failed: UGFzc3dvcmQ6\n", stamp, n->name, ip);
	fclose(fp);
}

/* submissions - count messages sent by account through node */
static void
submissions(const struct node *n, const char *account, int count, int first_qid)
{
	FILE *fp = fopen(n->log, "a");
	char stamp[32];

	cr_assert_not_null(fp);
	stamp_now(stamp, sizeof(stamp));
	for (int i = 0; i < count; i++)
		fprintf(fp, "%s %s postfix/submission/smtpd[7]: %s%06X: client=client.example.net"
		    "[198.51.100.20], sasl_method=PLAIN, sasl_username=%s\n", stamp, n->name,
		    n->name, first_qid + i, account);
	fclose(fp);
}

static char *
sql(const char *fmt, const char *arg)
{
	return tu_sql(admin_db, fmt, arg);
}

/* 3 failures on mx1 and 2 on mx2: 5 in 10 minutes for the fleet.  The
 * address is banned once, in both nodes' kernel sets. */
Test(fleet, failures_split_three_and_two_are_banned_on_both_nodes)
{
	struct node *a = node_init(0, "mx1", NULL), *b = node_init(1, "mx2", NULL);
	char *out;

	node_start(a);
	node_start(b);
	failures(a, "203.0.113.5", 3);
	failures(b, "203.0.113.5", 2);
	cr_assert(wait_in_set(a, "203.0.113.5", true), "in mx1's set");
	cr_assert(wait_in_set(b, "203.0.113.5", true), "in mx2's set");
	out = sql("SELECT count(*), min(level) FROM bans WHERE target = '%s'", "203.0.113.5");
	cr_assert_str_eq(out, "1|1\n", "one offence, one row");
	free(out);
	out = sql("SELECT node, count(*) FROM events GROUP BY node ORDER BY node%s", "");
	cr_assert_str_eq(out, "mx1|3\nmx2|2\n", "each node's events, recorded as its own");
	free(out);
	node_stop(a);
	node_stop(b);
}

/* 60 messages through mx1, 41 through mx2: over the 100/1h quota for the
 * fleet.  Held once; both nodes' own maps say HOLD to Postfix's lookup. */
Test(fleet, a_quota_split_sixty_and_forty_one_holds_on_both_nodes)
{
	struct node *a = node_init(0, "mx1", NULL), *b = node_init(1, "mx2", NULL);
	char *out;

	node_start(a);
	node_start(b);
	submissions(a, "alice@example.org", 60, 0);
	out = sql("SELECT count(*) FROM bans%s", "");
	cr_assert_str_eq(out, "0\n", "60 alone are under the quota");
	free(out);
	submissions(b, "alice@example.org", 41, 0x1000);
	cr_assert(wait_held(a, "alice@example.org", "HOLD mailjail outbound-quota level 1"),
	    "held in mx1's map");
	cr_assert(wait_held(b, "alice@example.org", "HOLD mailjail outbound-quota level 1"),
	    "held in mx2's map");
	out = sql("SELECT count(*), min(jail), min(target_kind) FROM bans%s", "");
	cr_assert_str_eq(out, "1|outbound-quota|account\n");
	free(out);
	out = postmap(a, "bob@example.org");
	cr_assert_str_eq(out, "", "others are not held");
	free(out);
	/* released on mx2: out of both maps */
	{
		char cmd[1200];
		snprintf(cmd, sizeof(cmd), "%s release alice@example.org -c %s", bin, b->cfg);
		out = node_sh(b, "%s", cmd);
	}
	cr_assert(strstr(out, "released alice@example.org") != NULL, "%s", out);
	free(out);
	for (int i = 0; i < 200; i++) {
		char *pa = postmap(a, "alice@example.org"), *pb = postmap(b, "alice@example.org");
		bool gone = pa[0] == '\0' && pb[0] == '\0';
		free(pa);
		free(pb);
		if (gone)
			break;
		cr_assert_lt(i, 199, "released on every node");
		usleep(50000);
	}
	node_stop(a);
	node_stop(b);
}

/* 4 failures in each log at the same moment: each node reaches 5 with the
 * other's, both decide, the database keeps one row; over several rounds,
 * whichever way the race falls. */
Test(fleet, the_same_offence_on_two_nodes_at_once_is_one_ban_row)
{
	struct node *a = node_init(0, "mx1", NULL), *b = node_init(1, "mx2", NULL);
	char ip[32], *out;

	node_start(a);
	node_start(b);
	for (int r = 1; r <= 8; r++) {
		snprintf(ip, sizeof(ip), "198.18.0.%d", r);
		failures(a, ip, 4);
		failures(b, ip, 4);
		cr_assert(wait_in_set(a, ip, true), "%s in mx1's set", ip);
		cr_assert(wait_in_set(b, ip, true), "%s in mx2's set", ip);
	}
	/* the last batches are committed: no second row comes later */
	cr_assert(tu_wait_sql(admin_db, "SELECT sum(n) FROM event_counts", "64\n"));
	node_stop(a);
	node_stop(b);
	out = sql("SELECT count(*), count(DISTINCT target), max(level) FROM bans%s", "");
	cr_assert_str_eq(out, "8|8|1\n", "one row, level 1, per offence");
	free(out);
	out = sql("SELECT count(*) FROM events%s", "");
	cr_assert_str_eq(out, "64\n");
	free(out);
}

/* An operator's ban on mx1 reaches mx2's set; mx3, started later, restores
 * it; an unban on mx2 lifts it everywhere.  status on any node shows every
 * node, its positions and when it was last seen. */
Test(fleet, operator_commands_act_on_the_fleet)
{
	struct node *a = node_init(0, "mx1", NULL), *b = node_init(1, "mx2", NULL);
	struct node *c = node_init(2, "mx3", NULL);
	char *out;

	node_start(a);
	node_start(b);
	{
		char cmd[1200];
		snprintf(cmd, sizeof(cmd), "%s ban 192.0.2.77 --for 2h -c %s", bin, a->cfg);
		out = node_sh(a, "%s", cmd);
	}
	cr_assert(strstr(out, "banned 192.0.2.77") != NULL, "%s", out);
	cr_assert(strstr(out, SECRET) == NULL, "%s", out);
	free(out);
	cr_assert(wait_in_set(a, "192.0.2.77", true), "in mx1's set (the command's own)");
	cr_assert(wait_in_set(b, "192.0.2.77", true), "in mx2's set, from the fleet");
	failures(b, "203.0.113.99", 1);   /* mx2 has a position to show */

	node_start(c);
	cr_assert(wait_in_set(c, "192.0.2.77", true), "restored by a node started later");

	{
		char cmd[1200];
		snprintf(cmd, sizeof(cmd), "%s unban 192.0.2.77 -c %s", bin, b->cfg);
		out = node_sh(b, "%s", cmd);
	}
	cr_assert(strstr(out, "unbanned 192.0.2.77") != NULL, "%s", out);
	free(out);
	cr_assert(wait_in_set(a, "192.0.2.77", false), "lifted on mx1");
	cr_assert(wait_in_set(b, "192.0.2.77", false), "lifted on mx2");
	cr_assert(wait_in_set(c, "192.0.2.77", false), "lifted on mx3");

	cr_assert(tu_wait_sql(admin_db, "SELECT count(*) FROM log_position WHERE node = 'mx2'"
	    " AND \"offset\" > 0", "1\n"));
	out = tu_sh_output("'%s' status -c '%s' 2>&1", bin, c->cfg);
	cr_assert(strstr(out, "daemon: running") != NULL, "%s", out);
	cr_assert(strstr(out, "node mx3") != NULL, "%s", out);
	for (int i = 0; i < 3; i++)
		cr_assert(strstr(out, nodes[i].name) != NULL, "%s", out);
	cr_assert(strstr(out, "running") != NULL && strstr(out, "ago)") != NULL,
	    "last seen: %s", out);
	cr_assert(strstr(out, b->log) != NULL, "mx2's position: %s", out);
	cr_assert(strstr(out, SECRET) == NULL, "%s", out);
	cr_assert(strstr(out, "mailjail:***@") != NULL, "%s", out);
	free(out);
	out = tu_sh_output("'%s' history 192.0.2.77 -c '%s' 2>&1", bin, c->cfg);
	cr_assert(strstr(out, "manual") != NULL && strstr(out, "mx1") != NULL, "%s", out);
	free(out);
	node_stop(c);
	out = tu_sh_output("'%s' status -c '%s' 2>&1", bin, a->cfg);
	cr_assert(strstr(out, "stopped") != NULL, "mx3 stopped: %s", out);
	free(out);
	node_stop(a);
	node_stop(b);
}

/* Two nodes with one name would mix their positions: the second is refused,
 * saying so; the first goes on. */
Test(fleet, a_second_node_with_the_same_name_is_refused)
{
	struct node *a = node_init(0, "mx1", NULL), *b = node_init(1, "other", NULL);
	char *err;
	int st;

	node_start(a);
	/* b's configuration, but named mx1 */
	cr_assert_eq(tu_sh("sed -i 's/^node = other/node = mx1/' '%s'", b->cfg), 0);
	b->daemon = tu_fork();
	if (b->daemon == 0) {
		FILE *e = freopen(b->err, "a", stderr);
		(void)e;
		if (in_netns(b) != 0)
			_exit(126);
		execl(bin, "mailjail", "run", "-c", b->cfg, (char *)NULL);
		_exit(127);
	}
	cr_assert_eq(tu_waitpid(b->daemon, &st), b->daemon);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1, "refused, exit 1");
	err = tu_sh_output("cat '%s'", b->err);
	cr_assert(strstr(err, "node mx1 is already running") != NULL, "%s", err);
	cr_assert(strstr(err, "[mailjail] node") != NULL, "%s", err);
	free(err);
	cr_assert_eq(kill(a->daemon, 0), 0, "the first one runs on");
	node_stop(a);
}

/* PostgreSQL unreachable at start: exit 1, naming the URI (its password
 * hidden) and libpq's reason. */
Test(fleet, an_unreachable_database_at_start_is_exit_1_with_the_reason)
{
	struct node *a = node_init(0, "mx1", NULL);
	char *out;

	cr_assert_eq(tu_sh("sed -i 's|^db = .*|db = postgresql://mailjail:" SECRET
	    "@/mailjail?host=%s/nonexistent|' '%s'", dir, a->cfg), 0);
	out = tu_sh_output("'%s' run -c '%s' 2>&1; echo rc=$?", bin, a->cfg);
	cr_assert(strstr(out, "rc=1") != NULL, "%s", out);
	cr_assert(strstr(out, "postgresql://mailjail:***@/mailjail?host=") != NULL, "%s", out);
	cr_assert(strstr(out, "No such file or directory") != NULL, "libpq's reason: %s", out);
	cr_assert(strstr(out, SECRET) == NULL, "%s", out);
	free(out);
}

/*
 * The disruption tests: the same lines, appended in rounds to both logs,
 * once undisturbed and once disturbed; then the databases must agree: every
 * line counted once (events per node, distinct, counts) and the same bans.
 * 20 addresses fail 3 times on mx1 and twice on mx2 (banned by the fleet);
 * the rest fail once each.
 */
#define ROUNDS 10
#define PER_ROUND 120

static void
append_round(struct node *a, struct node *b, int round)
{
	char ip[32];

	for (int i = 0; i < PER_ROUND; i++) {
		snprintf(ip, sizeof(ip), "10.%d.%d.1", round, i);
		failures(i % 2 ? a : b, ip, 1);
	}
	for (int k = 0; k < 2; k++) {
		snprintf(ip, sizeof(ip), "203.0.113.%d", round * 2 + k + 1);
		failures(a, ip, 3);
		failures(b, ip, 2);
	}
}

/* caught_up - both nodes saved the end of their logs, and the fleet's bans
 * are in (20 expected) */
static void
caught_up(const char *dbu, struct node *a, struct node *b)
{
	struct node *both[2] = { a, b };

	for (int i = 0; i < 2; i++) {
		struct stat st;
		char q[256], want[64];
		cr_assert_eq(stat(both[i]->log, &st), 0);
		snprintf(q, sizeof(q), "SELECT \"offset\" FROM log_position WHERE node = '%s'",
		    both[i]->name);
		snprintf(want, sizeof(want), "%lld\n", (long long)st.st_size);
		if (!tu_wait_sql(dbu, q, want)) {
			char *err = tu_sh_output("tail -20 '%s'", both[i]->err);
			char *got = tu_sql(dbu, "%s", q);
			cr_assert_fail("%s did not catch up: offset %s, want %s; its log:\n%s",
			    both[i]->name, got, want, err);
		}
	}
	cr_assert(tu_wait_sql(dbu, "SELECT count(DISTINCT target) FROM bans", "20\n"),
	    "the fleet's bans");
}

static char *
digest(const char *dbu)
{
	return tu_sql(dbu, "SELECT node, count(*), count(DISTINCT time || rule || coalesce(ip, ''))"
	    " FROM events GROUP BY node ORDER BY node;"
	    " SELECT node, event, sum(n) FROM event_counts GROUP BY node, event ORDER BY 1, 2;"
	    " SELECT jail, target, level FROM bans ORDER BY jail, target, level");
}

/* run_rounds - both nodes follow the rounds; disturb(round) after some */
static char *
run_rounds(const char *dbu, int first, void (*disturb)(struct node *, struct node *, int))
{
	struct node *a = node_init(first, "mx1", "batch_lines = 40\n");
	struct node *b = node_init(first + 1, "mx2", "batch_lines = 40\n");
	char *d;

	node_start(a);
	node_start(b);
	for (int r = 0; r < ROUNDS; r++) {
		append_round(a, b, r);
		if (disturb != NULL)
			disturb(a, b, r);
		usleep(100 * 1000);
	}
	caught_up(dbu, a, b);
	node_stop(a);
	node_stop(b);
	d = digest(dbu);
	cr_assert(strstr(d, "mx1|") != NULL && strstr(d, "mx2|") != NULL, "%s", d);
	return d;
}

/* reference - the undisturbed run, in a database of its own */
static char *
reference(void)
{
	char ref_admin[700], ref[700], *d;

	tu_pg_db("reference", ref_admin, sizeof(ref_admin));
	db_with_password(ref_admin, ref, sizeof(ref));
	snprintf(db, sizeof(db), "%s", ref);
	d = run_rounds(ref_admin, 0, NULL);
	/* the disturbed run uses the test's own database and new nodes */
	db_with_password(admin_db, db, sizeof(db));
	return d;
}

static void
restart_postgresql(struct node *a, struct node *b, int round)
{
	(void)a; (void)b;
	if (round == 3 || round == 6)
		cr_assert_eq(tu_sh("bash '%s/tests/pg.sh' restart '%s'", tu_srcdir(), tu_pg_dir()), 0,
		    "pg_ctl restart");
}

Test(fleet, a_postgresql_restart_while_lines_arrive_counts_every_line_once)
{
	char *ref = reference(), *got;
	char *err;

	got = run_rounds(admin_db, 2, restart_postgresql);
	cr_assert_str_eq(got, ref, "with restarts:\n%s\nundisturbed:\n%s", got, ref);
	err = tu_sh_output("cat '%s'", nodes[2].err);
	cr_assert(strstr(err, "rolled back and will be read again") != NULL ||
	    strstr(err, "connected again") != NULL, "the outage was seen: %s", err);
	free(err);
	free(got);
	free(ref);
}

static void
kill_mx1(struct node *a, struct node *b, int round)
{
	(void)b;
	if (round != 2 && round != 5 && round != 8)
		return;
	usleep((useconds_t)(round * 7000));   /* somewhere in its batches */
	kill(a->daemon, SIGKILL);
	cr_assert_eq(tu_waitpid(a->daemon, NULL), a->daemon);
	node_start(a);
}

Test(fleet, kill_9_of_a_node_mid_batch_counts_every_line_once)
{
	char *ref = reference(), *got;

	got = run_rounds(admin_db, 2, kill_mx1);
	cr_assert_str_eq(got, ref, "with kill -9:\n%s\nundisturbed:\n%s", got, ref);
	free(got);
	free(ref);
}

/* hook_config - [notify] command: a hook of node name's that leaves each
 * call's environment in dir/calls-NAME/, and [metrics] textfile */
static void
hook_config(const char *name, char *extra, size_t len)
{
	char calls_dir[700], file[64], path[700], text[1024];

	snprintf(calls_dir, sizeof(calls_dir), "%s/calls-%s", dir, name);
	cr_assert_eq(mkdir(calls_dir, 0755), 0);
	snprintf(text, sizeof(text), "#!/bin/sh\nf=$(mktemp '%s/call.XXXXXX') || exit 9\n"
	    "env | grep '^MAILJAIL_' | sort > \"$f\"\ncat > \"$f.json\"\n", calls_dir);
	snprintf(file, sizeof(file), "hook-%s.sh", name);
	tu_write(dir, file, text, path, sizeof(path));
	cr_assert_eq(chmod(path, 0755), 0);
	snprintf(extra, len, "[notify]\ncommand = %s\n[metrics]\ntextfile = %s/%s.prom\n", path,
	    dir, name);
}

/* calls - what node name's hook was told, one line per call: its event,
 * target and node (MAILJAIL_*), in the order of the calls */
static char *
calls(const char *name)
{
	return tu_sh_output("cd '%s/calls-%s' && for f in $(ls -tr | grep -v json); do "
	    "sed -n 's/^MAILJAIL_\\(EVENT\\|TARGET\\|NODE\\)=//p' \"$f\" | tr '\\n' ' '; echo; "
	    "done", dir, name);
}

/* A hold the fleet decides is told once, by the node whose row it is,
 * with the evidence of both nodes' submissions; a release is told by the
 * node it was run on; each node's textfile counts the fleet's holds in
 * force and its own lines. */
Test(fleet, a_verdict_is_told_once_by_the_node_that_made_it)
{
	char extra_a[1200], extra_b[1200], *out, *ca, *cb, *decider, want[1200], cmd[1200];
	struct node *a, *b;

	hook_config("mx1", extra_a, sizeof(extra_a));
	hook_config("mx2", extra_b, sizeof(extra_b));
	a = node_init(0, "mx1", extra_a);
	b = node_init(1, "mx2", extra_b);
	node_start(a);
	node_start(b);
	submissions(a, "alice@example.org", 60, 0);
	submissions(b, "alice@example.org", 41, 0x1000);
	cr_assert(wait_held(a, "alice@example.org", "HOLD"), "held in mx1's map");
	cr_assert(wait_held(b, "alice@example.org", "HOLD"), "held in mx2's map");
	cr_assert(tu_wait_sql(admin_db, "SELECT count(*) FROM notifications WHERE sent_at"
	    " IS NOT NULL", "1\n"), "delivered");
	decider = sql("SELECT node FROM bans%s", "");
	decider[strcspn(decider, "\n")] = '\0';
	out = sql("SELECT node, event, target FROM notifications%s", "");
	snprintf(want, sizeof(want), "%s|hold|alice@example.org\n", decider);
	cr_assert_str_eq(out, want, "queued by the node whose ban row it is");
	free(out);
	sleep(2);
	ca = calls("mx1");
	cb = calls("mx2");
	snprintf(want, sizeof(want), "hold %s alice@example.org \n", decider);
	cr_assert_str_eq(strcmp(decider, "mx1") == 0 ? ca : cb, want);
	cr_assert_str_eq(strcmp(decider, "mx1") == 0 ? cb : ca, "", "the other node tells nothing");
	free(ca);
	free(cb);
	out = tu_sh_output("cat '%s'/calls-%s/*.json", dir, decider);
	cr_assert(strstr(out, "\"submissions\":101") != NULL && strstr(out, "\"clients\":1") != NULL,
	    "the evidence of both nodes: %s", out);
	free(out);

	/* An operator's release on mx2: told by mx2. */
	snprintf(cmd, sizeof(cmd), "%s release alice@example.org -c %s", bin, b->cfg);
	out = node_sh(b, "%s", cmd);
	cr_assert(strstr(out, "released alice@example.org") != NULL, "%s", out);
	free(out);
	for (int i = 0; i < 200; i++) {
		cb = calls("mx2");
		bool told = strstr(cb, "lift mx2 alice@example.org") != NULL;
		free(cb);
		if (told)
			break;
		cr_assert_lt(i, 199, "mx2 tells of the release it made");
		usleep(50000);
	}
	out = sql("SELECT node, count(*) FROM notifications GROUP BY node ORDER BY node%s", "");
	snprintf(want, sizeof(want), strcmp(decider, "mx2") == 0 ? "mx2|2\n" : "mx1|1\nmx2|1\n");
	cr_assert_str_eq(out, want);
	free(out);
	free(decider);
	node_stop(a);
	node_stop(b);
	/* Written at stop: each node's own lines, saved under its name. */
	out = tu_sh_output("grep -h '^mailjail_lines_total' '%s'/mx1.prom '%s'/mx2.prom", dir, dir);
	snprintf(want, sizeof(want), "mailjail_lines_total{source=\"%s\"} 60\n"
	    "mailjail_lines_total{source=\"%s\"} 41\n", a->log, b->log);
	cr_assert_str_eq(out, want);
	free(out);
	out = sql("SELECT node, value FROM metric_counters WHERE name = 'mailjail_lines_total'"
	    " ORDER BY node%s", "");
	cr_assert_str_eq(out, "mx1|60\nmx2|41\n");
	free(out);
}
