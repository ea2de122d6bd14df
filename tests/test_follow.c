/*
 * test_follow - follow against real files in a temporary directory and the
 * real inotify (no mocks).  Each test makes its own directory; criterion runs
 * each test in its own process, so libinotifytools' global state is fresh.
 * Waits are bounded and never asserted as timings.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "follow.h"
#include "log.h"

#define MAXL 256

struct got {
	size_t n;
	size_t file[MAXL];
	size_t len[MAXL];
	char line[MAXL][64];      /* first 63 bytes of each line */
	int stop_after;           /* > 0: cb returns 1 after this many lines */
};

static char dir[64];

static void
setup(void)
{
	log_init("test_follow", false);
	log_set_quiet(true);
	strcpy(dir, "/tmp/mjfollow.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void
teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

TestSuite(follow, .init = setup, .fini = teardown, .timeout = 10);

static const char *
p(const char *name)
{
	static char buf[4][256];
	static int k;

	k = (k + 1) % 4;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", dir, name);
	return buf[k];
}

static void
put(const char *path, const char *s, size_t len, int flags)
{
	int fd = open(path, O_WRONLY | O_CREAT | flags, 0644);

	cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
	cr_assert_eq(write(fd, s, len), (ssize_t)len);
	close(fd);
}

static void
append(const char *path, const char *s)
{
	put(path, s, strlen(s), O_APPEND);
}

static int
collect(void *arg, size_t file, const char *line, size_t len)
{
	struct got *g = arg;

	cr_assert_lt(g->n, MAXL);
	g->file[g->n] = file;
	g->len[g->n] = len;
	snprintf(g->line[g->n], sizeof(g->line[0]), "%.*s",
	    (int)(len < 63 ? len : 63), line);
	g->n++;
	return g->stop_after > 0 && g->n >= (size_t)g->stop_after;
}

/* drain - read until nothing is available now */
static void
drain(struct follow *f, struct got *g)
{
	long r;

	while ((r = follow_read(f, collect, g, 1000)) > 0)
		;
	cr_assert_eq(r, 0);
}

/* want - read (waiting when needed) until n lines in all, at most ~1.5 s */
static void
want(struct follow *f, struct got *g, size_t n)
{
	for (int i = 0; i < 30 && g->n < n; i++) {
		drain(f, g);
		if (g->n >= n)
			break;
		cr_assert_neq(follow_wait(f, 50), -1);
	}
	drain(f, g);
	cr_assert_eq(g->n, n, "got %zu lines, want %zu", g->n, n);
}

static void
expect(struct got *g, size_t from, const char *const *lines, size_t n)
{
	for (size_t i = 0; i < n; i++)
		cr_expect_str_eq(g->line[from + i], lines[i], "line %zu",
		    from + i);
}

static uint64_t
inode_of(const char *path)
{
	struct stat st;

	cr_assert_eq(stat(path, &st), 0);
	return st.st_ino;
}

static uint64_t
size_of(const char *path)
{
	struct stat st;

	cr_assert_eq(stat(path, &st), 0);
	return (uint64_t)st.st_size;
}

Test(follow, append_and_read)
{
	struct follow *f;
	struct got g = {0};
	const char *log = p("mail.log");

	append(log, "one\ntwo\n");
	cr_assert_eq(follow_open(&f, true), 0);
	cr_assert_eq(follow_add(f, log, NULL), 0);
	drain(f, &g);
	cr_assert_eq(g.n, 2);
	append(log, "three\n");
	cr_assert_eq(follow_wait(f, 1500), 1);
	drain(f, &g);
	const char *w[] = {"one", "two", "three"};
	cr_assert_eq(g.n, 3);
	expect(&g, 0, w, 3);

	struct log_position pos;
	follow_position(f, 0, &pos);
	cr_expect_str_eq(pos.path, log);
	cr_expect_eq(pos.inode, inode_of(log));
	cr_expect_eq(pos.offset, 14);
	cr_expect_eq(pos.first_hash, follow_hash_line("one", 3));
	follow_close(f);
}

Test(follow, hash_is_fnv1a)
{
	cr_expect_eq(follow_hash_line("", 0), 0xcbf29ce484222325ULL);
	cr_expect_eq(follow_hash_line("a", 1), 0xaf63dc4c8601ec8cULL);
}

Test(follow, max_lines_and_stop)
{
	struct follow *f;
	struct got g = {0};
	struct log_position pos;
	const char *log = p("mail.log");

	append(log, "a\nb\nc\nd\n");
	cr_assert_eq(follow_open(&f, false), 0);
	cr_assert_eq(follow_add(f, log, NULL), 0);
	cr_assert_eq(follow_read(f, collect, &g, 2), 2);
	follow_position(f, 0, &pos);
	cr_expect_eq(pos.offset, 4, "position is after the delivered lines");
	g.stop_after = 3;
	cr_assert_eq(follow_read(f, collect, &g, 10), 1);
	follow_position(f, 0, &pos);
	cr_expect_eq(pos.offset, 6);
	g.stop_after = 0;
	cr_assert_eq(follow_read(f, collect, &g, 10), 1);
	cr_assert_eq(follow_read(f, collect, &g, 10), 0);
	const char *w[] = {"a", "b", "c", "d"};
	expect(&g, 0, w, 4);
	follow_close(f);
}

Test(follow, partial_line_held)
{
	struct follow *f;
	struct got g = {0};
	struct log_position pos;
	const char *log = p("mail.log");

	append(log, "first\nabc");
	cr_assert_eq(follow_open(&f, true), 0);
	cr_assert_eq(follow_add(f, log, NULL), 0);
	drain(f, &g);
	cr_assert_eq(g.n, 1);
	follow_position(f, 0, &pos);
	cr_expect_eq(pos.offset, 6);
	append(log, "def\n");
	want(f, &g, 2);
	cr_expect_str_eq(g.line[1], "abcdef");
	follow_position(f, 0, &pos);
	cr_expect_eq(pos.offset, 13);
	follow_close(f);
}

Test(follow, oneshot_partial_last_line_held)
{
	struct follow *f;
	struct got g = {0};
	struct log_position pos;
	const char *log = p("mail.log");

	append(log, "a\nno newline");
	cr_assert_eq(follow_open(&f, false), 0);
	cr_assert_eq(follow_add(f, log, NULL), 0);
	drain(f, &g);
	cr_assert_eq(g.n, 1);
	follow_position(f, 0, &pos);
	cr_expect_eq(pos.offset, 2);
	follow_close(f);
}

Test(follow, oneshot_missing_is_error)
{
	struct follow *f;

	cr_assert_eq(follow_open(&f, false), 0);
	cr_expect_eq(follow_add(f, p("nothere.log"), NULL), -1);
	cr_expect_eq(follow_count(f), 0);
	follow_close(f);
}

Test(follow, rotation_with_pending_lines)
{
	struct follow *f;
	struct got g = {0};
	struct log_position pos;
	const char *log = p("mail.log");

	append(log, "a1\na2\na3\n");
	cr_assert_eq(follow_open(&f, true), 0);
	cr_assert_eq(follow_add(f, log, NULL), 0);
	cr_assert_eq(follow_read(f, collect, &g, 1), 1);
	append(log, "a4\n");
	cr_assert_eq(rename(log, p("mail.log.1")), 0);
	append(p("mail.log.1"), "a5\n");   /* writer not reopened yet */
	append(log, "b1\nb2\n");
	want(f, &g, 7);
	const char *w[] = {"a1", "a2", "a3", "a4", "a5", "b1", "b2"};
	expect(&g, 0, w, 7);
	follow_position(f, 0, &pos);
	cr_expect_eq(pos.inode, inode_of(log), "position names the new file");
	cr_expect_eq(pos.offset, 6);
	cr_expect_eq(pos.first_hash, follow_hash_line("b1", 2));
	append(log, "b3\n");
	want(f, &g, 8);
	cr_expect_str_eq(g.line[7], "b3");
	follow_close(f);
}

Test(follow, rotation_waits_for_writer_to_move)
{
	struct follow *f;
	struct got g = {0};
	const char *log = p("mail.log");

	append(log, "a1\n");
	cr_assert_eq(follow_open(&f, true), 0);
	cr_assert_eq(follow_add(f, log, NULL), 0);
	drain(f, &g);
	cr_assert_eq(rename(log, p("mail.log.1")), 0);
	append(log, "");                   /* logrotate "create" */
	drain(f, &g);
	append(p("mail.log.1"), "a2\n");   /* still written until HUP */
	want(f, &g, 2);
	append(log, "b1\n");
	want(f, &g, 3);
	const char *w[] = {"a1", "a2", "b1"};
	expect(&g, 0, w, 3);
	follow_close(f);
}

/*
 * A caller that commits (follow_committed): a rotation is crossed only once
 * the old file's lines are committed, so a rewind after a refused batch
 * always finds them, whatever was renamed meanwhile.
 */
Test(follow, committed_rotation_waits_and_rewinds)
{
	struct follow *f;
	struct got g = {0};
	struct log_position c, a_end, pos;
	const char *log = p("mail.log");
	uint64_t ino_a, ino_b;

	append(log, "a1\n");
	ino_a = inode_of(log);
	cr_assert_eq(follow_open(&f, true), 0);
	cr_assert_eq(follow_add(f, log, NULL), 0);
	follow_committed(f);
	want(f, &g, 1);
	follow_committed(f);
	follow_position(f, 0, &c);   /* (A, 3): what the DB has */
	append(log, "a2\n");
	cr_assert_eq(rename(log, p("mail.log.1")), 0);
	append(log, "b1\n");
	ino_b = inode_of(log);
	want(f, &g, 2);
	drain(f, &g);
	cr_assert_eq(g.n, 2, "b1 waits for the commit of a2");
	cr_expect_eq(follow_wait(f, 0), 1, "no sleep while the switch waits");
	follow_position(f, 0, &a_end);
	cr_expect_eq(a_end.inode, ino_a);
	cr_expect_eq(a_end.offset, 6);
	/* The batch (a2) was refused: go back in the renamed file. */
	cr_assert_eq(follow_rewind(f, 0, &c), 0);
	drain(f, &g);
	cr_assert_eq(g.n, 3);
	cr_expect_str_eq(g.line[2], "a2");
	/* Committed: now the new file. */
	follow_committed(f);
	drain(f, &g);
	cr_assert_eq(g.n, 4);
	cr_expect_str_eq(g.line[3], "b1");
	follow_position(f, 0, &pos);
	cr_expect_eq(pos.inode, ino_b);
	cr_expect_eq(pos.offset, 3);
	/* The batch with b1 was refused: the DB has the old file's end,
	 * which is the new one's start. */
	cr_assert_eq(follow_rewind(f, 0, &a_end), 0);
	drain(f, &g);
	cr_assert_eq(g.n, 5);
	cr_expect_str_eq(g.line[4], "b1");
	/* Refused again, and the new file is rotated too meanwhile: it is
	 * still read again, and left only after a commit. */
	cr_assert_eq(rename(log, p("mail.log.2")), 0);
	append(log, "c1\n");
	cr_assert_eq(follow_rewind(f, 0, &a_end), 0);
	drain(f, &g);
	cr_assert_eq(g.n, 6);
	cr_expect_str_eq(g.line[5], "b1");
	follow_committed(f);
	drain(f, &g);
	cr_assert_eq(g.n, 7);
	cr_expect_str_eq(g.line[6], "c1");
	follow_close(f);
}

Test(follow, deleted_and_recreated)
{
	struct follow *f;
	struct got g = {0};
	struct log_position pos;
	const char *log = p("mail.log");

	append(log, "a1\n");
	cr_assert_eq(follow_open(&f, true), 0);
	cr_assert_eq(follow_add(f, log, NULL), 0);
	drain(f, &g);
	cr_assert_eq(unlink(log), 0);
	append(log, "");
	want(f, &g, 1);
	follow_position(f, 0, &pos);
	cr_expect_eq(pos.inode, inode_of(log));
	cr_expect_eq(pos.offset, 0);
	append(log, "b1\n");
	want(f, &g, 2);
	cr_expect_str_eq(g.line[1], "b1");
	follow_close(f);
}

Test(follow, copytruncate)
{
	struct follow *f;
	struct got g = {0};
	struct log_position pos;
	const char *log = p("mail.log");

	append(log, "a long first line\nanother long line\n");
	cr_assert_eq(follow_open(&f, true), 0);
	cr_assert_eq(follow_add(f, log, NULL), 0);
	drain(f, &g);
	cr_assert_eq(g.n, 2);
	cr_assert_eq(truncate(log, 0), 0);
	append(log, "x1\n");
	want(f, &g, 3);
	cr_expect_str_eq(g.line[2], "x1");
	follow_position(f, 0, &pos);
	cr_expect_eq(pos.offset, 3);
	cr_expect_eq(pos.first_hash, follow_hash_line("x1", 2));
	follow_close(f);
}

/* A rewind in the same file checks that it still holds what pos names:
 * after copytruncate and a refill past pos, everything is new. */
Test(follow, rewind_after_rewrite_reads_from_start)
{
	struct follow *f;
	struct got g = {0};
	struct log_position pos;
	const char *log = p("mail.log");

	append(log, "first line\nsecond\n");
	cr_assert_eq(follow_open(&f, true), 0);
	cr_assert_eq(follow_add(f, log, NULL), 0);
	want(f, &g, 2);
	follow_position(f, 0, &pos);
	cr_assert_eq(pos.offset, 18);
	append(log, "third\n");
	want(f, &g, 3);
	/* Unchanged file: back to pos. */
	cr_assert_eq(follow_rewind(f, 0, &pos), 0);
	drain(f, &g);
	cr_assert_eq(g.n, 4);
	cr_expect_str_eq(g.line[3], "third");
	/* Truncated and refilled beyond what was read (24 bytes). */
	cr_assert_eq(truncate(log, 0), 0);
	append(log, "new1\nnew2\nnew3\nnew4\nnew5\n");
	cr_assert_eq(follow_rewind(f, 0, &pos), 0);
	drain(f, &g);
	cr_assert_eq(g.n, 9, "got %zu lines", g.n);
	const char *w[] = {"new1", "new2", "new3", "new4", "new5"};
	expect(&g, 4, w, 5);
	follow_position(f, 0, &pos);
	cr_expect_eq(pos.offset, 25);
	cr_expect_eq(pos.first_hash, follow_hash_line("new1", 4));
	follow_close(f);
}

Test(follow, missing_then_created)
{
	struct follow *f;
	struct got g = {0};
	const char *log = p("mail.log");

	cr_assert_eq(follow_open(&f, true), 0);
	cr_assert_eq(follow_add(f, log, NULL), 0);
	drain(f, &g);
	cr_assert_eq(g.n, 0);
	append(log, "hello\n");
	cr_assert_eq(follow_wait(f, 1500), 1);
	want(f, &g, 1);
	cr_expect_str_eq(g.line[0], "hello");
	follow_close(f);
}

Test(follow, fifo_or_directory_treated_as_missing)
{
	struct follow *f;
	struct got g = {0};
	const char *fifo = p("fifo.log"), *d = p("dir.log");

	cr_assert_eq(mkfifo(fifo, 0644), 0);
	cr_assert_eq(mkdir(d, 0755), 0);
	cr_assert_eq(follow_open(&f, false), 0);
	cr_expect_eq(follow_add(f, fifo, NULL), -1);
	cr_expect_eq(follow_add(f, d, NULL), -1);
	follow_close(f);

	cr_assert_eq(follow_open(&f, true), 0);
	cr_assert_eq(follow_add(f, fifo, NULL), 0);
	cr_assert_eq(follow_add(f, d, NULL), 1);
	drain(f, &g);
	cr_assert_eq(g.n, 0);
	cr_assert_eq(unlink(fifo), 0);
	append(fifo, "now a file\n");
	want(f, &g, 1);
	cr_expect_eq(g.file[0], 0);
	follow_close(f);
}

static void
long_line_case(bool watch)
{
	struct follow *f;
	struct got g = {0};
	const char *log = p("mail.log");
	size_t big = FOLLOW_LINE_MAX + 100;
	char *x = malloc(big);

	cr_assert_not_null(x);
	memset(x, 'x', big);
	append(log, "a\n");
	put(log, x, big, O_APPEND);
	append(log, "\nb\n");
	cr_assert_eq(follow_open(&f, watch), 0);
	cr_assert_eq(follow_add(f, log, NULL), 0);
	drain(f, &g);
	cr_assert_eq(g.n, 2);
	cr_expect_eq(follow_skipped_lines(f), 1);
	/* Split across reads: half now, the rest later. */
	put(log, x, big / 2, O_APPEND);
	drain(f, &g);
	put(log, x, big / 2, O_APPEND);
	drain(f, &g);
	append(log, "\nc\n");
	if (watch)
		want(f, &g, 3);
	else
		drain(f, &g);
	const char *w[] = {"a", "b", "c"};
	cr_assert_eq(g.n, 3);
	expect(&g, 0, w, 3);
	cr_expect_eq(follow_skipped_lines(f), 2);
	/* Exactly FOLLOW_LINE_MAX is still a line. */
	put(log, x, FOLLOW_LINE_MAX, O_APPEND);
	append(log, "\n");
	if (watch)
		want(f, &g, 4);
	else
		drain(f, &g);
	cr_expect_eq(g.len[3], FOLLOW_LINE_MAX);
	follow_close(f);
	free(x);
}

Test(follow, long_line_skipped_watch) { long_line_case(true); }
Test(follow, long_line_skipped_oneshot) { long_line_case(false); }

static int
collect_count(void *arg, size_t file, const char *line, size_t len)
{
	size_t *count = arg;

	(void)file;
	cr_assert_eq(len, 18, "bad line of %zu bytes", len);
	cr_assert(memcmp(line, "line ", 5) == 0 || memcmp(line, "tail ", 5) == 0);
	(*count)++;
	return 0;
}

/* A long line and ordinary lines straddling the 1 MiB read buffer. */
Test(follow, big_file_across_buffers)
{
	struct follow *f;
	const char *log = p("big.log");
	size_t n = 0, big = FOLLOW_LINE_MAX * 3;
	FILE *fp = fopen(log, "w");

	cr_assert_not_null(fp);
	/* ~1 MiB - 1000 bytes of 20-byte lines, then a long line. */
	for (n = 0; n < (1024 * 1024 - 1000) / 20; n++)
		fprintf(fp, "line %013zu\n", n);
	for (size_t i = 0; i < big; i++)
		fputc('y', fp);
	fputc('\n', fp);
	for (size_t i = 0; i < 100000; i++)
		fprintf(fp, "tail %013zu\n", i);
	cr_assert_eq(fclose(fp), 0);

	cr_assert_eq(follow_open(&f, false), 0);
	cr_assert_eq(follow_add(f, log, NULL), 0);
	size_t count = 0;
	long r;
	while ((r = follow_read(f, collect_count, &count, 4096)) > 0)
		;
	cr_assert_eq(r, 0);
	cr_expect_eq(count, n + 100000);
	cr_expect_eq(follow_skipped_lines(f), 1);
	struct log_position pos;
	follow_position(f, 0, &pos);
	cr_expect_eq(pos.offset, size_of(log));
	follow_close(f);
}

Test(follow, restart_resumes_exactly)
{
	struct follow *f;
	struct got g = {0}, g2 = {0};
	struct log_position pos;
	const char *log = p("mail.log");

	append(log, "l1\nl2\nl3\n");
	cr_assert_eq(follow_open(&f, true), 0);
	cr_assert_eq(follow_add(f, log, NULL), 0);
	cr_assert_eq(follow_read(f, collect, &g, 2), 2);
	follow_position(f, 0, &pos);
	follow_close(f);

	append(log, "l4\n");
	cr_assert_eq(follow_open(&f, true), 0);
	cr_assert_eq(follow_add(f, log, &pos), 0);
	drain(f, &g2);
	const char *w[] = {"l3", "l4"};
	cr_assert_eq(g2.n, 2);
	expect(&g2, 0, w, 2);
	follow_close(f);
}

Test(follow, resume_after_rotation_starts_at_zero)
{
	struct follow *f;
	struct got g = {0};
	struct log_position pos;
	const char *log = p("mail.log");

	append(log, "old1\nold2\n");
	cr_assert_eq(follow_open(&f, false), 0);
	cr_assert_eq(follow_add(f, log, NULL), 0);
	drain(f, &g);
	follow_position(f, 0, &pos);
	follow_close(f);

	cr_assert_eq(rename(log, p("mail.log.1")), 0);
	append(log, "new1\nnew2\nnew3\n");
	g.n = 0;
	cr_assert_eq(follow_open(&f, false), 0);
	cr_assert_eq(follow_add(f, log, &pos), 0);
	drain(f, &g);
	const char *w[] = {"new1", "new2", "new3"};
	cr_assert_eq(g.n, 3);
	expect(&g, 0, w, 3);
	follow_close(f);
}

Test(follow, first_line_mismatch_starts_at_zero)
{
	struct follow *f;
	struct got g = {0};
	struct log_position pos;
	const char *log = p("mail.log");

	append(log, "first\nsecond\n");
	cr_assert_eq(follow_open(&f, false), 0);
	cr_assert_eq(follow_add(f, log, NULL), 0);
	drain(f, &g);
	follow_position(f, 0, &pos);
	follow_close(f);

	/* Same inode, bigger than the offset, other first line. */
	put(log, "other\nsecond\nthird\n", 20, O_TRUNC);
	cr_assert_eq(pos.inode, inode_of(log));
	g.n = 0;
	cr_assert_eq(follow_open(&f, false), 0);
	cr_assert_eq(follow_add(f, log, &pos), 0);
	drain(f, &g);
	cr_assert_eq(g.n, 3);
	cr_expect_str_eq(g.line[0], "other");
	follow_close(f);
}

Test(follow, resume_position_kept_while_missing)
{
	struct follow *f;
	struct log_position pos = {0}, out;
	const char *log = p("mail.log");

	strcpy(pos.path, log);
	pos.inode = 12345;
	pos.offset = 99;
	pos.first_hash = 7;
	cr_assert_eq(follow_open(&f, true), 0);
	cr_assert_eq(follow_add(f, log, &pos), 0);
	follow_position(f, 0, &out);
	cr_expect_eq(out.inode, 12345);
	cr_expect_eq(out.offset, 99);
	follow_close(f);
}

Test(follow, wait_wakes_on_append)
{
	struct follow *f;
	struct got g = {0};
	const char *log = p("mail.log");
	pid_t pid;
	int st;

	append(log, "");
	cr_assert_eq(follow_open(&f, true), 0);
	cr_assert_eq(follow_add(f, log, NULL), 0);
	drain(f, &g);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		usleep(50 * 1000);
		int fd = open(log, O_WRONLY | O_APPEND);
		_exit(fd < 0 || write(fd, "late\n", 5) != 5);
	}
	cr_expect_eq(follow_wait(f, 5000), 1);
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert_eq(st, 0);
	drain(f, &g);
	cr_expect_eq(g.n, 1);
	follow_close(f);
}

/*
 * Pacing: after a read that delivered lines, events wait out the pace, so a
 * line appended soon after comes with the ones after it, in one read.  (A
 * pace of 2 s against a writer 50 ms apart: a margin, not a timing.)
 */
Test(follow, pace_reads_close_lines_together)
{
	struct follow *f;
	struct got g = {0};
	const char *log = p("mail.log");
	pid_t pid;
	int st;

	append(log, "a1\n");
	cr_assert_eq(follow_open(&f, true), 0);
	cr_assert_eq(follow_add(f, log, NULL), 0);
	follow_set_pace(f, 2000);
	cr_assert_eq(follow_read(f, collect, &g, 100), 1, "the first line at once");
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_APPEND);
		if (fd < 0 || write(fd, "a2\n", 3) != 3)
			_exit(1);
		usleep(50 * 1000);
		_exit(write(fd, "a3\n", 3) != 3);
	}
	cr_expect_eq(follow_wait(f, 5000), 1);
	cr_assert_eq(follow_read(f, collect, &g, 100), 2, "both lines in one read");
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert_eq(st, 0);
	const char *w[] = {"a1", "a2", "a3"};
	expect(&g, 0, w, 3);
	follow_close(f);
}

