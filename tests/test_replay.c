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
