/*
 * test_holdmap - the Postfix maps, checked with Postfix's own lookup code:
 * every "does Postfix see it" question is answered by a real
 * "postmap -q KEY sqlite:...cf" or "postmap -q KEY hash:..." run with a
 * private config directory.  Postfix must be installed (postfix,
 * postfix-sqlite); without it these tests fail, they never skip.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "holdmap.h"
#include "log.h"
#include "testutil.h"

#define POSTMAP "/usr/sbin/postmap"

static char dir[256], confdir[512], spec[600], hspec[600], cf[600];

static void
setup(void)
{
	char path[600];

	log_set_quiet(true);
	cr_assert_eq(access(POSTMAP, X_OK), 0, "%s is missing: these tests need "
	    "Postfix's lookup code (apt-get install postfix postfix-sqlite, see "
	    "tools/deps.sh)", POSTMAP);
	tu_mkdtemp(dir, sizeof(dir));
	cr_assert_eq(chmod(dir, 0755), 0);
	snprintf(confdir, sizeof(confdir), "%s/pfx", dir);
	cr_assert_eq(mkdir(confdir, 0755), 0);
	tu_write(confdir, "main.cf", "compatibility_level = 3.6\n", path,
	    sizeof(path));
	/* Postfix commands stall ~2s on a main.cf changed a moment ago. */
	cr_assert_eq(tu_sh("touch -d @%lld '%s'", (long long)time(NULL) - 60,
	    path), 0);
	snprintf(spec, sizeof(spec), "sqlite:%s/hold.db", dir);
	snprintf(hspec, sizeof(hspec), "hash:%s/mailjail_hold", dir);
	snprintf(cf, sizeof(cf), "sqlite:%s/postfix-hold.cf", dir);
}

static void
teardown(void)
{
	tu_rmrf(dir);
}

/*
 * pq - postmap -q key map, run without a shell so any key bytes go through
 * untouched.  Returns the exit status; *out gets stdout (static buffer).
 */
