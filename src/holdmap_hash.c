/*
 * holdmap_hash - the hash: map backend: a text source "key value" per line,
 * written atomically and compiled with postmap(1) into path.db, which
 * Postfix reads; expiry times live in a sidecar "path.expires" ("key epoch"
 * per line, written the same way), since a hash: map cannot filter by
 * time.  Changes are made in memory and reach Postfix at sync.
 *
 * struct hash_map owns the whole map as an entry array (it is rewritten
 * from memory at each sync) and its path strings.
 *
 * SECURITY: a key that could change the shape of the source file
 * (whitespace, control characters, quotes, '\', '#', empty) is refused;
 * values come checked by the front (no control characters).
 */
#include "holdmap_impl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"

#define POSTMAP_PATH    "/usr/sbin/postmap"

struct entry {
	char *key;
	char *value;
	int64_t expires_at;
};

struct hash_map {
	char *path;             /* the text source */
	char *exppath;          /* the expiry sidecar */
	char *hashdb;           /* path.db, what postmap makes */
	char *confdir;          /* Postfix config dir for postmap, or NULL */
	struct entry *ents;
	size_t nents, cap;
	bool dirty;
};

/* hash_key_ok - can this key go into a postmap source file as one entry? */
static bool
hash_key_ok(const char *key)
{
	if (*key == '\0')
		return false;
	for (const char *p = key; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (c <= 0x20 || c == 0x7f || c == '"' || c == '\'' || c == '#'
		    || c == '\\')
			return false;
	}
	return true;
}

static struct entry *
find_entry(struct hash_map *m, const char *key)
{
	for (size_t i = 0; i < m->nents; i++)
		if (strcmp(m->ents[i].key, key) == 0)
			return &m->ents[i];
	return NULL;
}

static void
drop_entry(struct hash_map *m, size_t i)
{
	free(m->ents[i].key);
	free(m->ents[i].value);
	m->ents[i] = m->ents[--m->nents];
}

/* put_entry - add or replace; takes ownership of key (not of value) */
static int
put_entry(struct hash_map *m, char *key, const char *value, int64_t exp)
{
	struct entry *e = find_entry(m, key);
	char *v = strdup(value);

	if (v == NULL) {
		free(key);
		return -1;
	}
	if (e != NULL) {
		free(key);
		free(e->value);
		e->value = v;
		e->expires_at = exp;
		return 0;
	}
	if (m->nents == m->cap) {
		size_t ncap = m->cap ? m->cap * 2 : 16;
		struct entry *ne = reallocarray(m->ents, ncap, sizeof(*ne));

		if (ne == NULL) {
			free(key);
			free(v);
			return -1;
		}
		m->ents = ne;
		m->cap = ncap;
	}
	m->ents[m->nents].key = key;
	m->ents[m->nents].value = v;
	m->ents[m->nents].expires_at = exp;
	m->nents++;
	return 0;
}

/*
 * load_hash - read back the text source and the expiry sidecar, so a
 * restart keeps the map.  The sidecar is written before the source (see
 * sync_hash): an entry found in the source without an expiry is left over
 * from an interrupted removal, so it gets "expired now" -- the daemon
 * re-adds every active hold from its own database at start anyway.
 */
