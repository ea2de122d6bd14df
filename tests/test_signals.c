/*
 * test_signals - operator signals with the real daemon: the notification
 * command ([notify] command) run at once for a hold, once per digest for
 * IP bans, again after a failure (also across a kill -9), killed when it
 * hangs while the pipeline goes on; the metrics (textfile, /metrics,
 * "mailjail metrics") read by the Prometheus project's own parser
 * (python3-prometheus-client) and checked against what the test did.
 *
 * The daemon runs in dry-run mode (the decisions and the outbox are the
 * same; no kernel or map is needed).  The hook is a shell script that
 * leaves, per call, its environment (.env), standard input (.json) and
 * start time (.time) in dir/calls, then a .done marker; it fails while
 * dir/fail exists and hangs while dir/hang exists.
 */
#include <criterion/criterion.h>
#include <glob.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

/* Debian's interpreter: python3-prometheus-client is installed for it
 * (a python3 earlier in PATH, e.g. pyenv's, would not have it). */
#define PYTHON "/usr/bin/python3"

static char dir[256], db[600], bin[512], cfg[600], logf[600], errf[600], calls[600];
static char hook[600], jails[600];

static void
setup(void)
{
	char path[700];

	tu_mkdtemp(dir, sizeof(dir));
	/* Sticky, like /tmp: the user=nobody test writes here, and the config
	 * in it stays root's (cfgfile.h refuses a directory others can write). */
	cr_assert_eq(chmod(dir, 01777), 0);
	snprintf(db, sizeof(db), "%s/mj.db", dir);
	snprintf(bin, sizeof(bin), "%s/mailjail", tu_builddir());
	snprintf(errf, sizeof(errf), "%s/daemon.err", dir);
	snprintf(calls, sizeof(calls), "%s/calls", dir);
	cr_assert_eq(mkdir(calls, 0777), 0);
	cr_assert_eq(chmod(calls, 0777), 0);
	tu_write(dir, "mail.log", "", logf, sizeof(logf));
	cr_assert_eq(chmod(logf, 0644), 0);
	{
		char text[2048];
		snprintf(text, sizeof(text),
		    "#!/bin/sh\n"
		    "f=$(mktemp '%s/call.XXXXXX') || exit 9\n"
		    "date +%%s.%%N > \"$f.time\"\n"
		    "env | grep '^MAILJAIL_' | sort > \"$f.env\"\n"
		    "cat > \"$f.json\"\n"
		    "{ id -u; grep '^CapEff:' /proc/$$/status; } > \"$f.who\"\n"
		    "echo $$ > \"$f.pid\"\n"
		    ": > \"$f.done\"\n"
		    "echo \"hook output for $MAILJAIL_EVENT\"\n"
		    "if [ -e '%s/fail' ]; then echo 'told to fail'; exit 3; fi\n"
		    "if [ -e '%s/hang' ]; then sleep 61.5; fi\n"
		    "exit 0\n", calls, dir, dir);
		tu_write(dir, "hook.sh", text, hook, sizeof(hook));
		cr_assert_eq(chmod(hook, 0755), 0);
	}
	tu_write(dir, "test.jail",
	    "[quota]\nevents = submission\nkey = account\nlimits = 3/1h\naction = hold\n"
	    "bantime = 1h\n\n"
	    "[brute]\nevents = auth_failure\nkey = ip\nfindtime = 10m\nmaxretry = 2\n"
	    "action = nft\nbantime = 1h\nignore =\n", jails, sizeof(jails));
	(void)path;
}

static void
teardown(void)
{
	tu_kill_children();
	tu_rmrf(dir);
}

TestSuite(signals, .init = setup, .fini = teardown, .timeout = 180);

/* write_config - the daemon's config with extra sections (notify, metrics) */
static void
write_config(const char *user, const char *extra)
{
	char text[8192];   /* extra is up to 2 KiB: -O3 checks the bound */

	snprintf(text, sizeof(text),
	    "[mailjail]\nlog = %s\ndb = %s\nrules = %s/rules\njails = %s\nuser = %s\n"
	    "[hold]\nmap = sqlite:%s/hold.db\n%s", logf, db, tu_srcdir(), jails, user, dir,
	    extra);
	tu_write(dir, "mailjail.conf", text, cfg, sizeof(cfg));
}

/* notify_config - [notify] with the hook, and more keys */
static void
notify_config(const char *user, const char *more)
{
	char extra[2048];

	snprintf(extra, sizeof(extra), "[notify]\ncommand = %s\n%s", hook, more);
	write_config(user, extra);
}

/* starts_said - how many "running:" lines the daemons wrote so far */
static int
starts_said(void)
{
	char *out = tu_sh_output("grep -c -F 'running:' '%s' 2>/dev/null; true", errf);
	int n = atoi(out);

	free(out);
	return n;
}

static pid_t
start_daemon(void)
{
	int before = starts_said();
	pid_t pid = tu_fork();

	cr_assert_neq(pid, -1);
	if (pid == 0) {
		FILE *e = freopen(errf, "a", stderr);
		(void)e;
		execl(bin, "mailjail", "run", "--dry-run", "-c", cfg, (char *)NULL);
		_exit(127);
	}
	/* Running (and reading from the end of the log) before lines come:
	 * this daemon, not one started before it in the same test. */
	for (int i = 0; i < 300 && starts_said() == before; i++)
		usleep(50000);
	cr_assert_gt(starts_said(), before, "the daemon started");
	return pid;
}

