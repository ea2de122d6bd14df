/*
 * test_replay - the real binary on the shipped sample log and config, with
 * the store under test (real SQLite files, or PostgreSQL with
 * MAILJAIL_TEST_DB=pgsql) read back through the sqlite3 CLI or psql (what
 * an admin sees).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"

static char dir[256], db[700], bin[512], conf[512], sample[512];

static void
setup(void)
{
	tu_mkdtemp(dir, sizeof(dir));
	tu_db(dir, "mj.db", db, sizeof(db));
	snprintf(bin, sizeof(bin), "%s/mailjail", tu_builddir());
	snprintf(conf, sizeof(conf), "%s/conf/mailjail.conf", tu_srcdir());
	snprintf(sample, sizeof(sample), "%s/tests/data/sample-mail.log", tu_srcdir());
}

static void
teardown(void)
{
	tu_rmrf(dir);
}

TestSuite(replay, .init = setup, .fini = teardown);
TestSuite(check_config, .init = setup, .fini = teardown);
TestSuite(test_rules, .init = setup, .fini = teardown);

static char *
query(const char *sql)
{
	return tu_sql(db, "%s", sql);
}

Test(replay, sample_bans_the_attackers_and_holds_the_spammer)
{
	char *out;

	cr_assert_eq(tu_sh("'%s' replay --dry-run --quiet -c '%s' --db '%s' '%s'", bin, conf,
	    db, sample), 0);
	out = query("SELECT count(*) FROM ban_history WHERE target = '203.0.113.45' "
	    "AND jail = 'sasl-bruteforce' AND level = 1");
	cr_assert_str_eq(out, "1\n", "IPv4 brute-forcer banned once");
	free(out);
	out = query("SELECT count(*) FROM ban_history WHERE target LIKE '2001:db8:a:%'");
	cr_assert_neq(strcmp(out, "0\n"), 0, "IPv6 brute-forcer banned");
	free(out);
	out = query("SELECT count(*) FROM ban_history WHERE target = '198.51.100.77'");
	cr_assert_neq(strcmp(out, "0\n"), 0, "the true client of the crafted lines");
	free(out);
	out = query("SELECT count(*) FROM ban_history WHERE target IN "
	    "('192.0.2.66', '192.0.2.99', '192.0.2.200', '198.51.100.20')");
	cr_assert_str_eq(out, "0\n", "spoofed, slow and decoy addresses are never banned");
	free(out);
	out = query("SELECT target_kind, jail FROM ban_history WHERE target = "
	    "'newsletter@example.org'");
	cr_assert(strstr(out, "account|outbound-quota\n") != NULL, "held: %s", out);
	free(out);
	out = query("SELECT count(*) FROM ban_history WHERE target IN "
	    "('alice@example.org', 'bob@example.org', 'carol@example.org')");
	cr_assert_str_eq(out, "0\n", "accounts under quota are left alone");
	free(out);
	out = query("SELECT count(*) FROM ban_history WHERE target = '192.0.2.150' AND jail = 'rbl'");
	cr_assert_str_eq(out, "1\n", "one RBL hit bans");
	free(out);
}

Test(replay, second_replay_counts_nothing_twice)
{
	char *a, *b;
	const char *sql = "SELECT (SELECT count(*) FROM events) || ' ' || "
	    "coalesce((SELECT sum(n) FROM event_counts), 0) || ' ' || (SELECT count(*) FROM bans)";

	cr_assert_eq(tu_sh("'%s' replay --dry-run --quiet -c '%s' --db '%s' '%s'", bin, conf,
	    db, sample), 0);
	a = query(sql);
	cr_assert_eq(tu_sh("'%s' replay --dry-run --quiet -c '%s' --db '%s' '%s'", bin, conf,
	    db, sample), 0);
	b = query(sql);
	cr_assert_str_eq(a, b);
	cr_assert_neq(strcmp(a, "0 0 0\n"), 0);
	free(a);
	free(b);
}

Test(replay, growing_file_resumes_where_it_stopped)
{
	char log[600], db2[700];
	char *a, *b;
	const char *sql = "SELECT (SELECT count(*) FROM events) || ' ' || coalesce((SELECT sum(n)"
	    " FROM event_counts), 0) || ' ' || (SELECT group_concat(jail || '/' || target || '/' || level || '/' || started_at, ',') "
	    "FROM (SELECT * FROM bans ORDER BY id))";

	snprintf(log, sizeof(log), "%s/mail.log", dir);
	tu_db(dir, "whole.db", db2, sizeof(db2));
	/* The same log in three pieces, the last piece appended later. */
	cr_assert_eq(tu_sh("head -n 400 '%s' > '%s'", sample, log), 0);
	cr_assert_eq(tu_sh("'%s' replay --dry-run --quiet -c '%s' --db '%s' '%s'", bin, conf,
	    db, log), 0);
	cr_assert_eq(tu_sh("sed -n '401,800p' '%s' >> '%s'", sample, log), 0);
	cr_assert_eq(tu_sh("'%s' replay --dry-run --quiet -c '%s' --db '%s' '%s'", bin, conf,
	    db, log), 0);
	cr_assert_eq(tu_sh("sed -n '801,$p' '%s' >> '%s'", sample, log), 0);
	cr_assert_eq(tu_sh("'%s' replay --dry-run --quiet -c '%s' --db '%s' '%s'", bin, conf,
	    db, log), 0);
	a = query(sql);
	snprintf(db, sizeof(db), "%s", db2);
	cr_assert_eq(tu_sh("'%s' replay --dry-run --quiet -c '%s' --db '%s' '%s'", bin, conf,
	    db, sample), 0);
	b = query(sql);
	cr_assert_str_eq(a, b, "in pieces:\n%s\nwhole:\n%s", a, b);
	free(a);
	free(b);
}

