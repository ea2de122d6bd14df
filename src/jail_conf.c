/*
 * jail_conf - loads jails/NAME.jail (one INI section per jail, cfgfile.h),
 * checks each jail as a whole (which keys, actions and events go together),
 * derives what counting needs (windows, ring sizes, the event kinds named
 * once), and answers what the configuration says (jails_count, jails_signal,
 * jail_shape ...).  Part of the jail module (jail_impl.h).
 *
 * Memory: jails_load allocates the jailset and its jails (strings copied
 * from the files); jails_free frees them with all their state.  Problems
 * are reported as diags (the caller's struct diag), never printed.
 */
#include "jail_impl.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPLY_MAX 200
#define MIN_HISTORY_SPAN ((int64_t)30 * 86400)
#define LIMIT_MAX 65534          /* ring capacity is a uint16 */
#define SPARE_FACTOR_DEFAULT 3

static const struct cidr loopback[2] = {
	{ AF_INET, 8, { 127 } },
	{ AF_INET6, 128, { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 } },
};

static void
jail_free(struct jail *j)
{
	if (j == NULL)
		return;
	free(j->name);
	free(j->file);
	for (size_t i = 0; i < j->nevents; i++)
		free(j->events[i]);
	free(j->events);
	free(j->limits);
	free(j->cidrs);
	for (size_t i = 0; i < j->nnames; i++)
		free(j->names[i]);
	free(j->names);
	free(j->reply);
	free(j->counts_kind);
	jail_clear_state(j);
	free(j);
}

static char *
trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* split_list - call f for every non-empty comma-separated item; stops at
 * the first non-zero return */
static int
split_list(const char *value, int (*f)(struct jail *, const char *, void *),
    struct jail *j, void *arg)
{
	char *copy = strdup(value), *p, *save = NULL;
	int rc = 0;

	if (copy == NULL)
		return -1;
	for (p = strtok_r(copy, ",", &save); p != NULL; p = strtok_r(NULL, ",", &save)) {
		char *item = trim(p);
		if (*item == '\0')
			continue;
		if ((rc = f(j, item, arg)) != 0)
			break;
	}
	free(copy);
	return rc;
}

static int
add_str(char ***arr, size_t *n, const char *s)
{
	char **na = realloc(*arr, (*n + 1) * sizeof(*na));

	if (na == NULL)
		return -1;
	*arr = na;
	if ((na[*n] = strdup(s)) == NULL)
		return -1;
	(*n)++;
	return 0;
}

static int
add_event(struct jail *j, const char *item, void *arg)
{
	(void)arg;
	return add_str(&j->events, &j->nevents, item);
}

struct itemctx {
	struct jailset *js;
	int line;
};

/* The words a key takes, and what each means (the diags list them too). */
struct word {
	const char *name;
	int value;
};

static const struct word action_words[] = {
	{ "nft", ACTION_NFT }, { "hold", ACTION_HOLD }, { "reject", ACTION_REJECT },
	{ "defer", ACTION_DEFER },
};
static const struct word key_words[] = {
	{ "ip", KEY_IP }, { "account", KEY_ACCOUNT }, { "sender", KEY_SENDER },
	{ "domain", KEY_DOMAIN },
};
static const struct word count_words[] = {
	{ "messages", false }, { "recipients", true },
};
static const struct word notify_words[] = {
	{ "now", JAIL_NOTIFY_NOW }, { "digest", JAIL_NOTIFY_DIGEST }, { "no", JAIL_NOTIFY_NO },
};
static const struct word bool_words[] = {
	{ "true", true }, { "yes", true }, { "1", true },
	{ "false", false }, { "no", false }, { "0", false },
};

/* pick - the value of name among words; false if it is none of them */
static bool
pick(const struct word *words, size_t n, const char *name, int *value)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(words[i].name, name) == 0) {
			*value = words[i].value;
			return true;
		}
	}
	return false;
}