static int
pq(const char *key, const char *map, const char **out)
{
	static char buf[4096];
	char *argv[] = { (char *)POSTMAP, (char *)"-c", confdir, (char *)"-q",
	    (char *)key, (char *)map, NULL };
	int p[2], st;
	size_t len = 0;
	ssize_t n;
	pid_t pid;

	cr_assert_eq(pipe(p), 0);
	pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	while ((n = read(p[0], buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	close(p[0]);
	buf[len] = '\0';
	if (len > 0 && buf[len - 1] == '\n')
		buf[len - 1] = '\0';
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st));
	if (out != NULL)
		*out = buf;
	return WEXITSTATUS(st);
}

/* expect_hit / expect_miss - what Postfix answers for key */
static void
expect_hit(const char *key, const char *map, const char *value)
{
	const char *out;
	int rc = pq(key, map, &out);

	cr_assert_eq(rc, 0, "postmap -q '%s' %s: rc %d, wanted a hit", key, map, rc);
	cr_assert_str_eq(out, value);
}

static void
expect_miss(const char *key, const char *map)
{
	const char *out;
	int rc = pq(key, map, &out);

	cr_assert_eq(rc, 1, "postmap -q '%s' %s: rc %d output '%s', wanted "
	    "not found (1)", key, map, rc, out);
	cr_assert_str_empty(out);
}

static struct holdmap *
open_map(const char *s, enum holdmap_kind kind)
{
	struct holdmap *m;
	char err[512];

	cr_assert_eq(holdmap_open(&m, s, kind, confdir, err, sizeof(err)), 0,
	    "%s", err);
	return m;
}

TestSuite(holdmap, .init = setup, .fini = teardown);

Test(holdmap, sqlite_add_remove_expire_seen_by_postfix)
{
	struct holdmap *m = open_map(spec, HOLDMAP_HOLD);
	int64_t now = (int64_t)time(NULL);

	expect_miss("alice", cf);
	cr_assert_eq(holdmap_add(m, "alice", "HOLD mailjail: sent over quota",
	    now + 3600), 0);
	cr_assert_eq(holdmap_add(m, "Bob", "HOLD mailjail: b", now + 3600), 0);
	expect_hit("alice", cf, "HOLD mailjail: sent over quota");
	/* Postfix folds keys; a mixed-case name is still found. */
	expect_hit("bob", cf, "HOLD mailjail: b");
	expect_hit("BOB", cf, "HOLD mailjail: b");
	cr_assert_eq(holdmap_sync(m), 0);
	cr_assert_eq(holdmap_remove(m, "alice"), 1);
	cr_assert_eq(holdmap_remove(m, "alice"), 0);
	expect_miss("alice", cf);
	/* Expired but not yet purged: the query alone hides it. */
	cr_assert_eq(holdmap_add(m, "carol", "HOLD old", now - 5), 0);
	expect_miss("carol", cf);
	cr_assert_eq(holdmap_expire(m, now), 1);
	cr_assert_eq(holdmap_expire(m, now + 7200), 1);
	expect_miss("bob", cf);
	holdmap_close(m);
}

Test(holdmap, sqlite_file_is_rollback_journal_0644_with_cf)
{
	struct holdmap *m;
	struct stat sb;
	char path[600], *out, want[2048];

	umask(077);
	m = open_map(spec, HOLDMAP_HOLD);
	cr_assert_eq(holdmap_add(m, "alice", "HOLD x", time(NULL) + 60), 0);
	holdmap_close(m);
	umask(022);
	snprintf(path, sizeof(path), "%s/hold.db", dir);
	out = tu_sh_output("sqlite3 '%s' 'PRAGMA journal_mode'", path);
	cr_assert_str_eq(out, "delete\n");
	free(out);
	cr_assert_eq(stat(path, &sb), 0);
	cr_assert_eq(sb.st_mode & 07777, 0644, "mode %o", sb.st_mode & 07777);
	snprintf(path, sizeof(path), "%s/postfix-hold.cf", dir);
	cr_assert_eq(stat(path, &sb), 0);
	cr_assert_eq(sb.st_mode & 07777, 0644, "mode %o", sb.st_mode & 07777);
	out = tu_sh_output("grep -v '^#' '%s'", path);
	snprintf(want, sizeof(want), "dbpath = %s/hold.db\n"
	    "query = SELECT value FROM hold WHERE key = '%%s' AND expires_at > "
	    "CAST(strftime('%%%%s', 'now') AS INTEGER)\n", dir);
	cr_assert_str_eq(out, want);
	free(out);
	/* Reopening keeps entries. */
	m = open_map(spec, HOLDMAP_HOLD);
	expect_hit("alice", cf, "HOLD x");
	holdmap_close(m);
}

/* An OS crash with synchronous = OFF can leave damaged pages: the map is
 * rebuilt from the daemon's DB, so the damaged file is set aside, not fatal.
 * A file that is not SQLite at all is refused and left as it is. */
Test(holdmap, damaged_sqlite_map_is_set_aside_other_files_refused)
{
	struct holdmap *m;
	char path[600], aside[700], err[512], *out;
	struct stat sb;
	FILE *fp;

	m = open_map(spec, HOLDMAP_HOLD);
	cr_assert_eq(holdmap_add(m, "alice", "HOLD x", time(NULL) + 60), 0);
	holdmap_close(m);
	snprintf(path, sizeof(path), "%s/hold.db", dir);
	snprintf(aside, sizeof(aside), "%s.corrupt", path);
	/* Page 1's b-tree header (after the 100-byte file header) overwritten. */
	cr_assert_not_null(fp = fopen(path, "r+"));
	cr_assert_eq(fseek(fp, 100, SEEK_SET), 0);
	for (int i = 0; i < 400; i++)
		fputc(0xA5, fp);
	cr_assert_eq(fclose(fp), 0);
	out = tu_sh_output("sqlite3 '%s' 'SELECT count(*) FROM hold' 2>&1", path);
	cr_assert(strstr(out, "malformed") != NULL, "really damaged: %s", out);
	free(out);

	m = open_map(spec, HOLDMAP_HOLD);
	cr_assert_eq(stat(aside, &sb), 0, "the damaged file is kept as %s", aside);
	expect_miss("alice", cf);
	cr_assert_eq(holdmap_add(m, "bob", "HOLD y", time(NULL) + 60), 0);
	expect_hit("bob", cf, "HOLD y");
	holdmap_close(m);

	/* Not SQLite: an error, and the file is untouched. */
	cr_assert_eq(unlink(aside), 0);
	tu_write(dir, "hold.db", "smtpd_banner = this is not a map\n", path,
	    sizeof(path));
	cr_assert_neq(holdmap_open(&m, spec, HOLDMAP_HOLD, confdir, err, sizeof(err)), 0);
	cr_assert(strstr(err, path) != NULL, "names the file: %s", err);
	cr_assert_neq(stat(aside, &sb), 0, "nothing set aside");
	out = tu_sh_output("cat '%s'", path);
	cr_assert_str_eq(out, "smtpd_banner = this is not a map\n");
	free(out);
}

Test(holdmap, sqlite_crafted_keys_are_harmless)
{
	static const char *const keys[] = {
		"o'brien", "x' OR '1'='1", "100%", "%s", "%%s", "a b",
		"line\nbreak", "tab\there", "\"quoted\"", "#hash", "back\\slash",
		"semi;colon", "-- comment", "ünïcode",
	};
	struct holdmap *m = open_map(spec, HOLDMAP_HOLD);
	int64_t exp = (int64_t)time(NULL) + 3600;
	char val[64];

	cr_assert_eq(holdmap_add(m, "victim", "HOLD victim", exp), 0);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		snprintf(val, sizeof(val), "HOLD k%zu", i);
		cr_assert_eq(holdmap_add(m, keys[i], val, exp), 0, "%s", keys[i]);
	}
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		snprintf(val, sizeof(val), "HOLD k%zu", i);
		expect_hit(keys[i], cf, val);
	}
	/* Injection-shaped lookups match nothing they don't equal. */
	expect_miss("nobody' OR key='victim", cf);
	expect_miss("victim'--", cf);
	expect_miss("%", cf);
	expect_miss("", cf);
	expect_hit("victim", cf, "HOLD victim");
	/* Empty keys and values with control characters are refused. */
	cr_assert_eq(holdmap_add(m, "", "HOLD x", exp), -1);
	cr_assert_eq(holdmap_add(m, "eve", "HOLD x\nvictim HOLD", exp), -1);
	holdmap_close(m);
}