Test(replay, summary_names_rules_and_jails)
{
	char *out = tu_sh_output("'%s' replay --dry-run -c '%s' --db '%s' '%s'", bin, conf, db,
	    sample);

	cr_assert(strstr(out, "1127 lines") != NULL, "%s", out);
	cr_assert(strstr(out, "auth_failure") != NULL, "%s", out);
	cr_assert(strstr(out, "jail sasl-bruteforce") != NULL, "%s", out);
	free(out);
}

Test(replay, missing_log_is_a_runtime_error)
{
	cr_assert_eq(tu_sh("'%s' replay --dry-run --quiet -c '%s' --db '%s' /nonexistent.log "
	    "2>/dev/null", bin, conf, db), 1);
}

Test(replay, usage_errors_exit_2)
{
	cr_assert_eq(tu_sh("'%s' replay 2>/dev/null", bin), 2);
	cr_assert_eq(tu_sh("'%s' frobnicate 2>/dev/null", bin), 2);
	cr_assert_eq(tu_sh("'%s' --help >/dev/null", bin), 0);
}

/*
 * The shipped config parses clean.  Whether it can run here depends on the
 * machine (user mailjail and /var/lib/mailjail exist once installed), and
 * check-config says so: then its only findings are about the run user.
 */
Test(check_config, shipped_config_is_clean)
{
	char *out = tu_sh_output("'%s' check-config -c '%s' 2>&1; echo \"exit=$?\"", bin, conf);
	char *line, *save = NULL;
	bool ok = strstr(out, ": OK\n") != NULL && strstr(out, "exit=0") != NULL;

	if (!ok) {
		cr_assert(strstr(out, "exit=2") != NULL, "%s", out);
		for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
			cr_assert(strncmp(line, "exit=", 5) == 0 ||
			    strstr(line, "user mailjail cannot") != NULL ||
			    strstr(line, "user \"mailjail\": no such user") != NULL,
			    "only the run user's findings, no parse error: %s", line);
	}
	free(out);
}

