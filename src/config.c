/*
 * config - mailjail.conf.  See config.h.
 *
 * Every key is one row of config_keys[]: section, name, kind and where it
 * goes, so each is parsed and checked the same way (Postfix's typed parameter
 * tables are the model).  Unknown sections and keys are errors: a typo must
 * not silently fall back to a default.
 *
 * "auto" in log is kept as a placeholder while the file is parsed (the keys
 * naming its two choices may come after it) and resolved at the end.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal.h"
#include "types.h"

/* events carry a node's name in buffers of MJ_NODE_MAX (jail.c, the
 * fleet's stores) */
_Static_assert(CONFIG_NODE_MAX < MJ_NODE_MAX, "a node name fits an event's buffers");

enum key_kind {
	KEY_PATH, KEY_STRING, KEY_LOGS, KEY_PORTS, KEY_UINT, KEY_MAP,
	KEY_JOURNAL,               /* a journal source (journal.h) */
	KEY_DB,                    /* a path, or a URI kept as given */
	KEY_NODE,                  /* a node name (node_name_ok) */
	KEY_MAILTO,                /* notify.mailto: a list of addresses */
	KEY_ADDRESS,               /* one mail address */
	KEY_HOSTPORT,              /* host:port (a name or an IP) */
	KEY_LISTEN,                /* IP:PORT to bind */
	KEY_EXEC,                  /* a path to an executable file */
	KEY_DURATION,              /* an int64_t of seconds, 1s..1d */
	KEY_OUTFILE,               /* a file to write, in an existing directory */
};

struct config_key {
	const char *section;
	const char *name;
	enum key_kind kind;
	size_t offset;             /* of the char * (or other) member */
	const char *dflt;
};

#define OFF(m) offsetof(struct config, m)

static const struct config_key config_keys[] = {
	{ "mailjail", "log",   KEY_LOGS,   0, CONFIG_LOG_AUTO },
	{ "mailjail", "log_auto_file", KEY_PATH, OFF(log_auto_file), "/var/log/mail.log" },
	{ "mailjail", "log_auto_journal", KEY_JOURNAL, OFF(log_auto_journal),
	  "journal:postfix@-.service" },
	{ "mailjail", "db",    KEY_DB,     OFF(db), "/var/lib/mailjail/mailjail.db" },
	{ "mailjail", "node",  KEY_NODE,   OFF(node), NULL },
	{ "mailjail", "rules", KEY_PATH,   OFF(rules), "/etc/mailjail/rules" },
	{ "mailjail", "jails", KEY_PATH,   OFF(jails), "/etc/mailjail/jails" },
	{ "mailjail", "user",  KEY_STRING, OFF(user), "mailjail" },
	{ "mailjail", "batch_lines", KEY_UINT, OFF(batch_lines), "20000" },
	{ "nft", "table",    KEY_STRING, OFF(nft_table), "mailjail" },
	{ "nft", "set_ipv4", KEY_STRING, OFF(nft_set_v4), "banned_ipv4" },
	{ "nft", "set_ipv6", KEY_STRING, OFF(nft_set_v6), "banned_ipv6" },
	{ "nft", "chain",    KEY_STRING, OFF(nft_chain), "input" },
	{ "nft", "ports",    KEY_PORTS,  0, "25, 465, 587" },
	{ "hold", "map",     KEY_MAP,    OFF(hold_map), "sqlite:/var/lib/mailjail/hold.db" },
	{ "reject", "map",   KEY_MAP,    OFF(reject_map), "sqlite:/var/lib/mailjail/reject.db" },
	{ "postfix", "config_directory", KEY_PATH, OFF(postfix_config_dir), NULL },
	{ "journal", "directory", KEY_PATH, OFF(journal_dir), NULL },
	{ "notify", "mailto",  KEY_MAILTO,   0, NULL },
	{ "notify", "from",    KEY_ADDRESS,  OFF(notify.from), NULL },
	{ "notify", "smtp",    KEY_HOSTPORT, OFF(notify.smtp), "127.0.0.1:25" },
	{ "notify", "command", KEY_EXEC,     OFF(notify.command), NULL },
	{ "notify", "digest",  KEY_DURATION, OFF(notify.digest), "1h" },
	{ "notify", "timeout", KEY_DURATION, OFF(notify.timeout), "30s" },
	{ "metrics", "textfile", KEY_OUTFILE, OFF(metrics.textfile), NULL },
	{ "metrics", "listen",   KEY_LISTEN, OFF(metrics.listen), NULL },
};
#define NKEYS (sizeof(config_keys) / sizeof(config_keys[0]))

