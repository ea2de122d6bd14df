/*
 * test_detect - the jails' detections beyond the first set (issue 13), with
 * synthetic event sequences and exact verdicts:
 *   - outbound reputation: delivery refusals joined by queue id to the
 *     account that submitted the message (held; a retry counted once; links
 *     followed; bounces charged to no one; once per recipient domain; a
 *     session refusal and its delivery line once), the spread rule and its
 *     alarm for refusals about the server, and a restart;
 *   - a distributed brute force on one account: every address of the
 *     window banned, then each new one, recidive, a restart;
 *   - action defer, and the configuration each refuses with file:line;
 *   - a fleet: other nodes' events (ev.node) joined by their own queue ids,
 *     their listed refusals a spread of their own, late failures;
 *   - the delivery join explain makes (jail_join_delivery).
 * Each test writes its jail file to a fresh temp dir.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jail.h"
#include "msgtrace.h"
#include "testutil.h"

#define T0 1700000000LL

static char jpath[128];
static struct verdict out[JAIL_VERDICTS_MAX];

static struct jailset *
load_text(const char *text)
{
	return tu_jails_load_ok(text, jpath, sizeof(jpath));
}

/* load_err - text must fail with its first diag at file:line with needle */
static void
load_err(const char *text, int line, const char *needle)
{
	struct jailset *js = NULL;
	char prefix[256];
	struct diag d;

	diag_init(&d);
	cr_assert_eq(tu_jails_load(text, &js, &d, jpath, sizeof(jpath)), -1, "accepted:\n%s",
	    text);
	cr_assert_gt(d.n, 0);
	snprintf(prefix, sizeof(prefix), "%s:%d: ", jpath, line);
	cr_assert(strncmp(d.msgs[0], prefix, strlen(prefix)) == 0, "\"%s\" is not at %s",
	    d.msgs[0], prefix);
	cr_assert(strstr(d.msgs[0], needle) != NULL, "\"%s\" lacks \"%s\"", d.msgs[0], needle);
	diag_free(&d);
}

static struct event
ev(const char *type, int64_t t)
{
	struct event e;

	memset(&e, 0, sizeof(e));
	e.rule = "test-rule";
	e.type = type;
	e.time = t;
	e.nrcpt = -1;
	return e;
}

/* rec - record e at its own time, return the number of verdicts (in out) */
static int
rec(struct jailset *js, const struct event *e)
{
	int n = jail_record_event(js, e, e->time, out, JAIL_VERDICTS_MAX);

	cr_assert_geq(n, 0);
	return n;
}

static int
submit(struct jailset *js, int64_t t, const char *qid, const char *account)
{
	struct event e = ev("submission", t);

	snprintf(e.qid, sizeof(e.qid), "%s", qid);
	snprintf(e.user, sizeof(e.user), "%s", account);
	snprintf(e.ip, sizeof(e.ip), "198.51.100.4");
	return rec(js, &e);
}

/* refuse - a delivery refusal of qid (type remote_reject / remote_listed)
 * for rcpt ("" for a session line) */
static int
refuse(struct jailset *js, const char *type, int64_t t, const char *qid, const char *rcpt)
{
	struct event e = ev(type, t);

	snprintf(e.qid, sizeof(e.qid), "%s", qid);
	snprintf(e.rcpt, sizeof(e.rcpt), "%s", rcpt);
	return rec(js, &e);
}

static int
requeue(struct jailset *js, int64_t t, const char *qid, const char *newqid)
{
	struct event e = ev("requeued", t);

	snprintf(e.qid, sizeof(e.qid), "%s", qid);
	snprintf(e.newqid, sizeof(e.newqid), "%s", newqid);
	return rec(js, &e);
}

static int
fail_login(struct jailset *js, int64_t t, const char *ip, const char *user)
{
	struct event e = ev("auth_failure", t);

	snprintf(e.ip, sizeof(e.ip), "%s", ip);
	snprintf(e.user, sizeof(e.user), "%s", user ? user : "");
	return rec(js, &e);
}

static const char *REPUTATION =
    "[outbound-reputation]\nevents = remote_reject, remote_listed\nkey = account\n"
    "findtime = 1h\nmaxretry = 5\naction = hold\nbantime = 1d\n";

/* ---- outbound reputation ---------------------------------------------- */

Test(outbound, five_refused_messages_hold_the_account)
{
	struct jailset *js = load_text(REPUTATION);
	char qid[16];

	for (int i = 0; i < 5; i++) {
		snprintf(qid, sizeof(qid), "4AA%02d", i);
		cr_assert_eq(submit(js, T0 + i, qid, "mallory@example.org"), 0);
	}
	for (int i = 0; i < 4; i++) {
		snprintf(qid, sizeof(qid), "4AA%02d", i);
		cr_assert_eq(refuse(js, "remote_reject", T0 + 60 + i, qid, "x@gmail.example"), 0);
	}
	cr_assert_eq(refuse(js, "remote_reject", T0 + 100, "4AA04", "y@gmail.example"), 1);
	cr_assert_str_eq(out[0].jail, "outbound-reputation");
	cr_assert_str_eq(out[0].target, "mallory@example.org");
	cr_assert_eq(out[0].kind, TARGET_ACCOUNT);
	cr_assert_eq(out[0].actions, ACTION_HOLD);
	cr_assert_eq(out[0].started_at, T0 + 100);
	cr_assert_eq(out[0].expires_at, T0 + 100 + 86400);
	cr_assert_str_eq(out[0].reason, "5 remote_reject in 1h (rule test-rule)");
	jails_free(js);
}