/*
 * Postfix's dict_sqlite sets no busy timeout and exits on SQLITE_BUSY (the
 * smtpd dies, its client's session is lost).  A write that has to wait for a
 * reader must not lock out the lookups that come while it waits: SQLite's own
 * busy handler would sleep holding the PENDING lock.  A reader process keeps
 * a read transaction open, a writer process's holdmap_add waits for it, and
 * lookups made meanwhile the way Postfix makes them (fresh handle, no busy
 * timeout) must all succeed; then the reader ends and the write goes through.
 * (Each SQLite user is its own process: a handle must not cross a fork.)
 */
static pid_t
spawn_reader(const char *path, int *ready, int *go)
{
	int r[2], g[2];
	pid_t pid;

	cr_assert_eq(pipe(r), 0);
	cr_assert_eq(pipe(g), 0);
	pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		sqlite3 *db;
		char c;

		close(r[0]);
		close(g[1]);
		if (sqlite3_open(path, &db) != SQLITE_OK
		    || sqlite3_exec(db, "BEGIN; SELECT count(*) FROM hold", NULL,
		    NULL, NULL) != SQLITE_OK)
			_exit(2);
		(void)!write(r[1], "r", 1);
		(void)!read(g[0], &c, 1);
		_exit(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK
		    && sqlite3_close(db) == SQLITE_OK ? 0 : 1);
	}
	close(r[1]);
	close(g[0]);
	*ready = r[0];
	*go = g[1];
	return pid;
}

static pid_t
spawn_writer(int *ready)
{
	int r[2];
	pid_t pid;

	cr_assert_eq(pipe(r), 0);
	pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		struct holdmap *m;
		char err[512];
		int rc;

		close(r[0]);
		if (holdmap_open(&m, spec, HOLDMAP_HOLD, confdir, err,
		    sizeof(err)) != 0)
			_exit(2);
		(void)!write(r[1], "w", 1);
		rc = holdmap_add(m, "alice", "HOLD waited", time(NULL) + 3600);
		holdmap_close(m);
		_exit(rc == 0 ? 0 : 1);
	}
	close(r[1]);
	*ready = r[0];
	return pid;
}

