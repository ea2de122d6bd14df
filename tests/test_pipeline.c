/*
 * test_pipeline - the commit policy (pipeline.h): when a batch of lines is
 * due for its commit.  Real parts: the shipped rules and jails, an SQLite
 * file in a temp dir, and for the rotation case a followed file.  Times are
 * passed explicitly (pipeline_commit_due takes "now"), so nothing here
 * depends on how fast the machine is.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jail.h"
#include "log.h"
#include "pipeline.h"
#include "rules.h"
#include "store.h"
#include "testutil.h"

static char dir[256], db[600];
static struct ruleset *rules;
static struct jailset *jails;
static struct store *st;
static struct pipeline p;

static void
setup(void)
{
	char path[700], err[256];
	struct diag d;

	log_set_quiet(true);
	tu_mkdtemp(dir, sizeof(dir));
	snprintf(db, sizeof(db), "%s/mj.db", dir);
	diag_init(&d);
	snprintf(path, sizeof(path), "%s/rules", tu_srcdir());
	cr_assert_eq(rules_load(path, &rules, &d), 0);
	snprintf(path, sizeof(path), "%s/jails", tu_srcdir());
	cr_assert_eq(jails_load(path, &jails, &d), 0);
	diag_free(&d);
	cr_assert_eq(store_open(db, true, &st, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pipeline_init(&p, rules, jails, st, false), 0);
}

static void
teardown(void)
{
	pipeline_fini(&p);
	store_close(st);
	jails_free(jails);
	rules_free(rules);
	tu_rmrf(dir);
}

TestSuite(pipeline, .init = setup, .fini = teardown);

/* failure - a SASL failure line from ip, stamped now */
static void
failure(const char *ip)
{
	char line[300], stamp[32];
	time_t now = time(NULL);
	int n;

	strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", localtime(&now));
	n = snprintf(line, sizeof(line), "%s mx postfix/submission/smtpd[9]: warning: "
	    "unknown[%s]: SASL LOGIN authentication failed: UGFzc3dvcmQ6", stamp, ip);
	cr_assert_eq(pipeline_line(&p, line, (size_t)n), 0);
}

static char *
query(const char *sql)
{
	return tu_sh_output("sqlite3 '%s' \"%s\"", db, sql);
}

Test(pipeline, without_a_policy_every_batch_is_due)
{
	failure("198.51.100.1");
	cr_assert(pipeline_commit_due(&p, NULL, pipeline_clock_ms()));
}

Test(pipeline, a_line_without_verdict_waits_for_the_delay)
{
	int64_t t0, t1;
	char *out;

	pipeline_set_commit_policy(&p, 50, 100);
	t0 = pipeline_clock_ms();
	cr_assert(pipeline_commit_due(&p, NULL, t0), "nothing waits: due (a no-op)");
	cr_assert_eq(pipeline_commit_wait_ms(&p, t0), -1);
	failure("198.51.100.1");
	t1 = pipeline_clock_ms();
	/* (The line came between t0 and t1.)  Due from 3/4 of the delay (a
	 * wake-up for a later line commits it), and the caller's wait never
	 * passes the whole delay. */
	cr_assert_not(pipeline_commit_due(&p, NULL, t0 + 37), "not due before 3/4 of it");
	cr_assert_geq(pipeline_commit_wait_ms(&p, t0), 50);
	cr_assert_leq(pipeline_commit_wait_ms(&p, t1), 50);
	cr_assert(pipeline_commit_due(&p, NULL, t1 + 38), "due from 3/4 of the delay");
	cr_assert(pipeline_commit_due(&p, NULL, t1 + 50), "due 50 ms after its first line");
	cr_assert_eq(pipeline_commit_wait_ms(&p, t1 + 50), 0);
	out = query("SELECT count(*) FROM events");
	cr_assert_str_eq(out, "0\n", "not committed before it is due: %s", out);
	free(out);
	cr_assert_eq(pipeline_commit(&p, NULL), 0);
	cr_assert_eq(pipeline_commit_wait_ms(&p, t1 + 50), -1, "nothing waits any more");
	out = query("SELECT count(*) FROM events");
	cr_assert_str_eq(out, "1\n", "%s", out);
	free(out);
}

