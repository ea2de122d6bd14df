/*
 * test_explain - "mailjail explain": the events that made a failure ban, a
 * quota hold (client addresses, recipients) and a recidive ban (the bans it
 * counted), evidence gone after the purge, a ban by hand; text and JSON
 * (read back with python3's json module).  Real binary, real SQLite files,
 * and (test_explain_pgsql) a real PostgreSQL.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"

static char dir[256], db[700], bin[512], conf[800];
static time_t base;

static void
setup(void)
{
	char text[2048];

	tu_mkdtemp(dir, sizeof(dir));
	tu_db(dir, "mj.db", db, sizeof(db));   /* SQLite, or PostgreSQL (_pgsql) */
	snprintf(bin, sizeof(bin), "%s/mailjail", tu_builddir());
	/* the shipped rules and jails, and a quota jail counting recipients */
	snprintf(text, sizeof(text), "[mailjail]\nlog = %s/mail.log\ndb = %s\nrules = %s/rules\n"
	    "jails = %s/jails\nuser = root\n", dir, db, tu_srcdir(), dir);
	tu_write(dir, "mailjail.conf", text, conf, sizeof(conf));
	cr_assert_eq(tu_sh("mkdir '%s/jails' && cp '%s'/jails/*.jail '%s/jails/'", dir, tu_srcdir(),
	    dir), 0);
	tu_write(dir, "jails/rcpt-quota.jail", "[rcpt-quota]\nevents = submission\nkey = account\n"
	    "limits = 6/1h, 1000/1d\ncount = recipients\naction = hold\nbantime = 1d\n", text,
	    sizeof(text));
	base = time(NULL) - 5 * 3600;
	base -= base % 60;
}

static void
teardown(void)
{
	tu_rmrf(dir);
}

TestSuite(explain, .init = setup, .fini = teardown);

static FILE *
log_open(const char *name)
{
	char path[700];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	cr_assert_not_null(fp = fopen(path, "w"));
	return fp;
}

static void
failure(FILE *fp, time_t t, const char *ip, const char *user)
{
	char st[32];

	tu_syslog_stamp(t, st, sizeof(st));
	fprintf(fp, "%s mx postfix/smtpd[300]: warning: unknown[%s]: SASL LOGIN authentication "
	    "failed: UGFzc3dvcmQ6, sasl_username=%s\n", st, ip, user);
}

static void
message(FILE *fp, time_t t, const char *user, const char *ip, int n, int nrcpt)
{
	char st[32];

	tu_syslog_stamp(t, st, sizeof(st));
	fprintf(fp, "%s mx postfix/submission/smtpd[400]: 7E%04X: client=c.example.net[%s], "
	    "sasl_method=PLAIN, sasl_username=%s\n", st, n, ip, user);
	fprintf(fp, "%s mx postfix/qmgr[77]: 7E%04X: from=<%s>, size=900, nrcpt=%d (queue active)\n",
	    st, n, user, nrcpt);
}

static void
replay(const char *name)
{
	cr_assert_eq(tu_sh("cd '%s' && '%s' replay --dry-run --quiet -c '%s' %s", dir, bin, conf,
	    name), 0);
}

static char *
explain(const char *args)
{
	return tu_sh_output("'%s' explain -c '%s' %s 2>&1; echo \"exit=$?\"", bin, conf, args);
}

/* json - python3 reads explain --json TARGET and prints expr of it (j) */
static char *
json(const char *target, const char *expr)
{
	char script[4096], path[800];

	snprintf(script, sizeof(script), "import json, sys\nj = json.load(sys.stdin)\nprint(%s)\n",
	    expr);
	tu_write(dir, "q.py", script, path, sizeof(path));
	return tu_sh_output("'%s' explain -c '%s' --json '%s' | python3 '%s'", bin, conf, target,
	    path);
}

