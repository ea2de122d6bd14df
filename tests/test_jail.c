/*
 * test_jail - jail semantics with synthetic event sequences and exact
 * verdicts; config errors with their file:line; the shipped jails/ load.
 * Each test writes its jail file to a fresh temp dir.
 */
#include <criterion/criterion.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jail.h"
#include "testutil.h"

#define T0 1700000000LL   /* 800s past a clock hour */

static char jpath[128];
static struct verdict out[JAIL_VERDICTS_MAX];

/* load_text - text as a jail file, loaded; fails the test on error */
static struct jailset *
load_text(const char *text)
{
	return tu_jails_load_ok(text, jpath, sizeof(jpath));
}

/* load_err - load text expecting failure; returns the first diag (static) */
static const char *
load_err(const char *text, size_t *ndiag)
{
	static char first[1024];
	struct jailset *js = NULL;
	struct diag d;

	diag_init(&d);
	cr_assert_eq(tu_jails_load(text, &js, &d, jpath, sizeof(jpath)), -1,
	    "expected failure for:\n%s", text);
	cr_assert_null(js);
	cr_assert_gt(d.n, 0);
	snprintf(first, sizeof(first), "%s", d.msgs[0]);
	if (ndiag)
		*ndiag = d.n;
	diag_free(&d);
	return first;
}

static struct event
mkev(const char *type, int64_t t, const char *ip, const char *user)
{
	struct event e;

	memset(&e, 0, sizeof(e));
	e.rule = "test-rule";
	e.type = type;
	e.time = t;
	e.nrcpt = -1;
	snprintf(e.ip, sizeof(e.ip), "%s", ip ? ip : "");
	snprintf(e.user, sizeof(e.user), "%s", user ? user : "");
	return e;
}

static int
rec(struct jailset *js, const char *type, int64_t t, const char *ip, const char *user)
{
	struct event e = mkev(type, t, ip, user);
	int n = jail_record_event(js, &e, t, out, JAIL_VERDICTS_MAX);

	cr_assert_geq(n, 0);
	return n;
}

static void
check_verdict(const struct verdict *v, const char *jail, const char *target,
    int level, int64_t start, int64_t expires)
{
	cr_assert_str_eq(v->jail, jail);
	cr_assert_str_eq(v->target, target);
	cr_assert_eq(v->level, level, "level %d != %d", v->level, level);
	cr_assert_eq(v->started_at, start);
	cr_assert_eq(v->expires_at, expires, "expires %lld != %lld (len %lld)",
	    (long long)v->expires_at, (long long)expires, (long long)(v->expires_at - v->started_at));
}

static const char *SASL =
    "[sasl]\nevents = auth_failure\nkey = ip\nfindtime = 10m\nmaxretry = 5\n"
    "action = nft\nbantime = 1h\nfactor = 2\nmaxbantime = 4w\n";

Test(jail, shipped_jails_load)
{
	const char *src = getenv("MAILJAIL_SRCDIR");
	char path[4096];
	struct jailset *js = NULL;
	struct diag d;

	cr_assert_not_null(src);
	snprintf(path, sizeof(path), "%s/jails", src);
	diag_init(&d);
	if (jails_load(path, &js, &d) != 0)
		diag_print(&d);
	cr_assert_eq(d.n, 0);
	cr_assert_not_null(js);
	cr_assert_eq(jails_count(js), 9);
	cr_assert_eq(jails_history_span(js), 30 * 86400);
	cr_assert_eq(jails_longest_window(js), 86400);
	jails_free(js);
	diag_free(&d);
}

Test(jail, window_edge_exactly_findtime_is_out)
{
	struct jailset *js = load_text(SASL);

	cr_assert_eq(rec(js, "auth_failure", T0, "192.0.2.1", NULL), 0);
	cr_assert_eq(rec(js, "auth_failure", T0 + 100, "192.0.2.1", NULL), 0);
	cr_assert_eq(rec(js, "auth_failure", T0 + 200, "192.0.2.1", NULL), 0);
	cr_assert_eq(rec(js, "auth_failure", T0 + 300, "192.0.2.1", NULL), 0);
	/* T0 is exactly 600s old: out, so only 4 in the window */
	cr_assert_eq(rec(js, "auth_failure", T0 + 600, "192.0.2.1", NULL), 0);
	cr_assert_eq(rec(js, "auth_failure", T0 + 601, "192.0.2.1", NULL), 1);
	check_verdict(&out[0], "sasl", "192.0.2.1", 1, T0 + 601, T0 + 601 + 3600);
	cr_assert_eq(out[0].kind, TARGET_IP);
	cr_assert_eq(out[0].actions, ACTION_NFT);
	cr_assert_str_eq(out[0].reason, "5 auth_failure in 10m (rule test-rule)");
	jails_free(js);
}

Test(jail, fifth_within_window_fires)
{
	struct jailset *js = load_text(SASL);

	for (int i = 0; i < 4; i++)
		cr_assert_eq(rec(js, "auth_failure", T0 + i, "2001:db8::1", NULL), 0);
	/* another address does not add up */
	cr_assert_eq(rec(js, "auth_failure", T0 + 5, "2001:db8::2", NULL), 0);
	cr_assert_eq(rec(js, "auth_failure", T0 + 599, "2001:db8::1", NULL), 1);
	check_verdict(&out[0], "sasl", "2001:db8::1", 1, T0 + 599, T0 + 599 + 3600);
	jails_free(js);
}

/* A second log can deliver an older line after newer ones: a full ring
 * drops the oldest time, not the line that came first, and sums stay exact. */
Test(jail, out_of_order_event_keeps_newest_times)
{
	struct jailset *js = load_text(
	    "[sasl]\nevents = auth_failure\nkey = ip\nfindtime = 10m\nmaxretry = 3\n"
	    "action = nft\nbantime = 1h\n");

	cr_assert_eq(rec(js, "auth_failure", T0 + 1000, "192.0.2.9", NULL), 0);
	cr_assert_eq(rec(js, "auth_failure", T0 + 1001, "192.0.2.9", NULL), 0);
	/* 700 s older than the others: alone in its own window */
	cr_assert_eq(rec(js, "auth_failure", T0 + 300, "192.0.2.9", NULL), 0);
	/* three within 10m: 1000, 1001, 1002 */
	cr_assert_eq(rec(js, "auth_failure", T0 + 1002, "192.0.2.9", NULL), 1);
	check_verdict(&out[0], "sasl", "192.0.2.9", 1, T0 + 1002, T0 + 1002 + 3600);
	cr_assert_str_eq(out[0].reason, "3 auth_failure in 10m (rule test-rule)");
	jails_free(js);
}