static int
stop_daemon(pid_t pid, int sig)
{
	int st;

	kill(pid, sig);
	cr_assert_eq(tu_waitpid(pid, &st), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static double
now_secs(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
stamp(char *buf, size_t len)
{
	time_t now = time(NULL);

	strftime(buf, len, "%b %e %H:%M:%S", localtime(&now));
}

/* submissions - n authenticated submissions of account from ip */
static void
submissions(const char *account, const char *ip, int n)
{
	static int qid = 0x10000;
	FILE *fp = fopen(logf, "a");
	char st[32];

	cr_assert_not_null(fp);
	stamp(st, sizeof(st));
	for (int i = 0; i < n; i++)
		fprintf(fp, "%s mx postfix/submission/smtpd[77]: %X%X: client=unknown[%s], "
		    "sasl_method=PLAIN, sasl_username=%s\n", st, getpid() & 0xffff, qid++, ip, account);
	fclose(fp);
}

/* failures - n SASL failures from ip */
static void
failures(const char *ip, int n)
{
	FILE *fp = fopen(logf, "a");
	char st[32];

	cr_assert_not_null(fp);
	stamp(st, sizeof(st));
	for (int i = 0; i < n; i++)
		fprintf(fp, "%s mx postfix/smtpd[88]: warning: unknown[%s]: SASL LOGIN "
		    "authentication failed: UGFzc3dvcmQ6, sasl_username=admin\n", st, ip);
	fclose(fp);
}

static void
junk(int n)
{
	FILE *fp = fopen(logf, "a");
	char st[32];

	cr_assert_not_null(fp);
	stamp(st, sizeof(st));
	for (int i = 0; i < n; i++)
		fprintf(fp, "%s mx postfix/smtpd[99]: connect from unknown[198.51.100.%d]\n", st, i);
	fclose(fp);
}

/* ncalls - hook calls finished writing (.done markers) */
static size_t
ncalls(void)
{
	char pat[700];
	glob_t g;
	size_t n;

	snprintf(pat, sizeof(pat), "%s/call.*.done", calls);
	if (glob(pat, 0, NULL, &g) != 0)
		return 0;
	n = g.gl_pathc;
	globfree(&g);
	return n;
}

static bool
wait_calls(size_t n)
{
	for (int i = 0; i < 300; i++) {
		if (ncalls() >= n)
			return true;
		usleep(50000);
	}
	return false;
}

/* call_file - the suffix file of call k (0: oldest by start time), malloc'd text */
static char *
call_file(size_t k, const char *suffix)
{
	char *names = tu_sh_output("for f in %s/call.*.time; do echo \"$(cat $f) ${f%%.time}\"; "
	    "done | sort -n | sed -n '%zup' | cut -d' ' -f2", calls, k + 1);
	char *text;

	names[strcspn(names, "\n")] = '\0';
	cr_assert(names[0] != '\0', "call %zu exists", k);
	text = tu_sh_output("cat '%s%s'", names, suffix);
	free(names);
	return text;
}

static bool
has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)) != NULL; p += n)
		if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
			return true;
	return false;
}

static char *
sql(const char *q)
{
	return tu_sh_output("sqlite3 '%s' \"%s\"", db, q);
}

static bool
wait_sql(const char *q, const char *want)
{
	return tu_wait_sql(db, q, want);
}

static bool
err_has(const char *s)
{
	return tu_sh("grep -q -F -- '%s' '%s'", s, errf) == 0;
}

/* iso_ok - 2025-01-31T12:00:00Z */
static bool
iso_ok(const char *s, time_t *out)
{
	struct tm tm;
	char *end;

	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (end == NULL || *end != '\0')
		return false;
	*out = timegm(&tm);
	return true;
}

static const char *
env_value(const char *env, const char *name, char *buf, size_t len)
{
	char key[64];
	const char *p;

	snprintf(key, sizeof(key), "%s=", name);
	for (p = env; (p = strstr(p, key)) != NULL; p++) {
		if (p == env || p[-1] == '\n') {
			size_t n = strcspn(p + strlen(key), "\n");
			snprintf(buf, len, "%.*s", (int)n, p + strlen(key));
			return buf;
		}
	}
	return NULL;
}

