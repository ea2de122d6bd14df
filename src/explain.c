/*
 * explain - "mailjail explain TARGET": why an address or an account was
 * banned or held, from what the database keeps.  For each ban or hold of
 * the target, the evidence the jail counted:
 *
 *   failure jail   the events it counted in findtime before the ban, from
 *                  the end of the target's previous ban in that jail on
 *   quota jail     the messages (or recipients) in the first limit's window
 *                  that was exceeded, with the client addresses and
 *                  recipient counts (submissions joined to their queued
 *                  lines by queue id)
 *   recidive       the bans of the other jails it counted
 *   delivery jail  (outbound-reputation) the providers' refusals of the
 *                  account's messages, joined to its submissions by queue
 *                  id the way the jails join them (jail_join_delivery):
 *                  once per message and recipient domain
 *   an attacked    (key = account with nft: sasl-targeted-account) for the
 *   account        account's watch, the failures against it and the
 *                  addresses they came from; for each address banned, its
 *                  failures and the accounts they tried
 *
 * The window ends at the newest counted event at or before the ban's
 * start: replay bans start at that event's time, the daemon's a moment
 * later (the wall clock).  Which events a jail counts is the jail's own
 * answer (jail_counts_for: kind, key, ignore list), with today's
 * configuration.  Events are purged after max(2 days, the longest jail
 * window) (daemon.c); bans are kept.  An older ban's evidence is said to be
 * gone, its reason stays.
 *
 * Every shown value is log text: the table escapes control characters,
 * jansson escapes JSON.
 *
 * Memory: the bans and events read are copied into arrays owned by struct
 * explain and freed by explain_free.
 */
#include "cli.h"

#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "addr.h"
#include "app.h"
#include "cmdhelp.h"
#include "log.h"
#include "logtime.h"
#include "msgtrace.h"
#include "table.h"

/* What daemon.c keeps at least (EVENTS_KEEP_MIN there). */
#define EXPLAIN_KEEP_MIN ((int64_t)2 * 86400)
#define MANUAL_JAIL "manual"
/* How long before a refusal its message's submission may lie: the jails
 * trace messages for a day (jail.c, PENDING_TTL). */
#define DELIVERY_LOOKBACK ((int64_t)86400)

struct xban {
	int64_t id;
	char *jail, *target, *kind, *reason;
	int level;
	unsigned actions;        /* none: an account watched (bans_addresses) */
	int64_t started_at, expires_at, lifted_at;
};

struct xevent {
	struct event ev;
	char rule[64], type[64], node[MJ_NODE_MAX];
};

enum evidence_kind {
	EVIDENCE_EVENTS,         /* failure or quota jail */
	EVIDENCE_BANS,           /* recidive */
	EVIDENCE_MANUAL,         /* by hand: nothing counted */
	EVIDENCE_UNKNOWN,        /* its jail is not configured now */
};

struct evidence {
	enum evidence_kind kind;
	const char *status;      /* "complete", "gone", "incomplete" */
	int64_t window;          /* the window looked at */
	int64_t from, to;        /* (from, to] */
	size_t *idx;             /* into events or bans */
	size_t n;
	int64_t counted;         /* messages or recipients in the window */
	int64_t recipients;      /* sum of nrcpt known */
	size_t recipients_known; /* messages whose nrcpt is known */
};

struct explain {
	struct app *a;
	const char *target;
	int64_t now, keep, horizon;
	struct xban *bans;       /* newest first */
	size_t nbans, capbans;
	struct xevent *events;   /* oldest first */
	size_t nevents, capevents;
};

static void
iso_time(int64_t t, char *buf, size_t len)
{
	if (logtime_iso(t, buf, len) == NULL)
		snprintf(buf, len, "-");
}

/* ---- reading -------------------------------------------------------------- */

