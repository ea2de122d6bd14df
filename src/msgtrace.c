/*
 * msgtrace - queue ids to the account that sent the message.  See msgtrace.h.
 *
 * A traced queue id's payload is its time, then two NUL-terminated strings:
 * the root queue id ("" for a submission, which is its own root) and the
 * account.  A charged pair is keyed "root\x1fdomain" (the domain
 * lower-cased); the key "root\x1f" (no domain) holds the message's own
 * state: a session refusal counted and not yet matched by a domain, or some
 * domain counted.
 */
#include "msgtrace.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "types.h"

#define SEP '\x1f'

enum msg_state {
	MSG_SESSION_CREDIT = 1,  /* a session refusal counted, stands for a domain */
	MSG_DOMAIN_COUNTED,      /* a domain counted; later session lines add nothing */
};

struct traced {
	uint32_t time;
	char text[];             /* root (or "") \0 account \0 */
};

struct charged {
	uint32_t time;
	uint8_t state;           /* enum msg_state, on the message's own key */
};

static uint32_t
t32(int64_t t)
{
	return t < 0 ? 0 : t > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)t;
}

/* trace_put - qid owned by account, of the message with root queue id root
 * ("" when it is qid itself), from time t */
static int
trace_put(struct msgtrace *m, const char *qid, const char *root, const char *account,
    int64_t t)
{
	size_t qlen = strlen(qid), rlen = strlen(root), alen = strlen(account);
	struct traced *tr;
	bool created;

	if (m->msgs.tab.n >= MSGTRACE_MAX)
		return 0;
	tr = keytab_put(&m->msgs, qid, qlen, sizeof(*tr) + rlen + alen + 2, &created);
	if (tr == NULL)
		return -1;
	if (!created)
		return 0;   /* first owner wins */
	tr->time = t32(t);
	memcpy(tr->text, root, rlen + 1);
	memcpy(tr->text + rlen + 1, account, alen + 1);
	return 1;
}

int
msgtrace_submission(struct msgtrace *m, const char *qid, const char *account, int64_t t)
{
	if (qid[0] == '\0' || account[0] == '\0')
		return 0;
	return trace_put(m, qid, "", account, t);
}

bool
msgtrace_owner(const struct msgtrace *m, const char *qid, struct msgtrace_owner *out)
{
	const struct traced *tr = keytab_get(&m->msgs, qid, strlen(qid));

	if (tr == NULL)
		return false;
	out->root = tr->text[0] != '\0' ? tr->text : qid;
	out->account = tr->text + strlen(tr->text) + 1;
	out->time = tr->time;
	return true;
}

bool
msgtrace_known(const struct msgtrace *m, const char *qid)
{
	return keytab_get(&m->msgs, qid, strlen(qid)) != NULL;
}

int
msgtrace_link(struct msgtrace *m, const char *qid, const char *newqid, int64_t t)
{
	struct msgtrace_owner o;
	char root[MSGTRACE_ID_MAX], account[MJ_FIELD_MAX];

	if (newqid[0] == '\0' || !msgtrace_owner(m, qid, &o))
		return 0;
	/* copies: the owner's strings live in the table being changed */
	if (snprintf(root, sizeof(root), "%s", o.root) >= (int)sizeof(root) ||
	    snprintf(account, sizeof(account), "%s", o.account) >= (int)sizeof(account))
		return 0;
	return trace_put(m, newqid, root, account, t);
}

/* charged_key - "root\x1fdomain" into buf, the domain lower-cased; its
 * length, or 0 if it does not fit */
static size_t
charged_key(char *buf, size_t len, const char *root, const char *domain)
{
	size_t rl = strlen(root), dl = domain ? strlen(domain) : 0;

	if (rl + 1 + dl >= len)
		return 0;
	memcpy(buf, root, rl);
	buf[rl] = SEP;
	for (size_t i = 0; i < dl; i++)
		buf[rl + 1 + i] = (char)tolower((unsigned char)domain[i]);
	buf[rl + 1 + dl] = '\0';
	return rl + 1 + dl;
}

/* charge - the entry for key, made with state 0 if absent; NULL when full
 * or out of memory (*oom says which) */
static struct charged *
charge(struct msgtrace *m, const char *key, size_t klen, int64_t t, bool *created,
    bool *oom)
{
	struct charged *c = keytab_get(&m->charged, key, klen);

	*created = false;
	*oom = false;
	if (c != NULL)
		return c;
	if (m->charged.tab.n >= MSGTRACE_MAX)
		return NULL;
	if ((c = keytab_put(&m->charged, key, klen, sizeof(*c), created)) == NULL) {
		*oom = true;
		return NULL;
	}
	c->time = t32(t);
	return c;
}

int
msgtrace_first_refusal(struct msgtrace *m, const char *root, const char *domain,
    int64_t t)
{
	char mkey[MSGTRACE_ID_MAX + 2], dkey[MSGTRACE_ID_MAX + MJ_FIELD_MAX + 2];
	size_t mlen = charged_key(mkey, sizeof(mkey), root, NULL), dlen;
	struct charged *msg, *dom;
	bool made, oom;

	if (mlen == 0)
		return 0;
	if ((msg = charge(m, mkey, mlen, t, &made, &oom)) == NULL)
		return oom ? -1 : 0;
	if (domain == NULL || domain[0] == '\0') {
		/* a session refusal: once per message, before any domain */
		if (msg->state != 0)
			return 0;
		msg->state = MSG_SESSION_CREDIT;
		return 1;
	}
	if ((dlen = charged_key(dkey, sizeof(dkey), root, domain)) == 0)
		return 0;
	if ((dom = charge(m, dkey, dlen, t, &made, &oom)) == NULL)
		return oom ? -1 : 0;
	if (!made)
		return 0;   /* this domain was charged already: a retry */
	if (msg->state == MSG_SESSION_CREDIT) {
		msg->state = MSG_DOMAIN_COUNTED;
		return 0;   /* the session refusal before it counted for it */
	}
	msg->state = MSG_DOMAIN_COUNTED;
	return 1;
}

static bool
keep_traced(void *p, const void *arg)
{
	return (int64_t)((struct traced *)p)->time >= *(const int64_t *)arg;
}

static bool
keep_charged(void *p, const void *arg)
{
	return (int64_t)((struct charged *)p)->time >= *(const int64_t *)arg;
}

void
msgtrace_expire(struct msgtrace *m, int64_t before)
{
	keytab_sweep(&m->msgs, keep_traced, &before);
	keytab_sweep(&m->charged, keep_charged, &before);
}

void
msgtrace_free(struct msgtrace *m)
{
	keytab_free(&m->msgs);
	keytab_free(&m->charged);
}