struct load_ctx {
	struct config *cfg;
	struct diag *d;
	const char *base;          /* the config file, for relative paths */
	bool seen[NKEYS];
	int log_line;              /* where log was given; 0: the default */
};

static char **
str_member(struct config *cfg, const struct config_key *k)
{
	return (char **)((char *)cfg + k->offset);
}

/* trim - the value without surrounding blanks, into a new string */
static char *
trim_dup(const char *s, size_t len)
{
	while (len && (*s == ' ' || *s == '\t')) {
		s++;
		len--;
	}
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	return strndup(s, len);
}

/* item_fn - one trimmed item of a comma-separated list, the handler's to
 * keep or free; non-zero refuses the list (the reason in why) */
typedef int (*item_fn)(void *arg, char *item, char *why, size_t wlen);

/* each_item - the items of "a, b, c" to take, in order: -1 if one is
 * refused or memory runs out */
static int
each_item(const char *value, item_fn take, void *arg, char *why, size_t wlen)
{
	const char *p = value;

	while (*p) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		char *item = trim_dup(p, len);

		if (item == NULL || take(arg, item, why, wlen) != 0)
			return -1;
		p += len + (comma ? 1 : 0);
	}
	return 0;
}

struct log_list {
	struct config *cfg;
	const char *base;          /* relative paths are resolved against it */
};

static int
take_log(void *arg, char *item, char *why, size_t wlen)
{
	struct log_list *l = arg;
	struct config *cfg = l->cfg;

	if (*item == '\0') {
		free(item);
		snprintf(why, wlen, "empty log path in list");
		return -1;
	}
	if (cfg->nlogs == CONFIG_LOGS_MAX) {
		free(item);
		snprintf(why, wlen, "more than %d logs", CONFIG_LOGS_MAX);
		return -1;
	}
	/* A placeholder until the file is read (resolve_log_auto). */
	if (strcmp(item, CONFIG_LOG_AUTO) == 0) {
		if (cfg->log_auto >= 0) {
			snprintf(why, wlen, "\"%s\" given twice", item);
			free(item);
			return -1;
		}
		cfg->log_auto = (int)cfg->nlogs;
		cfg->logs[cfg->nlogs++] = item;
	/* "journal:MATCH" is a source name, not a path (journal.h). */
	} else if (journal_is_source(item)) {
		if (journal_check_source(item, why, wlen) != 0) {
			free(item);
			return -1;
		}
		for (size_t i = 0; i < cfg->nlogs; i++) {
			if (strcmp(cfg->logs[i], item) == 0) {
				snprintf(why, wlen, "\"%s\" given twice", item);
				free(item);
				return -1;
			}
		}
		cfg->logs[cfg->nlogs++] = item;
	} else {
		cfg->logs[cfg->nlogs] = cfg_resolve_path(l->base, item);
		free(item);
		if (cfg->logs[cfg->nlogs] == NULL)
			return -1;
		cfg->nlogs++;
	}
	return 0;
}

/* set_logs - "a, b" into cfg->logs */
static int
set_logs(struct config *cfg, const char *base, const char *value, char *why, size_t wlen)
{
	struct log_list l = { cfg, base };

	for (size_t i = 0; i < cfg->nlogs; i++)
		free(cfg->logs[i]);
	cfg->nlogs = 0;
	cfg->log_auto = -1;
	if (each_item(value, take_log, &l, why, wlen) != 0)
		return -1;
	if (cfg->nlogs == 0) {
		snprintf(why, wlen, "no log given");
		return -1;
	}
	return 0;
}

static int
take_port(void *arg, char *item, char *why, size_t wlen)
{
	struct config *cfg = arg;
	uint64_t port;

	if (cfg_parse_uint(item, 65535, &port) != 0 || port == 0) {
		snprintf(why, wlen, "bad port \"%s\" (expected 1-65535, or \"all\")", item);
		free(item);
		return -1;
	}
	free(item);
	if (cfg->nft_nports == NFT_PORTS_MAX) {
		snprintf(why, wlen, "more than %d ports", NFT_PORTS_MAX);
		return -1;
	}
	cfg->nft_ports[cfg->nft_nports++] = (uint16_t)port;
	return 0;
}

