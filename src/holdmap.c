/*
 * holdmap - the front of the Postfix access maps mailjail writes and
 * Postfix reads (HOLD for accounts, reject for client IPs).  See holdmap.h
 * for the kinds of map and the file layout.  This file chooses a backend by
 * the spec's type (holdmap_sqlite.c, holdmap_hash.c: a table of functions,
 * see holdmap_impl.h), checks what every map refuses, folds keys as Postfix
 * does, and answers whether Postfix can read a map.  The hold-queue release
 * is holdqueue.c.
 *
 * struct holdmap owns its backend state and its path string; holdmap_close
 * frees all of it.
 *
 * SECURITY: keys and values are text from the mail log, i.e. attacker
 * influenced.  Empty keys and values with control characters (a value is
 * one line of a map) are refused here for every backend; a backend refuses
 * what only it cannot hold (see holdmap_hash.c).
 */
#include "holdmap.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "holdmap_impl.h"
#include "log.h"

struct holdmap {
	const struct holdmap_backend *be;
	void *state;
	char *path;             /* for messages */
};

static const struct holdmap_backend *const backends[] = {
	&holdmap_sqlite_backend,
	&holdmap_hash_backend,
};
#define NBACKENDS (sizeof(backends) / sizeof(backends[0]))

/* has_ctl - any control character (a value with one would break a line) */
static bool
has_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/* path_ok - absolute, and usable in main.cf and a .cf file as is */
static bool
path_ok(const char *p)
{
	if (p[0] != '/')
		return false;
	for (; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == ',')
			return false;
	return true;
}

/*
 * parse_spec - the backend named by "type:/path"; *pathp points into spec.
 * texthash: is refused here so every entry point gives the same reason.
 */
static const struct holdmap_backend *
parse_spec(const char *spec, enum holdmap_kind kind, const char **pathp,
    char *err, size_t errlen)
{
	const struct holdmap_backend *be = NULL;

	if (kind != HOLDMAP_HOLD && kind != HOLDMAP_REJECT) {
		holdmap_seterr(err, errlen, "%s: bad map kind", spec);
		return NULL;
	}
	for (size_t i = 0; i < NBACKENDS && be == NULL; i++) {
		size_t n = strlen(backends[i]->type);

		if (strncmp(spec, backends[i]->type, n) == 0
		    && spec[n] == ':') {
			be = backends[i];
			*pathp = spec + n + 1;
		}
	}
	if (be == NULL && strncmp(spec, "texthash:", 9) == 0) {
		holdmap_seterr(err, errlen, "%s: texthash: maps are read once "
		    "when a Postfix process starts, so a hold would need a "
		    "\"postfix reload\" to take effect; use sqlite: or hash:",
		    spec);
		return NULL;
	}
	if (be == NULL) {
		holdmap_seterr(err, errlen, "%s: unsupported map type (use "
		    "sqlite:/path or hash:/path)", spec);
		return NULL;
	}
	if (!path_ok(*pathp)) {
		holdmap_seterr(err, errlen, "%s: the path must be absolute, "
		    "without spaces, commas or control characters", spec);
		return NULL;
	}
	return be;
}

/* holdmap_open - choose the backend, create or load the map */
int
holdmap_open(struct holdmap **out, const char *spec, enum holdmap_kind kind,
    const char *postfix_config_dir, char *err, size_t errlen)
{
	const struct holdmap_backend *be;
	struct holdmap *m = NULL;
	const char *path;
	int rc = -1;

	*out = NULL;
	if ((be = parse_spec(spec, kind, &path, err, errlen)) == NULL)
		goto out;
	if ((m = calloc(1, sizeof(*m))) == NULL
	    || (m->path = strdup(path)) == NULL) {
		holdmap_seterr(err, errlen, "%s: out of memory", spec);
		goto out;
	}
	if (be->open(&m->state, path, kind, postfix_config_dir, err, errlen)
	    != 0)
		goto out;
	m->be = be;
	*out = m;
	m = NULL;
	rc = 0;
out:
	holdmap_close(m);
	return rc;
}

/* holdmap_close - free everything; pending hash: changes are dropped */
void
holdmap_close(struct holdmap *m)
{
	if (m == NULL)
		return;
	if (m->be != NULL)
		m->be->close(m->state);
	free(m->path);
	free(m);
}

size_t
holdmap_files(const struct holdmap *m, const char *out[HOLDMAP_FILES_MAX])
{
	return m->be->files(m->state, out);
}

/* holdmap_add - add or replace key until expires_at */
int
holdmap_add(struct holdmap *m, const char *key, const char *value,
    int64_t expires_at)
{
	char *k;
	int rc;

	if (*key == '\0') {
		log_warnx("%s: refusing an empty key", m->path);
		return -1;
	}
	if (*value == '\0' || has_ctl(value)) {
		log_warnx("%s: refusing an empty value or one with control "
		    "characters", m->path);
		return -1;
	}
	if ((k = holdmap_fold_key(key)) == NULL) {
		log_warnx("%s: out of memory", m->path);
		return -1;
	}
	rc = m->be->add(m->state, k, value, expires_at);
	free(k);
	return rc;
}

/* holdmap_remove - 1 removed, 0 absent, -1 error */
int
holdmap_remove(struct holdmap *m, const char *key)
{
	char *k;
	int rc;

	if ((k = holdmap_fold_key(key)) == NULL) {
		log_warnx("%s: out of memory", m->path);
		return -1;
	}
	rc = m->be->remove(m->state, k);
	free(k);
	return rc;
}