#define PICK(words, name, value) pick(words, sizeof(words) / sizeof(words[0]), name, value)

static int
add_action(struct jail *j, const char *item, void *arg)
{
	struct itemctx *c = arg;
	int action;

	if (!PICK(action_words, item, &action)) {
		diag_add(c->js->d, j->file, c->line, "jail %s: unknown action \"%s\" (nft, hold, "
		    "defer, reject)", j->name, item);
		return 1;
	}
	j->actions |= (unsigned)action;
	return 0;
}

/* looks_like_ip - only digits, dots, colons and hex: meant as an address */
static bool
looks_like_ip(const char *s)
{
	bool sep = false;

	for (; *s; s++) {
		if (*s == '.' || *s == ':')
			sep = true;
		else if (!isxdigit((unsigned char)*s))
			return false;
	}
	return sep;
}

static int
add_ignore(struct jail *j, const char *item, void *arg)
{
	struct itemctx *c = arg;
	struct cidr cd;

	if (strchr(item, '@') == NULL && jail_parse_cidr(item, &cd) == 0) {
		struct cidr *nc = realloc(j->cidrs, (j->ncidrs + 1) * sizeof(*nc));
		if (nc == NULL)
			return -1;
		j->cidrs = nc;
		j->cidrs[j->ncidrs++] = cd;
		return 0;
	}
	if (strchr(item, '@') == NULL && (strchr(item, '/') != NULL || looks_like_ip(item))) {
		diag_add(c->js->d, j->file, c->line, "jail %s: bad CIDR \"%s\" in ignore", j->name, item);
		return 1;
	}
	return add_str(&j->names, &j->nnames, item);
}

static int
add_limit(struct jail *j, const char *item, void *arg)
{
	struct itemctx *c = arg;
	char buf[64];
	const char *slash = strchr(item, '/');
	uint64_t n;
	int64_t w;
	struct limit *nl;

	if (slash == NULL || (size_t)(slash - item) >= sizeof(buf))
		goto bad;
	memcpy(buf, item, (size_t)(slash - item));
	buf[slash - item] = '\0';
	if (cfg_parse_uint(trim(buf), LIMIT_MAX - 1, &n) != 0 || n == 0)
		goto bad;
	snprintf(buf, sizeof(buf), "%s", slash + 1);
	if (cfg_parse_duration(trim(buf), &w) != 0 || w <= 0)
		goto bad;
	if ((nl = realloc(j->limits, (j->nlimits + 1) * sizeof(*nl))) == NULL)
		return -1;
	j->limits = nl;
	j->limits[j->nlimits].n = (uint32_t)n;
	j->limits[j->nlimits].w = w;
	j->nlimits++;
	return 0;
bad:
	diag_add(c->js->d, j->file, c->line,
	    "jail %s: malformed limit \"%s\" (expected COUNT/DURATION, e.g. 100/1h, count 1..%d)",
	    j->name, item, LIMIT_MAX - 1);
	return 1;
}

struct jail *
jail_find(const struct jailset *js, const char *name)
{
	if (name == NULL)
		return NULL;
	for (size_t i = 0; i < js->n; i++)
		if (strcmp(js->jails[i]->name, name) == 0)
			return js->jails[i];
	return NULL;
}

