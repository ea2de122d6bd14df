/*
 * test_msgtrace - the bookkeeping behind the new detections, each on its
 * own: keytab (a string-keyed table, against a plain array on random
 * operations), msgtrace (queue ids to accounts, links, once per message and
 * domain, bounds, expiry), spread (events over keys in a window) and
 * addrlog (addresses that failed against an account).
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addrlog.h"
#include "keytab.h"
#include "msgtrace.h"
#include "spread.h"

/* ---- keytab ----------------------------------------------------------- */

#define MODEL_KEYS 600

static bool
odd(void *payload, const void *arg)
{
	(void)arg;
	return *(uint32_t *)payload & 1;
}

/* Random put/get/del/resize/sweep against a plain array: the table
 * answers as the model does, payloads keep their bytes across growth and
 * deletion (backward shift) and sweeps. */
Test(keytab, agrees_with_a_plain_array)
{
	static struct { bool in; uint32_t val; size_t size; } model[MODEL_KEYS];
	struct keytab t = { 0 };
	uint64_t r = 88172645463325252ULL;
	char key[32];

	for (int step = 0; step < 200000; step++) {
		unsigned k, op;
		size_t klen;
		bool created;
		uint32_t *p;

		r ^= r << 13;
		r ^= r >> 7;
		r ^= r << 17;
		k = (unsigned)(r % MODEL_KEYS);
		op = (unsigned)((r >> 32) % 100);
		klen = (size_t)snprintf(key, sizeof(key), "key-%u", k);
		if (op < 40) {
			p = keytab_put(&t, key, klen, 8, &created);
			cr_assert_not_null(p);
			cr_assert_eq(created, !model[k].in, "step %d", step);
			if (created) {
				cr_assert_eq(p[0], 0, "a new payload is zeroed");
				model[k].in = true;
				model[k].size = 8;
			}
			p[0] = model[k].val = (uint32_t)(r >> 8);
		} else if (op < 70) {
			p = keytab_get(&t, key, klen);
			cr_assert_eq(p != NULL, model[k].in, "step %d key %u", step, k);
			if (p)
				cr_assert_eq(p[0], model[k].val);
		} else if (op < 90) {
			cr_assert_eq(keytab_del(&t, key, klen), model[k].in);
			model[k].in = false;
		} else if (op < 99) {
			p = keytab_resize(&t, key, klen, 64);
			cr_assert_eq(p != NULL, model[k].in);
			if (p) {
				cr_assert_eq(p[0], model[k].val, "kept across a resize");
				cr_assert_eq(p[15], 0, "the new bytes are zeroed");
			}
		} else {
			uint32_t n = 0;
			/* keep the odd values only */
			keytab_sweep(&t, odd, NULL);
			for (unsigned i = 0; i < MODEL_KEYS; i++) {
				if (model[i].in && !(model[i].val & 1))
					model[i].in = false;
				n += model[i].in;
			}
			cr_assert_eq(t.tab.n, n);
		}
	}
	keytab_free(&t);
	cr_assert_eq(t.tab.n, 0);
}

/* ---- msgtrace --------------------------------------------------------- */

Test(msgtrace, owner_links_and_first_owner_wins)
{
	struct msgtrace m = { 0 };
	struct msgtrace_owner o;

	cr_assert_eq(msgtrace_submission(&m, "4AA1", "alice", 100), 1);
	cr_assert_eq(msgtrace_submission(&m, "4AA1", "bob", 101), 0,
	    "a queue id has one owner");
	cr_assert_eq(msgtrace_submission(&m, "", "bob", 101), 0);
	cr_assert_eq(msgtrace_link(&m, "4AA1", "5BB1", 102), 1);
	cr_assert_eq(msgtrace_link(&m, "5BB1", "6CC1", 103), 1);
	cr_assert_eq(msgtrace_link(&m, "9ZZ9", "7DD1", 103), 0, "unknown: charged to no one");
	cr_assert_eq(msgtrace_submission(&m, "8EE1", "carol", 104), 1);
	cr_assert_eq(msgtrace_link(&m, "4AA1", "8EE1", 105), 0, "owned already");
	cr_assert(msgtrace_owner(&m, "6CC1", &o));
	cr_assert_str_eq(o.root, "4AA1");
	cr_assert_str_eq(o.account, "alice");
	cr_assert_eq(o.time, 103);
	cr_assert(msgtrace_owner(&m, "8EE1", &o));
	cr_assert_str_eq(o.account, "carol");
	cr_assert_str_eq(o.root, "8EE1", "a submission is its own root");
	cr_assert(!msgtrace_known(&m, "7DD1"));
	msgtrace_free(&m);
}