/* set_ports - "25, 465, 587" or "all" */
static int
set_ports(struct config *cfg, const char *value, char *why, size_t wlen)
{
	cfg->nft_nports = 0;
	if (strcmp(value, "all") == 0)
		return 0;
	if (each_item(value, take_port, cfg, why, wlen) != 0)
		return -1;
	if (cfg->nft_nports == 0) {
		snprintf(why, wlen, "no port given (use \"all\" to drop everything)");
		return -1;
	}
	return 0;
}

/* address_ok - local@domain, the dot-atom of RFC 5322 on both sides (no
 * quoted local parts, no address literals, ASCII only): what a person
 * writes in a config, and nothing that could break an SMTP command or a
 * header */
static bool
address_ok(const char *a, char *why, size_t wlen)
{
	static const char local_extra[] = "!#$%&'*+/=?^_`{|}~-";
	const char *at = strrchr(a, '@'), *p;
	size_t label = 0;

	if (strlen(a) > 254 || at == NULL || at == a || at[1] == '\0') {
		snprintf(why, wlen, "\"%s\" is not a mail address (local@domain, e.g. "
		    "root@localhost)", a);
		return false;
	}
	for (p = a; p < at; p++) {
		bool dot = *p == '.';
		if (dot ? (p == a || p + 1 == at || p[1] == '.') :
		    !(isalnum((unsigned char)*p) || strchr(local_extra, *p)))
			goto bad;
	}
	for (p = at + 1; *p; p++) {
		if (*p == '.') {
			if (label == 0 || p[-1] == '-' || p[1] == '\0')
				goto bad;
			label = 0;
		} else if (isalnum((unsigned char)*p) || (*p == '-' && label > 0)) {
			if (++label > 63)
				goto bad;
		} else {
			goto bad;
		}
	}
	if (p[-1] == '-')
		goto bad;
	return true;
bad:
	snprintf(why, wlen, "bad mail address \"%s\" (local@domain, letters, digits "
	    "and the usual punctuation; no spaces, quotes or brackets)", a);
	return false;
}

static int
take_mailto(void *arg, char *item, char *why, size_t wlen)
{
	struct notify_config *n = arg;

	if (!address_ok(item, why, wlen)) {
		free(item);
		return -1;
	}
	if (n->nmailto == NOTIFY_MAILTO_MAX) {
		free(item);
		snprintf(why, wlen, "more than %d addresses", NOTIFY_MAILTO_MAX);
		return -1;
	}
	n->mailto[n->nmailto++] = item;
	return 0;
}

/* set_mailto - "a@b, c@d" into cfg->notify.mailto */
static int
set_mailto(struct config *cfg, const char *value, char *why, size_t wlen)
{
	struct notify_config *n = &cfg->notify;

	for (size_t i = 0; i < n->nmailto; i++)
		free(n->mailto[i]);
	n->nmailto = 0;
	if (each_item(value, take_mailto, n, why, wlen) != 0)
		return -1;
	if (n->nmailto == 0) {
		snprintf(why, wlen, "no address given");
		return -1;
	}
	return 0;
}

/* split_hostport - "host:port" or "[v6]:port": host into buf, the port */
static int
split_hostport(const char *v, char *host, size_t hlen, uint16_t *port, bool *literal6)
{
	const char *colon;
	size_t len;
	uint64_t n;

	*literal6 = v[0] == '[';
	if (*literal6) {
		const char *close = strchr(v, ']');
		if (close == NULL || close[1] != ':')
			return -1;
		len = (size_t)(close - v - 1);
		v++;
		colon = close + 1;
	} else {
		if ((colon = strrchr(v, ':')) == NULL)
			return -1;
		len = (size_t)(colon - v);
	}
	if (len == 0 || len >= hlen)
		return -1;
	memcpy(host, v, len);
	host[len] = '\0';
	if (cfg_parse_uint(colon + 1, 65535, &n) != 0 || n == 0)
		return -1;
	*port = (uint16_t)n;
	return 0;
}

/* hostport_ok - an IPv4 address, a [bracketed] IPv6 address or a host
 * name, then a port; listen: an address only (it is bound) */