static int
load_hash(struct hash_map *m, char *err, size_t errlen)
{
	FILE *fp = NULL;
	char *line = NULL, *sp;
	size_t cap = 0;
	ssize_t n;
	int rc = -1;
	int64_t now = (int64_t)time(NULL);
	const int64_t unknown = INT64_MIN;

	if ((fp = fopen(m->path, "re")) == NULL) {
		if (errno == ENOENT) {
			m->dirty = true;        /* create it at the first sync */
			rc = 0;
		} else
			holdmap_seterr(err, errlen, "%s: %s", m->path,
			    strerror(errno));
		goto out;
	}
	while ((n = getline(&line, &cap, fp)) != -1) {
		char *key;

		if (n > 0 && line[n - 1] == '\n')
			line[--n] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		if ((sp = strchr(line, ' ')) == NULL) {
			log_warnx("%s: ignoring line without a value", m->path);
			continue;
		}
		*sp = '\0';
		if (!hash_key_ok(line)) {
			log_warnx("%s: ignoring a malformed key", m->path);
			continue;
		}
		if ((key = holdmap_fold_key(line)) == NULL
		    || put_entry(m, key, sp + 1, unknown) == -1) {
			holdmap_seterr(err, errlen, "%s: out of memory",
			    m->path);
			goto out;
		}
	}
	if (ferror(fp)) {
		holdmap_seterr(err, errlen, "%s: %s", m->path,
		    strerror(errno));
		goto out;
	}
	fclose(fp);
	if ((fp = fopen(m->exppath, "re")) == NULL) {
		if (errno != ENOENT) {
			holdmap_seterr(err, errlen, "%s: %s", m->exppath,
			    strerror(errno));
			goto out;
		}
	} else {
		while ((n = getline(&line, &cap, fp)) != -1) {
			struct entry *e;
			char *end;
			long long v;

			if ((sp = strchr(line, ' ')) == NULL)
				continue;
			*sp = '\0';
			errno = 0;
			v = strtoll(sp + 1, &end, 10);
			if (errno != 0 || end == sp + 1
			    || (*end != '\n' && *end != '\0'))
				continue;
			if ((e = find_entry(m, line)) != NULL)
				e->expires_at = v;
		}
		if (ferror(fp)) {
			holdmap_seterr(err, errlen, "%s: %s", m->exppath,
			    strerror(errno));
			goto out;
		}
	}
	for (size_t i = 0; i < m->nents; i++)
		if (m->ents[i].expires_at == unknown) {
			log_warnx("%s: %s has no expiry in %s; it expires now",
			    m->path, m->ents[i].key, m->exppath);
			m->ents[i].expires_at = now;
		}
	rc = 0;
out:
	if (fp != NULL)
		fclose(fp);
	free(line);
	return rc;
}

/* postmap - compile the text source into path.db */
static int
postmap(struct hash_map *m)
{
	char *spec = holdmap_asprintf("hash:%s", m->path);
	const char *args[] = { spec, NULL };

	if (spec == NULL) {
		log_warnx("%s: out of memory", m->path);
		return -1;
	}
	if (holdmap_run_postfix(POSTMAP_PATH, m->confdir, args, NULL, 0,
	    NULL) != 0) {
		log_warnx("%s: postmap failed; Postfix still sees the previous "
		    "map", m->path);
		free(spec);
		return -1;
	}
	free(spec);
	if (chmod(m->hashdb, 0644) == -1) {
		log_warn("chmod %s", m->hashdb);
		return -1;
	}
	return 0;
}

/* add_line - "a b\n" to t */
static bool
add_line(struct holdmap_text *t, const char *a, const char *b)
{
	return holdmap_text_add(t, a, strlen(a))
	    && holdmap_text_add(t, " ", 1)
	    && holdmap_text_add(t, b, strlen(b))
	    && holdmap_text_add(t, "\n", 1);
}

/*
 * sync_hash - sidecar first, then source, then postmap.  The order makes a
 * crash in between harmless: see load_hash.
 */
static int
sync_hash(struct hash_map *m)
{
	struct holdmap_text src = { 0 }, exp = { 0 };
	char err[512], num[32];
	const char *hdr = "# Written by mailjail; edits are lost at the next "
	    "change.  Expiry times: see the .expires file.\n";
	int rc = -1;

	if (!holdmap_text_add(&src, hdr, strlen(hdr))
	    || !holdmap_text_add(&exp, "", 0))
		goto nomem;
	for (size_t i = 0; i < m->nents; i++) {
		struct entry *e = &m->ents[i];

		snprintf(num, sizeof(num), "%" PRId64, e->expires_at);
		if (!add_line(&src, e->key, e->value)
		    || !add_line(&exp, e->key, num))
			goto nomem;
	}
	if (holdmap_write_atomic(m->exppath, exp.buf, exp.len, 0644, err,
	    sizeof(err)) == -1
	    || holdmap_write_atomic(m->path, src.buf, src.len, 0644, err,
	    sizeof(err)) == -1) {
		log_warnx("%s", err);
		goto out;
	}
	if (postmap(m) == -1)
		goto out;
	m->dirty = false;
	rc = 0;
	goto out;
nomem:
	log_warnx("%s: out of memory", m->path);
out:
	free(src.buf);
	free(exp.buf);
	return rc;
}

/* hash_close - free everything; pending changes are dropped */
static void
hash_close(void *state)
{
	struct hash_map *m = state;

	if (m == NULL)
		return;
	for (size_t i = 0; i < m->nents; i++) {
		free(m->ents[i].key);
		free(m->ents[i].value);
	}
	free(m->ents);
	free(m->path);
	free(m->exppath);
	free(m->hashdb);
	free(m->confdir);
	free(m);
}