Test(holdmap, sqlite_waiting_write_does_not_lock_out_postfix)
{
	const char *path = spec + 7;
	int rready, rgo, wready, status, busy = 0, rows = 0;
	pid_t reader, writer;
	char c;

	holdmap_close(open_map(spec, HOLDMAP_HOLD));
	reader = spawn_reader(path, &rready, &rgo);
	cr_assert_eq(read(rready, &c, 1), 1, "the reader holds its lock");
	writer = spawn_writer(&wready);
	cr_assert_eq(read(wready, &c, 1), 1, "the writer opened the map");
	/* 300 ms of lookups while the writer waits for the reader. */
	for (int i = 0; i < 150; i++) {
		sqlite3 *db;
		sqlite3_stmt *st = NULL;
		int rc;

		cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
		rc = sqlite3_prepare_v2(db, "SELECT value FROM hold WHERE key = "
		    "'alice'", -1, &st, NULL);
		if (rc == SQLITE_OK)
			rc = sqlite3_step(st);
		sqlite3_finalize(st);
		sqlite3_close(db);
		if (rc == SQLITE_BUSY)
			busy++;
		else
			cr_assert(rc == SQLITE_DONE || rc == SQLITE_ROW, "lookup: %d", rc);
		if (rc == SQLITE_ROW)
			rows++;
		usleep(2000);
	}
	cr_assert_eq(write(rgo, "g", 1), 1);
	cr_assert_eq(waitpid(reader, &status, 0), reader);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "reader %d", status);
	cr_assert_eq(waitpid(writer, &status, 0), writer);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "holdmap_add succeeded once the reader left (status %d)", status);
	cr_assert_eq(busy, 0, "%d of 150 Postfix-style lookups got SQLITE_BUSY "
	    "while a write waited", busy);
	cr_assert_eq(rows, 0, "a write cannot commit while another reads");
	expect_hit("alice", cf, "HOLD waited");
	close(rready);
	close(rgo);
	close(wready);
}

Test(holdmap, sqlite_reject_map)
{
	char rcf[600];
	struct holdmap *m = open_map(spec, HOLDMAP_REJECT);
	const char *v = "450 4.7.1 Too many errors from your address, try "
	    "again later";

	snprintf(rcf, sizeof(rcf), "sqlite:%s/postfix-reject.cf", dir);
	cr_assert_eq(holdmap_add(m, "192.0.2.7", v, time(NULL) + 60), 0);
	expect_hit("192.0.2.7", rcf, v);
	expect_miss("192.0.2.8", rcf);
	holdmap_close(m);
}

Test(holdmap, wal_file_refused)
{
	struct holdmap *m;
	char err[512];

	cr_assert_eq(tu_sh("sqlite3 '%s/hold.db' 'PRAGMA journal_mode=WAL; "
	    "CREATE TABLE t(x);' >/dev/null", dir), 0);
	cr_assert_eq(holdmap_open(&m, spec, HOLDMAP_HOLD, confdir, err,
	    sizeof(err)), -1);
	cr_assert(strstr(err, "WAL") != NULL, "%s", err);
}

Test(holdmap, hash_add_remove_postmap)
{
	struct holdmap *m = open_map(hspec, HOLDMAP_HOLD);
	int64_t now = (int64_t)time(NULL);
	struct stat sb;
	char path[600];

	expect_miss("alice", hspec);
	cr_assert_eq(holdmap_add(m, "alice", "HOLD mailjail: sent over quota",
	    now + 3600), 0);
	cr_assert_eq(holdmap_add(m, "Bob@Example.ORG", "HOLD b", now + 10), 0);
	cr_assert_eq(holdmap_sync(m), 0);
	expect_hit("alice", hspec, "HOLD mailjail: sent over quota");
	expect_hit("bob@example.org", hspec, "HOLD b");
	cr_assert_eq(holdmap_remove(m, "alice"), 1);
	cr_assert_eq(holdmap_remove(m, "alice"), 0);
	cr_assert_eq(holdmap_sync(m), 0);
	expect_miss("alice", hspec);
	cr_assert_eq(holdmap_expire(m, now + 10), 1);
	cr_assert_eq(holdmap_sync(m), 0);
	expect_miss("bob@example.org", hspec);
	snprintf(path, sizeof(path), "%s/mailjail_hold.db", dir);
	cr_assert_eq(stat(path, &sb), 0);
	cr_assert_eq(sb.st_mode & 07777, 0644, "mode %o", sb.st_mode & 07777);
	holdmap_close(m);
}

Test(holdmap, hash_restart_keeps_entries_and_expiry)
{
	struct holdmap *m = open_map(hspec, HOLDMAP_HOLD);
	int64_t now = (int64_t)time(NULL);

	cr_assert_eq(holdmap_add(m, "alice", "HOLD a", now + 3600), 0);
	cr_assert_eq(holdmap_add(m, "bob", "HOLD b", now + 100), 0);
	cr_assert_eq(holdmap_sync(m), 0);
	holdmap_close(m);

	m = open_map(hspec, HOLDMAP_HOLD);
	expect_hit("alice", hspec, "HOLD a");
	expect_hit("bob", hspec, "HOLD b");
	/* The expiry came back from the sidecar, not "now". */
	cr_assert_eq(holdmap_expire(m, now + 50), 0);
	cr_assert_eq(holdmap_expire(m, now + 100), 1);
	cr_assert_eq(holdmap_sync(m), 0);
	expect_miss("bob", hspec);
	expect_hit("alice", hspec, "HOLD a");
	holdmap_close(m);
}