Test(outbound, a_retried_message_counts_once_per_domain)
{
	struct jailset *js = load_text(REPUTATION);

	cr_assert_eq(submit(js, T0, "4BB01", "alice@example.org"), 0);
	/* Gmail defers the same message again and again: one count */
	for (int i = 0; i < 10; i++)
		cr_assert_eq(refuse(js, "remote_listed", T0 + 300 * i, "4BB01",
		    i % 2 ? "bob@GMAIL.example" : "carol@gmail.example"), 0);
	/* four more domains of the same message: five in all, held */
	cr_assert_eq(refuse(js, "remote_reject", T0 + 3000, "4BB01", "d@yahoo.example"), 0);
	cr_assert_eq(refuse(js, "remote_reject", T0 + 3001, "4BB01", "e@outlook.example"), 0);
	cr_assert_eq(refuse(js, "remote_reject", T0 + 3002, "4BB01", "f@mail.example"), 0);
	cr_assert_eq(refuse(js, "remote_reject", T0 + 3003, "4BB01", "g@mail.example"), 0,
	    "a second recipient of a domain counted already");
	cr_assert_eq(refuse(js, "remote_reject", T0 + 3004, "4BB01", "h@yandex.example"), 1);
	cr_assert_str_eq(out[0].target, "alice@example.org");
	jails_free(js);
}

Test(outbound, session_refusal_and_its_delivery_line_count_once)
{
	struct jailset *js = load_text(
	    "[r]\nevents = remote_reject\nkey = account\nfindtime = 1h\nmaxretry = 2\n"
	    "action = hold\n");

	cr_assert_eq(submit(js, T0, "4CC01", "alice"), 0);
	cr_assert_eq(submit(js, T0, "4CC02", "alice"), 0);
	/* "host mx1 said" (no recipient), then the delivery line: one */
	cr_assert_eq(refuse(js, "remote_reject", T0 + 1, "4CC01", ""), 0);
	cr_assert_eq(refuse(js, "remote_reject", T0 + 2, "4CC01", "b@gmail.example"), 0);
	cr_assert_eq(refuse(js, "remote_reject", T0 + 3, "4CC01", ""), 0, "a retry's session line");
	cr_assert_eq(refuse(js, "remote_reject", T0 + 4, "4CC01", "b@gmail.example"), 0);
	/* a second domain of that message does count */
	cr_assert_eq(refuse(js, "remote_reject", T0 + 5, "4CC01", "c@yahoo.example"), 1);
	cr_assert_str_eq(out[0].reason, "2 remote_reject in 1h (rule test-rule)");
	jails_free(js);
}

Test(outbound, links_are_followed_and_bounces_charge_no_one)
{
	struct jailset *js = load_text(
	    "[r]\nevents = remote_reject\nkey = account\nfindtime = 1h\nmaxretry = 3\n"
	    "action = hold\n");

	cr_assert_eq(submit(js, T0, "4DD01", "alice"), 0);
	/* amavis: 4DD01 sent to 127.0.0.1:10024, re-injected as 5EE01 */
	cr_assert_eq(requeue(js, T0 + 1, "4DD01", "5EE01"), 0);
	cr_assert_eq(refuse(js, "remote_reject", T0 + 2, "5EE01", "b@gmail.example"), 0);
	/* local(8) forwarding of another of her messages */
	cr_assert_eq(submit(js, T0 + 3, "4DD02", "alice"), 0);
	cr_assert_eq(requeue(js, T0 + 4, "4DD02", "6FF01"), 0);
	cr_assert_eq(requeue(js, T0 + 5, "6FF01", "7AA01"), 0, "two hops");
	cr_assert_eq(refuse(js, "remote_reject", T0 + 6, "7AA01", "c@gmail.example"), 0);
	/* Postfix's bounce of her message has its own queue id, from=<>, and
	 * no submission: charged to no one, however often refused */
	for (int i = 0; i < 5; i++)
		cr_assert_eq(refuse(js, "remote_reject", T0 + 10 + i, "8BB01", "x@gmail.example"), 0);
	/* a link never moves a message to another account: bob's 9CC01 is
	 * named again by a "queued as" of alice's message */
	cr_assert_eq(submit(js, T0 + 20, "9CC01", "bob"), 0);
	cr_assert_eq(requeue(js, T0 + 21, "4DD01", "9CC01"), 0);
	cr_assert_eq(refuse(js, "remote_reject", T0 + 22, "9CC01", "d@gmail.example"), 0);
	cr_assert_eq(refuse(js, "remote_reject", T0 + 23, "5EE01", "e@yahoo.example"), 1,
	    "alice's third: bob's refusal went to bob");
	cr_assert_str_eq(out[0].target, "alice");
	jails_free(js);
}

/* Thirty accounts refused the same way within the hour (the server's
 * address listed): none is held, one alarm says it. */