static int
copy_ban(void *arg, const struct stored_ban *b)
{
	struct explain *x = arg;
	struct xban *nb;

	if (x->nbans == x->capbans) {
		size_t cap = x->capbans ? x->capbans * 2 : 16;
		if ((nb = realloc(x->bans, cap * sizeof(*nb))) == NULL)
			return -1;
		x->bans = nb;
		x->capbans = cap;
	}
	nb = &x->bans[x->nbans];
	memset(nb, 0, sizeof(*nb));
	nb->id = b->id;
	nb->level = b->level;
	nb->actions = b->actions;
	nb->started_at = b->started_at;
	nb->expires_at = b->expires_at;
	nb->lifted_at = b->lifted_at;
	nb->jail = strdup(b->jail);
	nb->target = strdup(b->target);
	nb->kind = strdup(b->target_kind);
	nb->reason = strdup(b->reason ? b->reason : "");
	x->nbans++;
	return nb->jail && nb->target && nb->kind && nb->reason ? 0 : -1;
}

static int
copy_event(void *arg, const struct event *ev)
{
	struct explain *x = arg;
	struct xevent *ne;

	if (x->nevents == x->capevents) {
		size_t cap = x->capevents ? x->capevents * 2 : 64;
		if ((ne = realloc(x->events, cap * sizeof(*ne))) == NULL)
			return -1;
		x->events = ne;
		x->capevents = cap;
	}
	ne = &x->events[x->nevents++];
	ne->ev = *ev;
	snprintf(ne->rule, sizeof(ne->rule), "%s", ev->rule);
	snprintf(ne->type, sizeof(ne->type), "%s", ev->type);
	snprintf(ne->node, sizeof(ne->node), "%s", ev->node ? ev->node : "");
	/* pointed at once the array stops moving */
	ne->ev.rule = ne->ev.type = ne->ev.node = NULL;
	return 0;
}

/* window_of - how far back before a ban its jail looked (0: none), and
 * for a jail counting refusals, back to their messages' submissions */
static int64_t
window_of(const struct explain *x, const char *jail)
{
	struct jail_shape sh;

	if (jail_shape(x->a->jails, jail, &sh) != 0 || sh.recidive)
		return 0;
	return sh.window + (sh.deliveries ? DELIVERY_LOOKBACK : 0);
}

/* join_deliveries - charge the refusals read to their messages' accounts,
 * oldest first, as the jails did */
static int
join_deliveries(struct explain *x)
{
	struct msgtrace m = { 0 };
	int rc = 0;

	for (size_t i = 0; i < x->nevents && rc == 0; i++)
		rc = jail_join_delivery(&m, &x->events[i].ev) < 0 ? -1 : 0;
	msgtrace_free(&m);
	return rc;
}

/* load_events - one query for every ban's window: the coarse filter of the
 * target's kind, refined per ban by jail_counts_for */
static int
load_events(struct explain *x)
{
	struct event_about about = { NULL, NULL, NULL, INT64_MAX };

	for (size_t i = 0; i < x->nbans; i++) {
		int64_t w = window_of(x, x->bans[i].jail);
		if (w > 0 && x->bans[i].started_at - w < about.since)
			about.since = x->bans[i].started_at - w;
	}
	if (about.since == INT64_MAX)
		return 0;   /* only recidive, manual or unknown jails */
	if (addr_is_ip(x->target)) {
		if (strchr(x->target, '/') == NULL)
			about.ip = x->target;   /* a prefix: every address, filtered */
	} else {
		about.account = x->target;
		about.domain = x->target;   /* a domain-quota target */
	}
	if (store_each_event_about(x->a->store, &about, copy_event, x) != 0)
		return -1;
	for (size_t i = 0; i < x->nevents; i++) {
		x->events[i].ev.rule = x->events[i].rule;
		x->events[i].ev.type = x->events[i].type;
		x->events[i].ev.node = x->events[i].node[0] ? x->events[i].node : NULL;
	}
	return about.account != NULL ? join_deliveries(x) : 0;
}

/* ---- evidence ------------------------------------------------------------- */

/* prev_end - when the target's ban in the same jail before b ended (counting
 * starts afresh there), or INT64_MIN */
