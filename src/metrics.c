/*
 * metrics - counters, gauges and the text exposition.  See metrics.h.
 *
 * A counter series is (family, label set as exposed, value); the label set
 * is rendered and escaped once, when the series is made, so the exposition
 * and the saved rows use the same text and a lookup is one strcmp per
 * series of the family.  There are a few dozen series (sources, rule
 * events, jails x actions, backends, channels x results): a linear search
 * costs less than a hash table's upkeep, and the pipeline resolves its hot
 * series (events per rule) to handles once.
 *
 * The commit histogram keeps a count per bucket; the exposition makes them
 * cumulative, as the format wants.
 */
#include "metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal.h"
#include "log.h"

#ifndef MAILJAIL_VERSION
#define MAILJAIL_VERSION "unknown"
#endif

#define LABELS_MAX 8192      /* two escaped values: a path is at most 4096 */

static const struct counter_family {
	const char *name;
	const char *help;
	const char *label[2];      /* label[1] NULL: one label */
} families[METRIC_COUNTERS] = {
	[METRIC_LINES] = { "mailjail_lines_total",
	    "Log lines read and committed, per configured source.", { "source", NULL } },
	[METRIC_EVENTS] = { "mailjail_events_total",
	    "Lines a rule recognised, per event name.", { "event", NULL } },
	[METRIC_VERDICTS] = { "mailjail_verdicts_total",
	    "Bans and holds the jails decided from the logs, per jail and action.",
	    { "jail", "action" } },
	[METRIC_ENFORCE_ERRORS] = { "mailjail_enforce_errors_total",
	    "Verdicts or syncs an enforcement backend failed to apply (retried "
	    "until it works), per backend.", { "backend", NULL } },
	[METRIC_NOTIFICATIONS] = { "mailjail_notifications_total",
	    "Notification deliveries per channel (mail, command) and result (sent, "
	    "failed, timeout, gave_up).", { "channel", "result" } },
	[METRIC_ALARMS] = { "mailjail_alarms_total",
	    "Alarms raised, per jail and event (remote_listed: refusals spread over many "
	    "accounts say the server's own address or domain is listed).",
	    { "jail", "event" } },
};

#define HIST_NAME "mailjail_db_commit_seconds"
static const double hist_bounds[] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};
#define NBOUNDS (sizeof(hist_bounds) / sizeof(hist_bounds[0]))

/* The channels and results a notification delivery can have (notify.c). */
static const char *const channels[] = { "mail", "command" };
static const char *const results[] = { "sent", "failed", "timeout", "gave_up" };

struct series {
	enum metrics_counter family;
	char *labels;
	double value;
};

struct metrics {
	char *node;
	struct series *s;
	size_t n, cap;
	uint64_t bucket[NBOUNDS + 1];   /* per bucket, the last is +Inf */
	double hist_sum;
	bool dirty;                     /* changed since the last save */
	/* jail, target kind of each jail declared: its active gauge is 0
	 * when nothing is in force */
	char **active_decl;
	size_t nactive_decl;
};

int
metrics_open(struct metrics **out, const char *node)
{
	struct metrics *m = calloc(1, sizeof(*m));

	*out = NULL;
	if (m == NULL || (m->node = strdup(node)) == NULL) {
		free(m);
		return -1;
	}
	*out = m;
	return 0;
}

void
metrics_close(struct metrics *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->n; i++)
		free(m->s[i].labels);
	for (size_t i = 0; i < m->nactive_decl; i++)
		free(m->active_decl[i]);
	free(m->active_decl);
	free(m->s);
	free(m->node);
	free(m);
}

/* escape_value - v as a label value: backslash, double quote and newline
 * escaped (the exposition format's three); false if it does not fit */
static bool
escape_value(const char *v, char *out, size_t len, size_t *off)
{
	for (; *v; v++) {
		const char *e = *v == '\\' ? "\\\\" : *v == '"' ? "\\\"" : *v == '\n' ? "\\n" : NULL;
		size_t need = e ? 2 : 1;

		if (*off + need >= len)
			return false;
		if (e) {
			memcpy(out + *off, e, 2);
		} else {
			out[*off] = *v;
		}
		*off += need;
	}
	out[*off] = '\0';
	return true;
}