/* holdmap_expire - drop entries with expires_at <= now */
int
holdmap_expire(struct holdmap *m, int64_t now)
{
	return m->be->expire(m->state, now);
}

/* holdmap_sync - make pending changes visible (sqlite: they already are) */
int
holdmap_sync(struct holdmap *m)
{
	return m->be->sync != NULL ? m->be->sync(m->state) : 0;
}

/* ---------------------------------------------------------------- */
/* can Postfix read it?                                              */
/* ---------------------------------------------------------------- */

struct reader {
	const char *name;
	uid_t uid;
	gid_t groups[64];
	int ngroups;
	bool known;             /* false: no user postfix; test "other" bits */
};

static void
get_reader(struct reader *r)
{
	struct passwd *pw;

	memset(r, 0, sizeof(*r));
	r->name = "postfix";
	errno = 0;
	if ((pw = getpwnam("postfix")) == NULL)
		return;
	r->known = true;
	r->uid = pw->pw_uid;
	r->ngroups = (int)(sizeof(r->groups) / sizeof(r->groups[0]));
	if (getgrouplist("postfix", pw->pw_gid, r->groups, &r->ngroups) == -1) {
		/* Too many groups: the primary one is what matters here. */
		r->groups[0] = pw->pw_gid;
		r->ngroups = 1;
	}
}

/* may - does r get `bit` (4 read, 1 search) on sb?  (ACLs not looked at) */
static bool
may(const struct reader *r, const struct stat *sb, unsigned bit)
{
	if (r->known && r->uid == 0)
		return true;
	if (r->known && sb->st_uid == r->uid)
		return (sb->st_mode >> 6) & bit;
	for (int i = 0; r->known && i < r->ngroups; i++)
		if (sb->st_gid == r->groups[i])
			return (sb->st_mode >> 3) & bit;
	return sb->st_mode & bit;
}

/* check_one - every directory on the way searchable, the file readable */
static int
check_one(const struct reader *r, const char *file, char *err, size_t errlen)
{
	char *p = strdup(file);
	struct stat sb;
	char *s;
	int rc = -1;
	const char *who = r->known ? "user postfix" : "others (no user postfix "
	    "here)";

	if (p == NULL) {
		holdmap_seterr(err, errlen, "%s: out of memory", file);
		goto out;
	}
	/* Each directory on the way, "/" first: p is cut at each slash. */
	for (s = p; (s = strchr(s, '/')) != NULL; s++) {
		const char *dir = s == p ? "/" : p;

		*s = '\0';
		if (stat(dir, &sb) == -1) {
			holdmap_seterr(err, errlen, "%s: %s", dir,
			    strerror(errno));
			goto out;
		}
		if (!S_ISDIR(sb.st_mode)) {
			holdmap_seterr(err, errlen, "%s: not a directory", dir);
			goto out;
		}
		if (!may(r, &sb, 1)) {
			holdmap_seterr(err, errlen, "directory %s (mode %04o, "
			    "owner %u:%u): %s cannot enter it (no x "
			    "permission), so Postfix cannot open %s", dir,
			    (unsigned)(sb.st_mode & 07777), (unsigned)sb.st_uid,
			    (unsigned)sb.st_gid, who, file);
			goto out;
		}
		*s = '/';
	}
	if (stat(file, &sb) == -1) {
		holdmap_seterr(err, errlen, "%s: %s (Postfix cannot read a "
		    "missing map)", file, strerror(errno));
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		holdmap_seterr(err, errlen, "%s: not a regular file", file);
		goto out;
	}
	if (!may(r, &sb, 4)) {
		holdmap_seterr(err, errlen, "%s (mode %04o, owner %u:%u): %s "
		    "cannot read it; chmod 0644 it", file,
		    (unsigned)(sb.st_mode & 07777), (unsigned)sb.st_uid,
		    (unsigned)sb.st_gid, who);
		goto out;
	}
	rc = 0;
out:
	free(p);
	return rc;
}

/* holdmap_check_readable - can user postfix read every file of the map? */
int
holdmap_check_readable(const char *spec, enum holdmap_kind kind, char *err,
    size_t errlen)
{
	const struct holdmap_backend *be;
	char *files[HOLDMAP_READS_MAX];
	struct reader r;
	const char *path;
	int n = 0, rc = -1;

	if ((be = parse_spec(spec, kind, &path, err, errlen)) == NULL)
		return -1;
	if ((n = be->postfix_reads(path, kind, files)) < 0) {
		holdmap_seterr(err, errlen, "out of memory");
		return -1;
	}
	get_reader(&r);
	for (int i = 0; i < n; i++)
		if (check_one(&r, files[i], err, errlen) == -1)
			goto out;
	rc = 0;
out:
	for (int i = 0; i < n; i++)
		free(files[i]);
	return rc;
}

/* holdmap_postfix_name - what goes after check_sasl_access in main.cf */
const char *
holdmap_postfix_name(const char *spec, enum holdmap_kind kind, char *buf,
    size_t len)
{
	const struct holdmap_backend *be;
	const char *path;

	if ((be = parse_spec(spec, kind, &path, NULL, 0)) == NULL)
		return NULL;
	return be->postfix_name(path, kind, buf, len);
}