Test(outbound, listed_refusals_spread_over_many_accounts_hold_none)
{
	struct jailset *js = load_text(REPUTATION);
	struct alarm a;
	char qid[16], acct[32];
	int verdicts = 0;

	for (int round = 0; round < 6; round++) {
		for (int k = 0; k < 30; k++) {
			int64_t t = T0 + round * 300 + k;
			snprintf(qid, sizeof(qid), "5A%02d%02d", round, k);
			snprintf(acct, sizeof(acct), "user%02d@example.org", k);
			cr_assert_eq(submit(js, t, qid, acct), 0);
			verdicts += refuse(js, "remote_listed", t + 1, qid, "x@gmail.example");
		}
	}
	cr_assert_eq(verdicts, 0, "a listed server holds no one");
	cr_assert(jails_take_alarm(js, &a), "an alarm is raised");
	cr_assert_str_eq(a.jail, "outbound-reputation");
	cr_assert_str_eq(a.event, "remote_listed");
	cr_assert_eq(a.keys, 5, "raised when the spread showed: %" PRIu32, a.keys);
	cr_assert(strstr(a.reason, "looks listed") != NULL, "%s", a.reason);
	cr_assert(!jails_take_alarm(js, &a), "once per findtime, not once per refusal");
	/* refusals about the messages themselves still count, spread or not */
	for (int i = 0; i < 5; i++) {
		snprintf(qid, sizeof(qid), "5B%02d", i);
		cr_assert_eq(submit(js, T0 + 2000 + i, qid, "user07@example.org"), 0);
		verdicts += refuse(js, "remote_reject", T0 + 2000 + i, qid, "x@gmail.example");
	}
	cr_assert_eq(verdicts, 1);
	cr_assert_str_eq(out[0].target, "user07@example.org");
	jails_free(js);
}

/* One account causing nearly all of the listed refusals is held, even
 * though a few other accounts were refused the same way. */
Test(outbound, one_account_with_nearly_all_listed_refusals_is_held)
{
	struct jailset *js = load_text(
	    "[outbound-reputation]\nevents = remote_reject, remote_listed\nkey = account\n"
	    "findtime = 1h\nmaxretry = 20\naction = hold\nbantime = 1d\n");
	struct alarm a;
	char qid[16], acct[32];
	int n = 0, others = 0;

	for (int i = 0; i < 20; i++) {
		int64_t t = T0 + 60 * i;
		snprintf(qid, sizeof(qid), "6A%03d", i);
		cr_assert_eq(submit(js, t, qid, "spammer@example.org"), 0);
		n = refuse(js, "remote_listed", t + 1, qid, "x@gmail.example");
		if (i % 4 == 3 && others < 5) {
			/* an honest account now and then, refused the same way */
			snprintf(qid, sizeof(qid), "6B%03d", i);
			snprintf(acct, sizeof(acct), "honest%d@example.org", others++);
			cr_assert_eq(submit(js, t + 2, qid, acct), 0);
			cr_assert_eq(refuse(js, "remote_listed", t + 3, qid, "y@gmail.example"), 0);
		}
		if (i < 19)
			cr_assert_eq(n, 0, "refusal %d", i);
	}
	cr_assert_eq(n, 1, "20 of 25 listed refusals: the spammer is held");
	cr_assert_str_eq(out[0].target, "spammer@example.org");
	cr_assert(!jails_take_alarm(js, &a), "no alarm: one account is behind it");
	jails_free(js);
}

/* The join, the once-per-domain memory and the spread ride on the stored
 * events: restoring what jails_want_event kept rebuilds them. */
Test(outbound, restart_rebuilds_the_join_from_wanted_events)
{
	struct jailset *a = load_text(REPUTATION), *b = load_text(REPUTATION);
	struct event kept[64];
	size_t nkept = 0;
	struct event all[] = {
		ev("submission", T0), ev("requeued", T0 + 1), ev("remote_reject", T0 + 2),
		ev("remote_reject", T0 + 3), ev("submission", T0 + 4), ev("remote_reject", T0 + 5),
		ev("remote_reject", T0 + 6), ev("remote_reject", T0 + 7),
	};
	struct { const char *qid, *user, *newqid, *rcpt; } f[] = {
		{ "7AA01", "alice", "", "" }, { "7AA01", "", "7BB01", "" },
		{ "7BB01", "", "", "x@gmail.example" }, { "7BB01", "", "", "x@gmail.example" },
		{ "7AA02", "alice", "", "" }, { "7AA02", "", "", "y@gmail.example" },
		{ "7ZZ99", "", "", "z@gmail.example" }, { "7AA02", "", "", "z@yahoo.example" },
	};

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		snprintf(all[i].qid, sizeof(all[i].qid), "%s", f[i].qid);
		snprintf(all[i].user, sizeof(all[i].user), "%s", f[i].user);
		snprintf(all[i].newqid, sizeof(all[i].newqid), "%s", f[i].newqid);
		snprintf(all[i].rcpt, sizeof(all[i].rcpt), "%s", f[i].rcpt);
		if (jails_want_event(a, &all[i]))
			kept[nkept++] = all[i];
		cr_assert_eq(rec(a, &all[i]), 0);
	}
	/* the refusal of a queue id no submission named is not needed... */
	cr_assert_eq(nkept, 7, "kept %zu", nkept);
	for (size_t i = 0; i < nkept; i++)
		cr_assert_str_neq(kept[i].qid, "7ZZ99");
	for (size_t i = 0; i < nkept; i++)
		cr_assert_eq(jail_restore_event(b, &kept[i]), 0);
	/* ...and both jailsets now decide the same: 3 counted, 2 to go */
	for (int i = 0; i < 2; i++) {
		struct jailset *js = i ? b : a;
		cr_assert_eq(refuse(js, "remote_reject", T0 + 8, "7BB01", "x@gmail.example"), 0,
		    "a retry after the restart is still the same message");
		cr_assert_eq(refuse(js, "remote_reject", T0 + 9, "7AA01", "w@mail.example"), 0);
		cr_assert_eq(refuse(js, "remote_reject", T0 + 10, "7BB01", "v@yandex.example"), 1,
		    "jailset %s", i ? "restored" : "live");
	}
	jails_free(a);
	jails_free(b);
}