/* start_jail - a new [section]: a fresh jail, or a duplicate diag */
static int
start_jail(struct jailset *js, const char *file, const char *section, int line)
{
	struct jail *j, *old = jail_find(js, section);

	js->cur = NULL;
	js->cur_file = file;
	js->cur_line = line;
	js->cur_skip = false;
	if (old != NULL) {
		diag_add(js->d, file, line, "duplicate jail name \"%s\" (first at %s:%d)",
		    section, old->file, old->line);
		js->cur_skip = true;
		return 0;
	}
	if (js->n == js->cap) {
		size_t nc = js->cap ? js->cap * 2 : 8;
		struct jail **nj = realloc(js->jails, nc * sizeof(*nj));
		if (nj == NULL)
			return -1;
		js->jails = nj;
		js->cap = nc;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return -1;
	j->line = line;
	j->key = KEY_IP;
	j->bantime = 3600;
	j->factor = 2;
	j->maxbantime = TEN_YEARS;
	j->spare_factor = SPARE_FACTOR_DEFAULT;
	j->enabled = true;
	j->name = strdup(section);
	j->file = strdup(file);
	if (j->name == NULL || j->file == NULL) {
		jail_free(j);
		return -1;
	}
	js->jails[js->n++] = j;
	js->cur = j;
	return 0;
}

static int
parse_duration_key(struct jailset *js, struct jail *j, const char *key,
    const char *value, int line, int64_t *out)
{
	if (cfg_parse_duration(value, out) != 0 || *out <= 0) {
		diag_add(js->d, j->file, line, "jail %s: bad duration for %s: \"%s\" (e.g. 30s, 10m, 1h, 1d, 1w)",
		    j->name, key, value);
		return 1;
	}
	return 0;
}

/* load_handler - one key of a .jail file */
static int
load_handler(void *arg, const char *file, const char *section, int section_line,
    const char *key, const char *value, int line)
{
	struct jailset *js = arg;
	struct itemctx ic = { js, line };
	struct jail *j;
	uint64_t u;
	int w;

	if (js->cur_file == NULL || strcmp(js->cur_file, file) != 0 ||
	    js->cur_line != section_line) {
		if (start_jail(js, file, section, section_line) != 0)
			return -1;
	}
	if (js->cur_skip)
		return 0;
	j = js->cur;
	if (strcmp(key, "events") == 0) {
		j->events_line = line;
		return split_list(value, add_event, j, NULL);
	} else if (strcmp(key, "key") == 0) {
		j->l_key = line;
		if (PICK(key_words, value, &w))
			j->key = (enum keytype)w;
		else if (strncmp(value, "ip/", 3) == 0 &&
		    cfg_parse_uint(value + 3, 128, &u) == 0 && u > 0) {
			j->key = KEY_PREFIX;
			j->prefix = (int)u;
		} else {
			diag_add(js->d, file, line,
			    "jail %s: unknown key type \"%s\" (ip, ip/N, account, sender, domain)",
			    j->name, value);
		}
	} else if (strcmp(key, "findtime") == 0) {
		j->l_findtime = line;
		return parse_duration_key(js, j, key, value, line, &j->findtime);
	} else if (strcmp(key, "maxretry") == 0) {
		j->l_maxretry = line;
		if (cfg_parse_uint(value, LIMIT_MAX, &u) != 0 || u == 0) {
			diag_add(js->d, file, line, "jail %s: bad number for maxretry: \"%s\" (1..%d)",
			    j->name, value, LIMIT_MAX);
			return 1;
		}
		j->maxretry = (uint32_t)u;
	} else if (strcmp(key, "limits") == 0) {
		j->l_limits = line;
		j->nlimits = 0;
		if (split_list(value, add_limit, j, &ic) != 0)
			return 1;
		if (j->nlimits == 0)
			diag_add(js->d, file, line, "jail %s: limits is empty", j->name);
	} else if (strcmp(key, "count") == 0) {
		j->l_count = line;
		if (PICK(count_words, value, &w))
			j->count_rcpt = w;
		else
			diag_add(js->d, file, line, "jail %s: count must be messages or recipients, not \"%s\"",
			    j->name, value);
	} else if (strcmp(key, "ignore") == 0) {
		j->ignore_set = true;
		return split_list(value, add_ignore, j, &ic);
	} else if (strcmp(key, "action") == 0) {
		j->l_action = line;
		j->actions = 0;
		if (split_list(value, add_action, j, &ic) != 0)
			return 1;
		if (j->actions == 0)
			diag_add(js->d, file, line, "jail %s: action is empty", j->name);
	} else if (strcmp(key, "reply") == 0) {
		j->l_reply = line;
		free(j->reply);
		if ((j->reply = strdup(value)) == NULL)
			return -1;
	} else if (strcmp(key, "bantime") == 0) {
		return parse_duration_key(js, j, key, value, line, &j->bantime);
	} else if (strcmp(key, "maxbantime") == 0) {
		return parse_duration_key(js, j, key, value, line, &j->maxbantime);
	} else if (strcmp(key, "factor") == 0) {
		char *end = NULL;
		double f;
		errno = 0;
		f = strtod(value, &end);
		if (errno != 0 || end == value || *end != '\0' || !isfinite(f) || f <= 0 || f > 1000) {
			diag_add(js->d, file, line, "jail %s: bad number for factor: \"%s\" (a number > 0, e.g. 2 or 1.5)",
			    j->name, value);
			return 1;
		}
		j->factor = f;
	} else if (strcmp(key, "notify") == 0) {
		j->notify_set = true;
		if (PICK(notify_words, value, &w))
			j->notify = (enum jail_notify)w;
		else
			diag_add(js->d, file, line, "jail %s: notify must be now, digest or no, "
			    "not \"%s\"", j->name, value);
	} else if (strcmp(key, "spare_authenticated") == 0) {
		j->l_spare = line;
		return parse_duration_key(js, j, key, value, line, &j->spare_after);
	} else if (strcmp(key, "spare_factor") == 0) {
		j->l_spare_factor = line;
		if (cfg_parse_uint(value, 100, &u) != 0 || u < 1) {
			diag_add(js->d, file, line, "jail %s: bad number for spare_factor: \"%s\" (1..100)",
			    j->name, value);
			return 1;
		}
		j->spare_factor = (uint32_t)u;
	} else if (strcmp(key, "enabled") == 0) {
		if (PICK(bool_words, value, &w))
			j->enabled = w;
		else
			diag_add(js->d, file, line, "jail %s: enabled must be true or false, not \"%s\"",
			    j->name, value);
	} else {
		diag_add(js->d, file, line, "jail %s: unknown key \"%s\"", j->name, key);
	}
	return 0;
}

bool
jail_has_event(const struct jail *j, const char *ev)
{
	return str_in(j->events, j->nevents, ev);
}

/* reply_ok - a reply a Postfix access map can answer for a temporary
 * failure: "4NN", then text of printable ASCII */
static bool
reply_ok(const char *r)
{
	if (strlen(r) > REPLY_MAX || r[0] != '4' || !isdigit((unsigned char)r[1]) ||
	    !isdigit((unsigned char)r[2]) || (r[3] != ' ' && r[3] != '\0'))
		return false;
	for (; *r; r++)
		if (*r < ' ' || *r > '~')
			return false;
	return true;
}

/* check_actions - which actions go with which key, and the reply of defer */
static void
check_actions(struct jailset *js, struct jail *j)
{
	struct diag *d = js->d;
	unsigned on_account = ACTION_HOLD | ACTION_DEFER, on_ip = ACTION_NFT | ACTION_REJECT;

	if (key_is_ip(j) && (j->actions & on_account)) {
		diag_add(d, j->file, j->l_action, "jail %s: action %s needs an account key "
		    "(account, sender, domain)", j->name,
		    (j->actions & ACTION_HOLD) ? "hold" : "defer");
		return;
	}
	if ((j->actions & ACTION_HOLD) && (j->actions & ACTION_DEFER)) {
		diag_add(d, j->file, j->l_action, "jail %s: hold and defer cannot be combined "
		    "(one answer per account in the map)", j->name);
		return;
	}
	if (!key_is_ip(j) && (j->actions & on_ip)) {
		/* key = account with nft: ban the addresses that fail against it */
		if (j->key != KEY_ACCOUNT || j->recidive) {
			diag_add(d, j->file, j->l_action, "jail %s: actions nft and reject need an ip "
			    "key (or key = account, to ban the addresses that fail against an "
			    "account)", j->name);
		} else if (j->actions & on_account) {
			diag_add(d, j->file, j->l_action, "jail %s: a jail that bans the addresses "
			    "failing against an account cannot also hold or defer the account (it "
			    "is the victim)", j->name);
		} else if (j->l_limits) {
			diag_add(d, j->file, j->l_limits, "jail %s: a jail that bans the addresses "
			    "failing against an account counts failures: maxretry and findtime, "
			    "not limits", j->name);
		} else {
			j->bans_addresses = true;
		}
		return;
	}
	if ((j->actions & ACTION_DEFER) && j->reply != NULL && !reply_ok(j->reply))
		diag_add(d, j->file, j->l_reply, "jail %s: the reply of defer must be a "
		    "temporary failure, \"4NN text\" in printable ASCII of at most %d characters "
		    "(e.g. \"%s\")", j->name, REPLY_MAX, DEFAULT_DEFER_REPLY);
}

/* spare_finish - room for maxretry * spare_factor failures per key once a
 * spared address may need that many */
static void
spare_finish(struct jailset *js, struct jail *j)
{
	uint64_t need = (uint64_t)j->maxretry * j->spare_factor;

	if (j->spare_after == 0 || j->bans_addresses)
		return;
	if (need > LIMIT_MAX) {
		diag_add(js->d, j->file, j->l_spare_factor ? j->l_spare_factor : j->l_spare,
		    "jail %s: maxretry x spare_factor is more than %d", j->name, LIMIT_MAX);
		return;
	}
	j->ringmax = (uint16_t)need;
}

/* finish_jail - checks that need the whole section; derived values */
static void
finish_jail(struct jailset *js, struct jail *j)
{
	struct diag *d = js->d;

	if (j->nevents == 0) {
		diag_add(d, j->file, j->line, "jail %s: events is missing", j->name);
		return;
	}
	j->recidive = jail_has_event(j, "ban");
	if (j->recidive && j->nevents > 1)
		diag_add(d, j->file, j->events_line,
		    "jail %s: events = ban (recidive) cannot be combined with other events", j->name);
	if (j->recidive && (j->key == KEY_SENDER || j->key == KEY_DOMAIN))
		diag_add(d, j->file, j->l_key ? j->l_key : j->line,
		    "jail %s: a recidive jail's key must be ip, ip/N or account", j->name);
	if (j->maxretry && j->nlimits)
		diag_add(d, j->file, j->l_limits,
		    "jail %s: maxretry and limits cannot both be set (failure or quota jail?)", j->name);
	else if (!j->maxretry && !j->l_limits && !j->l_maxretry)
		diag_add(d, j->file, j->line, "jail %s: needs maxretry (with findtime) or limits", j->name);
	if (j->l_findtime && j->l_limits)
		diag_add(d, j->file, j->l_findtime,
		    "jail %s: findtime belongs to maxretry; limits carry their own windows", j->name);
	if (j->l_count && !j->l_limits)
		diag_add(d, j->file, j->l_count, "jail %s: count needs limits", j->name);
	if (j->count_rcpt && !jail_has_event(j, "submission"))
		diag_add(d, j->file, j->l_count,
		    "jail %s: count = recipients needs events to include submission", j->name);
	if (j->l_action == 0)
		diag_add(d, j->file, j->line, "jail %s: action is missing", j->name);
	else
		check_actions(js, j);
	/* after check_actions: a jail that bans the addresses failing against
	 * an account spares too (the addresses it would ban) */
	if ((j->l_spare || j->l_spare_factor) && (!j->maxretry || j->recidive ||
	    !(key_is_ip(j) || j->bans_addresses)))
		diag_add(d, j->file, j->l_spare ? j->l_spare : j->l_spare_factor,
		    "jail %s: spare_authenticated is for failure jails (maxretry) keyed by ip or "
		    "ip/N, or by account with action nft or reject", j->name);
	else if (j->l_spare_factor && !j->l_spare)
		diag_add(d, j->file, j->l_spare_factor,
		    "jail %s: spare_factor needs spare_authenticated", j->name);
	else if (j->l_spare_factor && j->bans_addresses)
		diag_add(d, j->file, j->l_spare_factor,
		    "jail %s: spare_factor is for jails keyed by ip: a jail that bans the addresses "
		    "failing against an account never bans a spared one", j->name);
	if (j->maxretry) {
		if (j->findtime == 0)
			j->findtime = 600;
		j->window = j->findtime;
		j->ringmax = (uint16_t)j->maxretry;
		spare_finish(js, j);
	} else {
		uint32_t big = 0;
		for (size_t i = 0; i < j->nlimits; i++) {
			if (j->limits[i].w > j->window)
				j->window = j->limits[i].w;
			if (j->limits[i].n > big)
				big = j->limits[i].n;
		}
		/* a window holding more than the largest limit is exceeded already */
		j->ringmax = (uint16_t)(big + 1);
	}
	if (!j->ignore_set) {
		j->cidrs = malloc(sizeof(loopback));
		if (j->cidrs == NULL) {
			diag_add(d, j->file, j->line, "out of memory");
			return;
		}
		memcpy(j->cidrs, loopback, sizeof(loopback));
		j->ncidrs = 2;
	}
}

/* index_kinds - name each kind the (non-recidive) jails count once, and
 * mark in each jail which it counts */
static int
index_kinds(struct jailset *js)
{
	size_t max = 0;

	for (size_t i = 0; i < js->n; i++)
		max += js->jails[i]->nevents;
	if ((js->kinds = calloc(max ? max : 1, sizeof(*js->kinds))) == NULL)
		return -1;
	for (size_t i = 0; i < js->n; i++) {
		struct jail *j = js->jails[i];
		if (j->recidive)
			continue;
		for (size_t e = 0; e < j->nevents; e++)
			if (jail_kind_of(js, j->events[e]) < 0)
				js->kinds[js->nkinds++] = j->events[e];
	}
	for (size_t i = 0; i < js->n; i++) {
		struct jail *j = js->jails[i];
		if ((j->counts_kind = calloc(js->nkinds ? js->nkinds : 1, 1)) == NULL)
			return -1;
		for (size_t e = 0; e < j->nevents && !j->recidive; e++)
			j->counts_kind[jail_kind_of(js, j->events[e])] = 1;
		j->counts_listed = !j->recidive && jail_has_event(j, EV_REMOTE_LISTED);
		if (!j->recidive && (jail_has_event(j, EV_REMOTE_REJECT) || j->counts_listed))
			js->need_trace = true;
	}
	js->kind_submission = jail_kind_of(js, "submission");
	return 0;
}

int
jails_load(const char *path, struct jailset **out, struct diag *d)
{
	struct jailset *js = calloc(1, sizeof(*js));
	size_t before = d->n, k = 0;
	int rc = -1;

	*out = NULL;
	if (js == NULL) {
		diag_add(d, path, 0, "out of memory");
		return -1;
	}
	js->d = d;
	if (cfgfile_parse_path(path, ".jail", load_handler, js, d) != 0)
		goto out;
	for (size_t i = 0; i < js->n; i++)
		finish_jail(js, js->jails[i]);
	if (d->n != before)
		goto out;
	js->span = MIN_HISTORY_SPAN;
	for (size_t i = 0; i < js->n; i++) {
		struct jail *j = js->jails[i];
		if (!j->enabled) {
			jail_free(j);
			continue;
		}
		js->jails[k++] = j;
		if (j->recidive && j->window > js->span)
			js->span = j->window;
		if (j->spare_after > 0)
			js->need_logins = true;
		if (jail_has_event(j, "submission") &&
		    (j->count_rcpt || j->key == KEY_SENDER || j->key == KEY_DOMAIN))
			js->need_pending = true;
	}
	js->n = k;
	if (index_kinds(js) != 0) {
		diag_add(d, path, 0, "out of memory");
		goto out;
	}
	rc = 0;
out:
	js->d = NULL;
	js->cur = NULL;
	js->cur_file = NULL;
	if (rc != 0) {
		if (d->n == before)
			diag_add(d, path, 0, "cannot load jails");
		jails_free(js);
		return -1;
	}
	*out = js;
	return 0;
}

void
jails_free(struct jailset *js)
{
	if (js == NULL)
		return;
	for (size_t i = 0; i < js->n; i++)
		jail_free(js->jails[i]);
	free(js->jails);
	free(js->kinds);
	hashtab_free(&js->pending);
	msgtrace_free(&js->trace);
	free(js);
}

int
jails_check_events(const struct jailset *js,
    bool (*known)(void *arg, const char *event), void *arg, struct diag *d)
{
	int n = 0;

	for (size_t i = 0; i < js->n; i++) {
		const struct jail *j = js->jails[i];
		for (size_t e = 0; e < j->nevents; e++) {
			if (strcmp(j->events[e], "ban") == 0 || known(arg, j->events[e]))
				continue;
			diag_add(d, j->file, j->events_line,
			    "jail %s: no rule produces event \"%s\"", j->name, j->events[e]);
			n++;
		}
	}
	return n;
}

struct carry_ctx {
	bool (*carries)(void *arg, const char *event, const char *field);
	void *arg;
};

/* event_carries - whether event can reach a jail with field set, joins
 * included */
static bool
event_carries(const struct carry_ctx *c, const char *event, const char *field)
{
	if (c->carries(c->arg, event, field))
		return true;
	if (strcmp(event, "submission") == 0 && strcmp(field, "sender") == 0)
		return c->carries(c->arg, "queued", "sender");
	if (jail_delivery_kind(event) == DELIVERY_REFUSAL || jail_delivery_kind(event) == DELIVERY_LISTED)
		return strcmp(field, "user") == 0 && c->carries(c->arg, "submission", field);
	return false;
}

/* key_field - the event field jail j keys on; what it is called in a diag */
static const char *
key_field(const struct jail *j, const char **what)
{
	switch (j->key) {
	case KEY_IP:
	case KEY_PREFIX:
		*what = "an address (ip)";
		return "ip";
	case KEY_ACCOUNT:
		*what = "an account (user)";
		return "user";
	case KEY_SENDER:
		*what = "a sender";
		return "sender";
	case KEY_DOMAIN:
		*what = "an account or sender with a domain";
		return "user";
	}
	return "ip";
}

int
jails_check_keys(const struct jailset *js,
    bool (*carries)(void *arg, const char *event, const char *field), void *arg,
    struct diag *d)
{
	struct carry_ctx c = { carries, arg };
	int n = 0;

	for (size_t i = 0; i < js->n; i++) {
		const struct jail *j = js->jails[i];
		const char *what, *field = key_field(j, &what);
		if (j->recidive)
			continue;
		for (size_t e = 0; e < j->nevents; e++) {
			const char *ev = j->events[e];
			bool ok = event_carries(&c, ev, field) ||
			    (j->key == KEY_DOMAIN && event_carries(&c, ev, "sender"));
			if (ok && j->bans_addresses && !event_carries(&c, ev, "ip")) {
				diag_add(d, j->file, j->events_line, "jail %s: bans the addresses "
				    "failing against an account, but no rule gives event \"%s\" "
				    "an address (ip)", j->name, ev);
				n++;
			} else if (!ok) {
				diag_add(d, j->file, j->l_key ? j->l_key : j->events_line,
				    "jail %s: key %s, but no rule gives event \"%s\" %s", j->name,
				    j->key == KEY_ACCOUNT ? "account" : j->key == KEY_SENDER ?
				    "sender" : j->key == KEY_DOMAIN ? "domain" : "ip", ev, what);
				n++;
			}
		}
	}
	return n;
}

size_t
jails_count(const struct jailset *js)
{
	return js->n;
}

const char *
jails_name(const struct jailset *js, size_t i)
{
	return i < js->n ? js->jails[i]->name : NULL;
}

unsigned
jails_actions(const struct jailset *js, size_t i)
{
	return i < js->n ? js->jails[i]->actions : 0;
}

int
jails_signal(const struct jailset *js, const char *jail, struct jail_signal *out)
{
	static const char *const keys[] = {
		[KEY_IP] = "ip", [KEY_PREFIX] = "ip", [KEY_ACCOUNT] = "account",
		[KEY_SENDER] = "sender", [KEY_DOMAIN] = "domain",
	};
	const struct jail *j = jail_find(js, jail);

	if (j == NULL)
		return -1;
	out->key = keys[j->key];
	out->window = j->window;
	out->bans_addresses = j->bans_addresses;
	out->alarms = j->counts_listed;
	/* DESIGN: now for jails acting on accounts (hold, defer); a jail keyed
	 * by account that bans addresses tells of them in the digest */
	if (j->notify_set)
		out->notify = j->notify;
	else
		out->notify = (j->actions & (ACTION_HOLD | ACTION_DEFER)) ? JAIL_NOTIFY_NOW :
		    JAIL_NOTIFY_DIGEST;
	return 0;
}

int64_t
jails_longest_window(const struct jailset *js)
{
	int64_t w = 0;

	for (size_t i = 0; i < js->n; i++) {
		if (js->jails[i]->window > w)
			w = js->jails[i]->window;
		/* the logins a spared jail looks back on are restored too */
		if (js->jails[i]->spare_after > w)
			w = js->jails[i]->spare_after;
	}
	/* a restart rebuilds the delivery join from the submissions of the
	 * last day, as a running daemon keeps them */
	if (js->need_trace && w < PENDING_TTL)
		w = PENDING_TTL;
	return w;
}

int64_t
jails_history_span(const struct jailset *js)
{
	return js->span;
}

size_t
jails_tracked_keys(const struct jailset *js, size_t i)
{
	if (i >= js->n)
		return 0;
	/* a jail that bans the addresses failing against an account counts in
	 * its addrlog */
	return js->jails[i]->bans_addresses ? addrlog_accounts(&js->jails[i]->addrs) :
	    js->jails[i]->counters.n;
}

/* ---- for "mailjail explain" (issue 15) -------------------------------- */

int
jail_shape(const struct jailset *js, const char *jail, struct jail_shape *out)
{
	const struct jail *j = jail_find(js, jail);
	static const char *const key_names[] = {
		[KEY_IP] = "ip", [KEY_PREFIX] = "prefix", [KEY_ACCOUNT] = "account",
		[KEY_SENDER] = "sender", [KEY_DOMAIN] = "domain",
	};

	memset(out, 0, sizeof(*out));
	if (j == NULL)
		return -1;
	out->recidive = j->recidive;
	out->key = key_names[j->key];
	out->kind = key_is_ip(j) ? TARGET_IP : TARGET_ACCOUNT;
	out->maxretry = j->maxretry;
	out->findtime = j->findtime;
	for (size_t i = 0; i < j->nlimits && i < JAIL_SHAPE_LIMITS; i++) {
		out->limits[i].n = j->limits[i].n;
		out->limits[i].w = j->limits[i].w;
		out->nlimits++;
	}
	out->count_rcpt = j->count_rcpt;
	out->window = j->window;
	out->spare_after = j->spare_after;
	out->spare_factor = j->spare_factor;
	out->bans_addresses = j->bans_addresses;
	out->deliveries = !j->recidive && (jail_has_event(j, EV_REMOTE_REJECT) ||
	    jail_has_event(j, EV_REMOTE_LISTED));
	return 0;
}