Test(holdmap, hash_crafted_keys_refused)
{
	static const char *const bad[] = {
		"", "a b", "a\tb", "a\nvictim HOLD", "a\rb", "'q'", "\"q\"",
		"#comment", "x#y", "back\\slash", "del\x7f",
	};
	struct holdmap *m = open_map(hspec, HOLDMAP_HOLD);
	int64_t exp = (int64_t)time(NULL) + 60;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(holdmap_add(m, bad[i], "HOLD x", exp), -1, "key %zu "
		    "accepted", i);
	cr_assert_eq(holdmap_add(m, "ok@example.org", "HOLD x\nvictim OK", exp),
	    -1);
	cr_assert_eq(holdmap_add(m, "ok@example.org", "HOLD x", exp), 0);
	cr_assert_eq(holdmap_sync(m), 0);
	expect_hit("ok@example.org", hspec, "HOLD x");
	expect_miss("victim", hspec);
	expect_miss("a", hspec);
	holdmap_close(m);
}

Test(holdmap, texthash_and_unknown_refused)
{
	struct holdmap *m;
	char err[512], s[600];

	snprintf(s, sizeof(s), "texthash:%s/x", dir);
	cr_assert_eq(holdmap_open(&m, s, HOLDMAP_HOLD, confdir, err,
	    sizeof(err)), -1);
	cr_assert(strstr(err, "reload") != NULL, "%s", err);
	cr_assert_eq(holdmap_open(&m, "lmdb:/tmp/x", HOLDMAP_HOLD, confdir, err,
	    sizeof(err)), -1);
	cr_assert_eq(holdmap_open(&m, "sqlite:relative.db", HOLDMAP_HOLD,
	    confdir, err, sizeof(err)), -1);
}

Test(holdmap, postfix_name)
{
	char buf[256];

	cr_assert_str_eq(holdmap_postfix_name("sqlite:/var/lib/mailjail/hold.db",
	    HOLDMAP_HOLD, buf, sizeof(buf)),
	    "sqlite:/var/lib/mailjail/postfix-hold.cf");
	cr_assert_str_eq(holdmap_postfix_name("sqlite:/var/lib/mailjail/hold.db",
	    HOLDMAP_REJECT, buf, sizeof(buf)),
	    "sqlite:/var/lib/mailjail/postfix-reject.cf");
	cr_assert_str_eq(holdmap_postfix_name("hash:/etc/postfix/mailjail_hold",
	    HOLDMAP_HOLD, buf, sizeof(buf)), "hash:/etc/postfix/mailjail_hold");
	cr_assert_null(holdmap_postfix_name("texthash:/etc/postfix/x",
	    HOLDMAP_HOLD, buf, sizeof(buf)));
}

Test(holdmap, check_readable)
{
	struct holdmap *m;
	char err[512], path[600], sub[600], s[700];

	m = open_map(spec, HOLDMAP_HOLD);
	holdmap_close(m);
	cr_assert_eq(holdmap_check_readable(spec, HOLDMAP_HOLD, err,
	    sizeof(err)), 0, "%s", err);

	snprintf(path, sizeof(path), "%s/hold.db", dir);
	cr_assert_eq(chmod(path, 0600), 0);
	cr_assert_eq(holdmap_check_readable(spec, HOLDMAP_HOLD, err,
	    sizeof(err)), -1);
	cr_assert(strstr(err, path) != NULL && strstr(err, "0600") != NULL
	    && strstr(err, "cannot read") != NULL, "%s", err);
	cr_assert_eq(chmod(path, 0644), 0);

	/* A 0700 directory on the way. */
	snprintf(sub, sizeof(sub), "%s/private", dir);
	cr_assert_eq(mkdir(sub, 0700), 0);
	snprintf(s, sizeof(s), "hash:%s/map", sub);
	m = open_map(s, HOLDMAP_HOLD);
	holdmap_close(m);
	cr_assert_eq(holdmap_check_readable(s, HOLDMAP_HOLD, err,
	    sizeof(err)), -1);
	cr_assert(strstr(err, sub) != NULL && strstr(err, "0700") != NULL
	    && strstr(err, "cannot enter") != NULL, "%s", err);
	cr_assert_eq(chmod(sub, 0755), 0);
	cr_assert_eq(holdmap_check_readable(s, HOLDMAP_HOLD, err,
	    sizeof(err)), 0, "%s", err);

	/* Missing map. */
	snprintf(s, sizeof(s), "sqlite:%s/none.db", dir);
	cr_assert_eq(holdmap_check_readable(s, HOLDMAP_HOLD, err,
	    sizeof(err)), -1);
	cr_assert(strstr(err, "No such file") != NULL, "%s", err);
}

