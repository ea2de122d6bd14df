/*
 * test_store - the store: schema, events, bans, positions, views.  Suite
 * "store" runs on the store under test (a real SQLite file in a temp dir,
 * or with MAILJAIL_TEST_DB=pgsql a fresh database in the test's own
 * PostgreSQL), read back with the sqlite3 CLI or psql where the contract
 * is what an admin sees; "store_sqlite" and "store_pgsql" are what only
 * one backend has (meson runs each with its own filter).
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store.h"
#include "testutil.h"

static char dir[256], db[512];

static void
setup(void)
{
	tu_mkdtemp(dir, sizeof(dir));
	tu_db(dir, "mj.db", db, sizeof(db));
}

static void
setup_sqlite(void)
{
	tu_mkdtemp(dir, sizeof(dir));
	snprintf(db, sizeof(db), "%s/mj.db", dir);
}

static void
setup_pgsql(void)
{
	tu_mkdtemp(dir, sizeof(dir));
	tu_pg_db("mj", db, sizeof(db));
}

static void
teardown(void)
{
	tu_rmrf(dir);
}

static void
teardown_pgsql(void)
{
	tu_kill_children();
	tu_rmrf(dir);
}

static struct verdict
mkverdict(const char *jail, const char *target, int level, int64_t start, int64_t len)
{
	struct verdict v;

	memset(&v, 0, sizeof(v));
	v.jail = jail;
	v.kind = strchr(target, '@') ? TARGET_ACCOUNT : TARGET_IP;
	snprintf(v.target, sizeof(v.target), "%s", target);
	v.level = level;
	v.actions = v.kind == TARGET_IP ? ACTION_NFT : ACTION_HOLD;
	v.started_at = start;
	v.expires_at = start + len;
	snprintf(v.reason, sizeof(v.reason), "5 auth_failure in 10m");
	return v;
}

TestSuite(store, .init = setup, .fini = teardown);
TestSuite(store_sqlite, .init = setup_sqlite, .fini = teardown);
TestSuite(store_pgsql, .init = setup_pgsql, .fini = teardown_pgsql);

Test(store_sqlite, creates_schema_in_wal_mode)
{
	struct store *st;
	char err[256], *out;

	cr_assert_eq(store_open(db, true, &st, err, sizeof(err)), 0, "%s", err);
	store_close(st);
	out = tu_sh_output("sqlite3 '%s' 'PRAGMA journal_mode; PRAGMA user_version;'", db);
	cr_assert_str_eq(out, "wal\n5\n");
	free(out);
	/* Reopening migrates nothing and works. */
	cr_assert_eq(store_open(db, false, &st, err, sizeof(err)), 0, "%s", err);
	store_close(st);
}