static int64_t
prev_end(const struct explain *x, const struct xban *b)
{
	int64_t end = INT64_MIN;

	for (size_t i = 0; i < x->nbans; i++) {
		const struct xban *o = &x->bans[i];
		int64_t e = o->lifted_at ? o->lifted_at : o->expires_at;
		if (o->id == b->id || strcmp(o->jail, b->jail) != 0 ||
		    o->started_at > b->started_at || (o->started_at == b->started_at && o->id > b->id))
			continue;
		if (e > end && e <= b->started_at)
			end = e;
	}
	return end;
}

static int
push_idx(struct evidence *e, size_t i)
{
	size_t *n = realloc(e->idx, (e->n + 1) * sizeof(*n));

	if (n == NULL)
		return -1;
	e->idx = n;
	e->idx[e->n++] = i;
	return 0;
}

/* counted - whether event i counted for b, ignoring the window's start */
static bool
counted(const struct explain *x, const struct xban *b, size_t i, int64_t after)
{
	const struct event *ev = &x->events[i].ev;

	return ev->time >= after && ev->time <= b->started_at &&
	    jail_counts_for(x->a->jails, b->jail, ev, b->target);
}

/* window_sum - messages (or recipients) of b in (t - w, t], from after on */
static int64_t
window_sum(const struct explain *x, const struct xban *b, int64_t after, int64_t t,
    int64_t w, bool rcpt)
{
	int64_t sum = 0;

	for (size_t i = 0; i < x->nevents; i++) {
		const struct event *ev = &x->events[i].ev;
		if (ev->time > t - w && ev->time <= t && counted(x, b, i, after))
			sum += rcpt ? (ev->nrcpt > 1 ? ev->nrcpt : 1) : 1;
	}
	return sum;
}

/* event_evidence - a failure or quota jail's events for b */
static int
event_evidence(const struct explain *x, const struct xban *b, const struct jail_shape *sh,
    struct evidence *e)
{
	int64_t after = prev_end(x, b), fire = INT64_MIN;
	bool complete, exceeded = false;

	e->kind = EVIDENCE_EVENTS;
	/* the newest counted event at or before the start fired it */
	for (size_t i = 0; i < x->nevents; i++)
		if (x->events[i].ev.time > fire && counted(x, b, i, after))
			fire = x->events[i].ev.time;
	if (fire == INT64_MIN)
		fire = b->started_at;
	if (sh->maxretry) {
		e->window = sh->findtime;
	} else {
		/* the first limit exceeded, as the jail checks them */
		e->window = sh->window;
		for (size_t li = 0; li < sh->nlimits; li++) {
			int64_t sum = window_sum(x, b, after, fire, sh->limits[li].w, sh->count_rcpt);
			if (sum > (int64_t)sh->limits[li].n) {
				e->window = sh->limits[li].w;
				exceeded = true;
				break;
			}
		}
	}
	e->from = fire - e->window;
	e->to = fire;
	for (size_t i = 0; i < x->nevents; i++) {
		const struct event *ev = &x->events[i].ev;
		if (ev->time <= e->from || ev->time > e->to || !counted(x, b, i, after))
			continue;
		if (push_idx(e, i) != 0)
			return -1;
		e->counted += sh->count_rcpt ? (ev->nrcpt > 1 ? ev->nrcpt : 1) : 1;
		if (ev->nrcpt >= 0) {
			e->recipients += ev->nrcpt;
			e->recipients_known++;
		}
	}
	/* an address a watch banned failed once or more: its ban needs no more */
	if (sh->bans_addresses && strcmp(b->kind, "ip") == 0)
		complete = e->n >= 1;
	else
		complete = sh->maxretry ? e->n >= sh->maxretry : exceeded;
	if (complete)
		e->status = "complete";
	else if (e->from < x->horizon)
		e->status = "gone";
	else
		e->status = "incomplete";
	return 0;
}

/* ban_evidence - a recidive ban's: the other jails' bans it counted */
static int
ban_evidence(const struct explain *x, const struct xban *b, const struct jail_shape *sh,
    struct evidence *e)
{
	int64_t after = prev_end(x, b);
	struct jail_shape osh;

