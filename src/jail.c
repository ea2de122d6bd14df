/*
 * jail - events to verdicts.  See jail.h.
 *
 * State: one open-addressing hash table per jail, key string -> entry.  An
 * entry holds the times (and, for recipient quotas, weights) of the events
 * still inside the jail's window, the end of the key's last ban, and the
 * start times of its bans within the history span (for levels).  Up to four
 * event times live inside the entry itself, so a failure jail with
 * maxretry 5 allocates nothing per event.  Per tracked key: the entry
 * (64 bytes + the key) plus 16 bytes of table, about 100 bytes with
 * malloc's overhead for a typical IP; see bench/ for the measured figure.
 *
 * Submissions wait in a small table by queue id until the qmgr line that
 * gives their recipients and envelope sender arrives (the "join").
 *
 * Memory: the jailset owns every jail, entry and pending submission.
 */
#include "jail.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LIMITS_MAX 8
#define INLINE_TIMES 4
#define HISTORY_MIN (30 * 86400)
#define DURATION_CAP (10LL * 366 * 86400)
#define PENDING_SLOTS 16384          /* power of two */
#define PENDING_MAX_AGE 3600
#define DEFAULT_REPLY "450 4.7.1 Too many errors from your address, try again later"

enum key_type { KEY_IP, KEY_PREFIX, KEY_ACCOUNT, KEY_SENDER, KEY_DOMAIN };

struct cidr {
	int family;
	unsigned char addr[16];
	int len;
};

struct limit {
	int64_t count;
	int64_t window;
};

struct entry {
	int64_t ban_end;                 /* events before this do not count */
	int64_t *times;                  /* == inline_times while cap <= INLINE_TIMES */
	uint32_t *weights;               /* recipient quotas only */
	int64_t *ban_starts;             /* within the history span, oldest first */
	uint32_t n, cap;
	uint16_t nbans, bans_cap;
	int64_t inline_times[INLINE_TIMES];
	char key[];
};

struct table {
	struct entry **slots;
	size_t size, used;               /* size is a power of two */
};

struct jail {
	char *name, *file;
	int line;
	bool enabled;
	char **events;
	size_t nevents;
	bool recidive;
	enum key_type key;
	int prefix;
	int64_t findtime;
	uint64_t maxretry;
	struct limit limits[LIMITS_MAX];
	size_t nlimits;
	bool count_rcpt;
	struct cidr *cidrs;
	size_t ncidrs;
	char **names;
	size_t nnames;
	bool ignore_given, ignore_empty;
	unsigned actions;
	char *reply;
	int64_t bantime, maxbantime;
	double factor;
	unsigned seen;                   /* bit per key given, for duplicates */
	int events_line;
	struct table state;
};

struct pending {
	int64_t time;
	char qid[MJ_QID_MAX];
	char ip[MJ_IP_MAX];
	char *user;
};

struct jailset {
	struct jail *jails;
	size_t n, cap;
	struct pending *pending[PENDING_SLOTS];
	size_t npending;
	struct diag *d;                  /* while loading */
};

/* ---- hash table ---- */

static uint64_t
hash_key(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static void
entry_free(struct entry *e)
{
	if (e == NULL)
		return;
	if (e->times != e->inline_times)
		free(e->times);
	free(e->weights);
	free(e->ban_starts);
	free(e);
}

static struct entry *
table_find(const struct table *t, const char *key)
{
	if (t->size == 0)
		return NULL;
	for (size_t i = hash_key(key) & (t->size - 1);; i = (i + 1) & (t->size - 1)) {
		struct entry *e = t->slots[i];
		if (e == NULL)
			return NULL;
		if (strcmp(e->key, key) == 0)
			return e;
	}
}

static void
table_put(struct table *t, struct entry *e)
{
	size_t i = hash_key(e->key) & (t->size - 1);

	while (t->slots[i] != NULL)
		i = (i + 1) & (t->size - 1);
	t->slots[i] = e;
	t->used++;
}

/* table_resize - rebuild with room for want entries at load <= 1/2 */
static int
table_resize(struct table *t, size_t want)
{
	struct table n = { NULL, 16, 0 };

	while (n.size < want * 2)
		n.size *= 2;
	if ((n.slots = calloc(n.size, sizeof(*n.slots))) == NULL)
		return -1;
	for (size_t i = 0; i < t->size; i++)
		if (t->slots[i])
			table_put(&n, t->slots[i]);
	free(t->slots);
	*t = n;
	return 0;
}

static struct entry *
table_get(struct table *t, const char *key, bool create)
{
	struct entry *e = table_find(t, key);
	size_t len;

	if (e || !create)
		return e;
	if ((t->used + 1) * 2 > t->size && table_resize(t, t->used + 1) != 0)
		return NULL;
	len = strlen(key);
	if ((e = calloc(1, sizeof(*e) + len + 1)) == NULL)
		return NULL;
	memcpy(e->key, key, len + 1);
	e->times = e->inline_times;
	e->cap = INLINE_TIMES;
	e->ban_end = INT64_MIN;
	table_put(t, e);
	return e;
}

static void
table_free(struct table *t)
{
	for (size_t i = 0; i < t->size; i++)
		entry_free(t->slots[i]);
	free(t->slots);
	memset(t, 0, sizeof(*t));
}

/* ---- loading ---- */

static void
jail_free(struct jail *j)
{
	free(j->name);
	free(j->file);
	for (size_t i = 0; i < j->nevents; i++)
		free(j->events[i]);
	free(j->events);
	free(j->cidrs);
	for (size_t i = 0; i < j->nnames; i++)
		free(j->names[i]);
	free(j->names);
	free(j->reply);
	table_free(&j->state);
}

void
jails_free(struct jailset *js)
{
	if (js == NULL)
		return;
	for (size_t i = 0; i < js->n; i++)
		jail_free(&js->jails[i]);
	free(js->jails);
	for (size_t i = 0; i < PENDING_SLOTS; i++) {
		if (js->pending[i]) {
			free(js->pending[i]->user);
			free(js->pending[i]);
		}
	}
	free(js);
}

/* split_list - "a, b,c" into trimmed items; empty list is n = 0 */
static int
split_list(const char *value, char ***out, size_t *n)
{
	const char *p = value;

	*out = NULL;
	*n = 0;
	while (*p) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		const char *s = p;
		char **grown;

		while (len && isspace((unsigned char)*s)) {
			s++;
			len--;
		}
		while (len && isspace((unsigned char)s[len - 1]))
			len--;
		if ((grown = realloc(*out, (*n + 1) * sizeof(**out))) == NULL)
			return -1;
		*out = grown;
		if (((*out)[*n] = strndup(s, len)) == NULL)
			return -1;
		(*n)++;
		p += (comma ? (size_t)(comma - p) + 1 : strlen(p));
	}
	return 0;
}