/* ---- distributed brute force on one account --------------------------- */

static const char *TARGETED =
    "[sasl-targeted-account]\nevents = auth_failure\nkey = account\nfindtime = 1h\n"
    "maxretry = 20\naction = nft\nbantime = 1h\nfactor = 2\nmaxbantime = 1w\n";

/* 20 addresses, one failure each, against ceo@: 19 do nothing; the 20th
 * watches the account and bans all 20 addresses */
static void
attack(struct jailset *js, int64_t t0, int first)
{
	char ip[32];

	for (int i = 0; i < 19; i++) {
		snprintf(ip, sizeof(ip), "203.0.113.%d", first + i);
		cr_assert_eq(fail_login(js, t0 + 60 * i, ip, "ceo@example.org"), 0, "%s", ip);
	}
	snprintf(ip, sizeof(ip), "2001:db8:77::%x", first + 19);
	cr_assert_eq(fail_login(js, t0 + 60 * 19, ip, "ceo@example.org"), 21);
}

Test(targeted, every_address_of_the_window_then_each_new_one)
{
	struct jailset *js = load_text(TARGETED);
	int64_t t = T0 + 60 * 19;

	attack(js, T0, 1);
	cr_assert_str_eq(out[0].target, "ceo@example.org");
	cr_assert_eq(out[0].kind, TARGET_ACCOUNT);
	cr_assert_eq(out[0].actions, 0, "the account is watched, not held");
	cr_assert_eq(out[0].expires_at, t + 3600);
	cr_assert_str_eq(out[0].reason, "20 auth_failure in 1h from 20 addresses (rule "
	    "test-rule): each is banned while this lasts");
	for (int i = 1; i <= 20; i++) {
		char ip[32];
		if (i < 20)
			snprintf(ip, sizeof(ip), "203.0.113.%d", i);
		else
			snprintf(ip, sizeof(ip), "2001:db8:77::14");
		cr_assert_str_eq(out[i].target, ip);
		cr_assert_eq(out[i].kind, TARGET_IP);
		cr_assert_eq(out[i].actions, ACTION_NFT);
		cr_assert_eq(out[i].level, 1);
		cr_assert_eq(out[i].started_at, t);
		cr_assert_eq(out[i].expires_at, t + 3600);
		cr_assert_str_eq(out[i].reason,
		    "auth_failure against attacked account ceo@example.org (20 in 1h)");
	}
	/* while the watch lasts, each new address at its first failure */
	cr_assert_eq(fail_login(js, t + 10, "198.51.100.200", "ceo@example.org"), 1);
	cr_assert_str_eq(out[0].target, "198.51.100.200");
	cr_assert_eq(fail_login(js, t + 11, "198.51.100.200", "ceo@example.org"), 0,
	    "banned already");
	cr_assert_eq(fail_login(js, t + 12, "203.0.113.5", "ceo@example.org"), 0);
	/* other accounts are counted on their own */
	cr_assert_eq(fail_login(js, t + 13, "198.51.100.201", "cfo@example.org"), 0);
	/* the watch ends: counting starts fresh, a new failure bans nobody */
	cr_assert_eq(fail_login(js, t + 3600, "198.51.100.202", "ceo@example.org"), 0);
	jails_free(js);
}

Test(targeted, failures_without_a_user_name_do_not_count)
{
	struct jailset *js = load_text(TARGETED);
	char ip[32];

	for (int i = 0; i < 40; i++) {
		snprintf(ip, sizeof(ip), "203.0.113.%d", i + 1);
		cr_assert_eq(fail_login(js, T0 + i, ip, NULL), 0);
	}
	jails_free(js);
}

Test(targeted, ignored_addresses_count_but_are_never_banned)
{
	struct jailset *js = load_text(
	    "[t]\nevents = auth_failure\nkey = account\nfindtime = 1h\nmaxretry = 3\n"
	    "action = nft\nignore = 127.0.0.0/8, 192.0.2.0/24\n");

	cr_assert_eq(fail_login(js, T0, "127.0.0.1", "ceo"), 0);
	cr_assert_eq(fail_login(js, T0 + 1, "192.0.2.9", "ceo"), 0);
	/* the third failure watches ceo; only this address is banned */
	cr_assert_eq(fail_login(js, T0 + 2, "203.0.113.9", "ceo"), 2);
	cr_assert_str_eq(out[0].target, "ceo");
	cr_assert_str_eq(out[1].target, "203.0.113.9");
	cr_assert_eq(fail_login(js, T0 + 3, "192.0.2.10", "ceo"), 0, "ignored, never banned");
	jails_free(js);
}