Test(signals, a_hold_runs_the_hook_once_at_once_with_its_environment_and_json)
{
	char *env, *json, *t, v[512], host[256];
	double t_append, t_hook;
	time_t started, expires;
	json_t *doc, *ev, *x;
	pid_t pid;

	notify_config("root", "timeout = 10s\n");
	pid = start_daemon();
	t_append = now_secs();
	submissions("alice", "192.0.2.10", 3);
	submissions("alice", "192.0.2.11", 1);
	cr_assert(wait_calls(1), "the hook ran for the hold");
	t = call_file(0, ".time");
	t_hook = atof(t);
	free(t);
	/* The outbox is also read every 5 s; the kick of the commit is what
	 * makes it at once.  (Measured, not a benchmark: said in the log.) */
	cr_log_info("hold: hook started %.3f s after the lines were appended", t_hook - t_append);
	cr_assert_lt(t_hook - t_append, 4.0, "at once, not at the next poll: %.3f s",
	    t_hook - t_append);

	env = call_file(0, ".env");
	cr_assert(has_line(env, "MAILJAIL_EVENT=hold"), "%s", env);
	cr_assert(has_line(env, "MAILJAIL_JAIL=quota"), "%s", env);
	cr_assert(has_line(env, "MAILJAIL_TARGET=alice"), "%s", env);
	cr_assert(has_line(env, "MAILJAIL_TARGET_KIND=account"), "%s", env);
	cr_assert(has_line(env, "MAILJAIL_LEVEL=1"), "%s", env);
	cr_assert(has_line(env, "MAILJAIL_REASON=4 messages in 1h over limit 3/1h"), "%s", env);
	cr_assert(iso_ok(env_value(env, "MAILJAIL_STARTED", v, sizeof(v)), &started), "%s", env);
	cr_assert(iso_ok(env_value(env, "MAILJAIL_EXPIRES", v, sizeof(v)), &expires), "%s", env);
	cr_assert_eq(expires - started, 3600, "bantime 1h");
	cr_assert(started >= (time_t)t_append - 1 && started <= (time_t)t_hook + 1);
	cr_assert_eq(gethostname(host, sizeof(host)), 0);
	snprintf(v, sizeof(v), "MAILJAIL_NODE=%s", host);
	cr_assert(has_line(env, v), "%s", env);
	free(env);

	json = call_file(0, ".json");
	doc = json_loads(json, 0, NULL);
	cr_assert_not_null(doc, "JSON on stdin: %s", json);
	cr_assert(json_is_object(doc));
	cr_assert((x = json_object_get(doc, "event")) != NULL);
	cr_assert_str_eq(json_string_value(x), "hold");
	cr_assert((x = json_object_get(doc, "target")) != NULL);
	cr_assert_str_eq(json_string_value(x), "alice");
	cr_assert((x = json_object_get(doc, "command")) != NULL);
	cr_assert_str_eq(json_string_value(x), "mailjail release alice --requeue");
	cr_assert((ev = json_object_get(doc, "evidence")) != NULL, "%s", json);
	cr_assert((x = json_object_get(ev, "submissions")) != NULL);
	cr_assert_eq((int)json_integer_value(x), 4, "%s", json);
	cr_assert((x = json_object_get(ev, "clients")) != NULL);
	cr_assert_eq((int)json_integer_value(x), 2, "%s", json);
	cr_assert((x = json_object_get(ev, "busiest")) != NULL);
	x = json_array_get(x, 0);
	cr_assert_not_null(x);
	cr_assert_str_eq(json_string_value(json_object_get(x, "ip")), "192.0.2.10");
	cr_assert_eq((int)json_integer_value(json_object_get(x, "submissions")), 3);
	json_decref(doc);
	free(json);

	cr_assert(wait_sql("SELECT done || ' ' || attempts || ' ' || (sent_at IS NOT NULL)"
	    " FROM notifications", "2 0 1\n"), "marked delivered on the command channel");
	sleep(2);
	cr_assert_eq(ncalls(), 1, "once");
	cr_assert(err_has("notify: command"), "the hook's result is in the log");
	cr_assert(err_has("hook output for hold"), "its output too");
	cr_assert_eq(stop_daemon(pid, SIGTERM), 0);
}

Test(signals, ten_ip_bans_make_one_digest)
{
	char ip[32], *env, *json;
	json_t *doc;
	pid_t pid;

	notify_config("root", "digest = 2s\n");
	pid = start_daemon();
	for (int i = 1; i <= 10; i++) {
		snprintf(ip, sizeof(ip), "203.0.113.%d", i);
		failures(ip, 2);
	}
	cr_assert(wait_sql("SELECT count(*) FROM bans", "10\n"));
	cr_assert(wait_calls(1), "a digest came");
	sleep(3);
	cr_assert_eq(ncalls(), 1, "one digest for ten bans, not ten calls");
	env = call_file(0, ".env");
	cr_assert(has_line(env, "MAILJAIL_EVENT=digest"), "%s", env);
	cr_assert(has_line(env, "MAILJAIL_COUNT=10"), "%s", env);
	cr_assert(has_line(env, "MAILJAIL_JAIL=brute"), "%s", env);
	free(env);
	json = call_file(0, ".json");
	doc = json_loads(json, 0, NULL);
	cr_assert(doc != NULL && json_is_array(doc), "%s", json);
	cr_assert_eq(json_array_size(doc), 10);
	for (size_t i = 0; i < 10; i++) {
		json_t *o = json_array_get(doc, i), *x;
		cr_assert((x = json_object_get(o, "event")) != NULL);
		cr_assert_str_eq(json_string_value(x), "ban");
		cr_assert((x = json_object_get(o, "target_kind")) != NULL);
		cr_assert_str_eq(json_string_value(x), "ip");
	}
	json_decref(doc);
	free(json);
	cr_assert(wait_sql("SELECT count(*) FROM notifications WHERE sent_at IS NOT NULL"
	    " AND digest = 1", "10\n"));
	cr_assert_eq(stop_daemon(pid, SIGTERM), 0);
}

Test(signals, a_failed_hook_is_sent_after_kill9_and_restart_exactly_as_often_as_it_should)
{
	char flag[700], *env;
	pid_t pid;

	snprintf(flag, sizeof(flag), "%s/fail", dir);
	tu_write(dir, "fail", "", flag, sizeof(flag));
	notify_config("root", "");
	pid = start_daemon();
	submissions("alice", "192.0.2.20", 4);
	cr_assert(wait_calls(1));
	cr_assert(wait_sql("SELECT attempts || ' ' || (sent_at IS NULL) || ' ' ||"
	    " (last_error LIKE '%told to fail%') FROM notifications", "1 1 1\n"),
	    "the failure recorded, with the hook's words");
	cr_assert(tu_wait_file_has(errf, "failed (exit 3)"), "said in the log");
	cr_assert_eq(stop_daemon(pid, SIGKILL), 128 + SIGKILL);

	/* The hook works again; the next start sends what is owed at once. */
	cr_assert_eq(unlink(flag), 0);
	pid = start_daemon();
	cr_assert(wait_calls(2), "sent after the restart");
	cr_assert(wait_sql("SELECT count(*) FROM notifications WHERE sent_at IS NOT NULL", "1\n"));
	env = call_file(1, ".env");
	cr_assert(has_line(env, "MAILJAIL_TARGET=alice"), "%s", env);
	free(env);

	/* A notification delivered and marked is never sent again, even after
	 * a kill -9. */
	submissions("bob", "192.0.2.21", 4);
	cr_assert(wait_calls(3));
	cr_assert(wait_sql("SELECT count(*) FROM notifications WHERE sent_at IS NOT NULL", "2\n"));
	cr_assert_eq(stop_daemon(pid, SIGKILL), 128 + SIGKILL);
	pid = start_daemon();
	sleep(3);
	cr_assert_eq(ncalls(), 3, "alice twice (failed, then sent), bob once");
	cr_assert_eq(stop_daemon(pid, SIGTERM), 0);
}

