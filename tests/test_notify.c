/*
 * test_notify - the notification module without the daemon: what the mail,
 * the JSON and the environment say (and that a crafted target breaks none
 * of them), the delivery jobs' time limit and output cut, the notifier
 * giving up after a day (a real SQLite outbox and a real failing command,
 * with the clock moved a day on), and the [notify] keys' checks.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "notify_job.h"
#include "notify_msg.h"
#include "store.h"
#include "testutil.h"

static char dir[256];

static void
setup(void)
{
	tu_mkdtemp(dir, sizeof(dir));
	log_set_quiet(true);
}

static void
teardown(void)
{
	tu_rmrf(dir);
}

TestSuite(notify, .init = setup, .fini = teardown, .timeout = 60);

static struct notice
hold_of(const char *target)
{
	struct notice n;

	memset(&n, 0, sizeof(n));
	n.id = 17;
	n.event = strdup("hold");
	n.jail = strdup("outbound-quota");
	n.target = strdup(target);
	n.target_kind = strdup("account");
	n.reason = strdup("101 messages in 1h over limit 100/1h");
	n.node = strdup("mx1");
	n.evidence_key = strdup("account");
	n.evidence_window = 3600;
	n.level = 1;
	n.started_at = 1767225600;          /* 2026-01-01T00:00:00Z */
	n.expires_at = 1767225600 + 86400;
	n.created_at = n.started_at;
	n.have_evidence = true;
	n.ev.submissions = 101;
	n.ev.clients = 2;
	n.ev.recipients = 540;
	n.ev.ntop = 2;
	snprintf(n.ev.top[0].ip, sizeof(n.ev.top[0].ip), "203.0.113.5");
	n.ev.top[0].submissions = 90;
	snprintf(n.ev.top[1].ip, sizeof(n.ev.top[1].ip), "198.51.100.7");
	n.ev.top[1].submissions = 11;
	return n;
}

static const char *const to[] = { "admin@example.org", "ops@example.org" };

static struct notify_msg_opts
opts(void)
{
	struct notify_msg_opts o = { "mx1", "mailjail@mx1.example.org", to, 2,
	    "/etc/mailjail/other.conf", 1767225660 };
	return o;
}

/* headers - the text before the blank line */
static char *
headers(const char *mail)
{
	const char *end = strstr(mail, "\r\n\r\n");

	cr_assert_not_null(end);
	return strndup(mail, (size_t)(end - mail) + 2);
}

Test(notify, a_hold_mail_says_what_happened_the_evidence_and_the_command)
{
	struct notice n = hold_of("alice");
	struct notify_msg_opts o = opts();
	size_t len;
	char *mail = notify_mail(&n, 1, false, &o, &len), *h;

	cr_assert_not_null(mail);
	cr_assert_eq(strlen(mail), len);
	h = headers(mail);
	cr_assert(strstr(h, "Subject: [mailjail] hold: account alice (jail outbound-quota, "
	    "level 1) on mx1\r\n") != NULL, "%s", h);
	cr_assert(strstr(h, "From: \"mailjail on mx1\" <mailjail@mx1.example.org>\r\n"), "%s", h);
	cr_assert(strstr(h, "To: admin@example.org,\r\n ops@example.org\r\n"), "%s", h);
	cr_assert(strstr(h, "Date: Thu, 01 Jan 2026 00:01:00 +0000\r\n"), "%s", h);
	cr_assert(strstr(h, "Message-ID: <mailjail.17@mx1>\r\n"), "%s", h);
	cr_assert(strstr(h, "Auto-Submitted: auto-generated\r\n"), "%s", h);
	cr_assert(strstr(h, "Content-Type: text/plain; charset=utf-8\r\n"), "%s", h);
	free(h);
	cr_assert(strstr(mail, "  Jail:    outbound-quota\r\n"), "%s", mail);
	cr_assert(strstr(mail, "  Level:   1 (first offence)\r\n"), "%s", mail);
	cr_assert(strstr(mail, "  Until:   2026-01-02T00:00:00Z (1d after it began)\r\n"), "%s", mail);
	cr_assert(strstr(mail, "  Submissions:       101\r\n"), "%s", mail);
	cr_assert(strstr(mail, "  Client addresses:  2\r\n"), "%s", mail);
	cr_assert(strstr(mail, "  Busiest clients:   203.0.113.5 (90), 198.51.100.7 (11)\r\n"),
	    "%s", mail);
	cr_assert(strstr(mail, "  Recipients:        540\r\n"), "%s", mail);
	cr_assert(strstr(mail, "\r\n  mailjail release alice --requeue -c "
	    "/etc/mailjail/other.conf\r\n"), "%s", mail);
	for (const char *p = mail; (p = strchr(p, '\n')) != NULL; p++)
		cr_assert(p > mail && p[-1] == '\r', "every line ends in CRLF");
	free(mail);
	notice_free(&n);
}

