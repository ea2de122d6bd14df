/*
 * jail - turns events into verdicts: keeps per jail and key the recent
 * events and the ban history it needs, and decides.  See jail.h for the
 * kinds of jail and the contract, jail_impl.h for the files of the module
 * (this one: bans, spare_authenticated, counting, dispatch, restore,
 * operator verdicts, expiry).
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
 *     the submission its queue id leads to (jail_delivery.c).  A jail keyed
 *     by account with nft or reject bans addresses (jail_account.c).
 *
 * Ownership: the jailset owns its jails, their strings and all state; verdicts
 * point at jail names and replies owned by the jailset.  No PCRE2, SQL or
 * netlink here.  Not thread-safe.
 */
#include "jail_impl.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfgfile.h"

#define DEFAULT_REPLY "450 4.7.1 Too many errors from your address, try again later"
#define PENDING_MAX 65536        /* queue ids awaiting their qmgr line */

void
jail_clear_state(struct jail *j)
{
	hashtab_free(&j->counters);
	hashtab_free(&j->bans);
	hashtab_free(&j->spared);
	hashtab_free(&j->watches);
	addrlog_free(&j->addrs);
	spread_free(&j->listed);
	j->alarm_until = 0;
}

void
jails_clear_state(struct jailset *js)
{
	for (size_t i = 0; i < js->n; i++)
		jail_clear_state(js->jails[i]);
	hashtab_free(&js->pending);
	msgtrace_free(&js->trace);
	js->nalarms = 0;
}

/* ---- bans ------------------------------------------------------------- */

/* jail_level_in - 1 + the bans of key in table t (a jail's bans or watches)
 * started within the history span before now */
int
jail_level_in(struct jailset *js, struct hashtab *t, const char *key, int64_t now)
{
	struct ent *b = jail_ent_lookup(t, key);
	int level = 1;

	if (b == NULL)
		return 1;
	/* starts are kept in time order: count those in (now - span, now] */
	return level + (int)(jail_ent_rank(b, now) - jail_ent_rank(b, now - js->span));
}

int64_t
jail_ban_duration(const struct jail *j, int level)
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
	return jail_level_in(js, &j->bans, key, now);
}

/* jail_record_in - note a ban of key in table t (a jail's bans or watches): its
 * start (for levels) and its end */
int
jail_record_in(struct hashtab *t, const char *key, int64_t start, int64_t end)
{
	struct ent *b = jail_ent_get(t, key, 2, false);

	if (b == NULL)
		return -1;
	if (jail_ent_push(t, &b, t32(start), 0, BAN_STARTS_MAX, false) != 0)
		return -1;
	b->t32 = t32(end);
	return 0;
}

static int
ban_record(struct jail *j, const char *key, int64_t start, int64_t end)
{
	return jail_record_in(&j->bans, key, start, end);
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
		if (j->spare_after == 0 || !jail_ip_key(j, m, key, sizeof(key)))
			continue;
		if ((e = jail_ent_get(&j->spared, key, 0, false)) == NULL)
			return -1;
		if (t32(ev->time) > e->t32)
			e->t32 = t32(ev->time);
	}
	return 0;
}

/* jail_spare_applies - did an account log in from key within spare_after before
 * t (or after it: a line of a second log read late)? */
bool
jail_spare_applies(struct jail *j, const char *key, int64_t t)
{
	struct ent *e = jail_ent_lookup(&j->spared, key);

	return e != NULL && (int64_t)e->t32 > t - j->spare_after;
}

/* ---- counting --------------------------------------------------------- */

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