/* rec_late - an event of time t counted at the clock now (a fleet's other
 * node's, polled a moment later) */
static int
rec_late(struct jailset *js, const char *type, int64_t t, int64_t now, const char *ip,
    const char *user)
{
	struct event e = mkev(type, t, ip, user);
	int n = jail_record_event(js, &e, now, out, JAIL_VERDICTS_MAX);

	cr_assert_geq(n, 0);
	return n;
}

/* 3 failures on this node, then 2 older ones from another node: the late
 * ones complete the window that ends at this node's last, and the verdict
 * is made when they come (else neither node would ever see 5). */
Test(jail, late_events_complete_a_window_ending_at_a_later_one)
{
	struct jailset *js = load_text(SASL);

	cr_assert_eq(rec(js, "auth_failure", T0 + 100, "192.0.2.5", NULL), 0);
	cr_assert_eq(rec(js, "auth_failure", T0 + 101, "192.0.2.5", NULL), 0);
	cr_assert_eq(rec(js, "auth_failure", T0 + 102, "192.0.2.5", NULL), 0);
	cr_assert_eq(rec_late(js, "auth_failure", T0 + 95, T0 + 103, "192.0.2.5", NULL), 0);
	cr_assert_eq(rec_late(js, "auth_failure", T0 + 96, T0 + 103, "192.0.2.5", NULL), 1);
	check_verdict(&out[0], "sasl", "192.0.2.5", 1, T0 + 103, T0 + 103 + 3600);
	cr_assert_str_eq(out[0].reason, "5 auth_failure in 10m (rule test-rule)");
	/* a late event a whole window before the rest completes nothing */
	cr_assert_eq(rec(js, "auth_failure", T0 + 5000, "192.0.2.6", NULL), 0);
	cr_assert_eq(rec(js, "auth_failure", T0 + 5001, "192.0.2.6", NULL), 0);
	cr_assert_eq(rec(js, "auth_failure", T0 + 5002, "192.0.2.6", NULL), 0);
	cr_assert_eq(rec_late(js, "auth_failure", T0 + 4400, T0 + 5003, "192.0.2.6", NULL), 0);
	cr_assert_eq(rec_late(js, "auth_failure", T0 + 4401, T0 + 5003, "192.0.2.6", NULL), 0);
	jails_free(js);
}

/* ban - make 5 failures at t..t+4 and return the verdict count of the last */
static int
ban5(struct jailset *js, int64_t t, const char *ip)
{
	for (int i = 0; i < 4; i++)
		cr_assert_eq(rec(js, "auth_failure", t + i, ip, NULL), 0);
	return rec(js, "auth_failure", t + 4, ip, NULL);
}

Test(jail, active_ban_suppresses_then_counting_fresh)
{
	struct jailset *js = load_text(SASL);
	int64_t end;

	cr_assert_eq(ban5(js, T0, "192.0.2.7"), 1);
	end = out[0].expires_at;
	/* during the ban: nothing counts, no new verdict */
	for (int i = 0; i < 10; i++)
		cr_assert_eq(rec(js, "auth_failure", T0 + 100 + i, "192.0.2.7", NULL), 0);
	/* after: fresh count, 4 are not enough even though 14 happened */
	for (int i = 0; i < 4; i++)
		cr_assert_eq(rec(js, "auth_failure", end + i, "192.0.2.7", NULL), 0);
	cr_assert_eq(rec(js, "auth_failure", end + 4, "192.0.2.7", NULL), 1);
	check_verdict(&out[0], "sasl", "192.0.2.7", 2, end + 4, end + 4 + 7200);
	jails_free(js);
}

Test(jail, escalation_levels_and_cap)
{
	struct jailset *js = load_text(
	    "[esc]\nevents = auth_failure\nkey = ip\nfindtime = 10m\nmaxretry = 1\n"
	    "action = nft\nbantime = 1h\nfactor = 2\nmaxbantime = 3h\n");
	int64_t t = T0;

	cr_assert_eq(rec(js, "auth_failure", t, "192.0.2.9", NULL), 1);
	check_verdict(&out[0], "esc", "192.0.2.9", 1, t, t + 3600);
	t = out[0].expires_at;
	cr_assert_eq(rec(js, "auth_failure", t, "192.0.2.9", NULL), 1);
	check_verdict(&out[0], "esc", "192.0.2.9", 2, t, t + 7200);
	t = out[0].expires_at;
	cr_assert_eq(rec(js, "auth_failure", t, "192.0.2.9", NULL), 1);
	/* 4h capped at maxbantime 3h */
	check_verdict(&out[0], "esc", "192.0.2.9", 3, t, t + 3 * 3600);
	/* beyond the 30-day history span the level starts over */
	t += 31 * 86400;
	cr_assert_eq(rec(js, "auth_failure", t, "192.0.2.9", NULL), 1);
	check_verdict(&out[0], "esc", "192.0.2.9", 1, t, t + 3600);
	jails_free(js);
}

Test(jail, fractional_factor)
{
	struct jailset *js = load_text(
	    "[esc]\nevents = auth_failure\nmaxretry = 1\naction = reject\nbantime = 1h\nfactor = 1.5\n");
	int64_t t = T0;

	cr_assert_eq(rec(js, "auth_failure", t, "192.0.2.9", NULL), 1);
	cr_assert_str_eq(out[0].reply, "450 4.7.1 Too many errors from your address, try again later");
	cr_assert_eq(out[0].actions, ACTION_REJECT);
	t = out[0].expires_at;
	cr_assert_eq(rec(js, "auth_failure", t, "192.0.2.9", NULL), 1);
	check_verdict(&out[0], "esc", "192.0.2.9", 2, t, t + 5400);
	jails_free(js);
}

static const char *QUOTA =
    "[quota]\nevents = submission\nkey = account\nlimits = 3/1h, 5/1d\n"
    "action = hold\nbantime = 1d\n";