Test(targeted, recidive_sees_the_address_bans_not_the_watch)
{
	struct jailset *js = load_text(
	    "[t]\nevents = auth_failure\nkey = account\nfindtime = 1h\nmaxretry = 2\n"
	    "action = nft\nbantime = 1m\n"
	    "[recidive]\nevents = ban\nkey = ip\nfindtime = 1d\nmaxretry = 2\naction = nft\n"
	    "bantime = 1w\n"
	    "[recidive-accounts]\nevents = ban\nkey = account\nfindtime = 1d\nmaxretry = 1\n"
	    "action = hold\n");

	cr_assert_eq(fail_login(js, T0, "203.0.113.1", "ceo"), 0);
	cr_assert_eq(fail_login(js, T0 + 1, "203.0.113.2", "ceo"), 3, "watch, two bans");
	cr_assert_eq(out[0].kind, TARGET_ACCOUNT);
	/* the next attack on another account, from 203.0.113.1 again */
	cr_assert_eq(fail_login(js, T0 + 100, "203.0.113.1", "cfo"), 0);
	cr_assert_eq(fail_login(js, T0 + 101, "203.0.113.3", "cfo"), 4);
	cr_assert_str_eq(out[1].target, "203.0.113.1");
	cr_assert_str_eq(out[2].jail, "recidive", "its second ban: recidive");
	cr_assert_str_eq(out[2].target, "203.0.113.1");
	cr_assert_str_eq(out[3].target, "203.0.113.3");
	jails_free(js);
}

/* A restart restores the watch (a row of kind account) and the addresses'
 * bans from the store, and the events of the window: a new address is
 * banned at once, as it would have been. */
Test(targeted, restart_restores_the_watch)
{
	struct jailset *a = load_text(TARGETED), *b = load_text(TARGETED);
	int64_t t = T0 + 60 * 19;
	struct verdict v[JAIL_VERDICTS_MAX];
	int n;

	attack(a, T0, 1);
	n = 21;
	memcpy(v, out, sizeof(v));
	for (int i = 0; i < n; i++)
		cr_assert_eq(jail_restore_ban(b, v[i].jail, v[i].target, v[i].kind, v[i].level,
		    v[i].started_at, v[i].expires_at, 0), 0);
	cr_assert_eq(fail_login(b, t + 60, "198.51.100.9", "ceo@example.org"), 1);
	cr_assert_str_eq(out[0].target, "198.51.100.9");
	cr_assert_eq(out[0].kind, TARGET_IP);
	cr_assert_eq(fail_login(b, t + 61, "203.0.113.4", "ceo@example.org"), 0,
	    "banned before the restart");
	/* an account named like an address is an account: no collision */
	cr_assert_eq(jail_restore_ban(b, "sasl-targeted-account", "198.51.100.10",
	    TARGET_ACCOUNT, 1, t, t + 3600, 0), 0);
	cr_assert_eq(fail_login(b, t + 62, "198.51.100.10", "someone"), 0);
	cr_assert_eq(fail_login(b, t + 63, "198.51.100.11", "198.51.100.10"), 1);
	cr_assert_str_eq(out[0].target, "198.51.100.11");
	/* lifting the watch (release) ends it */
	cr_assert_eq(jail_lift(b, NULL, "ceo@example.org", t + 70), 1);
	cr_assert_eq(fail_login(b, t + 71, "198.51.100.12", "ceo@example.org"), 0);
	jails_free(a);
	jails_free(b);
}

/* An address some account logged in from (an office's NAT) is left to
 * the jails keyed by ip: the targeted jail never bans it, in the window or
 * during the watch, while its failures still count for the account. */
