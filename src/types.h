/*
 * types - the values passed between pipeline stages, defined once.
 *
 *   follow --(line + log_position)--> rules --(event)--> jail --(verdict)-->
 *   store / enforcement backends
 *
 * All are plain values with fixed-size buffers: the hot path copies into
 * them and never allocates.  Pointers inside (rule, type, jail, reply) point
 * into the ruleset or jailset that produced the value and live as long as it.
 */
#ifndef MAILJAIL_TYPES_H
#define MAILJAIL_TYPES_H

#include <stdbool.h>
#include <stdint.h>

#define MJ_IP_MAX     46   /* INET6_ADDRSTRLEN */
#define MJ_FIELD_MAX  256  /* sasl_username, envelope sender; longer: no event */
#define MJ_QID_MAX    32   /* Postfix queue ids are at most ~20 chars */
#define MJ_TARGET_MAX (MJ_FIELD_MAX + 4)   /* an account, or "ip/len" */
#define MJ_REASON_MAX 192
#define MJ_NODE_MAX   64   /* a fleet node's name and its NUL (CONFIG_NODE_MAX) */

/* One recognised log line. */
struct event {
	const char *rule;        /* rule (section) name, owned by the ruleset */
	const char *type;        /* event name, e.g. "auth_failure" */
	const char *node;        /* the fleet node whose log had the line, owned
	                          * by who hands the event over; NULL: this
	                          * node's (or the store is one node) */
	int64_t time;            /* the line's own time, Unix seconds */
	char ip[MJ_IP_MAX];      /* canonical inet_ntop form, or "" */
	char user[MJ_FIELD_MAX]; /* sasl_username, or "" */
	char sender[MJ_FIELD_MAX]; /* envelope sender without <>, or "" */
	char qid[MJ_QID_MAX];    /* Postfix queue id, or "" */
	long nrcpt;              /* recipients (qmgr), or -1 */
	char rcpt[MJ_FIELD_MAX]; /* a delivery result's recipient, or "" */
	char newqid[MJ_QID_MAX]; /* the queue id the message goes on as, or "" */
};

enum target_kind {
	TARGET_IP,               /* an address or a prefix "2001:db8::/64" */
	TARGET_ACCOUNT,          /* sasl_username, envelope sender or domain */
};

/* Actions, combinable as bits. */
#define ACTION_NFT    0x1u   /* IP into the nftables set */
#define ACTION_HOLD   0x2u   /* account into the Postfix HOLD map */
#define ACTION_REJECT 0x4u   /* IP into the Postfix client reject map */
#define ACTION_DEFER  0x8u   /* account into the same map as hold, answering
                              * the jail's reply (a 4xx) instead of HOLD */

/* A decision to ban or hold a target. */
struct verdict {
	const char *jail;        /* owned by the jailset */
	enum target_kind kind;
	char target[MJ_TARGET_MAX];
	int level;               /* 1 for a first offence, rising with escalation */
	unsigned actions;        /* ACTION_* */
	const char *reply;       /* reject or defer reply, owned by the jailset (or NULL) */
	int64_t started_at;      /* Unix seconds */
	int64_t expires_at;
	char reason[MJ_REASON_MAX]; /* e.g. "5 auth_failure in 10m (sasl-auth-failed)" */
};

/* Something the operator must hear of that is no ban: refusals that say
 * the server itself is listed (remote_listed spread over many accounts). */
struct alarm {
	const char *jail;        /* owned by the jailset */
	const char *event;       /* the event kind, owned by the jailset */
	int64_t time;            /* when raised: the clock (the log's in replay) */
	uint32_t keys;           /* distinct accounts (keys) in the window */
	uint32_t events;         /* such events in the window */
	char reason[MJ_REASON_MAX];
};

/* Where reading of one log stopped: committed with the events it caused. */
struct log_position {
	char path[4096];
	uint64_t inode;
	uint64_t offset;         /* byte after the last complete line consumed */
	uint64_t first_hash;     /* FNV-1a of the first line; 0 if none yet */
};

const char *target_kind_name(enum target_kind k);   /* "ip" / "account" */

#endif