Test(check_config, errors_are_file_line_message_and_exit_2)
{
	char cfg[600], rules[600], jails[600], want[700], *out;

	tu_write(dir, "mailjail.conf", "[mailjail]\nrules = r.rules\njails = j.jail\n",
	    cfg, sizeof(cfg));
	tu_write(dir, "r.rules", "[r]\nprogram = postfix/smtpd\nevent = auth_failure\n"
	    "pattern = ^warning: (?<ip>[0-9.]+\n", rules, sizeof(rules));
	tu_write(dir, "j.jail", "[j]\nevents = auth_failure, no_such_event\nkey = ip\n"
	    "maxretry = 5\nfindtime = 10q\naction = nft\n", jails, sizeof(jails));
	out = tu_sh_output("'%s' check-config -c '%s' 2>&1; echo \"exit=$?\"", bin, cfg);
	snprintf(want, sizeof(want), "%s:4: ", rules);
	cr_assert(strstr(out, want) != NULL, "bad regex at line 4: %s", out);
	cr_assert(strstr(out, "exit=2") != NULL, "%s", out);
	free(out);

	/* With the regex fixed, the jail's problems are reported. */
	tu_write(dir, "r.rules", "[r]\nprogram = postfix/smtpd\nevent = auth_failure\n"
	    "pattern = ^warning: (?<ip>[0-9.]+)\n", rules, sizeof(rules));
	out = tu_sh_output("'%s' check-config -c '%s' 2>&1; echo \"exit=$?\"", bin, cfg);
	snprintf(want, sizeof(want), "%s:5: ", jails);
	cr_assert(strstr(out, want) != NULL, "bad duration at line 5: %s", out);
	cr_assert(strstr(out, "exit=2") != NULL, "%s", out);
	free(out);

	/* With the duration fixed, the event no rule produces. */
	tu_write(dir, "j.jail", "[j]\nevents = auth_failure, no_such_event\nkey = ip\n"
	    "maxretry = 5\nfindtime = 10m\naction = nft\n", jails, sizeof(jails));
	out = tu_sh_output("'%s' check-config -c '%s' 2>&1; echo \"exit=$?\"", bin, cfg);
	snprintf(want, sizeof(want), "%s:2: ", jails);
	cr_assert(strstr(out, want) != NULL, "at the events line: %s", out);
	cr_assert(strstr(out, "no_such_event") != NULL, "unknown event named: %s", out);
	cr_assert(strstr(out, "exit=2") != NULL, "%s", out);
	free(out);
}

/* The shipped rules with jails that make no sense: defer on an address,
 * an account key for events no rule gives an account.  Each refused with
 * file:line, exit 2. */
Test(check_config, nonsense_keys_and_actions_are_refused)
{
	char cfg[700], jails[600], want[700], *out;

	snprintf(cfg, sizeof(cfg), "%s/mailjail.conf", dir);
	tu_sh("printf '[mailjail]\nrules = %s/rules\njails = %s/j.jail\n' > '%s'", tu_srcdir(),
	    dir, cfg);
	tu_write(dir, "j.jail", "# defer answers for accounts\n[d]\nevents = auth_failure\n"
	    "key = ip\nmaxretry = 5\naction = defer\n", jails, sizeof(jails));
	out = tu_sh_output("'%s' check-config -c '%s' 2>&1; echo \"exit=$?\"", bin, cfg);
	snprintf(want, sizeof(want), "%s:6: jail d: action defer needs an account key", jails);
	cr_assert(strstr(out, want) != NULL, "%s", out);
	cr_assert(strstr(out, "exit=2") != NULL, "%s", out);
	free(out);
	tu_write(dir, "j.jail", "[a]\nevents = relay_denied, auth_failure\nkey = account\n"
	    "maxretry = 5\naction = hold\n[b]\nevents = remote_reject\nkey = sender\n"
	    "maxretry = 5\naction = defer\n", jails, sizeof(jails));
	out = tu_sh_output("'%s' check-config -c '%s' 2>&1; echo \"exit=$?\"", bin, cfg);
	snprintf(want, sizeof(want), "%s:3: jail a: key account, but no rule gives event "
	    "\"relay_denied\" an account (user)", jails);
	cr_assert(strstr(out, want) != NULL, "%s", out);
	cr_assert(strstr(out, "auth_failure\" an account") == NULL, "auth_failure has one: %s", out);
	snprintf(want, sizeof(want), "%s:8: jail b: key sender, but no rule gives event "
	    "\"remote_reject\" a sender", jails);
	cr_assert(strstr(out, want) != NULL, "%s", out);
	cr_assert(strstr(out, "exit=2") != NULL, "%s", out);
	free(out);
}

