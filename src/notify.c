/*
 * notify - the outbox and its deliveries.  See notify.h.
 *
 * The notifier keeps no notification in memory between turns: the outbox
 * is the record, read again when something may be due (a kick from the
 * pipeline, a retry or digest time, the periodic look for rows another
 * process queued).  Only the deliveries running are in memory, each with
 * the ids it carries, so a row is never delivered twice at once.
 *
 * A delivery is per channel: the mail (one message to every mailto
 * address) and the command are separate jobs, marked separately, so a
 * failing hook does not send the mail again.  A digest is one job per
 * channel carrying every row due for it.
 */
#include "notify.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>


#include "log.h"
#include "notify_job.h"
#include "notify_msg.h"
#include "smtp.h"

extern char **environ;

/* Deliveries running at once (each a child process). */
#define JOBS_MAX 8
/* Rows read from the outbox per look. */
#define OUTBOX_READ_MAX 1000
/* Rows queued by another process are seen within this. */
#define OUTBOX_POLL_SECS 5
/* Retry delays: 5 s, doubling, at most 30 min. */
#define RETRY_FIRST_SECS 5
#define RETRY_MAX_SECS 1800
/* At stop, running deliveries get this long to finish. */
#define STOP_WAIT_SECS 5
/* A delivery's output in the log: at most this much of it. */
#define LOG_OUTPUT_MAX 600

static const struct channel {
	unsigned bit;
	const char *name;          /* the metric's channel label */
} channels[] = {
	{ STORE_CHANNEL_MAIL, "mail" },
	{ STORE_CHANNEL_COMMAND, "command" },
};
#define NCHANNELS (sizeof(channels) / sizeof(channels[0]))

/* ---- queueing (inside the verdict's transaction) ------------------------- */

bool
notify_enabled(const struct notify_config *cfg)
{
	return cfg != NULL && (cfg->nmailto > 0 || cfg->command != NULL);
}

/* event_of - what a verdict does, as the outbox names it */
static const char *
event_of(const struct verdict *v)
{
	if (v->actions & ACTION_HOLD)
		return "hold";
	return (v->actions & ACTION_DEFER) ? "defer" : "ban";
}

/* base_row - the fields every notification of a ban has */
static void
base_row(struct stored_notification *n, const struct notify_config *cfg,
    const char *event, const char *jail, const char *target, const char *kind,
    int level, const char *reason, int64_t started, int64_t expires, int64_t now)
{
	memset(n, 0, sizeof(*n));
	n->event = event;
	n->jail = jail;
	n->target = target;
	n->target_kind = kind;
	n->level = level;
	n->reason = reason;
	n->started_at = started;
	n->expires_at = expires;
	n->node = cfg->node ? cfg->node : "localhost";
	n->created_at = now;
}

int
notify_queue_verdict(const struct notify_config *cfg, const struct jailset *js,
    struct store *st, const struct verdict *v, int64_t ban_id, int64_t now)
{
	struct stored_notification n;
	struct jail_signal sig;

	/* A verdict with no action is a watch (an account attacked from many
	 * addresses, jail.h): it enforces nothing; the bans of its addresses
	 * are told, each reason naming the account. */
	if (!notify_enabled(cfg) || v->actions == 0 || jails_signal(js, v->jail, &sig) != 0 ||
	    sig.notify == JAIL_NOTIFY_NO)
		return 0;
	base_row(&n, cfg, event_of(v), v->jail, v->target, target_kind_name(v->kind), v->level,
	    v->reason, v->started_at, v->expires_at, now);
	n.digest = sig.notify == JAIL_NOTIFY_DIGEST;
	n.ban_id = ban_id;
	if (v->kind == TARGET_ACCOUNT && strcmp(sig.key, "ip") != 0) {
		n.evidence_key = sig.key;
		n.evidence_window = sig.window;
	}
	if (store_queue_notification(st, &n, NULL) != 0)
		return -1;
	return n.digest ? NOTIFY_QUEUED_DIGEST : NOTIFY_QUEUED_NOW;
}

int
notify_queue_lift(const struct notify_config *cfg, const struct jailset *js,
    struct store *st, const struct stored_ban *b, int64_t now)
{
	struct stored_notification n;
	struct jail_signal sig;
	char reason[MJ_REASON_MAX + 64];