Test(explain, a_failure_ban_shows_the_events_it_counted)
{
	FILE *fp = log_open("mail.log");
	char *out, st[32], want[200];

	/* two early failures an hour before: outside the 10m window */
	failure(fp, base, "203.0.113.20", "root");
	failure(fp, base + 60, "203.0.113.20", "root");
	for (int i = 0; i < 5; i++)
		failure(fp, base + 3600 + 30 * i, "203.0.113.20", i % 2 ? "info" : "admin");
	failure(fp, base + 3600 + 5, "198.51.100.3", "admin");   /* someone else */
	fclose(fp);
	replay("mail.log");
	out = explain("203.0.113.20");
	cr_assert(strstr(out, "203.0.113.20: 1 ban or hold") != NULL, "%s", out);
	cr_assert(strstr(out, "ban in jail sasl-bruteforce, level 1: ") != NULL, "%s", out);
	cr_assert(strstr(out, "reason: 5 auth_failure in 10m (rule sasl-auth-failed)") != NULL, "%s", out);
	cr_assert(strstr(out, "the 5 events it counted (within 10m before the ban):") != NULL, "%s", out);
	for (int i = 0; i < 5; i++) {
		struct tm tm;
		time_t t = base + 3600 + 30 * i;
		gmtime_r(&t, &tm);
		strftime(st, sizeof(st), "%Y-%m-%dT%H:%M:%SZ", &tm);
		snprintf(want, sizeof(want), "%s  auth_failure  sasl-auth-failed  %s\n", st,
		    i % 2 ? "info" : "admin");
		cr_assert(strstr(out, want) != NULL, "event %d (%s): %s", i, want, out);
	}
	cr_assert(strstr(out, "root") == NULL, "the failures outside the window are not evidence");
	cr_assert(strstr(out, "exit=0") != NULL, "%s", out);
	free(out);
	out = json("203.0.113.20", "j['bans'][0]['evidence']['status'], "
	    "j['bans'][0]['evidence']['count'], [e['account'] for e in j['bans'][0]['evidence']['events']], "
	    "j['bans'][0]['evidence']['events'][0]['ip'], j['events_kept_seconds']");
	cr_assert_str_eq(out, "complete 5 ['admin', 'info', 'admin', 'info', 'admin'] 203.0.113.20 "
	    "172800\n", "%s", out);
	free(out);
}

Test(explain, a_quota_hold_shows_messages_clients_and_recipients)
{
	FILE *fp = log_open("mail.log");
	char *out;

	/* 2 + 2 + 2 recipients is the limit (6/1h); the fourth message is over */
	message(fp, base, "carol@example.org", "198.51.100.30", 1, 2);
	message(fp, base + 60, "carol@example.org", "198.51.100.30", 2, 2);
	message(fp, base + 120, "carol@example.org", "192.0.2.77", 3, 2);
	message(fp, base + 180, "carol@example.org", "198.51.100.30", 4, 2);
	message(fp, base + 200, "dave@example.org", "198.51.100.30", 5, 1);   /* not carol's */
	fclose(fp);
	replay("mail.log");
	out = explain("carol@example.org");
	cr_assert(strstr(out, "hold in jail rcpt-quota, level 1: ") != NULL, "%s", out);
	cr_assert(strstr(out, "reason: 8 recipients in 1h over limit 6/1h") != NULL, "%s", out);
	cr_assert(strstr(out, "the 4 messages it counted (within 1h before the hold),\n"
	    "  from 2 client addresses, 8 recipients:") != NULL, "%s", out);
	cr_assert(strstr(out, "    198.51.100.30  3         6\n") != NULL, "busiest first: %s", out);
	cr_assert(strstr(out, "    192.0.2.77     1         2\n") != NULL, "%s", out);
	cr_assert(strstr(out, "submission  sasl-submission  192.0.2.77     7E0003  2           "
	    "carol@example.org") != NULL, "a message joined to its queued line: %s", out);
	cr_assert(strstr(out, "dave") == NULL, "%s", out);
	free(out);
	out = json("carol@example.org", "j['bans'][0]['evidence']['clients'], "
	    "j['bans'][0]['evidence']['recipients'], "
	    "[e['qid'] + '/' + str(e['nrcpt']) for e in j['bans'][0]['evidence']['events']]");
	cr_assert_str_eq(out, "[{'ip': '198.51.100.30', 'messages': 3, 'recipients': 6}, "
	    "{'ip': '192.0.2.77', 'messages': 1, 'recipients': 2}] 8 "
	    "['7E0001/2', '7E0002/2', '7E0003/2', '7E0004/2']\n", "%s", out);
	free(out);
}

Test(explain, a_recidive_ban_shows_the_bans_it_counted)
{
	FILE *fp = log_open("mail.log");
	time_t t0 = time(NULL) - 10 * 3600;
	char *out;

	/* banned three times within a day by sasl-bruteforce (1h, 2h, 4h,
	 * each burst after the last ban ended): recidive */
	for (int k = 0; k < 3; k++)
		for (int i = 0; i < 5; i++)
			failure(fp, t0 + k * 3 * 3600 + 20 * i, "203.0.113.30", "admin");
	fclose(fp);
	replay("mail.log");
	out = explain("203.0.113.30");
	cr_assert(strstr(out, "203.0.113.30: 4 bans or holds") != NULL, "%s", out);
	cr_assert(strstr(out, "ban in jail recidive, level 1: ") != NULL, "%s", out);
	cr_assert(strstr(out, "reason: 3 bans in 1d") != NULL, "%s", out);
	cr_assert(strstr(out, "the 3 bans it counted (other jails', within 1d):") != NULL, "%s", out);
	cr_assert(strstr(out, "sasl-bruteforce  3      ") != NULL, "%s", out);
	cr_assert(strstr(out, "sasl-bruteforce  1      ") != NULL, "%s", out);
	free(out);
	out = json("203.0.113.30", "[(b['jail'], b['evidence']['kind'], b['evidence']['status'], "
	    "len(b['evidence'].get('bans', b['evidence'].get('events')))) for b in j['bans']]");
	cr_assert_str_eq(out, "[('recidive', 'bans', 'complete', 3), "
	    "('sasl-bruteforce', 'events', 'complete', 5), ('sasl-bruteforce', 'events', 'complete', 5), "
	    "('sasl-bruteforce', 'events', 'complete', 5)]\n", "%s", out);
	free(out);
}