Test(test_rules, counts_per_rule_with_samples)
{
	char rules[600];
	char *out;

	snprintf(rules, sizeof(rules), "%s/rules", tu_srcdir());
	out = tu_sh_output("'%s' test-rules --rules '%s' '%s'", bin, rules, sample);
	cr_assert(strstr(out, "1127 lines") != NULL, "%s", out);
	cr_assert(strstr(out, "ip=203.0.113.45") != NULL, "sample capture shown: %s", out);
	cr_assert(strstr(out, "ip=192.0.2.66") == NULL, "never the spoofed address: %s", out);
	free(out);
}

/* "release --requeue" finds held mail by the queue ids of the account's
 * submissions: they are kept even when no jail counts submissions. */
Test(replay, submissions_kept_for_release_without_a_quota_jail)
{
	char cfg[800], text[2048], *out;

	snprintf(text, sizeof(text), "[mailjail]\nlog = %s\ndb = %s\nrules = %s/rules\n"
	    "jails = %s/jails/sasl-bruteforce.jail\nuser = root\n", sample, db,
	    tu_srcdir(), tu_srcdir());
	tu_write(dir, "only-sasl.conf", text, cfg, sizeof(cfg));
	cr_assert_eq(tu_sh("'%s' replay --dry-run --quiet -c '%s' '%s'", bin, cfg, sample), 0);
	out = query("SELECT count(*) FROM events WHERE event = 'submission' "
	    "AND account = 'newsletter@example.org' AND qid IS NOT NULL");
	cr_assert_str_eq(out, "120\n", "every submission of the account is a row");
	free(out);
	out = query("SELECT count(*) FROM events WHERE event = 'postscreen_pregreet' "
	    "OR event = 'auth_disconnect'");
	cr_assert_str_eq(out, "0\n", "kinds nobody needs are only counted");
	free(out);
}

/*
 * tests/data/detect-mail.log (lines of the shapes public threads quote,
 * written for this project): outbound reputation, a distributed brute
 * force on one account, and inbound shapes, through the real binary with
 * the shipped rules and jails:
 *   spammer@  5 messages refused (4 bounced as spam by Gmail, each after a
 *             session line of another MX; one via amavis "queued as",
 *             rate-limited): held by outbound-reputation
 *   legit@    one message deferred 8 times: counted once, not held
 *   a bounce  Postfix's own (from=<>) refused 6 times: charged to no one
 *   30 users  each refused by a Spamhaus listing of the server, 6 rounds in
 *             the hour: none held, an alarm
 *   ceo@      20 addresses fail once each (sasl_username=), then one more:
 *             every address banned, the account watched; cfo's failures
 *             without a user name count for no account
 *   inbound   a domain-list hit is no rbl ban; postscreen's own reject is
 */
static const char *const DETECT_SQL =
    "SELECT jail || ' ' || target || ' ' || target_kind || ' ' || level FROM ban_history"
    " ORDER BY jail, target";