	if (!notify_enabled(cfg))
		return 0;
	/* A jail gone from the configuration (or "manual"): as its kind's
	 * default. */
	if (jails_signal(js, b->jail, &sig) != 0)
		sig.notify = strcmp(b->target_kind, "ip") == 0 ? JAIL_NOTIFY_DIGEST :
		    JAIL_NOTIFY_NOW;
	if (sig.notify == JAIL_NOTIFY_NO)
		return 0;
	snprintf(reason, sizeof(reason), "lifted by an operator; it was: %s",
	    b->reason ? b->reason : "");
	base_row(&n, cfg, "lift", b->jail, b->target, b->target_kind, b->level, reason,
	    b->started_at, b->expires_at, now);
	n.digest = sig.notify == JAIL_NOTIFY_DIGEST;
	n.ban_id = b->id;
	if (store_queue_notification(st, &n, NULL) != 0)
		return -1;
	return n.digest ? NOTIFY_QUEUED_DIGEST : NOTIFY_QUEUED_NOW;
}

int
notify_queue_alarm(const struct notify_config *cfg, struct store *st, const char *source,
    const char *reason, int64_t now)
{
	struct stored_notification n;

	if (!notify_enabled(cfg))
		return 0;
	base_row(&n, cfg, "alarm", source, "", "", 0, reason, now, now, now);
	return store_queue_notification(st, &n, NULL) == 0 ? NOTIFY_QUEUED_NOW : -1;
}

/* ---- the notifier ------------------------------------------------------- */

struct job {
	struct notify_job j;
	unsigned channel;          /* STORE_CHANNEL_* */
	bool digest;
	int64_t *ids;
	int64_t *created;          /* per id: when queued (giving up) */
	int *attempts;             /* per id: failures before this one */
	size_t nids;
	char what[160];            /* "hold of alice", "digest of 10" */
};

struct notifier {
	struct notify_config cfg;  /* our copy (strings ours) */
	char *cfgpath;
	char from[300];
	struct metrics *m;
	int epfd;
	struct job *jobs[JOBS_MAX];
	size_t njobs;
	uint64_t kick;
	bool looked;               /* the outbox was read once since start */
	int64_t next_look;
};

static void
cfg_copy_free(struct notify_config *c)
{
	for (size_t i = 0; i < c->nmailto; i++)
		free(c->mailto[i]);
	free(c->from);
	free(c->smtp);
	free(c->command);
	free(c->node);
	memset(c, 0, sizeof(*c));
}

static int
cfg_copy(struct notify_config *d, const struct notify_config *s)
{
	memset(d, 0, sizeof(*d));
	for (size_t i = 0; i < s->nmailto; i++) {
		if ((d->mailto[i] = strdup(s->mailto[i])) == NULL)
			goto fail;
		d->nmailto++;
	}
	if ((s->from && (d->from = strdup(s->from)) == NULL) ||
	    (s->smtp && (d->smtp = strdup(s->smtp)) == NULL) ||
	    (s->command && (d->command = strdup(s->command)) == NULL) ||
	    (d->node = strdup(s->node ? s->node : "localhost")) == NULL)
		goto fail;
	d->digest = s->digest > 0 ? s->digest : 3600;
	d->timeout = s->timeout > 0 ? s->timeout : 30;
	return 0;
fail:
	cfg_copy_free(d);
	return -1;
}

/* configured - the channels the configuration has */
static unsigned
configured(const struct notifier *nt)
{
	return (nt->cfg.nmailto ? STORE_CHANNEL_MAIL : 0u) |
	    (nt->cfg.command ? STORE_CHANNEL_COMMAND : 0u);
}