Test(holdmap, parse_postqueue_json)
{
	char qn[32], qi[64], snd[256];

	cr_assert_eq(holdmap_parse_queue_line("{\"queue_name\": \"hold\", "
	    "\"queue_id\": \"49F46A7234E\", \"arrival_time\": 1700000000, "
	    "\"message_size\": 429, \"forced_expire\": false, \"sender\": "
	    "\"alice@pfxtest.local\", \"recipients\": [{\"address\": "
	    "\"rcpt1@example.net\"}]}", qn, sizeof(qn), qi, sizeof(qi), snd,
	    sizeof(snd)), 0);
	cr_assert_str_eq(qn, "hold");
	cr_assert_str_eq(qi, "49F46A7234E");
	cr_assert_str_eq(snd, "alice@pfxtest.local");

	/* Escapes in the sender; a nested "sender" key must not be taken. */
	cr_assert_eq(holdmap_parse_queue_line("{\"recipients\": [{\"address\": "
	    "\"x@y\", \"sender\": \"evil\", \"delay_reason\": \"a \\\"b\\\" {]\"}"
	    "], \"queue_name\":\"deferred\",\"queue_id\":\"ABC123\","
	    "\"sender\":\"\\\"odd\\\\name\\\"@ex\\u00e9.org\"}\n", qn,
	    sizeof(qn), qi, sizeof(qi), snd, sizeof(snd)), 0);
	cr_assert_str_eq(qn, "deferred");
	cr_assert_str_eq(qi, "ABC123");
	cr_assert_str_eq(snd, "\"odd\\name\"@ex\xc3\xa9.org");

	/* Null sender (bounce) is an empty string. */
	cr_assert_eq(holdmap_parse_queue_line("{\"queue_name\": \"hold\", "
	    "\"queue_id\": \"A1\", \"sender\": \"\"}", qn, sizeof(qn), qi,
	    sizeof(qi), snd, sizeof(snd)), 0);
	cr_assert_str_empty(snd);

	/* Malformed, truncated, NUL escapes, too long. */
	cr_assert_eq(holdmap_parse_queue_line("{\"queue_name\": \"hold\"", qn,
	    sizeof(qn), qi, sizeof(qi), snd, sizeof(snd)), -1);
	cr_assert_eq(holdmap_parse_queue_line("not json", qn, sizeof(qn), qi,
	    sizeof(qi), snd, sizeof(snd)), -1);
	cr_assert_eq(holdmap_parse_queue_line("{\"sender\": \"a\\u0000b\"}",
	    qn, sizeof(qn), qi, sizeof(qi), snd, sizeof(snd)), -1);
	cr_assert_eq(holdmap_parse_queue_line("{\"queue_id\": 5}", qn,
	    sizeof(qn), qi, sizeof(qi), snd, sizeof(snd)), -1);
	cr_assert_eq(holdmap_parse_queue_line("{\"queue_name\": "
	    "\"0123456789012345678901234567890123456789\"}", qn, sizeof(qn), qi,
	    sizeof(qi), snd, sizeof(snd)), -1);
	cr_assert_eq(holdmap_parse_queue_line("{\"a\": [1, 2} ", qn, sizeof(qn),
	    qi, sizeof(qi), snd, sizeof(snd)), -1);
	cr_assert_eq(holdmap_parse_queue_line("{} trailing", qn, sizeof(qn), qi,
	    sizeof(qi), snd, sizeof(snd)), -1);
}

/* parse - holdmap_parse_queue_line into the static buffers below */
static char pqn[32], pqi[64], psnd[256];

static int
parse(const char *line)
{
	return holdmap_parse_queue_line(line, pqn, sizeof(pqn), pqi, sizeof(pqi),
	    psnd, sizeof(psnd));
}