static bool
hostport_ok(const char *v, bool listen, char *why, size_t wlen)
{
	char host[256];
	unsigned char bin[16];
	uint16_t port;
	bool v6, name = true;

	if (split_hostport(v, host, sizeof(host), &port, &v6) != 0)
		goto bad;
	if (v6) {
		if (inet_pton(AF_INET6, host, bin) == 1)
			return true;
		goto bad;
	}
	if (inet_pton(AF_INET, host, bin) == 1)
		return true;
	for (const char *p = host; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.')
			name = false;
	if (!listen && name)
		return true;
bad:
	snprintf(why, wlen, listen ? "expected IP:PORT (e.g. 127.0.0.1:9947 or [::1]:9947)"
	    : "expected HOST:PORT (e.g. 127.0.0.1:25 or [::1]:25)");
	return false;
}

/* exec_ok - an executable regular file, trusted as the config is (the
 * hook runs it as the run user: cfgfile.h) */
static bool
exec_ok(const char *path, char *why, size_t wlen)
{
	struct stat sb;
	struct diag d;

	if (stat(path, &sb) != 0) {
		snprintf(why, wlen, "%s: %s", path, strerror(errno));
		return false;
	}
	if (!S_ISREG(sb.st_mode) || access(path, X_OK) != 0 ||
	    (sb.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH)) == 0) {
		snprintf(why, wlen, "%s: not an executable file", path);
		return false;
	}
	diag_init(&d);
	if (cfgfile_check_trusted(path, &d) != 0) {
		snprintf(why, wlen, "%s", d.n ? d.msgs[0] : path);
		diag_free(&d);
		return false;
	}
	diag_free(&d);
	return true;
}

/* node_name_ok - a node name: letters, digits, '.', '_', '-' (a host name
 * fits); it is shown in status and logs and keys the node's rows */
static bool
node_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > CONFIG_NODE_MAX)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' || *s == '-'))
			return false;
	return true;
}

/* set_key - parse value into the member k describes; why says what is wrong */
static int
set_key(struct config *cfg, const char *base, const struct config_key *k,
    const char *value, char *why, size_t wlen)
{
	char **sp;
	char *v = NULL;

	switch (k->kind) {
	case KEY_LOGS:
		return set_logs(cfg, base, value, why, wlen);
	case KEY_PORTS:
		return set_ports(cfg, value, why, wlen);
	case KEY_MAILTO:
		return set_mailto(cfg, value, why, wlen);
	case KEY_DURATION: {
		int64_t secs;
		if (cfg_parse_duration(value, &secs) != 0 || secs < 1 || secs > 86400) {
			snprintf(why, wlen, "expected a duration from 1s to 1d (e.g. 30s, 10m, 1h)");
			return -1;
		}
		*(int64_t *)(void *)((char *)cfg + k->offset) = secs;
		return 0;
	}
	case KEY_ADDRESS:
		if (!address_ok(value, why, wlen))
			return -1;
		v = strdup(value);
		break;
	case KEY_HOSTPORT:
	case KEY_LISTEN:
		if (!hostport_ok(value, k->kind == KEY_LISTEN, why, wlen))
			return -1;
		v = strdup(value);
		break;
	case KEY_OUTFILE: {
		struct stat sb;
		char *slash;

		if (*value == '\0' || (v = cfg_resolve_path(base, value)) == NULL) {
			snprintf(why, wlen, *value ? "out of memory" : "empty path");
			return -1;
		}
		/* The directory is the admin's (node_exporter's); the file
		 * and its temporary twin are made in it. */
		slash = strrchr(v, '/');
		if (slash != NULL && slash != v) {
			*slash = '\0';
			const char *bad = stat(v, &sb) != 0 ? strerror(errno) :
			    !S_ISDIR(sb.st_mode) ? "not a directory" : NULL;

			if (bad != NULL) {
				snprintf(why, wlen, "directory %s: %s", v, bad);
				free(v);
				return -1;
			}
			*slash = '/';
		}
		if (slash != NULL && slash[1] == '\0') {
			snprintf(why, wlen, "%s: a file name, not a directory", v);
			free(v);
			return -1;
		}
		break;
	}
	case KEY_EXEC:
		if (*value == '\0') {
			snprintf(why, wlen, "empty path");
			return -1;
		}
		if ((v = cfg_resolve_path(base, value)) != NULL && !exec_ok(v, why, wlen)) {
			free(v);
			return -1;
		}
		break;
	case KEY_UINT: {
		uint64_t n;
		if (cfg_parse_uint(value, 10000000, &n) != 0 || n == 0) {
			snprintf(why, wlen, "expected a number from 1 to 10000000");
			return -1;
		}
		*(uint64_t *)(void *)((char *)cfg + k->offset) = n;
		return 0;
	}
	case KEY_MAP:
		if (strncmp(value, "texthash:", 9) == 0) {
			snprintf(why, wlen, "texthash: maps are only read when Postfix "
			    "reloads; use sqlite: (live) or hash: (postmap)");
			return -1;
		}
		if (strncmp(value, "sqlite:", 7) != 0 && strncmp(value, "hash:", 5) != 0) {
			snprintf(why, wlen, "expected sqlite:/path or hash:/path");
			return -1;
		}
		if (strchr(value, ':')[1] != '/') {
			snprintf(why, wlen, "map path must be absolute (Postfix reads it)");
			return -1;
		}
		v = strdup(value);
		break;
	case KEY_JOURNAL:
		if (journal_check_source(value, why, wlen) != 0)
			return -1;
		v = strdup(value);
		break;
	case KEY_DB:
		/* A URI (postgresql://...) is the store's business, kept as
		 * given; anything else is a file path. */
		if (strstr(value, "://") != NULL) {
			v = strdup(value);
			break;
		}
		/* fall through */
	case KEY_PATH:
		if (*value == '\0') {
			snprintf(why, wlen, "empty path");
			return -1;
		}
		v = cfg_resolve_path(base, value);
		break;
	case KEY_NODE:
		if (!node_name_ok(value)) {
			snprintf(why, wlen, "expected 1 to %d letters, digits, '.', '_' or '-'",
			    CONFIG_NODE_MAX);
			return -1;
		}
		v = strdup(value);
		break;
	case KEY_STRING:
		if (*value == '\0') {
			snprintf(why, wlen, "empty value");
			return -1;
		}
		v = strdup(value);
		break;
	}
	if (v == NULL) {
		snprintf(why, wlen, "out of memory");
		return -1;
	}
	sp = str_member(cfg, k);
	free(*sp);
	*sp = v;
	return 0;
}