int
notifier_configure(struct notifier *nt, const struct notify_config *cfg, const char *cfgpath)
{
	struct notify_config c;
	/* Absolute: the admin runs the suggested command from anywhere. */
	char *p = realpath(cfgpath ? cfgpath : CONFIG_DEFAULT_PATH, NULL);

	if (p == NULL)
		p = strdup(cfgpath ? cfgpath : CONFIG_DEFAULT_PATH);

	if (p == NULL || cfg_copy(&c, cfg) != 0) {
		free(p);
		return -1;
	}
	cfg_copy_free(&nt->cfg);
	free(nt->cfgpath);
	nt->cfg = c;
	nt->cfgpath = p;
	if (c.from)
		snprintf(nt->from, sizeof(nt->from), "%s", c.from);
	else
		snprintf(nt->from, sizeof(nt->from), "mailjail@%s", c.node);
	nt->next_look = 0;   /* new channels may have work at once */
	return 0;
}

int
notifier_open(struct notifier **out, const struct notify_config *cfg, const char *cfgpath,
    struct metrics *m)
{
	struct notifier *nt = calloc(1, sizeof(*nt));

	*out = NULL;
	if (nt == NULL)
		return -1;
	nt->m = m;
	if ((nt->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    notifier_configure(nt, cfg, cfgpath) != 0) {
		if (nt->epfd >= 0)
			close(nt->epfd);
		free(nt);
		return -1;
	}
	*out = nt;
	return 0;
}

static void
job_free(struct job *jb)
{
	notify_job_free(&jb->j);
	free(jb->ids);
	free(jb->created);
	free(jb->attempts);
	free(jb);
}

/* watch - the job's descriptors into the epoll set */
static void
watch(struct notifier *nt, struct job *jb)
{
	struct epoll_event ev = { .events = EPOLLIN };

	if (jb->j.pidfd >= 0)
		(void)epoll_ctl(nt->epfd, EPOLL_CTL_ADD, jb->j.pidfd, &ev);
	if (jb->j.outfd >= 0)
		(void)epoll_ctl(nt->epfd, EPOLL_CTL_ADD, jb->j.outfd, &ev);
}

/* one_line - text for a log line: newlines shown as " | ", other control
 * characters as '?', cut to max bytes */
static void
one_line(const char *s, size_t n, char *buf, size_t len, size_t max)
{
	size_t off = 0;

	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		n--;
	for (size_t i = 0; i < n && off + 4 < len && off < max; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\n') {
			memcpy(buf + off, " | ", 3);
			off += 3;
		} else {
			buf[off++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
		}
	}
	buf[off] = '\0';
}

static int64_t
retry_delay(int attempts)
{
	int64_t d = RETRY_FIRST_SECS;

	for (int i = 0; i < attempts && d < RETRY_MAX_SECS; i++)
		d *= 2;
	return d < RETRY_MAX_SECS ? d : RETRY_MAX_SECS;
}

static const char *
channel_name(unsigned bit)
{
	for (size_t c = 0; c < NCHANNELS; c++)
		if (channels[c].bit == bit)
			return channels[c].name;
	return "?";
}

/* record - a finished delivery into the outbox, the log and the metrics */
static void
record(struct notifier *nt, struct store *st, struct job *jb, int64_t now)
{
	const char *ch = channel_name(jb->channel);
	char how[64], out[LOG_OUTPUT_MAX + 64], more[64] = "";
	bool ok = notify_job_ok(&jb->j);
	size_t gave_up = 0;