/* jail_make_verdict - fill a verdict for key in j at now and record the ban */
int
jail_make_verdict(struct jailset *js, struct jail *j, const char *key, int64_t now,
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
	v->expires_at = now + (duration > 0 ? duration : jail_ban_duration(j, level));
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

	for (uint32_t i = jail_ent_rank(c, t - 1); i < c->n; i++) {
		int64_t e = r[ring_pos(c, i)];
		bool within = false;

		if (j->maxretry) {
			if (e >= t + j->findtime)
				break;
			if ((*sum = jail_ent_sum(c, e, j->findtime, false)) >= need)
				return true;
			continue;
		}
		for (size_t l = 0; l < j->nlimits; l++) {
			if (e >= t + j->limits[l].w)
				continue;
			within = true;
			if ((*sum = jail_ent_sum(c, e, j->limits[l].w, j->count_rcpt)) > j->limits[l].n) {
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
	struct ent *b = jail_ent_lookup(&j->bans, key), *c;
	char fbuf[24], lbuf[24];
	char reason[MJ_REASON_MAX];
	struct verdict *v;
	uint64_t sum = 0;
	size_t li = 0;
	bool spared = false;

	if (b != NULL && t < (int64_t)b->t32)
		return 0;   /* banned then: not counted, see top */
	if ((c = jail_ent_get(&j->counters, key, j->ringmax < 2 ? j->ringmax : 2, j->count_rcpt)) == NULL)
		return -1;
	jail_ent_prune(c, t - j->window);
	if (jail_ent_push(&j->counters, &c, t32(t), weight, j->ringmax, j->count_rcpt) != 0)
		return -1;
	if (!sk->live || t <= now - j->window)
		return 0;
	if (j->maxretry)
		spared = j->spare_after > 0 && jail_spare_applies(j, key, t);
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
	if (jail_make_verdict(js, j, key, now, 0, v) != 0)
		return -1;
	snprintf(v->reason, sizeof(v->reason), "%s", reason);
	sk->n++;
	ent_clear(c);   /* counting starts fresh after the ban */
	if (!j->recidive)
		return jail_feed_recidive(js, v->target, v->kind, now, now, sk);
	return 0;
}

/* jail_feed_recidive - a ban of target (by a non-recidive jail) at time t */
int
jail_feed_recidive(struct jailset *js, const char *target, enum target_kind kind,
    int64_t t, int64_t now, struct sink *sk)
{
	char key[MJ_TARGET_MAX];

	for (size_t i = 0; i < js->n; i++) {
		struct jail *r = js->jails[i];
		if (!r->recidive || !jail_target_key(r, target, kind, key, sizeof(key)))
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

int
jail_count_event(struct jailset *js, struct jail *j, const struct event *ev,
    struct ipmemo *m, uint32_t weight, int64_t now, struct sink *sk)
{
	char key[MJ_TARGET_MAX];

	if (j->bans_addresses)
		return jail_count_against_account(js, j, ev, m, now, sk);
	if (!jail_event_key(j, ev, m, key, sizeof(key)))
		return 0;
	return count_key(js, j, key, ev->time, weight, ev, now, sk);
}

/* pending_put - remember a submission's ip, account and time by queue id */
static int
pending_put(struct jailset *js, const struct event *ev)
{
	char buf[MSGTRACE_ID_MAX];
	const char *id = jail_trace_id(ev, ev->qid, buf, sizeof(buf));
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
	if ((e = jail_ent_new(id, qlen, h, (uint16_t)((ilen + ulen + 2 + 3) / 4), false)) == NULL)
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
	const char *id = jail_trace_id(ev, ev->qid, buf, sizeof(buf)), *p;
	size_t qlen = id ? strlen(id) : 0;
	struct hashent **s = id ? jail_ent_slot(&js->pending, id, qlen) : NULL;
	bool ok;

	if (s == NULL || *s == NULL)
		return false;
	*m = *ev;
	m->type = "submission";
	m->time = ent_of(*s)->t32;
	/* both fitted the event's buffers when pending_put stored them */
	p = (const char *)ent_ring(ent_of(*s));
	ok = jail_copy_key(m->ip, sizeof(m->ip), p) &&
	    jail_copy_key(m->user, sizeof(m->user), p + strlen(p) + 1);
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
		switch (jail_delivery_kind(ev->type)) {
		case DELIVERY_LINK:
			return ev->qid[0] != '\0' && msgtrace_known(&js->trace, ev->qid) &&
			    !msgtrace_known(&js->trace, ev->newqid);
		case DELIVERY_REFUSAL:
		case DELIVERY_LISTED:
			return ev->qid[0] != '\0' && jail_kind_of(js, ev->type) >= 0 &&
			    msgtrace_known(&js->trace, ev->qid);
		case NOT_DELIVERY:
			/* the submission a delivery result will be joined to */
			if (ev->qid[0] != '\0' && ev->user[0] != '\0' &&
			    strcmp(ev->type, "submission") == 0)
				return true;
			break;
		}
	}
	if (jail_kind_of(js, ev->type) >= 0)
		return true;
	/* a login that spares an address (spare_authenticated) */
	if (js->need_logins && strcmp(ev->type, "submission") == 0)
		return true;
	/* a queued line that a jail is about to join to its submission */
	if (!js->need_pending || ev->qid[0] == '\0' || strcmp(ev->type, "queued") != 0)
		return false;
	qlen = strlen(ev->qid);
	s = jail_ent_slot(&js->pending, ev->qid, qlen);
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
		enum delivery d = jail_delivery_kind(ev->type);
		if (d != NOT_DELIVERY)
			return jail_dispatch_delivery(js, ev, d, now, sk);
		if (submission && jail_trace_submission(js, ev) != 0)
			return -1;
	}
	kind = jail_kind_of(js, ev->type);
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
		if (jail_count_event(js, j, ev, &am, 1, now, sk) != 0)
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
		if (jail_count_event(js, j, &m, &mm, w, now, sk) != 0)
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

int
jail_restore_ban(struct jailset *js, const char *jail, const char *target,
    enum target_kind kind, int level, int64_t started_at, int64_t expires_at,
    int64_t lifted_at)
{
	struct jail *j = jail_find(js, jail);
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
	if (jail_record_in(watch ? &j->watches : &j->bans, target, started_at, end) != 0)
		return -1;
	if (watch)
		addrlog_forget(&j->addrs, target);   /* counted afresh after it */
	else if ((c = jail_ent_lookup(&j->counters, target)) != NULL && !j->bans_addresses) {
		ent_clear(c);
	}
	if (j->recidive || watch)
		return 0;
	return jail_feed_recidive(js, target, kind, started_at, started_at, &sk);
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

	if (jail_canon_target(target, kind, key, sizeof(key)) != 0)
		return -1;
	if (jail != NULL) {
		j = jail_find(js, jail);
	} else {
		for (size_t i = 0; i < js->n && j == NULL; i++)
			if (js->jails[i]->actions & want)
				j = js->jails[i];
	}
	if (j == NULL || ((key_is_ip(j) || j->bans_addresses) != (kind == TARGET_IP)))
		return -1;
	if (jail_make_verdict(js, j, key, now, duration, out) != 0)
		return -1;
	snprintf(out->reason, sizeof(out->reason), "manual %s for %s",
	    kind == TARGET_IP ? "ban" : "hold",
	    cfg_format_duration(out->expires_at - out->started_at, dbuf, sizeof(dbuf)));
	if ((c = jail_ent_lookup(&j->counters, key)) != NULL) {
		ent_clear(c);
	}
	if (j->recidive)
		return 0;
	/* like a restored ban: recidive counts it, but makes no verdict now */
	return jail_feed_recidive(js, key, kind, now, now, &sk) == 0 ? 0 : -1;
}

int
jail_lift(struct jailset *js, const char *jail, const char *target, int64_t now)
{
	char key[MJ_TARGET_MAX];
	struct cidr c;
	int n = 0;

	/* an address given by the operator may be in a non-canonical form */
	if (jail_parse_cidr(target, &c) == 0)
		jail_format_cidr(&c, key, sizeof(key));
	else
		snprintf(key, sizeof(key), "%s", target);
	for (size_t i = 0; i < js->n; i++) {
		struct jail *j = js->jails[i];
		struct ent *b;
		if (jail != NULL && strcmp(jail, j->name) != 0)
			continue;
		/* an account watched by a jail that bans addresses is lifted too */
		if (((b = jail_ent_lookup(&j->bans, key)) == NULL || (int64_t)b->t32 <= now) &&
		    ((b = jail_ent_lookup(&j->watches, key)) == NULL || (int64_t)b->t32 <= now))
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

	jail_ent_prune(e, ((const struct sweep *)arg)->cut);
	return e->n > 0;
}

static bool
keep_ban(struct hashent *h, const void *arg)
{
	const struct sweep *s = arg;
	struct ent *e = ent_of(h);

	jail_ent_prune(e, s->cut);
	return e->n > 0 || (int64_t)e->t32 > s->now;
}

/* keep_newer - a login or a pending queue id: its time (t32) after cut */
static bool
keep_newer(struct hashent *h, const void *arg)
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
			hashtab_sweep(&j->spared, keep_newer, &s);
		}
	}
	s.now = now;
	s.cut = now - PENDING_TTL;
	hashtab_sweep(&js->pending, keep_newer, &s);
	if (js->need_trace)
		msgtrace_expire(&js->trace, s.cut);
}

/* ---- for "mailjail explain" (issue 15) -------------------------------- */

bool
jail_counts_for(const struct jailset *js, const char *jail, const struct event *ev,
    const char *target)
{
	const struct jail *j = jail_find(js, jail);
	struct ipmemo m = { .ip = ev->ip };
	char key[MJ_TARGET_MAX];
	int kind;

	if (j == NULL || j->recidive || ev->type == NULL ||
	    (kind = jail_kind_of(js, ev->type)) < 0 || !j->counts_kind[kind])
		return false;
	if (!jail_event_key(j, ev, &m, key, sizeof(key)))
		return false;
	if (strcmp(key, target) == 0)
		return true;
	/* an address banned for failing against an account */
	return j->bans_addresses && jail_ip_key(j, &m, key, sizeof(key)) && strcmp(key, target) == 0;
}