Test(pipeline, later_lines_do_not_push_the_deadline_back)
{
	int64_t t1;

	pipeline_set_commit_policy(&p, 50, 100);
	failure("198.51.100.1");
	t1 = pipeline_clock_ms();
	failure("198.51.100.2");
	failure("198.51.100.3");
	cr_assert(pipeline_commit_wait_ms(&p, t1) <= 50 && pipeline_commit_due(&p, NULL, t1 + 50),
	    "due 50 ms after the first line of the batch, whatever came since");
}

Test(pipeline, a_verdict_is_due_at_once)
{
	int64_t t0;
	char *out;

	pipeline_set_commit_policy(&p, 50, 100);
	t0 = pipeline_clock_ms();
	for (int i = 0; i < 4; i++)
		failure("203.0.113.9");
	cr_assert_not(pipeline_commit_due(&p, NULL, t0), "four failures: no ban yet");
	failure("203.0.113.9");   /* the fifth: sasl-bruteforce bans */
	cr_assert(pipeline_commit_due(&p, NULL, t0), "the ban is due at once");
	cr_assert_eq(pipeline_commit_wait_ms(&p, t0), 0);
	cr_assert_eq(pipeline_commit(&p, NULL), 0);
	out = query("SELECT target || ' ' || (SELECT count(*) FROM events) FROM bans");
	cr_assert_str_eq(out, "203.0.113.9 5\n", "the ban and its five lines: %s", out);
	free(out);
}

Test(pipeline, a_batch_worth_of_lines_is_due)
{
	int64_t t0 = pipeline_clock_ms();

	pipeline_set_commit_policy(&p, 50, 10);
	for (int i = 1; i <= 9; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "198.51.100.%d", i);
		failure(ip);
	}
	cr_assert_not(pipeline_commit_due(&p, NULL, t0), "9 lines of 10");
	failure("198.51.100.10");
	cr_assert(pipeline_commit_due(&p, NULL, t0), "10 lines: due");
}

/* to_pipeline - follow's callback: every line into the pipeline */
static int
to_pipeline(void *arg, size_t file, const char *line, size_t len)
{
	return pipeline_follow_cb(arg, file, line, len);
}

Test(pipeline, a_rotation_waiting_for_the_commit_is_due)
{
	char log[700], rotated[720], line[300], stamp[32];
	struct follow *f;
	time_t now = time(NULL);
	int64_t t0;
	FILE *fp;

	pipeline_set_commit_policy(&p, 50, 100);
	strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", localtime(&now));
	snprintf(line, sizeof(line), "%s mx postfix/submission/smtpd[9]: warning: "
	    "unknown[198.51.100.7]: SASL LOGIN authentication failed: x\n", stamp);
	tu_write(dir, "mail.log", line, log, sizeof(log));
	cr_assert_eq(follow_open(&f, true), 0);
	cr_assert_eq(follow_add(f, log, NULL), 0);
	follow_committed(f);
	t0 = pipeline_clock_ms();
	cr_assert_eq(follow_read(f, to_pipeline, &p, 100), 1);
	cr_assert_not(pipeline_commit_due(&p, f, t0), "one quiet line: it may wait");
	/* Rotated, the new file has a line: the follower waits for the old
	 * one's line to be committed before it reads on. */
	snprintf(rotated, sizeof(rotated), "%s.1", log);
	cr_assert_eq(rename(log, rotated), 0);
	cr_assert_not_null(fp = fopen(log, "w"));
	fputs(line, fp);
	fclose(fp);
	cr_assert_eq(follow_read(f, to_pipeline, &p, 100), 0);
	cr_assert(follow_waits_commit(f));
	cr_assert(pipeline_commit_due(&p, f, t0), "a waiting rotation makes it due");
	cr_assert_eq(pipeline_commit(&p, f), 0);
	cr_assert_eq(follow_read(f, to_pipeline, &p, 100), 1, "then the new file is read");
	follow_close(f);
}
