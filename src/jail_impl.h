/*
 * jail_impl - inside the jail module: private to it, never included by
 * other modules (they use jail.h).  The configuration of a jail (struct
 * jail) and of the set (struct jailset), the entry of the counter tables
 * (struct ent), and the functions the module's files share:
 *
 *   jail_conf.c      loads and checks jails/NAME.jail; the accessors
 *   jail_key.c       addresses, CIDRs and the key an event counts under
 *   jail_ring.c      the tables of counter rings (on hashtab)
 *   jail.c           bans, spare_authenticated, counting, dispatch,
 *                    restore, operator verdicts, expiry
 *   jail_account.c   the jail that bans the addresses failing against an
 *                    account
 *   jail_delivery.c  delivery results joined to their submission, the
 *                    alarm of a listed server
 *
 * Memory: the jailset owns its jails, their strings and all state (the
 * tables below, the addrlog, spread and msgtrace they hold); a jail's
 * events and names are malloc'd strings it frees in jail_free.  Entries are
 * owned by their table; a struct ent pointer stays valid until its table is
 * swept or freed, or jail_ent_push grows its ring (it hands back the new
 * one).  Bounds: pending queue ids by PENDING_MAX; the delivery join
 * (msgtrace.h) by MSGTRACE_MAX messages of a day; the addresses failing
 * against accounts (addrlog.h) by maxretry per account and two windows;
 * the spread of listed refusals (spread.h) by SPREAD_EVENTS_MAX per jail.
 * Not thread-safe.
 */
#ifndef MAILJAIL_JAIL_IMPL_H
#define MAILJAIL_JAIL_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "addrlog.h"
#include "hashtab.h"
#include "jail.h"
#include "msgtrace.h"
#include "spread.h"

/* defer's answer unless the jail's reply = says otherwise */
#define DEFAULT_DEFER_REPLY "450 4.7.1 Too much mail from your account, try again later"
#define ALARMS_MAX 8
#define TEN_YEARS ((int64_t)10 * 366 * 86400)
#define BAN_STARTS_MAX 255       /* levels beyond this count as this */
#define PENDING_TTL ((int64_t)86400)

enum keytype { KEY_IP, KEY_PREFIX, KEY_ACCOUNT, KEY_SENDER, KEY_DOMAIN };

/* One hashed block: counters, ban history or a pending queue id.  The
 * head's aux is the capacity of the ring. */
struct ent {
	struct hashent h;
	uint16_t head, n;        /* ring of uint32 after the key */
	uint32_t t32;            /* ban: end of last ban; pending: time */
	char key[];
};

#define ENT_KEYOFF offsetof(struct ent, key)

struct cidr {
	int family;
	int len;
	unsigned char addr[16];
};

struct limit {
	uint32_t n;
	int64_t w;
};

struct jail {
	char *name;
	char *file;
	int line;                /* of the [section] */
	int events_line;
	char **events;
	size_t nevents;
	bool recidive;
	enum keytype key;
	int prefix;              /* KEY_PREFIX */
	int64_t findtime;
	uint32_t maxretry;       /* 0: quota jail */
	struct limit *limits;
	size_t nlimits;
	bool count_rcpt;
	struct cidr *cidrs;
	size_t ncidrs;
	char **names;
	size_t nnames;
	bool ignore_set;
	unsigned actions;
	char *reply;
	int64_t bantime;
	double factor;
	int64_t maxbantime;
	bool enabled;
	bool notify_set;
	enum jail_notify notify;
	int64_t window;          /* findtime or the longest limit */
	uint16_t ringmax;        /* entries kept per key */
	/* spare_authenticated: an address some account logged in from within
	 * spare_after (0: off) needs maxretry * spare_factor failures. */
	int64_t spare_after;
	uint32_t spare_factor;
	int l_spare, l_spare_factor;
	struct hashtab spared;    /* key -> time of its last login (t32) */
	/* lines of keys seen, for checks after the section is read */
	int l_key, l_findtime, l_maxretry, l_limits, l_count, l_action, l_reply;
	unsigned char *counts_kind;  /* [kind]: 1 if this jail counts it */
	struct hashtab counters;
	struct hashtab bans;
	/* key = account with action nft/reject: the addresses that fail
	 * against an attacked account are banned (see jail_count_against_account) */
	bool bans_addresses;
	struct addrlog addrs;    /* who failed against each account lately */
	struct hashtab watches;  /* attacked accounts: end of watch, its starts */
	/* counts remote_listed: the spread rule (see listed_counts) */
	bool counts_listed;
	struct spread listed;
	int64_t alarm_until;     /* no second alarm before this time */
};