Test(jail, quota_slides_across_clock_hour)
{
	struct jailset *js = load_text(QUOTA);
	int64_t h = (T0 / 3600 + 1) * 3600;   /* a clock hour boundary */

	cr_assert_eq(rec(js, "submission", h - 600, "192.0.2.1", "alice"), 0);
	cr_assert_eq(rec(js, "submission", h - 300, "192.0.2.1", "alice"), 0);
	cr_assert_eq(rec(js, "submission", h + 300, "192.0.2.1", "alice"), 0);
	/* (h-15m, h+45m] holds 4 > 3, across the hour boundary */
	cr_assert_eq(rec(js, "submission", h + 2700, "192.0.2.1", "alice"), 1);
	check_verdict(&out[0], "quota", "alice", 1, h + 2700, h + 2700 + 86400);
	cr_assert_eq(out[0].kind, TARGET_ACCOUNT);
	cr_assert_eq(out[0].actions, ACTION_HOLD);
	cr_assert_null(out[0].reply);
	cr_assert_str_eq(out[0].reason, "4 messages in 1h over limit 3/1h");
	jails_free(js);
}

Test(jail, quota_window_edge_and_second_limit)
{
	struct jailset *js = load_text(QUOTA);
	int64_t t = T0;

	cr_assert_eq(rec(js, "submission", t, NULL, "bob"), 0);
	cr_assert_eq(rec(js, "submission", t + 1, NULL, "bob"), 0);
	cr_assert_eq(rec(js, "submission", t + 2, NULL, "bob"), 0);
	/* t is exactly 1h old at t+3600: out of the 1h window; 3 in it */
	cr_assert_eq(rec(js, "submission", t + 3600, NULL, "bob"), 0);
	cr_assert_eq(rec(js, "submission", t + 7200, NULL, "bob"), 0);
	/* 6 in the day > 5: the 1d limit fires */
	cr_assert_eq(rec(js, "submission", t + 10800, NULL, "bob"), 1);
	cr_assert_str_eq(out[0].reason, "6 messages in 1d over limit 5/1d");
	jails_free(js);
}

/* The same for a quota: 3 messages here, a 4th from another node sent
 * before them, polled after. */
Test(jail, a_late_message_completes_a_quota_window)
{
	struct jailset *js = load_text(QUOTA);

	cr_assert_eq(rec(js, "submission", T0 + 10, NULL, "carol"), 0);
	cr_assert_eq(rec(js, "submission", T0 + 20, NULL, "carol"), 0);
	cr_assert_eq(rec(js, "submission", T0 + 30, NULL, "carol"), 0);
	cr_assert_eq(rec_late(js, "submission", T0 + 5, T0 + 31, NULL, "carol"), 1);
	cr_assert_str_eq(out[0].reason, "4 messages in 1h over limit 3/1h");
	jails_free(js);
}

static int
rec_queued(struct jailset *js, int64_t t, const char *qid, const char *sender, long nrcpt)
{
	struct event e = mkev("queued", t, NULL, NULL);
	int n;

	snprintf(e.qid, sizeof(e.qid), "%s", qid);
	snprintf(e.sender, sizeof(e.sender), "%s", sender);
	e.nrcpt = nrcpt;
	n = jail_record_event(js, &e, t, out, JAIL_VERDICTS_MAX);
	cr_assert_geq(n, 0);
	return n;
}

static int
rec_sub(struct jailset *js, int64_t t, const char *qid, const char *user)
{
	struct event e = mkev("submission", t, "198.51.100.4", user);
	int n;

	snprintf(e.qid, sizeof(e.qid), "%s", qid);
	n = jail_record_event(js, &e, t, out, JAIL_VERDICTS_MAX);
	cr_assert_geq(n, 0);
	return n;
}

Test(jail, recipients_joined_by_qid)
{
	struct jailset *js = load_text(
	    "[rcpt]\nevents = submission\nkey = account\nlimits = 10/1h\ncount = recipients\n"
	    "action = hold\nbantime = 1d\n");

	cr_assert_eq(rec_sub(js, T0, "AAA1", "alice"), 0);
	cr_assert_eq(rec_sub(js, T0 + 1, "BBB2", "alice"), 0);
	cr_assert_eq(rec_queued(js, T0 + 2, "AAA1", "alice@example.org", 6), 0);
	/* qmgr logs again when a deferred message comes back: counted once */
	cr_assert_eq(rec_queued(js, T0 + 3, "AAA1", "alice@example.org", 6), 0);
	/* a queued line without its submission counts for nobody */
	cr_assert_eq(rec_queued(js, T0 + 3, "ZZZ9", "x@example.org", 50), 0);
	cr_assert_eq(rec_queued(js, T0 + 4, "BBB2", "alice@example.org", 5), 1);
	/* the verdict is made at now (the queued line), windows at the
	 * submission's time */
	check_verdict(&out[0], "rcpt", "alice", 1, T0 + 4, T0 + 4 + 86400);
	cr_assert_str_eq(out[0].reason, "11 recipients in 1h over limit 10/1h");
	jails_free(js);
}

Test(jail, domain_key)
{
	struct jailset *js = load_text(
	    "[dom]\nevents = submission\nkey = domain\nlimits = 2/1h\naction = hold\n");

	cr_assert_eq(rec(js, "submission", T0, NULL, "alice@example.com"), 0);
	cr_assert_eq(rec(js, "submission", T0 + 1, NULL, "bob@Example.COM"), 0);
	cr_assert_eq(rec(js, "submission", T0 + 2, NULL, "carol@other.net"), 0);
	cr_assert_eq(rec(js, "submission", T0 + 3, NULL, "dave@example.com"), 1);
	check_verdict(&out[0], "dom", "example.com", 1, T0 + 3, T0 + 3 + 3600);
	/* account without @domain: the envelope sender's domain, via qid */
	cr_assert_eq(rec_sub(js, T0 + 10, "Q1", "erin"), 0);
	cr_assert_eq(rec_sub(js, T0 + 11, "Q2", "frank"), 0);
	cr_assert_eq(rec_sub(js, T0 + 12, "Q3", "erin"), 0);
	cr_assert_eq(rec_queued(js, T0 + 13, "Q1", "erin@plain.example", 1), 0);
	cr_assert_eq(rec_queued(js, T0 + 13, "Q2", "frank@plain.example", 1), 0);
	cr_assert_eq(rec_queued(js, T0 + 14, "Q3", "erin@plain.example", 1), 1);
	check_verdict(&out[0], "dom", "plain.example", 1, T0 + 14, T0 + 14 + 3600);
	jails_free(js);
}