Test(msgtrace, once_per_message_and_domain)
{
	struct msgtrace m = { 0 };

	cr_assert_eq(msgtrace_first_refusal(&m, "4AA1", "gmail.example", 1), 1);
	cr_assert_eq(msgtrace_first_refusal(&m, "4AA1", "GMAIL.example", 2), 0, "case folded");
	cr_assert_eq(msgtrace_first_refusal(&m, "4AA1", "yahoo.example", 3), 1);
	cr_assert_eq(msgtrace_first_refusal(&m, "4AA1", NULL, 4), 0,
	    "a session line after domains adds nothing");
	/* a session line first stands for the first domain after it */
	cr_assert_eq(msgtrace_first_refusal(&m, "4BB2", "", 5), 1);
	cr_assert_eq(msgtrace_first_refusal(&m, "4BB2", "", 6), 0);
	cr_assert_eq(msgtrace_first_refusal(&m, "4BB2", "gmail.example", 7), 0);
	cr_assert_eq(msgtrace_first_refusal(&m, "4BB2", "yahoo.example", 8), 1);
	msgtrace_free(&m);
}

Test(msgtrace, bounded_and_expired)
{
	struct msgtrace m = { 0 };
	char qid[16];
	struct msgtrace_owner o;

	for (int i = 0; i < MSGTRACE_MAX; i++) {
		snprintf(qid, sizeof(qid), "Q%07d", i);
		cr_assert_eq(msgtrace_submission(&m, qid, "a", i < 10 ? 10 : 1000), 1);
	}
	cr_assert_eq(msgtrace_submission(&m, "QFULL", "a", 1000), 0, "full: not traced");
	cr_assert_eq(msgtrace_first_refusal(&m, "Q0000001", "x", 10), 1);
	msgtrace_expire(&m, 500);
	cr_assert(!msgtrace_owner(&m, "Q0000001", &o), "submitted before the cut");
	cr_assert(msgtrace_owner(&m, "Q0000011", &o));
	cr_assert_eq(msgtrace_first_refusal(&m, "Q0000001", "x", 1000), 1,
	    "the charged pair went with it");
	cr_assert_eq(msgtrace_submission(&m, "QFULL", "a", 1000), 1, "room again");
	msgtrace_free(&m);
}

/* ---- spread ----------------------------------------------------------- */

Test(spread, counts_events_keys_and_a_share_in_the_window)
{
	struct spread s = { 0 };
	struct spread_stats st;
	char key[16];

	for (int i = 0; i < 30; i++) {
		snprintf(key, sizeof(key), "k%d", i % 6);
		cr_assert_eq(spread_add(&s, 100 + i, NULL, key), 0);
	}
	spread_stats(&s, 129, 100, NULL, "k0", &st);
	cr_assert_eq(st.events, 30);
	cr_assert_eq(st.keys, 6);
	cr_assert_eq(st.mine, 5);
	cr_assert_eq(st.top, 5);
	/* the window (t - w, t]: events at 100..109 are out at t = 129, w = 20 */
	spread_stats(&s, 129, 20, NULL, "k0", &st);
	cr_assert_eq(st.events, 20);
	cr_assert_eq(st.mine, 3);
	spread_stats(&s, 129, 100, NULL, "nobody", &st);
	cr_assert_eq(st.mine, 0);
	cr_assert_eq(spread_add(&s, 130, NULL, "k1"), 0);
	spread_stats(&s, 130, 100, NULL, "k0", &st);
	cr_assert_eq(st.top, 6, "the busiest key");
	/* a full ring keeps the newest */
	for (int i = 0; i < SPREAD_EVENTS_MAX; i++)
		cr_assert_eq(spread_add(&s, 200, NULL, "one"), 0);
	spread_stats(&s, 200, 1000, NULL, "one", &st);
	cr_assert_eq(st.events, SPREAD_EVENTS_MAX);
	cr_assert_eq(st.keys, 1);
	cr_assert_eq(st.top, SPREAD_EVENTS_MAX);
	spread_free(&s);
}

/* A listed server is one node's: another node's refusals are its own
 * spread, in the same ring. */
Test(spread, each_source_is_its_own_spread)
{
	struct spread s = { 0 };
	struct spread_stats st;
	char key[16];

	for (int i = 0; i < 12; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		cr_assert_eq(spread_add(&s, 100 + i, i % 2 ? "mx2" : NULL, key), 0);
	}
	cr_assert_eq(spread_add(&s, 120, "mx3", "k0"), 0);
	spread_stats(&s, 120, 100, NULL, "k0", &st);
	cr_assert_eq(st.events, 6);
	cr_assert_eq(st.keys, 6);
	cr_assert_eq(st.mine, 1);
	spread_stats(&s, 120, 100, "mx2", "k1", &st);
	cr_assert_eq(st.events, 6);
	cr_assert_eq(st.mine, 1);
	spread_stats(&s, 120, 100, "mx2", "k0", &st);
	cr_assert_eq(st.mine, 0, "k0's refusal was this node's");
	spread_stats(&s, 120, 100, "mx3", "k0", &st);
	cr_assert_eq(st.events, 1);
	spread_free(&s);
}