struct jailset {
	struct jail **jails;
	size_t n, cap;
	bool need_pending;
	/* The event kinds the jails count, named once: an event is looked up
	 * here once, not in every jail's list (see jail_kind_of). */
	const char **kinds;      /* borrowed from the jails' events lists */
	size_t nkinds;
	int kind_submission;     /* index of "submission", or -1 */
	bool need_logins;        /* a jail has spare_authenticated */
	struct hashtab pending;
	/* Delivery results joined to their submission (remote_reject,
	 * remote_listed, requeued): see jail_dispatch_delivery. */
	bool need_trace;
	struct msgtrace trace;
	struct alarm alarms[ALARMS_MAX];   /* raised, not yet taken */
	size_t nalarms;
	int64_t span;
	/* load state */
	struct jail *cur;
	const char *cur_file;
	int cur_line;
	bool cur_skip;
	struct diag *d;
};

/* Event kinds joined by queue id to the submission of their message. */
#define EV_REMOTE_REJECT "remote_reject"
#define EV_REMOTE_LISTED "remote_listed"
#define EV_REQUEUED "requeued"

enum delivery { NOT_DELIVERY, DELIVERY_REFUSAL, DELIVERY_LISTED, DELIVERY_LINK };

/* An event's address, parsed once however many jails key on it. */
struct ipmemo {
	const char *ip;
	int state;               /* 0: not parsed yet, 1: c holds it, -1: no address */
	struct cidr c;
};

struct sink {
	struct verdict *out;
	size_t max, n;
	bool live;               /* false: restoring, no verdicts */
};

static inline size_t
ring_off(size_t klen)
{
	return (sizeof(struct ent) + klen + 1 + 3) & ~(size_t)3;
}

static inline uint32_t *
ent_ring(struct ent *e)
{
	return (uint32_t *)(void *)((char *)e + ring_off(e->h.klen));
}

static inline uint16_t
ent_cap(const struct ent *e)
{
	return e->h.aux;
}

/* ent_of - the entry a table slot points at (its head is the first member) */
static inline struct ent *
ent_of(struct hashent *h)
{
	return (struct ent *)(void *)h;
}

/* ring_pos - the slot of the i-th oldest entry of e's ring (no division:
 * this runs for every entry a window looks at) */
static inline uint32_t
ring_pos(const struct ent *e, uint32_t i)
{
	uint32_t k = (uint32_t)e->head + i;

	return k >= ent_cap(e) ? k - ent_cap(e) : k;
}

/* ent_clear - forget the times of e's ring: counting starts fresh */
static inline void
ent_clear(struct ent *e)
{
	e->n = 0;
	e->head = 0;
}

static inline uint32_t
t32(int64_t t)
{
	return t < 0 ? 0 : t > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)t;
}

/* str_in - whether s is one of the n strings of list */
static inline bool
str_in(char *const *list, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], s) == 0)
			return true;
	return false;
}

static inline bool
key_is_ip(const struct jail *j)
{
	return j->key == KEY_IP || j->key == KEY_PREFIX;
}

/* ---- inline: on every event's path (no LTO across the module's files) -- */

/* jail_copy_key - s into out; false if it does not fit (no key then) */
static inline bool
jail_copy_key(char *out, size_t len, const char *s)
{
	size_t n = strlen(s);

	if (n >= len)
		return false;
	memcpy(out, s, n + 1);
	return true;
}

/* jail_kind_of - the index of event kind type among those the jails count, or -1 */
static inline int
jail_kind_of(const struct jailset *js, const char *type)
{
	for (size_t i = 0; i < js->nkinds; i++)
		if (js->kinds[i][0] == type[0] && strcmp(js->kinds[i], type) == 0)
			return (int)i;
	return -1;
}

/* jail_ent_slot - the slot of key in t, or where it would go; NULL: no slots */
static inline struct hashent **
jail_ent_slot(struct hashtab *t, const char *key, size_t klen)
{
	return hashtab_find(t, key, klen, hashtab_hash(key, klen), ENT_KEYOFF);
}