	e->kind = EVIDENCE_BANS;
	e->window = sh->findtime;
	e->from = b->started_at - sh->findtime;
	e->to = b->started_at;
	/* oldest first, like the events */
	for (size_t k = x->nbans; k-- > 0;) {
		const struct xban *o = &x->bans[k];
		if (o->id >= b->id || strcmp(o->jail, b->jail) == 0 ||
		    o->started_at <= e->from || o->started_at > e->to || o->started_at < after)
			continue;
		if (jail_shape(x->a->jails, o->jail, &osh) == 0 && osh.recidive)
			continue;
		if (push_idx(e, k) != 0)
			return -1;
		e->counted++;
	}
	/* bans are never purged */
	e->status = e->n >= sh->maxretry ? "complete" : "incomplete";
	return 0;
}

static int
evidence_for(const struct explain *x, const struct xban *b, struct evidence *e)
{
	struct jail_shape sh;

	memset(e, 0, sizeof(*e));
	if (strcmp(b->jail, MANUAL_JAIL) == 0 || strncmp(b->reason, "manual ", 7) == 0) {
		e->kind = EVIDENCE_MANUAL;
		e->status = "by hand";
		return 0;
	}
	if (jail_shape(x->a->jails, b->jail, &sh) != 0) {
		e->kind = EVIDENCE_UNKNOWN;
		e->status = "unknown";
		return 0;
	}
	return sh.recidive ? ban_evidence(x, b, &sh, e) : event_evidence(x, b, &sh, e);
}

/* ---- clients of an account's messages -------------------------------------- */

struct client {
	const char *ip;
	int64_t messages, recipients;
};

static int
by_messages(const void *a, const void *b)
{
	const struct client *x = a, *y = b;

	if (x->messages != y->messages)
		return x->messages < y->messages ? 1 : -1;
	return strcmp(x->ip, y->ip);
}

/* clients_of - distinct client addresses of e's events, busiest first;
 * *n gets how many (the array is malloc'd) */
static struct client *
clients_of(const struct explain *x, const struct evidence *e, size_t *n)
{
	struct client *c = calloc(e->n ? e->n : 1, sizeof(*c));

	*n = 0;
	if (c == NULL)
		return NULL;
	for (size_t i = 0; i < e->n; i++) {
		const struct event *ev = &x->events[e->idx[i]].ev;
		const char *ip = ev->ip[0] ? ev->ip : "-";
		size_t k;
		for (k = 0; k < *n && strcmp(c[k].ip, ip) != 0; k++)
			;
		if (k == *n)
			c[(*n)++].ip = ip;
		c[k].messages++;
		if (ev->nrcpt >= 0)
			c[k].recipients += ev->nrcpt;
	}
	qsort(c, *n, sizeof(*c), by_messages);
	return c;
}

/* ---- text ----------------------------------------------------------------- */

/* How a ban's counted events read. */
enum shown {
	SHOWN_FAILURES,          /* an address's: the accounts they tried */
	SHOWN_MESSAGES,          /* a quota hold's: clients, recipients */
	SHOWN_REFUSALS,          /* a delivery jail's: queue ids, recipients */
	SHOWN_WATCH,             /* an attacked account's: the addresses */
};

static enum shown
shown_as(const struct explain *x, const struct xban *b)
{
	struct jail_shape sh;
	bool known = jail_shape(x->a->jails, b->jail, &sh) == 0;

	if (strcmp(b->kind, "account") != 0)
		return SHOWN_FAILURES;
	if (known && sh.bans_addresses && b->actions == 0)
		return SHOWN_WATCH;
	if (known && sh.deliveries)
		return SHOWN_REFUSALS;
	return SHOWN_MESSAGES;
}

/* ban_word - what b did to its target */
static const char *
ban_word(const struct xban *b)
{
	if (strcmp(b->kind, "account") != 0)
		return "ban";
	if (b->actions == 0)
		return "watch";
	return (b->actions & ACTION_DEFER) ? "defer" : "hold";
}

/* print_table - t under the ban it belongs to, indented */
static void
print_table(const struct table *t, const char *indent)
{
	char *text = NULL, *line, *save = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&text, &len);

	if (fp == NULL)
		return;
	table_print(t, fp);
	if (fclose(fp) != 0) {
		free(text);
		return;
	}
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		printf("%s%s\n", indent, line);
	free(text);
}