/*
 * Events are only a hint: a log whose directory does not exist yet cannot
 * be watched, and no event says when the directory and the log appear; the
 * periodic look finds it anyway.
 */
Test(follow, periodic_look_finds_what_no_event_announced)
{
	struct follow *f;
	struct got g = {0};
	char sub[128], log[160];

	snprintf(sub, sizeof(sub), "%s/sub", dir);
	snprintf(log, sizeof(log), "%s/mail.log", sub);
	cr_assert_eq(follow_open(&f, true), 0);
	cr_assert_eq(follow_add(f, log, NULL), 0);
	drain(f, &g);
	cr_assert_eq(mkdir(sub, 0755), 0);
	append(log, "a1\n");
	for (int i = 0; i < 60 && g.n < 1; i++) {
		cr_assert_neq(follow_wait(f, 100), -1);
		drain(f, &g);
	}
	cr_assert_eq(g.n, 1, "the log was found");
	cr_expect_str_eq(g.line[0], "a1");
	follow_close(f);
}

Test(follow, other_files_in_directory_do_not_wake)
{
	struct follow *f;
	struct got g = {0};
	const char *log = p("mail.log");

	append(log, "x\n");
	cr_assert_eq(follow_open(&f, true), 0);
	cr_assert_eq(follow_add(f, log, NULL), 0);
	drain(f, &g);
	append(p("syslog"), "noise\n");
	cr_expect_eq(follow_wait(f, 100), 0);
	follow_close(f);
}

