/*
 * jail_delivery - delivery results (remote_reject, remote_listed) joined
 * by queue id to the submission that named the account, and the alarm
 * raised when refusals about the server itself spread over many accounts.
 * Part of the jail module (jail_impl.h).
 *
 * Memory: the join is the jailset's msgtrace (msgtrace.h, bounded by
 * MSGTRACE_MAX messages of a day), the spread a jail's (spread.h); alarms
 * wait in the jailset (ALARMS_MAX) until jails_take_alarm copies them out.
 * Alarms and verdicts point at jail names owned by the jailset.
 */
#include "jail_impl.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cfgfile.h"

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

/* jail_delivery_kind - what a delivery-result event is to the join */
enum delivery
jail_delivery_kind(const char *type)
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

	if (!jail_event_key(j, ev, m, key, sizeof(key)))
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
 * jail_trace_id - a queue id as the joins key it (msgtrace, pending): queue ids
 * are unique per host only, so another fleet node's carries the node's
 * name after a byte no queue id of this node may hold, "QID\x1fNODE"; this
 * node's is the id itself.  NULL (not joined) if it is empty, holds that
 * byte, or does not fit buf (MSGTRACE_ID_MAX).
 */
const char *
jail_trace_id(const struct event *ev, const char *qid, char *buf, size_t len)
{
	if (qid[0] == '\0' || strchr(qid, '\x1f') != NULL)
		return NULL;
	if (ev->node == NULL)
		return qid;
	if (snprintf(buf, len, "%s\x1f%s", qid, ev->node) >= (int)len)
		return NULL;
	return buf;
}

/* join - the delivery join in t for a result or link ev (d): a link is
 * recorded (0); a result is charged (1: user gets the account of the
 * submission its queue id leads to) once per message and recipient domain,
 * else 0 (no submission named an account, the account does not fit ulen,
 * a retry of a message counted for that domain); -1 out of memory */
static int
join(struct msgtrace *t, const struct event *ev, enum delivery d, char *user, size_t ulen)
{
	char idbuf[MSGTRACE_ID_MAX], newbuf[MSGTRACE_ID_MAX];
	const char *id = jail_trace_id(ev, ev->qid, idbuf, sizeof(idbuf)), *newid, *domain;
	struct msgtrace_owner o;
	size_t alen;
	int rc;

	if (id == NULL)
		return 0;
	if (d == DELIVERY_LINK) {
		if ((newid = jail_trace_id(ev, ev->newqid, newbuf, sizeof(newbuf))) == NULL)
			return 0;
		return msgtrace_link(t, id, newid, ev->time) < 0 ? -1 : 0;
	}
	if (!msgtrace_owner(t, id, &o) || (alen = strlen(o.account)) >= ulen)
		return 0;   /* no submission named an account: charged to no one */
	domain = strrchr(ev->rcpt, '@');
	if ((rc = msgtrace_first_refusal(t, o.root, domain ? domain + 1 : ev->rcpt,
	    ev->time)) <= 0)
		return rc;  /* this message and domain counted already (a retry) */
	/* o.account lives in t, which the next call may change: copied now */
	memcpy(user, o.account, alen + 1);
	return 1;
}

/* submission - remember in t whose message ev's queue id is */
static int
submission(struct msgtrace *t, const struct event *ev)
{
	char buf[MSGTRACE_ID_MAX];
	const char *id = jail_trace_id(ev, ev->qid, buf, sizeof(buf));

	if (id == NULL || ev->user[0] == '\0')
		return 0;
	return msgtrace_submission(t, id, ev->user, ev->time) < 0 ? -1 : 0;
}

/* jail_dispatch_delivery - a delivery result or link, joined to its submission */
int
jail_dispatch_delivery(struct jailset *js, const struct event *ev, enum delivery d,
    int64_t now, struct sink *sk)
{
	struct ipmemo mm;
	struct event m;
	int kind, rc;

	/* the joined event: the refusal's time, the submission's account, no
	 * address */
	m = *ev;
	m.ip[0] = '\0';
	if ((rc = join(&js->trace, ev, d, m.user, sizeof(m.user))) <= 0)
		return rc;
	mm.ip = m.ip;
	mm.state = 0;
	kind = jail_kind_of(js, ev->type);
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
		if (jail_count_event(js, j, &m, &mm, 1, now, sk) != 0)
			return -1;
	}
	return 0;
}

/* jail_trace_submission - remember whose message a queue id is */
int
jail_trace_submission(struct jailset *js, const struct event *ev)
{
	return submission(&js->trace, ev);
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

int
jail_join_delivery(struct msgtrace *m, struct event *ev)
{
	enum delivery d;

	if (ev->type == NULL)
		return 0;
	if ((d = jail_delivery_kind(ev->type)) == NOT_DELIVERY)
		return strcmp(ev->type, "submission") == 0 ? submission(m, ev) : 0;
	return join(m, ev, d, ev->user, sizeof(ev->user));
}
