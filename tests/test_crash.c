/*
 * test_crash - kill -9 at random points (fixed seed) while mailjail replays
 * or follows a large log, restart it, and compare the final database with an
 * uninterrupted run: the same events, the same bans.  Also while the lines
 * trickle in one write each (the daemon then keeps them a while in a batch
 * that waits for its commit), and rotation (rename + create, and
 * copytruncate) while lines are appended: every line exactly once.  On the
 * store under test (SQLite, or MAILJAIL_TEST_DB=pgsql).
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#define KILLS_MIN 20

static char dir[256], bin[512], logf[600];

static void
setup(void)
{
	tu_mkdtemp(dir, sizeof(dir));
	snprintf(bin, sizeof(bin), "%s/mailjail", tu_builddir());
	snprintf(logf, sizeof(logf), "%s/mail.log", dir);
}

static void
teardown(void)
{
	tu_kill_children();
	tu_rmrf(dir);
}

TestSuite(crash, .init = setup, .fini = teardown, .timeout = 240);

static void
write_config(const char *name, const char *db, char *out, size_t len)
{
	char text[4096];

	/* Small batches so that kills land between many commits. */
	snprintf(text, sizeof(text),
	    "[mailjail]\nlog = %s\ndb = %s\nrules = %s/rules\njails = %s/jails\n"
	    "user = root\nbatch_lines = 500\n", logf, db, tu_srcdir(), tu_srcdir());
	tu_write(dir, name, text, out, len);
}

/* big_log - the sample (all of it in one hour), n times, dated three hours
 * ago: inside every shipped jail's longest window (1d), so a restarted
 * daemon restores all of it, as a live one would (dated yesterday, a run
 * between 09:00 and 10:00 straddled that edge: a queued line whose
 * submission fell just outside it lost its join row), and in the past for
 * any clock. */
static void
big_log(int n)
{
	char sample[600];

	snprintf(sample, sizeof(sample), "%s/tests/data/sample-mail.log", tu_srcdir());
	cr_assert_eq(tu_sh("d=$(date -d '3 hours ago' '+%%b %%e %%H'); for i in $(seq %d); do "
	    "sed \"s/^Nov 21 09/$d/\" '%s'; done > '%s'", n, sample, logf), 0);
}

