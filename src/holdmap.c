/*
 * holdmap - the Postfix access maps mailjail writes.  See holdmap.h.
 *
 * Postfix folds the lookup key of an access table to lower case
 * (DICT_FLAG_FOLD_FIX) before it queries sqlite: or hash: tables, so keys
 * are stored in lower case too.  For sqlite: the query Postfix runs also
 * checks expires_at, so an entry stops matching on time even when mailjail
 * is down; for hash: the expiry times live in a sidecar file
 * (PATH.expires, "key epoch" lines) written atomically like the map, and
 * holdmap_expire() removes what is over.
 *
 * Memory: struct holdmap owns its paths, its SQLite handle (sqlite:) or its
 * entry list (hash:).
 */
#include "holdmap.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define POSTMAP "/usr/sbin/postmap"
#define POSTQUEUE "/usr/sbin/postqueue"
#define POSTSUPER "/usr/sbin/postsuper"

struct hentry {
	char *key, *value;
	int64_t expires_at;
};

struct holdmap {
	enum holdmap_kind kind;
	bool is_sqlite;
	char *path;                      /* the .db (sqlite:) or the text file (hash:) */
	char *config_dir;
	sqlite3 *db;
	sqlite3_stmt *put, *del, *expire;
	struct hentry *e;
	size_t n, cap;
	bool dirty;
};

static const char *
cf_name(enum holdmap_kind kind)
{
	return kind == HOLDMAP_HOLD ? "postfix-hold.cf" : "postfix-reject.cf";
}

/* split_spec - "type:/path"; -1 with a reason if not sqlite:/hash: absolute */
static int
split_spec(const char *spec, bool *is_sqlite, const char **path, char *err, size_t errlen)
{
	if (strncmp(spec, "texthash:", 9) == 0) {
		snprintf(err, errlen, "%s: texthash: maps are read only when Postfix reloads; "
		    "use sqlite: (live) or hash: (postmap)", spec);
		return -1;
	}
	if (strncmp(spec, "sqlite:", 7) == 0) {
		*is_sqlite = true;
		*path = spec + 7;
	} else if (strncmp(spec, "hash:", 5) == 0) {
		*is_sqlite = false;
		*path = spec + 5;
	} else {
		snprintf(err, errlen, "%s: expected sqlite:/path or hash:/path", spec);
		return -1;
	}
	if ((*path)[0] != '/') {
		snprintf(err, errlen, "%s: the path must be absolute", spec);
		return -1;
	}
	return 0;
}

/* dir_of - the directory part of path into buf */
static void
dir_of(const char *path, char *buf, size_t len)
{
	const char *slash = strrchr(path, '/');

	if (slash == path)
		snprintf(buf, len, "/");
	else
		snprintf(buf, len, "%.*s", (int)(slash - path), path);
}

const char *
holdmap_postfix_name(const char *spec, enum holdmap_kind kind, char *buf, size_t len)
{
	bool sq;
	const char *path;
	char dir[4096], err[256];

	if (split_spec(spec, &sq, &path, err, sizeof(err)) != 0)
		snprintf(buf, len, "%s", spec);
	else if (!sq)
		snprintf(buf, len, "hash:%s", path);
	else {
		dir_of(path, dir, sizeof(dir));
		snprintf(buf, len, "sqlite:%s/%s", dir, cf_name(kind));
	}
	return buf;
}

/* write_atomic - temp file in the same directory, fsync, rename; mode 0644 */
static int
write_atomic(const char *path, const char *text, size_t len, char *err, size_t errlen)
{
	char tmp[4200];
	int fd;

	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		return -1;
	}
	if (write(fd, text, len) != (ssize_t)len || fchmod(fd, 0644) != 0 || fsync(fd) != 0) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		return -1;
	}
	close(fd);
	if (rename(tmp, path) != 0) {
		snprintf(err, errlen, "rename %s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* valid_key - keys that cannot break a map line or a query, lower-cased */
static int
normalise_key(const char *key, char *out, size_t len, bool strict)
{
	size_t n = strlen(key);

	if (n == 0 || n >= len)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)key[i];
		if (c < 0x20 || c == 0x7f)
			return -1;
		/* hash: lines are "key whitespace value": nothing may split them */
		if (strict && (isspace(c) || c == '"' || c == '\'' || c == '#' || c == '\\'))
			return -1;
		out[i] = (char)tolower(c);
	}
	out[n] = '\0';
	return 0;
}