Test(replay, outbound_reputation_and_targeted_account)
{
	char log[600], *out;

	snprintf(log, sizeof(log), "%s/tests/data/detect-mail.log", tu_srcdir());
	out = tu_sh_output("'%s' replay --dry-run --quiet -c '%s' --db '%s' '%s' 2>&1", bin, conf,
	    db, log);
	cr_assert(strstr(out, "alarm jail=outbound-reputation event=remote_listed: ") != NULL,
	    "the listed server is said: %s", out);
	cr_assert(strstr(out, "from 5 accounts in 1h: the server's own address or domain looks "
	    "listed; none is held for them") != NULL, "%s", out);
	free(out);
	out = query("SELECT target || ' ' || reason FROM ban_history WHERE jail = "
	    "'outbound-reputation'");
	cr_assert_str_eq(out, "spammer@example.org 5 remote_listed in 1h (rule remote-listed)\n",
	    "only the spammer is held (its fifth refusal came through amavis)");
	free(out);
	out = query("SELECT count(*) FROM events WHERE qid = '7E000002'");
	cr_assert_str_eq(out, "0\n", "the bounce's refusals are no one's: not even kept");
	free(out);
	out = query("SELECT count(*) FROM events WHERE event = 'remote_reject' AND qid IN "
	    "(SELECT qid FROM events WHERE event = 'submission' AND account = "
	    "'spammer@example.org')");
	cr_assert_str_eq(out, "8\n", "session and delivery lines kept for the restart");
	free(out);
	/* the targeted account: 21 addresses, each its own ban naming ceo@ */
	out = query("SELECT count(*), count(DISTINCT target), min(level), max(level) FROM "
	    "ban_history WHERE jail = 'sasl-targeted-account' AND target_kind = 'ip' AND reason = "
	    "'auth_failure against attacked account ceo@example.org (20 in 1h)'");
	cr_assert_str_eq(out, "21|21|1|1\n", "%s", out);
	free(out);
	out = query("SELECT target || ' ' || target_kind || ' ' || reason FROM ban_history WHERE "
	    "jail = 'sasl-targeted-account' AND target_kind = 'account'");
	cr_assert_str_eq(out, "ceo@example.org account 20 auth_failure in 1h from 20 addresses "
	    "(rule sasl-auth-failed): each is banned while this lasts\n");
	free(out);
	out = query("SELECT count(*) FROM bans WHERE target = '2001:db8:7a::1' AND jail = "
	    "'sasl-targeted-account'");
	cr_assert_str_eq(out, "1\n", "an address failing during the watch is banned at once");
	free(out);
	out = query("SELECT count(*) FROM bans WHERE target LIKE '203.0.113.1__' AND "
	    "CAST(substr(target, 12) AS INTEGER) BETWEEN 150 AND 174");
	cr_assert_str_eq(out, "0\n", "failures without a user name ban no one here");
	free(out);
	out = query("SELECT jail || ' ' || target FROM bans WHERE target IN ('203.0.113.77', "
	    "'203.0.113.78')");
	cr_assert_str_eq(out, "rbl 203.0.113.78\n", "postscreen's reject bans; a dbl hit does not");
	free(out);
	out = query("SELECT count(*) FROM ban_history WHERE target LIKE 'user%' OR target = "
	    "'legit@example.org'");
	cr_assert_str_eq(out, "0\n");
	free(out);
}

/* The join rides on the stored events: the log in two pieces, a restart
 * between them (cut amid the spammer's refusals, the listed server and
 * the attack on ceo@), decides exactly what the whole log does. */
Test(replay, detect_log_in_two_pieces_decides_the_same)
{
	char log[600], whole[600], *a, *b;
	static const int cuts[] = { 30, 140, 700 };

	snprintf(whole, sizeof(whole), "%s/tests/data/detect-mail.log", tu_srcdir());
	cr_assert_eq(tu_sh("'%s' replay --dry-run --quiet -c '%s' --db '%s' '%s' 2>/dev/null", bin,
	    conf, db, whole), 0);
	a = query(DETECT_SQL);
	cr_assert(strstr(a, "outbound-reputation spammer@example.org account 1\n") != NULL, "%s", a);
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		snprintf(db, sizeof(db), "%s/cut%zu.db", dir, i);
		snprintf(log, sizeof(log), "%s/mail%zu.log", dir, i);
		cr_assert_eq(tu_sh("head -n %d '%s' > '%s'", cuts[i], whole, log), 0);
		cr_assert_eq(tu_sh("'%s' replay --dry-run --quiet -c '%s' --db '%s' '%s' "
		    "2>/dev/null", bin, conf, db, log), 0);
		cr_assert_eq(tu_sh("tail -n +%d '%s' >> '%s'", cuts[i] + 1, whole, log), 0);
		cr_assert_eq(tu_sh("'%s' replay --dry-run --quiet -c '%s' --db '%s' '%s' "
		    "2>/dev/null", bin, conf, db, log), 0);
		b = query(DETECT_SQL);
		cr_assert_str_eq(a, b, "cut at line %d:\n%s\nwhole:\n%s", cuts[i], b, a);
		free(b);
	}
	free(a);
}

