/*
 * jail - turns events into verdicts.  Loads jails/NAME.jail files (one INI section per
 * jail) and keeps, per jail and key, the recent events it needs to decide.
 *
 * Kinds of jail:
 *   failure    maxretry events within findtime (sliding, ending at the event);
 *              the event that reaches maxretry issues the verdict.  Keyed by
 *              account with action nft or reject, it bans addresses: those
 *              that failed against the account in its window, then each
 *              further one while the account's watch lasts (a verdict of
 *              kind account with no action).
 *   quota      limits = N/DUR[, ...]; count = messages | recipients.  The first
 *              message over any limit issues the verdict.  Recipients come
 *              from "queued" events (qmgr nrcpt=) joined by queue id to the
 *              "submission" event that named the account.
 *   recidive   events = ban: counts verdicts of the other jails.
 *
 * spare_authenticated = DURATION (failure jails keyed by ip): an address
 * from which some account logged in (a submission event) within DURATION
 * of a failure needs maxretry * spare_factor (default 3) failures; see
 * jail.c.  The logins are restored with the events (jails_want_event).
 *
 * Delivery results (remote_reject, remote_listed) are joined by queue id to
 * the submission that named the account (following requeued links), once
 * per message and recipient domain; remote_listed, about the server's own
 * address, counts only while it does not spread over many keys, else an
 * alarm is raised (jails_take_alarm).
 *
 * Keys: ip, ip/N (prefix), account, sender, domain.  Ignored keys (CIDRs,
 * account names; loopback unless "ignore =" is given empty) are never counted.
 * While a target's ban is active its events make no verdict; after it ends
 * counting starts fresh.  The Nth ban of a target in a jail (within the
 * history span) has level N and lasts bantime * factor^(N-1), capped at
 * maxbantime.
 *
 * Time: windows use each event's own time.  now is the clock: the log's time
 * in replay, the wall clock in run; an event older than now minus the longest
 * window is counted but issues no verdict.  Bans start at now.
 *
 * Memory: the jailset owns its configuration and its in-memory state (hash
 * tables, bounded: entries older than the longest window are dropped by
 * jails_expire()).  Verdicts point at jail names owned by the jailset.
 * No SQL, no PCRE2, no netlink here.  Not thread-safe.
 */
#ifndef MAILJAIL_JAIL_H
#define MAILJAIL_JAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfgfile.h"
#include "types.h"

struct jailset;

int jails_load(const char *path, struct jailset **out, struct diag *d);
void jails_free(struct jailset *js);

/* Report every jail counting an event that known() says no rule produces
 * ("ban" is always known).  Returns the number of diags added. */
int jails_check_events(const struct jailset *js,
    bool (*known)(void *arg, const char *event), void *arg, struct diag *d);

size_t jails_count(const struct jailset *js);
const char *jails_name(const struct jailset *js, size_t i);
unsigned jails_actions(const struct jailset *js, size_t i);   /* ACTION_* */
/* How the verdicts of a jail are told to the admin (notify = in its file;
 * notify.h): at once, summarised in the next digest, or not at all. */
enum jail_notify { JAIL_NOTIFY_NOW, JAIL_NOTIFY_DIGEST, JAIL_NOTIFY_NO };
struct jail_signal {
	enum jail_notify notify;   /* the jail's notify =, else now for jails acting
	                            * on accounts (hold, defer), digest for the rest */
	const char *key;           /* "ip", "account", "sender" or "domain" */
	int64_t window;            /* findtime, or the longest limit */
	bool bans_addresses;       /* key = account with nft/reject: bans addresses
	                            * (kind ip), watches the account attacked
	                            * (kind account, no action) */
	bool alarms;               /* raises alarms (counts remote_listed) */
};
/* 0, or -1 if there is no jail of that name. */
int jails_signal(const struct jailset *js, const char *jail, struct jail_signal *out);

/* Longest findtime or limit window of all jails (state older is useless). */
int64_t jails_longest_window(const struct jailset *js);
/* How far back ban history matters: max(30d, findtime of recidive jails). */
int64_t jails_history_span(const struct jailset *js);
/* Keys currently tracked by jail i (for status and the memory benchmark). */
size_t jails_tracked_keys(const struct jailset *js, size_t i);

/*
 * Count one event.  Verdicts it causes (and the recidive verdicts those
 * cause) are written to out[0..max); returns how many, or -1 on error
 * (out of memory).  Verdicts beyond max are not lost: max must be at least
 * JAIL_VERDICTS_MAX.  An event of another fleet node names it (ev->node):
 * queue ids are joined per node, and a listed server is its own node's.
 */
#define JAIL_VERDICTS_MAX 64
int jail_record_event(struct jailset *js, const struct event *ev, int64_t now,
    struct verdict *out, size_t max);