static void
print_ban_head(const struct xban *b)
{
	char st[32], ex[32], li[32];

	iso_time(b->started_at, st, sizeof(st));
	iso_time(b->expires_at, ex, sizeof(ex));
	printf("\n%s in jail %s, level %d: %s until %s", ban_word(b), b->jail, b->level,
	    st, ex);
	if (b->lifted_at) {
		iso_time(b->lifted_at, li, sizeof(li));
		printf(" (lifted %s)", li);
	}
	printf("\n  reason: %s\n", b->reason);
}

/* text_or_null - s, or NULL (shown as "-") if empty */
static const char *
text_or_null(const char *s)
{
	return s[0] ? s : NULL;
}

static void
print_events_table(const struct explain *x, const struct evidence *e, enum shown how)
{
	static const char *const headers[][7] = {
		[SHOWN_FAILURES] = { "time", "event", "rule", "account" },
		[SHOWN_MESSAGES] = { "time", "event", "rule", "client", "qid", "recipients",
		    "sender" },
		[SHOWN_REFUSALS] = { "time", "event", "rule", "qid", "recipient" },
		[SHOWN_WATCH] = { "time", "event", "rule", "client" },
	};
	static const size_t ncols[] = {
		[SHOWN_FAILURES] = 4, [SHOWN_MESSAGES] = 7, [SHOWN_REFUSALS] = 5, [SHOWN_WATCH] = 4,
	};
	struct table t;

	table_init(&t, headers[how], ncols[how]);
	for (size_t i = 0; i < e->n; i++) {
		const struct event *ev = &x->events[e->idx[i]].ev;
		char when[32], rc[24];
		const char *row[7];
		iso_time(ev->time, when, sizeof(when));
		snprintf(rc, sizeof(rc), "%ld", ev->nrcpt);
		row[0] = when;
		row[1] = ev->type;
		row[2] = ev->rule;
		switch (how) {
		case SHOWN_FAILURES:
			row[3] = text_or_null(ev->user);
			break;
		case SHOWN_MESSAGES:
			row[3] = text_or_null(ev->ip);
			row[4] = text_or_null(ev->qid);
			row[5] = ev->nrcpt >= 0 ? rc : NULL;
			row[6] = text_or_null(ev->sender);
			break;
		case SHOWN_REFUSALS:
			row[3] = text_or_null(ev->qid);
			row[4] = text_or_null(ev->rcpt);
			break;
		case SHOWN_WATCH:
			row[3] = text_or_null(ev->ip);
			break;
		}
		if (table_add(&t, row) != 0)
			break;
	}
	print_table(&t, "    ");
	table_free(&t);
}

static void
print_clients(const struct explain *x, const struct evidence *e)
{
	static const char *const headers[] = { "client", "messages", "recipients" };
	struct client *c;
	struct table t;
	size_t n;

	if ((c = clients_of(x, e, &n)) == NULL)
		return;
	printf("  from %zu client address%s, %" PRId64 " recipient%s", n, n == 1 ? "" : "es",
	    e->recipients, e->recipients == 1 ? "" : "s");
	if (e->recipients_known < e->n)
		printf(" (known for the %zu of %zu messages whose queued line was kept)",
		    e->recipients_known, e->n);
	printf(":\n");
	table_init(&t, headers, 3);
	for (size_t i = 0; i < n; i++) {
		char m[24], r[24];
		const char *row[3] = { c[i].ip, m, r };
		snprintf(m, sizeof(m), "%" PRId64, c[i].messages);
		snprintf(r, sizeof(r), "%" PRId64, c[i].recipients);
		if (table_add(&t, row) != 0)
			break;
	}
	print_table(&t, "    ");
	table_free(&t);
	free(c);
}