	notify_job_describe(&jb->j, how, sizeof(how));
	one_line(jb->j.out, jb->j.outlen, out, sizeof(out), LOG_OUTPUT_MAX);
	if (jb->j.outlen > LOG_OUTPUT_MAX || jb->j.dropped)
		snprintf(more, sizeof(more), " [%zu more bytes cut]",
		    jb->j.dropped + (jb->j.outlen > LOG_OUTPUT_MAX ? jb->j.outlen - LOG_OUTPUT_MAX : 0));
	if (ok) {
		if (jb->channel == STORE_CHANNEL_MAIL)
			log_info("notify: mail for %s sent: %s", jb->what, out);
		else
			log_info("notify: command %s for %s: %s%s%s%s", nt->cfg.command ?
			    nt->cfg.command : "", jb->what, how, out[0] ? ": " : "", out, more);
	} else {
		log_warnx("notify: %s for %s failed (%s)%s%s%s; tried again later", ch, jb->what,
		    jb->channel == STORE_CHANNEL_MAIL && !jb->j.killed ? "not accepted" : how,
		    out[0] ? ": " : "", out, more);
	}
	if (nt->m)
		metrics_count(nt->m, METRIC_NOTIFICATIONS, ch,
		    ok ? "sent" : jb->j.killed ? "timeout" : "failed", 1);
	for (size_t i = 0; i < jb->nids; i++) {
		int rc;
		char err[LOG_OUTPUT_MAX + 160];

		snprintf(err, sizeof(err), "%s: %s%s%s", ch, how, out[0] ? ": " : "", out);
		if (ok)
			rc = store_notification_delivered(st, jb->ids[i], jb->channel,
			    configured(nt), now);
		else if (now - jb->created[i] >= NOTIFY_GIVE_UP_SECS) {
			rc = store_notification_gave_up(st, jb->ids[i], now, err);
			gave_up++;
		} else
			rc = store_notification_retry(st, jb->ids[i],
			    now + retry_delay(jb->attempts[i]), err);
		if (rc != 0)
			log_warnx("notify: cannot record the %s of notification %" PRId64 " in "
			    "the database (%s): it may be delivered again", ok ? "delivery" :
			    "failure", jb->ids[i], store_errmsg(st));
	}
	if (gave_up) {
		log_warnx("notify: error: gave up on %zu notification%s (%s) after failing "
		    "for %d h; see the notifications table", gave_up, gave_up == 1 ? "" : "s",
		    jb->what, NOTIFY_GIVE_UP_SECS / 3600);
		if (nt->m)
			metrics_count(nt->m, METRIC_NOTIFICATIONS, ch, "gave_up", gave_up);
	}
}

/* reap - record every finished delivery; kill those past their time */
static void
reap(struct notifier *nt, struct store *st, int64_t now)
{
	for (size_t i = 0; i < nt->njobs;) {
		struct job *jb = nt->jobs[i];

		if (!notify_job_poll(&jb->j, now)) {
			i++;
			continue;
		}
		record(nt, st, jb, now);
		job_free(jb);
		nt->jobs[i] = nt->jobs[--nt->njobs];
	}
}

/* in_flight - is row id being delivered on channel now? */
static bool
in_flight(const struct notifier *nt, int64_t id, unsigned channel)
{
	for (size_t i = 0; i < nt->njobs; i++) {
		if (nt->jobs[i]->channel != channel)
			continue;
		for (size_t k = 0; k < nt->jobs[i]->nids; k++)
			if (nt->jobs[i]->ids[k] == id)
				return true;
	}
	return false;
}

/* The open rows, read into memory before anything is written. */
struct rows {
	struct notice *v;
	size_t n, cap;
	bool failed;
};

static int
row_cb(void *arg, const struct stored_notification *s)
{
	struct rows *r = arg;

	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 32;
		struct notice *nv = realloc(r->v, cap * sizeof(*nv));
		if (nv == NULL)
			goto fail;
		r->v = nv;
		r->cap = cap;
	}
	if (notice_copy(&r->v[r->n], s) != 0)
		goto fail;
	r->n++;
	return 0;
fail:
	r->failed = true;
	return 1;
}

static void
rows_free(struct rows *r)
{
	for (size_t i = 0; i < r->n; i++)
		notice_free(&r->v[i]);
	free(r->v);
	memset(r, 0, sizeof(*r));
}

/* add_evidence - the submissions behind an account verdict */
static void
add_evidence(struct store *st, struct notice *v)
{
	if (v->evidence_key == NULL || strcmp(v->event, "lift") == 0)
		return;
	if (store_submission_evidence(st, v->evidence_key, v->target,
	    v->started_at - v->evidence_window, v->started_at, &v->ev) == 0)
		v->have_evidence = true;
}

/* What the mail child needs (built before the fork). */
struct mail_arg {
	struct smtp_message msg;
};

static int
mail_child(void *arg)
{
	struct mail_arg *a = arg;
	char result[700];
	int rc = smtp_send(&a->msg, result, sizeof(result));

	dprintf(1, "%s\n", result);
	return rc == 0 ? 0 : 1;
}

/* start_job - deliver v[0..n) on channel; false if it could not start
 * (logged; the rows stay as they are and are tried at the next look) */
