/*
 * jail - turns events into verdicts: loads jails/NAME.jail, keeps per jail and
 * key the recent events and the ban history it needs, and decides.  See
 * jail.h for the kinds of jail and the contract.
 *
 * Semantics chosen here (tests pin them down):
 *   - A window of length w ending at an event's time t is (t - w, t]: an event
 *     exactly w older than t is out.
 *   - An event counts for (jail, key) only if its time >= the end of that
 *     key's last ban in that jail (lifted_at if lifted, else expires_at).  This
 *     makes "a ban suppresses; afterwards counting starts fresh" and restart
 *     restore the same rule, with no special case.  A verdict also clears the
 *     key's window.
 *   - An event with time <= now - (the jail's longest window) is counted but
 *     issues no verdict (its window cannot reach now).
 *   - key = ip/N: IPv6 addresses are masked to /N (N <= 128); IPv4 addresses to
 *     /N if N <= 32, else kept exact.  So ip/64 means "v4 exact, v6 /64".
 *   - ignore: CIDRs match ip-keyed jails (by the event's address), names match
 *     account/sender/domain keys exactly.  Loopback is ignored unless the jail
 *     says "ignore =" explicitly.  CIDRs do not apply to account-keyed jails, so
 *     a webmail on localhost is still under its quota.
 *   - Submissions are counted when the submission event arrives, except for
 *     jails that need the "queued" line (count = recipients, key = sender, key =
 *     domain for an account without @domain): those count at the queued event,
 *     joined by queue id, with the submission's time, ip and account.  A queue
 *     id is joined once (qmgr logs again when a deferred message is retried).
 *   - Manual (operator) bans and restored bans feed the recidive jails'
 *     counters like any ban but never make a recidive verdict themselves.
 *   - If out[] is full, a verdict is not made (nothing is recorded as a ban);
 *     the key's events stay counted and the next event fires it.
 *   - A delivery refusal counts at the refusal's time, for the account of
 *     the submission its queue id leads to; see
 *     dispatch_delivery.  A jail keyed by account with nft or reject bans
 *     addresses; see count_against_account.
 *
 * Memory.  Times are stored as uint32 Unix seconds (good until 2106).  Every
 * tracked key is one malloc'd block: a 16-byte header, the key string, and a
 * ring of uint32 times kept in time order, so the count in a window is two
 * binary searches (plus uint32 weights for count = recipients), that grows
 * by doubling up to maxretry (failure jails) or largest limit + 1 (quota
 * jails), referenced from an open-addressing table of pointers (load <= 3/4).
 * A new key's ring has room for 2 times (most keys never see a third), so an
 * IPv4 key is a 48-byte heap chunk and an account like user123@example.org a
 * 64-byte one, plus 11-21 bytes of table (8-byte slots, load 3/8..3/4):
 * 60-85 bytes per tracked key, 100,000 keys (half each) ~7.7 MB (massif,
 * bench/genkeys.py; a quota key with 100+ messages in its window holds up to
 * 4 bytes per message, 8 with recipients).  Ban history
 * (per jail and target: last ban end and the start times within the history
 * span, at most BAN_STARTS_MAX) uses the same block layout in its own table.
 * Pending queue ids (recipients join) are bounded by PENDING_MAX; the
 * delivery join (msgtrace.h) by MSGTRACE_MAX messages of a day; the
 * addresses failing against accounts (addrlog.h) by maxretry per account
 * and two windows; the spread of listed refusals (spread.h) by
 * SPREAD_EVENTS_MAX per jail.
 *
 * Ownership: the jailset owns its jails, their strings and all state; verdicts
 * point at jail names and replies owned by the jailset.  No PCRE2, SQL or
 * netlink here.  Not thread-safe.
 */
#include "jail.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "addrlog.h"
#include "hashtab.h"
#include "msgtrace.h"
#include "spread.h"

#define DEFAULT_REPLY "450 4.7.1 Too many errors from your address, try again later"
#define DEFAULT_DEFER_REPLY "450 4.7.1 Too much mail from your account, try again later"
#define REPLY_MAX 200
/* The spread rule for refusals about the server (remote_listed): in the
 * jail's findtime (this refusal included), such refusals for at least
 * SPREAD_KEYS_MIN distinct keys (accounts), none of which has
 * SPREAD_SHARE_NUM / SPREAD_SHARE_DEN of them, say the server is listed:
 * they count for no one, and an alarm is raised.  While one key has at
 * least that share ("nearly all"), or fewer keys were refused, each such
 * refusal counts for its key as usual. */
#define SPREAD_KEYS_MIN 5
#define SPREAD_SHARE_NUM 3
#define SPREAD_SHARE_DEN 4
#define ALARMS_MAX 8
#define TEN_YEARS ((int64_t)10 * 366 * 86400)
#define MIN_HISTORY_SPAN ((int64_t)30 * 86400)
#define BAN_STARTS_MAX 255       /* levels beyond this count as this */
#define LIMIT_MAX 65534          /* ring capacity is a uint16 */
#define PENDING_MAX 65536        /* queue ids awaiting their qmgr line */
#define PENDING_TTL ((int64_t)86400)
#define SPARE_FACTOR_DEFAULT 3

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
	struct hashtab spared;      /* key -> time of its last login (t32) */
	/* lines of keys seen, for checks after the section is read */
	int l_key, l_findtime, l_maxretry, l_limits, l_count, l_action, l_reply;
	unsigned char *counts_kind;  /* [kind]: 1 if this jail counts it */
	struct hashtab counters;
	struct hashtab bans;
	/* key = account with action nft/reject: the addresses that fail
	 * against an attacked account are banned (see count_against_account) */
	bool bans_addresses;
	struct addrlog addrs;    /* who failed against each account lately */
	struct hashtab watches;     /* attacked accounts: end of watch, its starts */
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
	 * here once, not in every jail's list (see kind_of). */
	const char **kinds;      /* borrowed from the jails' events lists */
	size_t nkinds;
	int kind_submission;     /* index of "submission", or -1 */
	bool need_logins;        /* a jail has spare_authenticated */
	struct hashtab pending;
	/* Delivery results joined to their submission (remote_reject,
	 * remote_listed, requeued): see dispatch_delivery. */
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

static const struct cidr loopback[2] = {
	{ AF_INET, 8, { 127 } },
	{ AF_INET6, 128, { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 } },
};

/* ---- hash table ------------------------------------------------------- */

static size_t
ring_off(size_t klen)
{
	return (sizeof(struct ent) + klen + 1 + 3) & ~(size_t)3;
}

static uint32_t *
ent_ring(struct ent *e)
{
	return (uint32_t *)(void *)((char *)e + ring_off(e->h.klen));
}

static uint16_t
ent_cap(const struct ent *e)
{
	return e->h.aux;
}

/* ent_new - a block for key with a ring of cap (x2 if weighted) uint32 */
static struct ent *
ent_new(const char *key, size_t klen, uint32_t h, uint16_t cap, bool weighted)
{
	struct ent *e = calloc(1, ring_off(klen) + (size_t)cap * 4 * (weighted ? 2 : 1));

	if (e == NULL)
		return NULL;
	e->h.hash = h;
	e->h.klen = (uint16_t)klen;
	e->h.aux = cap;
	memcpy(e->key, key, klen);
	e->key[klen] = '\0';
	return e;
}

/* ent_of - the entry a table slot points at (its head is the first member) */
static struct ent *
ent_of(struct hashent *h)
{
	return (struct ent *)(void *)h;
}

/* ent_slot - the slot of key in t, or where it would go; NULL: no slots */
static struct hashent **
ent_slot(struct hashtab *t, const char *key, size_t klen)
{
	return hashtab_find(t, key, klen, hashtab_hash(key, klen), ENT_KEYOFF);
}

/* ent_get - the entry for key in t, created (ring of initcap) if absent */
static struct ent *
ent_get(struct hashtab *t, const char *key, uint16_t initcap, bool weighted)
{
	size_t klen = strlen(key);
	uint32_t h = hashtab_hash(key, klen);
	struct hashent **s = hashtab_find(t, key, klen, h, ENT_KEYOFF);
	struct ent *e;

	if (s != NULL && *s != NULL)
		return ent_of(*s);
	s = hashtab_slot_for_insert(t, key, klen, h, ENT_KEYOFF);
	if (s == NULL)
		return NULL;
	if ((e = ent_new(key, klen, h, initcap, weighted)) == NULL)
		return NULL;
	*s = &e->h;
	t->n++;
	return e;
}

static struct ent *
ent_lookup(struct hashtab *t, const char *key)
{
	struct hashent **s = ent_slot(t, key, strlen(key));

	return s && *s ? ent_of(*s) : NULL;
}

/* ring_pos - the slot of the i-th oldest entry of e's ring (no division:
 * this runs for every entry a window looks at) */
static inline uint32_t
ring_pos(const struct ent *e, uint32_t i)
{
	uint32_t k = (uint32_t)e->head + i;

	return k >= ent_cap(e) ? k - ent_cap(e) : k;
}

/* ent_grow - replace e (in its slot of t) by a block with a ring of ncap,
 * its times in order from slot 0 */
static struct ent *
ent_grow(struct hashtab *t, struct ent *e, uint16_t ncap, bool weighted)
{
	struct ent *ne = ent_new(e->key, e->h.klen, e->h.hash, ncap, weighted);

	if (ne == NULL)
		return NULL;
	ne->t32 = e->t32;
	for (uint32_t i = 0; i < e->n; i++) {
		uint32_t k = ring_pos(e, i);
		ent_ring(ne)[i] = ent_ring(e)[k];
		if (weighted)
			ent_ring(ne)[ncap + i] = ent_ring(e)[ent_cap(e) + k];
	}
	ne->n = e->n;
	*ent_slot(t, e->key, e->h.klen) = &ne->h;
	free(e);
	return ne;
}

/* ent_push - insert (time, weight) into e's ring, kept in time order (an
 * event from a second log may be older than the last one), growing it up to
 * max entries; when full the oldest time is dropped, which is the new one if
 * it is older than all.  May move e (the table slot is updated). */
