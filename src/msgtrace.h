/*
 * msgtrace - which account a queued message belongs to, so that what other
 * servers say about its delivery can be charged to the account that sent
 * it.  Fed, in log order, with:
 *   the submission   queue id -> account and client address (the smtpd
 *                    line with sasl_username=)
 *   links            a message that went on under a new queue id (an
 *                    after-queue content filter's "queued as", local(8)'s
 *                    "forwarded as"): the new id belongs to the same
 *                    message, whose first queue id (its root) it keeps
 * and asked, for a refusal of a delivery, who owns the queue id and
 * whether this message's refusals for this recipient domain were charged
 * already (a message counts once per recipient domain however often it is
 * deferred and retried).
 *
 * A queue id is owned once: the first submission or link that names it
 * wins, so a later line (or a remote server's "queued as" that names an id
 * already in use) never moves a message to another account.  Postfix's own
 * bounces get new queue ids that no submission names: charged to no one.
 *
 * Refusals without a recipient (a server's "host ... said" about the
 * session, before the next server is tried) count once per message, and
 * stand for the first recipient domain counted after them, so a session
 * line followed by its delivery line counts once.
 *
 * Bounded: at most MSGTRACE_MAX messages and as many charged (message,
 * domain) pairs; past that, new messages are not traced (their refusals
 * charge no one) and refusals of known ones are not counted.  Entries go
 * with msgtrace_expire().
 *
 * Memory: struct msgtrace owns everything; a traced id costs ~80 bytes (its
 * key, the account, the root only for a link: a submission is its own
 * root).  The strings msgtrace_owner() returns stay valid until the next
 * call that changes the trace (root may be the qid passed in).
 */
#ifndef MAILJAIL_MSGTRACE_H
#define MAILJAIL_MSGTRACE_H

#include <stdbool.h>
#include <stdint.h>

#include "keytab.h"
#include "types.h"

#define MSGTRACE_MAX 131072
/* The longest queue id msgtrace keys on: the caller's key for another
 * fleet node's message is its queue id and the node's name (jail.c). */
#define MSGTRACE_ID_MAX (MJ_QID_MAX + MJ_NODE_MAX)

struct msgtrace {
	struct keytab msgs;      /* queue id -> root, account, time */
	struct keytab charged;   /* "root\x1f" domain -> time, state */
};

struct msgtrace_owner {
	const char *root;        /* the message's first queue id */
	const char *account;
	int64_t time;            /* of the submission or link */
};

/* A submission: qid belongs to account.  1 traced, 0 not (the id is owned
 * already, or the trace is full), -1 out of memory. */
int msgtrace_submission(struct msgtrace *m, const char *qid, const char *account,
    int64_t t);
/* A message known as qid goes on as newqid.  1 linked, 0 not (qid unknown,
 * newqid owned already, or full), -1 out of memory. */
int msgtrace_link(struct msgtrace *m, const char *qid, const char *newqid, int64_t t);
/* Whether qid belongs to a traced message. */
bool msgtrace_known(const struct msgtrace *m, const char *qid);
/* Who owns qid; false if no one. */
bool msgtrace_owner(const struct msgtrace *m, const char *qid, struct msgtrace_owner *out);
/* A refusal of the message with root queue id root, for a recipient in
 * domain (NULL or "": a session refusal naming no recipient), at time t:
 * 1 it counts, 0 this message was charged for it already, -1 out of memory. */
int msgtrace_first_refusal(struct msgtrace *m, const char *root, const char *domain,
    int64_t t);
/* Forget messages submitted, and refusals charged, before the time before. */
void msgtrace_expire(struct msgtrace *m, int64_t before);
void msgtrace_free(struct msgtrace *m);

#endif