Test(store_sqlite, version_1_db_gains_journal_cursors_and_keeps_positions)
{
	struct store *st;
	char err[256], schema[700], *out, *cur = NULL;

	/* A DB made by the version-1 binary: schema 001 only. */
	snprintf(schema, sizeof(schema), "%s/schemas/001-initial.sql", tu_srcdir());
	cr_assert_eq(tu_sh("sqlite3 '%s' < '%s' && sqlite3 '%s' \"PRAGMA user_version = 1; "
	    "INSERT INTO log_position VALUES ('/var/log/mail.log', 7, 42, 9, 1)\"",
	    db, schema, db), 0);
	cr_assert_eq(store_open(db, false, &st, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(store_get_cursor(st, "journal:", &cur), 0);
	cr_assert_eq(store_begin(st), 0);
	cr_assert_eq(store_save_cursor(st, "journal:", "s=1;i=2"), 0);
	cr_assert_eq(store_save_cursor(st, "journal:", "s=1;i=3"), 0, "an update");
	cr_assert_eq(store_commit(st), 0);
	cr_assert_eq(store_get_cursor(st, "journal:", &cur), 1);
	cr_assert_str_eq(cur, "s=1;i=3");
	free(cur);
	store_close(st);
	out = tu_sh_output("sqlite3 '%s' 'PRAGMA user_version; SELECT offset FROM "
	    "log_position; SELECT count(*) FROM journal_cursor'", db);
	cr_assert_str_eq(out, "5\n42\n1\n");
	free(out);
}

static int
count_event(void *arg, const struct event *ev)
{
	int64_t *n = arg;

	(void)ev;
	(*n)++;
	return 0;
}

struct two_events {
	int n;
	struct event ev[2];
};

/* keep_two - the first two events read (their rule/type are not kept) */
static int
keep_two(void *arg, const struct event *ev)
{
	struct two_events *t = arg;

	if (t->n < 2)
		t->ev[t->n++] = *ev;
	return 0;
}

/* A database made by the first schema (with its index on events(time)) is
 * migrated: the index goes, the rows stay and are read back in order. */
Test(store_sqlite, version_1_database_is_migrated)
{
	struct store *st;
	struct two_events seen = { .n = 0 };
	int64_t n = 0;
	char err[256], *out;

	cr_assert_eq(tu_sh("sqlite3 '%s' < '%s/schemas/001-initial.sql' && sqlite3 '%s' "
	    "\"PRAGMA user_version = 1; INSERT INTO events(time, rule, event, ip) VALUES"
	    " (20, 'r', 'auth_failure', '192.0.2.1'), (10, 'r', 'auth_failure', '192.0.2.2')\"",
	    db, tu_srcdir(), db), 0);
	out = tu_sh_output("sqlite3 '%s' \"SELECT name FROM sqlite_master WHERE type = 'index'"
	    " AND tbl_name = 'events'\"", db);
	cr_assert_str_eq(out, "events_time\n");
	free(out);
	cr_assert_eq(store_open(db, false, &st, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(store_each_event_since(st, 0, keep_two, &seen), 0);
	cr_assert_eq(store_each_event_since(st, 0, count_event, &n), 0);
	store_close(st);
	cr_assert_eq(n, 2);
	cr_assert_eq(seen.n, 2);
	cr_assert_eq(seen.ev[0].time, 20, "in the order added");
	cr_assert_str_eq(seen.ev[1].ip, "192.0.2.2");
	out = tu_sh_output("sqlite3 '%s' \"PRAGMA user_version; SELECT count(*) FROM"
	    " sqlite_master WHERE type = 'index' AND tbl_name = 'events';"
	    " SELECT minute || ' ' || rule || ' ' || event || ' ' || n FROM event_counts\"", db);
	cr_assert_str_eq(out, "5\n0\n0 r auth_failure 2\n", "the old rows are counted");
	free(out);
}

Test(store_sqlite, missing_db_without_create_is_an_error)
{
	struct store *st;
	char err[256];

	cr_assert_eq(store_open(db, false, &st, err, sizeof(err)), -1);
	cr_assert(strstr(err, "No such file") != NULL, "%s", err);
}

Test(store_sqlite, not_a_database_is_a_clear_error)
{
	struct store *st;
	char err[256], path[512];

	tu_write(dir, "junk.db", "this is not a database, just text long enough\n",
	    path, sizeof(path));
	cr_assert_eq(store_open(path, false, &st, err, sizeof(err)), -1);
	cr_assert(strstr(err, "not a database") != NULL, "%s", err);
}

Test(store_sqlite, newer_schema_is_refused)
{
	struct store *st;
	char err[256];

	cr_assert_eq(tu_sh("sqlite3 '%s' 'PRAGMA user_version = 99'", db), 0);
	cr_assert_eq(store_open(db, false, &st, err, sizeof(err)), -1);
	cr_assert(strstr(err, "newer") != NULL, "%s", err);
}

Test(store, ban_history_and_active_bans_views)
{
	struct store *st;
	struct verdict v1 = mkverdict("sasl-bruteforce", "192.0.2.7", 1, 1700000000, 3600);
	struct verdict v2 = mkverdict("outbound-quota", "alice@example.org", 2,
	    (int64_t)time(NULL) - 10, 86400);
	char err[256], *out;

	cr_assert_eq(store_open(db, true, &st, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(store_begin(st), 0);
	cr_assert_eq(store_add_ban(st, &v1, NULL), 0);
	cr_assert_eq(store_add_ban(st, &v2, NULL), 0);
	cr_assert_eq(store_commit(st), 0);
	store_close(st);

	out = tu_sql(db, "SELECT jail, target, target_kind, level, started_at, expires_at, "
	    "CASE WHEN lifted_at IS NULL THEN 1 ELSE 0 END FROM ban_history");
	/* newest first; the old ban shows its ISO times */
	cr_assert(strstr(out, "outbound-quota|alice@example.org|account|2|") == out, "%s", out);
	cr_assert(strstr(out, "\nsasl-bruteforce|192.0.2.7|ip|1|2023-11-14T22:13:20Z|"
	    "2023-11-14T23:13:20Z|1\n") != NULL, "%s", out);
	free(out);
	out = tu_sql(db, "SELECT target FROM active_bans");
	cr_assert_str_eq(out, "alice@example.org\n", "only the ban in force now");
	free(out);
}

Test(store, crafted_target_is_data_not_sql)
{
	struct store *st;
	struct verdict v = mkverdict("q", "x'); DROP TABLE bans; --@evil", 1, 1, 10);
	char err[256], *out;

	cr_assert_eq(store_open(db, true, &st, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(store_begin(st), 0);
	cr_assert_eq(store_add_ban(st, &v, NULL), 0);
	cr_assert_eq(store_commit(st), 0);
	store_close(st);
	out = tu_sql(db, "SELECT (SELECT count(*) FROM bans), target FROM bans");
	cr_assert_str_eq(out, "1|x'); DROP TABLE bans; --@evil\n");
	free(out);
}

Test(store, rollback_forgets_the_batch)
{
	struct store *st;
	struct log_position pos = { .inode = 42, .offset = 1000, .first_hash = 7 };
	struct log_position got;
	char err[256];

	snprintf(pos.path, sizeof(pos.path), "/var/log/mail.log");
	cr_assert_eq(store_open(db, true, &st, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(store_get_position(st, pos.path, &got), 0);
	cr_assert_eq(store_begin(st), 0);
	cr_assert_eq(store_save_position(st, &pos), 0);
	cr_assert_eq(store_rollback(st), 0);
	cr_assert_eq(store_get_position(st, pos.path, &got), 0, "rolled back");

	pos.first_hash = UINT64_MAX - 5;   /* stored as signed, read back intact */
	cr_assert_eq(store_begin(st), 0);
	cr_assert_eq(store_save_position(st, &pos), 0);
	cr_assert_eq(store_commit(st), 0);
	cr_assert_eq(store_get_position(st, pos.path, &got), 1);
	cr_assert_eq(got.inode, 42);
	cr_assert_eq(got.offset, 1000);
	cr_assert_eq(got.first_hash, UINT64_MAX - 5);
	store_close(st);
}

/* A stop already asked for: the busy wait must not wait at all (without
 * the flag this test would wait out STORE_BUSY_MS, a minute). */
static volatile sig_atomic_t stop_now = 1;

Test(store_sqlite, a_lock_is_transient_and_a_stop_ends_the_wait, .timeout = 30)
{
	struct store *a, *b;
	char err[256];

	cr_assert_eq(store_open(db, true, &a, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(store_open(db, false, &b, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(store_begin(a), 0, "a holds the write lock");
	store_set_stop_flag(b, &stop_now);
	cr_assert_eq(store_begin(b), -1, "b gives up at once");
	cr_assert(store_error_is_transient(b), "locked: worth a retry (%s)", store_errmsg(b));
	cr_assert(strstr(store_errmsg(b), "locked") != NULL, "%s", store_errmsg(b));
	cr_assert_eq(store_rollback(a), 0);
	store_set_stop_flag(b, NULL);
	cr_assert_eq(store_begin(b), 0, "the lock is free again");
	cr_assert(!store_error_is_transient(b), "begin forgets the last failure");
	cr_assert_eq(store_rollback(b), 0);
	store_close(a);
	store_close(b);
}

Test(store_sqlite, a_constraint_is_not_transient_and_survives_the_rollback)
{
	struct store *st;
	struct verdict v = mkverdict("sasl", "192.0.2.9", 1, 1000, 600);
	char err[256];

	cr_assert_eq(store_open(db, true, &st, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(tu_sh("sqlite3 '%s' \"CREATE TRIGGER no BEFORE INSERT ON bans BEGIN "
	    "SELECT RAISE(ABORT, 'no bans today'); END;\"", db), 0);
	cr_assert_eq(store_begin(st), 0);
	cr_assert_eq(store_add_ban(st, &v, NULL), -1);
	cr_assert(!store_error_is_transient(st), "a constraint does not clear by itself");
	/* The statement alone was undone: ROLLBACK runs, and the reason for it
	 * is what stays reported. */
	cr_assert_eq(store_rollback(st), 0);
	cr_assert(!store_error_is_transient(st));
	cr_assert(strstr(store_errmsg(st), "no bans today") != NULL, "%s", store_errmsg(st));
	/* A failure that is no DB call's is not transient either. */
	store_clear_error(st);
	cr_assert(!store_error_is_transient(st));
	cr_assert_str_eq(store_errmsg(st), "no database error (out of memory?)");
	store_close(st);
}

struct collected {
	int n;
	struct event ev[8];
	char rule[8][64], type[8][64];
	int64_t ban_start[8];
	int nbans;
	unsigned actions[8];
};

static int
collect_event(void *arg, const struct event *ev)
{
	struct collected *c = arg;

	if (c->n < 8) {
		c->ev[c->n] = *ev;
		snprintf(c->rule[c->n], 64, "%s", ev->rule);
		snprintf(c->type[c->n], 64, "%s", ev->type);
		c->n++;
	}
	return 0;
}

static int
collect_ban(void *arg, const struct stored_ban *b)
{
	struct collected *c = arg;

	if (c->nbans < 8) {
		c->actions[c->nbans] = b->actions;
		c->ban_start[c->nbans++] = b->started_at;
	}
	return 0;
}

Test(store, events_and_bans_read_back_for_restore)
{
	struct store *st;
	struct event e = { .rule = "sasl-auth-failed", .type = "auth_failure", .time = 100,
	    .ip = "2001:db8::1", .user = "", .sender = "", .qid = "", .nrcpt = -1 };
	struct event q = { .rule = "qmgr", .type = "queued", .time = 200, .ip = "",
	    .user = "", .sender = "a@b", .qid = "ABC123", .nrcpt = 3 };
	struct event d = { .rule = "gmail", .type = "remote_reject", .time = 120,
	    .qid = "4Wy9rQ2dx2dz8vdt", .nrcpt = -1, .rcpt = "bob@gmail.example" };
	struct event l = { .rule = "filter", .type = "requeued", .time = 110,
	    .qid = "ABC123", .nrcpt = -1, .newqid = "DEF456" };
	struct verdict v = mkverdict("j", "2001:db8::1", 1, 150, 100);
	struct collected c;
	char err[256];
	int64_t newest;

	memset(&c, 0, sizeof(c));
	cr_assert_eq(store_open(db, true, &st, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(store_begin(st), 0);
	cr_assert_eq(store_add_event(st, &q), 0);
	cr_assert_eq(store_add_event(st, &e), 0);
	cr_assert_eq(store_add_event(st, &l), 0);
	cr_assert_eq(store_add_event(st, &d), 0);
	cr_assert_eq(store_add_ban(st, &v, NULL), 0);
	cr_assert_eq(store_commit(st), 0);

	cr_assert_eq(store_each_event_since(st, 0, collect_event, &c), 0);
	cr_assert_eq(c.n, 4);
	/* a delivery's recipient and the queue id a message goes on as */
	cr_assert_str_eq(c.ev[2].newqid, "DEF456");
	cr_assert_str_eq(c.ev[2].rcpt, "");
	cr_assert_str_eq(c.ev[3].rcpt, "bob@gmail.example");
	cr_assert_str_eq(c.ev[3].qid, "4Wy9rQ2dx2dz8vdt", "a long queue id");
	cr_assert_str_eq(c.ev[3].newqid, "");
	/* in the order added (the order they were counted), not by time */
	cr_assert_str_eq(c.type[0], "queued");
	cr_assert_str_eq(c.ev[0].qid, "ABC123");
	cr_assert_eq(c.ev[0].nrcpt, 3);
	cr_assert_eq(c.ev[1].time, 100);
	cr_assert_str_eq(c.ev[1].ip, "2001:db8::1");
	cr_assert_eq(c.ev[1].nrcpt, -1);
	c.n = 0;
	cr_assert_eq(store_each_event_since(st, 150, collect_event, &c), 0);
	cr_assert_eq(c.n, 1);

	cr_assert_eq(store_each_ban_since(st, 0, collect_ban, &c), 0);
	cr_assert_eq(c.nbans, 1);
	cr_assert_eq(c.actions[0], ACTION_NFT);
	c.nbans = 0;
	cr_assert_eq(store_each_active_ban(st, 249, collect_ban, &c), 0);
	cr_assert_eq(c.nbans, 1);
	c.nbans = 0;
	cr_assert_eq(store_each_active_ban(st, 250, collect_ban, &c), 0);
	cr_assert_eq(c.nbans, 0, "expired at expires_at");

	cr_assert_eq(store_newest_time(st, &newest), 0);
	cr_assert_eq(newest, 200);

	cr_assert_eq(store_begin(st), 0);
	cr_assert_eq(store_lift_bans(st, NULL, "2001:db8::1", 160), 1);
	cr_assert_eq(store_commit(st), 0);
	cr_assert_eq(store_each_active_ban(st, 170, collect_ban, &c), 0);
	cr_assert_eq(c.nbans, 0, "lifted");

	cr_assert_eq(store_purge_events(st, 150), 0);
	c.n = 0;
	cr_assert_eq(store_each_event_since(st, 0, collect_event, &c), 0);
	cr_assert_eq(c.n, 1);
	store_close(st);
}

/* Events are written in multi-row INSERTs: a batch that is not a multiple
 * of the row count, reads inside the transaction, rollback and commit all
 * see exactly the events added. */
Test(store, buffered_events_exactly_once)
{
	struct store *st;
	struct event e = { .rule = "r", .type = "auth_failure", .time = 1000,
	    .ip = "192.0.2.1", .nrcpt = -1 };
	char err[256], *out;
	int64_t n = 0, newest = 0;

	cr_assert_eq(store_open(db, true, &st, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(store_begin(st), 0);
	for (int i = 0; i < 150; i++) {
		e.time = 1000 + i;
		snprintf(e.qid, sizeof(e.qid), "Q%d", i);
		cr_assert_eq(store_add_event(st, &e), 0);
	}
	cr_assert_eq(store_newest_time(st, &newest), 0);
	cr_assert_eq(newest, 1149, "a read in the transaction sees every event added");
	cr_assert_eq(store_rollback(st), 0);
	cr_assert_eq(store_each_event_since(st, 0, count_event, &n), 0);
	cr_assert_eq(n, 0, "rolled back, including rows not yet written");

	cr_assert_eq(store_begin(st), 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(store_add_event(st, &e), 0);
	cr_assert_eq(store_rollback(st), 0);
	cr_assert_eq(store_begin(st), 0);
	for (int i = 0; i < 131; i++) {
		e.time = 2000 + i;
		snprintf(e.qid, sizeof(e.qid), "Q%d", i);
		cr_assert_eq(store_add_event(st, &e), 0);
	}
	cr_assert_eq(store_commit(st), 0);
	/* outside a transaction: written at once */
	e.time = 5000;
	cr_assert_eq(store_add_event(st, &e), 0);
	store_close(st);
	out = tu_sql(db, "SELECT count(*), count(DISTINCT qid), min(time), max(time),"
	    " sum(CASE WHEN ip = '192.0.2.1' THEN 1 ELSE 0 END),"
	    " sum(CASE WHEN nrcpt IS NULL THEN 1 ELSE 0 END) FROM events");
	cr_assert_str_eq(out, "132|131|2000|5000|132|132\n");
	free(out);
}

static int
collect_count(void *arg, const char *name, int64_t n)
{
	char *buf = arg;

	snprintf(buf + strlen(buf), 256 - strlen(buf), "%s=%lld ", name, (long long)n);
	return 0;
}

/* Counted-only events: summed per minute and rule, exactly once through
 * rollback and commit, read by minute, purged with their minutes. */
Test(store, counted_events_per_minute)
{
	struct store *st;
	struct event e = { .rule = "postscreen-dnsbl", .type = "postscreen_dnsbl",
	    .time = 6000, .ip = "192.0.2.1", .nrcpt = -1 };
	struct event f = { .rule = "sasl-auth-failed", .type = "auth_failure",
	    .time = 6030, .ip = "192.0.2.2", .nrcpt = -1 };
	char err[256], buf[256] = "", *out;

	cr_assert_eq(store_open(db, true, &st, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(store_begin(st), 0);
	cr_assert_eq(store_count_event(st, &e), 0);
	cr_assert_eq(store_rollback(st), 0);
	cr_assert_eq(store_begin(st), 0);
	for (int i = 0; i < 3000; i++) {
		e.time = 6000 + i;             /* minutes 100 .. 149: one slot each */
		cr_assert_eq(store_count_event(st, &e), 0);
	}
	cr_assert_eq(store_add_event(st, &f), 0);
	cr_assert_eq(store_event_counts_since(st, 0, collect_count, buf), 0);
	cr_assert_str_eq(buf, "auth_failure=1 postscreen_dnsbl=3000 ", "seen in the transaction");
	cr_assert_eq(store_commit(st), 0);
	buf[0] = '\0';
	/* since 8939 is in minute 148: minutes 148 and 149 */
	cr_assert_eq(store_event_counts_since(st, 8939, collect_count, buf), 0);
	cr_assert_str_eq(buf, "postscreen_dnsbl=120 ");
	cr_assert_eq(store_purge_events(st, 6061), 0);   /* minute 101: 100 goes */
	store_close(st);
	out = tu_sql(db, "SELECT count(*), sum(n), min(minute) FROM event_counts;"
	    " SELECT count(*) FROM events");
	cr_assert_str_eq(out, "49|2940|101\n0\n", "%s", out);
	free(out);
}

/* ---- operator signals (notify.h, metrics.h) ------------------------------ */

static struct stored_notification
mknote(const char *event, const char *target, bool digest, int64_t ban_id, int64_t now)
{
	struct stored_notification n;

	memset(&n, 0, sizeof(n));
	n.event = event;
	n.digest = digest;
	n.ban_id = ban_id;
	n.jail = "quota";
	n.target = target;
	n.target_kind = strchr(target, '.') && !strchr(target, '@') ? "ip" : "account";
	n.level = 2;
	n.reason = "4 messages in 1h over limit 3/1h";
	n.started_at = now;
	n.expires_at = now + 3600;
	n.evidence_key = strcmp(n.target_kind, "account") == 0 ? "account" : NULL;
	n.evidence_window = 3600;
	n.node = "mx1";
	n.created_at = now;
	return n;
}

/* notes_seen - "id:event:target:digest:done:attempts:due;" per open row */
static int
notes_seen(void *arg, const struct stored_notification *n)
{
	char *buf = arg;
	size_t len = strlen(buf);

	snprintf(buf + len, 1024 - len, "%lld:%s:%s:%d:%u:%d:%lld;", (long long)n->id, n->event,
	    n->target, n->digest, n->done, n->attempts, (long long)n->due_at);
	return 0;
}

/* The outbox round trip: queued in a batch (gone with its rollback), read
 * back open in id order with every field, delivered channel by channel,
 * retried, given up. */
Test(store, the_outbox_queues_reads_and_marks_notifications)
{
	struct store *st;
	struct stored_notification a = mknote("hold", "alice", false, 7, 1000),
	    b = mknote("ban", "192.0.2.9", true, 0, 1001), c = mknote("lift", "bob", false, 0, 1002);
	char err[256], seen[1024] = "", want[1024], *out;
	int64_t id_a = 0, n = -1;

	cr_assert_eq(store_open(db, true, &st, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(store_begin(st), 0);
	cr_assert_eq(store_queue_notification(st, &a, NULL), 0);
	cr_assert_eq(store_rollback(st), 0);
	cr_assert_eq(store_count_open_notifications(st, &n), 0);
	cr_assert_eq(n, 0, "rolled back with its batch");

	cr_assert_eq(store_begin(st), 0);
	cr_assert_eq(store_queue_notification(st, &a, &id_a), 0, "%s", store_errmsg(st));
	cr_assert_eq(store_queue_notification(st, &b, NULL), 0);
	cr_assert_eq(store_queue_notification(st, &c, NULL), 0);
	cr_assert_eq(store_commit(st), 0, "%s", store_errmsg(st));
	cr_assert_gt(id_a, 0);
	cr_assert_eq(store_count_open_notifications(st, &n), 0);
	cr_assert_eq(n, 3);
	cr_assert_eq(store_each_open_notification(st, 10, notes_seen, seen), 0);
	snprintf(want, sizeof(want), "%lld:hold:alice:0:0:0:1000;%lld:ban:192.0.2.9:1:0:0:1001;"
	    "%lld:lift:bob:0:0:0:1002;", (long long)id_a, (long long)id_a + 1,
	    (long long)id_a + 2);
	cr_assert_str_eq(seen, want);
	seen[0] = '\0';
	cr_assert_eq(store_each_open_notification(st, 1, notes_seen, seen), 0);
	cr_assert(strncmp(seen, want, strlen(seen)) == 0 && strchr(seen, ';')[1] == '\0',
	    "at most max, oldest first: %s", seen);

	/* Mail delivered, the command not yet: still open.  Then both: sent. */
	cr_assert_eq(store_notification_delivered(st, id_a, STORE_CHANNEL_MAIL,
	    STORE_CHANNEL_MAIL | STORE_CHANNEL_COMMAND, 1100), 0);
	cr_assert_eq(store_count_open_notifications(st, &n), 0);
	cr_assert_eq(n, 3);
	cr_assert_eq(store_notification_delivered(st, id_a, STORE_CHANNEL_COMMAND,
	    STORE_CHANNEL_MAIL | STORE_CHANNEL_COMMAND, 1200), 0);
	cr_assert_eq(store_notification_retry(st, id_a + 1, 1500, "exit 3"), 0);
	cr_assert_eq(store_notification_gave_up(st, id_a + 2, 90000, "connection refused"), 0);
	cr_assert_eq(store_count_open_notifications(st, &n), 0);
	cr_assert_eq(n, 1);
	seen[0] = '\0';
	cr_assert_eq(store_each_open_notification(st, 10, notes_seen, seen), 0);
	snprintf(want, sizeof(want), "%lld:ban:192.0.2.9:1:0:1:1500;", (long long)id_a + 1);
	cr_assert_str_eq(seen, want);
	store_close(st);
	/* (The node column: the row's for SQLite, the store's for a fleet.) */
	out = tu_sql(db, "SELECT done, coalesce(sent_at, 0), attempts, coalesce(last_error, '-'),"
	    " coalesce(gave_up_at, 0), coalesce(ban_id, 0), coalesce(evidence_key, '-')"
	    " FROM notifications ORDER BY id");
	cr_assert_str_eq(out, "3|1200|0|-|0|7|account\n0|0|1|exit 3|0|0|-\n"
	    "0|0|1|connection refused|90000|0|account\n");
	free(out);
}

static struct event
submission(const char *account, const char *ip, const char *qid, int64_t t)
{
	struct event e = { .rule = "submission-auth", .type = "submission", .time = t,
	    .nrcpt = -1 };

	snprintf(e.user, sizeof(e.user), "%s", account);
	snprintf(e.ip, sizeof(e.ip), "%s", ip);
	snprintf(e.qid, sizeof(e.qid), "%s", qid);
	return e;
}

static struct event
queued(const char *sender, const char *qid, long nrcpt, int64_t t)
{
	struct event e = { .rule = "qmgr-queued", .type = "queued", .time = t, .nrcpt = nrcpt };

	snprintf(e.sender, sizeof(e.sender), "%s", sender);
	snprintf(e.qid, sizeof(e.qid), "%s", qid);
	return e;
}

/* The evidence of an account verdict: the submissions in the window, per
 * client, by account, by envelope sender and by domain (joined to the
 * queued lines by queue id), including rows not yet written. */
Test(store, submission_evidence_by_account_sender_and_domain)
{
	struct store *st;
	struct store_evidence ev;
	struct event e[] = {
		submission("alice@example.org", "192.0.2.1", "Q1", 100),
		submission("alice@example.org", "192.0.2.1", "Q2", 110),
		submission("alice@example.org", "198.51.100.2", "Q3", 120),
		submission("alice@example.org", "192.0.2.1", "Q4", 50),    /* before the window */
		submission("bob@Example.org", "203.0.113.3", "Q5", 130),
		queued("alice@example.org", "Q1", 3, 101),
		queued("alice@example.org", "Q2", 4, 111),
		queued("newsletter@example.org", "Q3", 10, 121),
	};
	char err[256];

	cr_assert_eq(store_open(db, true, &st, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(store_begin(st), 0);
	for (size_t i = 0; i < sizeof(e) / sizeof(e[0]); i++)
		cr_assert_eq(store_add_event(st, &e[i]), 0);
	/* Still in the open batch: read all the same. */
	cr_assert_eq(store_submission_evidence(st, "account", "alice@example.org", 60, 200, &ev),
	    0, "%s", store_errmsg(st));
	cr_assert_eq(ev.submissions, 3);
	cr_assert_eq(ev.clients, 2);
	cr_assert_eq(ev.recipients, 17);
	cr_assert_eq(ev.ntop, 2);
	cr_assert_str_eq(ev.top[0].ip, "192.0.2.1");
	cr_assert_eq(ev.top[0].submissions, 2);
	cr_assert_str_eq(ev.top[1].ip, "198.51.100.2");
	cr_assert_eq(store_commit(st), 0);

	cr_assert_eq(store_submission_evidence(st, "sender", "newsletter@example.org", 60, 200,
	    &ev), 0);
	cr_assert(ev.submissions == 1 && ev.clients == 1 && ev.recipients == 10);
	cr_assert_str_eq(ev.top[0].ip, "198.51.100.2");
	/* Either side's domain, case-folded: alice's 3 and bob's 1. */
	cr_assert_eq(store_submission_evidence(st, "domain", "example.org", 60, 200, &ev), 0);
	cr_assert_eq(ev.submissions, 4);
	cr_assert_eq(ev.clients, 3);
	/* No queued line kept for them: recipients unknown, not 0. */
	cr_assert_eq(store_submission_evidence(st, "account", "bob@Example.org", 60, 200, &ev), 0);
	cr_assert(ev.submissions == 1 && ev.recipients == -1, "%lld %lld",
	    (long long)ev.submissions, (long long)ev.recipients);
	/* A name with LIKE's wildcards is matched as it is. */
	cr_assert_eq(store_submission_evidence(st, "domain", "%", 60, 200, &ev), 0);
	cr_assert_eq(ev.submissions, 0);
	store_close(st);
}

static int
active_seen(void *arg, const char *jail, const char *kind, int64_t n)
{
	char *buf = arg;
	size_t len = strlen(buf);

	snprintf(buf + len, 256 - len, "%s/%s=%lld ", jail, kind, (long long)n);
	return 0;
}

static int
counter_seen(void *arg, const char *name, const char *labels, double value)
{
	char *buf = arg;
	size_t len = strlen(buf);

	snprintf(buf + len, 512 - len, "%s{%s}=%.17g ", name, labels, value);
	return 0;
}

/* Bans in force per jail and kind (active_bans' rows), and the saved
 * metric counters of a node, set again on a save. */
Test(store, active_counts_and_saved_counters)
{
	struct store *st;
	int64_t now = 1700000000;
	struct verdict v[] = {
		mkverdict("sasl", "192.0.2.1", 1, now - 100, 3600),
		mkverdict("sasl", "192.0.2.2", 1, now - 100, 3600),
		mkverdict("sasl", "192.0.2.3", 1, now - 7200, 3600),     /* over */
		mkverdict("quota", "alice@example.org", 1, now - 10, 86400),
		mkverdict("quota", "bob@example.org", 1, now - 10, 86400),   /* lifted below */
	};
	char err[256], buf[512] = "";

	cr_assert_eq(store_open(db, true, &st, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(store_begin(st), 0);
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		cr_assert_eq(store_add_ban(st, &v[i], NULL), 0);
	cr_assert_eq(store_commit(st), 0);
	cr_assert_eq(store_lift_bans(st, NULL, "bob@example.org", now), 1);
	cr_assert_eq(store_count_active(st, now, active_seen, buf), 0);
	cr_assert_str_eq(buf, "quota/account=1 sasl/ip=2 ");

	cr_assert_eq(store_begin(st), 0);
	cr_assert_eq(store_save_counter(st, "mx1", "mailjail_lines_total",
	    "source=\"/var/log/mail.log\"", 12345), 0);
	cr_assert_eq(store_save_counter(st, "mx1", "mailjail_db_commit_seconds_sum", "", 0.1), 0);
	cr_assert_eq(store_save_counter(st, "mx2", "mailjail_lines_total",
	    "source=\"/var/log/mail.log\"", 7), 0);
	cr_assert_eq(store_commit(st), 0);
	cr_assert_eq(store_begin(st), 0);
	cr_assert_eq(store_save_counter(st, "mx1", "mailjail_lines_total",
	    "source=\"/var/log/mail.log\"", 12400), 0, "set again, not added");
	cr_assert_eq(store_commit(st), 0);
	buf[0] = '\0';
	cr_assert_eq(store_each_counter(st, "mx1", counter_seen, buf), 0);
	cr_assert_str_eq(buf, "mailjail_db_commit_seconds_sum{}=0.10000000000000001 "
	    "mailjail_lines_total{source=\"/var/log/mail.log\"}=12400 ", "exact doubles");
	store_close(st);
}

/* ---- PostgreSQL only ---------------------------------------------------- */

/* column_names - a view's columns, in order, space-separated (SQLite's
 * PRAGMA or PostgreSQL's catalog) */
static char *
column_names(const char *store, const char *view)
{
	char *out;

	if (strncmp(store, "postgres", 8) == 0)
		out = tu_sql(store, "SELECT string_agg(column_name, ' ' ORDER BY ordinal_position)"
		    " FROM information_schema.columns WHERE table_name = '%s'", view);
	else
		out = tu_sh_output("sqlite3 '%s' \"SELECT group_concat(name, ' ') FROM "
		    "pragma_table_info('%s')\"", store, view);
	return out;
}

Test(store_pgsql, schema_is_versioned_and_the_views_have_sqlites_columns_then_node)
{
	struct store *st, *sq;
	char err[256], file[600], *out, *pg, *lite, want[256];

	cr_assert_eq(store_open(db, true, &st, err, sizeof(err)), 0, "%s", err);
	cr_assert(store_created(st), "an empty database gets the tables");
	cr_assert_null(store_file(st), "a server: no file to hand over");
	store_close(st);
	out = tu_sql(db, "SELECT version, name FROM schema_version ORDER BY version");
	cr_assert_str_eq(out, "1|001-initial.sql\n2|002-signals.sql\n3|003-delivery.sql\n");
	free(out);
	cr_assert_eq(store_open(db, false, &st, err, sizeof(err)), 0, "%s", err);
	cr_assert(!store_created(st), "reopening migrates nothing");
	store_close(st);

	snprintf(file, sizeof(file), "%s/mj.db", dir);
	cr_assert_eq(store_open(file, true, &sq, err, sizeof(err)), 0, "%s", err);
	store_close(sq);
	for (int i = 0; i < 2; i++) {
		const char *view = i ? "active_bans" : "ban_history";
		pg = column_names(db, view);
		lite = column_names(file, view);
		cr_assert_gt(strlen(lite), 1);
		snprintf(want, sizeof(want), "%.*s node\n", (int)strlen(lite) - 1, lite);
		cr_assert_str_eq(pg, want, "%s: PostgreSQL %s, SQLite %s", view, pg, lite);
		free(pg);
		free(lite);
	}
}

Test(store_pgsql, empty_database_without_create_is_an_error)
{
	struct store *st;
	char err[256];

	cr_assert_eq(store_open(db, false, &st, err, sizeof(err)), -1);
	cr_assert(strstr(err, "no mailjail tables") != NULL, "%s", err);
}

Test(store_pgsql, newer_schema_is_refused)
{
	struct store *st;
	char err[256], *out;

	cr_assert_eq(store_open(db, true, &st, err, sizeof(err)), 0, "%s", err);
	store_close(st);
	out = tu_sql(db, "INSERT INTO schema_version VALUES (99, '099-future.sql', 0)");
	free(out);
	cr_assert_eq(store_open(db, false, &st, err, sizeof(err)), -1);
	cr_assert(strstr(err, "newer") != NULL, "%s", err);
}

Test(store_pgsql, unreachable_server_is_named_with_the_password_hidden)
{
	struct store *st;
	char err[512];

	cr_assert_eq(store_open("postgresql://mailjail:s3cr3t-PW@/mj?host=/nonexistent-pg-dir",
	    true, &st, err, sizeof(err)), -1);
	cr_assert(strstr(err, "postgresql://mailjail:***@/mj?host=/nonexistent-pg-dir") != NULL,
	    "the URI, password hidden: %s", err);
	cr_assert(strstr(err, "No such file or directory") != NULL, "libpq's reason: %s", err);
	cr_assert(strstr(err, "s3cr3t-PW") == NULL, "%s", err);
	cr_assert_eq(store_open("postgres://u@/mj?host=/nonexistent-pg-dir&password=s3cr3t-PW"
	    "&sslmode=disable", true, &st, err, sizeof(err)), -1);
	cr_assert(strstr(err, "password=***&sslmode=disable") != NULL, "%s", err);
	cr_assert(strstr(err, "s3cr3t-PW") == NULL, "%s", err);
}

Test(store_pgsql, a_password_is_used_and_never_shown)
{
	struct store *st;
	char err[512], uri[900], *sock = NULL, *name;

	/* db is postgresql:///NAME?host=SOCK&user=postgres: the same database
	 * as the role with a password (scram), right and wrong. */
	name = strdup(db + strlen("postgresql:///"));
	cr_assert_not_null(name);
	*strchr(name, '?') = '\0';
	sock = strstr(db, "host=") + 5;
	snprintf(uri, sizeof(uri), "postgresql://mailjail:wrong-Hunter2@/%s?host=%.*s", name,
	    (int)strcspn(sock, "&"), sock);
	cr_assert_eq(store_open(uri, true, &st, err, sizeof(err)), -1);
	cr_assert(strstr(err, "password authentication failed") != NULL, "%s", err);
	cr_assert(strstr(err, "wrong-Hunter2") == NULL, "%s", err);
	cr_assert(strstr(err, "mailjail:***@") != NULL, "%s", err);

	snprintf(uri, sizeof(uri), "postgresql:///%s?host=%.*s&user=mailjail&password="
	    "mailjail-test-secret", name, (int)strcspn(sock, "&"), sock);
	cr_assert_eq(store_open(uri, true, &st, err, sizeof(err)), 0, "%s", err);
	cr_assert(strstr(store_path(st), "password=***") != NULL, "%s", store_path(st));
	cr_assert(strstr(store_path(st), "mailjail-test-secret") == NULL);
	store_close(st);
	free(name);
}

/* barrier - children wait on a pipe the parent closes: they start together */
Test(store_pgsql, nodes_starting_together_on_an_empty_database_migrate_it_once,
    .timeout = 60)
{
	int go[2];
	pid_t pid[4];
	char *out;

	cr_assert_eq(pipe(go), 0);
	for (int i = 0; i < 4; i++) {
		if ((pid[i] = tu_fork()) == 0) {
			struct store *st;
			char err[256], c;

			close(go[1]);
			(void)read(go[0], &c, 1);
			_exit(store_open(db, true, &st, err, sizeof(err)) == 0 ? 0 : 1);
		}
	}
	close(go[0]);
	close(go[1]);
	for (int i = 0; i < 4; i++) {
		int status;
		cr_assert_eq(tu_waitpid(pid[i], &status), pid[i]);
		cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "node %d failed", i);
	}
	out = tu_sql(db, "SELECT count(*) FROM schema_version; SELECT count(*) FROM"
	    " information_schema.tables WHERE table_name IN ('events', 'bans', 'nodes')");
	cr_assert_str_eq(out, "3\n3\n", "each step once");
	free(out);
}

/*
 * Two nodes decide the same ban at the same moment: the second waits for
 * the first's batch on the (jail, target) lock, then finds its row in force
 * and writes none.  One offence, one row.
 */
Test(store_pgsql, the_same_ban_from_two_nodes_at_once_is_one_row, .timeout = 60)
{
	struct verdict v = mkverdict("sasl", "192.0.2.9", 1, (int64_t)time(NULL), 600);
	struct store *a;
	char err[256], *out;
	int status, rc;
	pid_t pid;

	cr_assert_eq(store_open(db, true, &a, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(store_set_node(a, "mx1"), 0);
	cr_assert_eq(store_begin(a), 0);
	cr_assert_eq(store_add_ban(a, &v, NULL), 0, "mx1 writes it (lock held to COMMIT)");
	if ((pid = tu_fork()) == 0) {
		struct store *b;
		if (store_open(db, false, &b, err, sizeof(err)) != 0 ||
		    store_set_node(b, "mx2") != 0 || store_begin(b) != 0)
			_exit(10);
		rc = store_add_ban(b, &v, NULL);
		if (store_commit(b) != 0)
			_exit(11);
		_exit(rc < 0 ? 12 : rc);
	}
	usleep(300 * 1000);   /* mx2 is waiting on the lock by now */
	cr_assert_eq(store_commit(a), 0);
	cr_assert_eq(tu_waitpid(pid, &status), pid);
	cr_assert(WIFEXITED(status));
	cr_assert_eq(WEXITSTATUS(status), 1, "mx2 is told the ban is in force already");
	store_close(a);
	out = tu_sql(db, "SELECT count(*), min(node) FROM bans");
	cr_assert_str_eq(out, "1|mx1\n");
	free(out);
}

struct polled {
	int nevents, nbans;
	char ips[16][MJ_IP_MAX];
	int64_t lifted[8];
	char nodes[8][16];
};

static int
polled_ban(void *arg, const struct stored_ban *b)
{
	struct polled *p = arg;

	if (p->nbans < 8) {
		p->lifted[p->nbans] = b->lifted_at;
		snprintf(p->nodes[p->nbans], sizeof(p->nodes[0]), "%s", b->node);
	}
	p->nbans++;
	return 0;
}

static int
polled_event(void *arg, const struct event *ev)
{
	struct polled *p = arg;

	if (p->nevents < 16)
		snprintf(p->ips[p->nevents], sizeof(p->ips[0]), "%s", ev->ip);
	p->nevents++;
	return 0;
}

static struct store *
open_node(const char *node)
{
	struct store *st;
	char err[256];

	cr_assert_eq(store_open(db, true, &st, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(store_set_node(st, node), 0);
	return st;
}

static struct event
ev_from(const char *ip)
{
	struct event e = { .rule = "sasl-auth-failed", .type = "auth_failure",
	    .time = (int64_t)time(NULL), .nrcpt = -1 };

	snprintf(e.ip, sizeof(e.ip), "%s", ip);
	return e;
}

static struct polled
poll_once(struct store *st)
{
	struct polled p;

	memset(&p, 0, sizeof(p));
	cr_assert_eq(store_fleet_poll(st, polled_ban, polled_event, &p), 0, "%s",
	    store_errmsg(st));
	/* the events count as seen once the batch they went into commits */
	cr_assert_eq(store_begin(st), 0);
	cr_assert_eq(store_commit(st), 0);
	return p;
}

static int
ignore_event(void *arg, const struct event *ev)
{
	(void)arg; (void)ev;
	return 0;
}

static int
ignore_ban(void *arg, const struct stored_ban *b)
{
	(void)arg; (void)b;
	return 0;
}

/*
 * What other nodes commit reaches a node's poll exactly once, whatever
 * order their transactions commit in: mx1's batch began first (its rows
 * have the smaller ids) and commits last.  A node's own rows never come
 * back; a lift comes as a change of the ban; a rolled back batch polled
 * events are handed over again.
 */
Test(store_pgsql, a_poll_hands_over_each_commit_once_in_any_order)
{
	struct store *mx1 = open_node("mx1"), *mx2 = open_node("mx2"), *mx3 = open_node("mx3");
	struct event e1 = ev_from("192.0.2.1"), e2 = ev_from("192.0.2.2"), e3 = ev_from("192.0.2.3");
	struct verdict v = mkverdict("sasl", "192.0.2.2", 1, (int64_t)time(NULL), 600);
	struct polled p;
	char err[256];
	int64_t newest;

	cr_assert_eq(store_claim_node(mx3, err, sizeof(err)), 0, "%s", err);
	/* the restore of mx3 starts its polls */
	cr_assert_eq(store_each_ban_since(mx3, 0, ignore_ban, NULL), 0);
	cr_assert_eq(store_each_event_since(mx3, 0, ignore_event, NULL), 0);

	cr_assert_eq(store_begin(mx1), 0);
	cr_assert_eq(store_add_event(mx1, &e1), 0);
	/* a read sends what is buffered: mx1's row exists, uncommitted */
	cr_assert_eq(store_newest_time(mx1, &newest), 0);
	cr_assert_eq(store_begin(mx2), 0);
	cr_assert_eq(store_add_event(mx2, &e2), 0);
	cr_assert_eq(store_add_ban(mx2, &v, NULL), 0);
	cr_assert_eq(store_commit(mx2), 0);

	p = poll_once(mx3);
	cr_assert_eq(p.nevents, 1, "mx2's event only (mx1's is not committed)");
	cr_assert_str_eq(p.ips[0], "192.0.2.2");
	cr_assert_eq(p.nbans, 1);
	cr_assert_str_eq(p.nodes[0], "mx2");
	cr_assert_eq(p.lifted[0], 0);

	cr_assert_eq(store_commit(mx1), 0);
	p = poll_once(mx3);
	cr_assert_eq(p.nevents, 1, "mx1's event, committed after mx2's");
	cr_assert_str_eq(p.ips[0], "192.0.2.1");
	cr_assert_eq(p.nbans, 0, "mx2's ban came once");
	p = poll_once(mx3);
	cr_assert_eq(p.nevents + p.nbans, 0, "nothing twice");

	/* mx3's own event and ban do not come back to it */
	cr_assert_eq(store_begin(mx3), 0);
	cr_assert_eq(store_add_event(mx3, &e3), 0);
	snprintf(v.target, sizeof(v.target), "192.0.2.3");
	cr_assert_eq(store_add_ban(mx3, &v, NULL), 0);
	cr_assert_eq(store_commit(mx3), 0);
	p = poll_once(mx3);
	cr_assert_eq(p.nevents + p.nbans, 0, "one's own rows are known already");

	/* a lift (by an operator anywhere) comes as a change */
	cr_assert_eq(store_begin(mx1), 0);
	cr_assert_eq(store_lift_bans(mx1, NULL, "192.0.2.2", (int64_t)time(NULL)), 1);
	cr_assert_eq(store_commit(mx1), 0);
	p = poll_once(mx3);
	cr_assert_eq(p.nbans, 1);
	cr_assert_neq(p.lifted[0], 0, "lifted");

	/* polled events whose batch is rolled back come again */
	cr_assert_eq(store_begin(mx2), 0);
	cr_assert_eq(store_add_event(mx2, &e2), 0);
	cr_assert_eq(store_commit(mx2), 0);
	memset(&p, 0, sizeof(p));
	cr_assert_eq(store_fleet_poll(mx3, polled_ban, polled_event, &p), 0);
	cr_assert_eq(p.nevents, 1);
	cr_assert_eq(store_begin(mx3), 0);
	cr_assert_eq(store_rollback(mx3), 0);
	p = poll_once(mx3);
	cr_assert_eq(p.nevents, 1, "handed over again after the rollback");
	p = poll_once(mx3);
	cr_assert_eq(p.nevents, 0);
	store_close(mx1);
	store_close(mx2);
	store_close(mx3);
}

/* events_of - every event a restore reads, as "node qid type rcpt newqid"
 * lines ("-" for this node's and for empty fields) */
struct event_lines {
	char text[2048];
};

static int
event_line(void *arg, const struct event *ev)
{
	struct event_lines *l = arg;
	size_t n = strlen(l->text);

	snprintf(l->text + n, sizeof(l->text) - n, "%s %s %s %s %s\n", ev->node ? ev->node : "-",
	    ev->qid[0] ? ev->qid : "-", ev->type, ev->rcpt[0] ? ev->rcpt : "-",
	    ev->newqid[0] ? ev->newqid : "-");
	return 0;
}

/*
 * Queue ids are unique per host only: two nodes' messages may share one.
 * The delivery columns (schema pg/003) go through the COPY, and every read
 * of another node's event names the node: the restore's and the poll's.
 */
Test(store_pgsql, another_nodes_events_name_it_and_carry_the_delivery_columns)
{
	struct store *mx1 = open_node("mx1"), *mx2 = open_node("mx2");
	struct event sub = { .rule = "sasl-submission", .type = "submission",
	    .time = (int64_t)time(NULL), .ip = "192.0.2.5", .user = "alice", .qid = "4F0001",
	    .nrcpt = -1 };
	struct event link = { .rule = "filter-queued-as", .type = "requeued", .time = sub.time,
	    .qid = "4F0001", .newqid = "4F0002", .nrcpt = -1 };
	struct event refusal = { .rule = "gmail-spam", .type = "remote_reject",
	    .time = sub.time, .qid = "4F0002", .rcpt = "bob@gmail.example", .nrcpt = -1 };
	struct event_lines l;

	for (int i = 0; i < 2; i++) {
		struct store *st = i ? mx2 : mx1;
		cr_assert_eq(store_begin(st), 0);
		cr_assert_eq(store_add_event(st, &sub), 0);
		cr_assert_eq(store_add_event(st, &link), 0);
		cr_assert_eq(store_add_event(st, &refusal), 0);
		cr_assert_eq(store_commit(st), 0, "%s", store_errmsg(st));
	}
	memset(&l, 0, sizeof(l));
	cr_assert_eq(store_each_event_since(mx1, 0, event_line, &l), 0);
	cr_assert_str_eq(l.text,
	    "- 4F0001 submission - -\n- 4F0001 requeued - 4F0002\n"
	    "- 4F0002 remote_reject bob@gmail.example -\n"
	    "mx2 4F0001 submission - -\nmx2 4F0001 requeued - 4F0002\n"
	    "mx2 4F0002 remote_reject bob@gmail.example -\n");
	/* later ones come with the poll, named the same way */
	cr_assert_eq(store_begin(mx2), 0);
	cr_assert_eq(store_add_event(mx2, &refusal), 0);
	cr_assert_eq(store_commit(mx2), 0);
	memset(&l, 0, sizeof(l));
	cr_assert_eq(store_fleet_poll(mx1, ignore_ban, event_line, &l), 0, "%s",
	    store_errmsg(mx1));
	cr_assert_str_eq(l.text, "mx2 4F0002 remote_reject bob@gmail.example -\n");
	store_close(mx1);
	store_close(mx2);
}

/* A fleet's database made by the version before (no delivery columns)
 * is migrated at the next start, its rows kept. */
Test(store_pgsql, a_version_2_database_is_migrated_and_keeps_its_rows)
{
	struct store *st;
	struct event_lines l;
	char err[256], *out;

	cr_assert_eq(store_open(db, true, &st, err, sizeof(err)), 0, "%s", err);
	store_close(st);
	out = tu_sql(db, "ALTER TABLE events DROP COLUMN rcpt, DROP COLUMN newqid;"
	    " DELETE FROM schema_version WHERE version = 3;"
	    " INSERT INTO events(node, time, rule, event, qid) VALUES"
	    " ('mx9', 100, 'sasl-submission', 'submission', 'OLD01')");
	free(out);
	cr_assert_eq(store_open(db, false, &st, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(store_set_node(st, "mx1"), 0);
	memset(&l, 0, sizeof(l));
	cr_assert_eq(store_each_event_since(st, 0, event_line, &l), 0);
	cr_assert_str_eq(l.text, "mx9 OLD01 submission - -\n");
	store_close(st);
	out = tu_sql(db, "SELECT max(version) FROM schema_version");
	cr_assert_str_eq(out, "3\n");
	free(out);
}

static volatile sig_atomic_t stop_now_pg = 1;

/* A stop while waiting on another node's lock cancels the wait: the
 * failure is transient (the batch is read again at the next start). */
Test(store_pgsql, a_stop_cancels_a_lock_wait_and_is_transient, .timeout = 30)
{
	struct verdict v = mkverdict("sasl", "192.0.2.9", 1, (int64_t)time(NULL), 600);
	struct store *a = open_node("mx1"), *b = open_node("mx2");

	cr_assert_eq(store_begin(a), 0);
	cr_assert_eq(store_add_ban(a, &v, NULL), 0);
	store_set_stop_flag(b, &stop_now_pg);
	cr_assert_eq(store_begin(b), 0);
	cr_assert_eq(store_add_ban(b, &v, NULL), -1, "b gives up");
	cr_assert(store_error_is_transient(b), "%s", store_errmsg(b));
	cr_assert(strstr(store_errmsg(b), "cancel") != NULL, "%s", store_errmsg(b));
	cr_assert_eq(store_rollback(b), 0);
	cr_assert_eq(store_commit(a), 0);
	store_close(a);
	store_close(b);
}

Test(store_pgsql, a_constraint_is_not_transient_and_survives_the_rollback)
{
	struct store *st;
	struct verdict v = mkverdict("sasl", "192.0.2.9", 1, 1000, 600);
	char err[256], *out;

	cr_assert_eq(store_open(db, true, &st, err, sizeof(err)), 0, "%s", err);
	out = tu_sql(db, "CREATE FUNCTION no_bans() RETURNS trigger LANGUAGE plpgsql AS"
	    " $$ BEGIN RAISE EXCEPTION 'no bans today'; END $$;"
	    " CREATE TRIGGER no BEFORE INSERT ON bans FOR EACH ROW EXECUTE FUNCTION no_bans()");
	free(out);
	cr_assert_eq(store_begin(st), 0);
	cr_assert_eq(store_add_ban(st, &v, NULL), -1);
	cr_assert(!store_error_is_transient(st), "a constraint does not clear by itself");
	cr_assert_eq(store_rollback(st), 0);
	cr_assert(!store_error_is_transient(st));
	cr_assert(strstr(store_errmsg(st), "no bans today") != NULL, "%s", store_errmsg(st));
	store_clear_error(st);
	cr_assert(!store_error_is_transient(st));
	store_close(st);
}

/* A batch whose COPY of events fails (it carries the BEGIN) is rolled back
 * whole, and the session is fit for the next batch. */
Test(store_pgsql, a_failed_copy_is_rolled_back_and_the_next_batch_works)
{
	struct store *st;
	struct event e = { .rule = "r", .type = "auth_failure", .time = 1000, .ip = "192.0.2.1",
	    .nrcpt = -1 };
	char err[256], *out;

	cr_assert_eq(store_open(db, true, &st, err, sizeof(err)), 0, "%s", err);
	out = tu_sql(db, "CREATE FUNCTION no_events() RETURNS trigger LANGUAGE plpgsql AS"
	    " $$ BEGIN RAISE EXCEPTION 'no events today'; END $$;"
	    " CREATE TRIGGER no BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION no_events()");
	free(out);
	cr_assert_eq(store_begin(st), 0);
	cr_assert_eq(store_add_event(st, &e), 0, "buffered");
	cr_assert_eq(store_commit(st), -1);
	cr_assert(strstr(store_errmsg(st), "no events today") != NULL, "%s", store_errmsg(st));
	cr_assert_eq(store_rollback(st), 0);
	out = tu_sql(db, "DROP TRIGGER no ON events");
	free(out);
	cr_assert_eq(store_begin(st), 0);
	cr_assert_eq(store_add_event(st, &e), 0);
	cr_assert_eq(store_commit(st), 0, "%s", store_errmsg(st));
	store_close(st);
	out = tu_sql(db, "SELECT count(*) FROM events");
	cr_assert_str_eq(out, "1\n");
	free(out);
}

/* Each node of a fleet reads and sends the notifications it queued, never
 * another's (two nodes would mail the same hold twice). */
Test(store_pgsql, each_node_sends_only_the_notifications_it_queued)
{
	struct store *mx1 = open_node("mx1"), *mx2 = open_node("mx2");
	struct stored_notification a = mknote("hold", "alice", false, 0, 1000),
	    b = mknote("lift", "bob", false, 0, 1001);
	char seen1[1024] = "", seen2[1024] = "", *out;
	int64_t n1 = -1, n2 = -1;

	cr_assert_eq(store_begin(mx1), 0);
	cr_assert_eq(store_queue_notification(mx1, &a, NULL), 0);
	cr_assert_eq(store_commit(mx1), 0);
	/* An operator's unban run on mx2, outside a batch. */
	cr_assert_eq(store_queue_notification(mx2, &b, NULL), 0, "%s", store_errmsg(mx2));
	cr_assert_eq(store_each_open_notification(mx1, 10, notes_seen, seen1), 0);
	cr_assert_eq(store_each_open_notification(mx2, 10, notes_seen, seen2), 0);
	cr_assert(strstr(seen1, ":alice:") && !strstr(seen1, ":bob:"), "%s", seen1);
	cr_assert(strstr(seen2, ":bob:") && !strstr(seen2, ":alice:"), "%s", seen2);
	cr_assert_eq(store_count_open_notifications(mx1, &n1), 0);
	cr_assert_eq(store_count_open_notifications(mx2, &n2), 0);
	cr_assert(n1 == 1 && n2 == 1);
	store_close(mx1);
	store_close(mx2);
	out = tu_sql(db, "SELECT node, target FROM notifications ORDER BY id");
	cr_assert_str_eq(out, "mx1|alice\nmx2|bob\n", "the node is the store's");
	free(out);
}