/* render_labels - name="value"[,name="value"] for family f */
static bool
render_labels(enum metrics_counter f, const char *l1, const char *l2, char *out, size_t len)
{
	const char *v[2] = { l1, l2 };
	size_t off = 0;

	out[0] = '\0';
	for (int i = 0; i < 2 && families[f].label[i]; i++) {
		int w = snprintf(out + off, len - off, "%s%s=\"", i ? "," : "", families[f].label[i]);
		if (w < 0 || (size_t)w >= len - off)
			return false;
		off += (size_t)w;
		if (!escape_value(v[i] ? v[i] : "", out, len, &off) || off + 2 >= len)
			return false;
		out[off++] = '"';
		out[off] = '\0';
	}
	return true;
}

/* find_or_add - the series (f, labels), made at 0 if new; -1 on no memory */
static int
find_or_add(struct metrics *m, enum metrics_counter f, const char *labels)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->s[i].family == f && strcmp(m->s[i].labels, labels) == 0)
			return (int)i;
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 64;
		struct series *ns = realloc(m->s, cap * sizeof(*ns));
		if (ns == NULL)
			return -1;
		m->s = ns;
		m->cap = cap;
	}
	if ((m->s[m->n].labels = strdup(labels)) == NULL)
		return -1;
	m->s[m->n].family = f;
	m->s[m->n].value = 0;
	return (int)m->n++;
}

int
metrics_series(struct metrics *m, enum metrics_counter f, const char *l1, const char *l2)
{
	char labels[LABELS_MAX];

	if (!render_labels(f, l1, l2, labels, sizeof(labels)))
		return -1;
	return find_or_add(m, f, labels);
}

void
metrics_add(struct metrics *m, int series, uint64_t n)
{
	if (series < 0 || (size_t)series >= m->n || n == 0)
		return;
	m->s[series].value += (double)n;
	m->dirty = true;
}

void
metrics_count(struct metrics *m, enum metrics_counter f, const char *l1, const char *l2,
    uint64_t n)
{
	metrics_add(m, metrics_series(m, f, l1, l2), n);
}

void
metrics_observe_commit(struct metrics *m, double seconds)
{
	size_t b = 0;

	while (b < NBOUNDS && seconds > hist_bounds[b])
		b++;
	m->bucket[b]++;
	m->hist_sum += seconds;
	m->dirty = true;
}

/* ---- declared series ---------------------------------------------------- */

static int
declare_active(struct metrics *m, const char *jail, const char *kind)
{
	char key[512];
	char **n;

	snprintf(key, sizeof(key), "%s%c%s", jail, '\0', kind);
	for (size_t i = 0; i < m->nactive_decl; i++) {
		const char *d = m->active_decl[i];
		if (strcmp(d, jail) == 0 && strcmp(d + strlen(d) + 1, kind) == 0)
			return 0;
	}
	if ((n = realloc(m->active_decl, (m->nactive_decl + 1) * sizeof(*n))) == NULL)
		return -1;
	m->active_decl = n;
	if ((n[m->nactive_decl] = malloc(strlen(jail) + strlen(kind) + 2)) == NULL)
		return -1;
	memcpy(n[m->nactive_decl], key, strlen(jail) + strlen(kind) + 2);
	m->nactive_decl++;
	return 0;
}