Test(signals, a_failed_hook_is_retried_while_the_daemon_runs)
{
	char flag[700];
	pid_t pid;

	tu_write(dir, "fail", "", flag, sizeof(flag));
	notify_config("root", "");
	pid = start_daemon();
	submissions("carol", "192.0.2.30", 4);
	cr_assert(wait_sql("SELECT attempts FROM notifications", "1\n"));
	cr_assert_eq(ncalls(), 1);
	cr_assert_eq(unlink(flag), 0);
	/* The first retry comes 5 s after the failure. */
	cr_assert(wait_sql("SELECT attempts || ' ' || (sent_at IS NOT NULL) FROM notifications",
	    "1 1\n"), "retried and sent");
	cr_assert_eq(ncalls(), 2);
	cr_assert_eq(stop_daemon(pid, SIGTERM), 0);
}

Test(signals, a_hung_hook_is_killed_with_its_children_and_the_pipeline_goes_on)
{
	char flag[700], *out, *hpid;
	pid_t pid;

	tu_write(dir, "hang", "", flag, sizeof(flag));
	notify_config("root", "timeout = 3s\n");
	pid = start_daemon();
	submissions("dave", "192.0.2.40", 4);
	cr_assert(wait_calls(1), "the hook started (and hangs)");
	/* Meanwhile the log is read and bans are made as ever. */
	failures("203.0.113.40", 2);
	failures("203.0.113.41", 2);
	cr_assert(wait_sql("SELECT count(*) FROM bans WHERE jail = 'brute'", "2\n"),
	    "banned while the hook hangs");
	cr_assert(tu_wait_file_has(errf, "killed after the time limit"), "killed, and said");
	cr_assert(wait_sql("SELECT attempts || ' ' || (last_error LIKE '%time limit%')"
	    " FROM notifications WHERE target = 'dave'", "1 1\n"));
	/* The hook is its process group's leader: none of the group is left
	 * (its "sleep" child would hold the output pipe). */
	hpid = call_file(0, ".pid");
	hpid[strcspn(hpid, "\n")] = '\0';
	/* (A killed member may stay a zombie a while: this PID 1 reaps late.) */
	for (int i = 0; i < 40; i++) {
		out = tu_sh_output("for p in $(pgrep -g '%s'); do s=$(sed 's/.*) //' "
		    "/proc/$p/stat 2>/dev/null | cut -c1); [ -n \"$s\" ] && [ \"$s\" != Z ] && "
		    "echo \"$p $s\"; done; true", hpid);
		if (out[0] == '\0')
			break;
		free(out);
		out = NULL;
		usleep(50000);
	}
	cr_assert_not_null(out, "the hook's group %s died with it", hpid);
	cr_assert_str_eq(out, "", "the hook's group %s died with it: %s", hpid, out);
	free(out);
	free(hpid);
	cr_assert_eq(unlink(flag), 0);
	cr_assert_eq(stop_daemon(pid, SIGTERM), 0);
}

Test(signals, the_hook_runs_as_the_run_user_without_capabilities)
{
	char *who;
	pid_t pid;

	cr_assert_eq(geteuid(), 0, "this test needs root (CI runs as root)");
	notify_config("nobody", "");
	pid = start_daemon();
	submissions("erin", "192.0.2.50", 4);
	cr_assert(wait_calls(1));
	who = call_file(0, ".who");
	cr_assert(has_line(who, "65534"), "uid nobody: %s", who);
	cr_assert(has_line(who, "CapEff:\t0000000000000000"), "no CAP_NET_ADMIN: %s", who);
	free(who);
	cr_assert_eq(stop_daemon(pid, SIGTERM), 0);
}

Test(signals, an_operator_release_is_told_by_the_running_daemon)
{
	char *env, *out;
	pid_t pid;

	notify_config("root", "");
	pid = start_daemon();
	submissions("frank", "192.0.2.60", 4);
	cr_assert(wait_calls(1));
	out = tu_sh_output("'%s' release frank --dry-run -c '%s' 2>&1", bin, cfg);
	cr_assert(strstr(out, "released frank") != NULL, "%s", out);
	free(out);
	cr_assert(wait_calls(2), "the lift queued by the command is delivered by the daemon");
	env = call_file(1, ".env");
	cr_assert(has_line(env, "MAILJAIL_EVENT=lift"), "%s", env);
	cr_assert(has_line(env, "MAILJAIL_TARGET=frank"), "%s", env);
	free(env);
	cr_assert_eq(stop_daemon(pid, SIGTERM), 0);
}

Test(signals, replay_notifies_only_when_asked)
{
	char other[700], *out;

	notify_config("root", "");
	submissions("gina", "192.0.2.70", 4);
	out = tu_sh_output("'%s' replay -c '%s' '%s' 2>&1; echo rc=$?", bin, cfg, logf);
	cr_assert(strstr(out, "rc=0") != NULL, "%s", out);
	free(out);
	out = sql("SELECT (SELECT count(*) FROM bans) || ' ' || count(*) FROM notifications");
	cr_assert_str_eq(out, "1 0\n", "history is not news");
	free(out);
	snprintf(other, sizeof(other), "%s/other.db", dir);
	out = tu_sh_output("'%s' replay --notify --db '%s' -c '%s' '%s' 2>&1; echo rc=$?", bin,
	    other, cfg, logf);
	cr_assert(strstr(out, "1 notification queued") != NULL, "%s", out);
	free(out);
	out = tu_sh_output("sqlite3 '%s' \"SELECT event || ' ' || target || ' ' ||"
	    " (sent_at IS NULL) FROM notifications\"", other);
	cr_assert_str_eq(out, "hold gina 1\n", "queued, for the daemon to send");
	free(out);
	cr_assert_eq(ncalls(), 0, "replay runs no hook itself");
}