/* jail_ent_lookup - the entry for key in t, or NULL */
static inline struct ent *
jail_ent_lookup(struct hashtab *t, const char *key)
{
	struct hashent **s = jail_ent_slot(t, key, strlen(key));

	return s && *s ? ent_of(*s) : NULL;
}

/* jail_ent_rank - how many ring entries have time <= x (binary search) */
static inline uint32_t
jail_ent_rank(struct ent *e, int64_t x)
{
	const uint32_t *r = ent_ring(e);
	uint32_t lo = 0, hi = e->n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if ((int64_t)r[ring_pos(e, mid)] <= x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* jail_ent_sum - weight of ring entries with time in (t - w, t]: O(log n) for
 * counts, so a quota with thousands of messages in its day costs little */
static inline uint64_t
jail_ent_sum(struct ent *e, int64_t t, int64_t w, bool weighted)
{
	uint32_t lo = jail_ent_rank(e, t - w), hi = jail_ent_rank(e, t);
	const uint32_t *wt = ent_ring(e) + ent_cap(e);
	uint64_t s = 0;

	if (!weighted)
		return hi - lo;
	for (uint32_t i = lo; i < hi; i++)
		s += wt[ring_pos(e, i)];
	return s;
}

/* ---- the counter rings (jail_ring.c) ---------------------------------- */

struct ent *jail_ent_new(const char *key, size_t klen, uint32_t h, uint16_t cap,
    bool weighted);
struct ent *jail_ent_get(struct hashtab *t, const char *key, uint16_t initcap,
    bool weighted);
int jail_ent_push(struct hashtab *t, struct ent **ep, uint32_t time, uint32_t weight,
    uint16_t max, bool weighted);
void jail_ent_prune(struct ent *e, int64_t cut);

/* ---- addresses and keys (jail_key.c) ---------------------------------- */

int jail_parse_cidr(const char *s, struct cidr *c);
void jail_format_cidr(const struct cidr *c, char *out, size_t len);
bool jail_ip_key(const struct jail *j, struct ipmemo *m, char *out, size_t len);
bool jail_event_key(const struct jail *j, const struct event *ev, struct ipmemo *m,
    char *out, size_t len);
bool jail_target_key(const struct jail *j, const char *target, enum target_kind kind,
    char *out, size_t len);
int jail_canon_target(const char *target, enum target_kind kind, char *out, size_t len);

/* ---- configuration (jail_conf.c) -------------------------------------- */

struct jail *jail_find(const struct jailset *js, const char *name);
bool jail_has_event(const struct jail *j, const char *ev);

/* ---- bans and counting (jail.c) --------------------------------------- */

/* Free the counters, bans and joins of j (its configuration stays). */
void jail_clear_state(struct jail *j);

int jail_level_in(struct jailset *js, struct hashtab *t, const char *key, int64_t now);
int64_t jail_ban_duration(const struct jail *j, int level);
int jail_record_in(struct hashtab *t, const char *key, int64_t start, int64_t end);
int jail_make_verdict(struct jailset *js, struct jail *j, const char *key, int64_t now,
    int64_t duration, struct verdict *v);
int jail_feed_recidive(struct jailset *js, const char *target, enum target_kind kind,
    int64_t t, int64_t now, struct sink *sk);
bool jail_spare_applies(struct jail *j, const char *key, int64_t t);
int jail_count_event(struct jailset *js, struct jail *j, const struct event *ev,
    struct ipmemo *m, uint32_t weight, int64_t now, struct sink *sk);

/* ---- the targeted-account jail (jail_account.c) ----------------------- */

int jail_count_against_account(struct jailset *js, struct jail *j,
    const struct event *ev, struct ipmemo *m, int64_t now, struct sink *sk);

/* ---- delivery results (jail_delivery.c) ------------------------------- */

enum delivery jail_delivery_kind(const char *type);
const char *jail_trace_id(const struct event *ev, const char *qid, char *buf, size_t len);
int jail_dispatch_delivery(struct jailset *js, const struct event *ev, enum delivery d,
    int64_t now, struct sink *sk);
int jail_trace_submission(struct jailset *js, const struct event *ev);

#endif