static void
on_alarm(int sig)
{
	(void)sig;
}

Test(follow, signal_wakes_wait)
{
	struct follow *f;
	struct sigaction sa;
	struct itimerval it = {{0, 0}, {0, 50 * 1000}};
	const char *log = p("mail.log");

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;   /* no SA_RESTART: poll returns EINTR */
	cr_assert_eq(sigaction(SIGALRM, &sa, NULL), 0);
	append(log, "");
	cr_assert_eq(follow_open(&f, true), 0);
	cr_assert_eq(follow_add(f, log, NULL), 0);
	cr_assert_eq(setitimer(ITIMER_REAL, &it, NULL), 0);
	cr_expect_eq(follow_wait(f, -1), 0);
	follow_close(f);
}

Test(follow, two_files)
{
	struct follow *f;
	struct got g = {0};
	char sub[300];
	const char *a = p("mail.log"), *b = p("mail.err");

	snprintf(sub, sizeof(sub), "%s/sub", dir);
	cr_assert_eq(mkdir(sub, 0755), 0);
	char c[320];
	snprintf(c, sizeof(c), "%s/other.log", sub);

	append(a, "a1\n");
	append(b, "b1\n");
	cr_assert_eq(follow_open(&f, true), 0);
	cr_assert_eq(follow_add(f, a, NULL), 0);
	cr_assert_eq(follow_add(f, b, NULL), 1);
	cr_assert_eq(follow_add(f, c, NULL), 2);
	cr_assert_eq(follow_count(f), 3);
	want(f, &g, 2);
	append(c, "c1\n");
	want(f, &g, 3);
	append(b, "b2\n");
	want(f, &g, 4);
	append(a, "a2\n");
	want(f, &g, 5);
	size_t wf[] = {0, 1, 2, 1, 0};
	const char *wl[] = {"a1", "b1", "c1", "b2", "a2"};
	for (size_t i = 0; i < 5; i++) {
		cr_expect_eq(g.file[i], wf[i], "line %zu", i);
		cr_expect_str_eq(g.line[i], wl[i]);
	}
	/* Rotate one of two files sharing a directory. */
	cr_assert_eq(rename(b, p("mail.err.1")), 0);
	append(b, "b3\n");
	want(f, &g, 6);
	cr_expect_eq(g.file[5], 1);
	cr_expect_str_eq(g.line[5], "b3");
	follow_close(f);
}