Test(jail, sender_key)
{
	struct jailset *js = load_text(
	    "[snd]\nevents = submission\nkey = sender\nlimits = 1/1h\naction = hold\n");

	cr_assert_eq(rec_sub(js, T0, "Q1", "alice"), 0);
	cr_assert_eq(rec_sub(js, T0 + 1, "Q2", "bob"), 0);
	cr_assert_eq(rec_queued(js, T0 + 2, "Q1", "news@example.com", 1), 0);
	cr_assert_eq(rec_queued(js, T0 + 3, "Q2", "news@example.com", 1), 1);
	cr_assert_str_eq(out[0].target, "news@example.com");
	jails_free(js);
}

Test(jail, recidive_across_two_jails)
{
	struct jailset *js = load_text(
	    "[a]\nevents = auth_failure\nmaxretry = 1\naction = nft\nbantime = 1m\n"
	    "[b]\nevents = relay_denied\nmaxretry = 1\naction = nft\nbantime = 1m\n"
	    "[recidive]\nevents = ban\nkey = ip\nfindtime = 1d\nmaxretry = 3\n"
	    "action = nft\nbantime = 1w\n");

	cr_assert_eq(rec(js, "auth_failure", T0, "203.0.113.5", NULL), 1);
	cr_assert_eq(rec(js, "relay_denied", T0 + 1, "203.0.113.5", NULL), 1);
	cr_assert_eq(rec(js, "auth_failure", T0 + 120, "203.0.113.5", NULL), 2);
	check_verdict(&out[0], "a", "203.0.113.5", 2, T0 + 120, T0 + 120 + 120);
	check_verdict(&out[1], "recidive", "203.0.113.5", 1, T0 + 120, T0 + 120 + 7 * 86400);
	cr_assert_str_eq(out[1].reason, "3 bans in 1d");
	/* later bans while recidive's own ban is active do not count, and
	 * recidive never counts its own bans */
	cr_assert_eq(rec(js, "relay_denied", T0 + 200, "203.0.113.5", NULL), 1);
	cr_assert_str_eq(out[0].jail, "b");
	/* an account ban does not feed an ip recidive */
	jails_free(js);
}

Test(jail, ignore_lists)
{
	struct jailset *js = load_text(
	    "[i]\nevents = auth_failure\nmaxretry = 1\naction = nft\n"
	    "ignore = 10.0.0.0/8, 2001:db8:abcd::/48, 192.0.2.77\n"
	    "[q]\nevents = submission\nkey = account\nlimits = 1/1h\naction = hold\n"
	    "ignore = trusted, newsletter@example.com\n");

	cr_assert_eq(rec(js, "auth_failure", T0, "10.1.2.3", NULL), 0);
	cr_assert_eq(rec(js, "auth_failure", T0, "2001:db8:abcd:1::5", NULL), 0);
	cr_assert_eq(rec(js, "auth_failure", T0, "192.0.2.77", NULL), 0);
	cr_assert_eq(rec(js, "auth_failure", T0, "192.0.2.78", NULL), 1);
	cr_assert_eq(rec(js, "auth_failure", T0, "2001:db8:abce::5", NULL), 1);
	/* explicit ignore replaces the default: loopback now counts */
	cr_assert_eq(rec(js, "auth_failure", T0, "127.0.0.1", NULL), 1);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(rec(js, "submission", T0 + i, NULL, "trusted"), 0);
		cr_assert_eq(rec(js, "submission", T0 + i, NULL, "newsletter@example.com"), 0);
	}
	cr_assert_eq(rec(js, "submission", T0, NULL, "other"), 0);
	cr_assert_eq(rec(js, "submission", T0 + 1, NULL, "other"), 1);
	cr_assert_eq(jails_tracked_keys(js, 1), 1);
	jails_free(js);
}

Test(jail, loopback_default_and_empty_override)
{
	struct jailset *js = load_text(
	    "[d]\nevents = auth_failure\nmaxretry = 1\naction = nft\n"
	    "[e]\nevents = relay_denied\nmaxretry = 1\naction = nft\nignore =\n");

	cr_assert_eq(rec(js, "auth_failure", T0, "127.0.0.1", NULL), 0);
	cr_assert_eq(rec(js, "auth_failure", T0, "127.8.9.1", NULL), 0);
	cr_assert_eq(rec(js, "auth_failure", T0, "::1", NULL), 0);
	cr_assert_eq(jails_tracked_keys(js, 0), 0);
	cr_assert_eq(rec(js, "relay_denied", T0, "127.0.0.1", NULL), 1);
	cr_assert_eq(rec(js, "relay_denied", T0, "::1", NULL), 1);
	/* events without the key's field are not counted */
	cr_assert_eq(rec(js, "relay_denied", T0, "", "alice"), 0);
	jails_free(js);
}

Test(jail, ipv6_prefix_keys)
{
	struct jailset *js = load_text(
	    "[p64]\nevents = auth_failure\nkey = ip/64\nmaxretry = 3\naction = nft\n"
	    "[p24]\nevents = relay_denied\nkey = ip/24\nmaxretry = 2\naction = nft\n");

	cr_assert_eq(rec(js, "auth_failure", T0, "2001:db8:1::1", NULL), 0);
	cr_assert_eq(rec(js, "auth_failure", T0 + 1, "2001:db8:1:0:ffff::2", NULL), 0);
	cr_assert_eq(rec(js, "auth_failure", T0 + 2, "2001:db8:2::1", NULL), 0);
	cr_assert_eq(rec(js, "auth_failure", T0 + 3, "2001:db8:1::abcd", NULL), 1);
	check_verdict(&out[0], "p64", "2001:db8:1::/64", 1, T0 + 3, T0 + 3 + 3600);
	cr_assert_eq(out[0].kind, TARGET_IP);
	/* ip/64 on IPv4: exact address */
	cr_assert_eq(rec(js, "auth_failure", T0, "192.0.2.1", NULL), 0);
	cr_assert_eq(rec(js, "auth_failure", T0, "192.0.2.2", NULL), 0);
	cr_assert_eq(rec(js, "auth_failure", T0, "192.0.2.1", NULL), 0);
	cr_assert_eq(rec(js, "auth_failure", T0 + 1, "192.0.2.1", NULL), 1);
	cr_assert_str_eq(out[0].target, "192.0.2.1");
	/* ip/24: IPv4 /24 */
	cr_assert_eq(rec(js, "relay_denied", T0, "198.51.100.7", NULL), 0);
	cr_assert_eq(rec(js, "relay_denied", T0, "198.51.100.200", NULL), 1);
	cr_assert_str_eq(out[0].target, "198.51.100.0/24");
	jails_free(js);
}