Test(targeted, spared_addresses_count_but_are_left_to_the_ip_jails)
{
	struct jailset *js = load_text(
	    "[sasl-targeted-account]\nevents = auth_failure\nkey = account\nfindtime = 1h\n"
	    "maxretry = 20\naction = nft\nbantime = 1h\nspare_authenticated = 1d\n");
	struct event login = ev("submission", T0 - 600);
	char ip[32];
	int n;

	snprintf(login.ip, sizeof(login.ip), "203.0.113.3");
	snprintf(login.user, sizeof(login.user), "alice@example.org");
	snprintf(login.qid, sizeof(login.qid), "4F0A01");
	cr_assert_eq(rec(js, &login), 0);
	cr_assert(jails_want_event(js, &login), "the login is kept for a restart");
	for (int i = 1; i < 20; i++) {
		snprintf(ip, sizeof(ip), "203.0.113.%d", i);
		cr_assert_eq(fail_login(js, T0 + 60 * i, ip, "ceo@example.org"), 0, "%s", ip);
	}
	n = fail_login(js, T0 + 60 * 20, "203.0.113.20", "ceo@example.org");
	cr_assert_eq(n, 20, "the watch and 19 addresses: %d", n);
	cr_assert_str_eq(out[0].reason, "20 auth_failure in 1h from 20 addresses (rule "
	    "test-rule): each is banned while this lasts (1 spared: an account logged in from "
	    "it within 1d)");
	for (int i = 1; i < n; i++)
		cr_assert_str_neq(out[i].target, "203.0.113.3");
	cr_assert_eq(fail_login(js, T0 + 60 * 21, "203.0.113.3", "ceo@example.org"), 0,
	    "spared during the watch too");
	cr_assert_eq(fail_login(js, T0 + 60 * 22, "198.51.100.77", "ceo@example.org"), 1);
	jails_free(js);
	load_err("[a]\nevents = auth_failure\nkey = account\nmaxretry = 3\naction = nft\n"
	    "spare_authenticated = 1d\nspare_factor = 2\n", 7, "spare_factor is for jails keyed by ip");
	load_err("[a]\nevents = auth_failure\nkey = account\nmaxretry = 3\naction = hold\n"
	    "spare_authenticated = 1d\n", 6, "spare_authenticated is for failure jails");
}

/* ---- a fleet: other nodes' events ------------------------------------- */

/* from - e as a line of node's log */
static struct event
from(const char *node, struct event e)
{
	e.node = node;
	return e;
}

/* Queue ids are unique per host only: mx2's 4AA01 is another message
 * than this node's 4AA01, and mx3's another again. */
Test(fleet, queue_ids_are_joined_per_node)
{
	struct jailset *js = load_text(
	    "[r]\nevents = remote_reject\nkey = account\nfindtime = 1h\nmaxretry = 2\n"
	    "action = hold\n");
	struct event sub = ev("submission", T0), ref = ev("remote_reject", T0 + 10);
	struct event link = ev("requeued", T0 + 5);

	snprintf(sub.qid, sizeof(sub.qid), "4AA01");
	snprintf(ref.qid, sizeof(ref.qid), "4AA01");
	snprintf(link.qid, sizeof(link.qid), "4AA01");
	snprintf(link.newqid, sizeof(link.newqid), "5BB01");
	snprintf(sub.user, sizeof(sub.user), "alice");
	cr_assert_eq(rec(js, &sub), 0);
	snprintf(sub.user, sizeof(sub.user), "bob");
	{
		struct event s2 = from("mx2", sub);
		cr_assert_eq(rec(js, &s2), 0);
	}
	/* mx3 never submitted 4AA01: its refusal is no one's */
	snprintf(ref.rcpt, sizeof(ref.rcpt), "x@gmail.example");
	{
		struct event r3 = from("mx3", ref);
		cr_assert_eq(rec(js, &r3), 0);
	}
	/* mx2's message, through its own filter, refused twice: bob is held */
	{
		struct event l2 = from("mx2", link), r2 = from("mx2", ref);
		cr_assert_eq(rec(js, &l2), 0);
		snprintf(r2.qid, sizeof(r2.qid), "5BB01");
		cr_assert_eq(rec(js, &r2), 0);
		snprintf(r2.rcpt, sizeof(r2.rcpt), "y@yahoo.example");
		cr_assert_eq(rec(js, &r2), 1);
		cr_assert_str_eq(out[0].target, "bob");
	}
	/* this node's 5BB01 was never linked: alice's refusals are her own */
	snprintf(ref.qid, sizeof(ref.qid), "5BB01");
	cr_assert_eq(rec(js, &ref), 0);
	snprintf(ref.qid, sizeof(ref.qid), "4AA01");
	cr_assert_eq(rec(js, &ref), 0);
	snprintf(ref.rcpt, sizeof(ref.rcpt), "z@yandex.example");
	cr_assert_eq(rec(js, &ref), 1);
	cr_assert_str_eq(out[0].target, "alice");
	jails_free(js);
}

/* The recipients join (count = recipients) pairs a node's queued line
 * with that node's submission. */
Test(fleet, the_recipients_join_is_per_node_too)
{
	struct jailset *js = load_text(
	    "[q]\nevents = submission\nkey = account\nlimits = 10/1h\ncount = recipients\n"
	    "action = hold\n");
	struct event sub = ev("submission", T0), q = ev("queued", T0 + 1);

	snprintf(sub.qid, sizeof(sub.qid), "4AA01");
	snprintf(sub.user, sizeof(sub.user), "alice");
	snprintf(sub.ip, sizeof(sub.ip), "198.51.100.4");
	snprintf(q.qid, sizeof(q.qid), "4AA01");
	q.nrcpt = 50;
	cr_assert_eq(rec(js, &sub), 0);
	/* mx2's queued line for its own 4AA01 is not alice's message */
	{
		struct event q2 = from("mx2", q);
		cr_assert_eq(rec(js, &q2), 0);
	}
	q.nrcpt = 5;
	cr_assert_eq(rec(js, &q), 0, "5 recipients: under 10");
	jails_free(js);
}

/* A listed server is one node's address: mx2's listed refusals over many
 * accounts hold no one here either, but the alarm is mx2's to raise;
 * this node's own spread raises it here. */