int
metrics_declare(struct metrics *m, const struct config *cfg, const struct ruleset *rules,
    const struct jailset *jails)
{
	static const struct { unsigned bit; const char *name, *backend; } actions[] = {
		{ ACTION_NFT, "nft", "nft" }, { ACTION_HOLD, "hold", "hold" },
		{ ACTION_REJECT, "reject", "reject" },
		{ ACTION_DEFER, "defer", "hold" },   /* the hold backend's map */
	};
	unsigned all = 0;
	int rc = 0;

	for (size_t i = 0; i < cfg->nlogs; i++)
		rc |= metrics_series(m, METRIC_LINES, cfg->logs[i], NULL) < 0;
	for (size_t r = 0; rules && r < rules_count(rules); r++)
		rc |= metrics_series(m, METRIC_EVENTS, rules_event(rules, r), NULL) < 0;
	for (size_t j = 0; jails && j < jails_count(jails); j++) {
		const char *name = jails_name(jails, j);
		unsigned acts = jails_actions(jails, j);
		struct jail_signal sig;

		all |= acts;
		for (size_t a = 0; a < sizeof(actions) / sizeof(actions[0]); a++)
			if (acts & actions[a].bit)
				rc |= metrics_series(m, METRIC_VERDICTS, name, actions[a].name) < 0;
		if (jails_signal(jails, name, &sig) != 0)
			continue;
		/* a jail that bans the addresses failing against an account: its
		 * bans are of addresses, its watches of accounts */
		if (sig.bans_addresses)
			rc |= metrics_series(m, METRIC_VERDICTS, name, "watch") < 0 ||
			    declare_active(m, name, "ip") != 0;
		rc |= declare_active(m, name, strcmp(sig.key, "ip") == 0 ? "ip" : "account");
		if (sig.alarms)
			rc |= metrics_series(m, METRIC_ALARMS, name, "remote_listed") < 0;
	}
	for (size_t a = 0; a < sizeof(actions) / sizeof(actions[0]); a++)
		if (all & actions[a].bit)
			rc |= metrics_series(m, METRIC_ENFORCE_ERRORS, actions[a].backend, NULL) < 0;
	for (size_t c = 0; c < sizeof(channels) / sizeof(channels[0]); c++) {
		if (c == 0 && cfg->notify.nmailto == 0)
			continue;
		if (c == 1 && cfg->notify.command == NULL)
			continue;
		for (size_t r = 0; r < sizeof(results) / sizeof(results[0]); r++)
			rc |= metrics_series(m, METRIC_NOTIFICATIONS, channels[c], results[r]) < 0;
	}
	return rc ? -1 : 0;
}

/* ---- saved counters ----------------------------------------------------- */

/* bucket_label - the le="..." label of bucket b (NBOUNDS: +Inf) */
static void
bucket_label(size_t b, char *out, size_t len)
{
	if (b == NBOUNDS)
		snprintf(out, len, "le=\"+Inf\"");
	else
		snprintf(out, len, "le=\"%g\"", hist_bounds[b]);
}

struct load_ctx {
	struct metrics *m;
	uint64_t cum[NBOUNDS + 1];      /* the saved buckets are cumulative */
};

static int
load_cb(void *arg, const char *name, const char *labels, double value)
{
	struct load_ctx *c = arg;
	struct metrics *m = c->m;
	char le[32];
	int s;

	for (int f = 0; f < METRIC_COUNTERS; f++) {
		if (strcmp(name, families[f].name) != 0)
			continue;
		if ((s = find_or_add(m, (enum metrics_counter)f, labels)) < 0)
			return -1;
		m->s[s].value += value;
		return 0;
	}
	if (strcmp(name, HIST_NAME "_sum") == 0) {
		m->hist_sum += value;
		return 0;
	}
	if (strcmp(name, HIST_NAME "_bucket") != 0)
		return 0;   /* a family this version does not have */
	for (size_t b = 0; b <= NBOUNDS; b++) {
		bucket_label(b, le, sizeof(le));
		if (strcmp(labels, le) == 0)
			c->cum[b] = value > 0 ? (uint64_t)value : 0;
	}
	return 0;
}

int
metrics_load(struct metrics *m, struct store *st)
{
	struct load_ctx c;

	memset(&c, 0, sizeof(c));
	c.m = m;
	if (store_each_counter(st, m->node, load_cb, &c) != 0)
		return -1;
	for (size_t b = 0; b <= NBOUNDS; b++) {
		uint64_t prev = b ? c.cum[b - 1] : 0;
		m->bucket[b] += c.cum[b] > prev ? c.cum[b] - prev : 0;
	}
	return 0;
}

