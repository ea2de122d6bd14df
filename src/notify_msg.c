/*
 * notify_msg - the mail, the JSON and the environment.  See notify_msg.h.
 *
 * JSON through jansson (Debian's libjansson-dev, the project's one JSON
 * library: docs/notes.md): it escapes every string (control characters,
 * quotes, backslashes) so a crafted account name cannot break the document
 * a webhook forwards; text that is not UTF-8 goes in with U+FFFD for each
 * byte outside ASCII (jsontext.h), so the document is always valid JSON.
 */
#include "notify_msg.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cfgfile.h"
#include "config.h"
#include "jsontext.h"
#include "logtime.h"

/* A digest lists at most this many rows one per line (the rest: counted). */
#define DIGEST_LINES_MAX 200
/* The busiest targets shown per jail in a digest. */
#define DIGEST_TOP 5

static char *
dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

int
notice_copy(struct notice *d, const struct stored_notification *s)
{
	memset(d, 0, sizeof(*d));
	d->id = s->id;
	d->digest = s->digest;
	d->ban_id = s->ban_id;
	d->evidence_window = s->evidence_window;
	d->level = s->level;
	d->started_at = s->started_at;
	d->expires_at = s->expires_at;
	d->created_at = s->created_at;
	d->due_at = s->due_at;
	d->done = s->done;
	d->attempts = s->attempts;
	d->event = strdup(s->event);
	d->jail = strdup(s->jail);
	d->target = strdup(s->target);
	d->target_kind = strdup(s->target_kind);
	d->reason = strdup(s->reason);
	d->node = strdup(s->node);
	d->evidence_key = dup_or_null(s->evidence_key);
	if (d->event == NULL || d->jail == NULL || d->target == NULL || d->target_kind == NULL ||
	    d->reason == NULL || d->node == NULL || (s->evidence_key && d->evidence_key == NULL)) {
		notice_free(d);
		return -1;
	}
	return 0;
}

void
notice_free(struct notice *n)
{
	free(n->event);
	free(n->jail);
	free(n->target);
	free(n->target_kind);
	free(n->reason);
	free(n->node);
	free(n->evidence_key);
	memset(n, 0, sizeof(*n));
}

void
notify_iso_time(int64_t t, char *buf, size_t len)
{
	if (logtime_iso(t, buf, len) == NULL)
		snprintf(buf, len, "?");
}