static bool
start_job(struct notifier *nt, struct store *st, struct notice *v, size_t n, bool digest,
    unsigned channel, int64_t now)
{
	struct job *jb = calloc(1, sizeof(*jb));
	char err[300], *text = NULL;
	size_t len = 0;
	int rc = -1;

	if (jb == NULL || (jb->ids = calloc(n, sizeof(*jb->ids))) == NULL ||
	    (jb->created = calloc(n, sizeof(*jb->created))) == NULL ||
	    (jb->attempts = calloc(n, sizeof(*jb->attempts))) == NULL) {
		snprintf(err, sizeof(err), "out of memory");
		goto out;
	}
	jb->channel = channel;
	jb->digest = digest;
	for (size_t i = 0; i < n; i++) {
		jb->ids[i] = v[i].id;
		jb->created[i] = v[i].created_at;
		jb->attempts[i] = v[i].attempts;
		if (!v[i].have_evidence)
			add_evidence(st, &v[i]);
	}
	jb->nids = n;
	if (digest)
		snprintf(jb->what, sizeof(jb->what), "a digest of %zu", n);
	else if (strcmp(v->event, "alarm") == 0)
		snprintf(jb->what, sizeof(jb->what), "an alarm (%" PRId64 ")", v->id);
	else
		snprintf(jb->what, sizeof(jb->what), "%s of %.80s (%" PRId64 ")", v->event,
		    v->target, v->id);
	if (channel == STORE_CHANNEL_MAIL) {
		struct notify_msg_opts o = { nt->cfg.node, nt->from,
		    (const char *const *)nt->cfg.mailto, nt->cfg.nmailto, nt->cfgpath, now };
		struct mail_arg a;

		if ((text = notify_mail(v, n, digest, &o, &len)) == NULL) {
			snprintf(err, sizeof(err), "out of memory");
			goto out;
		}
		a.msg = (struct smtp_message){ nt->cfg.smtp, nt->cfg.node, nt->from,
		    (const char *const *)nt->cfg.mailto, nt->cfg.nmailto, text, len,
		    (long)nt->cfg.timeout };
		/* The child has its own copy of everything a points at. */
		rc = notify_job_fork(&jb->j, mail_child, &a, now + nt->cfg.timeout, err,
		    sizeof(err));
	} else {
		char **env = notify_env(v, n, digest, nt->cfg.node, environ);

		if (env == NULL || (text = notify_json(v, n, digest, &len)) == NULL) {
			notify_env_free(env);
			snprintf(err, sizeof(err), "out of memory");
			goto out;
		}
		rc = notify_job_exec(&jb->j, nt->cfg.command, env, text, len,
		    now + nt->cfg.timeout, err, sizeof(err));
		notify_env_free(env);
	}
out:
	free(text);
	if (rc != 0) {
		log_warnx("notify: cannot start the %s for %s: %s", channel_name(channel),
		    jb ? jb->what : "a notification", err);
		if (jb)
			job_free(jb);
		return false;
	}
	watch(nt, jb);
	nt->jobs[nt->njobs++] = jb;
	return true;
}

/* due - is single (not digest) row v due on channels not done? */
static bool
due(const struct notifier *nt, const struct notice *v, int64_t now)
{
	/* At start, what a crash or a stop left is sent at once. */
	return !nt->looked || v->due_at <= now;
}

/* send_singles - every due row that is not a digest's, per channel */
static void
send_singles(struct notifier *nt, struct store *st, struct rows *r, unsigned want,
    int64_t now)
{
	for (size_t i = 0; i < r->n && nt->njobs < JOBS_MAX; i++) {
		struct notice *v = &r->v[i];
		if (v->digest || !due(nt, v, now))
			continue;
		for (size_t c = 0; c < NCHANNELS && nt->njobs < JOBS_MAX; c++) {
			unsigned bit = channels[c].bit;
			if ((want & bit) && !(v->done & bit) && !in_flight(nt, v->id, bit))
				(void)start_job(nt, st, v, 1, false, bit, now);
		}
	}
}

/*
 * send_digest - per channel, the digest rows not delivered on it, once the
 * oldest has waited [notify] digest: all of them in one delivery (rows
 * waiting for a retry join the next one after their delay).  Returns when
 * the next digest falls due (INT64_MAX: none waits).
 */