static int
config_handler(void *arg, const char *file, const char *section, int section_line,
    const char *key, const char *value, int line)
{
	struct load_ctx *c = arg;
	bool section_known = false;
	char why[600];

	(void)section_line;
	for (size_t i = 0; i < NKEYS; i++) {
		const struct config_key *k = &config_keys[i];

		if (strcmp(k->section, section) != 0)
			continue;
		section_known = true;
		if (strcmp(k->name, key) != 0)
			continue;
		if (c->seen[i]) {
			diag_add(c->d, file, line, "[%s] %s given twice", section, key);
			return -1;
		}
		c->seen[i] = true;
		if (k->kind == KEY_LOGS)
			c->log_line = line;
		why[0] = '\0';
		if (set_key(c->cfg, c->base, k, value, why, sizeof(why)) != 0) {
			diag_add(c->d, file, line, "[%s] %s: %s", section, key,
			    why[0] ? why : "out of memory");
			return -1;
		}
		return 0;
	}
	if (!section_known)
		diag_add(c->d, file, line, "unknown section [%s]", section);
	else
		diag_add(c->d, file, line, "unknown key \"%s\" in [%s]", key, section);
	return -1;
}

/*
 * resolve_log_auto - "auto" becomes log_auto_file if that exists (stat:
 * any answer but "no such file" counts, so a permission problem shows as
 * an error reading the file, not as a quiet switch to the journal), else
 * log_auto_journal.  Naming either beside "auto" is an error whatever the
 * choice: the same lines would be read twice.
 */
static int
resolve_log_auto(struct config *cfg, char *why, size_t wlen)
{
	const char *choice;
	struct stat st;
	char *v;

	if (cfg->log_auto < 0)
		return 0;
	for (size_t i = 0; i < cfg->nlogs; i++) {
		if (strcmp(cfg->logs[i], cfg->log_auto_file) == 0 ||
		    strcmp(cfg->logs[i], cfg->log_auto_journal) == 0) {
			snprintf(why, wlen, "\"auto\" chooses between %s and %s: %s "
			    "would be read twice", cfg->log_auto_file,
			    cfg->log_auto_journal, cfg->logs[i]);
			return -1;
		}
	}
	if (stat(cfg->log_auto_file, &st) == 0 || (errno != ENOENT && errno != ENOTDIR))
		choice = cfg->log_auto_file;
	else
		choice = cfg->log_auto_journal;
	if ((v = strdup(choice)) == NULL) {
		snprintf(why, wlen, "out of memory");
		return -1;
	}
	free(cfg->logs[cfg->log_auto]);
	cfg->logs[cfg->log_auto] = v;
	return 0;
}