Test(fleet, a_listed_server_is_one_nodes_and_so_is_its_alarm)
{
	struct jailset *js = load_text(REPUTATION);
	struct alarm a;
	char qid[16], acct[32];
	int verdicts = 0;

	for (int k = 0; k < 30; k++) {
		struct event sub = ev("submission", T0 + k), ref = ev("remote_listed", T0 + k);
		snprintf(qid, sizeof(qid), "5A%02d", k);
		snprintf(acct, sizeof(acct), "user%02d@example.org", k);
		snprintf(sub.qid, sizeof(sub.qid), "%s", qid);
		snprintf(sub.user, sizeof(sub.user), "%s", acct);
		snprintf(ref.qid, sizeof(ref.qid), "%s", qid);
		snprintf(ref.rcpt, sizeof(ref.rcpt), "x@gmail.example");
		sub.node = ref.node = "mx2";
		verdicts += rec(js, &sub) + rec(js, &ref);
		verdicts += rec(js, &ref);   /* a retry */
	}
	cr_assert_eq(verdicts, 0);
	cr_assert(!jails_take_alarm(js, &a), "mx2 says it, not this node");
	/* this node's refusals: 4 accounts, under the spread's 5, each counts
	 * (mx2's spread does not make it 5) */
	for (int k = 0; k < 4; k++) {
		snprintf(qid, sizeof(qid), "6A%02d", k);
		snprintf(acct, sizeof(acct), "local%02d@example.org", k);
		cr_assert_eq(submit(js, T0 + 100 + k, qid, acct), 0);
		cr_assert_eq(refuse(js, "remote_listed", T0 + 100 + k, qid, "x@gmail.example"), 0);
	}
	cr_assert(!jails_take_alarm(js, &a));
	cr_assert_eq(submit(js, T0 + 110, "6A99", "local99@example.org"), 0);
	cr_assert_eq(refuse(js, "remote_listed", T0 + 110, "6A99", "x@gmail.example"), 0);
	cr_assert(jails_take_alarm(js, &a), "this node's own spread: its alarm");
	cr_assert_eq(a.keys, 5);
	jails_free(js);
}

/* Another node's failures come late, after later ones were counted: the
 * window they complete ends at a later failure, and its addresses are
 * those banned. */
Test(fleet, a_late_failure_completes_a_later_window)
{
	struct jailset *js = load_text(TARGETED);
	char ip[32];
	int n;

	/* this node: 19 failures, at T0 + 60 .. T0 + 1140 */
	for (int i = 1; i < 20; i++) {
		snprintf(ip, sizeof(ip), "203.0.113.%d", i);
		cr_assert_eq(fail_login(js, T0 + 60 * i, ip, "ceo@example.org"), 0);
	}
	/* mx2's failure at T0 + 30 arrives now: the window (T0 + 1140 - 1h,
	 * T0 + 1140] holds 20 */
	{
		struct event e = ev("auth_failure", T0 + 30);
		e.node = "mx2";
		snprintf(e.ip, sizeof(e.ip), "198.51.100.30");
		snprintf(e.user, sizeof(e.user), "ceo@example.org");
		n = jail_record_event(js, &e, T0 + 1200, out, JAIL_VERDICTS_MAX);
	}
	cr_assert_eq(n, 21, "the watch and 20 addresses: %d", n);
	cr_assert_str_eq(out[0].target, "ceo@example.org");
	cr_assert_str_eq(out[1].target, "198.51.100.30", "oldest first, in time");
	cr_assert_str_eq(out[2].target, "203.0.113.1");
	cr_assert_str_eq(out[20].target, "203.0.113.19");
	jails_free(js);
}

/* ---- explain's join --------------------------------------------------- */

/* jail_join_delivery charges a refusal as the jails do: once per message
 * and recipient domain, through links, per node. */
Test(explain_join, refusals_get_their_account_once_per_domain)
{
	struct msgtrace m = { 0 };
	struct event sub = ev("submission", T0), link = ev("requeued", T0 + 1);
	struct event ref = ev("remote_reject", T0 + 2);

	snprintf(sub.qid, sizeof(sub.qid), "4AA01");
	snprintf(sub.user, sizeof(sub.user), "alice");
	snprintf(link.qid, sizeof(link.qid), "4AA01");
	snprintf(link.newqid, sizeof(link.newqid), "5BB01");
	cr_assert_eq(jail_join_delivery(&m, &sub), 0);
	cr_assert_eq(jail_join_delivery(&m, &link), 0);
	snprintf(ref.qid, sizeof(ref.qid), "5BB01");
	snprintf(ref.rcpt, sizeof(ref.rcpt), "x@gmail.example");
	cr_assert_eq(jail_join_delivery(&m, &ref), 1);
	cr_assert_str_eq(ref.user, "alice");
	ref.user[0] = '\0';
	cr_assert_eq(jail_join_delivery(&m, &ref), 0, "a retry");
	cr_assert_str_eq(ref.user, "", "not charged again");
	ref.node = "mx2";
	cr_assert_eq(jail_join_delivery(&m, &ref), 0, "mx2's 5BB01 is another message");
	msgtrace_free(&m);
}

/* ---- action defer ----------------------------------------------------- */