static int
ent_push(struct hashtab *t, struct ent **ep, uint32_t time, uint32_t weight,
    uint16_t max, bool weighted)
{
	struct ent *e = *ep;
	uint32_t *r, *w, i;

	if (e->n == ent_cap(e) && ent_cap(e) < max) {
		uint16_t cap = ent_cap(e);
		if ((e = ent_grow(t, e, cap * 2 > max ? max : (uint16_t)(cap * 2),
		    weighted)) == NULL)
			return -1;
		*ep = e;
	}
	r = ent_ring(e);
	w = r + ent_cap(e);
	if (e->n == ent_cap(e)) {
		if (time < r[e->head])
			return 0;
		e->head = (uint16_t)ring_pos(e, 1);
		e->n--;
	}
	/* Shift newer entries up one; none, when the logs are in time order. */
	for (i = e->n; i > 0 && r[ring_pos(e, i - 1)] > time; i--) {
		r[ring_pos(e, i)] = r[ring_pos(e, i - 1)];
		if (weighted)
			w[ring_pos(e, i)] = w[ring_pos(e, i - 1)];
	}
	r[ring_pos(e, i)] = time;
	if (weighted)
		w[ring_pos(e, i)] = weight;
	e->n++;
	return 0;
}

/* ent_prune - drop ring entries with time <= cut (the oldest come first) */
static void
ent_prune(struct ent *e, int64_t cut)
{
	uint32_t *r = ent_ring(e);

	while (e->n > 0 && (int64_t)r[e->head] <= cut) {
		e->head = (uint16_t)ring_pos(e, 1);
		e->n--;
	}
}

/* ent_rank - how many ring entries have time <= x (binary search) */
static uint32_t
ent_rank(struct ent *e, int64_t x)
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

/* ent_sum - weight of ring entries with time in (t - w, t]: O(log n) for
 * counts, so a quota with thousands of messages in its day costs little */
static uint64_t
ent_sum(struct ent *e, int64_t t, int64_t w, bool weighted)
{
	uint32_t lo = ent_rank(e, t - w), hi = ent_rank(e, t);
	const uint32_t *wt = ent_ring(e) + ent_cap(e);
	uint64_t s = 0;

	if (!weighted)
		return hi - lo;
	for (uint32_t i = lo; i < hi; i++)
		s += wt[ring_pos(e, i)];
	return s;
}

static uint32_t
t32(int64_t t)
{
	return t < 0 ? 0 : t > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)t;
}

/* ---- addresses -------------------------------------------------------- */

/* parse_cidr - "addr" or "addr/len"; host bits are masked off */
static int
parse_cidr(const char *s, struct cidr *c)
{
	char buf[MJ_IP_MAX + 8];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	uint64_t len;
	int max;

	if (alen == 0 || alen >= MJ_IP_MAX)
		return -1;
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	memset(c, 0, sizeof(*c));
	if (inet_pton(AF_INET, buf, c->addr) == 1) {
		c->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, c->addr) == 1) {
		c->family = AF_INET6;
		max = 128;
	} else {
		return -1;
	}
	if (slash == NULL)
		len = (uint64_t)max;
	else if (cfg_parse_uint(slash + 1, (uint64_t)max, &len) != 0)
		return -1;
	c->len = (int)len;
	for (int b = c->len; b < max; b++)
		c->addr[b / 8] &= (unsigned char)~(0x80u >> (b % 8));
	return 0;
}

