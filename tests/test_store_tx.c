/*
 * test_store_tx - a batch the database drops half-way vanishes whole, or
 * a re-read after the rollback counts twice.
 *
 * SQLite (store_tx_sqlite), white-box: store_sqlite.c compiled into the
 * test (its statics and its sqlite3 handle in reach), to make SQLite roll
 * a batch back by itself in the middle of store_commit, as it does on some
 * I/O, full-disk and out-of-memory errors: nothing written after that may
 * land.  PostgreSQL (store_tx_pgsql): the server ends the session half-way.
 */
#include "../src/store_sqlite.c"

#include <criterion/criterion.h>

#include "testutil.h"

static char dir[256], db[700];

static void
setup(void)
{
	log_set_quiet(true);
	tu_mkdtemp(dir, sizeof(dir));
	snprintf(db, sizeof(db), "%s/mj.db", dir);
}

static void
teardown(void)
{
	tu_rmrf(dir);
}

TestSuite(store_tx_sqlite, .init = setup, .fini = teardown);

/* interrupt_after - the progress handler: interrupt once, after n calls */
static int interrupt_countdown;

static int
interrupt_once(void *arg)
{
	(void)arg;
	return --interrupt_countdown == 0;
}

static int
sum_counts(void *arg, const char *name, int64_t n)
{
	(void)name;
	*(int64_t *)arg += n;
	return 0;
}

Test(store_tx_sqlite, a_batch_sqlite_rolled_back_leaves_nothing)
{
	struct store *st;
	struct sqlite_store *sq;
	struct log_position pos = { .inode = 1, .offset = 500, .first_hash = 9 }, got;
	struct event e = { .rule = "r", .type = "auth_failure", .time = 1000, .nrcpt = -1 };
	struct event c = { .rule = "q", .type = "postscreen_pregreet", .time = 1000, .nrcpt = -1 };
	char err[256], *out;
	int64_t counted = 0;
	int rc;

	snprintf(e.ip, sizeof(e.ip), "192.0.2.1");
	snprintf(pos.path, sizeof(pos.path), "/var/log/mail.log");
	cr_assert_eq(store_open(db, true, &st, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(st->ops, &store_backend_sqlite);
	sq = st->be;
	cr_assert_eq(store_begin(st), 0);
	for (int i = 0; i < 5; i++) {
		cr_assert_eq(store_add_event(st, &e), 0);
		cr_assert_eq(store_count_event(st, &c), 0);
	}
	cr_assert_eq(store_save_position(st, &pos), 0);
	/* The first flushed statement is interrupted: SQLite ends the whole
	 * transaction (autocommit comes back on). */
	interrupt_countdown = 1;
	sqlite3_progress_handler(sq->db, 1, interrupt_once, NULL);
	rc = store_commit(st);
	sqlite3_progress_handler(sq->db, 0, NULL, NULL);
	cr_assert_eq(rc, -1, "the commit fails");
	cr_assert(sqlite3_get_autocommit(sq->db), "SQLite rolled the batch back itself");
	cr_assert_eq(store_rollback(st), 0);

	cr_assert_eq(store_event_counts_since(st, 0, sum_counts, &counted), 0);
	cr_assert_eq(counted, 0, "no per-minute count committed on its own");
	cr_assert_eq(store_get_position(st, pos.path, &got), 0, "no position saved");
	store_close(st);
	out = tu_sh_output("sqlite3 '%s' 'SELECT count(*) FROM events; "
	    "SELECT count(*) FROM event_counts'", db);
	cr_assert_str_eq(out, "0\n0\n", "nothing of the batch is in the file");
	free(out);

	/* And the store works again for the next batch. */
	cr_assert_eq(store_open(db, false, &st, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(store_begin(st), 0);
	cr_assert_eq(store_add_event(st, &e), 0);
	cr_assert_eq(store_commit(st), 0);
	store_close(st);
	out = tu_sh_output("sqlite3 '%s' 'SELECT count(*) FROM events'", db);
	cr_assert_str_eq(out, "1\n");
	free(out);
}

/*
 * PostgreSQL: the connection dies in the middle of a batch (the server
 * ends the session, as a restart or a network cut would).  The commit
 * fails, transient; nothing of the batch is in the database; the next
 * batch reconnects and works.
 */
static void
setup_pg(void)
{
	log_set_quiet(true);
	tu_mkdtemp(dir, sizeof(dir));
	tu_pg_db("tx", db, sizeof(db));
}

TestSuite(store_tx_pgsql, .init = setup_pg, .fini = teardown);

Test(store_tx_pgsql, a_batch_whose_connection_dies_leaves_nothing)
{
	struct store *st;
	struct log_position pos = { .inode = 1, .offset = 500, .first_hash = 9 }, got;
	struct event e = { .rule = "r", .type = "auth_failure", .time = 1000, .nrcpt = -1 };
	char err[256], *out;
	int64_t counted = 0;

	snprintf(e.ip, sizeof(e.ip), "192.0.2.1");
	snprintf(pos.path, sizeof(pos.path), "/var/log/mail.log");
	cr_assert_eq(store_open(db, true, &st, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(store_begin(st), 0);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(store_add_event(st, &e), 0);
	cr_assert_eq(store_save_position(st, &pos), 0);
	/* a read in the batch: its rows are on the server, uncommitted */
	cr_assert_eq(store_event_counts_since(st, 0, sum_counts, &counted), 0);
	cr_assert_eq(counted, 5);
	out = tu_sql(db, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
	    " WHERE application_name = 'mailjail' AND datname = current_database()");
	cr_assert_str_eq(out, "1\n");
	free(out);
	cr_assert_eq(store_commit(st), -1, "the commit fails");
	cr_assert(store_error_is_transient(st), "a lost connection clears: %s", store_errmsg(st));
	cr_assert_eq(store_rollback(st), 0);
	cr_assert(store_error_is_transient(st), "the reason stays: %s", store_errmsg(st));

	out = tu_sql(db, "SELECT count(*) FROM events; SELECT count(*) FROM event_counts;"
	    " SELECT count(*) FROM log_position");
	cr_assert_str_eq(out, "0\n0\n0\n", "nothing of the batch is in the database");
	free(out);

	/* the next batch reconnects */
	cr_assert_eq(store_begin(st), 0, "%s", store_errmsg(st));
	cr_assert_eq(store_add_event(st, &e), 0);
	cr_assert_eq(store_save_position(st, &pos), 0);
	cr_assert_eq(store_commit(st), 0, "%s", store_errmsg(st));
	cr_assert_eq(store_get_position(st, pos.path, &got), 1);
	cr_assert_eq(got.offset, 500);
	store_close(st);
	out = tu_sql(db, "SELECT count(*) FROM events");
	cr_assert_str_eq(out, "1\n");
	free(out);
}