Test(signals, bad_notify_and_metrics_settings_are_check_config_errors_with_file_and_line)
{
	char *out, noexec[700];

	tu_write(dir, "noexec.sh", "#!/bin/sh\n", noexec, sizeof(noexec));
	write_config("root", "[notify]\nmailto = admin@example.org, not an address\n"
	    "command = /nonexistent/hook\nsmtp = 127.0.0.1\ncolour = blue\n"
	    "[metrics]\nlisten = localhost:9100\n");
	out = tu_sh_output("'%s' check-config -c '%s' 2>&1; echo rc=$?", bin, cfg);
	cr_assert(strstr(out, "mailjail.conf:10: [notify] mailto: \"not an address\" is not "
	    "a mail address") != NULL, "%s", out);
	cr_assert(strstr(out, "mailjail.conf:11: [notify] command: /nonexistent/hook: No such "
	    "file or directory") != NULL, "%s", out);
	cr_assert(strstr(out, "mailjail.conf:12: [notify] smtp: expected HOST:PORT") != NULL,
	    "%s", out);
	cr_assert(strstr(out, "mailjail.conf:13: unknown key \"colour\" in [notify]") != NULL,
	    "%s", out);
	cr_assert(strstr(out, "mailjail.conf:15: [metrics] listen: expected IP:PORT") != NULL,
	    "%s", out);
	cr_assert(strstr(out, "rc=2") != NULL, "%s", out);
	free(out);
	{
		char text[1024];
		snprintf(text, sizeof(text), "[notify]\ncommand = %s\n", noexec);
		write_config("root", text);
	}
	out = tu_sh_output("'%s' check-config -c '%s' 2>&1; echo rc=$?", bin, cfg);
	cr_assert(strstr(out, "mailjail.conf:10: [notify] command:") != NULL &&
	    strstr(out, "not an executable file") != NULL && strstr(out, "rc=2") != NULL,
	    "%s", out);
	free(out);
	tu_write(dir, "bad.jail", "[x]\nevents = auth_failure\nmaxretry = 2\naction = nft\n"
	    "notify = sometimes\n", jails, sizeof(jails));
	write_config("root", "");
	out = tu_sh_output("'%s' check-config -c '%s' 2>&1; echo rc=$?", bin, cfg);
	cr_assert(strstr(out, "bad.jail:5: jail x: notify must be now, digest or no") != NULL &&
	    strstr(out, "rc=2") != NULL, "%s", out);
	free(out);
}

Test(signals, the_run_user_must_be_able_to_run_the_hook_and_write_the_textfile)
{
	char text[2048], priv[700], ro[700], other[700], *out;
	int st;
	pid_t pid;

	cr_assert_eq(geteuid(), 0, "this test needs root (CI runs as root)");
	/* Root's hook, that only root may run; a directory only root writes. */
	tu_write(dir, "private.sh", "#!/bin/sh\nexit 0\n", priv, sizeof(priv));
	cr_assert_eq(chmod(priv, 0700), 0);
	snprintf(ro, sizeof(ro), "%s/ro", dir);
	cr_assert_eq(mkdir(ro, 0755), 0);
	snprintf(text, sizeof(text), "[notify]\ncommand = %s\n[metrics]\ntextfile = %s/m.prom\n",
	    priv, ro);
	write_config("nobody", text);
	out = tu_sh_output("'%s' check-config -c '%s' 2>&1; echo rc=$?", bin, cfg);
	cr_assert(strstr(out, "user nobody cannot run this [notify] command (a script: read "
	    "and execute): Permission denied") != NULL, "%s", out);
	cr_assert(strstr(out, "user nobody cannot create files in this directory, which holds "
	    "the [metrics] textfile") != NULL, "%s", out);
	cr_assert(strstr(out, "rc=2") != NULL, "%s", out);
	free(out);
	/* run refuses the same, before it is ready. */
	pid = tu_fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		FILE *e = freopen(errf, "a", stderr);
		(void)e;
		execl(bin, "mailjail", "run", "--dry-run", "-c", cfg, (char *)NULL);
		_exit(127);
	}
	cr_assert_eq(tu_waitpid(pid, &st), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "status %#x", st);
	cr_assert(err_has("cannot run this [notify] command"));
	cr_assert(!err_has("running:"));

	/* A script others may change would run their code as the run user:
	 * refused like a config file they could change (cfgfile.h). */
	tu_write(dir, "other.sh", "#!/bin/sh\nexit 0\n", other, sizeof(other));
	cr_assert_eq(chmod(other, 0757), 0);
	snprintf(text, sizeof(text), "[notify]\ncommand = %s\n", other);
	write_config("nobody", text);
	out = tu_sh_output("'%s' check-config -c '%s' 2>&1; echo rc=$?", bin, cfg);
	cr_assert(strstr(out, "[notify] command:") != NULL &&
	    strstr(out, "the file is writable by others (mode 0757)") != NULL &&
	    strstr(out, "rc=2") != NULL, "%s", out);
	free(out);
}

/* ---- metrics ------------------------------------------------------------ */

