/*
 * test_replay - the real binary on the shipped sample log and config, with
 * real SQLite files read back through the sqlite3 CLI (what an admin sees).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static char dir[256], db[700], bin[512], conf[512], sample[512];

static void
setup(void)
{
	tu_mkdtemp(dir, sizeof(dir));
	snprintf(db, sizeof(db), "%s/mj.db", dir);
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
	return tu_sh_output("sqlite3 '%s' \"%s\"", db, sql);
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
	char log[600], db2[600];
	char *a, *b;
	const char *sql = "SELECT (SELECT count(*) FROM events) || ' ' || coalesce((SELECT sum(n)"
	    " FROM event_counts), 0) || ' ' || (SELECT group_concat(jail || '/' || target || '/' || level || '/' || started_at, ',') "
	    "FROM (SELECT * FROM bans ORDER BY id))";

	snprintf(log, sizeof(log), "%s/mail.log", dir);
	snprintf(db2, sizeof(db2), "%s/whole.db", dir);
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

Test(check_config, shipped_config_is_clean)
{
	char *out = tu_sh_output("'%s' check-config -c '%s' 2>&1", bin, conf);

	cr_assert(strstr(out, "OK") != NULL, "%s", out);
	free(out);
	cr_assert_eq(tu_sh("'%s' check-config -c '%s' >/dev/null 2>&1", bin, conf), 0);
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