/* default_node - the host name, as the node's name */
static int
default_node(struct config *cfg)
{
	char host[256];

	if (gethostname(host, sizeof(host)) != 0)
		return -1;
	host[sizeof(host) - 1] = '\0';
	if (!node_name_ok(host))
		return -1;
	return (cfg->node = strdup(host)) == NULL ? -1 : 0;
}

/* sync_notify_node - the notifier's copy of this node's name ([mailjail]
 * node, or the host name by default: default_node), taken once the file
 * is read: notifications carry it, metric counters are saved under it */
static int
sync_notify_node(struct config *cfg)
{
	free(cfg->notify.node);
	return (cfg->notify.node = strdup(cfg->node)) == NULL ? -1 : 0;
}

/* set_defaults - every key's default, "auto" not resolved yet */
static int
set_defaults(struct config *cfg)
{
	char why[600];

	memset(cfg, 0, sizeof(*cfg));
	cfg->log_auto = -1;
	for (size_t i = 0; i < NKEYS; i++) {
		if (config_keys[i].dflt == NULL)
			continue;
		if (set_key(cfg, NULL, &config_keys[i], config_keys[i].dflt, why,
		    sizeof(why)) != 0) {
			config_free(cfg);
			return -1;
		}
	}
	/* A host name a node name cannot be: the fleet's node lock then
	 * says so if two nodes both fall back to this. */
	if (default_node(cfg) != 0 && (cfg->node = strdup("mailjail")) == NULL) {
		config_free(cfg);
		return -1;
	}
	return 0;
}

int
config_defaults(struct config *cfg)
{
	char why[256];

	if (set_defaults(cfg) != 0)
		return -1;
	if (resolve_log_auto(cfg, why, sizeof(why)) != 0 || sync_notify_node(cfg) != 0) {
		config_free(cfg);
		return -1;
	}
	return 0;
}

int
config_load(const char *path, struct config *cfg, struct diag *d)
{
	struct load_ctx c = { .cfg = cfg, .d = d, .base = path };
	size_t before = d->n;
	char why[512];

	if (set_defaults(cfg) != 0) {
		diag_add(d, path, 0, "out of memory");
		return -1;
	}
	if ((cfg->path = strdup(path)) == NULL) {
		diag_add(d, path, 0, "out of memory");
		return -1;
	}
	if (cfgfile_parse(path, config_handler, &c, d) != 0 || d->n > before)
		return -1;
	if (resolve_log_auto(cfg, why, sizeof(why)) != 0) {
		diag_add(d, path, c.log_line, "[mailjail] log: %s", why);
		return -1;
	}
	if (sync_notify_node(cfg) != 0) {
		diag_add(d, path, 0, "out of memory");
		return -1;
	}
	return 0;
}

int
config_describe_log_auto(const struct config *cfg, char *buf, size_t len)
{
	const char *chosen;

	if (cfg->log_auto < 0)
		return 0;
	chosen = cfg->logs[cfg->log_auto];
	if (journal_is_source(chosen))
		snprintf(buf, len, "log = auto: %s (no %s: Postfix logs to the journal "
		    "only)", chosen, cfg->log_auto_file);
	else
		snprintf(buf, len, "log = auto: %s (it exists; without it: %s)", chosen,
		    cfg->log_auto_journal);
	return 1;
}

void
config_free(struct config *cfg)
{
	for (size_t i = 0; i < cfg->nlogs; i++)
		free(cfg->logs[i]);
	for (size_t i = 0; i < cfg->notify.nmailto; i++)
		free(cfg->notify.mailto[i]);
	for (size_t i = 0; i < NKEYS; i++) {
		const struct config_key *k = &config_keys[i];
		switch (k->kind) {
		case KEY_LOGS: case KEY_PORTS: case KEY_UINT: case KEY_MAILTO: case KEY_DURATION:
			break;   /* not one string */
		default:
			free(*str_member(cfg, k));
		}
	}
	free(cfg->notify.node);
	free(cfg->path);
	memset(cfg, 0, sizeof(*cfg));
	cfg->log_auto = -1;
}

void
config_nft_options(const struct config *cfg, struct nft_options *o)
{
	memset(o, 0, sizeof(*o));
	o->table = cfg->nft_table;
	o->set_v4 = cfg->nft_set_v4;
	o->set_v6 = cfg->nft_set_v6;
	o->chain = cfg->nft_chain;
	memcpy(o->ports, cfg->nft_ports, sizeof(o->ports));
	o->nports = cfg->nft_nports;
}
