/*
 * test_store_tx - white-box: store_sqlite.c compiled into the test (its
 * statics and its sqlite3 handle in reach), to make SQLite roll a batch back by itself
 * in the middle of store_commit, as it does on some I/O, full-disk and
 * out-of-memory errors.  Nothing written after that may land: the batch
 * must vanish whole, or a re-read after the rollback counts twice.
 */
#include "../src/store_sqlite.c"

#include <criterion/criterion.h>

#include "testutil.h"

static char dir[256], db[600];

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

TestSuite(store_tx, .init = setup, .fini = teardown);

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

Test(store_tx, a_batch_sqlite_rolled_back_leaves_nothing)
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