Test(notify, a_crafted_target_breaks_no_header_no_command_and_no_json)
{
	const char *evil = "ev'il\r\nBcc: victim@example.net; rm -rf / \xc3\xa9";
	struct notice n = hold_of(evil);
	struct notify_msg_opts o = opts();
	size_t len;
	char *mail = notify_mail(&n, 1, false, &o, &len), *h, *json, **env;
	json_t *doc, *x;
	bool found = false;

	h = headers(mail);
	cr_assert(strstr(h, "\nBcc:") == NULL, "no injected header: %s", h);
	cr_assert(strstr(h, "account ev'il??Bcc: victim@example.net; rm -rf / ?? (jail") != NULL,
	    "control characters and non-ASCII made '?' in the Subject: %s", h);
	free(h);
	cr_assert(strstr(mail, "mailjail release 'ev'\\''il??Bcc: victim@example.net; rm -rf / "
	    "\xc3\xa9' --requeue") != NULL, "quoted for the shell: %s", mail);
	free(mail);

	json = notify_json(&n, 1, false, &len);
	doc = json_loads(json, 0, NULL);
	cr_assert_not_null(doc, "%s", json);
	cr_assert((x = json_object_get(doc, "target")) != NULL);
	cr_assert_str_eq(json_string_value(x), evil, "the exact target, escaped by jansson");
	json_decref(doc);
	free(json);

	env = notify_env(&n, 1, false, "mx1", NULL);
	cr_assert_not_null(env);
	for (size_t i = 0; env[i]; i++)
		if (strncmp(env[i], "MAILJAIL_TARGET=", 16) == 0)
			found = strcmp(env[i] + 16, evil) == 0;
	cr_assert(found);
	notify_env_free(env);
	notice_free(&n);
}

Test(notify, a_target_that_is_not_utf8_still_gives_valid_json)
{
	/* Latin-1 bytes, a lone continuation byte, a truncated sequence. */
	const char *raw = "caf\xe9-\x80-\xc3";
	struct notice n = hold_of(raw);
	size_t len;
	char *json = notify_json(&n, 1, false, &len), **env;
	json_t *doc;
	bool found = false;

	cr_assert_not_null(json, "a document, not a refusal");
	cr_assert_eq(strlen(json), len);
	doc = json_loads(json, 0, NULL);
	cr_assert_not_null(doc, "valid JSON: %s", json);
	cr_assert_str_eq(json_string_value(json_object_get(doc, "target")),
	    "caf\xef\xbf\xbd-\xef\xbf\xbd-\xef\xbf\xbd", "U+FFFD per byte outside ASCII");
	cr_assert_eq(json_integer_value(json_object_get(doc, "level")), 1);
	json_decref(doc);
	free(json);
	/* The environment has the bytes as they were. */
	env = notify_env(&n, 1, false, "mx1", NULL);
	cr_assert_not_null(env);
	for (size_t i = 0; env[i]; i++)
		if (strncmp(env[i], "MAILJAIL_TARGET=", 16) == 0)
			found = strcmp(env[i] + 16, raw) == 0;
	cr_assert(found);
	notify_env_free(env);
	notice_free(&n);
}