static pid_t
spawn(const char *const argv[])
{
	pid_t pid = tu_fork();

	cr_assert_neq(pid, -1);
	if (pid == 0) {
		FILE *e = freopen("/dev/null", "w", stderr);
		FILE *o = freopen("/dev/null", "w", stdout);
		(void)e; (void)o;
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	return pid;
}

/* digest - events (rows, counts per kind, distinct rows) and bans; with_times
 * false for run mode, where a ban starts at the wall clock of the run that
 * made it */
static char *
digest(const char *db, bool with_times)
{
	return tu_sql(db, "SELECT (SELECT count(*) FROM events) || "
	    "' events, ' || coalesce((SELECT group_concat(c, ' ') FROM (SELECT event || '=' || "
	    "sum(n) AS c FROM event_counts GROUP BY event ORDER BY event) x), '') || ' counted, ' || "
	    "(SELECT count(DISTINCT time || rule || coalesce(ip,'') || "
	    "coalesce(account,'') || coalesce(qid,'')) FROM events) || ' distinct; bans: ' "
	    "|| (SELECT coalesce(group_concat(b, ' '), '') FROM (SELECT jail || '/' || target "
	    "|| '/' || level %s AS b FROM bans ORDER BY jail, target, level) y)",
	    with_times ? "|| '/' || started_at || '/' || expires_at" : "");
}

Test(crash, replay_killed_at_random_points_matches_one_run)
{
	char ref[700], db[700], cfg_ref[700], cfg[700], *a, *b;
	int kills = 0, attempts = 0;
	bool done = false;

	big_log(60);
	tu_db(dir, "ref.db", ref, sizeof(ref));
	tu_db(dir, "killed.db", db, sizeof(db));
	write_config("ref.conf", ref, cfg_ref, sizeof(cfg_ref));
	write_config("killed.conf", db, cfg, sizeof(cfg));
	cr_assert_eq(tu_sh("'%s' replay --dry-run --quiet -c '%s' '%s'", bin, cfg_ref, logf), 0);

	srand(20261122);
	while (!done) {
		const char *argv[] = { "mailjail", "replay", "--dry-run", "--quiet", "-c", cfg,
		    logf, NULL };
		pid_t pid = spawn(argv);
		int st;
		/* Early attempts die young; later ones live longer, so the run
		 * always finishes after enough kills. */
		useconds_t delay = (useconds_t)(2000 + rand() % 30000 + attempts * 4000);

		attempts++;
		usleep(delay);
		if (kills < KILLS_MIN || rand() % 2) {
			if (kill(pid, SIGKILL) == 0)
				kills++;
		}
		cr_assert_eq(tu_waitpid(pid, &st), pid);
		if (WIFEXITED(st)) {
			cr_assert_eq(WEXITSTATUS(st), 0);
			done = kills >= KILLS_MIN;
		}
		cr_assert_lt(attempts, 400, "the replay never finished");
	}
	/* One last full pass, as an operator would after the crashes. */
	cr_assert_eq(tu_sh("'%s' replay --dry-run --quiet -c '%s' '%s'", bin, cfg, logf), 0);
	a = digest(ref, true);
	b = digest(db, true);
	fprintf(stderr, "[info] replay: %d kill -9 survived in %d attempts\n", kills, attempts);
	cr_assert_str_eq(b, a, "after %d kills:\n%s\nuninterrupted:\n%s", kills, b, a);
	free(a);
	free(b);
}

/* wait_caught_up - the daemon's saved offset reached the file's size */
static void
wait_caught_up(const char *db)
{
	struct stat st;
	char want[64];

	cr_assert_eq(stat(logf, &st), 0);
	snprintf(want, sizeof(want), "%lld\n", (long long)st.st_size);
	for (int i = 0; i < 600; i++) {
		char *out = tu_sql(db, "SELECT \"offset\" FROM log_position");
		bool ok = strcmp(out, want) == 0;
		free(out);
		if (ok)
			return;
		usleep(50000);
	}
	cr_assert_fail("daemon did not catch up with %s", logf);
}

Test(crash, run_killed_at_random_points_matches_one_run)
{
	char ref[700], db[700], cfg_ref[700], cfg[700], *a, *b;
	const char *argv_ref[] = { "mailjail", "run", "--dry-run", "-c", NULL, NULL };
	const char *argv[] = { "mailjail", "run", "--dry-run", "-c", NULL, NULL };
	pid_t pid;
	int kills = 0;

	big_log(60);
	tu_db(dir, "ref.db", ref, sizeof(ref));
	tu_db(dir, "killed.db", db, sizeof(db));
	write_config("ref.conf", ref, cfg_ref, sizeof(cfg_ref));
	write_config("killed.conf", db, cfg, sizeof(cfg));
	argv_ref[4] = cfg_ref;
	argv[4] = cfg;

	pid = spawn(argv_ref);
	wait_caught_up(ref);
	kill(pid, SIGTERM);
	cr_assert_eq(tu_waitpid(pid, NULL), pid);

	srand(1122);
	for (int i = 0; i < KILLS_MIN; i++) {
		pid = spawn(argv);
		usleep((useconds_t)(5000 + rand() % 40000 + i * 3000));
		if (kill(pid, SIGKILL) == 0)
			kills++;
		cr_assert_eq(tu_waitpid(pid, NULL), pid);
	}
	pid = spawn(argv);
	wait_caught_up(db);
	kill(pid, SIGTERM);
	cr_assert_eq(tu_waitpid(pid, NULL), pid);
	a = digest(ref, false);
	b = digest(db, false);
	fprintf(stderr, "[info] run: %d kill -9 survived\n", kills);
	cr_assert_str_eq(b, a, "after %d kills:\n%s\nuninterrupted:\n%s", kills, b, a);
	free(a);
	free(b);
}

/* trickle - append lines[*next..*next + n) one write(2) each, ~1 ms apart */
static void
trickle(char **lines, size_t nlines, size_t *next, size_t n)
{
	int fd = open(logf, O_WRONLY | O_APPEND);

	cr_assert_geq(fd, 0);
	for (size_t i = 0; i < n && *next < nlines; i++, (*next)++) {
		size_t len = strlen(lines[*next]);
		cr_assert_eq(write(fd, lines[*next], len), (ssize_t)len);
		usleep(1000);
	}
	close(fd);
}

/*
 * Lines appended one at a time: the daemon holds the ones that issue no
 * verdict in a batch that waits (tens of ms) for the lines after them, so
 * a kill lands, time and again, on lines read and not committed.  They must
 * be read again after the restart, exactly once.  The test also checks
 * that it did catch the daemon with such lines (its descriptor's position
 * past the committed offset), or it would prove nothing.
 */
Test(crash, run_killed_while_lines_trickle_in_matches_one_run)
{
	char ref[700], db[700], cfg_ref[700], cfg[700], src[700], *a, *b, *text, **lines;
	const char *argv_ref[] = { "mailjail", "run", "--dry-run", "-c", NULL, NULL };
	const char *argv[] = { "mailjail", "run", "--dry-run", "-c", NULL, NULL };
	size_t nlines = 0, next = 0;
	int kills = 0, caught = 0;
	pid_t pid;

	/* The lines to append, from a log made as big_log does. */
	big_log(3);
	snprintf(src, sizeof(src), "%s/source.log", dir);
	cr_assert_eq(rename(logf, src), 0);
	text = tu_sh_output("cat '%s'", src);
	lines = calloc(strlen(text) + 1, sizeof(*lines));
	cr_assert_not_null(lines);
	for (char *p = text, *nl; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
		/* Each line keeps its newline: one write each. */
		size_t len = (size_t)(nl - p) + 1;
		lines[nlines] = strndup(p, len);
		cr_assert_not_null(lines[nlines]);
		nlines++;
	}
	snprintf(ref, sizeof(ref), "%s/ref.db", dir);
	snprintf(db, sizeof(db), "%s/killed.db", dir);
	tu_write(dir, "mail.log", "", logf, sizeof(logf));
	write_config("ref.conf", ref, cfg_ref, sizeof(cfg_ref));
	write_config("killed.conf", db, cfg, sizeof(cfg));
	argv_ref[4] = cfg_ref;
	argv[4] = cfg;

	srand(20261206);
	for (int i = 0; i < KILLS_MIN; i++) {
		long long pos, saved;
		int fd = -1;

		pid = spawn(argv);
		/* Until it has the log open: the lines are for its loop. */
		for (int k = 0; k < 2000 && (fd = tu_open_fd(pid, logf)) < 0; k++)
			usleep(5000);
		cr_assert_geq(fd, 0, "the daemon opened the log");
		trickle(lines, nlines, &next, (size_t)(20 + rand() % 60));
		pos = tu_fd_offset(pid, fd);
		saved = tu_saved_offset(db, logf);
		if (pos > saved)
			caught++;
		if (kill(pid, SIGKILL) == 0)
			kills++;
		cr_assert_eq(tu_waitpid(pid, NULL), pid);
	}
	cr_assert_lt(next, nlines, "lines left for the last run");
	pid = spawn(argv);
	trickle(lines, nlines, &next, nlines);
	wait_caught_up(db);
	kill(pid, SIGTERM);
	cr_assert_eq(tu_waitpid(pid, NULL), pid);

	/* The reference: one run over the whole file. */
	pid = spawn(argv_ref);
	wait_caught_up(ref);
	kill(pid, SIGTERM);
	cr_assert_eq(tu_waitpid(pid, NULL), pid);
	a = digest(ref, false);
	b = digest(db, false);
	fprintf(stderr, "[info] run, lines one at a time: %d kill -9 survived, %d of them "
	    "with lines read and not yet committed\n", kills, caught);
	cr_assert_geq(caught, KILLS_MIN / 4, "only %d kills caught read, uncommitted lines",
	    caught);
	cr_assert_str_eq(b, a, "after %d kills:\n%s\nuninterrupted:\n%s", kills, b, a);
	for (size_t i = 0; i < nlines; i++)
		free(lines[i]);
	free(lines);
	free(text);
	free(a);
	free(b);
}

/* append_numbered - n failure lines, each from its own address */
static void
append_numbered(const char *path, int from, int n)
{
	FILE *fp = fopen(path, "a");
	char stamp[32];
	time_t now = time(NULL);

	cr_assert_not_null(fp);
	strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", localtime(&now));
	for (int i = from; i < from + n; i++)
		fprintf(fp, "%s mx postfix/smtpd[1]: warning: unknown[10.%d.%d.%d]: SASL LOGIN "
		    "authentication failed: x\n", stamp, (i >> 16) & 255, (i >> 8) & 255, i & 255);
	fclose(fp);
}

/* wait_events - until the DB holds exactly n events */
static void
wait_events(const char *db, int n)
{
	char want[32];

	snprintf(want, sizeof(want), "%d\n", n);
	for (int i = 0; i < 300; i++) {
		char *out = tu_sql(db, "SELECT count(*) FROM events");
		bool ok = strcmp(out, want) == 0;
		free(out);
		if (ok)
			return;
		usleep(20000);
	}
	cr_assert_fail("never reached %d events", n);
}

static void
rotation_test(bool copytruncate)
{
	char db[700], cfg[700], want[64];
	const char *argv[] = { "mailjail", "run", "--dry-run", "-c", NULL, NULL };
	pid_t pid;
	int total = 0;

	tu_db(dir, "rot.db", db, sizeof(db));
	write_config("rot.conf", db, cfg, sizeof(cfg));
	argv[4] = cfg;
	tu_write(dir, "mail.log", "", logf, sizeof(logf));
	pid = spawn(argv);
	for (int round = 0; round < 6; round++) {
		for (int k = 0; k < 10; k++) {
			append_numbered(logf, total, 100);
			total += 100;
			usleep(2000);
		}
		if (copytruncate) {
			/* Lines written after mailjail's last read and before the
			 * truncate exist only in the copy: wait, as that race is
			 * copytruncate's own (use rename rotation where you can). */
			wait_events(db, total);
			cr_assert_eq(tu_sh("cp '%s' '%s.%d' && : > '%s'", logf, logf, round, logf), 0);
		} else {
			char rotated[700];
			/* Rotation is daily in life: two before mailjail looks again
			 * would skip the file in between (follow.h says so). */
			wait_events(db, total);
			snprintf(rotated, sizeof(rotated), "%s.%d", logf, round);
			cr_assert_eq(rename(logf, rotated), 0);
			append_numbered(rotated, total, 50);   /* late writer on the old file */
			total += 50;
			tu_write(dir, "mail.log", "", logf, sizeof(logf));
		}
	}
	append_numbered(logf, total, 100);
	total += 100;
	snprintf(want, sizeof(want), "%d\n", total);
	for (int i = 0; i < 300; i++) {
		char *out = tu_sql(db, "SELECT count(DISTINCT ip) FROM events;"
		    " SELECT count(*) FROM events");
		char both[140];
		snprintf(both, sizeof(both), "%s%s", want, want);
		if (strcmp(out, both) == 0) {
			free(out);
			kill(pid, SIGTERM);
			cr_assert_eq(tu_waitpid(pid, NULL), pid);
			return;
		}
		if (i == 299)
			cr_assert_fail("expected %d distinct lines exactly once, got %s", total, out);
		free(out);
		usleep(50000);
	}
}

Test(crash, rename_rotation_while_appending_loses_nothing)
{
	rotation_test(false);
}

Test(crash, copytruncate_while_appending_loses_nothing)
{
	rotation_test(true);
}