/* free_port - a loopback port nobody listens on now */
static int
free_port(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	cr_assert_geq(fd, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

/* prom - what the Prometheus parser read from src (a file or a URL) */
static char *
prom(const char *src)
{
	char *out = tu_sh_output("%s %s/tests/promparse.py '%s' 2>&1; echo rc=$?", PYTHON,
	    tu_srcdir(), src);

	cr_assert(strstr(out, "\nrc=0\n") != NULL || strncmp(out, "rc=0", 4) == 0,
	    "the parser accepts %s: %s", src, out);
	return out;
}

/* value - the sample (name{labels} exactly as promparse prints), or -1 */
static double
value(const char *parsed, const char *sample)
{
	size_t n = strlen(sample);

	for (const char *p = parsed; (p = strstr(p, sample)) != NULL; p += n)
		if ((p == parsed || p[-1] == '\n') && p[n] == ' ')
			return atof(p + n + 1);
	return -1;
}

static bool
wait_value(const char *src, const char *sample, double want)
{
	for (int i = 0; i < 150; i++) {
		char *out = prom(src);
		double v = value(out, sample);
		free(out);
		if (v == want)
			return true;
		usleep(200000);
	}
	return false;
}

/* check_counts - the families against what the test did */
static void
check_counts(const char *parsed, double lines, const char *what)
{
	char s[900];

	snprintf(s, sizeof(s), "mailjail_lines_total{source=\"%s\"}", logf);
	cr_assert_eq(value(parsed, s), lines, "%s: %s\n%s", what, s, parsed);
	cr_assert_eq(value(parsed, "mailjail_events_total{event=\"auth_failure\"}"), 10, "%s", what);
	cr_assert_eq(value(parsed, "mailjail_events_total{event=\"submission\"}"), 4, "%s", what);
	cr_assert_eq(value(parsed, "mailjail_events_total{event=\"relay_denied\"}"), 0, "%s", what);
	cr_assert_eq(value(parsed, "mailjail_verdicts_total{action=\"nft\",jail=\"brute\"}"), 5,
	    "%s", what);
	cr_assert_eq(value(parsed, "mailjail_verdicts_total{action=\"hold\",jail=\"quota\"}"), 1,
	    "%s", what);
	cr_assert_eq(value(parsed, "mailjail_build_info{version=\"0.1.0\"}"), 1, "%s", what);
	cr_assert_geq(value(parsed, "mailjail_db_commit_seconds_count{}"), 1, "%s", what);
	cr_assert_eq(value(parsed, "mailjail_db_commit_seconds_bucket{le=\"+Inf\"}"),
	    value(parsed, "mailjail_db_commit_seconds_count{}"), "%s", what);
	cr_assert_eq(value(parsed, "mailjail_enforce_errors_total{backend=\"nft\"}"), 0, "%s", what);
}

/* check_active - mailjail_active against the active_bans view */
static void
check_active(const char *parsed)
{
	char *rows = sql("SELECT jail || ' ' || target_kind || ' ' || count(*) FROM active_bans"
	    " GROUP BY jail, target_kind");

	cr_assert_str_eq(rows, "brute ip 5\nquota account 1\n");
	free(rows);
	cr_assert_eq(value(parsed, "mailjail_active{jail=\"brute\",target_kind=\"ip\"}"), 5);
	cr_assert_eq(value(parsed, "mailjail_active{jail=\"quota\",target_kind=\"account\"}"), 1);
}

Test(signals, metrics_parse_count_what_happened_and_go_on_after_a_restart)
{
	char extra[1200], prom_file[700], url[128], s[900], *raw, *p;
	int port = free_port();
	pid_t pid;

	snprintf(prom_file, sizeof(prom_file), "%s/mailjail.prom", dir);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", port);
	snprintf(extra, sizeof(extra), "[metrics]\ntextfile = %s\nlisten = 127.0.0.1:%d\n",
	    prom_file, port);
	write_config("root", extra);
	pid = start_daemon();
	for (int i = 1; i <= 5; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "203.0.113.%d", 100 + i);
		failures(ip, 2);
	}
	submissions("alice", "192.0.2.80", 4);
	junk(3);
	cr_assert(wait_sql("SELECT count(*) FROM bans", "6\n"));
	snprintf(s, sizeof(s), "mailjail_lines_total{source=\"%s\"}", logf);
	cr_assert(wait_value(prom_file, s, 17), "the textfile (every 10 s) counts 17 lines");
	p = prom(prom_file);
	check_counts(p, 17, "textfile");
	check_active(p);
	snprintf(s, sizeof(s), "mailjail_log_lag_bytes{source=\"%s\"}", logf);
	cr_assert_eq(value(p, s), 0, "all read: %s", p);
	free(p);

	/* HELP and TYPE lines; no account name or address anywhere. */
	raw = tu_sh_output("cat '%s'", prom_file);
	cr_assert(strstr(raw, "# HELP mailjail_lines_total ") != NULL, "%s", raw);
	cr_assert(strstr(raw, "# TYPE mailjail_lines_total counter") != NULL);
	cr_assert(strstr(raw, "# TYPE mailjail_active gauge") != NULL);
	cr_assert(strstr(raw, "# TYPE mailjail_db_commit_seconds histogram") != NULL);
	cr_assert(strstr(raw, "mailjail_notifications_total") != NULL);
	cr_assert(strstr(raw, "alice") == NULL && strstr(raw, "203.0.113.") == NULL &&
	    strstr(raw, "192.0.2.") == NULL, "no account or address: %s", raw);
	free(raw);
	raw = tu_sh_output("ls '%s'", dir);
	cr_assert(strstr(raw, ".tmp") == NULL, "no temporary file left: %s", raw);
	free(raw);

	/* /metrics serves the same families, with the format's content type. */
	p = prom(url);
	cr_assert(strstr(p, "# CONTENT-TYPE text/plain; version=0.0.4") != NULL, "%s", p);
	check_counts(p, 17, "http");
	check_active(p);
	free(p);
	raw = tu_sh_output("%s -c \"import urllib.request as u\ntry:\n u.urlopen('http://127.0.0.1:"
	    "%d/other', timeout=5)\nexcept Exception as e: print(e)\"", PYTHON, port);
	cr_assert(strstr(raw, "404") != NULL, "%s", raw);
	free(raw);

	/* Stopped: mailjail metrics prints the same counters (saved at stop). */
	cr_assert_eq(stop_daemon(pid, SIGTERM), 0);
	tu_sh("'%s' metrics -c '%s' > '%s/cli.prom'", bin, cfg, dir);
	snprintf(s, sizeof(s), "%s/cli.prom", dir);
	p = prom(s);
	check_counts(p, 17, "mailjail metrics");
	check_active(p);
	free(p);

	/* The counters go on from there after a restart. */
	pid = start_daemon();
	junk(3);
	snprintf(s, sizeof(s), "mailjail_lines_total{source=\"%s\"}", logf);
	cr_assert(wait_value(url, s, 20), "17 + 3 lines after the restart");
	cr_assert_eq(stop_daemon(pid, SIGTERM), 0);
	p = prom(prom_file);
	check_counts(p, 20, "the textfile written at stop");
	free(p);
}

/* The counters are saved every 10 s; a daemon following a busy log has a
 * batch open most of the time (lines that issue no verdict wait up to 50 ms
 * for their commit).  A save that began a transaction of its own there was
 * refused, rolled the batch back with it, and the daemon stopped. */
Test(signals, metrics_are_saved_while_a_batch_waits_for_its_commit)
{
	char extra[800], prom_file[700], s[900], *out, *p;
	double t0;
	int n = 0;
	pid_t pid;

	snprintf(prom_file, sizeof(prom_file), "%s/mailjail.prom", dir);
	snprintf(extra, sizeof(extra), "[metrics]\ntextfile = %s\n", prom_file);
	write_config("root", extra);
	pid = start_daemon();
	/* An event every 5 ms for 12 s, past a save, with a batch open: one
	 * failure from each address (the jail bans at 2). */
	for (t0 = now_secs(); now_secs() - t0 < 12; n++) {
		char ip[32];

		snprintf(ip, sizeof(ip), "10.9.%d.%d", n / 250, n % 250 + 1);
		failures(ip, 1);
		usleep(5000);
	}
	snprintf(s, sizeof(s), "mailjail_lines_total{source=\"%s\"}", logf);
	cr_assert(wait_value(prom_file, s, n), "%d lines counted, the daemon running", n);
	cr_assert_eq(stop_daemon(pid, SIGTERM), 0, "a clean stop");
	out = tu_sh_output("cat '%s'", errf);
	cr_assert(strstr(out, "transaction") == NULL && strstr(out, "failed") == NULL,
	    "no refused write: %s", out);
	free(out);
	p = prom(prom_file);
	cr_assert_eq(value(p, s), n, "all %d lines, saved at stop", n);
	free(p);
}

/* low_port - a loopback port below 1024 nobody listens on now */
static int
low_port(void)
{
	for (int port = 1023; port > 900; port--) {
		struct sockaddr_in sa;
		int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

		cr_assert_geq(fd, 0);
		memset(&sa, 0, sizeof(sa));
		sa.sin_family = AF_INET;
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sa.sin_port = htons((uint16_t)port);
		ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
		close(fd);
		if (ok)
			return port;
	}
	cr_assert_fail("no free port below 1024 on 127.0.0.1");
	return -1;
}

Test(signals, metrics_as_the_run_user_on_a_port_below_1024_and_above)
{
	/* Below 1024 it is bound before the drop (by root: the drop leaves
	 * no CAP_NET_BIND_SERVICE, also to user root); above, after it, as
	 * the run user.  Served either way, and the textfile is the run
	 * user's. */
	static const struct { const char *user; uid_t uid; bool low; } runs[] = {
		{ "nobody", 65534, true }, { "nobody", 65534, false }, { "root", 0, true },
	};
	char extra[1200], prom_file[700], url[128], s[900], *p;

	cr_assert_eq(geteuid(), 0, "this test needs root (CI runs as root)");
	for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
		int port = runs[i].low ? low_port() : free_port();
		struct stat sb;
		pid_t pid;

		/* A DB and a log of each run's own: user root keeps no
		 * CAP_DAC_OVERRIDE, so it could not write nobody's DB. */
		cr_assert_eq(tu_sh("rm -f '%s' '%s-wal' '%s-shm' '%s/hold.db' && : > '%s'", db, db,
		    db, dir, logf), 0);
		snprintf(prom_file, sizeof(prom_file), "%s/m%zu.prom", dir, i);
		snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", port);
		snprintf(extra, sizeof(extra), "[metrics]\ntextfile = %s\nlisten = 127.0.0.1:%d\n",
		    prom_file, port);
		write_config(runs[i].user, extra);
		pid = start_daemon();
		junk(2);
		snprintf(s, sizeof(s), "mailjail_lines_total{source=\"%s\"}", logf);
		cr_assert(wait_value(url, s, 2), "user %s: served on port %d", runs[i].user, port);
		cr_assert_eq(stat(prom_file, &sb), 0);
		cr_assert_eq(sb.st_uid, runs[i].uid, "the textfile written as %s", runs[i].user);
		cr_assert_eq(stop_daemon(pid, SIGTERM), 0);
		p = prom(prom_file);
		cr_assert_eq(value(p, s), 2, "%s", p);
		free(p);
	}
}