Test(notify, the_environment_has_every_name_and_drops_inherited_ones)
{
	struct notice n = hold_of("alice");
	char *const base[] = { "PATH=/usr/bin:/bin", "MAILJAIL_EVENT=spoofed", NULL };
	char **env = notify_env(&n, 1, false, "mx1", base);
	const char *want[] = {
		"PATH=/usr/bin:/bin", "MAILJAIL_EVENT=hold", "MAILJAIL_JAIL=outbound-quota",
		"MAILJAIL_TARGET=alice", "MAILJAIL_TARGET_KIND=account", "MAILJAIL_LEVEL=1",
		"MAILJAIL_REASON=101 messages in 1h over limit 100/1h",
		"MAILJAIL_STARTED=2026-01-01T00:00:00Z", "MAILJAIL_EXPIRES=2026-01-02T00:00:00Z",
		"MAILJAIL_NODE=mx1", "MAILJAIL_ID=17",
	};
	size_t n_env = 0;

	cr_assert_not_null(env);
	while (env[n_env])
		n_env++;
	for (size_t w = 0; w < sizeof(want) / sizeof(want[0]); w++) {
		bool found = false;
		for (size_t i = 0; env[i]; i++)
			found |= strcmp(env[i], want[w]) == 0;
		cr_assert(found, "%s", want[w]);
	}
	for (size_t i = 0; env[i]; i++)
		cr_assert_str_neq(env[i], "MAILJAIL_EVENT=spoofed");
	notify_env_free(env);
	notice_free(&n);
}

Test(notify, shell_quoting)
{
	char b[128];

	notify_sh_quote("alice@example.org", b, sizeof(b));
	cr_assert_str_eq(b, "alice@example.org");
	notify_sh_quote("a b", b, sizeof(b));
	cr_assert_str_eq(b, "'a b'");
	notify_sh_quote("it's", b, sizeof(b));
	cr_assert_str_eq(b, "'it'\\''s'");
	notify_sh_quote("$(id)", b, sizeof(b));
	cr_assert_str_eq(b, "'$(id)'");
	notify_sh_quote("", b, sizeof(b));
	cr_assert_str_eq(b, "''");
}

static struct notice
ban_of(const char *jail, const char *ip, int level, int64_t id)
{
	struct notice n;

	memset(&n, 0, sizeof(n));
	n.id = id;
	n.event = strdup("ban");
	n.jail = strdup(jail);
	n.target = strdup(ip);
	n.target_kind = strdup("ip");
	n.reason = strdup("5 auth_failure in 10m (rule sasl-auth-failed)");
	n.node = strdup("mx1");
	n.level = level;
	n.digest = true;
	n.started_at = 1767225600 + id;
	n.expires_at = n.started_at + 3600;
	n.created_at = n.started_at;
	return n;
}

Test(notify, a_digest_sums_up_per_jail_with_top_targets_and_escalations)
{
	struct notice v[4] = {
		ban_of("sasl", "203.0.113.1", 1, 1), ban_of("sasl", "203.0.113.2", 3, 2),
		ban_of("sasl", "203.0.113.3", 2, 3), ban_of("rbl", "198.51.100.9", 1, 4),
	};
	struct notify_msg_opts o = opts();
	size_t len;
	char *mail = notify_mail(v, 4, true, &o, &len), *json;
	json_t *doc;

	cr_assert(strstr(mail, "Subject: [mailjail] digest: 4 bans on mx1\r\n"), "%s", mail);
	cr_assert(strstr(mail, "sasl: 3 bans, 2 escalated (level 2 or more)\r\n"
	    "  top: 203.0.113.2 (level 3), 203.0.113.3 (level 2), 203.0.113.1 (level 1)\r\n"),
	    "%s", mail);
	cr_assert(strstr(mail, "rbl: 1 ban, 0 escalated"), "%s", mail);
	cr_assert(strstr(mail, "ban  rbl  198.51.100.9  level 1  until 2026-01-01T01:00:04Z"),
	    "%s", mail);
	cr_assert(strstr(mail, "Message-ID: <mailjail.1-4.4@mx1>"), "%s", mail);
	free(mail);
	json = notify_json(v, 4, true, &len);
	doc = json_loads(json, 0, NULL);
	cr_assert(doc && json_is_array(doc), "%s", json);
	cr_assert_eq(json_array_size(doc), 4);
	json_decref(doc);
	free(json);
	for (int i = 0; i < 4; i++)
		notice_free(&v[i]);
}

/* script - an executable file in dir */
static void
script(const char *name, const char *body, char *path, size_t len)
{
	tu_write(dir, name, body, path, len);
	cr_assert_eq(chmod(path, 0755), 0);
}