Test(jail, old_events_are_counted_but_issue_nothing)
{
	struct jailset *js = load_text(SASL);
	struct event e;
	int64_t now = T0 + 10000;

	for (int i = 0; i < 6; i++) {
		e = mkev("auth_failure", T0 + i, "192.0.2.50", NULL);
		cr_assert_eq(jail_record_event(js, &e, now, out, JAIL_VERDICTS_MAX), 0);
	}
	cr_assert_eq(jails_tracked_keys(js, 0), 1);
	/* an event exactly findtime before now is old too */
	for (int i = 0; i < 5; i++) {
		e = mkev("auth_failure", now - 600, "192.0.2.51", NULL);
		cr_assert_eq(jail_record_event(js, &e, now, out, JAIL_VERDICTS_MAX), 0);
	}
	/* counted: one more, recent, fires (4 old + 1 in (now-601-600, now-1]) */
	e = mkev("auth_failure", now - 1, "192.0.2.51", NULL);
	cr_assert_eq(jail_record_event(js, &e, now, out, JAIL_VERDICTS_MAX), 1);
	check_verdict(&out[0], "sasl", "192.0.2.51", 1, now, now + 3600);
	jails_free(js);
}

/* A mixed script: failures of two addresses and a recidive jail. */
static const char *RESTART =
    "[sasl]\nevents = auth_failure\nkey = ip\nfindtime = 10m\nmaxretry = 3\n"
    "action = nft\nbantime = 5m\nfactor = 2\n"
    "[quota]\nevents = submission\nkey = account\nlimits = 4/1h\naction = hold\nbantime = 10m\n"
    "[recidive]\nevents = ban\nkey = ip\nfindtime = 1d\nmaxretry = 3\naction = nft\nbantime = 1w\n";

struct step {
	const char *type;
	int64_t dt;
	const char *ip, *user;
};

static const struct step script[] = {
	{ "auth_failure", 0, "192.0.2.1", NULL },
	{ "auth_failure", 10, "192.0.2.1", NULL },
	{ "auth_failure", 20, "192.0.2.1", NULL },     /* ban 1, level 1 */
	{ "submission", 30, "192.0.2.9", "alice" },
	{ "submission", 40, "192.0.2.9", "alice" },
	{ "auth_failure", 50, "192.0.2.1", NULL },     /* banned: ignored */
	{ "auth_failure", 400, "192.0.2.1", NULL },
	{ "auth_failure", 410, "192.0.2.1", NULL },
	{ "submission", 420, "192.0.2.9", "alice" },
	/* --- restart here (index 9) --- */
	{ "auth_failure", 430, "192.0.2.1", NULL },    /* ban 2, level 2 */
	{ "submission", 440, "192.0.2.9", "alice" },
	{ "submission", 450, "192.0.2.9", "alice" },   /* quota fires */
	{ "auth_failure", 1100, "192.0.2.1", NULL },
	{ "auth_failure", 1110, "192.0.2.1", NULL },
	{ "auth_failure", 1120, "192.0.2.1", NULL },   /* ban 3 + recidive */
	{ "auth_failure", 1130, "192.0.2.2", NULL },
};
#define NSCRIPT (sizeof(script) / sizeof(script[0]))
#define CUT 9

struct vlog {
	struct verdict v[64];
	size_t n;
};

static void
run_steps(struct jailset *js, size_t from, size_t to, struct vlog *vl)
{
	for (size_t i = from; i < to; i++) {
		struct event e = mkev(script[i].type, T0 + script[i].dt, script[i].ip, script[i].user);
		int n = jail_record_event(js, &e, e.time, out, JAIL_VERDICTS_MAX);
		cr_assert_geq(n, 0);
		for (int k = 0; k < n; k++)
			vl->v[vl->n++] = out[k];
	}
}

Test(jail, restart_mid_window_same_verdicts)
{
	struct jailset *a = load_text(RESTART), *b, *c;
	struct vlog full = { .n = 0 }, part = { .n = 0 };

	run_steps(a, 0, NSCRIPT, &full);
	cr_assert_eq(full.n, 5, "got %zu verdicts", full.n);
	cr_assert_str_eq(full.v[0].jail, "sasl");
	cr_assert_eq(full.v[0].level, 1);
	cr_assert_eq(full.v[1].level, 2);
	cr_assert_eq(full.v[1].expires_at - full.v[1].started_at, 600);
	cr_assert_str_eq(full.v[2].jail, "quota");
	cr_assert_str_eq(full.v[3].jail, "sasl");
	cr_assert_eq(full.v[3].level, 3);
	/* recidive needs 3 sasl bans; the 3rd one fires it */
	cr_assert_str_eq(full.v[4].jail, "recidive");

	b = load_text(RESTART);
	run_steps(b, 0, CUT, &part);
	/* restart: a new jailset, bans first (oldest first), then events */
	c = load_text(RESTART);
	for (size_t i = 0; i < part.n; i++)
		cr_assert_eq(jail_restore_ban(c, part.v[i].jail, part.v[i].target, part.v[i].kind, part.v[i].level,
		    part.v[i].started_at, part.v[i].expires_at, 0), 0);
	for (size_t i = 0; i < CUT; i++) {
		struct event e = mkev(script[i].type, T0 + script[i].dt, script[i].ip, script[i].user);
		cr_assert_eq(jail_restore_event(c, &e), 0);
	}
	run_steps(c, CUT, NSCRIPT, &part);
	cr_assert_eq(part.n, full.n + 0, "after restart %zu verdicts, uninterrupted %zu", part.n, full.n);
	for (size_t i = 0; i < full.n; i++) {
		check_verdict(&part.v[i], full.v[i].jail, full.v[i].target, full.v[i].level,
		    full.v[i].started_at, full.v[i].expires_at);
		cr_assert_str_eq(part.v[i].reason, full.v[i].reason);
	}
	jails_free(a);
	jails_free(b);   /* part's first verdicts point at b's jail names */
	jails_free(c);
}