int
metrics_save(struct metrics *m, struct store *st)
{
	char le[32];
	uint64_t cum = 0;
	/* Inside the daemon's open batch the counters ride on its commit (a
	 * transaction cannot begin inside it, and a rollback of ours would
	 * take the batch's lines with it); a batch rolled back takes them
	 * too, and the next save writes them all again. */
	bool own = !store_in_transaction(st);

	if (!m->dirty)
		return 0;
	if (own && store_begin(st) != 0)
		goto fail;
	for (size_t i = 0; i < m->n; i++)
		if (store_save_counter(st, m->node, families[m->s[i].family].name,
		    m->s[i].labels, m->s[i].value) != 0)
			goto fail;
	for (size_t b = 0; b <= NBOUNDS; b++) {
		cum += m->bucket[b];
		bucket_label(b, le, sizeof(le));
		if (store_save_counter(st, m->node, HIST_NAME "_bucket", le, (double)cum) != 0)
			goto fail;
	}
	if (store_save_counter(st, m->node, HIST_NAME "_sum", "", m->hist_sum) != 0 ||
	    (own && store_commit(st) != 0))
		goto fail;
	m->dirty = false;
	return 0;
fail:
	if (own)
		(void)store_rollback(st);
	return -1;
}

/* ---- exposition --------------------------------------------------------- */