/* ---- rotated and compressed logs (issue 15) ---------------------------- */

/* failures - n SASL failures of ip from t on, 20 s apart */
static void
failures(FILE *fp, time_t t, const char *ip, int n)
{
	char st[32];

	for (int i = 0; i < n; i++) {
		tu_syslog_stamp(t + 20 * i, st, sizeof(st));
		fprintf(fp, "%s mx postfix/submission/smtpd[%d]: warning: unknown[%s]: SASL LOGIN "
		    "authentication failed: UGFzc3dvcmQ6, sasl_username=admin\n", st, 4000 + i, ip);
	}
}

/* submissions - n messages of user from ip from t on, a minute apart */
static void
submissions(FILE *fp, time_t t, const char *user, const char *ip, int n)
{
	char st[32];

	for (int i = 0; i < n; i++) {
		tu_syslog_stamp(t + 60 * i, st, sizeof(st));
		fprintf(fp, "%s mx postfix/submission/smtpd[5%03d]: 4F%05X: client=c.example.net[%s], "
		    "sasl_method=PLAIN, sasl_username=%s\n", st, i, i, ip, user);
		fprintf(fp, "%s mx postfix/qmgr[77]: 4F%05X: from=<%s>, size=900, nrcpt=2 "
		    "(queue active)\n", st, i, user);
	}
}

/*
 * rotated_set - four days' worth of a rotated log in dir: mail.log.3, .2,
 * .1 and mail.log (each plain; the caller compresses), and all of it in
 * whole.log.  203.0.113.7 is banned in each of the three older files, so
 * in time order its bans escalate (levels 1, 2, 3) and recidive bans it;
 * read newest first they would not (a later ban makes the earlier
 * failures count for nothing).
 */
static void
rotated_set(void)
{
	static const char *const names[] = { "mail.log.3", "mail.log.2", "mail.log.1", "mail.log" };
	time_t base = time(NULL) - 3 * 86400;
	char path[700];

	base -= base % 3600;
	for (int k = 0; k < 4; k++) {
		FILE *fp;
		snprintf(path, sizeof(path), "%s/%s", dir, names[k]);
		cr_assert_not_null(fp = fopen(path, "w"));
		/* one file a few hours of the first day, the last a day later */
		time_t t = base + (k < 3 ? 3 * 3600 * k : 86400);
		submissions(fp, t, "alice@example.org", "198.51.100.20", 3);
		failures(fp, t + 600, "203.0.113.7", 5);
		if (k == 0 || k == 3)
			failures(fp, t + 1200, "198.51.100.8", 5);
		fclose(fp);
	}
	cr_assert_eq(tu_sh("cd '%s' && cat mail.log.3 mail.log.2 mail.log.1 mail.log > whole.log",
	    dir), 0);
}

static const char ban_list_sql[] =
    "SELECT jail, target, level, started_at, expires_at FROM bans ORDER BY started_at, jail, target";

/* replay_into - replay the given files into dbfile; its ban list */
static char *
replay_into(const char *dbfile, const char *files)
{
	char path[700];

	snprintf(path, sizeof(path), "%s/%s", dir, dbfile);
	cr_assert_eq(tu_sh("cd '%s' && '%s' replay --dry-run --quiet -c '%s' --db '%s' %s", dir, bin,
	    conf, path, files), 0, "replay %s", files);
	return tu_sh_output("sqlite3 '%s' '%s'", path, ban_list_sql);
}

