/*
 * test_json_output - "mailjail bans --json" and "history --json" read back
 * by python3's json module (tests/json_rows.py checks the shape and types
 * the README documents and prints the rows), compared with what the test
 * did: bans and holds made by hand (--dry-run: database only), one lifted,
 * one escalated, account names with quotes, backslashes, control
 * characters and bytes that are not UTF-8.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

static char dir[256], bin[512], cfg[600], out[600], py[600];

static void
setup(void)
{
	char text[2048], logf[600];

	tu_mkdtemp(dir, sizeof(dir));
	snprintf(bin, sizeof(bin), "%s/mailjail", tu_builddir());
	snprintf(py, sizeof(py), "%s/tests/json_rows.py", tu_srcdir());
	snprintf(out, sizeof(out), "%s/out.json", dir);
	tu_write(dir, "mail.log", "", logf, sizeof(logf));
	snprintf(text, sizeof(text),
	    "[mailjail]\nlog = %s\ndb = %s/mj.db\nrules = %s/rules\n"
	    "jails = %s/jails\nuser = root\n[hold]\nmap = sqlite:%s/hold.db\n",
	    logf, dir, tu_srcdir(), tu_srcdir(), dir);
	tu_write(dir, "mailjail.conf", text, cfg, sizeof(cfg));
}

static void
teardown(void)
{
	tu_rmrf(dir);
}

TestSuite(json, .init = setup, .fini = teardown, .timeout = 60);

/*
 * mj - run mailjail with these arguments (then -c cfg), no shell, so any
 * bytes reach it as they are; stdout into `out` if to_out.  Exit status.
 */
static int
mj(bool to_out, const char *const *args)
{
	char *argv[16];
	size_t n = 0;
	pid_t pid;
	int st;

	argv[n++] = bin;
	for (; *args != NULL; args++)
		argv[n++] = (char *)*args;
	argv[n++] = (char *)"-c";
	argv[n++] = cfg;
	argv[n] = NULL;
	cr_assert_neq(pid = fork(), -1);
	if (pid == 0) {
		if (!freopen(to_out ? out : "/dev/null", "w", stdout))
			_exit(126);
		execv(bin, argv);
		_exit(127);
	}
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st), "mailjail %s died", args[0]);
	return WEXITSTATUS(st);
}

#define MJ(...) mj(false, (const char *const[]){ __VA_ARGS__, NULL })
#define MJ_OUT(...) mj(true, (const char *const[]){ __VA_ARGS__, NULL })

/* rows - json_rows.py over `out`: its lines, or a failure with its word */
static char *
rows(void)
{
	char *r = tu_sh_output("python3 '%s' '%s' 2>&1; echo \"exit $?\"", py, out);
	char *end = strstr(r, "exit 0\n");

	cr_assert(end != NULL && end[7] == '\0', "the JSON is not as documented:"
	    "\n%s", r);
	*end = '\0';
	return r;
}

/* row_with - the line of rows r that starts with the JSON text of target */
static const char *
row_with(const char *r, const char *target_json)
{
	size_t n = strlen(target_json);

	for (const char *l = r; *l; l = strchr(l, '\n') + 1) {
		if (strncmp(l, target_json, n) == 0 && l[n] == ' ')
			return l;
		if (strchr(l, '\n') == NULL)
			break;
	}
	cr_assert_fail("no row for %s in:\n%s", target_json, r);
	return NULL;
}

struct row {
	char kind[16];
	int level;
	long long started, expires, lifted;     /* lifted -1: null */
	char jail[64], reason[128];
};

static struct row
parse_row(const char *line, const char *target_json)
{
	struct row w;
	char lifted[32];
	const char *p = line + strlen(target_json);

	memset(&w, 0, sizeof(w));
	cr_assert_eq(sscanf(p, " %15s %d %lld %lld %31s %63s %127[^\n]", w.kind,
	    &w.level, &w.started, &w.expires, lifted, w.jail, w.reason), 7,
	    "%s", line);
	w.lifted = strcmp(lifted, "null") == 0 ? -1 : atoll(lifted);
	return w;
}