Test(explain, evidence_older_than_the_purge_is_said_to_be_gone)
{
	FILE *fp = log_open("old.log");
	char *out;
	time_t old = time(NULL) - 3 * 86400;

	for (int i = 0; i < 5; i++)
		failure(fp, old + 20 * i, "203.0.113.40", "admin");
	fclose(fp);
	replay("old.log");
	/* what the daemon's hourly purge does: events older than 2 days go */
	free(tu_sql(db, "DELETE FROM events WHERE time < %lld",
	    (long long)time(NULL) - 2 * 86400));
	{
		char *left = tu_sql(db, "SELECT count(*) FROM events WHERE time < %lld",
		    (long long)time(NULL) - 2 * 86400);
		cr_assert_str_eq(left, "0\n", "purged");
		free(left);
	}
	out = explain("203.0.113.40");
	cr_assert(strstr(out, "reason: 5 auth_failure in 10m (rule sasl-auth-failed)") != NULL,
	    "the reason stays: %s", out);
	cr_assert(strstr(out, "evidence gone: its events (from ") != NULL, "%s", out);
	cr_assert(strstr(out, "are purged; events are kept 2d, since ") != NULL, "%s", out);
	free(out);
	out = json("203.0.113.40", "j['bans'][0]['evidence']['status'], "
	    "j['bans'][0]['evidence']['count']");
	cr_assert_str_eq(out, "gone 0\n", "%s", out);
	free(out);
}

Test(explain, a_ban_by_hand_and_a_target_never_banned)
{
	char *out;

	cr_assert_eq(tu_sh("'%s' ban -c '%s' --dry-run 192.0.2.9 >/dev/null", bin, conf), 0);
	out = explain("192.0.2.9");
	cr_assert(strstr(out, "ban in jail manual, level 1") != NULL, "%s", out);
	cr_assert(strstr(out, "made by hand (mailjail ban or hold): no events made it") != NULL,
	    "%s", out);
	free(out);
	out = explain("192.0.2.10");
	cr_assert_str_eq(out, "192.0.2.10: no bans or holds\nexit=0\n", "%s", out);
	free(out);
	out = json("192.0.2.10", "j['bans']");
	cr_assert_str_eq(out, "[]\n", "%s", out);
	free(out);
	out = explain("");
	cr_assert(strstr(out, "usage: mailjail explain TARGET") != NULL, "%s", out);
	cr_assert(strstr(out, "exit=2") != NULL, "%s", out);
	free(out);
}

/* ---- the detections of issue 13 --------------------------------------------- */

/* gmail_refusal - Gmail bounces qid's message to rcpt as spam (remote_reject) */
static void
gmail_refusal(FILE *fp, time_t t, const char *qid, const char *rcpt)
{
	char st[32];

	tu_syslog_stamp(t, st, sizeof(st));
	fprintf(fp, "%s mx postfix/smtp[500]: %s: to=<%s>, relay=gmail-smtp-in.l.google.com"
	    "[142.250.4.27]:25, delay=1.2, delays=0.1/0/0.4/0.7, dsn=5.7.1, status=bounced (host "
	    "gmail-smtp-in.l.google.com[142.250.4.27] said: 550-5.7.1 [192.0.2.25      12] Our "
	    "system has detected that this message is 550-5.7.1 likely unsolicited mail. To reduce "
	    "the amount of spam sent to Gmail, 550-5.7.1 this message has been blocked. Please "
	    "visit 550-5.7.1  https://support.google.com/mail/?p=UnsolicitedMessageError 550 5.7.1 "
	    " for more information. m3si4.0 - gsmtp (in reply to end of DATA command))\n", st, qid,
	    rcpt);
}

/*
 * An outbound-reputation hold shows the refusals of the account's
 * messages, joined by queue id as the jail joins them: a retry of a
 * message already refused for that domain is not evidence again, the
 * message that went through a content filter is followed, another
 * account's refusal is not shown.
 */