static int
sqlite_open_map(struct holdmap *m, char *err, size_t errlen)
{
	char dir[4096], cf[4200], *text = NULL;
	char *msg = NULL;
	int rc = -1, len;

	if (sqlite3_open_v2(m->path, &m->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
	    NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", m->path, m->db ? sqlite3_errmsg(m->db) : "cannot open");
		return -1;
	}
	sqlite3_busy_timeout(m->db, 10000);
	/* Rollback journal, not WAL: Postfix reads as user postfix and a WAL
	 * reader needs write access to the -shm file. */
	if (sqlite3_exec(m->db, "PRAGMA journal_mode = DELETE;"
	    "CREATE TABLE IF NOT EXISTS map (key TEXT PRIMARY KEY, value TEXT NOT NULL,"
	    " expires_at INTEGER NOT NULL)", NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", m->path, msg ? msg : sqlite3_errmsg(m->db));
		sqlite3_free(msg);
		return -1;
	}
	if (chmod(m->path, 0644) != 0) {
		snprintf(err, errlen, "chmod %s: %s", m->path, strerror(errno));
		return -1;
	}
	if (sqlite3_prepare_v2(m->db, "INSERT OR REPLACE INTO map(key, value, expires_at)"
	    " VALUES (?1, ?2, ?3)", -1, &m->put, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(m->db, "DELETE FROM map WHERE key = ?1", -1, &m->del,
	    NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(m->db, "DELETE FROM map WHERE expires_at <= ?1", -1,
	    &m->expire, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", m->path, sqlite3_errmsg(m->db));
		return -1;
	}
	dir_of(m->path, dir, sizeof(dir));
	snprintf(cf, sizeof(cf), "%s/%s", dir, cf_name(m->kind));
	/* Postfix expands %s to the quoted key and %% to a single %. */
	len = asprintf(&text, "# written by mailjail: Postfix sqlite_table(5) for the %s map\n"
	    "dbpath = %s\n"
	    "query = SELECT value FROM map WHERE key = '%%s' AND expires_at > "
	    "CAST(strftime('%%%%s', 'now') AS INTEGER)\n",
	    m->kind == HOLDMAP_HOLD ? "HOLD" : "client reject", m->path);
	if (len < 0)
		return -1;
	rc = write_atomic(cf, text, (size_t)len, err, errlen);
	free(text);
	return rc;
}

static int
hash_load(struct holdmap *m)
{
	char path[4200], line[2048];
	FILE *fp;

	snprintf(path, sizeof(path), "%s.expires", m->path);
	if ((fp = fopen(path, "re")) == NULL)
		return errno == ENOENT ? 0 : -1;
	while (fgets(line, sizeof(line), fp)) {
		char *sp = strchr(line, ' '), *val;
		long long exp;
		if (sp == NULL)
			continue;
		*sp = '\0';
		exp = strtoll(sp + 1, &val, 10);
		if (*val == ' ')
			val++;
		val[strcspn(val, "\n")] = '\0';
		if (*val == '\0')
			continue;
		if (holdmap_add(m, line, val, exp) != 0)
			continue;
	}
	fclose(fp);
	m->dirty = false;
	return 0;
}

int
holdmap_open(struct holdmap **out, const char *spec, enum holdmap_kind kind,
    const char *postfix_config_dir, char *err, size_t errlen)
{
	struct holdmap *m;
	const char *path;
	bool sq;

	*out = NULL;
	if (split_spec(spec, &sq, &path, err, errlen) != 0)
		return -1;
	if ((m = calloc(1, sizeof(*m))) == NULL || (m->path = strdup(path)) == NULL ||
	    (postfix_config_dir && (m->config_dir = strdup(postfix_config_dir)) == NULL)) {
		snprintf(err, errlen, "out of memory");
		holdmap_close(m);
		return -1;
	}
	m->kind = kind;
	m->is_sqlite = sq;
	if (sq ? sqlite_open_map(m, err, errlen) != 0 : hash_load(m) != 0) {
		if (!sq)
			snprintf(err, errlen, "%s.expires: %s", path, strerror(errno));
		holdmap_close(m);
		return -1;
	}
	if (!sq) {
		m->dirty = true;   /* write the map (and compile it) once at start */
		if (holdmap_sync(m) != 0) {
			snprintf(err, errlen, "%s: cannot write or postmap it", path);
			holdmap_close(m);
			return -1;
		}
	}
	*out = m;
	return 0;
}

void
holdmap_close(struct holdmap *m)
{
	if (m == NULL)
		return;
	sqlite3_finalize(m->put);
	sqlite3_finalize(m->del);
	sqlite3_finalize(m->expire);
	sqlite3_close(m->db);
	for (size_t i = 0; i < m->n; i++) {
		free(m->e[i].key);
		free(m->e[i].value);
	}
	free(m->e);
	free(m->path);
	free(m->config_dir);
	free(m);
}

static int
sqlite_step(struct holdmap *m, sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);

	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc != SQLITE_DONE) {
		log_warnx("%s: %s", m->path, sqlite3_errmsg(m->db));
		return -1;
	}
	return 0;
}

int
holdmap_add(struct holdmap *m, const char *key, const char *value, int64_t expires_at)
{
	char k[512];

	if (normalise_key(key, k, sizeof(k), !m->is_sqlite) != 0 ||
	    strpbrk(value, "\r\n") != NULL) {
		log_warnx("%s: refusing the key \"%s\" (whitespace, quotes, control characters "
		    "or # could add a second entry)", m->path, key);
		return -1;
	}
	if (m->is_sqlite) {
		if (sqlite3_bind_text(m->put, 1, k, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
		    sqlite3_bind_text(m->put, 2, value, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
		    sqlite3_bind_int64(m->put, 3, expires_at) != SQLITE_OK)
			return -1;
		return sqlite_step(m, m->put);
	}
	for (size_t i = 0; i < m->n; i++) {
		if (strcmp(m->e[i].key, k) == 0) {
			char *v = strdup(value);
			if (v == NULL)
				return -1;
			free(m->e[i].value);
			m->e[i].value = v;
			m->e[i].expires_at = expires_at;
			m->dirty = true;
			return 0;
		}
	}
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 16;
		struct hentry *e = realloc(m->e, cap * sizeof(*e));
		if (e == NULL)
			return -1;
		m->e = e;
		m->cap = cap;
	}
	m->e[m->n].key = strdup(k);
	m->e[m->n].value = strdup(value);
	m->e[m->n].expires_at = expires_at;
	if (m->e[m->n].key == NULL || m->e[m->n].value == NULL) {
		free(m->e[m->n].key);
		free(m->e[m->n].value);
		return -1;
	}
	m->n++;
	m->dirty = true;
	return 0;
}

int
holdmap_remove(struct holdmap *m, const char *key)
{
	char k[512];

	if (normalise_key(key, k, sizeof(k), false) != 0)
		return 0;
	if (m->is_sqlite) {
		if (sqlite3_bind_text(m->del, 1, k, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
		    sqlite_step(m, m->del) != 0)
			return -1;
		return sqlite3_changes(m->db) > 0;
	}
	for (size_t i = 0; i < m->n; i++) {
		if (strcmp(m->e[i].key, k) == 0) {
			free(m->e[i].key);
			free(m->e[i].value);
			m->e[i] = m->e[--m->n];
			m->dirty = true;
			return 1;
		}
	}
	return 0;
}

int
holdmap_expire(struct holdmap *m, int64_t now)
{
	int removed = 0;

	if (m->is_sqlite) {
		if (sqlite3_bind_int64(m->expire, 1, now) != SQLITE_OK ||
		    sqlite_step(m, m->expire) != 0)
			return -1;
		return sqlite3_changes(m->db);
	}
	for (size_t i = 0; i < m->n;) {
		if (m->e[i].expires_at <= now) {
			free(m->e[i].key);
			free(m->e[i].value);
			m->e[i] = m->e[--m->n];
			m->dirty = true;
			removed++;
		} else {
			i++;
		}
	}
	return removed;
}

/* run_tool - fork/exec argv (no shell); stdin_text may be NULL; stdout to
 * out (malloc'd) when out is not NULL.  Returns the exit status or -1. */
static int
run_tool(char *const argv[], const char *stdin_text, char **out)
{
	int in[2] = { -1, -1 }, outp[2] = { -1, -1 }, st;
	size_t len = 0, cap = 0;
	char *buf = NULL;
	pid_t pid;

	if ((stdin_text && pipe(in) != 0) || (out && pipe(outp) != 0))
		return -1;
	if ((pid = fork()) < 0)
		return -1;
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDWR);
		dup2(stdin_text ? in[0] : devnull, 0);
		dup2(out ? outp[1] : devnull, 1);
		if (in[1] >= 0)
			close(in[1]);
		if (outp[0] >= 0)
			close(outp[0]);
		execv(argv[0], argv);
		_exit(127);
	}
	if (stdin_text) {
		close(in[0]);
		if (write(in[1], stdin_text, strlen(stdin_text)) < 0)
			log_warn("%s", argv[0]);
		close(in[1]);
	}
	if (out) {
		ssize_t n;
		close(outp[1]);
		for (;;) {
			if (len + 4096 + 1 > cap) {
				char *nb = realloc(buf, cap = cap ? cap * 2 : 8192);
				if (nb == NULL)
					break;
				buf = nb;
			}
			if ((n = read(outp[0], buf + len, cap - len - 1)) <= 0)
				break;
			len += (size_t)n;
		}
		close(outp[0]);
		if (buf)
			buf[len] = '\0';
		*out = buf;
	}
	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int
holdmap_sync(struct holdmap *m)
{
	char *text = NULL, *exp = NULL, err[512], spec[4200], expires[4200];
	size_t tl = 0, el = 0;
	FILE *t, *e;
	int rc = -1;

	if (m->is_sqlite || !m->dirty)
		return 0;
	if ((t = open_memstream(&text, &tl)) == NULL)
		return -1;
	if ((e = open_memstream(&exp, &el)) == NULL) {
		fclose(t);
		free(text);
		return -1;
	}
	fprintf(t, "# written by mailjail; do not edit (it is rewritten on every change)\n");
	for (size_t i = 0; i < m->n; i++) {
		fprintf(t, "%s %s\n", m->e[i].key, m->e[i].value);
		fprintf(e, "%s %lld %s\n", m->e[i].key, (long long)m->e[i].expires_at,
		    m->e[i].value);
	}
	fclose(t);
	fclose(e);
	snprintf(expires, sizeof(expires), "%s.expires", m->path);
	if (write_atomic(m->path, text, tl, err, sizeof(err)) != 0 ||
	    write_atomic(expires, exp, el, err, sizeof(err)) != 0) {
		log_warnx("%s", err);
		goto out;
	}
	snprintf(spec, sizeof(spec), "hash:%s", m->path);
	{
		char *argv[] = { POSTMAP, "-c", m->config_dir, spec, NULL };
		char *argv_nc[] = { POSTMAP, spec, NULL };
		int st = run_tool(m->config_dir ? argv : argv_nc, NULL, NULL);
		if (st != 0) {
			log_warnx("%s %s failed (exit %d)", POSTMAP, spec, st);
			goto out;
		}
	}
	m->dirty = false;
	rc = 0;
out:
	free(text);
	free(exp);
	return rc;
}

/* readable_by - can uid/gid read path and search every directory above? */
static int
readable_by(const char *path, uid_t uid, gid_t gid, char *err, size_t errlen)
{
	char p[4096];
	struct stat st;
	char *slash;

	snprintf(p, sizeof(p), "%s", path);
	if (stat(p, &st) != 0) {
		snprintf(err, errlen, "%s: %s", p, strerror(errno));
		return -1;
	}
	if (!((st.st_uid == uid && (st.st_mode & S_IRUSR)) ||
	    (st.st_gid == gid && (st.st_mode & S_IRGRP)) || (st.st_mode & S_IROTH))) {
		snprintf(err, errlen, "%s: mode %03o owner %d: not readable by user postfix",
		    p, (unsigned)(st.st_mode & 0777), (int)st.st_uid);
		return -1;
	}
	while ((slash = strrchr(p, '/')) != NULL) {
		*slash = '\0';
		if (p[0] == '\0')
			break;
		if (stat(p, &st) != 0) {
			snprintf(err, errlen, "%s: %s", p, strerror(errno));
			return -1;
		}
		if (!((st.st_uid == uid && (st.st_mode & S_IXUSR)) ||
		    (st.st_gid == gid && (st.st_mode & S_IXGRP)) || (st.st_mode & S_IXOTH))) {
			snprintf(err, errlen, "directory %s: mode %03o: user postfix cannot reach "
			    "the map", p, (unsigned)(st.st_mode & 0777));
			return -1;
		}
	}
	return 0;
}

int
holdmap_check_readable(const char *spec, enum holdmap_kind kind, char *err, size_t errlen)
{
	struct passwd *pw = getpwnam("postfix");
	const char *path;
	char file[4200], dir[4096];
	bool sq;

	if (split_spec(spec, &sq, &path, err, errlen) != 0)
		return -1;
	if (pw == NULL) {
		snprintf(err, errlen, "there is no user postfix on this machine");
		return -1;
	}
	if (sq) {
		if (readable_by(path, pw->pw_uid, pw->pw_gid, err, errlen) != 0)
			return -1;
		dir_of(path, dir, sizeof(dir));
		snprintf(file, sizeof(file), "%s/%s", dir, cf_name(kind));
	} else {
		snprintf(file, sizeof(file), "%s.db", path);
	}
	return readable_by(file, pw->pw_uid, pw->pw_gid, err, errlen);
}

/* json_field - the string value of "name" in one JSON object line, unescaped
 * into out; -1 if absent */
static int
json_field(const char *line, const char *name, char *out, size_t len)
{
	char pat[64];
	const char *p;
	size_t n = 0;

	snprintf(pat, sizeof(pat), "\"%s\":", name);
	if ((p = strstr(line, pat)) == NULL)
		return -1;
	p += strlen(pat);
	while (*p == ' ')
		p++;
	if (*p++ != '"')
		return -1;
	for (; *p && *p != '"'; p++) {
		char c = *p;
		if (c == '\\') {
			p++;
			switch (*p) {
			case 'n': c = '\n'; break;
			case 't': c = '\t'; break;
			case 'u': c = '?'; p += 4; if (strlen(p - 4) < 4) return -1; break;
			case '\0': return -1;
			default: c = *p;
			}
		}
		if (n + 1 >= len)
			return -1;
		out[n++] = c;
	}
	if (*p != '"')
		return -1;
	out[n] = '\0';
	return 0;
}

int
holdmap_parse_queue_line(const char *line, char *queue, size_t qlen, char *qid,
    size_t idlen, char *sender, size_t slen)
{
	if (json_field(line, "queue_name", queue, qlen) != 0 ||
	    json_field(line, "queue_id", qid, idlen) != 0)
		return -1;
	if (json_field(line, "sender", sender, slen) != 0)
		sender[0] = '\0';
	return 0;
}

int
holdmap_release_queue(const char *postfix_config_dir, const char *const *qids,
    size_t nqids, const char *sender, int *released)
{
	char *out = NULL, *ids = NULL, *line, *save = NULL;
	size_t idl = 0;
	FILE *idf;
	int rc = -1, count = 0;
	char *const pq[] = { POSTQUEUE, "-c", (char *)postfix_config_dir, "-j", NULL };
	char *const pq_nc[] = { POSTQUEUE, "-j", NULL };

	*released = 0;
	if (run_tool(postfix_config_dir ? pq : pq_nc, NULL, &out) != 0 || out == NULL) {
		log_warnx("%s -j failed", POSTQUEUE);
		goto out;
	}
	if ((idf = open_memstream(&ids, &idl)) == NULL)
		goto out;
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char queue[32], qid[64], from[512];
		bool want = false;

		if (holdmap_parse_queue_line(line, queue, sizeof(queue), qid, sizeof(qid), from,
		    sizeof(from)) != 0 || strcmp(queue, "hold") != 0)
			continue;
		for (size_t i = 0; i < nqids && !want; i++)
			want = strcmp(qids[i], qid) == 0;
		if (!want && sender && strcasecmp(sender, from) == 0)
			want = true;
		/* queue ids are [0-9A-Za-z]: anything else is not passed on */
		for (const char *c = qid; want && *c; c++)
			if (!isalnum((unsigned char)*c))
				want = false;
		if (want) {
			fprintf(idf, "%s\n", qid);
			count++;
		}
	}
	fclose(idf);
	if (count > 0) {
		char *const ps[] = { POSTSUPER, "-c", (char *)postfix_config_dir, "-H", "-", NULL };
		char *const ps_nc[] = { POSTSUPER, "-H", "-", NULL };
		char *id, *s2 = NULL;
		if (run_tool(postfix_config_dir ? ps : ps_nc, ids, NULL) != 0) {
			log_warnx("%s -H failed", POSTSUPER);
			goto out;
		}
		for (id = strtok_r(ids, "\n", &s2); id; id = strtok_r(NULL, "\n", &s2)) {
			char *const pi[] = { POSTQUEUE, "-c", (char *)postfix_config_dir, "-i", id,
			    NULL };
			char *const pi_nc[] = { POSTQUEUE, "-i", id, NULL };
			if (run_tool(postfix_config_dir ? pi : pi_nc, NULL, NULL) != 0)
				log_warnx("%s -i %s failed (it is released; the queue manager "
				    "delivers it on its next run)", POSTQUEUE, id);
		}
	}
	*released = count;
	rc = 0;
out:
	free(out);
	free(ids);
	return rc;
}