static void
head(FILE *fp, const char *name, const char *type, const char *help)
{
	fprintf(fp, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int
by_labels(const void *a, const void *b)
{
	const struct series *x = *(const struct series *const *)a;
	const struct series *y = *(const struct series *const *)b;

	return strcmp(x->labels, y->labels);
}

/* print_counters - family f, its series sorted by label set */
static int
print_counters(FILE *fp, struct metrics *m, enum metrics_counter f)
{
	const struct series **v = calloc(m->n ? m->n : 1, sizeof(*v));
	size_t k = 0;

	if (v == NULL)
		return -1;
	for (size_t i = 0; i < m->n; i++)
		if (m->s[i].family == f)
			v[k++] = &m->s[i];
	qsort(v, k, sizeof(*v), by_labels);
	head(fp, families[f].name, "counter", families[f].help);
	for (size_t i = 0; i < k; i++)
		fprintf(fp, "%s{%s} %.17g\n", families[f].name, v[i]->labels, v[i]->value);
	free(v);
	return 0;
}

struct active_ctx {
	FILE *fp;
	struct metrics *m;
	bool *seen;
};

static void
print_gauge2(FILE *fp, const char *name, const char *l1n, const char *l1, const char *l2n,
    const char *l2, double value)
{
	char a[LABELS_MAX / 2], b[LABELS_MAX / 2];
	size_t oa = 0, ob = 0;

	if (!escape_value(l1, a, sizeof(a), &oa) || !escape_value(l2 ? l2 : "", b, sizeof(b), &ob))
		return;
	if (l2n)
		fprintf(fp, "%s{%s=\"%s\",%s=\"%s\"} %.17g\n", name, l1n, a, l2n, b, value);
	else
		fprintf(fp, "%s{%s=\"%s\"} %.17g\n", name, l1n, a, value);
}

static int
active_cb(void *arg, const char *jail, const char *kind, int64_t n)
{
	struct active_ctx *c = arg;

	for (size_t i = 0; i < c->m->nactive_decl; i++) {
		const char *d = c->m->active_decl[i];
		if (strcmp(d, jail) == 0 && strcmp(d + strlen(d) + 1, kind) == 0)
			c->seen[i] = true;
	}
	print_gauge2(c->fp, "mailjail_active", "jail", jail, "target_kind", kind, (double)n);
	return 0;
}

static void
print_active(FILE *fp, struct metrics *m, struct store *st, int64_t now)
{
	struct active_ctx c = { fp, m, calloc(m->nactive_decl + 1, sizeof(bool)) };

	head(fp, "mailjail_active", "gauge", "Bans and holds in force, per jail and target "
	    "kind (the rows of the active_bans view).");
	if (c.seen == NULL)
		return;
	if (st != NULL && store_count_active(st, now, active_cb, &c) != 0) {
		fprintf(fp, "# mailjail_active: the database cannot be read now\n");
	} else {
		for (size_t i = 0; i < m->nactive_decl; i++) {
			const char *d = m->active_decl[i];
			if (!c.seen[i])
				print_gauge2(fp, "mailjail_active", "jail", d, "target_kind",
				    d + strlen(d) + 1, 0);
		}
	}
	free(c.seen);
}

/* lag_of - bytes of the file at path past its saved position */
static bool
lag_of(struct store *st, const char *path, double *out)
{
	struct log_position pos;
	struct stat sb;
	int found;

	if (stat(path, &sb) != 0)
		return false;
	if (st == NULL || (found = store_get_position(st, path, &pos)) < 0)
		return false;
	/* Not read yet, or rotated since: all of the file open now is ahead. */
	if (found == 0 || pos.inode != (uint64_t)sb.st_ino || pos.offset > (uint64_t)sb.st_size)
		*out = (double)sb.st_size;
	else
		*out = (double)((uint64_t)sb.st_size - pos.offset);
	return true;
}

static void
print_lag(FILE *fp, struct store *st, const struct config *cfg)
{
	head(fp, "mailjail_log_lag_bytes", "gauge", "Bytes of a log file past the position "
	    "last committed (journal sources have none).");
	for (size_t i = 0; i < cfg->nlogs; i++) {
		double lag;
		if (journal_is_source(cfg->logs[i]))
			continue;
		if (lag_of(st, cfg->logs[i], &lag))
			print_gauge2(fp, "mailjail_log_lag_bytes", "source", cfg->logs[i], NULL,
			    NULL, lag);
	}
}

static void
print_histogram(FILE *fp, struct metrics *m)
{
	uint64_t cum = 0;
	char le[32];

	head(fp, HIST_NAME, "histogram", "Time a database commit of a batch took.");
	for (size_t b = 0; b <= NBOUNDS; b++) {
		cum += m->bucket[b];
		bucket_label(b, le, sizeof(le));
		fprintf(fp, HIST_NAME "_bucket{%s} %" PRIu64 "\n", le, cum);
	}
	fprintf(fp, HIST_NAME "_sum %.17g\n" HIST_NAME "_count %" PRIu64 "\n", m->hist_sum, cum);
}

char *
metrics_render(struct metrics *m, struct store *st, const struct config *cfg, int64_t now,
    size_t *len)
{
	char *text = NULL;
	size_t size = 0;
	FILE *fp = open_memstream(&text, &size);
	int64_t pending;
	int rc = 0;

	if (fp == NULL)
		return NULL;
	head(fp, "mailjail_build_info", "gauge", "Always 1; the version of mailjail.");
	fprintf(fp, "mailjail_build_info{version=\"%s\"} 1\n", MAILJAIL_VERSION);
	rc |= print_counters(fp, m, METRIC_LINES);
	rc |= print_counters(fp, m, METRIC_EVENTS);
	rc |= print_counters(fp, m, METRIC_VERDICTS);
	print_active(fp, m, st, now);
	print_lag(fp, st, cfg);
	rc |= print_counters(fp, m, METRIC_ENFORCE_ERRORS);
	rc |= print_counters(fp, m, METRIC_NOTIFICATIONS);
	rc |= print_counters(fp, m, METRIC_ALARMS);
	head(fp, "mailjail_notifications_pending", "gauge", "Notifications queued and not "
	    "delivered yet (being retried, or waiting for the next digest).");
	if (st != NULL && store_count_open_notifications(st, &pending) == 0)
		fprintf(fp, "mailjail_notifications_pending %" PRId64 "\n", pending);
	else if (st != NULL)
		fprintf(fp, "# mailjail_notifications_pending: the database cannot be read now\n");
	print_histogram(fp, m);
	if (fclose(fp) != 0 || rc != 0) {
		free(text);
		return NULL;
	}
	*len = size;
	return text;
}

int
metrics_write_file(const char *path, const char *text, size_t len, char *err, size_t errlen)
{
	char tmp[4200];
	int fd;
	size_t off = 0;

	snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644)) < 0) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		return -1;
	}
	/* The umask must not make it unreadable for node_exporter. */
	(void)fchmod(fd, 0644);
	while (off < len) {
		ssize_t w = write(fd, text + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			snprintf(err, errlen, "%s: %s", tmp, w < 0 ? strerror(errno) : "short write");
			close(fd);
			unlink(tmp);
			return -1;
		}
		off += (size_t)w;
	}
	if (close(fd) != 0 || rename(tmp, path) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}