static void
print_bans_counted(const struct explain *x, const struct evidence *e)
{
	static const char *const headers[] = { "jail", "level", "started", "reason" };
	struct table t;

	table_init(&t, headers, 4);
	for (size_t i = 0; i < e->n; i++) {
		const struct xban *o = &x->bans[e->idx[i]];
		char lv[16], st[32];
		const char *row[4] = { o->jail, lv, st, o->reason };
		snprintf(lv, sizeof(lv), "%d", o->level);
		iso_time(o->started_at, st, sizeof(st));
		if (table_add(&t, row) != 0)
			break;
	}
	print_table(&t, "    ");
	table_free(&t);
}

/* distinct_ips - how many client addresses e's events came from */
static size_t
distinct_ips(const struct explain *x, const struct evidence *e)
{
	size_t n = 0;

	for (size_t i = 0; i < e->n; i++) {
		const char *ip = x->events[e->idx[i]].ev.ip;
		size_t k;
		if (ip[0] == '\0')
			continue;
		for (k = 0; k < i && strcmp(x->events[e->idx[k]].ev.ip, ip) != 0; k++)
			;
		if (k == i)
			n++;
	}
	return n;
}

static void
print_evidence(const struct explain *x, const struct xban *b, const struct evidence *e)
{
	static const char *const nouns[] = {
		[SHOWN_FAILURES] = "event", [SHOWN_MESSAGES] = "message",
		[SHOWN_REFUSALS] = "refusal", [SHOWN_WATCH] = "failure",
	};
	char w[24], from[32], hz[32], keep[24];
	enum shown how = shown_as(x, b);

	cfg_format_duration(e->window, w, sizeof(w));
	iso_time(e->from, from, sizeof(from));
	iso_time(x->horizon, hz, sizeof(hz));
	cfg_format_duration(x->keep, keep, sizeof(keep));
	switch (e->kind) {
	case EVIDENCE_MANUAL:
		printf("  made by hand (mailjail ban or hold): no events made it\n");
		return;
	case EVIDENCE_UNKNOWN:
		printf("  jail %s is not configured now: what it counted cannot be told\n", b->jail);
		return;
	case EVIDENCE_BANS:
		printf("  the %zu ban%s it counted (other jails', within %s):\n", e->n,
		    e->n == 1 ? "" : "s", w);
		if (e->n)
			print_bans_counted(x, e);
		break;
	case EVIDENCE_EVENTS:
		if (e->n == 0 && strcmp(e->status, "gone") == 0) {
			printf("  evidence gone: its events (from %s) are purged; events are "
			    "kept %s, since %s\n", from, keep, hz);
			return;
		}
		printf("  the %zu %s%s it counted (within %s before the %s)%s\n", e->n,
		    nouns[how], e->n == 1 ? "" : "s", w, ban_word(b),
		    (how == SHOWN_MESSAGES || how == SHOWN_WATCH) && e->n ? "," : ":");
		if (how == SHOWN_MESSAGES && e->n) {
			print_clients(x, e);
			printf("  the messages:\n");
		} else if (how == SHOWN_WATCH && e->n) {
			size_t n = distinct_ips(x, e);
			printf("  from %zu address%s, each banned in this jail (mailjail explain "
			    "ADDRESS):\n", n, n == 1 ? "" : "es");
		} else if (how == SHOWN_REFUSALS && e->n) {
			printf("  (each message counts once per recipient domain, at its first "
			    "refusal there)\n");
		}
		if (e->n)
			print_events_table(x, e, how);
		if (strcmp(e->status, "gone") == 0)
			printf("  (part of the evidence is gone: events are kept %s, since %s)\n",
			    keep, hz);
		break;
	}
	if (strcmp(e->status, "incomplete") == 0)
		printf("  (fewer than the jail needs now: its configuration may have changed "
		    "since, or the events were not kept)\n");
}

static int
print_text(const struct explain *x, struct evidence *ev)
{
	char hz[32], keep[24];

	iso_time(x->horizon, hz, sizeof(hz));
	cfg_format_duration(x->keep, keep, sizeof(keep));
	printf("%s: %zu ban%s or hold%s, newest first; events are kept %s "
	    "(the longest jail window, at least 2 days): since %s\n", x->target, x->nbans,
	    x->nbans == 1 ? "" : "s", x->nbans == 1 ? "" : "s", keep, hz);
	for (size_t i = 0; i < x->nbans; i++) {
		print_ban_head(&x->bans[i]);
		print_evidence(x, &x->bans[i], &ev[i]);
	}
	return 0;
}