Test(signals, metrics_count_notifications_by_channel_and_result)
{
	char extra[1200], prom_file[700], flag[700], *p;
	pid_t pid;

	snprintf(prom_file, sizeof(prom_file), "%s/mailjail.prom", dir);
	tu_write(dir, "fail", "", flag, sizeof(flag));
	snprintf(extra, sizeof(extra), "timeout = 10s\n[metrics]\ntextfile = %s\n", prom_file);
	notify_config("root", extra);
	pid = start_daemon();
	submissions("hank", "192.0.2.90", 4);
	cr_assert(wait_sql("SELECT attempts FROM notifications", "1\n"));
	cr_assert_eq(unlink(flag), 0);
	cr_assert(wait_sql("SELECT sent_at IS NOT NULL FROM notifications", "1\n"));
	cr_assert_eq(stop_daemon(pid, SIGTERM), 0);
	p = prom(prom_file);
	cr_assert_eq(value(p, "mailjail_notifications_total{channel=\"command\",result=\"failed\"}"),
	    1, "%s", p);
	cr_assert_eq(value(p, "mailjail_notifications_total{channel=\"command\",result=\"sent\"}"),
	    1, "%s", p);
	cr_assert_eq(value(p, "mailjail_notifications_total{channel=\"command\",result=\"timeout\"}"),
	    0, "%s", p);
	cr_assert_eq(value(p, "mailjail_notifications_pending{}"), 0, "%s", p);
	free(p);
}