static void
run_job(struct notify_job *j, int64_t now)
{
	for (int i = 0; i < 200 && !notify_job_poll(j, now); i++)
		usleep(50000);
	cr_assert(j->done);
}

Test(notify, a_job_keeps_the_start_of_its_output_and_counts_the_rest)
{
	char path[600], err[256];
	struct notify_job j;
	int64_t now = (int64_t)time(NULL);

	script("loud.sh", "#!/bin/sh\nhead -c 100000 /dev/zero | tr '\\0' x\necho err >&2\n",
	    path, sizeof(path));
	cr_assert_eq(notify_job_exec(&j, path, (char *[]){ NULL }, "", 0, now + 30, err,
	    sizeof(err)), 0, "%s", err);
	run_job(&j, now);
	cr_assert(notify_job_ok(&j));
	cr_assert_eq(j.outlen, NOTIFY_JOB_OUTPUT_MAX);
	cr_assert_eq(j.outlen + j.dropped, 100000 + 4, "stdout and stderr, all read");
	notify_job_free(&j);
}

Test(notify, a_job_past_its_deadline_is_killed)
{
	char path[600], err[256], how[64];
	struct notify_job j;
	int64_t now = (int64_t)time(NULL);

	script("hang.sh", "#!/bin/sh\nsleep 30\n", path, sizeof(path));
	cr_assert_eq(notify_job_exec(&j, path, (char *[]){ NULL }, "", 0, now + 1, err,
	    sizeof(err)), 0);
	cr_assert_not(notify_job_poll(&j, now), "runs");
	run_job(&j, now + 1);
	cr_assert(j.killed);
	cr_assert_not(notify_job_ok(&j));
	notify_job_describe(&j, how, sizeof(how));
	cr_assert_str_eq(how, "killed after the time limit");
	notify_job_free(&j);
}

Test(notify, stdin_carries_the_text_and_the_exit_status_is_kept)
{
	char path[600], err[256], how[64];
	struct notify_job j;
	int64_t now = (int64_t)time(NULL);

	script("cat.sh", "#!/bin/sh\ncat\nexit 4\n", path, sizeof(path));
	cr_assert_eq(notify_job_exec(&j, path, (char *[]){ NULL }, "{\"a\":1}\n", 8, now + 30,
	    err, sizeof(err)), 0);
	run_job(&j, now);
	cr_assert_str_eq(j.out, "{\"a\":1}\n");
	notify_job_describe(&j, how, sizeof(how));
	cr_assert_str_eq(how, "exit 4");
	notify_job_free(&j);
}

/* run_notifier - tick at now until no delivery runs */
static void
run_notifier(struct notifier *nt, struct store *st, int64_t now, uint64_t kick)
{
	notifier_tick(nt, st, now, kick);
	for (int i = 0; i < 200 && notifier_running(nt) > 0; i++) {
		usleep(50000);
		notifier_tick(nt, st, now, kick);
	}
	cr_assert_eq(notifier_running(nt), 0);
}