Test(replay, gzip_rotated_set_in_any_order_bans_as_one_file)
{
	char *whole, *set, *wrong;

	rotated_set();
	whole = replay_into("whole.db", "whole.log");
	cr_assert(strstr(whole, "recidive|203.0.113.7|1|") != NULL, "the set escalates: %s", whole);
	cr_assert(strstr(whole, "sasl-bruteforce|203.0.113.7|3|") != NULL, "%s", whole);
	cr_assert(strstr(whole, "sasl-bruteforce|198.51.100.8|2|") != NULL, "%s", whole);
	/* logrotate's names: .2 and .3 compressed, .1 not yet (delaycompress) */
	cr_assert_eq(tu_sh("cd '%s' && gzip mail.log.2 mail.log.3", dir), 0);
	set = replay_into("set.db", "mail.log mail.log.2.gz mail.log.1 mail.log.3.gz");
	cr_assert_str_eq(set, whole, "rotated set:\n%s\none file:\n%s", set, whole);
	/* The test can fail: newest first, one replay per file, escalates less. */
	free(replay_into("wrong.db", "mail.log"));
	free(replay_into("wrong.db", "mail.log.1"));
	free(replay_into("wrong.db", "mail.log.2.gz"));
	wrong = replay_into("wrong.db", "mail.log.3.gz");
	cr_assert_str_neq(wrong, whole, "the order matters for this data");
	free(whole);
	free(set);
	free(wrong);
}

Test(replay, xz_and_bzip2_read_like_gzip_and_a_second_replay_reads_nothing)
{
	char *whole, *set, *out;

	rotated_set();
	whole = replay_into("whole.db", "whole.log");
	cr_assert_eq(tu_sh("cd '%s' && xz mail.log.3 && bzip2 mail.log.2 && gzip mail.log.1", dir), 0);
	/* the names say nothing: the content does */
	cr_assert_eq(tu_sh("cd '%s' && mv mail.log.3.xz old-a && mv mail.log.2.bz2 old-b.gz", dir), 0);
	set = replay_into("set.db", "mail.log.1.gz old-b.gz mail.log old-a");
	cr_assert_str_eq(set, whole, "xz/bzip2/gzip set:\n%s\none file:\n%s", set, whole);
	out = tu_sh_output("cd '%s' && '%s' replay --dry-run -c '%s' --db set.db old-a old-b.gz "
	    "mail.log.1.gz mail.log", dir, bin, conf);
	cr_assert(strstr(out, "old-a (xz, from ") != NULL, "%s", out);
	cr_assert(strstr(out, "old-b.gz (bzip2, from ") != NULL, "%s", out);
	cr_assert(strstr(out, "\n0 lines in") != NULL, "positions saved in the decoded text: %s", out);
	free(out);
	free(whole);
	free(set);
}

Test(replay, a_file_that_is_not_a_log_is_refused_by_name_and_nothing_is_read)
{
	char *out;

	rotated_set();
	cr_assert_eq(tu_sh("cd '%s' && gzip mail.log.2 && cp '%s' prog && echo 'just text' > notes "
	    "&& printf '\\050\\265\\057\\375rest' > mail.log.4.zst && gzip -c '%s' > bin.gz", dir,
	    bin, bin), 0);
	out = tu_sh_output("cd '%s' && '%s' replay --dry-run -c '%s' --db r.db mail.log mail.log.2.gz "
	    "prog 2>&1; echo \"exit=$?\"", dir, bin, conf);
	cr_assert(strstr(out, "prog: not a log: binary data") != NULL, "%s", out);
	cr_assert(strstr(out, "exit=2") != NULL, "%s", out);
	free(out);
	out = tu_sh_output("sqlite3 '%s/r.db' 'SELECT count(*) FROM events; SELECT count(*) FROM "
	    "log_position'", dir);
	cr_assert_str_eq(out, "0\n0\n", "nothing read, not even the good files: %s", out);
	free(out);
	out = tu_sh_output("cd '%s' && for f in notes mail.log.4.zst bin.gz; do '%s' replay "
	    "--dry-run -c '%s' --db r.db $f 2>&1; echo \"exit=$?\"; done", dir, bin, conf);
	cr_assert(strstr(out, "notes: not a log: no line in its first 64 KiB starts with a time "
	    "stamp\nexit=2") != NULL, "%s", out);
	cr_assert(strstr(out, "mail.log.4.zst: zstd data, not a log mailjail reads") != NULL, "%s", out);
	cr_assert(strstr(out, "bin.gz: not a log: binary data (a NUL byte before any line with a "
	    "time stamp) once decompressed\nexit=2") != NULL, "%s", out);
	cr_assert(strstr(out, "bad lines") == NULL, "refused, not counted: %s", out);
	free(out);
	/* A missing file stays a runtime failure (exit 1). */
	cr_assert_eq(tu_sh("cd '%s' && '%s' replay --dry-run -c '%s' --db r.db nothere 2>/dev/null",
	    dir, bin, conf), 1);
}

