/*
 * notify - tell the admin: the outbox of notifications, their delivery by
 * mail (SMTP to the local Postfix, smtp.h) and by the admin's command
 * ([notify] command: MAILJAIL_* environment, JSON on standard input), and
 * the digests that summarise IP bans ([notify] digest).  DESIGN.md,
 * "Operator signals".
 *
 * At least once.  A notification is a row of the store's outbox, written by
 * notify_queue_*() in the same transaction as the verdict (or lift) it tells
 * of; nothing is sent before that transaction commits, and what is not
 * delivered yet stays in the outbox: the notifier sends it after the commit,
 * tries a failed delivery again with a growing delay (5 s doubling to
 * 30 min) and gives up after a day (logged as an error, counted as
 * result="gave_up").  After a crash or a stop, what was not delivered is
 * sent at the next start.  Each channel (mail, command) is marked delivered
 * in the outbox the moment its delivery succeeded, so a duplicate needs the
 * daemon killed between a delivery and that mark (or a stop while a
 * delivery runs, which kills it after STOP_WAIT_SECS); the mail carries a
 * Message-ID made of the notification's id, and the command gets
 * MAILJAIL_ID, so a receiver can drop the repeat.
 *
 * Which verdicts: per jail, notify = now | digest | no (jail.h; default
 * now for jails keyed by account, sender or domain, digest for IP jails).
 * Nothing is queued while no channel is configured ([notify] mailto or
 * command).  Replay queues nothing unless asked (replay --notify).
 *
 * Not here: SQL text (the store's functions), netlink.  The notifier runs in
 * the daemon's loop: deliveries are child processes (notify_job.h), their
 * descriptors are in one epoll set the loop waits on (notifier_fd), and
 * notifier_tick reaps them; nothing in it blocks.
 */
#ifndef MAILJAIL_NOTIFY_H
#define MAILJAIL_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "jail.h"
#include "metrics.h"
#include "store.h"
#include "types.h"

/* Give up on a notification failing this long after it was queued. */
#define NOTIFY_GIVE_UP_SECS 86400

/* Whether any channel is configured (else nothing is ever queued). */
bool notify_enabled(const struct notify_config *cfg);

/*
 * Queue the notification of verdict v (its bans row: ban_id) as its jail's
 * notify = says, in the store's open transaction.  Returns
 * NOTIFY_QUEUED_NOW or NOTIFY_QUEUED_DIGEST, 0 if not queued (notify = no,
 * no channel, the jail unknown), -1 on a DB error.
 */
#define NOTIFY_QUEUED_NOW 1
#define NOTIFY_QUEUED_DIGEST 2
int notify_queue_verdict(const struct notify_config *cfg, const struct jailset *js,
    struct store *st, const struct verdict *v, int64_t ban_id, int64_t now);
/* An operator lifted ban b (unban, release) at now: told like the ban was.
 * Returns as notify_queue_verdict. */
int notify_queue_lift(const struct notify_config *cfg, const struct jailset *js,
    struct store *st, const struct stored_ban *b, int64_t now);
/* An alarm (e.g. the server's own address listed): sent at once.  source
 * names what raised it (a jail or a check: MAILJAIL_JAIL), reason says it
 * in a line. */
int notify_queue_alarm(const struct notify_config *cfg, struct store *st,
    const char *source, const char *reason, int64_t now);

struct notifier;

/* cfgpath: the configuration file, named in the commands a mail suggests.
 * m (may be NULL) counts deliveries.  -1: no memory. */
int notifier_open(struct notifier **out, const struct notify_config *cfg,
    const char *cfgpath, struct metrics *m);
/* After a reload: the new settings (copied) for the next deliveries. */
int notifier_configure(struct notifier *nt, const struct notify_config *cfg,
    const char *cfgpath);
/*
 * Each turn of the loop, with no transaction open: reap finished
 * deliveries and record them, kill those past the time limit, and start
 * what is due.  The outbox is read when kick differs from the last call's
 * (the pipeline's count of committed notifications to send at once: they
 * go at once), when a retry or digest falls due, and every few seconds
 * (digest rows, and rows another process queued: an operator's unban).
 */
void notifier_tick(struct notifier *nt, struct store *st, int64_t now, uint64_t kick);
/* The descriptor to wait on (readable: a delivery finished or wrote), or
 * -1 when none runs. */
int notifier_fd(const struct notifier *nt);
/* How many deliveries run now. */
size_t notifier_running(const struct notifier *nt);
/* At stop: wait a little for running deliveries and record them; those
 * still running are killed (and sent again at the next start). */
void notifier_close(struct notifier *nt, struct store *st);

#endif