Test(notify, the_notifier_gives_up_after_a_day_said_and_counted)
{
	char dbp[600], hook[600], err[512], *out;
	struct store *st;
	struct notify_config nc;
	struct notifier *nt;
	struct metrics *m;
	struct stored_notification n;
	struct config cfg;
	int64_t now = (int64_t)time(NULL), id;
	size_t len;
	char *text;

	snprintf(dbp, sizeof(dbp), "%s/mj.db", dir);
	cr_assert_eq(store_open(dbp, true, &st, err, sizeof(err)), 0, "%s", err);
	script("fail.sh", "#!/bin/sh\necho nope\nexit 1\n", hook, sizeof(hook));
	memset(&nc, 0, sizeof(nc));
	nc.command = hook;
	nc.digest = 3600;
	nc.timeout = 10;
	memset(&n, 0, sizeof(n));
	n.event = "hold";
	n.jail = "q";
	n.target = "alice";
	n.target_kind = "account";
	n.reason = "r";
	n.node = "mx1";
	n.level = 1;
	n.started_at = now;
	n.expires_at = now + 3600;
	n.created_at = now;
	cr_assert_eq(store_queue_notification(st, &n, &id), 0);
	cr_assert_eq(metrics_open(&m, "mx1"), 0);
	cr_assert_eq(notifier_open(&nt, &nc, NULL, m), 0);

	run_notifier(nt, st, now, 1);
	out = tu_sh_output("sqlite3 %s \"SELECT attempts || ' ' || (due_at - %lld) || ' ' ||"
	    " (gave_up_at IS NULL) || ' ' || last_error FROM notifications\"", dbp, (long long)now);
	cr_assert_str_eq(out, "1 5 1 command: exit 1: nope\n", "retried in 5 s");
	free(out);

	/* A day on, the next failure is the last. */
	run_notifier(nt, st, now + NOTIFY_GIVE_UP_SECS, 2);
	out = tu_sh_output("sqlite3 %s \"SELECT attempts || ' ' || (gave_up_at - %lld) ||"
	    " ' ' || (sent_at IS NULL) FROM notifications\"", dbp, (long long)now);
	cr_assert_str_eq(out, "2 86400 1\n");
	free(out);
	run_notifier(nt, st, now + NOTIFY_GIVE_UP_SECS + 3600, 3);
	notifier_close(nt, st);

	memset(&cfg, 0, sizeof(cfg));
	cfg.notify = nc;
	cr_assert_eq(metrics_declare(m, &cfg, NULL, NULL), 0);
	text = metrics_render(m, st, &cfg, now, &len);
	cr_assert(strstr(text, "mailjail_notifications_total{channel=\"command\",result=\"failed\"} 2\n"),
	    "%s", text);
	cr_assert(strstr(text, "mailjail_notifications_total{channel=\"command\",result=\"gave_up\"} 1\n"),
	    "%s", text);
	cr_assert(strstr(text, "mailjail_notifications_pending 0\n"), "%s", text);
	free(text);
	metrics_close(m);
	store_close(st);
}

/* config_error - the diag of loading [notify]/[metrics] text, or "" */
static char *
config_error(const char *body)
{
	char path[600];
	struct config cfg;
	struct diag d;
	char *msg;

	tu_write(dir, "c.conf", body, path, sizeof(path));
	diag_init(&d);
	(void)config_load(path, &cfg, &d);
	config_free(&cfg);
	msg = strdup(d.n ? d.msgs[0] : "");
	diag_free(&d);
	return msg;
}

Test(notify, addresses_and_endpoints_are_checked)
{
	static const char *const good[] = {
		"mailto = root@localhost", "mailto = a.b+tag@mail.example.org, ops@example.org",
		"from = mailjail@mx1.example.org", "smtp = [::1]:25", "smtp = mail.example.org:587",
		"digest = 10m", "timeout = 1s",
	};
	static const char *const bad[] = {
		"mailto = root", "mailto = a..b@example.org", "mailto = <a@example.org>",
		"mailto = a@-example.org", "mailto = a@example.org.", "mailto = a b@example.org",
		"mailto = a@exa_mple.org", "mailto =", "from = x", "smtp = 127.0.0.1",
		"smtp = 127.0.0.1:0", "smtp = [::1:25", "digest = 0s", "timeout = 2d",
	};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char body[256], *e;
		snprintf(body, sizeof(body), "[notify]\n%s\n", good[i]);
		e = config_error(body);
		cr_assert_str_eq(e, "", "%s: %s", good[i], e);
		free(e);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char body[256], *e;
		snprintf(body, sizeof(body), "[notify]\n%s\n", bad[i]);
		e = config_error(body);
		cr_assert(strstr(e, "c.conf:2: [notify] ") != NULL, "%s: \"%s\"", bad[i], e);
		free(e);
	}
	{
		char *e = config_error("[metrics]\nlisten = 127.0.0.1:9947\ntextfile = m.prom\n");
		cr_assert_str_eq(e, "");
		free(e);
		e = config_error("[metrics]\nlisten = 0.0.0.0\n");
		cr_assert(strstr(e, "c.conf:2: [metrics] listen: expected IP:PORT") != NULL, "%s", e);
		free(e);
		e = config_error("[metrics]\ntextfile = /nonexistent/dir/mailjail.prom\n");
		cr_assert(strstr(e, "c.conf:2: [metrics] textfile: directory /nonexistent/dir: No "
		    "such file or directory") != NULL, "%s", e);
		free(e);
	}
}