Test(replay, a_truncated_compressed_log_is_an_error_not_a_silent_end)
{
	char *out;

	rotated_set();
	/* More than the 64 KiB looked at first, cut in the middle. */
	cr_assert_eq(tu_sh("cd '%s' && for i in $(seq 200); do cat mail.log.3; done > big && "
	    "gzip -c big > full.gz && head -c $(($(stat -c %%s full.gz) / 2)) full.gz > big.gz",
	    dir), 0);
	out = tu_sh_output("cd '%s' && '%s' replay --dry-run -c '%s' --db t.db big.gz 2>&1; "
	    "echo \"exit=$?\"", dir, bin, conf);
	cr_assert(strstr(out, "big.gz: gzip data: truncated") != NULL, "%s", out);
	cr_assert(strstr(out, "exit=1") != NULL, "%s", out);
	free(out);
}

/* ---- spare_authenticated (issue 15) ---------------------------------------- */

/*
 * The shipped sasl-bruteforce spares an address some account logged in
 * from within a day: it needs 15 failures, not 5.  The login is in the
 * first log, the failures go on in the second, replayed by another process:
 * what spares the address comes back from the database.  The failures all
 * name "admin", 20 within the hour: sasl-targeted-account watches it and
 * bans the address that only failed, never the spared one (its own
 * spare_authenticated leaves that to sasl-bruteforce).
 */
Test(replay, spare_authenticated_survives_a_restart_and_spares_only_logged_in_addresses)
{
	char log1[600], log2[600], *out;
	time_t t = time(NULL) - 6 * 3600;
	FILE *fp;

	snprintf(log1, sizeof(log1), "%s/one.log", dir);
	snprintf(log2, sizeof(log2), "%s/two.log", dir);
	cr_assert_not_null(fp = fopen(log1, "w"));
	submissions(fp, t, "alice@example.org", "198.51.100.50", 1);
	failures(fp, t + 60, "198.51.100.50", 4);
	failures(fp, t + 61, "203.0.113.9", 4);
	fclose(fp);
	cr_assert_not_null(fp = fopen(log2, "w"));
	failures(fp, t + 160, "198.51.100.50", 11);
	failures(fp, t + 161, "203.0.113.9", 1);
	fclose(fp);
	cr_assert_eq(tu_sh("'%s' replay --dry-run --quiet -c '%s' --db '%s' '%s'", bin, conf, db,
	    log1), 0);
	out = query("SELECT count(*) FROM bans");
	cr_assert_str_eq(out, "0\n", "4 failures each: no ban yet");
	free(out);
	cr_assert_eq(tu_sh("'%s' replay --dry-run --quiet -c '%s' --db '%s' '%s'", bin, conf, db,
	    log2), 0);
	out = query("SELECT target || ': ' || reason FROM bans WHERE jail = 'sasl-bruteforce'"
	    " ORDER BY target");
	cr_assert_str_eq(out,
	    "198.51.100.50: 15 auth_failure in 10m (rule sasl-auth-failed; spared: an account "
	    "logged in from it within 1d)\n"
	    "203.0.113.9: 5 auth_failure in 10m (rule sasl-auth-failed)\n", "%s", out);
	free(out);
	out = query("SELECT target || ': ' || reason FROM bans WHERE jail = 'sasl-targeted-account'"
	    " ORDER BY target_kind, target");
	cr_assert_str_eq(out,
	    "admin: 20 auth_failure in 1h from 2 addresses (rule sasl-auth-failed): each is "
	    "banned while this lasts (1 spared: an account logged in from it within 1d)\n"
	    "203.0.113.9: auth_failure against attacked account admin (20 in 1h)\n", "%s", out);
	free(out);
}