/* Whether ev, a line of this node's log, must be kept for a restart (and,
 * in a fleet, for the other nodes): some jail counts its kind, or it is the
 * queued line of a submission a jail waits to join, or a delivery result or
 * link of a traced message (then ask before jail_record_event, which makes
 * the join).  jail_restore_event needs exactly these events, in the order
 * they were recorded. */
bool jails_want_event(struct jailset *js, const struct event *ev);

/* Restart: rebuild counters from stored events (no verdicts), and levels and
 * active bans from stored bans (lifted_at 0 when not lifted).  Unknown jail
 * names are ignored (a jail removed from the config). */
int jail_restore_event(struct jailset *js, const struct event *ev);
int jail_restore_ban(struct jailset *js, const char *jail, const char *target,
    enum target_kind kind, int level, int64_t started_at, int64_t expires_at,
    int64_t lifted_at);

/* Alarms the last jail_record_event calls raised (refusals that say the
 * server itself is listed, spread over many accounts), oldest first: true
 * and *out filled while there is one.  The jailset keeps a few; none is
 * raised while restoring. */
bool jails_take_alarm(struct jailset *js, struct alarm *out);

/* Report every jail whose key (or, for a jail that bans the addresses
 * failing against an account, the address too) needs a field that no event
 * it counts ever carries: carries(arg, event, field) says whether a rule
 * producing event captures field ("ip", "user", "sender").  Joins count:
 * a submission gets its sender from the queued line, a delivery result its
 * account and address from its submission.  Returns the diags added. */
int jails_check_keys(const struct jailset *js,
    bool (*carries)(void *arg, const char *event, const char *field), void *arg,
    struct diag *d);

/*
 * Operator ban/hold: a verdict for target in jail (NULL: the first jail with a
 * matching action), lasting duration (0: the jail's escalated bantime).
 * Returns 0 or -1 (no such jail, bad target).
 */
int jail_manual_verdict(struct jailset *js, const char *jail, const char *target,
    enum target_kind kind, int64_t duration, int64_t now, struct verdict *out);

/* End an active ban early (operator unban/release): counting starts fresh.
 * jail NULL: in every jail.  Returns how many active bans were lifted. */
int jail_lift(struct jailset *js, const char *jail, const char *target, int64_t now);

/* Forget every counter and ban kept in memory (the configuration stays):
 * before jail_restore_* rebuild it, e.g. after a batch that never reached
 * the store was counted. */
void jails_clear_state(struct jailset *js);

/* Drop state that can no longer matter at time now. */
void jails_expire(struct jailset *js, int64_t now);

/* ---- for "mailjail explain" (issue 15) --------------------------------- */

#define JAIL_SHAPE_LIMITS 8
/* What a jail counts and when it fires, as configured now. */
struct jail_shape {
	bool recidive;           /* counts the bans of the other jails */
	const char *key;         /* "ip", "prefix", "account", "sender", "domain" */
	enum target_kind kind;   /* of its targets */
	uint32_t maxretry;       /* failure and recidive jails; 0: a quota jail */
	int64_t findtime;
	struct { uint32_t n; int64_t w; } limits[JAIL_SHAPE_LIMITS];
	size_t nlimits;          /* quota jails, in the order they are checked */
	bool count_rcpt;         /* limits count recipients (nrcpt), not messages */
	int64_t window;          /* findtime or the longest limit */
	int64_t spare_after;     /* spare_authenticated (0: off) */
	uint32_t spare_factor;
	/* key = account with nft or reject: it bans addresses (kind ip) that
	 * failed against an account it watches (kind account, no action) */
	bool bans_addresses;
	bool deliveries;         /* counts delivery results (remote_reject,
	                          * remote_listed): see jail_join_delivery */
};
/* The shape of jail; -1 if no such jail is configured. */
int jail_shape(const struct jailset *js, const char *jail, struct jail_shape *out);
/* Whether jail counts ev for target: its kind, its key, its ignore list
 * (not the time: the caller picks the window).  A submission is counted as
 * its joined form by jails that wait for the queued line: give it with the
 * queued line's sender and nrcpt (store_each_event_about does); a delivery
 * result as jail_join_delivery made it.  For a jail that bans addresses, a
 * target that is an address counts the failures from it (against any
 * account the jail counts), a watched account the failures against it. */
bool jail_counts_for(const struct jailset *js, const char *jail, const struct event *ev,
    const char *target);
/* The delivery join the jails make, for events read back oldest first: a
 * submission and a link (requeued) are remembered in m; a delivery result
 * (remote_reject, remote_listed) the jails counted gets its account in
 * ev->user and 1 is returned; one they did not count (a retry of a message
 * counted for that recipient domain already, no submission known) 0, as
 * for every other event; -1 out of memory.  Queue ids of other nodes
 * (ev->node) are their own.  The caller frees m (msgtrace_free). */
struct msgtrace;
int jail_join_delivery(struct msgtrace *m, struct event *ev);

#endif