Test(jail, restart_recidive_restored_from_bans)
{
	const char *text =
	    "[a]\nevents = auth_failure\nmaxretry = 1\naction = nft\nbantime = 1m\n"
	    "[recidive]\nevents = ban\nkey = ip\nfindtime = 1d\nmaxretry = 3\naction = nft\nbantime = 1w\n";
	struct jailset *js = load_text(text);

	cr_assert_eq(jail_restore_ban(js, "a", "203.0.113.5", TARGET_IP, 1, T0, T0 + 60, 0), 0);
	cr_assert_eq(jail_restore_ban(js, "a", "203.0.113.5", TARGET_IP, 2, T0 + 100, T0 + 220, 0), 0);
	cr_assert_eq(jail_restore_ban(js, "gone", "203.0.113.5", TARGET_IP, 1, T0, T0 + 60, 0), 0);
	/* still banned at T0 + 200 */
	cr_assert_eq(rec(js, "auth_failure", T0 + 200, "203.0.113.5", NULL), 0);
	cr_assert_eq(rec(js, "auth_failure", T0 + 220, "203.0.113.5", NULL), 2);
	check_verdict(&out[0], "a", "203.0.113.5", 3, T0 + 220, T0 + 220 + 240);
	check_verdict(&out[1], "recidive", "203.0.113.5", 1, T0 + 220, T0 + 220 + 7 * 86400);
	jails_free(js);
}

Test(jail, manual_verdict_and_lift)
{
	struct jailset *js = load_text(
	    "[sasl]\nevents = auth_failure\nmaxretry = 2\naction = nft\nbantime = 1h\n"
	    "[quota]\nevents = submission\nkey = account\nlimits = 1/1h\naction = hold\n");
	struct verdict v;

	cr_assert_eq(jail_manual_verdict(js, NULL, "2001:DB8::0:1", TARGET_IP, 7200, T0, &v), 0);
	check_verdict(&v, "sasl", "2001:db8::1", 1, T0, T0 + 7200);
	cr_assert_eq(jail_manual_verdict(js, "sasl", "192.0.2.4", TARGET_IP, 0, T0, &v), 0);
	check_verdict(&v, "sasl", "192.0.2.4", 1, T0, T0 + 3600);
	cr_assert_eq(jail_manual_verdict(js, NULL, "alice", TARGET_ACCOUNT, 0, T0, &v), 0);
	check_verdict(&v, "quota", "alice", 1, T0, T0 + 3600);
	cr_assert_eq(v.actions, ACTION_HOLD);
	cr_assert_eq(jail_manual_verdict(js, NULL, "not-an-ip", TARGET_IP, 0, T0, &v), -1);
	cr_assert_eq(jail_manual_verdict(js, "nope", "192.0.2.4", TARGET_IP, 0, T0, &v), -1);
	cr_assert_eq(jail_manual_verdict(js, "quota", "192.0.2.4", TARGET_IP, 0, T0, &v), -1);
	cr_assert_eq(jail_manual_verdict(js, NULL, "bad user", TARGET_ACCOUNT, 0, T0, &v), -1);
	/* banned: no counting */
	cr_assert_eq(rec(js, "auth_failure", T0 + 10, "192.0.2.4", NULL), 0);
	cr_assert_eq(rec(js, "auth_failure", T0 + 11, "192.0.2.4", NULL), 0);
	cr_assert_eq(jail_lift(js, NULL, "192.0.2.4", T0 + 20), 1);
	cr_assert_eq(jail_lift(js, NULL, "192.0.2.4", T0 + 21), 0);
	cr_assert_eq(rec(js, "auth_failure", T0 + 30, "192.0.2.4", NULL), 0);
	cr_assert_eq(rec(js, "auth_failure", T0 + 31, "192.0.2.4", NULL), 1);
	check_verdict(&out[0], "sasl", "192.0.2.4", 2, T0 + 31, T0 + 31 + 7200);
	jails_free(js);
}

/* Expiry keeps what a late line (read behind the clock, still inside its
 * window) counts back to. */
Test(jail, expire_keeps_what_a_late_line_needs)
{
	struct jailset *js = load_text(SASL);
	struct event e;

	for (int k = 0; k < 4; k++)
		cr_assert_eq(rec(js, "auth_failure", T0 + k, "192.0.2.9", NULL), 0);
	jails_expire(js, T0 + 700);
	cr_assert_eq(jails_tracked_keys(js, 0), 1);
	/* Stamped T0 + 300, seen at T0 + 700: inside the 10m window of now. */
	e = mkev("auth_failure", T0 + 300, "192.0.2.9", NULL);
	cr_assert_eq(jail_record_event(js, &e, T0 + 700, out, JAIL_VERDICTS_MAX), 1,
	    "the fifth failure within 10m bans");
	jails_free(js);
}

Test(jail, expire_drops_keys)
{
	struct jailset *js = load_text(SASL);
	char ip[64];

	for (int i = 0; i < 1000; i++) {
		snprintf(ip, sizeof(ip), "10.%d.%d.1", i / 256, i % 256);
		cr_assert_eq(rec(js, "auth_failure", T0 + i, ip, NULL), 0);
	}
	cr_assert_eq(jails_tracked_keys(js, 0), 1000);
	jails_expire(js, T0 + 2 * 600 + 499);
	cr_assert_eq(jails_tracked_keys(js, 0), 500);
	/* survivors are still found after the table was rebuilt */
	for (int i = 500; i < 1000; i++) {
		snprintf(ip, sizeof(ip), "10.%d.%d.1", i / 256, i % 256);
		for (int k = 1; k < 4; k++)
			cr_assert_eq(rec(js, "auth_failure", T0 + i + k, ip, NULL), 0);
		cr_assert_eq(rec(js, "auth_failure", T0 + i + 4, ip, NULL), 1);
	}
	jails_expire(js, T0 + 100000);
	cr_assert_eq(jails_tracked_keys(js, 0), 0);
	jails_free(js);
}