Test(follow, path_replaced_by_directory_then_file)
{
	struct follow *f;
	struct got g = {0};
	const char *log = p("mail.log");

	append(log, "a1\n");
	cr_assert_eq(follow_open(&f, true), 0);
	cr_assert(follow_fd(f) >= 0);
	cr_assert_eq(follow_add(f, log, NULL), 0);
	want(f, &g, 1);
	cr_assert_eq(rename(log, p("mail.log.1")), 0);
	cr_assert_eq(mkdir(log, 0755), 0);
	append(p("mail.log.1"), "a2\n");
	want(f, &g, 2);
	cr_assert_eq(rmdir(log), 0);
	append(log, "b1\n");
	want(f, &g, 3);
	const char *w[] = {"a1", "a2", "b1"};
	expect(&g, 0, w, 3);
	follow_close(f);
}

Test(follow, oneshot_has_no_fd)
{
	struct follow *f;

	cr_assert_eq(follow_open(&f, false), 0);
	cr_expect_eq(follow_fd(f), -1);
	cr_expect_eq(follow_wait(f, 0), -1);
	follow_close(f);
}

/* follow_end_position: a source that takes over from another holding the
 * same lines (log = auto) starts with the next line written, and a line
 * half written at the start is delivered whole once it is finished. */
Test(follow, end_position_starts_with_the_next_line)
{
	const char *log = p("mail.log");
	const char *first[] = { "first line" };
	const char *after[] = { "half written, now whole", "new" };
	struct log_position pos, empty;
	struct follow *f;
	struct got g = { 0 };

	cr_assert_eq(follow_end_position(log, &pos), 0, "missing: 0");
	append(log, "");
	cr_assert_eq(follow_end_position(log, &empty), 1);
	cr_assert_eq(empty.offset, 0, "empty file: its start");
	append(log, "first line\nsecond\nhalf written");
	cr_assert_eq(follow_end_position(log, &pos), 1);
	cr_assert_str_eq(pos.path, log);
	cr_assert_eq(pos.inode, inode_of(log));
	cr_assert_eq(pos.offset, strlen("first line\nsecond\n"));
	cr_assert_eq(pos.first_hash, follow_hash_line("first line", 10));

	cr_assert_eq(follow_open(&f, true), 0);
	cr_assert_eq(follow_add(f, log, &pos), 0);
	drain(f, &g);
	cr_assert_eq(g.n, 0, "nothing before the end is delivered");
	append(log, ", now whole\nnew\n");
	want(f, &g, 2);
	expect(&g, 0, after, 2);
	follow_close(f);

	/* A file with no newline at all: reading starts at its beginning. */
	cr_assert_eq(unlink(log), 0);
	append(log, "first line");
	cr_assert_eq(follow_end_position(log, &pos), 1);
	cr_assert_eq(pos.offset, 0);
	memset(&g, 0, sizeof(g));
	cr_assert_eq(follow_open(&f, true), 0);
	cr_assert_eq(follow_add(f, log, &pos), 0);
	append(log, "\n");
	want(f, &g, 1);
	expect(&g, 0, first, 1);
	follow_close(f);

	/* A directory is no log. */
	cr_assert_eq(follow_end_position(dir, &pos), 0);
}
