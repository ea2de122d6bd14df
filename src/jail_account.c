/*
 * jail_account - the jail keyed by account with action nft or reject: it
 * bans the addresses that fail against an attacked account, and watches
 * the account.  Part of the jail module (jail_impl.h).
 *
 * Memory: who failed against each account lately is the jail's addrlog
 * (addrlog.h, bounded by maxretry per account); the watches are a table of
 * the jail (jail_ring.c).  Both are owned by the jail; verdicts are written
 * into the caller's sink.
 */
#include "jail_impl.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cfgfile.h"

/*
 * A jail keyed by account with action nft (or reject) bans addresses, not
 * the account (the account is the victim of a distributed brute force, one
 * failure per address): when an account reaches maxretry within findtime,
 * every address that failed against it in that window is banned, and so is
 * every further address at its first failure while the account's watch
 * lasts (bantime, escalating like a ban).  Each address is its own ban of
 * this jail (target kind ip: levels, recidive as for any ban); the watch is
 * a verdict too (target kind account, no action), so a restart restores it
 * from the store like any ban, and it never feeds recidive.  Addresses in
 * the ignore CIDRs count for the account but are never banned; so are
 * addresses spared (spare_authenticated: an account logged in from them),
 * which are left to the jails keyed by ip, as their spare says.
 */

/* ban_attacker - a verdict for address ip, failing against account */
static int
ban_attacker(struct jailset *js, struct jail *j, const char *account, const char *ip,
    const struct event *ev, int64_t now, struct sink *sk)
{
	struct ent *b = jail_ent_lookup(&j->bans, ip);
	struct verdict *v;
	char fbuf[24];

	if (b != NULL && ev->time < (int64_t)b->t32)
		return 0;   /* banned in this jail already */
	if (!sk->live || ev->time <= now - j->window || sk->n >= sk->max)
		return 0;
	if (j->spare_after > 0 && jail_spare_applies(j, ip, ev->time))
		return 0;   /* behind it, someone logged in: not banned here */
	v = &sk->out[sk->n];
	if (jail_make_verdict(js, j, ip, now, 0, v) != 0)
		return -1;
	snprintf(v->reason, sizeof(v->reason), "%s against attacked account %s (%" PRIu32
	    " in %s)", ev->type, account, j->maxretry,
	    cfg_format_duration(j->findtime, fbuf, sizeof(fbuf)));
	sk->n++;
	return jail_feed_recidive(js, ip, TARGET_IP, now, now, sk);
}

/* watch_account - account reached maxretry (sum failures in the findtime
 * ending at end; ev the failure that completed it): watch it and ban the
 * addresses of that window */
static int
watch_account(struct jailset *js, struct jail *j, const char *account, uint64_t sum,
    int64_t end, const struct event *ev, int64_t now, struct sink *sk)
{
	char addrs[JAIL_VERDICTS_MAX][MJ_IP_MAX], fbuf[24], sbuf[24], spared[96] = "";
	size_t n = addrlog_since(&j->addrs, account, end - j->findtime, end,
	    addrs, JAIL_VERDICTS_MAX), nspared = 0;
	int level = jail_level_in(js, &j->watches, account, now);
	struct verdict *v = &sk->out[sk->n];

	for (size_t i = 0; i < n && j->spare_after > 0; i++)
		if (jail_spare_applies(j, addrs[i], ev->time))
			nspared++;
	if (nspared > 0)
		snprintf(spared, sizeof(spared), " (%zu spared: an account logged in from it "
		    "within %s)", nspared, cfg_format_duration(j->spare_after, sbuf, sizeof(sbuf)));

	memset(v, 0, sizeof(*v));
	v->jail = j->name;
	v->kind = TARGET_ACCOUNT;
	snprintf(v->target, sizeof(v->target), "%s", account);
	v->level = level;
	v->actions = 0;          /* the account is watched, not held */
	v->started_at = now;
	v->expires_at = now + jail_ban_duration(j, level);
	snprintf(v->reason, sizeof(v->reason), "%" PRIu64 " %s in %s from %zu addresses "
	    "(rule %s): each is banned while this lasts%s", sum, ev->type,
	    cfg_format_duration(j->findtime, fbuf, sizeof(fbuf)), n,
	    ev->rule ? ev->rule : "?", spared);
	if (jail_record_in(&j->watches, account, now, v->expires_at) != 0)
		return -1;
	sk->n++;
	addrlog_forget(&j->addrs, account);   /* counting starts fresh after the watch */
	/* bans beyond out[] are made at each address's next failure */
	for (size_t i = 0; i < n && sk->n < sk->max; i++)
		if (ban_attacker(js, j, account, addrs[i], ev, now, sk) != 0)
			return -1;
	return 0;
}

/* jail_count_against_account - a failure against an account, in a jail that
 * bans the addresses failing against it */
int
jail_count_against_account(struct jailset *js, struct jail *j, const struct event *ev,
    struct ipmemo *m, int64_t now, struct sink *sk)
{
	char account[MJ_TARGET_MAX], ip[MJ_TARGET_MAX];
	struct ent *w;
	bool has_ip;
	int64_t end = ev->time;

	if (!jail_event_key(j, ev, m, account, sizeof(account)))
		return 0;   /* no user name on the line, or an ignored account */
	has_ip = jail_ip_key(j, m, ip, sizeof(ip));
	w = jail_ent_lookup(&j->watches, account);
	if (w != NULL && ev->time < (int64_t)w->t32)
		return has_ip ? ban_attacker(js, j, account, ip, ev, now, sk) : 0;
	/* The addrlog is the counter: one block per account, its ring of
	 * maxretry (time, address) in time order.  jail_ip_key parsed the address
	 * into m (no second inet_pton); an ignored address counts with none. */
	if (addrlog_add(&j->addrs, account, ev->time, has_ip ? m->c.family : 0, m->c.addr,
	    j->ringmax) != 0)
		return -1;
	if (!sk->live || ev->time <= now - j->window)
		return 0;
	/* a late failure (another node's) may complete a window that ends at
	 * a later one: the ring holds the newest maxretry, whatever came first */
	if (!addrlog_full(&j->addrs, account, ev->time, j->findtime, j->maxretry, &end) ||
	    sk->n >= sk->max)
		return 0;
	return watch_account(js, j, account, j->maxretry, end, ev, now, sk);
}