static bool
known_ev(void *arg, const char *ev)
{
	(void)arg;
	return strcmp(ev, "auth_failure") == 0;
}

Test(jail, check_events)
{
	struct jailset *js = load_text(
	    "[a]\nevents = auth_failure, typo_event\nmaxretry = 1\naction = nft\n"
	    "[r]\nevents = ban\nmaxretry = 2\nfindtime = 1d\naction = nft\n");
	struct diag d;

	diag_init(&d);
	cr_assert_eq(jails_check_events(js, known_ev, NULL, &d), 1);
	cr_assert(strstr(d.msgs[0], "t.jail:2: ") != NULL, "%s", d.msgs[0]);
	cr_assert(strstr(d.msgs[0], "typo_event") != NULL);
	diag_free(&d);
	jails_free(js);
}

Test(jail, disabled_jail)
{
	struct jailset *js = load_text(
	    "[a]\nevents = auth_failure\nmaxretry = 1\naction = nft\nenabled = false\n"
	    "[b]\nevents = auth_failure\nmaxretry = 1\naction = nft\n");

	cr_assert_eq(jails_count(js), 1);
	cr_assert_str_eq(jails_name(js, 0), "b");
	jails_free(js);
}

struct errcase {
	const char *text;
	int line;
	const char *needle;
};

static const struct errcase errcases[] = {
	{ "[a]\nevents = x\nmaxretry = 1\naction = nft\nbogus = 1\n", 5, "unknown key \"bogus\"" },
	{ "[a]\nevents = x\nmaxretry = 1\nfindtime = 10x\naction = nft\n", 4, "bad duration" },
	{ "[a]\nevents = x\nmaxretry = 1\nbantime = soon\naction = nft\n", 4, "bad duration" },
	{ "[a]\nevents = x\nmaxretry = five\naction = nft\n", 3, "bad number" },
	{ "[a]\nevents = x\nmaxretry = 0\naction = nft\n", 3, "bad number" },
	{ "[a]\nevents = x\nmaxretry = 1\nfactor = -1\naction = nft\n", 4, "bad number" },
	{ "[a]\nevents = x\nmaxretry = 1\nfactor = 2x\naction = nft\n", 4, "bad number" },
	{ "[a]\nevents = x\nmaxretry = 1\naction = nft, shout\n", 4, "unknown action" },
	{ "[a]\nevents = x\nkey = mac\nmaxretry = 1\naction = nft\n", 3, "unknown key type" },
	{ "[a]\nevents = x\nkey = ip/129\nmaxretry = 1\naction = nft\n", 3, "unknown key type" },
	{ "[a]\nevents = submission\nkey = account\nmaxretry = 1\nlimits = 1/1h\naction = hold\n", 5,
	  "maxretry and limits" },
	{ "[a]\nevents = x\naction = nft\n", 1, "needs maxretry" },
	{ "[a]\nevents = submission\nkey = account\nlimits = 100/1h, 5/\naction = hold\n", 4,
	  "malformed limit" },
	{ "[a]\nevents = submission\nkey = account\nlimits = 100\naction = hold\n", 4, "malformed limit" },
	{ "[a]\nevents = submission\nkey = account\nlimits = 1/1h\ncount = bytes\naction = hold\n", 5,
	  "count must be" },
	{ "[a]\nevents = queued\nkey = account\nlimits = 1/1h\ncount = recipients\naction = hold\n", 5,
	  "needs events to include submission" },
	{ "[a]\nevents = x\nmaxretry = 1\naction = nft\nignore = 10.0.0.0/33\n", 5, "bad CIDR" },
	{ "[a]\nevents = x\nmaxretry = 1\naction = nft\nignore = 300.1.2.3\n", 5, "bad CIDR" },
	{ "[a]\nevents = x\nmaxretry = 1\naction = nft\n[a]\nevents = y\nmaxretry = 1\naction = nft\n", 5,
	  "duplicate jail name" },
	{ "[r]\nevents = ban\nkey = domain\nmaxretry = 3\naction = hold\n", 3, "recidive" },
	{ "[a]\nevents = x\nmaxretry = 1\n", 1, "action is missing" },
	{ "[a]\nevents = x\nmaxretry = 1\naction = hold\n", 4, "action hold needs an account key" },
	{ "[a]\nmaxretry = 1\naction = nft\n", 1, "events is missing" },
	{ "[a]\nevents = x\nmaxretry = 1\naction = nft\nenabled = maybe\n", 5, "enabled" },
};

Test(jail, config_errors_with_file_line)
{
	for (size_t i = 0; i < sizeof(errcases) / sizeof(errcases[0]); i++) {
		const struct errcase *c = &errcases[i];
		char prefix[256];
		size_t n = 0;
		const char *msg = load_err(c->text, &n);
		snprintf(prefix, sizeof(prefix), "%s:%d: ", jpath, c->line);
		cr_assert(strncmp(msg, prefix, strlen(prefix)) == 0,
		    "case %zu: \"%s\" does not start with \"%s\"", i, msg, prefix);
		cr_assert(strstr(msg, c->needle) != NULL, "case %zu: \"%s\" lacks \"%s\"", i, msg,
		    c->needle);
	}
}

/* What a restart needs kept: the kinds a jail counts, and a queued line only
 * while a submission waits for it (the join then happens in record). */