static void
free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* parse_cidr - "192.0.2.0/24", "2001:db8::/32", "::1" */
static int
parse_cidr(const char *s, struct cidr *c)
{
	char host[INET6_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	size_t hl = slash ? (size_t)(slash - s) : strlen(s);
	uint64_t len;

	if (hl == 0 || hl >= sizeof(host))
		return -1;
	memcpy(host, s, hl);
	host[hl] = '\0';
	memset(c, 0, sizeof(*c));
	if (inet_pton(AF_INET, host, c->addr) == 1) {
		c->family = AF_INET;
		c->len = 32;
	} else if (inet_pton(AF_INET6, host, c->addr) == 1) {
		c->family = AF_INET6;
		c->len = 128;
	} else {
		return -1;
	}
	if (slash) {
		if (cfg_parse_uint(slash + 1, (uint64_t)c->len, &len) != 0)
			return -1;
		c->len = (int)len;
	}
	return 0;
}

static bool
cidr_contains(const struct cidr *c, int family, const unsigned char *addr)
{
	int full = c->len / 8, rest = c->len % 8;

	if (c->family != family)
		return false;
	if (memcmp(c->addr, addr, (size_t)full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((c->addr[full] ^ addr[full]) & (0xff << (8 - rest))) == 0;
}

enum jail_key_bit {
	B_EVENTS, B_KEY, B_FINDTIME, B_MAXRETRY, B_LIMITS, B_COUNT, B_IGNORE, B_ACTION,
	B_REPLY, B_BANTIME, B_FACTOR, B_MAXBANTIME, B_ENABLED,
};

static const char *const jail_keys[] = {
	"events", "key", "findtime", "maxretry", "limits", "count", "ignore", "action",
	"reply", "bantime", "factor", "maxbantime", "enabled",
};

static struct jail *
jail_for_section(struct jailset *js, const char *file, const char *section, int line)
{
	struct jail *j;

	if (js->n > 0) {
		j = &js->jails[js->n - 1];
		if (j->line == line && strcmp(j->file, file) == 0)
			return j;
	}
	for (size_t i = 0; i < js->n; i++) {
		if (strcmp(js->jails[i].name, section) == 0) {
			diag_add(js->d, file, line, "jail [%s] is defined twice (first in %s:%d)",
			    section, js->jails[i].file, js->jails[i].line);
			return NULL;
		}
	}
	if (js->n == js->cap) {
		size_t cap = js->cap ? js->cap * 2 : 8;
		struct jail *n = realloc(js->jails, cap * sizeof(*n));
		if (n == NULL)
			return NULL;
		js->jails = n;
		js->cap = cap;
	}
	j = &js->jails[js->n];
	memset(j, 0, sizeof(*j));
	j->name = strdup(section);
	j->file = strdup(file);
	j->line = line;
	j->enabled = true;
	j->bantime = 3600;
	j->factor = 2.0;
	j->maxbantime = DURATION_CAP;
	if (j->name == NULL || j->file == NULL) {
		jail_free(j);
		return NULL;
	}
	js->n++;
	return j;
}

/* parse_limits - "100/1h, 500/1d" */
static int
parse_limits(struct jail *j, const char *value, char *why, size_t wlen)
{
	char **items;
	size_t n;
	int rc = -1;

	if (split_list(value, &items, &n) != 0)
		return -1;
	if (n == 0 || n > LIMITS_MAX) {
		snprintf(why, wlen, "expected 1 to %d limits like 100/1h", LIMITS_MAX);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		char *slash = strchr(items[i], '/');
		uint64_t count;

		if (slash == NULL) {
			snprintf(why, wlen, "\"%s\" is not COUNT/DURATION", items[i]);
			goto out;
		}
		*slash = '\0';
		if (cfg_parse_uint(items[i], 100000000, &count) != 0 || count == 0 ||
		    cfg_parse_duration(slash + 1, &j->limits[i].window) != 0 ||
		    j->limits[i].window == 0) {
			snprintf(why, wlen, "bad limit \"%s/%s\" (e.g. 100/1h)", items[i], slash + 1);
			goto out;
		}
		j->limits[i].count = (int64_t)count;
	}
	j->nlimits = n;
	rc = 0;
out:
	free_list(items, n);
	return rc;
}

/* parse_ignore - CIDRs and account names */
static int
parse_ignore(struct jail *j, const char *value)
{
	char **items;
	size_t n;

	if (split_list(value, &items, &n) != 0)
		return -1;
	j->ignore_given = true;
	j->ignore_empty = n == 0;
	free(j->cidrs);
	j->cidrs = calloc(n ? n : 1, sizeof(*j->cidrs));
	if (j->cidrs == NULL) {
		free_list(items, n);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		struct cidr c;
		if (items[i][0] == '\0')
			continue;
		if (parse_cidr(items[i], &c) == 0) {
			j->cidrs[j->ncidrs++] = c;
			free(items[i]);
		} else {
			items[j->nnames++] = items[i];
		}
	}
	j->names = items;
	return 0;
}

static int
parse_actions(const char *value, unsigned *out)
{
	char **items;
	size_t n;
	int rc = 0;

	if (split_list(value, &items, &n) != 0)
		return -1;
	*out = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (strcmp(items[i], "nft") == 0)
			*out |= ACTION_NFT;
		else if (strcmp(items[i], "hold") == 0)
			*out |= ACTION_HOLD;
		else if (strcmp(items[i], "reject") == 0)
			*out |= ACTION_REJECT;
		else
			rc = -1;
	}
	free_list(items, n);
	return n == 0 ? -1 : rc;
}

static int
jails_handler(void *arg, const char *file, const char *section, int section_line,
    const char *key, const char *value, int line)
{
	struct jailset *js = arg;
	struct jail *j;
	char why[256] = "";
	size_t k;
	uint64_t u;

	if (*section == '\0') {
		diag_add(js->d, file, line, "\"%s\" outside of a [jail] section", key);
		return -1;
	}
	if ((j = jail_for_section(js, file, section, section_line)) == NULL)
		return -1;
	for (k = 0; k < sizeof(jail_keys) / sizeof(jail_keys[0]); k++)
		if (strcmp(key, jail_keys[k]) == 0)
			break;
	if (k == sizeof(jail_keys) / sizeof(jail_keys[0])) {
		diag_add(js->d, file, line, "jail [%s]: unknown key \"%s\"", section, key);
		return -1;
	}
	if (j->seen & (1u << k)) {
		diag_add(js->d, file, line, "jail [%s]: %s given twice", section, key);
		return -1;
	}
	j->seen |= 1u << k;
	switch ((enum jail_key_bit)k) {
	case B_EVENTS:
		free_list(j->events, j->nevents);
		if (split_list(value, &j->events, &j->nevents) != 0)
			return -1;
		j->events_line = line;
		if (j->nevents == 0)
			snprintf(why, sizeof(why), "no events given");
		for (size_t i = 0; i < j->nevents; i++) {
			if (strcmp(j->events[i], "ban") == 0)
				j->recidive = true;
			if (j->events[i][0] == '\0')
				snprintf(why, sizeof(why), "empty event name in list");
		}
		if (j->recidive && j->nevents > 1)
			snprintf(why, sizeof(why), "\"ban\" (recidive) cannot be mixed with "
			    "other events");
		break;
	case B_KEY:
		if (strcmp(value, "ip") == 0) {
			j->key = KEY_IP;
		} else if (strncmp(value, "ip/", 3) == 0 &&
		    cfg_parse_uint(value + 3, 128, &u) == 0 && u > 0) {
			j->key = KEY_PREFIX;
			j->prefix = (int)u;
		} else if (strcmp(value, "account") == 0) {
			j->key = KEY_ACCOUNT;
		} else if (strcmp(value, "sender") == 0) {
			j->key = KEY_SENDER;
		} else if (strcmp(value, "domain") == 0) {
			j->key = KEY_DOMAIN;
		} else {
			snprintf(why, sizeof(why), "bad key \"%s\" (ip, ip/N, account, sender, "
			    "domain)", value);
		}
		break;
	case B_FINDTIME:
	case B_BANTIME:
	case B_MAXBANTIME: {
		int64_t *dst = k == B_FINDTIME ? &j->findtime :
		    k == B_BANTIME ? &j->bantime : &j->maxbantime;
		if (cfg_parse_duration(value, dst) != 0 || *dst == 0)
			snprintf(why, sizeof(why), "bad duration \"%s\" (e.g. 30s, 10m, 1h, 1d, "
			    "1w)", value);
		break;
	}
	case B_MAXRETRY:
		if (cfg_parse_uint(value, 1000000, &j->maxretry) != 0 || j->maxretry == 0)
			snprintf(why, sizeof(why), "bad maxretry \"%s\" (a number from 1)", value);
		break;
	case B_LIMITS:
		if (parse_limits(j, value, why, sizeof(why)) != 0 && why[0] == '\0')
			return -1;
		break;
	case B_COUNT:
		if (strcmp(value, "messages") == 0)
			j->count_rcpt = false;
		else if (strcmp(value, "recipients") == 0)
			j->count_rcpt = true;
		else
			snprintf(why, sizeof(why), "bad count \"%s\" (messages or recipients)",
			    value);
		break;
	case B_IGNORE:
		if (parse_ignore(j, value) != 0)
			return -1;
		break;
	case B_ACTION:
		if (parse_actions(value, &j->actions) != 0)
			snprintf(why, sizeof(why), "bad action \"%s\" (nft, hold, reject, or a "
			    "comma list)", value);
		break;
	case B_REPLY:
		/* An access(5) reply: 4XX or 5XX, then text; no control bytes. */
		if (strlen(value) < 4 || (value[0] != '4' && value[0] != '5') ||
		    !isdigit((unsigned char)value[1]) || !isdigit((unsigned char)value[2]) ||
		    value[3] != ' ')
			snprintf(why, sizeof(why), "bad reply \"%s\" (e.g. 450 4.7.1 text)", value);
		for (const char *p = value; *p && why[0] == '\0'; p++)
			if ((unsigned char)*p < 0x20)
				snprintf(why, sizeof(why), "control character in reply");
		if (why[0] == '\0') {
			free(j->reply);
			if ((j->reply = strdup(value)) == NULL)
				return -1;
		}
		break;
	case B_FACTOR: {
		char *end;
		j->factor = strtod(value, &end);
		if (*value == '\0' || *end != '\0' || !(j->factor >= 1.0) || j->factor > 100)
			snprintf(why, sizeof(why), "bad factor \"%s\" (a number from 1 to 100)",
			    value);
		break;
	}
	case B_ENABLED:
		if (strcmp(value, "true") == 0 || strcmp(value, "yes") == 0)
			j->enabled = true;
		else if (strcmp(value, "false") == 0 || strcmp(value, "no") == 0)
			j->enabled = false;
		else
			snprintf(why, sizeof(why), "bad enabled \"%s\" (true or false)", value);
		break;
	}
	if (why[0]) {
		diag_add(js->d, file, line, "jail [%s]: %s", section, why);
		return -1;
	}
	return 0;
}

/* jail_validate - what a whole section must say */
static void
jail_validate(struct jailset *js, struct jail *j)
{
	const char *n = j->name;
	bool quota = j->seen & (1u << B_LIMITS), failure = j->seen & (1u << B_MAXRETRY);

	if (!(j->seen & (1u << B_EVENTS)))
		diag_add(js->d, j->file, j->line, "jail [%s]: missing events", n);
	if (!(j->seen & (1u << B_KEY)))
		diag_add(js->d, j->file, j->line, "jail [%s]: missing key", n);
	if (!(j->seen & (1u << B_ACTION)))
		diag_add(js->d, j->file, j->line, "jail [%s]: missing action", n);
	if (quota && failure)
		diag_add(js->d, j->file, j->line, "jail [%s]: give either maxretry (a failure "
		    "jail) or limits (a quota jail), not both", n);
	else if (!quota && !failure)
		diag_add(js->d, j->file, j->line, "jail [%s]: a jail needs maxretry (with "
		    "findtime) or limits", n);
	if (failure && !(j->seen & (1u << B_FINDTIME)))
		j->findtime = 600;
	if ((j->seen & (1u << B_COUNT)) && !quota)
		diag_add(js->d, j->file, j->line, "jail [%s]: count needs limits", n);
	if (j->count_rcpt) {
		bool sub = false;
		for (size_t i = 0; i < j->nevents; i++)
			sub |= strcmp(j->events[i], "submission") == 0;
		if (!sub)
			diag_add(js->d, j->file, j->line, "jail [%s]: count = recipients needs "
			    "events = submission", n);
	}
	if ((j->actions & (ACTION_NFT | ACTION_REJECT)) &&
	    (j->key != KEY_IP && j->key != KEY_PREFIX))
		diag_add(js->d, j->file, j->line, "jail [%s]: actions nft and reject need "
		    "key = ip or ip/N", n);
	if ((j->actions & ACTION_HOLD) && (j->key == KEY_IP || j->key == KEY_PREFIX))
		diag_add(js->d, j->file, j->line, "jail [%s]: action hold needs an account, "
		    "sender or domain key", n);
	if (j->recidive && j->key != KEY_IP && j->key != KEY_ACCOUNT)
		diag_add(js->d, j->file, j->line, "jail [%s]: a recidive jail (events = ban) "
		    "needs key = ip or account", n);
	if (j->maxbantime < j->bantime)
		j->maxbantime = j->bantime;
}

int
jails_load(const char *path, struct jailset **out, struct diag *d)
{
	struct jailset *js;
	size_t before = d->n;

	*out = NULL;
	if ((js = calloc(1, sizeof(*js))) == NULL) {
		diag_add(d, path, 0, "out of memory");
		return -1;
	}
	js->d = d;
	(void)cfgfile_parse_path(path, ".jail", jails_handler, js, d);
	for (size_t i = 0; i < js->n; i++)
		jail_validate(js, &js->jails[i]);
	/* Disabled jails are dropped once they are known to be well-formed. */
	for (size_t i = 0; i < js->n;) {
		if (!js->jails[i].enabled) {
			jail_free(&js->jails[i]);
			memmove(&js->jails[i], &js->jails[i + 1], (js->n - i - 1) * sizeof(*js->jails));
			js->n--;
		} else {
			i++;
		}
	}
	js->d = NULL;
	if (d->n > before) {
		jails_free(js);
		return -1;
	}
	*out = js;
	return 0;
}

int
jails_check_events(const struct jailset *js, bool (*known)(void *arg, const char *event),
    void *arg, struct diag *d)
{
	int bad = 0;

	for (size_t i = 0; i < js->n; i++) {
		const struct jail *j = &js->jails[i];
		for (size_t e = 0; e < j->nevents; e++) {
			if (strcmp(j->events[e], "ban") == 0 || known(arg, j->events[e]))
				continue;
			diag_add(d, j->file, j->events_line, "jail [%s]: no rule produces event "
			    "\"%s\"", j->name, j->events[e]);
			bad++;
		}
	}
	return bad;
}

size_t
jails_count(const struct jailset *js)
{
	return js ? js->n : 0;
}

const char *
jails_name(const struct jailset *js, size_t i)
{
	return js->jails[i].name;
}

unsigned
jails_actions(const struct jailset *js, size_t i)
{
	return js->jails[i].actions;
}

static int64_t
jail_window(const struct jail *j)
{
	int64_t w = j->findtime;

	for (size_t i = 0; i < j->nlimits; i++)
		if (j->limits[i].window > w)
			w = j->limits[i].window;
	return w;
}

int64_t
jails_longest_window(const struct jailset *js)
{
	int64_t w = 0;

	for (size_t i = 0; i < js->n; i++)
		if (jail_window(&js->jails[i]) > w)
			w = jail_window(&js->jails[i]);
	return w;
}

int64_t
jails_history_span(const struct jailset *js)
{
	int64_t span = HISTORY_MIN;

	for (size_t i = 0; i < js->n; i++)
		if (js->jails[i].recidive && js->jails[i].findtime > span)
			span = js->jails[i].findtime;
	return span;
}

size_t
jails_tracked_keys(const struct jailset *js, size_t i)
{
	return js->jails[i].state.used;
}

/* ---- keys ---- */

static bool
jail_counts_event(const struct jail *j, const char *type)
{
	for (size_t i = 0; i < j->nevents; i++)
		if (strcmp(j->events[i], type) == 0)
			return true;
	return false;
}

static bool
ignored_ip(const struct jail *j, const char *ip)
{
	unsigned char bin[16];
	int family;

	if (inet_pton(AF_INET, ip, bin) == 1)
		family = AF_INET;
	else if (inet_pton(AF_INET6, ip, bin) == 1)
		family = AF_INET6;
	else
		return true;   /* not an address: never a key */
	if (!j->ignore_empty) {
		static const unsigned char v6lo[16] = { [15] = 1 };
		if ((family == AF_INET && bin[0] == 127) ||
		    (family == AF_INET6 && memcmp(bin, v6lo, 16) == 0))
			return true;
	}
	for (size_t i = 0; i < j->ncidrs; i++)
		if (cidr_contains(&j->cidrs[i], family, bin))
			return true;
	return false;
}

static bool
ignored_name(const struct jail *j, const char *name)
{
	for (size_t i = 0; i < j->nnames; i++)
		if (strcasecmp(j->names[i], name) == 0)
			return true;
	return false;
}

/* prefix_key - ip masked to the jail's prefix ("2001:db8:1::/64"); an IPv4
 * address with a prefix longer than 32 stays exact */
static int
prefix_key(const struct jail *j, const char *ip, char *out, size_t len)
{
	unsigned char bin[16];
	char text[INET6_ADDRSTRLEN];
	int family = AF_INET6, max = 128, plen = j->prefix;

	if (inet_pton(AF_INET, ip, bin) == 1) {
		family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, ip, bin) != 1) {
		return -1;
	}
	if (plen >= max) {
		snprintf(out, len, "%s", ip);
		return 0;
	}
	for (int bit = plen; bit < max; bit++)
		bin[bit / 8] &= (unsigned char)~(0x80u >> (bit % 8));
	if (inet_ntop(family, bin, text, sizeof(text)) == NULL)
		return -1;
	snprintf(out, len, "%s/%d", text, plen);
	return 0;
}

static const char *
domain_of(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at && at[1] ? at + 1 : NULL;
}

/* event_key - the jail's key for an event into out; -1 if it has none or it
 * is ignored */
static int
event_key(const struct jail *j, const struct event *ev, char *out, size_t len)
{
	const char *k = NULL;

	switch (j->key) {
	case KEY_IP:
	case KEY_PREFIX:
		if (ev->ip[0] == '\0' || ignored_ip(j, ev->ip))
			return -1;
		if (j->key == KEY_PREFIX)
			return prefix_key(j, ev->ip, out, len);
		k = ev->ip;
		break;
	case KEY_ACCOUNT:
		k = ev->user;
		break;
	case KEY_SENDER:
		k = ev->sender;
		break;
	case KEY_DOMAIN:
		k = domain_of(ev->user);
		if (k == NULL)
			k = domain_of(ev->sender);
		break;
	}
	if (k == NULL || *k == '\0' || ignored_name(j, k))
		return -1;
	if (strlen(k) >= len)
		return -1;
	strcpy(out, k);
	return 0;
}

/* ---- counting ---- */

static int
entry_add_time(struct entry *e, int64_t t, uint32_t weight, bool weighted)
{
	uint32_t i;

	if (e->n == e->cap) {
		uint32_t cap = e->cap * 2;
		int64_t *times = malloc(cap * sizeof(*times));
		if (times == NULL)
			return -1;
		memcpy(times, e->times, e->n * sizeof(*times));
		if (e->times != e->inline_times)
			free(e->times);
		e->times = times;
		if (weighted || e->weights) {
			uint32_t *w = realloc(e->weights, cap * sizeof(*w));
			if (w == NULL)
				return -1;
			e->weights = w;
		}
		e->cap = cap;
	}
	if (weighted && e->weights == NULL) {
		if ((e->weights = calloc(e->cap, sizeof(*e->weights))) == NULL)
			return -1;
		for (uint32_t k = 0; k < e->n; k++)
			e->weights[k] = 1;
	}
	/* Lines arrive in time order, except across logs: insert in place. */
	for (i = e->n; i > 0 && e->times[i - 1] > t; i--) {
		e->times[i] = e->times[i - 1];
		if (e->weights)
			e->weights[i] = e->weights[i - 1];
	}
	e->times[i] = t;
	if (e->weights)
		e->weights[i] = weight;
	e->n++;
	return 0;
}

/* entry_expire - drop times at or before cutoff (windows are (t-w, t]) */
static void
entry_expire(struct entry *e, int64_t cutoff)
{
	uint32_t k = 0;

	while (k < e->n && e->times[k] <= cutoff)
		k++;
	if (k == 0)
		return;
	memmove(e->times, e->times + k, (e->n - k) * sizeof(*e->times));
	if (e->weights)
		memmove(e->weights, e->weights + k, (e->n - k) * sizeof(*e->weights));
	e->n -= k;
}

static int64_t
entry_sum_since(const struct entry *e, int64_t cutoff)
{
	int64_t sum = 0;

	for (uint32_t k = e->n; k > 0 && e->times[k - 1] > cutoff; k--)
		sum += e->weights ? e->weights[k - 1] : 1;
	return sum;
}

/* entry_level - the level the next ban of this entry gets */
static int
entry_level(struct entry *e, int64_t now, int64_t span)
{
	uint16_t k = 0;

	while (k < e->nbans && e->ban_starts[k] <= now - span)
		k++;
	if (k) {
		memmove(e->ban_starts, e->ban_starts + k, (e->nbans - k) * sizeof(int64_t));
		e->nbans = (uint16_t)(e->nbans - k);
	}
	return e->nbans + 1;
}

static int
entry_note_ban(struct entry *e, int64_t start, int64_t end)
{
	if (e->nbans == UINT16_MAX)
		return 0;
	if (e->nbans == e->bans_cap) {
		uint16_t cap = e->bans_cap ? (uint16_t)(e->bans_cap * 2) : 2;
		int64_t *b = realloc(e->ban_starts, cap * sizeof(*b));
		if (b == NULL)
			return -1;
		e->ban_starts = b;
		e->bans_cap = cap;
	}
	e->ban_starts[e->nbans++] = start;
	if (end > e->ban_end)
		e->ban_end = end;
	/* Counting starts fresh after a ban. */
	e->n = 0;
	return 0;
}

static int64_t
ban_duration(const struct jail *j, int level)
{
	double d = (double)j->bantime * pow(j->factor, level - 1);

	if (!(d < (double)j->maxbantime))
		return j->maxbantime;
	return (int64_t)d;
}

static void
make_verdict(const struct jail *j, const char *target, int level, int64_t now,
    int64_t duration, struct verdict *v)
{
	memset(v, 0, sizeof(*v));
	v->jail = j->name;
	v->kind = (j->key == KEY_IP || j->key == KEY_PREFIX) ? TARGET_IP : TARGET_ACCOUNT;
	snprintf(v->target, sizeof(v->target), "%s", target);
	v->level = level;
	v->actions = j->actions;
	v->reply = j->reply ? j->reply : DEFAULT_REPLY;
	v->started_at = now;
	v->expires_at = now + duration;
}

/*
 * count_in_jail - one (keyed) occurrence at time t with weight w; fills *v
 * and returns 1 if it issues a verdict.  live false: restore, no verdicts.
 */
static int
count_in_jail(struct jailset *js, struct jail *j, const char *key, int64_t t,
    uint32_t w, const char *what, const char *rule, int64_t now, bool live,
    struct verdict *v)
{
	struct entry *e = table_get(&j->state, key, true);
	int64_t window = jail_window(j);
	char dur[24];
	int level;

	if (e == NULL)
		return -1;
	if (t < e->ban_end)
		return 0;   /* during a ban, and before its end: not counted */
	entry_expire(e, t - window);
	if (entry_add_time(e, t, w, j->count_rcpt) != 0)
		return -1;
	if (!live || now - t > jails_longest_window(js))
		return 0;
	if (j->nlimits == 0) {
		if (entry_sum_since(e, t - j->findtime) < (int64_t)j->maxretry)
			return 0;
		level = entry_level(e, now, jails_history_span(js));
		make_verdict(j, key, level, now, ban_duration(j, level), v);
		snprintf(v->reason, sizeof(v->reason), "%llu %s in %s%s%s%s",
		    (unsigned long long)j->maxretry, what,
		    cfg_format_duration(j->findtime, dur, sizeof(dur)),
		    rule ? " (rule " : "", rule ? rule : "", rule ? ")" : "");
	} else {
		size_t i;
		int64_t sum = 0;
		for (i = 0; i < j->nlimits; i++)
			if ((sum = entry_sum_since(e, t - j->limits[i].window)) > j->limits[i].count)
				break;
		if (i == j->nlimits)
			return 0;
		level = entry_level(e, now, jails_history_span(js));
		make_verdict(j, key, level, now, ban_duration(j, level), v);
		cfg_format_duration(j->limits[i].window, dur, sizeof(dur));
		snprintf(v->reason, sizeof(v->reason), "%lld %s in %s over limit %lld/%s",
		    (long long)sum, j->count_rcpt ? "recipients" : "messages", dur,
		    (long long)j->limits[i].count, dur);
	}
	if (entry_note_ban(e, now, v->expires_at) != 0)
		return -1;
	return 1;
}

/* feed_recidive - a verdict of another jail counts as a "ban" event */
static int
feed_recidive(struct jailset *js, const char *from_jail, enum target_kind kind,
    const char *target, int64_t t, int64_t now, bool live, struct verdict *out,
    size_t max, size_t *nout)
{
	for (size_t i = 0; i < js->n; i++) {
		struct jail *j = &js->jails[i];
		bool ipjail = j->key == KEY_IP;
		int rc;

		if (!j->recidive || strcmp(j->name, from_jail) == 0)
			continue;
		if ((kind == TARGET_IP) != ipjail)
			continue;
		if (ipjail && strchr(target, '/') == NULL && ignored_ip(j, target))
			continue;
		if (!ipjail && ignored_name(j, target))
			continue;
		if (*nout >= max)
			return 0;
		rc = count_in_jail(js, j, target, t, 1, "bans", NULL, now, live, &out[*nout]);
		if (rc < 0)
			return -1;
		*nout += (size_t)rc;
	}
	return 0;
}

/* ---- the submission/qmgr join ---- */

static size_t
pending_slot(const char *qid)
{
	return hash_key(qid) & (PENDING_SLOTS - 1);
}

static void
pending_put(struct jailset *js, const struct event *ev)
{
	size_t s = pending_slot(ev->qid);
	struct pending *p = js->pending[s];

	/* A collision evicts the older submission: bounded memory matters more
	 * than a join for a message whose qmgr line is long overdue. */
	if (p == NULL) {
		if ((p = calloc(1, sizeof(*p))) == NULL)
			return;
		js->pending[s] = p;
		js->npending++;
	}
	free(p->user);
	p->user = strdup(ev->user);
	p->time = ev->time;
	snprintf(p->qid, sizeof(p->qid), "%s", ev->qid);
	snprintf(p->ip, sizeof(p->ip), "%s", ev->ip);
}

/* pending_take - the submission for a queued event, removed from the table */
static struct pending *
pending_take(struct jailset *js, const char *qid)
{
	size_t s = pending_slot(qid);
	struct pending *p = js->pending[s];

	if (p == NULL || strcmp(p->qid, qid) != 0 || p->user == NULL)
		return NULL;
	js->pending[s] = NULL;
	js->npending--;
	return p;
}

/* counts_at_submission - messages by ip/account are counted when the
 * submission line is seen; recipients and sender/domain keys need the join */
static bool
counts_at_submission(const struct jail *j)
{
	return !j->count_rcpt && (j->key == KEY_IP || j->key == KEY_PREFIX ||
	    j->key == KEY_ACCOUNT);
}

/* record - the common path of live counting and restore */
static int
record(struct jailset *js, const struct event *ev, int64_t now, bool live,
    struct verdict *out, size_t max)
{
	size_t nout = 0;
	char key[MJ_TARGET_MAX];
	struct event joined;
	const struct event *use;
	bool is_sub = strcmp(ev->type, "submission") == 0;
	bool is_queued = strcmp(ev->type, "queued") == 0;
	struct pending *p = NULL;

	if (is_sub && ev->qid[0])
		pending_put(js, ev);
	if (is_queued && ev->qid[0] && (p = pending_take(js, ev->qid)) != NULL) {
		joined = *ev;
		joined.type = "submission";
		snprintf(joined.user, sizeof(joined.user), "%s", p->user);
		snprintf(joined.ip, sizeof(joined.ip), "%s", p->ip);
		joined.time = p->time;
		free(p->user);
		free(p);
	}
	for (size_t i = 0; i < js->n; i++) {
		struct jail *j = &js->jails[i];
		uint32_t w = 1;
		int rc;

		if (j->recidive)
			continue;
		use = ev;
		if (jail_counts_event(j, "submission") && (is_sub || is_queued)) {
			if (is_sub && !counts_at_submission(j))
				continue;
			if (is_queued) {
				if (p == NULL || counts_at_submission(j))
					continue;
				use = &joined;
				if (j->count_rcpt)
					w = joined.nrcpt > 0 ? (uint32_t)joined.nrcpt : 1;
			}
		} else if (!jail_counts_event(j, ev->type)) {
			continue;
		}
		if (event_key(j, use, key, sizeof(key)) != 0)
			continue;
		if (nout >= max)
			break;
		rc = count_in_jail(js, j, key, use->time, w, use->type, use->rule, now, live,
		    &out[nout]);
		if (rc < 0)
			return -1;
		if (rc == 1) {
			struct verdict *v = &out[nout++];
			if (feed_recidive(js, v->jail, v->kind, v->target, now, now, live, out,
			    max, &nout) != 0)
				return -1;
		}
	}
	return (int)nout;
}

int
jail_record_event(struct jailset *js, const struct event *ev, int64_t now,
    struct verdict *out, size_t max)
{
	return record(js, ev, now, true, out, max);
}

int
jail_restore_event(struct jailset *js, const struct event *ev)
{
	struct verdict unused[1];

	return record(js, ev, ev->time, false, unused, 1) < 0 ? -1 : 0;
}

static struct jail *
find_jail(struct jailset *js, const char *name)
{
	for (size_t i = 0; i < js->n; i++)
		if (strcmp(js->jails[i].name, name) == 0)
			return &js->jails[i];
	return NULL;
}

int
jail_restore_ban(struct jailset *js, const char *jail, const char *target, int level,
    int64_t started_at, int64_t expires_at, int64_t lifted_at)
{
	struct jail *j = find_jail(js, jail);
	struct entry *e;
	size_t nout = 0;
	struct verdict unused[1];

	(void)level;
	if (j == NULL)
		return 0;   /* a jail no longer configured */
	if ((e = table_get(&j->state, target, true)) == NULL)
		return -1;
	if (entry_note_ban(e, started_at, lifted_at ? lifted_at : expires_at) != 0)
		return -1;
	if (lifted_at && e->ban_end > lifted_at)
		e->ban_end = lifted_at;
	if (!j->recidive)
		return feed_recidive(js, j->name, (j->key == KEY_IP || j->key == KEY_PREFIX) ?
		    TARGET_IP : TARGET_ACCOUNT, target, started_at, started_at, false,
		    unused, 1, &nout);
	return 0;
}

int
jail_manual_verdict(struct jailset *js, const char *jail, const char *target,
    enum target_kind kind, int64_t duration, int64_t now, struct verdict *out)
{
	struct jail *j = NULL;
	struct entry *e;
	int level;

	for (size_t i = 0; i < js->n && j == NULL; i++) {
		struct jail *c = &js->jails[i];
		bool ipjail = c->key == KEY_IP || c->key == KEY_PREFIX;
		if (jail ? strcmp(c->name, jail) == 0 : !c->recidive)
			if (ipjail == (kind == TARGET_IP))
				j = c;
	}
	if (j == NULL)
		return -1;
	if ((e = table_get(&j->state, target, true)) == NULL)
		return -1;
	level = entry_level(e, now, jails_history_span(js));
	make_verdict(j, target, level, now, duration ? duration : ban_duration(j, level), out);
	snprintf(out->reason, sizeof(out->reason), "manual");
	return entry_note_ban(e, now, out->expires_at);
}

int
jail_lift(struct jailset *js, const char *jail, const char *target, int64_t now)
{
	int lifted = 0;

	for (size_t i = 0; i < js->n; i++) {
		struct entry *e;
		if (jail && strcmp(js->jails[i].name, jail) != 0)
			continue;
		if ((e = table_find(&js->jails[i].state, target)) && e->ban_end > now) {
			e->ban_end = now;
			lifted++;
		}
	}
	return lifted;
}

void
jails_expire(struct jailset *js, int64_t now)
{
	int64_t span = jails_history_span(js);

	for (size_t i = 0; i < js->n; i++) {
		struct jail *j = &js->jails[i];
		struct table *t = &j->state;
		size_t live = 0;

		for (size_t s = 0; s < t->size; s++) {
			struct entry *e = t->slots[s];
			if (e == NULL)
				continue;
			entry_expire(e, now - jail_window(j));
			(void)entry_level(e, now, span);
			if (e->n == 0 && e->nbans == 0 && e->ban_end <= now) {
				entry_free(e);
				t->slots[s] = NULL;
			} else {
				live++;
			}
		}
		/* Removing from open addressing breaks probe chains: rebuild. */
		t->used = 0;
		{
			struct table old = *t;
			t->slots = NULL;
			t->size = 0;
			if (table_resize(t, live) != 0) {
				*t = old;   /* keep the old table; try again next time */
				t->used = live;
				continue;
			}
			for (size_t s = 0; s < old.size; s++)
				if (old.slots[s])
					table_put(t, old.slots[s]);
			free(old.slots);
		}
	}
	for (size_t s = 0; s < PENDING_SLOTS; s++) {
		struct pending *p = js->pending[s];
		if (p && p->time < now - PENDING_MAX_AGE) {
			free(p->user);
			free(p);
			js->pending[s] = NULL;
			js->npending--;
		}
	}
}