Test(holdmap, parse_postqueue_json_unicode_escapes)
{
	/* A surrogate pair is one code point: U+1F600, 4 bytes of UTF-8. */
	cr_assert_eq(parse("{\"queue_name\": \"hold\", \"queue_id\": \"A1\", "
	    "\"sender\": \"j\\u00fcrgen\\ud83d\\ude00@ex\\u0041mple.org\"}"), 0);
	cr_assert_str_eq(psnd, "j\xc3\xbcrgen\xf0\x9f\x98\x80@exAmple.org");
	/* Raw UTF-8 (what Postfix writes for SMTPUTF8 mail) is kept as is. */
	cr_assert_eq(parse("{\"queue_name\": \"hold\", \"queue_id\": \"A2\", "
	    "\"sender\": \"\xd0\xb8\xd0\xb2\xd0\xb0\xd0\xbd@\xd0\xbf\xd1\x80"
	    "\xd0\xb8\xd0\xbc\xd0\xb5\xd1\x80.\xd1\x80\xd1\x84\"}"), 0);
	cr_assert_str_eq(psnd, "\xd0\xb8\xd0\xb2\xd0\xb0\xd0\xbd@\xd0\xbf\xd1"
	    "\x80\xd0\xb8\xd0\xbc\xd0\xb5\xd1\x80.\xd1\x80\xd1\x84");
	/* Control characters arrive escaped and are decoded. */
	cr_assert_eq(parse("{\"sender\": \"a\\tb\\nc\\u001fd\\/e\"}"), 0);
	cr_assert_str_eq(psnd, "a\tb\nc\x1f" "d/e");

	/* Half a surrogate pair, or a bad escape, is not text. */
	cr_assert_eq(parse("{\"sender\": \"\\ud83d\"}"), -1);
	cr_assert_eq(parse("{\"sender\": \"\\ude00x\"}"), -1);
	cr_assert_eq(parse("{\"sender\": \"\\ud83d\\u0041\"}"), -1);
	cr_assert_eq(parse("{\"sender\": \"\\u12\"}"), -1);
	cr_assert_eq(parse("{\"sender\": \"\\x41\"}"), -1);
	/* \u0000 would cut the C string short: refused wherever it is, in a
	 * field we read or in one we skip. */
	cr_assert_eq(parse("{\"queue_name\": \"hold\", \"queue_id\": \"A3\", "
	    "\"sender\": \"alice@x\\u0000@evil\"}"), -1);
	cr_assert_str_empty(psnd, "nothing is left behind on failure");
	cr_assert_eq(parse("{\"queue_id\": \"A3\", \"recipients\": [{\"address\": "
	    "\"b@x\", \"delay_reason\": \"x\\u0000\"}]}"), -1);
	cr_assert_eq(parse("{\"queue_id\\u0000\": \"A3\"}"), -1);
}

Test(holdmap, parse_postqueue_json_nesting)
{
	char *deep;
	size_t n = 5000, len;

	/* Postfix's shape: recipients is an array of objects; anything nested
	 * is skipped whatever it holds, and only the top level counts. */
	cr_assert_eq(parse("{\"queue_name\": \"hold\", \"recipients\": [{\"address\": "
	    "\"a@x\", \"queue_id\": \"NOTME\"}, {\"address\": \"b@x\", "
	    "\"delay_reason\": \"[{\\\"}\"}], \"extra\": [[[1, [2.5e3, -0, {\"a\": "
	    "[true, false, null, {}, []]}]]]], \"queue_id\": \"B1\", \"sender\": "
	    "\"s@x\"}"), 0);
	cr_assert_str_eq(pqn, "hold");
	cr_assert_str_eq(pqi, "B1");
	cr_assert_str_eq(psnd, "s@x");

	/* Deep nesting is bounded (no stack exhaustion): refused. */
	deep = malloc(64 + 2 * n);
	cr_assert_not_null(deep);
	len = (size_t)sprintf(deep, "{\"queue_id\": \"B2\", \"x\": ");
	memset(deep + len, '[', n);
	memset(deep + len + n, ']', n);
	strcpy(deep + len + 2 * n, "}");
	cr_assert_eq(parse(deep), -1);
	/* 100 levels, as deep as anything sane, are read. */
	len = (size_t)sprintf(deep, "{\"queue_id\": \"B3\", \"x\": ");
	memset(deep + len, '[', 100);
	memset(deep + len + 100, ']', 100);
	strcpy(deep + len + 200, "}");
	cr_assert_eq(parse(deep), 0);
	cr_assert_str_eq(pqi, "B3");
	free(deep);
}