Test(jail, want_event_is_what_restore_needs)
{
	struct jailset *js = load_text(
	    "[rcpt]\nevents = submission\nkey = account\nlimits = 10/1h\ncount = recipients\n"
	    "action = hold\nbantime = 1d\n"
	    "[sasl]\nevents = auth_failure\nkey = ip\nfindtime = 10m\nmaxretry = 5\n"
	    "action = nft\n"
	    "[recidive]\nevents = ban\nkey = ip\nfindtime = 1d\nmaxretry = 3\naction = nft\n");
	struct event e = mkev("auth_failure", T0, "192.0.2.1", NULL);
	struct event sub = mkev("submission", T0, "198.51.100.4", "alice");
	struct event q = mkev("queued", T0 + 1, NULL, NULL);

	cr_assert(jails_want_event(js, &e));
	e.type = "auth_disconnect";
	cr_assert(!jails_want_event(js, &e), "no jail counts it");
	e.type = "ban";
	cr_assert(!jails_want_event(js, &e), "bans reach recidive from verdicts, not lines");
	snprintf(sub.qid, sizeof(sub.qid), "AAA1");
	snprintf(q.qid, sizeof(q.qid), "AAA1");
	q.nrcpt = 3;
	cr_assert(!jails_want_event(js, &q), "no submission waits for it yet");
	cr_assert(jails_want_event(js, &sub));
	cr_assert_eq(jail_record_event(js, &sub, T0, out, JAIL_VERDICTS_MAX), 0);
	cr_assert(jails_want_event(js, &q), "its submission waits");
	cr_assert_eq(jail_record_event(js, &q, T0 + 1, out, JAIL_VERDICTS_MAX), 0);
	cr_assert(!jails_want_event(js, &q), "joined once: a retry's line is not needed");
	jails_free(js);
}

/* ---- spare_authenticated (issue 15) --------------------------------------- */

static const char *SPARE =
    "[sasl]\nevents = auth_failure\nkey = ip\nfindtime = 10m\nmaxretry = 5\n"
    "action = nft\nbantime = 1h\nspare_authenticated = 1d\n";

/* fail_until_ban - failures of ip 10 s apart from t; how many made the ban
 * (0: none within max) */
static int
fail_until_ban(struct jailset *js, int64_t t, const char *ip, int max)
{
	for (int i = 1; i <= max; i++)
		if (rec(js, "auth_failure", t + 10 * i, ip, "boss") > 0)
			return i;
	return 0;
}

Test(jail, spare_authenticated_needs_three_times_the_failures_after_a_login)
{
	struct jailset *js = load_text(SPARE);

	/* an office: alice sent mail from its NAT address an hour ago */
	cr_assert_eq(rec(js, "submission", T0, "198.51.100.10", "alice"), 0);
	cr_assert_eq(fail_until_ban(js, T0 + 3600, "198.51.100.10", 30), 15, "maxretry x 3");
	cr_assert(strstr(out[0].reason, "15 auth_failure in 10m") != NULL, "%s", out[0].reason);
	cr_assert(strstr(out[0].reason, "spared: an account logged in from it within 1d") != NULL,
	    "%s", out[0].reason);
	/* the other side: an address that only ever failed is banned at 5 */
	cr_assert_eq(fail_until_ban(js, T0 + 3600, "203.0.113.66", 30), 5);
	cr_assert(strstr(out[0].reason, "spared") == NULL, "%s", out[0].reason);
	jails_free(js);
}

Test(jail, spare_authenticated_ends_after_its_duration_and_is_off_by_default)
{
	struct jailset *js = load_text(SPARE), *plain = load_text(SASL);

	cr_assert_eq(rec(js, "submission", T0, "198.51.100.10", "alice"), 0);
	/* a day and a minute later the login no longer counts */
	cr_assert_eq(fail_until_ban(js, T0 + 86400 + 60, "198.51.100.10", 30), 5);
	jails_free(js);
	/* without the key, a login spares nothing */
	cr_assert_eq(rec(plain, "submission", T0, "198.51.100.10", "alice"), 0);
	cr_assert_eq(fail_until_ban(plain, T0 + 60, "198.51.100.10", 30), 5);
	jails_free(plain);
}

Test(jail, spare_factor_and_the_login_survive_a_restart)
{
	const char *text = "[sasl]\nevents = auth_failure\nkey = ip\nfindtime = 10m\nmaxretry = 4\n"
	    "action = nft\nbantime = 1h\nspare_authenticated = 12h\nspare_factor = 2\n";
	struct jailset *js = load_text(text);
	struct event login = mkev("submission", T0, "2001:db8::10", "alice");

	/* the login is an event the jails keep for a restart... */
	cr_assert(jails_want_event(js, &login));
	jails_free(js);
	/* ...and a restarted jailset restored from it spares the address */
	js = load_text(text);
	cr_assert_eq(jail_restore_event(js, &login), 0);
	cr_assert_eq(jails_longest_window(js), 12 * 3600, "restore reads back to the logins");
	cr_assert_eq(fail_until_ban(js, T0 + 600, "2001:db8::10", 30), 8, "maxretry x spare_factor");
	jails_free(js);
	/* the login's own address only: another in the same /64 is not spared */
	js = load_text(text);
	cr_assert_eq(jail_restore_event(js, &login), 0);
	cr_assert_eq(fail_until_ban(js, T0 + 600, "2001:db8::11", 30), 4);
	jails_free(js);
}

Test(jail, spare_authenticated_config_errors)
{
	const char *e;

	e = load_err("[q]\nevents = submission\nkey = account\nlimits = 10/1h\naction = hold\n"
	    "spare_authenticated = 1d\n", NULL);
	cr_assert(strstr(e, "t.jail:6: jail q: spare_authenticated is for failure jails") != NULL,
	    "%s", e);
	e = load_err("[a]\nevents = auth_failure\nkey = account\nmaxretry = 5\naction = hold\n"
	    "spare_authenticated = 1d\n", NULL);
	cr_assert(strstr(e, ":6: jail a: spare_authenticated is for failure jails") != NULL, "%s", e);
	e = load_err("[s]\nevents = auth_failure\nkey = ip\nmaxretry = 5\naction = nft\n"
	    "spare_factor = 3\n", NULL);
	cr_assert(strstr(e, ":6: jail s: spare_factor needs spare_authenticated") != NULL, "%s", e);
	e = load_err("[s]\nevents = auth_failure\nkey = ip\nmaxretry = 5\naction = nft\n"
	    "spare_authenticated = 1d\nspare_factor = 0\n", NULL);
	cr_assert(strstr(e, ":7: jail s: bad number for spare_factor") != NULL, "%s", e);
	e = load_err("[s]\nevents = auth_failure\nkey = ip\nmaxretry = 5\naction = nft\n"
	    "spare_authenticated = soon\n", NULL);
	cr_assert(strstr(e, ":6: jail s: bad duration for spare_authenticated") != NULL, "%s", e);
}