Test(defer, quota_defers_with_the_reply)
{
	struct jailset *js = load_text(
	    "[quota]\nevents = submission\nkey = account\nlimits = 2/1h\naction = defer\n"
	    "bantime = 1h\n"
	    "[custom]\nevents = submission\nkey = domain\nlimits = 2/1h\naction = defer\n"
	    "reply = 421 4.7.0 Slow down, please\n");
	struct verdict v;

	cr_assert_eq(jails_actions(js, 0), ACTION_DEFER);
	cr_assert_eq(submit(js, T0, "8A1", "alice@example.org"), 0);
	cr_assert_eq(submit(js, T0 + 1, "8A2", "alice@example.org"), 0);
	cr_assert_eq(submit(js, T0 + 2, "8A3", "alice@example.org"), 2);
	cr_assert_str_eq(out[0].target, "alice@example.org");
	cr_assert_eq(out[0].actions, ACTION_DEFER);
	cr_assert_str_eq(out[0].reply, "450 4.7.1 Too much mail from your account, try again later");
	cr_assert_str_eq(out[1].target, "example.org");
	cr_assert_str_eq(out[1].reply, "421 4.7.0 Slow down, please");
	/* by hand, too */
	cr_assert_eq(jail_manual_verdict(js, "quota", "bob", TARGET_ACCOUNT, 600, T0, &v), 0);
	cr_assert_eq(v.actions, ACTION_DEFER);
	cr_assert_eq(jail_manual_verdict(js, "quota", "192.0.2.1", TARGET_IP, 600, T0, &v), -1);
	jails_free(js);
}

Test(defer, nonsense_is_refused_with_file_line)
{
	load_err("[a]\nevents = auth_failure\nkey = ip\nmaxretry = 3\naction = defer\n", 5,
	    "action defer needs an account key");
	load_err("[a]\nevents = submission\nkey = account\nlimits = 3/1h\naction = hold, defer\n",
	    5, "hold and defer cannot be combined");
	load_err("[a]\nevents = submission\nkey = account\nlimits = 3/1h\naction = defer\n"
	    "reply = 554 5.7.1 Go away\n", 6, "the reply of defer must be a temporary failure");
	load_err("[a]\nevents = submission\nkey = account\nlimits = 3/1h\naction = defer\n"
	    "reply = 450\x01 x\n", 6, "temporary failure");
	load_err("[a]\nevents = auth_failure\nkey = sender\nmaxretry = 3\naction = nft\n", 5,
	    "actions nft and reject need an ip key");
	load_err("[a]\nevents = auth_failure\nkey = account\nlimits = 3/1h\naction = nft\n", 4,
	    "maxretry and findtime, not limits");
	load_err("[a]\nevents = auth_failure\nkey = account\nmaxretry = 3\naction = nft, hold\n",
	    5, "cannot also hold or defer the account");
}

/* ---- check-config: keys no event carries ------------------------------ */

/* carries - what the shipped rules capture, as the jails see it */
static bool
carries(void *arg, const char *event, const char *field)
{
	static const char *const have[][2] = {
		{ "auth_failure", "ip" }, { "auth_failure", "user" }, { "submission", "ip" },
		{ "submission", "user" }, { "queued", "sender" }, { "relay_denied", "ip" },
		{ "remote_reject", "rcpt" }, { "remote_listed", "rcpt" },
	};

	(void)arg;
	for (size_t i = 0; i < sizeof(have) / sizeof(have[0]); i++)
		if (strcmp(have[i][0], event) == 0 && strcmp(have[i][1], field) == 0)
			return true;
	return false;
}

static int
check_keys(const char *text, char *first, size_t len)
{
	struct jailset *js = load_text(text);
	struct diag d;
	int n;

	diag_init(&d);
	n = jails_check_keys(js, carries, NULL, &d);
	snprintf(first, len, "%s", d.n ? d.msgs[0] : "");
	diag_free(&d);
	jails_free(js);
	return n;
}

Test(check_keys, keys_no_event_carries_are_refused)
{
	char first[512], want[256];

	cr_assert_eq(check_keys("[a]\nevents = relay_denied\nkey = account\nmaxretry = 3\n"
	    "action = hold\n", first, sizeof(first)), 1);
	snprintf(want, sizeof(want), "%s:3: jail a: key account, but no rule gives event "
	    "\"relay_denied\" an account (user)", jpath);
	cr_assert_str_eq(first, want);
	cr_assert_eq(check_keys("[a]\nevents = remote_reject\nkey = sender\nmaxretry = 3\n"
	    "action = hold\n", first, sizeof(first)), 1);
	/* what the joins bring counts */
	cr_assert_eq(check_keys("[a]\nevents = remote_reject, remote_listed\nkey = account\n"
	    "maxretry = 3\naction = hold\n"
	    "[b]\nevents = submission\nkey = sender\nlimits = 3/1h\naction = hold\n"
	    "[c]\nevents = submission\nkey = domain\nlimits = 3/1h\naction = defer\n"
	    "[d]\nevents = auth_failure\nkey = account\nmaxretry = 3\naction = nft\n"
	    "[e]\nevents = ban\nkey = account\nmaxretry = 3\nfindtime = 1d\naction = hold\n",
	    first, sizeof(first)), 0, "%s", first);
}