/* ---- the detections of issue 13, told ----------------------------------------- */

/* listed - account submits a message that a blocklisted server refuses
 * (remote_listed: the server's own address listed) */
static void
listed(const char *account, int k)
{
	FILE *fp = fopen(logf, "a");
	char st[32];

	cr_assert_not_null(fp);
	stamp(st, sizeof(st));
	fprintf(fp, "%s mx postfix/submission/smtpd[77]: 7A%04X: client=unknown[192.0.2.90], "
	    "sasl_method=PLAIN, sasl_username=%s\n", st, k, account);
	fprintf(fp, "%s mx postfix/smtp[78]: 7A%04X: to=<x%d@posteo.example>, relay=mx.posteo."
	    "example[198.51.100.25]:25, delay=1.2, delays=0.1/0/0.4/0.7, dsn=5.7.1, status=bounced "
	    "(host mx.posteo.example[198.51.100.25] said: 554 5.7.1 Service unavailable; Client "
	    "host [192.0.2.25] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/"
	    "192.0.2.25 (in reply to RCPT TO command))\n", st, k, k);
	fclose(fp);
}

/* attempts - one SASL failure against account from each of n addresses */
static void
attempts(const char *account, int n)
{
	FILE *fp = fopen(logf, "a");
	char st[32];

	cr_assert_not_null(fp);
	stamp(st, sizeof(st));
	for (int i = 0; i < n; i++)
		fprintf(fp, "%s mx postfix/smtpd[88]: warning: unknown[203.0.113.%d]: SASL LOGIN "
		    "authentication failed: UGFzc3dvcmQ6, sasl_username=%s\n", st, 10 + i, account);
	fclose(fp);
}

/*
 * The listed server's alarm is told at once (MAILJAIL_EVENT=alarm, queued in
 * the batch's transaction) and counted (mailjail_alarms_total); the bans of
 * an attacked account's addresses go into the digest (the jail acts on
 * addresses), the watch itself enforces nothing and is not told (the
 * outbox's events are ban, hold, defer, lift, alarm).
 */
Test(signals, an_alarm_is_told_and_counted_and_an_attacked_accounts_bans_go_in_the_digest)
{
	char extra[1600], prom_file[700], acct[32], *env, *p;
	pid_t pid;

	snprintf(prom_file, sizeof(prom_file), "%s/mailjail.prom", dir);
	tu_write(dir, "test.jail",
	    "[reputation]\nevents = remote_reject, remote_listed\nkey = account\nfindtime = 1h\n"
	    "maxretry = 5\naction = hold\nbantime = 1d\n\n"
	    "[targeted]\nevents = auth_failure\nkey = account\nfindtime = 1h\nmaxretry = 4\n"
	    "action = nft\nbantime = 1h\nignore =\n", jails, sizeof(jails));
	snprintf(extra, sizeof(extra), "[notify]\ncommand = %s\ndigest = 2s\n"
	    "[metrics]\ntextfile = %s\n", hook, prom_file);
	write_config("root", extra);
	pid = start_daemon();
	for (int k = 0; k < 5; k++) {
		snprintf(acct, sizeof(acct), "user%d@example.org", k);
		listed(acct, k);
	}
	cr_assert(wait_sql("SELECT event || ' ' || jail || ' ' || digest FROM notifications",
	    "alarm reputation 0\n"), "the alarm, at once");
	cr_assert(wait_calls(1), "the hook ran");
	env = call_file(0, ".env");
	cr_assert(has_line(env, "MAILJAIL_EVENT=alarm"), "%s", env);
	cr_assert(has_line(env, "MAILJAIL_JAIL=reputation"), "%s", env);
	cr_assert(strstr(env, "MAILJAIL_REASON=5 remote_listed from 5 accounts in 1h: the server's "
	    "own address or domain looks listed; none is held for them") != NULL, "%s", env);
	free(env);
	(void)wait_value(prom_file, "mailjail_alarms_total{event=\"remote_listed\","
	    "jail=\"reputation\"}", 1);
	p = prom(prom_file);
	cr_assert_eq(value(p, "mailjail_alarms_total{event=\"remote_listed\","
	    "jail=\"reputation\"}"), 1, "the metric: %s", p);
	cr_assert_eq(value(p, "mailjail_verdicts_total{action=\"watch\",jail=\"targeted\"}"), 0,
	    "declared at 0: %s", p);
	free(p);

	attempts("ceo@example.org", 4);
	cr_assert(wait_sql("SELECT group_concat(event || ' ' || target || ' ' || digest, ',')"
	    " FROM (SELECT * FROM notifications WHERE jail = 'targeted' ORDER BY id)",
	    "ban 203.0.113.10 1,ban 203.0.113.11 1,ban 203.0.113.12 1,ban 203.0.113.13 1\n"),
	    "the addresses' bans, in the digest; the watch itself is not told");
	cr_assert(wait_sql("SELECT count(*) FROM bans WHERE jail = 'targeted' AND target_kind ="
	    " 'account' AND target = 'ceo@example.org'", "1\n"), "the watch is a row");
	cr_assert(wait_sql("SELECT count(*) FROM notifications WHERE jail = 'targeted' AND "
	    "sent_at IS NULL", "0\n"), "the digest was sent");
	cr_assert(wait_value(prom_file, "mailjail_verdicts_total{action=\"watch\",jail=\"targeted\"}",
	    1));
	cr_assert_eq(stop_daemon(pid, SIGTERM), 0);
}