static int64_t
send_digest(struct notifier *nt, struct store *st, struct rows *r, unsigned want, int64_t now)
{
	int64_t next = INT64_MAX;
	struct notice *pick = calloc(r->n ? r->n : 1, sizeof(*pick));

	if (pick == NULL)
		return now + 1;
	for (size_t c = 0; c < NCHANNELS; c++) {
		unsigned bit = channels[c].bit;
		int64_t oldest = INT64_MAX;
		size_t k = 0;

		if (!(want & bit))
			continue;
		for (size_t i = 0; i < r->n; i++) {
			struct notice *v = &r->v[i];
			if (!v->digest || (v->done & bit) || in_flight(nt, v->id, bit))
				continue;
			if (v->due_at > now) {   /* failed: waits for its delay */
				if (v->due_at < next)
					next = v->due_at;
				continue;
			}
			pick[k++] = *v;   /* shallow: r owns the strings */
			if (v->created_at < oldest)
				oldest = v->created_at;
		}
		if (k == 0)
			continue;
		if (now - oldest < nt->cfg.digest) {
			if (oldest + nt->cfg.digest < next)
				next = oldest + nt->cfg.digest;
			continue;
		}
		if (nt->njobs < JOBS_MAX)
			(void)start_job(nt, st, pick, k, true, bit, now);
		else
			next = now + 1;
		/* evidence found for the pick belongs to its copies only */
	}
	free(pick);
	return next;
}

/* look - read the outbox and start what is due */
static void
look(struct notifier *nt, struct store *st, int64_t now)
{
	struct rows r = { NULL, 0, 0, false };
	unsigned want = configured(nt);
	int64_t next = now + OUTBOX_POLL_SECS, d;

	if (store_each_open_notification(st, OUTBOX_READ_MAX, row_cb, &r) < 0 && !r.failed) {
		/* logged by the store; try again at the next poll */
		rows_free(&r);
		nt->next_look = next;
		return;
	}
	for (size_t i = 0; i < r.n; i++) {
		struct notice *v = &r.v[i];
		/* Delivered on every channel configured now (one was removed). */
		if ((v->done & want) == want && v->done != 0)
			(void)store_notification_delivered(st, v->id, 0, want, now);
		else if (!v->digest && v->due_at > now && v->due_at < next)
			next = v->due_at;
	}
	send_singles(nt, st, &r, want, now);
	if ((d = send_digest(nt, st, &r, want, now)) < next)
		next = d;
	if (nt->njobs == JOBS_MAX || r.n == OUTBOX_READ_MAX)
		next = now + 1;   /* more waits than one look starts */
	nt->looked = true;
	nt->next_look = next;
	rows_free(&r);
}

void
notifier_tick(struct notifier *nt, struct store *st, int64_t now, uint64_t kick)
{
	reap(nt, st, now);
	if (configured(nt) == 0)
		return;
	if (kick != nt->kick || now >= nt->next_look ||
	    nt->next_look - now > OUTBOX_POLL_SECS) {   /* (the clock went back) */
		nt->kick = kick;
		look(nt, st, now);
	}
}

int
notifier_fd(const struct notifier *nt)
{
	return nt && nt->njobs > 0 ? nt->epfd : -1;
}

size_t
notifier_running(const struct notifier *nt)
{
	return nt ? nt->njobs : 0;
}

void
notifier_close(struct notifier *nt, struct store *st)
{
	if (nt == NULL)
		return;
	for (int i = 0; i < STOP_WAIT_SECS * 10 && nt->njobs > 0; i++) {
		int64_t now = (int64_t)time(NULL);
		struct epoll_event ev;

		reap(nt, st, now);
		if (nt->njobs > 0)
			(void)epoll_wait(nt->epfd, &ev, 1, 100);
	}
	if (nt->njobs > 0)
		log_warnx("notify: stopping: %zu deliver%s still running, killed (sent again "
		    "at the next start)", nt->njobs, nt->njobs == 1 ? "y" : "ies");
	for (size_t i = 0; i < nt->njobs; i++)
		job_free(nt->jobs[i]);
	nt->njobs = 0;
	cfg_copy_free(&nt->cfg);
	free(nt->cfgpath);
	close(nt->epfd);
	free(nt);
}