/* rfc5322_date - the Date header, in English whatever the locale */
static void
rfc5322_date(int64_t t, char *buf, size_t len)
{
	static const char *const day[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const mon[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul",
	    "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL) {
		snprintf(buf, len, "Thu, 01 Jan 1970 00:00:00 +0000");
		return;
	}
	snprintf(buf, len, "%s, %02d %s %04d %02d:%02d:%02d +0000", day[tm.tm_wday],
	    tm.tm_mday, mon[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

void
notify_sh_quote(const char *s, char *buf, size_t len)
{
	static const char safe[] = "@%+=:,./_-";
	bool plain = *s != '\0';
	size_t off = 0;

	for (const char *p = s; *p && plain; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr(safe, *p)))
			plain = false;
	if (plain) {
		snprintf(buf, len, "%s", s);
		return;
	}
	/* 'it'\''s': each ' closes, is escaped, and reopens */
	if (len < 3) {
		if (len)
			buf[0] = '\0';
		return;
	}
	buf[off++] = '\'';
	for (const char *p = s; *p; p++) {
		if (*p == '\'') {
			if (off + 5 >= len)
				break;
			memcpy(buf + off, "'\\''", 4);
			off += 4;
		} else {
			if (off + 2 >= len)
				break;
			buf[off++] = *p;
		}
	}
	buf[off++] = '\'';
	buf[off] = '\0';
}

/* clean - s for a line of the mail: control characters (CR, LF, TAB...)
 * become '?', and in a header non-ASCII too */
static const char *
clean(const char *s, bool header, char *buf, size_t len)
{
	size_t off = 0;

	for (; *s && off + 1 < len; s++) {
		unsigned char c = (unsigned char)*s;
		buf[off++] = c < 0x20 || c == 0x7f || (header && c >= 0x80) ? '?' : (char)c;
	}
	buf[off] = '\0';
	return buf;
}

/* out - one line of the mail, CRLF-terminated */
static void out(FILE *fp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void
out(FILE *fp, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(fp, fmt, ap);
	va_end(ap);
	fputs("\r\n", fp);
}

/* undo_command - the command that undoes v (NULL: none) */
static bool
undo_command(const struct notice *v, const char *cfgpath, char *buf, size_t len)
{
	char q[MJ_TARGET_MAX * 4 + 8], cq[4200 * 4 + 8];
	char c[sizeof(cq) + 8] = "";

	if (cfgpath != NULL && strcmp(cfgpath, CONFIG_DEFAULT_PATH) != 0) {
		notify_sh_quote(cfgpath, cq, sizeof(cq));
		snprintf(c, sizeof(c), " -c %s", cq);
	}
	notify_sh_quote(v->target, q, sizeof(q));
	if (strcmp(v->event, "hold") == 0)
		snprintf(buf, len, "mailjail release %s --requeue%s", q, c);
	else if (strcmp(v->event, "defer") == 0)
		snprintf(buf, len, "mailjail release %s%s", q, c);
	else if (strcmp(v->event, "ban") == 0)
		snprintf(buf, len, "mailjail unban %s%s", q, c);
	else
		return false;
	return true;
}

static const char *
what_happened(const struct notice *v)
{
	if (strcmp(v->event, "hold") == 0)
		return "put on hold: its new mail waits in Postfix's hold queue";
	if (strcmp(v->event, "defer") == 0)
		return "deferred: its new mail is refused with a temporary error";
	if (strcmp(v->event, "ban") == 0)
		return "banned: its connections to the mail ports are dropped or refused";
	if (strcmp(v->event, "lift") == 0)
		return "released by an operator before its time (its ban or hold is over)";
	return "an alarm";
}

static void
facts(FILE *fp, const struct notice *v, int64_t now)
{
	char a[64], b[64], dur[24], t[MJ_REASON_MAX * 2];

	out(fp, "  Jail:    %s", clean(v->jail, false, t, sizeof(t)));
	if (v->level > 0)
		out(fp, "  Level:   %d%s", v->level, v->level == 1 ? " (first offence)" :
		    " (a repeat offence: its time grew)");
	out(fp, "  Reason:  %s", clean(v->reason, false, t, sizeof(t)));
	notify_iso_time(v->started_at, a, sizeof(a));
	out(fp, "  Since:   %s", a);
	if (v->expires_at > 0 && strcmp(v->event, "alarm") != 0) {
		notify_iso_time(v->expires_at, b, sizeof(b));
		cfg_format_duration(v->expires_at - v->started_at, dur, sizeof(dur));
		out(fp, "  %s %s (%s after it began%s)", strcmp(v->event, "lift") == 0 ?
		    "Was to end:" : "Until:  ", b, dur, v->expires_at <= now ? ", over now" : "");
	}
}

static void
evidence(FILE *fp, const struct notice *v)
{
	char win[24], t[MJ_TARGET_MAX * 2];

	if (!v->have_evidence)
		return;
	cfg_format_duration(v->evidence_window, win, sizeof(win));
	out(fp, "%s", "");
	out(fp, "Evidence: the submissions of %s (key %s) in the %s before, from the log:",
	    clean(v->target, false, t, sizeof(t)), v->evidence_key, win);
	out(fp, "  Submissions:       %" PRId64, v->ev.submissions);
	out(fp, "  Client addresses:  %" PRId64, v->ev.clients);
	if (v->ev.ntop > 0) {
		char line[1024];
		size_t off = 0;
		for (size_t i = 0; i < v->ev.ntop && off < sizeof(line); i++)
			off += (size_t)snprintf(line + off, sizeof(line) - off, "%s%s (%" PRId64 ")",
			    i ? ", " : "", v->ev.top[i].ip, v->ev.top[i].submissions);
		out(fp, "  Busiest clients:   %s", line);
	}
	if (v->ev.recipients >= 0)
		out(fp, "  Recipients:        %" PRId64, v->ev.recipients);
	else
		out(fp, "  Recipients:        not recorded (kept when a jail counts "
		    "recipients or keys on sender or domain)");
}

static void
body_one(FILE *fp, const struct notice *v, const struct notify_msg_opts *o)
{
	char t[MJ_TARGET_MAX * 2], cmd[MJ_TARGET_MAX * 4 + 4400], line[sizeof(cmd)];
	bool account = strcmp(v->target_kind, "account") == 0;

	if (strcmp(v->event, "alarm") == 0) {
		out(fp, "mailjail on %s raises an alarm:", o->node);
		out(fp, "%s", "");
		out(fp, "  %s", clean(v->reason, false, t, sizeof(t)));
		out(fp, "%s", "");
		out(fp, "  Source:  %s", clean(v->jail, false, t, sizeof(t)));
		notify_iso_time(v->started_at, cmd, sizeof(cmd));
		out(fp, "  Since:   %s", cmd);
		return;
	}
	out(fp, "mailjail on %s: the %s %s was %s.", o->node, account ? "account" : "address",
	    clean(v->target, false, t, sizeof(t)), what_happened(v));
	out(fp, "%s", "");
	facts(fp, v, o->now);
	evidence(fp, v);
	out(fp, "%s", "");
	if (undo_command(v, o->cfgpath, cmd, sizeof(cmd))) {
		if (strcmp(v->event, "hold") == 0) {
			out(fp, "If the mail is the customer's own, release the account and deliver");
			out(fp, "what was held (as root, on %s):", o->node);
		} else if (strcmp(v->event, "defer") == 0) {
			out(fp, "If the mail is the customer's own, let the account send again");
			out(fp, "(as root, on %s):", o->node);
		} else {
			out(fp, "To lift the ban now (as root, on %s):", o->node);
		}
		out(fp, "%s", "");
		/* (quoted for the shell; a control character is no command) */
		out(fp, "  %s", clean(cmd, false, line, sizeof(line)));
		out(fp, "%s", "");
		if (account)
			out(fp, "If the account is compromised, change its password first; left "
			    "alone, the %s ends by itself at the time above.", v->event);
		else
			out(fp, "Left alone, it ends by itself at the time above.");
	}
}

struct jail_sum {
	const char *jail;
	size_t bans, lifts, escalated;
	const struct notice *top[DIGEST_TOP];
	size_t ntop;
};

/* sum_add - count v in its jail's summary; top: highest level, then newest */
static void
sum_add(struct jail_sum *js, size_t *nj, size_t max, const struct notice *v)
{
	struct jail_sum *s = NULL;

	for (size_t i = 0; i < *nj; i++)
		if (strcmp(js[i].jail, v->jail) == 0)
			s = &js[i];
	if (s == NULL) {
		if (*nj == max)
			return;
		s = &js[(*nj)++];
		memset(s, 0, sizeof(*s));
		s->jail = v->jail;
	}
	if (strcmp(v->event, "lift") == 0) {
		s->lifts++;
		return;
	}
	s->bans++;
	if (v->level > 1)
		s->escalated++;
	if (s->ntop < DIGEST_TOP) {
		s->top[s->ntop++] = v;
	} else if (v->level >= s->top[DIGEST_TOP - 1]->level) {
		s->top[DIGEST_TOP - 1] = v;
	} else {
		return;
	}
	for (size_t i = s->ntop - 1; i > 0 && s->top[i]->level >= s->top[i - 1]->level; i--) {
		const struct notice *x = s->top[i];
		s->top[i] = s->top[i - 1];
		s->top[i - 1] = x;
	}
}

static void
body_digest(FILE *fp, const struct notice *v, size_t n, const struct notify_msg_opts *o)
{
	struct jail_sum *sum = calloc(n ? n : 1, sizeof(*sum));
	size_t nj = 0, bans = 0;
	char a[64], b[64], t[MJ_TARGET_MAX * 2], r[MJ_REASON_MAX * 2], line[1400];

	if (sum == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		sum_add(sum, &nj, n, &v[i]);
		bans += strcmp(v[i].event, "lift") != 0;
	}
	notify_iso_time(n ? v[0].created_at : o->now, a, sizeof(a));
	if (bans == n)
		out(fp, "mailjail on %s: %zu ban%s since %s.", o->node, bans,
		    bans == 1 ? "" : "s", a);
	else
		out(fp, "mailjail on %s: %zu ban%s and %zu lift%s since %s.", o->node, bans,
		    bans == 1 ? "" : "s", n - bans, n - bans == 1 ? "" : "s", a);
	out(fp, "%s", "");
	for (size_t j = 0; j < nj; j++) {
		size_t off = 0;
		out(fp, "%s: %zu ban%s, %zu escalated (level 2 or more)%s", clean(sum[j].jail, false,
		    t, sizeof(t)), sum[j].bans, sum[j].bans == 1 ? "" : "s", sum[j].escalated,
		    sum[j].lifts ? ", some lifted by an operator" : "");
		for (size_t k = 0; k < sum[j].ntop && off < sizeof(line); k++)
			off += (size_t)snprintf(line + off, sizeof(line) - off, "%s%s (level %d)",
			    k ? ", " : "", clean(sum[j].top[k]->target, false, t, sizeof(t)),
			    sum[j].top[k]->level);
		if (sum[j].ntop)
			out(fp, "  top: %s", line);
	}
	out(fp, "%s", "");
	out(fp, "Each of them, oldest first:");
	for (size_t i = 0; i < n && i < DIGEST_LINES_MAX; i++) {
		notify_iso_time(v[i].started_at, a, sizeof(a));
		notify_iso_time(v[i].expires_at, b, sizeof(b));
		out(fp, "  %s  %-4s %s  %s  level %d  until %s  %s", a, v[i].event,
		    clean(v[i].jail, false, line, sizeof(line)),
		    clean(v[i].target, false, t, sizeof(t)), v[i].level, b,
		    clean(v[i].reason, false, r, sizeof(r)));
	}
	if (n > DIGEST_LINES_MAX)
		out(fp, "  ... and %zu more: mailjail bans --all", n - DIGEST_LINES_MAX);
	out(fp, "%s", "");
	out(fp, "To lift a ban now (as root, on %s): mailjail unban ADDRESS%s%s", o->node,
	    o->cfgpath && strcmp(o->cfgpath, CONFIG_DEFAULT_PATH) != 0 ? " -c " : "",
	    o->cfgpath && strcmp(o->cfgpath, CONFIG_DEFAULT_PATH) != 0 ? o->cfgpath : "");
	free(sum);
}

static void
subject(FILE *fp, const struct notice *v, size_t n, bool digest, const char *node)
{
	char t[MJ_TARGET_MAX * 2], j[MJ_REASON_MAX * 2];

	if (digest) {
		size_t bans = 0;
		for (size_t i = 0; i < n; i++)
			bans += strcmp(v[i].event, "lift") != 0;
		if (bans == n)
			out(fp, "Subject: [mailjail] digest: %zu ban%s on %s", bans,
			    bans == 1 ? "" : "s", node);
		else
			out(fp, "Subject: [mailjail] digest: %zu ban%s, %zu lift%s on %s", bans,
			    bans == 1 ? "" : "s", n - bans, n - bans == 1 ? "" : "s", node);
	} else if (strcmp(v->event, "alarm") == 0) {
		out(fp, "Subject: [mailjail] alarm on %s: %s", node,
		    clean(v->reason, true, t, sizeof(t)));
	} else {
		out(fp, "Subject: [mailjail] %s: %s %s (jail %s, level %d) on %s", v->event,
		    v->target_kind, clean(v->target, true, t, sizeof(t)),
		    clean(v->jail, true, j, sizeof(j)), v->level, node);
	}
}

char *
notify_mail(const struct notice *v, size_t n, bool digest, const struct notify_msg_opts *o,
    size_t *len)
{
	char *text = NULL, date[64];
	size_t size = 0;
	FILE *fp;

	if (n == 0 || (fp = open_memstream(&text, &size)) == NULL)
		return NULL;
	rfc5322_date(o->now, date, sizeof(date));
	out(fp, "From: \"mailjail on %s\" <%s>", o->node, o->from);
	fputs("To: ", fp);
	for (size_t i = 0; i < o->nto; i++)
		fprintf(fp, "%s%s", i ? ",\r\n " : "", o->to[i]);
	out(fp, "%s", "");
	subject(fp, v, n, digest, o->node);
	out(fp, "Date: %s", date);
	/* The same for every attempt at this notification: a receiver can
	 * drop a repeat (a duplicate after a crash between send and mark). */
	if (digest)
		out(fp, "Message-ID: <mailjail.%" PRId64 "-%" PRId64 ".%zu@%s>", v[0].id,
		    v[n - 1].id, n, o->node);
	else
		out(fp, "Message-ID: <mailjail.%" PRId64 "@%s>", v->id, o->node);
	out(fp, "MIME-Version: 1.0");
	out(fp, "Content-Type: text/plain; charset=utf-8");
	out(fp, "Content-Transfer-Encoding: 8bit");
	out(fp, "Auto-Submitted: auto-generated");
	out(fp, "X-Mailjail-Event: %s", digest ? "digest" : v->event);
	out(fp, "%s", "");
	if (digest)
		body_digest(fp, v, n, o);
	else
		body_one(fp, v, o);
	out(fp, "%s", "");
	out(fp, "-- ");
	out(fp, "mailjail notification %" PRId64 "%s, from %s", v[0].id,
	    digest ? " and the rest of this digest" : "", o->node);
	if (fclose(fp) != 0) {
		free(text);
		return NULL;
	}
	*len = size;
	return text;
}

/* ---- JSON ---------------------------------------------------------------- */

/* The add_* helpers take the object as built so far and give -1 if it or
 * the member could not be made (json_object_set_new takes the value, also
 * when it fails). */
static int
add_value(json_t *o, const char *k, json_t *v)
{
	if (v == NULL)
		return -1;
	return json_object_set_new(o, k, v);
}

static int
add_str(json_t *o, const char *k, const char *v)
{
	return add_value(o, k, jsontext_string(v));
}

static int
add_int(json_t *o, const char *k, int64_t v)
{
	return add_value(o, k, json_integer((json_int_t)v));
}

static int
add_time(json_t *o, const char *k, int64_t t)
{
	char buf[64];

	notify_iso_time(t, buf, sizeof(buf));
	return add_str(o, k, buf);
}

static json_t *
evidence_json(const struct notice *v)
{
	json_t *e = json_object(), *top = json_array();
	char win[24];
	int rc = 0;

	if (e == NULL || top == NULL) {
		json_decref(e);
		json_decref(top);
		return NULL;
	}
	cfg_format_duration(v->evidence_window, win, sizeof(win));
	rc |= add_str(e, "key", v->evidence_key);
	rc |= add_str(e, "window", win);
	rc |= add_int(e, "submissions", v->ev.submissions);
	rc |= add_int(e, "clients", v->ev.clients);
	for (size_t i = 0; i < v->ev.ntop && rc == 0; i++) {
		json_t *c = json_object();

		if (c == NULL || add_str(c, "ip", v->ev.top[i].ip) != 0 ||
		    add_int(c, "submissions", v->ev.top[i].submissions) != 0) {
			json_decref(c);
			rc = -1;
		} else if (json_array_append_new(top, c) != 0) {
			rc = -1;   /* (c is taken, also when it fails) */
		}
	}
	rc |= add_value(e, "busiest", top);
	rc |= add_value(e, "recipients", v->ev.recipients >= 0 ?
	    json_integer((json_int_t)v->ev.recipients) : json_null());
	if (rc != 0) {
		json_decref(e);
		return NULL;
	}
	return e;
}

static json_t *
notice_json(const struct notice *v)
{
	json_t *o = json_object();
	char cmd[MJ_TARGET_MAX * 4 + 4400];
	int rc = 0;

	if (o == NULL)
		return NULL;
	rc |= add_int(o, "id", v->id);
	rc |= add_str(o, "event", v->event);
	rc |= add_str(o, "jail", v->jail);
	rc |= add_str(o, "target", v->target);
	rc |= add_str(o, "target_kind", v->target_kind);
	rc |= add_int(o, "level", v->level);
	rc |= add_str(o, "reason", v->reason);
	rc |= add_time(o, "started", v->started_at);
	rc |= add_time(o, "expires", v->expires_at);
	rc |= add_str(o, "node", v->node);
	if (v->have_evidence)
		rc |= add_value(o, "evidence", evidence_json(v));
	/* no -c here: the receiver is not on this host's command line */
	if (undo_command(v, NULL, cmd, sizeof(cmd)))
		rc |= add_str(o, "command", cmd);
	if (rc != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

char *
notify_json(const struct notice *v, size_t n, bool digest, size_t *len)
{
	json_t *doc = NULL;
	char *s = NULL, *text = NULL;

	if (n == 0 || (doc = digest ? json_array() : notice_json(v)) == NULL)
		goto out;
	for (size_t i = 0; digest && i < n; i++)
		if (json_array_append_new(doc, notice_json(&v[i])) != 0)
			goto out;   /* (NULL, or taken and freed) */
	/* Compact, members in the order added; '/' is not escaped. */
	if ((s = json_dumps(doc, JSON_COMPACT)) == NULL)
		goto out;
	*len = strlen(s);
	if ((text = malloc(*len + 2)) != NULL) {
		memcpy(text, s, *len);
		text[(*len)++] = '\n';
		text[*len] = '\0';
	}
out:
	free(s);
	json_decref(doc);
	return text;
}

/* ---- environment --------------------------------------------------------- */

struct envb {
	char **v;
	size_t n, cap;
	bool failed;
};

/* env_room - room for one more string and the NULL after it; false (and
 * e failed) if there is none */
static bool
env_room(struct envb *e)
{
	size_t cap = e->cap ? e->cap * 2 : 64;
	char **nv;

	if (e->n + 2 <= e->cap)
		return true;
	if ((nv = realloc(e->v, cap * sizeof(*nv))) == NULL) {
		e->failed = true;
		return false;
	}
	e->v = nv;
	e->cap = cap;
	return true;
}

static void
env_put(struct envb *e, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void
env_put(struct envb *e, const char *name, const char *fmt, ...)
{
	va_list ap;
	char *val = NULL, *kv = NULL;

	if (e->failed || !env_room(e))
		return;
	va_start(ap, fmt);
	if (vasprintf(&val, fmt, ap) < 0)
		val = NULL;
	va_end(ap);
	if (val == NULL || asprintf(&kv, "%s=%s", name, val) < 0) {
		free(val);
		e->failed = true;
		return;
	}
	free(val);
	e->v[e->n++] = kv;
	e->v[e->n] = NULL;
}

static void
env_base(struct envb *e, char *const *base)
{
	for (size_t i = 0; base && base[i] && !e->failed; i++) {
		const char *eq = strchr(base[i], '=');
		char *copy;

		/* Ours are set below; systemd's are the daemon's, not the
		 * hook's (a hook must not speak for the service). */
		if (eq == NULL || strncmp(base[i], "MAILJAIL_", 9) == 0 ||
		    strncmp(base[i], "NOTIFY_SOCKET=", 14) == 0 ||
		    strncmp(base[i], "WATCHDOG_", 9) == 0 || strncmp(base[i], "LISTEN_", 7) == 0)
			continue;
		if (!env_room(e))
			return;
		if ((copy = strdup(base[i])) == NULL) {
			e->failed = true;
			return;
		}
		e->v[e->n++] = copy;
		e->v[e->n] = NULL;
	}
}

/* joined - the distinct values of field among v, comma separated */
static char *
joined(const struct notice *v, size_t n, size_t field_off)
{
	char *text = NULL;
	size_t size = 0;
	FILE *fp = open_memstream(&text, &size);
	size_t count = 0;

	if (fp == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		const char *s = *(char *const *)(const void *)((const char *)&v[i] + field_off);
		bool seen = false;
		for (size_t k = 0; k < i && !seen; k++)
			seen = strcmp(s, *(char *const *)(const void *)((const char *)&v[k] +
			    field_off)) == 0;
		if (!seen)
			fprintf(fp, "%s%s", count++ ? "," : "", s);
	}
	if (fclose(fp) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

char **
notify_env(const struct notice *v, size_t n, bool digest, const char *node, char *const *base)
{
	struct envb e = { NULL, 0, 0, false };
	char a[64], b[64];

	if (n == 0)
		return NULL;
	env_base(&e, base);
	if (!digest) {
		env_put(&e, "MAILJAIL_EVENT", "%s", v->event);
		env_put(&e, "MAILJAIL_JAIL", "%s", v->jail);
		env_put(&e, "MAILJAIL_TARGET", "%s", v->target);
		env_put(&e, "MAILJAIL_TARGET_KIND", "%s", v->target_kind);
		env_put(&e, "MAILJAIL_LEVEL", "%d", v->level);
		env_put(&e, "MAILJAIL_REASON", "%s", v->reason);
		notify_iso_time(v->started_at, a, sizeof(a));
		notify_iso_time(v->expires_at, b, sizeof(b));
		env_put(&e, "MAILJAIL_STARTED", "%s", a);
		env_put(&e, "MAILJAIL_EXPIRES", "%s", b);
		env_put(&e, "MAILJAIL_ID", "%" PRId64, v->id);
		env_put(&e, "MAILJAIL_COUNT", "1");
	} else {
		char *jails = joined(v, n, offsetof(struct notice, jail));
		char *kinds = joined(v, n, offsetof(struct notice, target_kind));
		char *ids = NULL;
		size_t isize = 0;
		FILE *fp = open_memstream(&ids, &isize);
		int64_t first = v[0].started_at, last = v[0].expires_at;
		int level = 0;

		for (size_t i = 0; i < n; i++) {
			if (v[i].started_at < first)
				first = v[i].started_at;
			if (v[i].expires_at > last)
				last = v[i].expires_at;
			if (v[i].level > level)
				level = v[i].level;
			if (fp)
				fprintf(fp, "%s%" PRId64, i ? "," : "", v[i].id);
		}
		if (fp == NULL || fclose(fp) != 0 || jails == NULL || kinds == NULL)
			e.failed = true;
		env_put(&e, "MAILJAIL_EVENT", "digest");
		env_put(&e, "MAILJAIL_JAIL", "%s", jails ? jails : "");
		env_put(&e, "MAILJAIL_TARGET", "%s", "");
		env_put(&e, "MAILJAIL_TARGET_KIND", "%s", kinds ? kinds : "");
		env_put(&e, "MAILJAIL_LEVEL", "%d", level);
		env_put(&e, "MAILJAIL_REASON", "%zu notifications (the JSON on standard input "
		    "lists them)", n);
		notify_iso_time(first, a, sizeof(a));
		notify_iso_time(last, b, sizeof(b));
		env_put(&e, "MAILJAIL_STARTED", "%s", a);
		env_put(&e, "MAILJAIL_EXPIRES", "%s", b);
		env_put(&e, "MAILJAIL_ID", "%s", ids ? ids : "");
		env_put(&e, "MAILJAIL_COUNT", "%zu", n);
		free(jails);
		free(kinds);
		free(ids);
	}
	env_put(&e, "MAILJAIL_NODE", "%s", node);
	if (e.failed) {
		notify_env_free(e.v);
		return NULL;
	}
	return e.v;
}

void
notify_env_free(char **env)
{
	for (size_t i = 0; env && env[i]; i++)
		free(env[i]);
	free(env);
}