/* ---- addrlog ---------------------------------------------------------- */

/* add - addrlog_add with the address as text (the jail hands it parsed) */
static int
add(struct addrlog *a, const char *account, int64_t t, const char *ip, uint32_t max)
{
	unsigned char bin[16];

	if (inet_pton(AF_INET, ip, bin) == 1)
		return addrlog_add(a, account, t, AF_INET, bin, max);
	if (inet_pton(AF_INET6, ip, bin) == 1)
		return addrlog_add(a, account, t, AF_INET6, bin, max);
	return addrlog_add(a, account, t, AF_UNIX, bin, max);
}

Test(addrlog, distinct_addresses_of_a_window_oldest_first)
{
	struct addrlog a = { 0 };
	char out[8][MJ_IP_MAX];

	cr_assert_eq(add(&a, "ceo", 10, "203.0.113.1", 5), 0);
	cr_assert_eq(add(&a, "ceo", 11, "2001:db8::1", 5), 0);
	cr_assert_eq(add(&a, "ceo", 12, "203.0.113.1", 5), 0);
	cr_assert_eq(add(&a, "cfo", 12, "203.0.113.9", 5), 0);
	cr_assert_eq(add(&a, "ceo", 13, "not-an-ip", 5), -1);
	cr_assert_eq(addrlog_since(&a, "ceo", 0, 100, out, 8), 2);
	cr_assert_str_eq(out[0], "203.0.113.1");
	cr_assert_str_eq(out[1], "2001:db8::1");
	cr_assert_eq(addrlog_since(&a, "ceo", 11, 100, out, 8), 1, "the window (after, until]");
	cr_assert_str_eq(out[0], "203.0.113.1");
	/* the ring grows to max, then drops the oldest */
	for (int i = 0; i < 5; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "198.51.100.%d", i);
		cr_assert_eq(add(&a, "ceo", 20 + i, ip, 5), 0);
	}
	cr_assert_eq(addrlog_since(&a, "ceo", 0, 100, out, 8), 5);
	cr_assert_str_eq(out[0], "198.51.100.0");
	cr_assert_str_eq(out[4], "198.51.100.4");
	cr_assert_eq(addrlog_since(&a, "ceo", 0, 100, out, 2), 2, "at most max");
	addrlog_expire(&a, 22);
	cr_assert_eq(addrlog_since(&a, "ceo", 0, 100, out, 8), 2);
	cr_assert_eq(addrlog_since(&a, "cfo", 0, 100, out, 8), 0, "all expired");
	addrlog_free(&a);
}

/* The ring is the targeted jail's counter: in time order whatever the
 * arrival order (another node's failure comes late), full within a window
 * when maxretry failures lie within findtime; an ignored address counts
 * with none. */
Test(addrlog, a_full_window_in_time_order_and_counts_without_an_address)
{
	struct addrlog a = { 0 };
	char out[8][MJ_IP_MAX];
	int64_t end = 0;

	cr_assert_eq(add(&a, "ceo", 100, "203.0.113.1", 3), 0);
	cr_assert_eq(add(&a, "ceo", 300, "203.0.113.3", 3), 0);
	cr_assert(!addrlog_full(&a, "ceo", 300, 600, 3, &end), "two of three");
	/* a late one, between them, from an address never to ban */
	cr_assert_eq(addrlog_add(&a, "ceo", 200, 0, NULL, 3), 0);
	cr_assert(addrlog_full(&a, "ceo", 200, 600, 3, &end));
	cr_assert_eq(end, 300, "the window ends at the newest");
	cr_assert(!addrlog_full(&a, "ceo", 200, 200, 3, &end), "not within 200 s");
	cr_assert_eq(addrlog_since(&a, "ceo", 0, 1000, out, 8), 2, "none is no address");
	cr_assert_str_eq(out[0], "203.0.113.1");
	cr_assert_str_eq(out[1], "203.0.113.3");
	/* full: a later one drops the oldest, an older one than all is dropped */
	cr_assert_eq(add(&a, "ceo", 250, "198.51.100.7", 3), 0);
	cr_assert_eq(addrlog_since(&a, "ceo", 0, 1000, out, 8), 2);
	cr_assert_str_eq(out[0], "198.51.100.7");
	cr_assert_eq(add(&a, "ceo", 50, "198.51.100.8", 3), 0);
	cr_assert_eq(addrlog_since(&a, "ceo", 0, 1000, out, 8), 2);
	cr_assert(!addrlog_full(&a, "ceo", 50, 600, 3, &end), "it is not in the ring");
	cr_assert_eq(addrlog_accounts(&a), 1);
	addrlog_forget(&a, "ceo");
	cr_assert_eq(addrlog_accounts(&a), 0, "counted afresh");
	cr_assert(!addrlog_full(&a, "ceo", 300, 600, 3, &end));
	addrlog_free(&a);
}