Test(holdmap, parse_postqueue_json_refuses_garbage)
{
	static const char *const bad[] = {
		"", " ", "{", "}", "[]", "[{\"queue_id\": \"A\"}]", "null", "\"hold\"",
		"42", "{\"queue_id\": \"A\",}", "{\"queue_id\" \"A\"}",
		"{queue_id: \"A\"}", "{'queue_id': 'A'}", "{\"queue_id\": \"A\"",
		"{\"queue_id\": \"A\"}{\"queue_id\": \"B\"}", "{} {}",
		"{\"queue_id\": \"A\"} trailing", "{\"queue_id\": \"A\" /* c */}",
		"{\"queue_id\": \"A\nB\"}", "{\"queue_id\": \"A\tB\"}",
		"{\"sender\": \"\xff\xfe\"}", "{\"sender\": \"\xc0\xaf\"}",
		"{\"sender\": \"\xed\xa0\x80\"}", "{\"x\": tru}", "{\"x\": 01}",
		"{\"x\": NaN}", "{\"x\": .5}",
		/* Typed: these fields are strings or absent, never null or else. */
		"{\"queue_id\": null}", "{\"queue_id\": 5}", "{\"queue_name\": [\"hold\"]}",
		"{\"sender\": {\"a\": \"b\"}}", "{\"sender\": false}",
		/* Which of two would count is a guess: refused. */
		"{\"queue_name\": \"deferred\", \"queue_name\": \"hold\"}",
		"{\"recipients\": [{\"address\": \"a\", \"address\": \"b\"}]}",
	};
	unsigned seed = 17;
	char line[200];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(parse(bad[i]), -1, "accepted: %s", bad[i]);
	/* Random bytes (no NUL: the input is a C string; a fixed seed, so
	 * the same bytes every run) never parse as an object and never crash
	 * the reader (ASan/UBSan build). */
	for (int round = 0; round < 2000; round++) {
		size_t n = (size_t)(rand_r(&seed) % (sizeof(line) - 1));

		for (size_t i = 0; i < n; i++)
			line[i] = (char)(1 + rand_r(&seed) % 255);
		line[n] = '\0';
		if (round % 2)
			line[0] = '{';
		cr_assert_eq(parse(line), -1);
	}
}

Test(holdmap, parse_postqueue_json_field_lengths)
{
	char id[80], line[200];

	/* A queue id filling the buffer to the last byte fits; one more does
	 * not, and is refused rather than cut. */
	memset(id, 'A', sizeof(pqi) - 1);
	id[sizeof(pqi) - 1] = '\0';
	snprintf(line, sizeof(line), "{\"queue_id\": \"%s\"}", id);
	cr_assert_eq(parse(line), 0);
	cr_assert_str_eq(pqi, id);
	memset(id, 'A', sizeof(pqi));
	id[sizeof(pqi)] = '\0';
	snprintf(line, sizeof(line), "{\"queue_id\": \"%s\"}", id);
	cr_assert_eq(parse(line), -1);
	cr_assert_str_empty(pqi);
	/* The length counts decoded bytes: 20 escapes of 6 characters each
	 * are 20 bytes, within a 32-byte buffer. */
	snprintf(line, sizeof(line), "{\"queue_name\": \"%s\"}",
	    "\\u0068\\u006f\\u006c\\u0064\\u0068\\u006f\\u006c\\u0064\\u0068"
	    "\\u006f\\u006c\\u0064\\u0068\\u006f\\u006c\\u0064\\u0068\\u006f"
	    "\\u006c\\u0064");
	cr_assert_eq(parse(line), 0);
	cr_assert_str_eq(pqn, "holdholdholdholdhold");
	/* A long member we do not read is fine. */
	cr_assert_eq(parse("{\"queue_name\": \"hold\", \"a_member_name_much_longer"
	    "_than_any_buffer_here_0123456789_0123456789\": \"x\"}"), 0);
}

Test(holdmap, release_queue_fails_cleanly_without_a_queue)
{
	const char *ids[] = { "49F46A7234E" };
	int released = -1;

	/* The private config has no running Postfix: postqueue -j fails, and
	 * that must be an error, not a crash or "0 released, all fine". */
	cr_assert_eq(holdmap_release_queue(confdir, ids, 1, "alice@x", &released),
	    -1);
	cr_assert_eq(released, 0);
}