Test(json, bans_and_history_are_typed_json)
{
	/* An account name as a client may send it: a quote, a backslash, a
	 * newline, a control byte, UTF-8; and one that is not UTF-8 at all
	 * (only a hand-typed name can be: log lines are checked). */
	const char *odd = "al\"ice\\x\n\x01\xc3\xa9";
	const char *odd_json = "\"al\\\"ice\\\\x\\n\\u0001\\u00e9\"";
	const char *bad = "bad\xff\xfe";
	const char *bad_json = "\"bad\\ufffd\\ufffd\"";
	long long t0 = (long long)time(NULL), t1;
	struct row w;
	const char *l;
	char *r;

	cr_assert_eq(MJ("ban", "192.0.2.7", "--for", "2h", "--dry-run"), 0);
	cr_assert_eq(MJ("unban", "192.0.2.7", "--dry-run"), 0);
	cr_assert_eq(MJ("ban", "192.0.2.7", "--dry-run"), 0);
	cr_assert_eq(MJ("hold", odd, "--for", "3d", "--dry-run"), 0);
	cr_assert_eq(MJ("hold", bad, "--dry-run"), 0);
	t1 = (long long)time(NULL);

	/* bans --all: every row. */
	cr_assert_eq(MJ_OUT("bans", "--all", "--json"), 0);
	r = rows();
	w = parse_row(row_with(r, odd_json), odd_json);
	cr_assert_str_eq(w.kind, "account");
	cr_assert_eq(w.level, 1);
	cr_assert(w.started >= t0 && w.started <= t1, "%s", r);
	cr_assert_eq(w.expires - w.started, 3 * 86400);
	cr_assert_eq(w.lifted, -1, "not lifted: null");
	cr_assert_str_eq(w.jail, "\"manual\"");
	cr_assert_str_eq(w.reason, "\"by hand\"");
	w = parse_row(row_with(r, bad_json), bad_json);
	cr_assert_eq(w.expires - w.started, 86400);
	free(r);

	/* history of the IP: newest first, the second ban escalated to level
	 * 2, the first one lifted (a time) and 2h long. */
	cr_assert_eq(MJ_OUT("history", "192.0.2.7", "--json"), 0);
	r = rows();
	l = row_with(r, "\"192.0.2.7\"");
	w = parse_row(l, "\"192.0.2.7\"");
	cr_assert_str_eq(w.kind, "ip");
	cr_assert_eq(w.level, 2, "%s", r);
	cr_assert_eq(w.lifted, -1);
	cr_assert_eq(w.expires - w.started, 3600);
	l = row_with(strchr(l, '\n') + 1, "\"192.0.2.7\"");
	w = parse_row(l, "\"192.0.2.7\"");
	cr_assert_eq(w.level, 1, "%s", r);
	cr_assert_eq(w.expires - w.started, 7200);
	cr_assert(w.lifted >= w.started && w.lifted <= t1, "%s", r);
	cr_assert_null(strchr(strchr(l, '\n') + 1, '\n'), "two rows: %s", r);
	free(r);

	/* bans (active only): three rows, the lifted ban not among them. */
	cr_assert_eq(MJ_OUT("bans", "--json"), 0);
	r = rows();
	{
		int n = 0;

		for (l = r; *l; l = strchr(l, '\n') + 1, n++)
			cr_assert(strstr(l, " null \"manual\"") < strchr(l, '\n')
			    && strstr(l, " null \"manual\"") != NULL, "%s", r);
		cr_assert_eq(n, 3, "%s", r);
	}
	free(r);

	/* Nothing found is an empty array, not nothing. */
	cr_assert_eq(MJ_OUT("history", "198.51.100.1", "--json"), 0);
	r = tu_sh_output("cat '%s'", out);
	cr_assert_str_eq(r, "[]\n");
	free(r);
	r = rows();
	cr_assert_str_empty(r);
	free(r);
}