/* hash_open - load the map left by the last run; make path.db exist */
static int
hash_open(void **state, const char *path, enum holdmap_kind kind,
    const char *confdir, char *err, size_t errlen)
{
	struct hash_map *m;
	struct stat sb;

	(void)kind;             /* one file per map: nothing differs by kind */
	*state = NULL;
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		holdmap_seterr(err, errlen, "%s: out of memory", path);
		return -1;
	}
	if ((m->path = strdup(path)) == NULL
	    || (confdir != NULL && (m->confdir = strdup(confdir)) == NULL)
	    || (m->exppath = holdmap_asprintf("%s.expires", path)) == NULL
	    || (m->hashdb = holdmap_asprintf("%s.db", path)) == NULL) {
		holdmap_seterr(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	if (load_hash(m, err, errlen) == -1)
		goto fail;
	/* Postfix reads path.db: make sure it exists from the start. */
	if (stat(m->hashdb, &sb) == -1)
		m->dirty = true;
	if (m->dirty && sync_hash(m) == -1) {
		holdmap_seterr(err, errlen, "hash:%s: cannot write or compile "
		    "the map (see the messages above)", path);
		goto fail;
	}
	*state = m;
	return 0;
fail:
	hash_close(m);
	return -1;
}

/* hash_add - in memory until the next sync */
static int
hash_add(void *state, const char *key, const char *value, int64_t expires_at)
{
	struct hash_map *m = state;
	char *k;

	if (!hash_key_ok(key)) {
		/* Not echoing the key: it may hold the very bytes refused. */
		log_warnx("%s: refusing a key with whitespace, control "
		    "characters, quotes, '\\' or '#' (it could add a second "
		    "entry to a hash: map; use a sqlite: map)", m->path);
		return -1;
	}
	if ((k = strdup(key)) == NULL || put_entry(m, k, value, expires_at)
	    == -1) {
		log_warnx("%s: out of memory", m->path);
		return -1;
	}
	m->dirty = true;
	return 0;
}

/* hash_remove - 1 removed, 0 absent */
static int
hash_remove(void *state, const char *key)
{
	struct hash_map *m = state;

	for (size_t i = 0; i < m->nents; i++) {
		if (strcmp(m->ents[i].key, key) == 0) {
			drop_entry(m, i);
			m->dirty = true;
			return 1;
		}
	}
	return 0;
}

/* hash_expire - drop entries with expires_at <= now; how many */
static int
hash_expire(void *state, int64_t now)
{
	struct hash_map *m = state;
	int n = 0;

	for (size_t i = 0; i < m->nents;) {
		if (m->ents[i].expires_at <= now) {
			drop_entry(m, i);
			n++;
		} else
			i++;
	}
	if (n > 0)
		m->dirty = true;
	return n;
}

/* hash_sync - rewrite and postmap, if anything changed */
static int
hash_sync(void *state)
{
	struct hash_map *m = state;

	return m->dirty ? sync_hash(m) : 0;
}

static size_t
hash_files(const void *state, const char *out[HOLDMAP_FILES_MAX])
{
	const struct hash_map *m = state;

	out[0] = m->path;
	out[1] = m->exppath;
	out[2] = m->hashdb;
	return 3;
}

/* hash_postfix_reads - Postfix opens only what postmap made */
static int
hash_postfix_reads(const char *path, enum holdmap_kind kind,
    char *out[HOLDMAP_READS_MAX])
{
	(void)kind;
	return (out[0] = holdmap_asprintf("%s.db", path)) == NULL ? -1 : 1;
}

static const char *
hash_postfix_name(const char *path, enum holdmap_kind kind, char *buf,
    size_t len)
{
	int n = snprintf(buf, len, "hash:%s", path);

	(void)kind;
	return n < 0 || (size_t)n >= len ? NULL : buf;
}

const struct holdmap_backend holdmap_hash_backend = {
	.type = "hash",
	.open = hash_open,
	.close = hash_close,
	.add = hash_add,
	.remove = hash_remove,
	.expire = hash_expire,
	.sync = hash_sync,
	.files = hash_files,
	.postfix_reads = hash_postfix_reads,
	.postfix_name = hash_postfix_name,
};