/* ---- JSON ----------------------------------------------------------------- */

/* jstr - a JSON string of s; text that is not UTF-8 (not from a log line
 * rules_match accepted, but a DB can hold anything) with '?' for its bytes */
static json_t *
jstr(const char *s)
{
	json_t *j;
	char *copy;

	if (s == NULL || *s == '\0')
		return json_null();
	if ((j = json_string(s)) != NULL || (copy = strdup(s)) == NULL)
		return j;
	for (char *p = copy; *p; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	j = json_string(copy);
	free(copy);
	return j;
}

static json_t *
jtime(int64_t t)
{
	char buf[32];

	if (t == 0)
		return json_null();
	iso_time(t, buf, sizeof(buf));
	return json_string(buf);
}

static json_t *
json_event(const struct event *ev)
{
	return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
	    "time", jtime(ev->time), "event", jstr(ev->type), "rule", jstr(ev->rule),
	    "ip", jstr(ev->ip), "account", jstr(ev->user), "sender", jstr(ev->sender),
	    "qid", jstr(ev->qid), "nrcpt", ev->nrcpt >= 0 ? json_integer(ev->nrcpt) : json_null(),
	    "rcpt", jstr(ev->rcpt));
}

static json_t *
json_evidence(const struct explain *x, const struct xban *b, const struct evidence *e)
{
	static const char *const kinds[] = {
		[EVIDENCE_EVENTS] = "events", [EVIDENCE_BANS] = "bans",
		[EVIDENCE_MANUAL] = "manual", [EVIDENCE_UNKNOWN] = "unknown jail",
	};
	json_t *o = json_pack("{s:s, s:s}", "kind", kinds[e->kind], "status", e->status);
	json_t *list = json_array();

	if (o == NULL || list == NULL) {
		json_decref(o);
		json_decref(list);
		return NULL;
	}
	if (e->kind == EVIDENCE_EVENTS || e->kind == EVIDENCE_BANS) {
		json_object_set_new(o, "window_seconds", json_integer(e->window));
		json_object_set_new(o, "from", jtime(e->from));
		json_object_set_new(o, "to", jtime(e->to));
		json_object_set_new(o, "count", json_integer((json_int_t)e->n));
	}
	for (size_t i = 0; i < e->n; i++) {
		if (e->kind == EVIDENCE_EVENTS) {
			json_array_append_new(list, json_event(&x->events[e->idx[i]].ev));
		} else {
			const struct xban *o2 = &x->bans[e->idx[i]];
			json_array_append_new(list, json_pack("{s:o, s:i, s:o, s:o}", "jail",
			    jstr(o2->jail), "level", o2->level, "started_at", jtime(o2->started_at),
			    "reason", jstr(o2->reason)));
		}
	}
	json_object_set_new(o, e->kind == EVIDENCE_BANS ? "bans" : "events", list);
	if (e->kind == EVIDENCE_EVENTS && shown_as(x, b) == SHOWN_MESSAGES) {
		json_t *cl = json_array();
		size_t n = 0;
		struct client *c = clients_of(x, e, &n);
		for (size_t i = 0; c != NULL && i < n; i++)
			json_array_append_new(cl, json_pack("{s:o, s:I, s:I}", "ip", jstr(c[i].ip),
			    "messages", (json_int_t)c[i].messages, "recipients",
			    (json_int_t)c[i].recipients));
		free(c);
		json_object_set_new(o, "clients", cl);
		json_object_set_new(o, "recipients", json_integer(e->recipients));
		json_object_set_new(o, "recipients_known_for",
		    json_integer((json_int_t)e->recipients_known));
	}
	return o;
}

