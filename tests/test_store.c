/*
 * test_store - the SQLite file: schema, events, bans, positions, views.
 * Real SQLite files in a temp dir, read back with the sqlite3 CLI where the
 * contract is what an admin sees.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "testutil.h"

static char dir[256], db[512];

static void
setup(void)
{
	tu_mkdtemp(dir, sizeof(dir));
	snprintf(db, sizeof(db), "%s/mj.db", dir);
}

static void
teardown(void)
{
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

Test(store, creates_schema_in_wal_mode)
{
	struct store *st;
	char err[256], *out;

	cr_assert_eq(store_open(db, true, &st, err, sizeof(err)), 0, "%s", err);
	store_close(st);
	out = tu_sh_output("sqlite3 '%s' 'PRAGMA journal_mode; PRAGMA user_version;'", db);
	cr_assert_str_eq(out, "wal\n4\n");
	free(out);
	/* Reopening migrates nothing and works. */
	cr_assert_eq(store_open(db, false, &st, err, sizeof(err)), 0, "%s", err);
	store_close(st);
}

Test(store, version_1_db_gains_journal_cursors_and_keeps_positions)
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
	cr_assert_str_eq(out, "4\n42\n1\n");
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
Test(store, version_1_database_is_migrated)
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
	cr_assert_str_eq(out, "4\n0\n0 r auth_failure 2\n", "the old rows are counted");
	free(out);
}

Test(store, missing_db_without_create_is_an_error)
{
	struct store *st;
	char err[256];

	cr_assert_eq(store_open(db, false, &st, err, sizeof(err)), -1);
	cr_assert(strstr(err, "No such file") != NULL, "%s", err);
}

Test(store, not_a_database_is_a_clear_error)
{
	struct store *st;
	char err[256], path[512];

	tu_write(dir, "junk.db", "this is not a database, just text long enough\n",
	    path, sizeof(path));
	cr_assert_eq(store_open(path, false, &st, err, sizeof(err)), -1);
	cr_assert(strstr(err, "not a database") != NULL, "%s", err);
}

Test(store, newer_schema_is_refused)
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

	out = tu_sh_output("sqlite3 -separator '|' '%s' "
	    "'SELECT jail, target, target_kind, level, started_at, expires_at, "
	    "lifted_at IS NULL FROM ban_history'", db);
	/* newest first; the old ban shows its ISO times */
	cr_assert(strstr(out, "outbound-quota|alice@example.org|account|2|") == out, "%s", out);
	cr_assert(strstr(out, "\nsasl-bruteforce|192.0.2.7|ip|1|2023-11-14T22:13:20Z|"
	    "2023-11-14T23:13:20Z|1\n") != NULL, "%s", out);
	free(out);
	out = tu_sh_output("sqlite3 '%s' 'SELECT target FROM active_bans'", db);
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
	out = tu_sh_output("sqlite3 '%s' 'SELECT count(*), target FROM bans'", db);
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

Test(store, a_lock_is_transient_and_a_stop_ends_the_wait, .timeout = 30)
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

Test(store, a_constraint_is_not_transient_and_survives_the_rollback)
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
	struct verdict v = mkverdict("j", "2001:db8::1", 1, 150, 100);
	struct collected c;
	char err[256];
	int64_t newest;

	memset(&c, 0, sizeof(c));
	cr_assert_eq(store_open(db, true, &st, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(store_begin(st), 0);
	cr_assert_eq(store_add_event(st, &q), 0);
	cr_assert_eq(store_add_event(st, &e), 0);
	cr_assert_eq(store_add_ban(st, &v, NULL), 0);
	cr_assert_eq(store_commit(st), 0);

	cr_assert_eq(store_each_event_since(st, 0, collect_event, &c), 0);
	cr_assert_eq(c.n, 2);
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
	out = tu_sh_output("sqlite3 '%s' 'SELECT count(*), count(DISTINCT qid), min(time),"
	    " max(time), sum(ip = \"192.0.2.1\"), sum(nrcpt IS NULL) FROM events'", db);
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
	out = tu_sh_output("sqlite3 '%s' 'SELECT count(*), sum(n), min(minute) FROM event_counts;"
	    " SELECT count(*) FROM events'", db);
	cr_assert_str_eq(out, "49|2940|101\n0\n", "%s", out);
	free(out);
}