static bool
cidr_match(const struct cidr *c, int family, const unsigned char *addr)
{
	int full = c->len / 8, rest = c->len % 8;

	if (c->family != family)
		return false;
	if (memcmp(c->addr, addr, (size_t)full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((c->addr[full] ^ addr[full]) & (0xff00u >> rest) & 0xff) == 0;
}

/* format_cidr - canonical text of c; "/len" only when it is a prefix */
static void
format_cidr(const struct cidr *c, char *out, size_t len)
{
	char a[MJ_IP_MAX];
	int max = c->family == AF_INET ? 32 : 128;

	if (addr_format(c->family, c->addr, a, sizeof(a)) != 0)
		a[0] = '\0';
	if (c->len == max)
		snprintf(out, len, "%s", a);
	else
		snprintf(out, len, "%s/%d", a, c->len);
}

/* ---- configuration ---------------------------------------------------- */

static void
jail_free(struct jail *j)
{
	if (j == NULL)
		return;
	free(j->name);
	free(j->file);
	for (size_t i = 0; i < j->nevents; i++)
		free(j->events[i]);
	free(j->events);
	free(j->limits);
	free(j->cidrs);
	for (size_t i = 0; i < j->nnames; i++)
		free(j->names[i]);
	free(j->names);
	free(j->reply);
	free(j->counts_kind);
	hashtab_free(&j->counters);
	hashtab_free(&j->bans);
	hashtab_free(&j->watches);
	addrlog_free(&j->addrs);
	spread_free(&j->listed);
	hashtab_free(&j->spared);
	free(j);
}

static char *
trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* split_list - call f for every non-empty comma-separated item; stops at
 * the first non-zero return */
static int
split_list(const char *value, int (*f)(struct jail *, const char *, void *),
    struct jail *j, void *arg)
{
	char *copy = strdup(value), *p, *save = NULL;
	int rc = 0;

	if (copy == NULL)
		return -1;
	for (p = strtok_r(copy, ",", &save); p != NULL; p = strtok_r(NULL, ",", &save)) {
		char *item = trim(p);
		if (*item == '\0')
			continue;
		if ((rc = f(j, item, arg)) != 0)
			break;
	}
	free(copy);
	return rc;
}

static int
add_str(char ***arr, size_t *n, const char *s)
{
	char **na = realloc(*arr, (*n + 1) * sizeof(*na));

	if (na == NULL)
		return -1;
	*arr = na;
	if ((na[*n] = strdup(s)) == NULL)
		return -1;
	(*n)++;
	return 0;
}

static int
add_event(struct jail *j, const char *item, void *arg)
{
	(void)arg;
	return add_str(&j->events, &j->nevents, item);
}

struct itemctx {
	struct jailset *js;
	int line;
};

static int
add_action(struct jail *j, const char *item, void *arg)
{
	struct itemctx *c = arg;

	if (strcmp(item, "nft") == 0)
		j->actions |= ACTION_NFT;
	else if (strcmp(item, "hold") == 0)
		j->actions |= ACTION_HOLD;
	else if (strcmp(item, "reject") == 0)
		j->actions |= ACTION_REJECT;
	else if (strcmp(item, "defer") == 0)
		j->actions |= ACTION_DEFER;
	else {
		diag_add(c->js->d, j->file, c->line, "jail %s: unknown action \"%s\" (nft, hold, "
		    "defer, reject)", j->name, item);
		return 1;
	}
	return 0;
}

/* looks_like_ip - only digits, dots, colons and hex: meant as an address */
static bool
looks_like_ip(const char *s)
{
	bool sep = false;

	for (; *s; s++) {
		if (*s == '.' || *s == ':')
			sep = true;
		else if (!isxdigit((unsigned char)*s))
			return false;
	}
	return sep;
}

static int
add_ignore(struct jail *j, const char *item, void *arg)
{
	struct itemctx *c = arg;
	struct cidr cd;

	if (strchr(item, '@') == NULL && parse_cidr(item, &cd) == 0) {
		struct cidr *nc = realloc(j->cidrs, (j->ncidrs + 1) * sizeof(*nc));
		if (nc == NULL)
			return -1;
		j->cidrs = nc;
		j->cidrs[j->ncidrs++] = cd;
		return 0;
	}
	if (strchr(item, '@') == NULL && (strchr(item, '/') != NULL || looks_like_ip(item))) {
		diag_add(c->js->d, j->file, c->line, "jail %s: bad CIDR \"%s\" in ignore", j->name, item);
		return 1;
	}
	return add_str(&j->names, &j->nnames, item);
}

static int
add_limit(struct jail *j, const char *item, void *arg)
{
	struct itemctx *c = arg;
	char buf[64];
	const char *slash = strchr(item, '/');
	uint64_t n;
	int64_t w;
	struct limit *nl;

	if (slash == NULL || (size_t)(slash - item) >= sizeof(buf))
		goto bad;
	memcpy(buf, item, (size_t)(slash - item));
	buf[slash - item] = '\0';
	if (cfg_parse_uint(trim(buf), LIMIT_MAX - 1, &n) != 0 || n == 0)
		goto bad;
	snprintf(buf, sizeof(buf), "%s", slash + 1);
	if (cfg_parse_duration(trim(buf), &w) != 0 || w <= 0)
		goto bad;
	if ((nl = realloc(j->limits, (j->nlimits + 1) * sizeof(*nl))) == NULL)
		return -1;
	j->limits = nl;
	j->limits[j->nlimits].n = (uint32_t)n;
	j->limits[j->nlimits].w = w;
	j->nlimits++;
	return 0;
bad:
	diag_add(c->js->d, j->file, c->line,
	    "jail %s: malformed limit \"%s\" (expected COUNT/DURATION, e.g. 100/1h, count 1..%d)",
	    j->name, item, LIMIT_MAX - 1);
	return 1;
}

static struct jail *
find_jail(const struct jailset *js, const char *name)
{
	if (name == NULL)
		return NULL;
	for (size_t i = 0; i < js->n; i++)
		if (strcmp(js->jails[i]->name, name) == 0)
			return js->jails[i];
	return NULL;
}

/* start_jail - a new [section]: a fresh jail, or a duplicate diag */
static int
start_jail(struct jailset *js, const char *file, const char *section, int line)
{
	struct jail *j, *old = find_jail(js, section);

	js->cur = NULL;
	js->cur_file = file;
	js->cur_line = line;
	js->cur_skip = false;
	if (old != NULL) {
		diag_add(js->d, file, line, "duplicate jail name \"%s\" (first at %s:%d)",
		    section, old->file, old->line);
		js->cur_skip = true;
		return 0;
	}
	if (js->n == js->cap) {
		size_t nc = js->cap ? js->cap * 2 : 8;
		struct jail **nj = realloc(js->jails, nc * sizeof(*nj));
		if (nj == NULL)
			return -1;
		js->jails = nj;
		js->cap = nc;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return -1;
	j->line = line;
	j->key = KEY_IP;
	j->bantime = 3600;
	j->factor = 2;
	j->maxbantime = TEN_YEARS;
	j->spare_factor = SPARE_FACTOR_DEFAULT;
	j->enabled = true;
	j->name = strdup(section);
	j->file = strdup(file);
	if (j->name == NULL || j->file == NULL) {
		jail_free(j);
		return -1;
	}
	js->jails[js->n++] = j;
	js->cur = j;
	return 0;
}

static int
parse_duration_key(struct jailset *js, struct jail *j, const char *key,
    const char *value, int line, int64_t *out)
{
	if (cfg_parse_duration(value, out) != 0 || *out <= 0) {
		diag_add(js->d, j->file, line, "jail %s: bad duration for %s: \"%s\" (e.g. 30s, 10m, 1h, 1d, 1w)",
		    j->name, key, value);
		return 1;
	}
	return 0;
}

/* load_handler - one key of a .jail file */
static int
load_handler(void *arg, const char *file, const char *section, int section_line,
    const char *key, const char *value, int line)
{
	struct jailset *js = arg;
	struct itemctx ic = { js, line };
	struct jail *j;
	uint64_t u;

	if (js->cur_file == NULL || strcmp(js->cur_file, file) != 0 ||
	    js->cur_line != section_line) {
		if (start_jail(js, file, section, section_line) != 0)
			return -1;
	}
	if (js->cur_skip)
		return 0;
	j = js->cur;
	if (strcmp(key, "events") == 0) {
		j->events_line = line;
		return split_list(value, add_event, j, NULL);
	} else if (strcmp(key, "key") == 0) {
		j->l_key = line;
		if (strcmp(value, "ip") == 0)
			j->key = KEY_IP;
		else if (strcmp(value, "account") == 0)
			j->key = KEY_ACCOUNT;
		else if (strcmp(value, "sender") == 0)
			j->key = KEY_SENDER;
		else if (strcmp(value, "domain") == 0)
			j->key = KEY_DOMAIN;
		else if (strncmp(value, "ip/", 3) == 0 &&
		    cfg_parse_uint(value + 3, 128, &u) == 0 && u > 0) {
			j->key = KEY_PREFIX;
			j->prefix = (int)u;
		} else {
			diag_add(js->d, file, line,
			    "jail %s: unknown key type \"%s\" (ip, ip/N, account, sender, domain)",
			    j->name, value);
		}
	} else if (strcmp(key, "findtime") == 0) {
		j->l_findtime = line;
		return parse_duration_key(js, j, key, value, line, &j->findtime);
	} else if (strcmp(key, "maxretry") == 0) {
		j->l_maxretry = line;
		if (cfg_parse_uint(value, LIMIT_MAX, &u) != 0 || u == 0) {
			diag_add(js->d, file, line, "jail %s: bad number for maxretry: \"%s\" (1..%d)",
			    j->name, value, LIMIT_MAX);
			return 1;
		}
		j->maxretry = (uint32_t)u;
	} else if (strcmp(key, "limits") == 0) {
		j->l_limits = line;
		j->nlimits = 0;
		if (split_list(value, add_limit, j, &ic) != 0)
			return 1;
		if (j->nlimits == 0)
			diag_add(js->d, file, line, "jail %s: limits is empty", j->name);
	} else if (strcmp(key, "count") == 0) {
		j->l_count = line;
		if (strcmp(value, "messages") == 0)
			j->count_rcpt = false;
		else if (strcmp(value, "recipients") == 0)
			j->count_rcpt = true;
		else
			diag_add(js->d, file, line, "jail %s: count must be messages or recipients, not \"%s\"",
			    j->name, value);
	} else if (strcmp(key, "ignore") == 0) {
		j->ignore_set = true;
		return split_list(value, add_ignore, j, &ic);
	} else if (strcmp(key, "action") == 0) {
		j->l_action = line;
		j->actions = 0;
		if (split_list(value, add_action, j, &ic) != 0)
			return 1;
		if (j->actions == 0)
			diag_add(js->d, file, line, "jail %s: action is empty", j->name);
	} else if (strcmp(key, "reply") == 0) {
		j->l_reply = line;
		free(j->reply);
		if ((j->reply = strdup(value)) == NULL)
			return -1;
	} else if (strcmp(key, "bantime") == 0) {
		return parse_duration_key(js, j, key, value, line, &j->bantime);
	} else if (strcmp(key, "maxbantime") == 0) {
		return parse_duration_key(js, j, key, value, line, &j->maxbantime);
	} else if (strcmp(key, "factor") == 0) {
		char *end = NULL;
		double f;
		errno = 0;
		f = strtod(value, &end);
		if (errno != 0 || end == value || *end != '\0' || !isfinite(f) || f <= 0 || f > 1000) {
			diag_add(js->d, file, line, "jail %s: bad number for factor: \"%s\" (a number > 0, e.g. 2 or 1.5)",
			    j->name, value);
			return 1;
		}
		j->factor = f;
	} else if (strcmp(key, "notify") == 0) {
		j->notify_set = true;
		if (strcmp(value, "now") == 0)
			j->notify = JAIL_NOTIFY_NOW;
		else if (strcmp(value, "digest") == 0)
			j->notify = JAIL_NOTIFY_DIGEST;
		else if (strcmp(value, "no") == 0)
			j->notify = JAIL_NOTIFY_NO;
		else
			diag_add(js->d, file, line, "jail %s: notify must be now, digest or no, "
			    "not \"%s\"", j->name, value);
	} else if (strcmp(key, "spare_authenticated") == 0) {
		j->l_spare = line;
		return parse_duration_key(js, j, key, value, line, &j->spare_after);
	} else if (strcmp(key, "spare_factor") == 0) {
		j->l_spare_factor = line;
		if (cfg_parse_uint(value, 100, &u) != 0 || u < 1) {
			diag_add(js->d, file, line, "jail %s: bad number for spare_factor: \"%s\" (1..100)",
			    j->name, value);
			return 1;
		}
		j->spare_factor = (uint32_t)u;
	} else if (strcmp(key, "enabled") == 0) {
		if (strcmp(value, "true") == 0 || strcmp(value, "yes") == 0 || strcmp(value, "1") == 0)
			j->enabled = true;
		else if (strcmp(value, "false") == 0 || strcmp(value, "no") == 0 || strcmp(value, "0") == 0)
			j->enabled = false;
		else
			diag_add(js->d, file, line, "jail %s: enabled must be true or false, not \"%s\"",
			    j->name, value);
	} else {
		diag_add(js->d, file, line, "jail %s: unknown key \"%s\"", j->name, key);
	}
	return 0;
}

static bool
jail_has_event(const struct jail *j, const char *ev)
{
	for (size_t i = 0; i < j->nevents; i++)
		if (strcmp(j->events[i], ev) == 0)
			return true;
	return false;
}

static bool
key_is_ip(const struct jail *j)
{
	return j->key == KEY_IP || j->key == KEY_PREFIX;
}

/* reply_ok - a reply a Postfix access map can answer for a temporary
 * failure: "4NN", then text of printable ASCII */
static bool
reply_ok(const char *r)
{
	if (strlen(r) > REPLY_MAX || r[0] != '4' || !isdigit((unsigned char)r[1]) ||
	    !isdigit((unsigned char)r[2]) || (r[3] != ' ' && r[3] != '\0'))
		return false;
	for (; *r; r++)
		if (*r < ' ' || *r > '~')
			return false;
	return true;
}

/* check_actions - which actions go with which key, and the reply of defer */
static void
check_actions(struct jailset *js, struct jail *j)
{
	struct diag *d = js->d;
	unsigned on_account = ACTION_HOLD | ACTION_DEFER, on_ip = ACTION_NFT | ACTION_REJECT;

	if (key_is_ip(j) && (j->actions & on_account)) {
		diag_add(d, j->file, j->l_action, "jail %s: action %s needs an account key "
		    "(account, sender, domain)", j->name,
		    (j->actions & ACTION_HOLD) ? "hold" : "defer");
		return;
	}
	if ((j->actions & ACTION_HOLD) && (j->actions & ACTION_DEFER)) {
		diag_add(d, j->file, j->l_action, "jail %s: hold and defer cannot be combined "
		    "(one answer per account in the map)", j->name);
		return;
	}
	if (!key_is_ip(j) && (j->actions & on_ip)) {
		/* key = account with nft: ban the addresses that fail against it */
		if (j->key != KEY_ACCOUNT || j->recidive) {
			diag_add(d, j->file, j->l_action, "jail %s: actions nft and reject need an ip "
			    "key (or key = account, to ban the addresses that fail against an "
			    "account)", j->name);
		} else if (j->actions & on_account) {
			diag_add(d, j->file, j->l_action, "jail %s: a jail that bans the addresses "
			    "failing against an account cannot also hold or defer the account (it "
			    "is the victim)", j->name);
		} else if (j->l_limits) {
			diag_add(d, j->file, j->l_limits, "jail %s: a jail that bans the addresses "
			    "failing against an account counts failures: maxretry and findtime, "
			    "not limits", j->name);
		} else {
			j->bans_addresses = true;
		}
		return;
	}
	if ((j->actions & ACTION_DEFER) && j->reply != NULL && !reply_ok(j->reply))
		diag_add(d, j->file, j->l_reply, "jail %s: the reply of defer must be a "
		    "temporary failure, \"4NN text\" in printable ASCII of at most %d characters "
		    "(e.g. \"%s\")", j->name, REPLY_MAX, DEFAULT_DEFER_REPLY);
}

/* spare_finish - room for maxretry * spare_factor failures per key once a
 * spared address may need that many */
static void
spare_finish(struct jailset *js, struct jail *j)
{
	uint64_t need = (uint64_t)j->maxretry * j->spare_factor;

	if (j->spare_after == 0 || j->bans_addresses)
		return;
	if (need > LIMIT_MAX) {
		diag_add(js->d, j->file, j->l_spare_factor ? j->l_spare_factor : j->l_spare,
		    "jail %s: maxretry x spare_factor is more than %d", j->name, LIMIT_MAX);
		return;
	}
	j->ringmax = (uint16_t)need;
}

/* finish_jail - checks that need the whole section; derived values */
static void
finish_jail(struct jailset *js, struct jail *j)
{
	struct diag *d = js->d;

	if (j->nevents == 0) {
		diag_add(d, j->file, j->line, "jail %s: events is missing", j->name);
		return;
	}
	j->recidive = jail_has_event(j, "ban");
	if (j->recidive && j->nevents > 1)
		diag_add(d, j->file, j->events_line,
		    "jail %s: events = ban (recidive) cannot be combined with other events", j->name);
	if (j->recidive && (j->key == KEY_SENDER || j->key == KEY_DOMAIN))
		diag_add(d, j->file, j->l_key ? j->l_key : j->line,
		    "jail %s: a recidive jail's key must be ip, ip/N or account", j->name);
	if (j->maxretry && j->nlimits)
		diag_add(d, j->file, j->l_limits,
		    "jail %s: maxretry and limits cannot both be set (failure or quota jail?)", j->name);
	else if (!j->maxretry && !j->l_limits && !j->l_maxretry)
		diag_add(d, j->file, j->line, "jail %s: needs maxretry (with findtime) or limits", j->name);
	if (j->l_findtime && j->l_limits)
		diag_add(d, j->file, j->l_findtime,
		    "jail %s: findtime belongs to maxretry; limits carry their own windows", j->name);
	if (j->l_count && !j->l_limits)
		diag_add(d, j->file, j->l_count, "jail %s: count needs limits", j->name);
	if (j->count_rcpt && !jail_has_event(j, "submission"))
		diag_add(d, j->file, j->l_count,
		    "jail %s: count = recipients needs events to include submission", j->name);
	if (j->l_action == 0)
		diag_add(d, j->file, j->line, "jail %s: action is missing", j->name);
	else
		check_actions(js, j);
	/* after check_actions: a jail that bans the addresses failing against
	 * an account spares too (the addresses it would ban) */
	if ((j->l_spare || j->l_spare_factor) && (!j->maxretry || j->recidive ||
	    !(key_is_ip(j) || j->bans_addresses)))
		diag_add(d, j->file, j->l_spare ? j->l_spare : j->l_spare_factor,
		    "jail %s: spare_authenticated is for failure jails (maxretry) keyed by ip or "
		    "ip/N, or by account with action nft or reject", j->name);
	else if (j->l_spare_factor && !j->l_spare)
		diag_add(d, j->file, j->l_spare_factor,
		    "jail %s: spare_factor needs spare_authenticated", j->name);
	else if (j->l_spare_factor && j->bans_addresses)
		diag_add(d, j->file, j->l_spare_factor,
		    "jail %s: spare_factor is for jails keyed by ip: a jail that bans the addresses "
		    "failing against an account never bans a spared one", j->name);
	if (j->maxretry) {
		if (j->findtime == 0)
			j->findtime = 600;
		j->window = j->findtime;
		j->ringmax = (uint16_t)j->maxretry;
		spare_finish(js, j);
	} else {
		uint32_t big = 0;
		for (size_t i = 0; i < j->nlimits; i++) {
			if (j->limits[i].w > j->window)
				j->window = j->limits[i].w;
			if (j->limits[i].n > big)
				big = j->limits[i].n;
		}
		/* a window holding more than the largest limit is exceeded already */
		j->ringmax = (uint16_t)(big + 1);
	}
	if (!j->ignore_set) {
		j->cidrs = malloc(sizeof(loopback));
		if (j->cidrs == NULL) {
			diag_add(d, j->file, j->line, "out of memory");
			return;
		}
		memcpy(j->cidrs, loopback, sizeof(loopback));
		j->ncidrs = 2;
	}
}

/* Event kinds joined by queue id to the submission of their message. */
#define EV_REMOTE_REJECT "remote_reject"
#define EV_REMOTE_LISTED "remote_listed"
#define EV_REQUEUED "requeued"

enum delivery { NOT_DELIVERY, DELIVERY_REFUSAL, DELIVERY_LISTED, DELIVERY_LINK };

/* delivery_kind - what a delivery-result event is to the join */
static enum delivery
delivery_kind(const char *type)
{
	if (type[0] != 'r')
		return NOT_DELIVERY;
	if (strcmp(type, EV_REMOTE_REJECT) == 0)
		return DELIVERY_REFUSAL;
	if (strcmp(type, EV_REMOTE_LISTED) == 0)
		return DELIVERY_LISTED;
	if (strcmp(type, EV_REQUEUED) == 0)
		return DELIVERY_LINK;
	return NOT_DELIVERY;
}

/* kind_of - the index of event kind type among those the jails count, or -1 */
static int
kind_of(const struct jailset *js, const char *type)
{
	for (size_t i = 0; i < js->nkinds; i++)
		if (js->kinds[i][0] == type[0] && strcmp(js->kinds[i], type) == 0)
			return (int)i;
	return -1;
}

/* index_kinds - name each kind the (non-recidive) jails count once, and
 * mark in each jail which it counts */
static int
index_kinds(struct jailset *js)
{
	size_t max = 0;

	for (size_t i = 0; i < js->n; i++)
		max += js->jails[i]->nevents;
	if ((js->kinds = calloc(max ? max : 1, sizeof(*js->kinds))) == NULL)
		return -1;
	for (size_t i = 0; i < js->n; i++) {
		struct jail *j = js->jails[i];
		if (j->recidive)
			continue;
		for (size_t e = 0; e < j->nevents; e++)
			if (kind_of(js, j->events[e]) < 0)
				js->kinds[js->nkinds++] = j->events[e];
	}
	for (size_t i = 0; i < js->n; i++) {
		struct jail *j = js->jails[i];
		if ((j->counts_kind = calloc(js->nkinds ? js->nkinds : 1, 1)) == NULL)
			return -1;
		for (size_t e = 0; e < j->nevents && !j->recidive; e++)
			j->counts_kind[kind_of(js, j->events[e])] = 1;
		j->counts_listed = !j->recidive && jail_has_event(j, EV_REMOTE_LISTED);
		if (!j->recidive && (jail_has_event(j, EV_REMOTE_REJECT) || j->counts_listed))
			js->need_trace = true;
	}
	js->kind_submission = kind_of(js, "submission");
	return 0;
}

int
jails_load(const char *path, struct jailset **out, struct diag *d)
{
	struct jailset *js = calloc(1, sizeof(*js));
	size_t before = d->n, k = 0;
	int rc = -1;

	*out = NULL;
	if (js == NULL) {
		diag_add(d, path, 0, "out of memory");
		return -1;
	}
	js->d = d;
	if (cfgfile_parse_path(path, ".jail", load_handler, js, d) != 0)
		goto out;
	for (size_t i = 0; i < js->n; i++)
		finish_jail(js, js->jails[i]);
	if (d->n != before)
		goto out;
	js->span = MIN_HISTORY_SPAN;
	for (size_t i = 0; i < js->n; i++) {
		struct jail *j = js->jails[i];
		if (!j->enabled) {
			jail_free(j);
			continue;
		}
		js->jails[k++] = j;
		if (j->recidive && j->window > js->span)
			js->span = j->window;
		if (j->spare_after > 0)
			js->need_logins = true;
		if (jail_has_event(j, "submission") &&
		    (j->count_rcpt || j->key == KEY_SENDER || j->key == KEY_DOMAIN))
			js->need_pending = true;
	}
	js->n = k;
	if (index_kinds(js) != 0) {
		diag_add(d, path, 0, "out of memory");
		goto out;
	}
	rc = 0;
out:
	js->d = NULL;
	js->cur = NULL;
	js->cur_file = NULL;
	if (rc != 0) {
		if (d->n == before)
			diag_add(d, path, 0, "cannot load jails");
		jails_free(js);
		return -1;
	}
	*out = js;
	return 0;
}

void
jails_free(struct jailset *js)
{
	if (js == NULL)
		return;
	for (size_t i = 0; i < js->n; i++)
		jail_free(js->jails[i]);
	free(js->jails);
	free(js->kinds);
	hashtab_free(&js->pending);
	msgtrace_free(&js->trace);
	free(js);
}

void
jails_clear_state(struct jailset *js)
{
	for (size_t i = 0; i < js->n; i++) {
		struct jail *j = js->jails[i];
		hashtab_free(&j->counters);
		hashtab_free(&j->bans);
		hashtab_free(&j->spared);
		hashtab_free(&j->watches);
		addrlog_free(&j->addrs);
		spread_free(&j->listed);
		j->alarm_until = 0;
	}
	hashtab_free(&js->pending);
	msgtrace_free(&js->trace);
	js->nalarms = 0;
}

int
jails_check_events(const struct jailset *js,
    bool (*known)(void *arg, const char *event), void *arg, struct diag *d)
{
	int n = 0;

	for (size_t i = 0; i < js->n; i++) {
		const struct jail *j = js->jails[i];
		for (size_t e = 0; e < j->nevents; e++) {
			if (strcmp(j->events[e], "ban") == 0 || known(arg, j->events[e]))
				continue;
			diag_add(d, j->file, j->events_line,
			    "jail %s: no rule produces event \"%s\"", j->name, j->events[e]);
			n++;
		}
	}
	return n;
}

struct carry_ctx {
	bool (*carries)(void *arg, const char *event, const char *field);
	void *arg;
};

/* event_carries - whether event can reach a jail with field set, joins
 * included */
static bool
event_carries(const struct carry_ctx *c, const char *event, const char *field)
{
	if (c->carries(c->arg, event, field))
		return true;
	if (strcmp(event, "submission") == 0 && strcmp(field, "sender") == 0)
		return c->carries(c->arg, "queued", "sender");
	if (delivery_kind(event) == DELIVERY_REFUSAL || delivery_kind(event) == DELIVERY_LISTED)
		return strcmp(field, "user") == 0 && c->carries(c->arg, "submission", field);
	return false;
}

/* key_field - the event field jail j keys on; what it is called in a diag */
static const char *
key_field(const struct jail *j, const char **what)
{
	switch (j->key) {
	case KEY_IP:
	case KEY_PREFIX:
		*what = "an address (ip)";
		return "ip";
	case KEY_ACCOUNT:
		*what = "an account (user)";
		return "user";
	case KEY_SENDER:
		*what = "a sender";
		return "sender";
	case KEY_DOMAIN:
		*what = "an account or sender with a domain";
		return "user";
	}
	return "ip";
}

int
jails_check_keys(const struct jailset *js,
    bool (*carries)(void *arg, const char *event, const char *field), void *arg,
    struct diag *d)
{
	struct carry_ctx c = { carries, arg };
	int n = 0;

	for (size_t i = 0; i < js->n; i++) {
		const struct jail *j = js->jails[i];
		const char *what, *field = key_field(j, &what);
		if (j->recidive)
			continue;
		for (size_t e = 0; e < j->nevents; e++) {
			const char *ev = j->events[e];
			bool ok = event_carries(&c, ev, field) ||
			    (j->key == KEY_DOMAIN && event_carries(&c, ev, "sender"));
			if (ok && j->bans_addresses && !event_carries(&c, ev, "ip")) {
				diag_add(d, j->file, j->events_line, "jail %s: bans the addresses "
				    "failing against an account, but no rule gives event \"%s\" "
				    "an address (ip)", j->name, ev);
				n++;
			} else if (!ok) {
				diag_add(d, j->file, j->l_key ? j->l_key : j->events_line,
				    "jail %s: key %s, but no rule gives event \"%s\" %s", j->name,
				    j->key == KEY_ACCOUNT ? "account" : j->key == KEY_SENDER ?
				    "sender" : j->key == KEY_DOMAIN ? "domain" : "ip", ev, what);
				n++;
			}
		}
	}
	return n;
}

size_t
jails_count(const struct jailset *js)
{
	return js->n;
}

const char *
jails_name(const struct jailset *js, size_t i)
{
	return i < js->n ? js->jails[i]->name : NULL;
}

unsigned
jails_actions(const struct jailset *js, size_t i)
{
	return i < js->n ? js->jails[i]->actions : 0;
}

int
jails_signal(const struct jailset *js, const char *jail, struct jail_signal *out)
{
	static const char *const keys[] = {
		[KEY_IP] = "ip", [KEY_PREFIX] = "ip", [KEY_ACCOUNT] = "account",
		[KEY_SENDER] = "sender", [KEY_DOMAIN] = "domain",
	};
	const struct jail *j = find_jail(js, jail);

	if (j == NULL)
		return -1;
	out->key = keys[j->key];
	out->window = j->window;
	out->bans_addresses = j->bans_addresses;
	out->alarms = j->counts_listed;
	/* DESIGN: now for jails acting on accounts (hold, defer); a jail keyed
	 * by account that bans addresses tells of them in the digest */
	if (j->notify_set)
		out->notify = j->notify;
	else
		out->notify = (j->actions & (ACTION_HOLD | ACTION_DEFER)) ? JAIL_NOTIFY_NOW :
		    JAIL_NOTIFY_DIGEST;
	return 0;
}

int64_t
jails_longest_window(const struct jailset *js)
{
	int64_t w = 0;

	for (size_t i = 0; i < js->n; i++) {
		if (js->jails[i]->window > w)
			w = js->jails[i]->window;
		/* the logins a spared jail looks back on are restored too */
		if (js->jails[i]->spare_after > w)
			w = js->jails[i]->spare_after;
	}
	/* a restart rebuilds the delivery join from the submissions of the
	 * last day, as a running daemon keeps them */
	if (js->need_trace && w < PENDING_TTL)
		w = PENDING_TTL;
	return w;
}

int64_t
jails_history_span(const struct jailset *js)
{
	return js->span;
}

size_t
jails_tracked_keys(const struct jailset *js, size_t i)
{
	if (i >= js->n)
		return 0;
	/* a jail that bans the addresses failing against an account counts in
	 * its addrlog */
	return js->jails[i]->bans_addresses ? addrlog_accounts(&js->jails[i]->addrs) :
	    js->jails[i]->counters.n;
}

/* ---- keys ------------------------------------------------------------- */

/* copy_key - s into out; false if it does not fit (no key then) */
static bool
copy_key(char *out, size_t len, const char *s)
{
	size_t n = strlen(s);

	if (n >= len)
		return false;
	memcpy(out, s, n + 1);
	return true;
}

/* An event's address, parsed once however many jails key on it. */
struct ipmemo {
	const char *ip;
	int state;               /* 0: not parsed yet, 1: c holds it, -1: no address */
	struct cidr c;
};

/* ip_key - the key (and target) for the address in m in jail j; false if it
 * is not an address or is ignored */
static bool
ip_key(const struct jail *j, struct ipmemo *m, char *out, size_t len)
{
	struct cidr c;

	if (m->state == 0)
		m->state = m->ip[0] != '\0' && strchr(m->ip, '/') == NULL &&
		    parse_cidr(m->ip, &m->c) == 0 ? 1 : -1;
	if (m->state < 0)
		return false;
	c = m->c;
	for (size_t i = 0; i < j->ncidrs; i++)
		if (cidr_match(&j->cidrs[i], c.family, c.addr))
			return false;
	/* Event addresses are canonical already (rules.c): an exact key is the
	 * address as it is, with no formatting on the hot path. */
	if (j->key != KEY_PREFIX)
		return copy_key(out, len, m->ip);
	{
		int max = c.family == AF_INET ? 32 : 128;
		if (j->prefix <= max) {
			for (int b = j->prefix; b < max; b++)
				c.addr[b / 8] &= (unsigned char)~(0x80u >> (b % 8));
			c.len = j->prefix;
		}
	}
	format_cidr(&c, out, len);
	return true;
}

static bool
name_ignored(const struct jail *j, const char *name)
{
	for (size_t i = 0; i < j->nnames; i++)
		if (strcmp(j->names[i], name) == 0)
			return true;
	return false;
}

/* event_key - the key of ev in j; false if ev lacks the field or it is
 * ignored */
static bool
event_key(const struct jail *j, const struct event *ev, struct ipmemo *m, char *out,
    size_t len)
{
	const char *at;

	switch (j->key) {
	case KEY_IP:
	case KEY_PREFIX:
		return ip_key(j, m, out, len);
	case KEY_ACCOUNT:
		if (ev->user[0] == '\0' || !copy_key(out, len, ev->user))
			return false;
		break;
	case KEY_SENDER:
		if (ev->sender[0] == '\0' || !copy_key(out, len, ev->sender))
			return false;
		break;
	case KEY_DOMAIN:
		if ((at = strrchr(ev->user, '@')) == NULL && (at = strrchr(ev->sender, '@')) == NULL)
			return false;
		if (at[1] == '\0')
			return false;
		if (!copy_key(out, len, at + 1))
			return false;
		/* domains are case-insensitive; one key per domain */
		for (char *p = out; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		break;
	}
	return !name_ignored(j, out);
}

/* target_key - the key of a verdict's target in a recidive jail */
static bool
target_key(const struct jail *j, const char *target, enum target_kind kind,
    char *out, size_t len)
{
	struct cidr c;

	if (kind == TARGET_IP) {
		if (!key_is_ip(j))
			return false;
		if (strchr(target, '/') == NULL) {
			struct ipmemo m = { .ip = target };
			return ip_key(j, &m, out, len);
		}
		if (parse_cidr(target, &c) != 0)
			return false;
		for (size_t i = 0; i < j->ncidrs; i++)
			if (cidr_match(&j->cidrs[i], c.family, c.addr))
				return false;
		format_cidr(&c, out, len);
		return true;
	}
	if (key_is_ip(j) || name_ignored(j, target))
		return false;
	snprintf(out, len, "%s", target);
	return true;
}

/* ---- bans ------------------------------------------------------------- */

/* level_in - 1 + the bans of key in table t (a jail's bans or watches)
 * started within the history span before now */
static int
level_in(struct jailset *js, struct hashtab *t, const char *key, int64_t now)
{
	struct ent *b = ent_lookup(t, key);
	int level = 1;

	if (b == NULL)
		return 1;
	/* starts are kept in time order: count those in (now - span, now] */
	return level + (int)(ent_rank(b, now) - ent_rank(b, now - js->span));
}

static int64_t
ban_duration(const struct jail *j, int level)
{
	int64_t cap = j->maxbantime < TEN_YEARS ? j->maxbantime : TEN_YEARS;
	double d = (double)j->bantime;

	for (int i = 1; i < level && d < (double)cap; i++)
		d *= j->factor;
	if (d >= (double)cap)
		return cap;
	if (d < 1)
		return 1;
	return (int64_t)(d + 0.5);
}

static int
ban_level(struct jailset *js, struct jail *j, const char *key, int64_t now)
{
	return level_in(js, &j->bans, key, now);
}

/* record_in - note a ban of key in table t (a jail's bans or watches): its
 * start (for levels) and its end */
static int
record_in(struct hashtab *t, const char *key, int64_t start, int64_t end)
{
	struct ent *b = ent_get(t, key, 2, false);

	if (b == NULL)
		return -1;
	if (ent_push(t, &b, t32(start), 0, BAN_STARTS_MAX, false) != 0)
		return -1;
	b->t32 = t32(end);
	return 0;
}

static int
ban_record(struct jail *j, const char *key, int64_t start, int64_t end)
{
	return record_in(&j->bans, key, start, end);
}

/* ---- spare_authenticated ---------------------------------------------- */

/*
 * Behind one NAT address an office shares: one user mistyping a password
 * would ban everyone.  An address from which some account logged in (a
 * submission: Postfix logs sasl_username only after a successful AUTH)
 * within spare_after of a failure needs maxretry * spare_factor failures.
 * An address that only ever failed is never spared.  The logins ride on
 * stored submission events (jails_want_event), so a restart restores them
 * with the counters (jail_restore_event).
 */

/* spare_note_login - remember, per sparing jail, the newest login time of
 * the key of ev's address */
static int
spare_note_login(struct jailset *js, const struct event *ev, struct ipmemo *m)
{
	char key[MJ_TARGET_MAX];
	struct ent *e;

	for (size_t i = 0; i < js->n; i++) {
		struct jail *j = js->jails[i];
		if (j->spare_after == 0 || !ip_key(j, m, key, sizeof(key)))
			continue;
		if ((e = ent_get(&j->spared, key, 0, false)) == NULL)
			return -1;
		if (t32(ev->time) > e->t32)
			e->t32 = t32(ev->time);
	}
	return 0;
}

/* spare_applies - did an account log in from key within spare_after before
 * t (or after it: a line of a second log read late)? */
static bool
spare_applies(struct jail *j, const char *key, int64_t t)
{
	struct ent *e = ent_lookup(&j->spared, key);

	return e != NULL && (int64_t)e->t32 > t - j->spare_after;
}

/* ---- counting --------------------------------------------------------- */

struct sink {
	struct verdict *out;
	size_t max, n;
	bool live;               /* false: restoring, no verdicts */
};

static int feed_recidive(struct jailset *js, const char *target, enum target_kind kind,
    int64_t t, int64_t now, struct sink *sk);

/* verdict_reply - what the map answers for a verdict of j, or NULL */
static const char *
verdict_reply(const struct jail *j)
{
	if (j->actions & ACTION_REJECT)
		return j->reply ? j->reply : DEFAULT_REPLY;
	if (j->actions & ACTION_DEFER)
		return j->reply ? j->reply : DEFAULT_DEFER_REPLY;
	return NULL;
}

/* make_verdict - fill a verdict for key in j at now and record the ban */
static int
make_verdict(struct jailset *js, struct jail *j, const char *key, int64_t now,
    int64_t duration, struct verdict *v)
{
	int level = ban_level(js, j, key, now);

	memset(v, 0, sizeof(*v));
	v->jail = j->name;
	/* a jail that bans the addresses failing against an account keeps the
	 * bans of those addresses here, its watches of accounts apart */
	v->kind = key_is_ip(j) || j->bans_addresses ? TARGET_IP : TARGET_ACCOUNT;
	snprintf(v->target, sizeof(v->target), "%s", key);
	v->level = level;
	v->actions = j->actions;
	v->reply = verdict_reply(j);
	v->started_at = now;
	v->expires_at = now + (duration > 0 ? duration : ban_duration(j, level));
	return ban_record(j, key, now, v->expires_at);
}

/*
 * over_limit - does a window of c that holds time t reach j's limit?  The
 * windows ending at t and at each later event less than a window after
 * it: an event that comes late (another node's, or another log's read
 * behind) can complete a window that ends at an event counted before it.
 * For events in time order that is the window ending at t alone.  A
 * failure jail needs need events in findtime (maxretry, or more for an
 * address spared_authenticated).  *sum (and *li, the limit, for a quota)
 * say which.
 */
static bool
over_limit(const struct jail *j, struct ent *c, int64_t t, uint64_t need, uint64_t *sum,
    size_t *li)
{
	const uint32_t *r = ent_ring(c);

	for (uint32_t i = ent_rank(c, t - 1); i < c->n; i++) {
		int64_t e = r[ring_pos(c, i)];
		bool within = false;

		if (j->maxretry) {
			if (e >= t + j->findtime)
				break;
			if ((*sum = ent_sum(c, e, j->findtime, false)) >= need)
				return true;
			continue;
		}
		for (size_t l = 0; l < j->nlimits; l++) {
			if (e >= t + j->limits[l].w)
				continue;
			within = true;
			if ((*sum = ent_sum(c, e, j->limits[l].w, j->count_rcpt)) > j->limits[l].n) {
				*li = l;
				return true;
			}
		}
		if (!within)
			break;
	}
	return false;
}

/* count_key - count weight at time t for key in j; maybe a verdict */
static int
count_key(struct jailset *js, struct jail *j, const char *key, int64_t t,
    uint32_t weight, const struct event *ev, int64_t now, struct sink *sk)
{
	struct ent *b = ent_lookup(&j->bans, key), *c;
	char fbuf[24], lbuf[24];
	char reason[MJ_REASON_MAX];
	struct verdict *v;
	uint64_t sum = 0;
	size_t li = 0;
	bool spared = false;

	if (b != NULL && t < (int64_t)b->t32)
		return 0;   /* banned then: not counted, see top */
	if ((c = ent_get(&j->counters, key, j->ringmax < 2 ? j->ringmax : 2, j->count_rcpt)) == NULL)
		return -1;
	ent_prune(c, t - j->window);
	if (ent_push(&j->counters, &c, t32(t), weight, j->ringmax, j->count_rcpt) != 0)
		return -1;
	if (!sk->live || t <= now - j->window)
		return 0;
	if (j->maxretry)
		spared = j->spare_after > 0 && spare_applies(j, key, t);
	if (!over_limit(j, c, t, (uint64_t)j->maxretry * (spared ? j->spare_factor : 1),
	    &sum, &li) || sk->n >= sk->max)
		return 0;
	if (j->recidive)
		snprintf(reason, sizeof(reason), "%" PRIu64 " bans in %s", sum,
		    cfg_format_duration(j->findtime, fbuf, sizeof(fbuf)));
	else if (j->maxretry)
		snprintf(reason, sizeof(reason), "%" PRIu64 " %s in %s (rule %s%s%s)", sum,
		    ev && ev->type ? ev->type : "events",
		    cfg_format_duration(j->findtime, fbuf, sizeof(fbuf)),
		    ev && ev->rule ? ev->rule : "?", spared ? "; spared: an account logged in "
		    "from it within " : "", spared ? cfg_format_duration(j->spare_after, lbuf,
		    sizeof(lbuf)) : "");
	else
		snprintf(reason, sizeof(reason), "%" PRIu64 " %s in %s over limit %" PRIu32 "/%s", sum,
		    j->count_rcpt ? "recipients" : "messages",
		    cfg_format_duration(j->limits[li].w, fbuf, sizeof(fbuf)),
		    j->limits[li].n, cfg_format_duration(j->limits[li].w, lbuf, sizeof(lbuf)));
	v = &sk->out[sk->n];
	if (make_verdict(js, j, key, now, 0, v) != 0)
		return -1;
	snprintf(v->reason, sizeof(v->reason), "%s", reason);
	sk->n++;
	c->n = 0;   /* counting starts fresh after the ban */
	c->head = 0;
	if (!j->recidive)
		return feed_recidive(js, v->target, v->kind, now, now, sk);
	return 0;
}

/* feed_recidive - a ban of target (by a non-recidive jail) at time t */
static int
feed_recidive(struct jailset *js, const char *target, enum target_kind kind,
    int64_t t, int64_t now, struct sink *sk)
{
	char key[MJ_TARGET_MAX];

	for (size_t i = 0; i < js->n; i++) {
		struct jail *r = js->jails[i];
		if (!r->recidive || !target_key(r, target, kind, key, sizeof(key)))
			continue;
		if (count_key(js, r, key, t, 1, NULL, now, sk) != 0)
			return -1;
	}
	return 0;
}

/* defers - whether j counts this submission only when its queued line
 * (sender, nrcpt) arrives */
static bool
defers(const struct jail *j, const struct event *ev)
{
	return j->count_rcpt || j->key == KEY_SENDER ||
	    (j->key == KEY_DOMAIN && strchr(ev->user, '@') == NULL);
}

static int count_against_account(struct jailset *js, struct jail *j,
    const struct event *ev, struct ipmemo *m, int64_t now, struct sink *sk);

static int
count_event(struct jailset *js, struct jail *j, const struct event *ev,
    struct ipmemo *m, uint32_t weight, int64_t now, struct sink *sk)
{
	char key[MJ_TARGET_MAX];

	if (j->bans_addresses)
		return count_against_account(js, j, ev, m, now, sk);
	if (!event_key(j, ev, m, key, sizeof(key)))
		return 0;
	return count_key(js, j, key, ev->time, weight, ev, now, sk);
}

/* ---- addresses failing against an account ---------------------------- */

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
	struct ent *b = ent_lookup(&j->bans, ip);
	struct verdict *v;
	char fbuf[24];

	if (b != NULL && ev->time < (int64_t)b->t32)
		return 0;   /* banned in this jail already */
	if (!sk->live || ev->time <= now - j->window || sk->n >= sk->max)
		return 0;
	if (j->spare_after > 0 && spare_applies(j, ip, ev->time))
		return 0;   /* behind it, someone logged in: not banned here */
	v = &sk->out[sk->n];
	if (make_verdict(js, j, ip, now, 0, v) != 0)
		return -1;
	snprintf(v->reason, sizeof(v->reason), "%s against attacked account %s (%" PRIu32
	    " in %s)", ev->type, account, j->maxretry,
	    cfg_format_duration(j->findtime, fbuf, sizeof(fbuf)));
	sk->n++;
	return feed_recidive(js, ip, TARGET_IP, now, now, sk);
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
	int level = level_in(js, &j->watches, account, now);
	struct verdict *v = &sk->out[sk->n];

	for (size_t i = 0; i < n && j->spare_after > 0; i++)
		if (spare_applies(j, addrs[i], ev->time))
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
	v->expires_at = now + ban_duration(j, level);
	snprintf(v->reason, sizeof(v->reason), "%" PRIu64 " %s in %s from %zu addresses "
	    "(rule %s): each is banned while this lasts%s", sum, ev->type,
	    cfg_format_duration(j->findtime, fbuf, sizeof(fbuf)), n,
	    ev->rule ? ev->rule : "?", spared);
	if (record_in(&j->watches, account, now, v->expires_at) != 0)
		return -1;
	sk->n++;
	addrlog_forget(&j->addrs, account);   /* counting starts fresh after the watch */
	/* bans beyond out[] are made at each address's next failure */
	for (size_t i = 0; i < n && sk->n < sk->max; i++)
		if (ban_attacker(js, j, account, addrs[i], ev, now, sk) != 0)
			return -1;
	return 0;
}

/* count_against_account - a failure against an account, in a jail that
 * bans the addresses failing against it */
static int
count_against_account(struct jailset *js, struct jail *j, const struct event *ev,
    struct ipmemo *m, int64_t now, struct sink *sk)
{
	char account[MJ_TARGET_MAX], ip[MJ_TARGET_MAX];
	struct ent *w;
	bool has_ip;
	int64_t end = ev->time;

	if (!event_key(j, ev, m, account, sizeof(account)))
		return 0;   /* no user name on the line, or an ignored account */
	has_ip = ip_key(j, m, ip, sizeof(ip));
	w = ent_lookup(&j->watches, account);
	if (w != NULL && ev->time < (int64_t)w->t32)
		return has_ip ? ban_attacker(js, j, account, ip, ev, now, sk) : 0;
	/* The addrlog is the counter: one block per account, its ring of
	 * maxretry (time, address) in time order.  ip_key parsed the address
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

/* ---- delivery results joined to their submission --------------------- */

/*
 * A provider's refusal of a delivery (remote_reject, remote_listed) is
 * charged to the account that submitted the message: msgtrace follows the
 * queue id back to its submission (through "queued as" and "forwarded as"
 * links: requeued), once per message and recipient domain.  The joined
 * event has the refusal's time and the submission's account (no address:
 * the join keeps what it needs, ~80 bytes a message).
 * These rows, the submissions and the links are what a restart replays.
 */

/* raise_alarm - at most one per jail and findtime */
static void
raise_alarm(struct jailset *js, struct jail *j, const struct event *ev,
    const struct spread_stats *st, int64_t now)
{
	struct alarm *a;
	char fbuf[24];

	if (ev->time < j->alarm_until || js->nalarms == ALARMS_MAX)
		return;
	j->alarm_until = ev->time + j->window;
	a = &js->alarms[js->nalarms++];
	memset(a, 0, sizeof(*a));
	a->jail = j->name;
	a->event = EV_REMOTE_LISTED;
	a->time = now;
	a->keys = st->keys;
	a->events = st->events;
	snprintf(a->reason, sizeof(a->reason), "%" PRIu32 " %s from %" PRIu32 " accounts in %s: "
	    "the server's own address or domain looks listed; none is held for them",
	    st->events, EV_REMOTE_LISTED, st->keys,
	    cfg_format_duration(j->window, fbuf, sizeof(fbuf)));
}

/* listed_counts - the spread rule for a refusal about the server (see
 * SPREAD_KEYS_MIN): 1 it counts for its key, 0 it does not, -1 error.  In
 * a fleet each node's server is its own: the spread is of the refusals
 * its node logged, and the alarm is raised by that node alone (every node
 * counts every node's events and agrees that they hold no one; one says
 * so). */
static int
listed_counts(struct jailset *js, struct jail *j, const struct event *ev,
    struct ipmemo *m, int64_t now, struct sink *sk)
{
	char key[MJ_TARGET_MAX];
	struct spread_stats st;

	if (!event_key(j, ev, m, key, sizeof(key)))
		return 0;
	if (spread_add(&j->listed, ev->time, ev->node, key) != 0)
		return -1;
	spread_stats(&j->listed, ev->time, j->window, ev->node, key, &st);
	if (st.keys < SPREAD_KEYS_MIN ||
	    (uint64_t)st.top * SPREAD_SHARE_DEN >= (uint64_t)st.events * SPREAD_SHARE_NUM)
		return 1;
	if (sk->live && ev->node == NULL && ev->time > now - j->window)
		raise_alarm(js, j, ev, &st, now);
	return 0;
}

/*
 * trace_id - a queue id as the joins key it (msgtrace, pending): queue ids
 * are unique per host only, so another fleet node's carries the node's
 * name after a byte no queue id of this node may hold, "QID\x1fNODE"; this
 * node's is the id itself.  NULL (not joined) if it is empty, holds that
 * byte, or does not fit buf (MSGTRACE_ID_MAX).
 */
static const char *
trace_id(const struct event *ev, const char *qid, char *buf, size_t len)
{
	if (qid[0] == '\0' || strchr(qid, '\x1f') != NULL)
		return NULL;
	if (ev->node == NULL)
		return qid;
	if (snprintf(buf, len, "%s\x1f%s", qid, ev->node) >= (int)len)
		return NULL;
	return buf;
}

/* dispatch_delivery - a delivery result or link, joined to its submission */
static int
dispatch_delivery(struct jailset *js, const struct event *ev, enum delivery d,
    int64_t now, struct sink *sk)
{
	char idbuf[MSGTRACE_ID_MAX], newbuf[MSGTRACE_ID_MAX];
	const char *id = trace_id(ev, ev->qid, idbuf, sizeof(idbuf)), *newid;
	struct msgtrace_owner o;
	struct ipmemo mm;
	struct event m;
	const char *domain;
	int kind, rc;

	if (id == NULL)
		return 0;
	if (d == DELIVERY_LINK) {
		if ((newid = trace_id(ev, ev->newqid, newbuf, sizeof(newbuf))) == NULL)
			return 0;
		return msgtrace_link(&js->trace, id, newid, ev->time) < 0 ? -1 : 0;
	}
	if (!msgtrace_owner(&js->trace, id, &o))
		return 0;   /* no submission named an account: charged to no one */
	m = *ev;
	m.ip[0] = '\0';
	if (!copy_key(m.user, sizeof(m.user), o.account))
		return 0;
	domain = strrchr(ev->rcpt, '@');
	domain = domain ? domain + 1 : ev->rcpt;
	if ((rc = msgtrace_first_refusal(&js->trace, o.root, domain, ev->time)) <= 0)
		return rc;  /* this message and domain counted already (a retry) */
	mm.ip = m.ip;
	mm.state = 0;
	kind = kind_of(js, ev->type);
	for (size_t i = 0; i < js->n && kind >= 0; i++) {
		struct jail *j = js->jails[i];
		if (!j->counts_kind[kind])
			continue;
		if (d == DELIVERY_LISTED && j->counts_listed &&
		    (rc = listed_counts(js, j, &m, &mm, now, sk)) <= 0) {
			if (rc < 0)
				return -1;
			continue;
		}
		if (count_event(js, j, &m, &mm, 1, now, sk) != 0)
			return -1;
	}
	return 0;
}

/* trace_submission - remember whose message a queue id is */
static int
trace_submission(struct jailset *js, const struct event *ev)
{
	char buf[MSGTRACE_ID_MAX];
	const char *id = trace_id(ev, ev->qid, buf, sizeof(buf));

	if (id == NULL || ev->user[0] == '\0')
		return 0;
	return msgtrace_submission(&js->trace, id, ev->user, ev->time) < 0 ? -1 : 0;
}

bool
jails_take_alarm(struct jailset *js, struct alarm *out)
{
	if (js->nalarms == 0)
		return false;
	*out = js->alarms[0];
	memmove(js->alarms, js->alarms + 1, (js->nalarms - 1) * sizeof(js->alarms[0]));
	js->nalarms--;
	return true;
}

/* pending_put - remember a submission's ip, account and time by queue id */
static int
pending_put(struct jailset *js, const struct event *ev)
{
	char buf[MSGTRACE_ID_MAX];
	const char *id = trace_id(ev, ev->qid, buf, sizeof(buf));
	size_t qlen, ilen = strlen(ev->ip), ulen = strlen(ev->user);
	uint32_t h;
	struct hashent **s;
	struct ent *e;
	char *p;

	if (id == NULL || js->pending.n >= PENDING_MAX)
		return 0;   /* bounded: an unjoined flood must not grow memory */
	qlen = strlen(id);
	h = hashtab_hash(id, qlen);
	if ((s = hashtab_slot_for_insert(&js->pending, id, qlen, h, ENT_KEYOFF)) == NULL)
		return -1;
	if (*s != NULL)
		return 0;   /* first submission line wins */
	if ((e = ent_new(id, qlen, h, (uint16_t)((ilen + ulen + 2 + 3) / 4), false)) == NULL)
		return -1;
	e->t32 = t32(ev->time);
	p = (char *)ent_ring(e);
	memcpy(p, ev->ip, ilen + 1);
	memcpy(p + ilen + 1, ev->user, ulen + 1);
	*s = &e->h;
	js->pending.n++;
	return 0;
}

/* pending_take - join a queued event to its submission; fills m */
static bool
pending_take(struct jailset *js, const struct event *ev, struct event *m)
{
	char buf[MSGTRACE_ID_MAX];
	const char *id = trace_id(ev, ev->qid, buf, sizeof(buf)), *p;
	size_t qlen = id ? strlen(id) : 0;
	struct hashent **s = id ? ent_slot(&js->pending, id, qlen) : NULL;
	bool ok;

	if (s == NULL || *s == NULL)
		return false;
	*m = *ev;
	m->type = "submission";
	m->time = ent_of(*s)->t32;
	/* both fitted the event's buffers when pending_put stored them */
	p = (const char *)ent_ring(ent_of(*s));
	ok = copy_key(m->ip, sizeof(m->ip), p) &&
	    copy_key(m->user, sizeof(m->user), p + strlen(p) + 1);
	hashtab_del(&js->pending, s);
	return ok;
}

bool
jails_want_event(struct jailset *js, const struct event *ev)
{
	size_t qlen;
	struct hashent **s;

	if (ev->type == NULL || strcmp(ev->type, "ban") == 0)
		return false;
	if (js->need_trace) {
		/* a refusal or a link of a traced message: the join's restart */
		switch (delivery_kind(ev->type)) {
		case DELIVERY_LINK:
			return ev->qid[0] != '\0' && msgtrace_known(&js->trace, ev->qid) &&
			    !msgtrace_known(&js->trace, ev->newqid);
		case DELIVERY_REFUSAL:
		case DELIVERY_LISTED:
			return ev->qid[0] != '\0' && kind_of(js, ev->type) >= 0 &&
			    msgtrace_known(&js->trace, ev->qid);
		case NOT_DELIVERY:
			/* the submission a delivery result will be joined to */
			if (ev->qid[0] != '\0' && ev->user[0] != '\0' &&
			    strcmp(ev->type, "submission") == 0)
				return true;
			break;
		}
	}
	if (kind_of(js, ev->type) >= 0)
		return true;
	/* a login that spares an address (spare_authenticated) */
	if (js->need_logins && strcmp(ev->type, "submission") == 0)
		return true;
	/* a queued line that a jail is about to join to its submission */
	if (!js->need_pending || ev->qid[0] == '\0' || strcmp(ev->type, "queued") != 0)
		return false;
	qlen = strlen(ev->qid);
	s = ent_slot(&js->pending, ev->qid, qlen);
	return s != NULL && *s != NULL;
}

static int
dispatch(struct jailset *js, const struct event *ev, int64_t now, struct sink *sk)
{
	bool submission = ev->type && strcmp(ev->type, "submission") == 0;
	bool queued = ev->type && strcmp(ev->type, "queued") == 0;
	struct ipmemo am = { .ip = ev->ip }, mm = { .ip = NULL };
	struct event m;
	int kind;

	if (ev->type == NULL || strcmp(ev->type, "ban") == 0)
		return 0;   /* bans reach recidive jails from verdicts only */
	if (js->need_trace) {
		enum delivery d = delivery_kind(ev->type);
		if (d != NOT_DELIVERY)
			return dispatch_delivery(js, ev, d, now, sk);
		if (submission && trace_submission(js, ev) != 0)
			return -1;
	}
	kind = kind_of(js, ev->type);
	if (submission && js->need_logins && spare_note_login(js, ev, &am) != 0)
		return -1;
	if (submission && js->need_pending && ev->qid[0] != '\0' && pending_put(js, ev) != 0)
		return -1;
	for (size_t i = 0; i < js->n; i++) {
		struct jail *j = js->jails[i];
		if (kind < 0 || !j->counts_kind[kind])
			continue;
		if (submission && defers(j, ev))
			continue;
		if (count_event(js, j, ev, &am, 1, now, sk) != 0)
			return -1;
	}
	if (!queued || !js->need_pending || ev->qid[0] == '\0' || !pending_take(js, ev, &m))
		return 0;
	mm.ip = m.ip;
	for (size_t i = 0; i < js->n; i++) {
		struct jail *j = js->jails[i];
		uint32_t w = 1;
		if (js->kind_submission < 0 || !j->counts_kind[js->kind_submission] ||
		    !defers(j, &m))
			continue;
		if (j->count_rcpt && ev->nrcpt > 1)
			w = ev->nrcpt > (long)UINT32_MAX ? UINT32_MAX : (uint32_t)ev->nrcpt;
		if (count_event(js, j, &m, &mm, w, now, sk) != 0)
			return -1;
	}
	return 0;
}

int
jail_record_event(struct jailset *js, const struct event *ev, int64_t now,
    struct verdict *out, size_t max)
{
	struct sink sk = { out, max, 0, true };

	if (dispatch(js, ev, now, &sk) != 0)
		return -1;
	return (int)sk.n;
}

int
jail_restore_event(struct jailset *js, const struct event *ev)
{
	struct sink sk = { NULL, 0, 0, false };

	return dispatch(js, ev, ev->time, &sk);
}

/* canon_target - canonical form of an operator-given target; -1 if bad */
static int
canon_target(const char *target, enum target_kind kind, char *out, size_t len)
{
	struct cidr c;

	if (kind == TARGET_IP) {
		if (parse_cidr(target, &c) != 0)
			return -1;
		format_cidr(&c, out, len);
		return 0;
	}
	/* an account goes into a Postfix map: no spaces or control characters */
	if (target[0] == '\0' || strlen(target) >= MJ_FIELD_MAX)
		return -1;
	for (const char *p = target; *p; p++)
		if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p))
			return -1;
	snprintf(out, len, "%s", target);
	return 0;
}

int
jail_restore_ban(struct jailset *js, const char *jail, const char *target,
    enum target_kind kind, int level, int64_t started_at, int64_t expires_at,
    int64_t lifted_at)
{
	struct jail *j = find_jail(js, jail);
	struct sink sk = { NULL, 0, 0, false };
	int64_t end = lifted_at ? lifted_at : expires_at;
	bool watch;
	struct ent *c;

	(void)level;   /* levels are recomputed from the start times */
	if (j == NULL)
		return 0;
	/* an account watched by a jail that bans addresses: its own table,
	 * and no recidive (the account is the victim) */
	watch = j->bans_addresses && kind == TARGET_ACCOUNT;
	if (record_in(watch ? &j->watches : &j->bans, target, started_at, end) != 0)
		return -1;
	if (watch)
		addrlog_forget(&j->addrs, target);   /* counted afresh after it */
	else if ((c = ent_lookup(&j->counters, target)) != NULL && !j->bans_addresses) {
		c->n = 0;
		c->head = 0;
	}
	if (j->recidive || watch)
		return 0;
	return feed_recidive(js, target, kind, started_at, started_at, &sk);
}

int
jail_manual_verdict(struct jailset *js, const char *jail, const char *target,
    enum target_kind kind, int64_t duration, int64_t now, struct verdict *out)
{
	unsigned want = kind == TARGET_IP ? (ACTION_NFT | ACTION_REJECT) :
	    (ACTION_HOLD | ACTION_DEFER);
	struct sink sk = { NULL, 0, 0, false };
	char key[MJ_TARGET_MAX];
	struct jail *j = NULL;
	char dbuf[24];
	struct ent *c;

	if (canon_target(target, kind, key, sizeof(key)) != 0)
		return -1;
	if (jail != NULL) {
		j = find_jail(js, jail);
	} else {
		for (size_t i = 0; i < js->n && j == NULL; i++)
			if (js->jails[i]->actions & want)
				j = js->jails[i];
	}
	if (j == NULL || ((key_is_ip(j) || j->bans_addresses) != (kind == TARGET_IP)))
		return -1;
	if (make_verdict(js, j, key, now, duration, out) != 0)
		return -1;
	snprintf(out->reason, sizeof(out->reason), "manual %s for %s",
	    kind == TARGET_IP ? "ban" : "hold",
	    cfg_format_duration(out->expires_at - out->started_at, dbuf, sizeof(dbuf)));
	if ((c = ent_lookup(&j->counters, key)) != NULL) {
		c->n = 0;
		c->head = 0;
	}
	if (j->recidive)
		return 0;
	/* like a restored ban: recidive counts it, but makes no verdict now */
	return feed_recidive(js, key, kind, now, now, &sk) == 0 ? 0 : -1;
}

int
jail_lift(struct jailset *js, const char *jail, const char *target, int64_t now)
{
	char key[MJ_TARGET_MAX];
	struct cidr c;
	int n = 0;

	/* an address given by the operator may be in a non-canonical form */
	if (parse_cidr(target, &c) == 0)
		format_cidr(&c, key, sizeof(key));
	else
		snprintf(key, sizeof(key), "%s", target);
	for (size_t i = 0; i < js->n; i++) {
		struct jail *j = js->jails[i];
		struct ent *b;
		if (jail != NULL && strcmp(jail, j->name) != 0)
			continue;
		/* an account watched by a jail that bans addresses is lifted too */
		if (((b = ent_lookup(&j->bans, key)) == NULL || (int64_t)b->t32 <= now) &&
		    ((b = ent_lookup(&j->watches, key)) == NULL || (int64_t)b->t32 <= now))
			continue;
		b->t32 = t32(now);
		n++;
	}
	return n;
}

/* ---- expiry ----------------------------------------------------------- */

struct sweep {
	int64_t cut;
	int64_t now;
};

static bool
keep_counter(struct hashent *h, const void *arg)
{
	struct ent *e = ent_of(h);

	ent_prune(e, ((const struct sweep *)arg)->cut);
	return e->n > 0;
}

static bool
keep_ban(struct hashent *h, const void *arg)
{
	const struct sweep *s = arg;
	struct ent *e = ent_of(h);

	ent_prune(e, s->cut);
	return e->n > 0 || (int64_t)e->t32 > s->now;
}

static bool
keep_login(struct hashent *h, const void *arg)
{
	return (int64_t)ent_of(h)->t32 > ((const struct sweep *)arg)->cut;
}

static bool
keep_pending(struct hashent *h, const void *arg)
{
	return (int64_t)ent_of(h)->t32 > ((const struct sweep *)arg)->cut;
}

void
jails_expire(struct jailset *js, int64_t now)
{
	struct sweep s;

	for (size_t i = 0; i < js->n; i++) {
		struct jail *j = js->jails[i];
		s.now = now;
		/* Two windows, not one: a late line (a log read behind the clock)
		 * at now - window + 1 may still issue, and its window reaches back
		 * to now - 2 * window. */
		s.cut = now - 2 * j->window;
		hashtab_sweep(&j->counters, keep_counter, &s);
		if (j->bans_addresses)
			addrlog_expire(&j->addrs, s.cut);
		s.cut = now - js->span;
		hashtab_sweep(&j->bans, keep_ban, &s);
		hashtab_sweep(&j->watches, keep_ban, &s);
		if (j->spare_after > 0) {
			s.cut = now - j->spare_after;
			hashtab_sweep(&j->spared, keep_login, &s);
		}
	}
	s.now = now;
	s.cut = now - PENDING_TTL;
	hashtab_sweep(&js->pending, keep_pending, &s);
	if (js->need_trace)
		msgtrace_expire(&js->trace, s.cut);
}

/* ---- for "mailjail explain" (issue 15) -------------------------------- */

int
jail_shape(const struct jailset *js, const char *jail, struct jail_shape *out)
{
	const struct jail *j = find_jail(js, jail);
	static const char *const key_names[] = {
		[KEY_IP] = "ip", [KEY_PREFIX] = "prefix", [KEY_ACCOUNT] = "account",
		[KEY_SENDER] = "sender", [KEY_DOMAIN] = "domain",
	};

	memset(out, 0, sizeof(*out));
	if (j == NULL)
		return -1;
	out->recidive = j->recidive;
	out->key = key_names[j->key];
	out->kind = key_is_ip(j) ? TARGET_IP : TARGET_ACCOUNT;
	out->maxretry = j->maxretry;
	out->findtime = j->findtime;
	for (size_t i = 0; i < j->nlimits && i < JAIL_SHAPE_LIMITS; i++) {
		out->limits[i].n = j->limits[i].n;
		out->limits[i].w = j->limits[i].w;
		out->nlimits++;
	}
	out->count_rcpt = j->count_rcpt;
	out->window = j->window;
	out->spare_after = j->spare_after;
	out->spare_factor = j->spare_factor;
	out->bans_addresses = j->bans_addresses;
	out->deliveries = !j->recidive && (jail_has_event(j, EV_REMOTE_REJECT) ||
	    jail_has_event(j, EV_REMOTE_LISTED));
	return 0;
}

bool
jail_counts_for(const struct jailset *js, const char *jail, const struct event *ev,
    const char *target)
{
	const struct jail *j = find_jail(js, jail);
	struct ipmemo m = { .ip = ev->ip };
	char key[MJ_TARGET_MAX];
	int kind;

	if (j == NULL || j->recidive || ev->type == NULL ||
	    (kind = kind_of(js, ev->type)) < 0 || !j->counts_kind[kind])
		return false;
	if (!event_key(j, ev, &m, key, sizeof(key)))
		return false;
	if (strcmp(key, target) == 0)
		return true;
	/* an address banned for failing against an account */
	return j->bans_addresses && ip_key(j, &m, key, sizeof(key)) && strcmp(key, target) == 0;
}

int
jail_join_delivery(struct msgtrace *m, struct event *ev)
{
	char idbuf[MSGTRACE_ID_MAX], newbuf[MSGTRACE_ID_MAX];
	const char *id, *newid, *domain;
	struct msgtrace_owner o;
	enum delivery d;
	int rc;

	if (ev->type == NULL || (id = trace_id(ev, ev->qid, idbuf, sizeof(idbuf))) == NULL)
		return 0;
	if ((d = delivery_kind(ev->type)) == NOT_DELIVERY) {
		if (strcmp(ev->type, "submission") != 0 || ev->user[0] == '\0')
			return 0;
		return msgtrace_submission(m, id, ev->user, ev->time) < 0 ? -1 : 0;
	}
	if (d == DELIVERY_LINK) {
		if ((newid = trace_id(ev, ev->newqid, newbuf, sizeof(newbuf))) == NULL)
			return 0;
		return msgtrace_link(m, id, newid, ev->time) < 0 ? -1 : 0;
	}
	if (!msgtrace_owner(m, id, &o) || strlen(o.account) >= sizeof(ev->user))
		return 0;
	domain = strrchr(ev->rcpt, '@');
	if ((rc = msgtrace_first_refusal(m, o.root, domain ? domain + 1 : ev->rcpt,
	    ev->time)) <= 0)
		return rc;
	/* o.account lives in m, which the next call may change: copied now */
	snprintf(ev->user, sizeof(ev->user), "%s", o.account);
	return 1;
}