Test(explain, an_outbound_reputation_hold_shows_the_refusals_it_counted)
{
	FILE *fp = log_open("mail.log");
	char st[32], *out;

	for (int i = 1; i <= 5; i++)
		message(fp, base + i, "spammer@example.org", "198.51.100.70", i, 1);
	message(fp, base + 6, "honest@example.org", "198.51.100.71", 6, 1);
	gmail_refusal(fp, base + 60, "7E0001", "r1@gmail.example");
	gmail_refusal(fp, base + 61, "7E0001", "r1@gmail.example");   /* again: a retry */
	gmail_refusal(fp, base + 62, "7E0002", "r2@gmail.example");
	gmail_refusal(fp, base + 63, "7E0003", "r3@gmail.example");
	gmail_refusal(fp, base + 64, "7E0006", "h@gmail.example");    /* honest's */
	gmail_refusal(fp, base + 65, "7E0004", "r4@gmail.example");
	/* the fifth through amavis: 7E0005 goes on as 7F0005 */
	tu_syslog_stamp(base + 66, st, sizeof(st));
	fprintf(fp, "%s mx postfix/smtp[500]: 7E0005: to=<r5@gmail.example>, relay=127.0.0.1"
	    "[127.0.0.1]:10024, delay=0.6, delays=0.1/0/0/0.5, dsn=2.0.0, status=sent (250 2.0.0 "
	    "from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as 7F0005)\n", st);
	gmail_refusal(fp, base + 67, "7F0005", "r5@gmail.example");
	fclose(fp);
	replay("mail.log");
	out = explain("spammer@example.org");
	cr_assert(strstr(out, "hold in jail outbound-reputation, level 1: ") != NULL, "%s", out);
	cr_assert(strstr(out, "reason: 5 remote_reject in 1h (rule remote-reject)") != NULL,
	    "%s", out);
	cr_assert(strstr(out, "the 5 refusals it counted (within 1h before the hold):\n"
	    "  (each message counts once per recipient domain, at its first refusal there)\n")
	    != NULL, "%s", out);
	cr_assert(strstr(out, "remote_reject  remote-reject  7E0001  r1@gmail.example\n") != NULL,
	    "%s", out);
	cr_assert(strstr(out, "remote_reject  remote-reject  7F0005  r5@gmail.example\n") != NULL,
	    "the message followed through the filter: %s", out);
	cr_assert(strstr(out, "h@gmail.example") == NULL, "another account's refusal: %s", out);
	free(out);
	out = json("spammer@example.org", "j['bans'][0]['evidence']['status'], "
	    "[e['qid'] + ' ' + e['rcpt'] for e in j['bans'][0]['evidence']['events']]");
	cr_assert_str_eq(out, "complete ['7E0001 r1@gmail.example', '7E0002 r2@gmail.example', "
	    "'7E0003 r3@gmail.example', '7E0004 r4@gmail.example', '7F0005 r5@gmail.example']\n",
	    "one row per message and domain, the retry not again: %s", out);
	free(out);
}

/*
 * sasl-targeted-account: the account's watch shows the failures against it
 * and the addresses they came from; an address it banned shows its
 * failures and the account they tried.
 */
Test(explain, a_targeted_account_shows_the_addresses_and_each_address_its_failures)
{
	FILE *fp = log_open("mail.log");
	char ip[32], *out;

	for (int i = 1; i <= 20; i++) {
		snprintf(ip, sizeof(ip), "203.0.113.%d", 100 + i);
		failure(fp, base + 60 * i, ip, "ceo@example.org");
	}
	fclose(fp);
	replay("mail.log");
	out = explain("ceo@example.org");
	cr_assert(strstr(out, "watch in jail sasl-targeted-account, level 1: ") != NULL, "%s", out);
	cr_assert(strstr(out, "the 20 failures it counted (within 1h before the watch),\n"
	    "  from 20 addresses, each banned in this jail (mailjail explain ADDRESS):\n") != NULL,
	    "%s", out);
	cr_assert(strstr(out, "auth_failure  sasl-auth-failed  203.0.113.120\n") != NULL, "%s", out);
	free(out);
	out = explain("203.0.113.107");
	cr_assert(strstr(out, "ban in jail sasl-targeted-account, level 1: ") != NULL, "%s", out);
	cr_assert(strstr(out, "reason: auth_failure against attacked account ceo@example.org "
	    "(20 in 1h)") != NULL, "%s", out);
	cr_assert(strstr(out, "the 1 event it counted (within 1h before the ban):") != NULL,
	    "%s", out);
	cr_assert(strstr(out, "auth_failure  sasl-auth-failed  ceo@example.org\n") != NULL, "%s", out);
	cr_assert(strstr(out, "fewer than the jail needs") == NULL, "one failure is all: %s", out);
	free(out);
	out = json("203.0.113.107", "j['bans'][0]['evidence']['status'], "
	    "[e['account'] for e in j['bans'][0]['evidence']['events']]");
	cr_assert_str_eq(out, "complete ['ceo@example.org']\n", "%s", out);
	free(out);
}