static int
print_json(const struct explain *x, struct evidence *ev)
{
	json_t *root, *bans = json_array();
	int rc = 0;

	root = json_pack("{s:o, s:I, s:o}", "target", jstr(x->target), "events_kept_seconds",
	    (json_int_t)x->keep, "events_kept_since", jtime(x->horizon));
	if (root == NULL || bans == NULL) {
		json_decref(root);
		json_decref(bans);
		return -1;
	}
	for (size_t i = 0; i < x->nbans; i++) {
		const struct xban *b = &x->bans[i];
		json_t *o = json_pack("{s:o, s:o, s:o, s:i, s:o, s:o, s:o, s:o, s:o}",
		    "jail", jstr(b->jail), "target", jstr(b->target), "target_kind", jstr(b->kind),
		    "level", b->level, "reason", jstr(b->reason), "started_at", jtime(b->started_at),
		    "expires_at", jtime(b->expires_at), "lifted_at", jtime(b->lifted_at),
		    "evidence", json_evidence(x, b, &ev[i]));
		if (o == NULL || json_array_append_new(bans, o) != 0)
			rc = -1;
	}
	json_object_set_new(root, "bans", bans);
	if (rc == 0 && json_dumpf(root, stdout, JSON_INDENT(1) | JSON_PRESERVE_ORDER) != 0)
		rc = -1;
	fputc('\n', stdout);
	json_decref(root);
	return rc;
}

/* ---- the command ---------------------------------------------------------- */

static void
explain_free(struct explain *x)
{
	for (size_t i = 0; i < x->nbans; i++) {
		free(x->bans[i].jail);
		free(x->bans[i].target);
		free(x->bans[i].kind);
		free(x->bans[i].reason);
	}
	free(x->bans);
	free(x->events);
}

int
cli_explain(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "db", required_argument, NULL, 'd' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cfgpath = NULL, *db = NULL;
	struct evidence *ev = NULL;
	struct explain x;
	struct ban_filter f;
	char target[MJ_TARGET_MAX];
	struct diag d;
	struct app a;
	bool json = false;
	int ch, rc = EXIT_RUNTIME;

	while ((ch = getopt_long(argc, argv, "c:d:", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': cfgpath = optarg; break;
		case 'd': db = optarg; break;
		case 'j': json = true; break;
		default: return cmdhelp_usage_error(argv[0]);
		}
	}
	if (optind + 1 != argc)
		return cmdhelp_usage_error(argv[0]);
	/* An address is looked up in its canonical form, as it was stored. */
	if (addr_canonical(argv[optind], target, sizeof(target)) != 0)
		snprintf(target, sizeof(target), "%s", argv[optind]);
	memset(&x, 0, sizeof(x));
	diag_init(&d);
	if (app_load(&a, cfgpath, NULL, true, &d) != 0) {
		diag_print(&d);
		diag_free(&d);
		app_free(&a);
		return EXIT_USAGE;
	}
	diag_free(&d);
	if (app_open_store(&a, db, false) != 0)
		goto out;
	x.a = &a;
	x.target = target;
	x.now = (int64_t)time(NULL);
	x.keep = jails_longest_window(a.jails);
	if (x.keep < EXPLAIN_KEEP_MIN)
		x.keep = EXPLAIN_KEEP_MIN;
	x.horizon = x.now - x.keep;
	f = (struct ban_filter){ NULL, target, false, x.now };
	if (store_each_ban(a.store, &f, copy_ban, &x) != 0 || load_events(&x) != 0) {
		log_warnx("database %s: %s", a.db_path, store_errmsg(a.store));
		goto out;
	}
	if (x.nbans == 0) {
		if (json)
			rc = print_json(&x, NULL) == 0 ? 0 : EXIT_RUNTIME;
		else {
			printf("%s: no bans or holds\n", target);
			rc = 0;
		}
		goto out;
	}
	if ((ev = calloc(x.nbans, sizeof(*ev))) == NULL)
		goto out;
	for (size_t i = 0; i < x.nbans; i++)
		if (evidence_for(&x, &x.bans[i], &ev[i]) != 0)
			goto out;
	rc = (json ? print_json(&x, ev) : print_text(&x, ev)) == 0 ? 0 : EXIT_RUNTIME;
out:
	for (size_t i = 0; ev != NULL && i < x.nbans; i++)
		free(ev[i].idx);
	free(ev);
	explain_free(&x);
	app_free(&a);
	return rc;
}
