/*
 * cfgfile - INI parsing with line numbers, durations, diagnostics.
 * See cfgfile.h.
 */
#include "cfgfile.h"

#include <dirent.h>
#include <errno.h>
#include <ini.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

void
diag_init(struct diag *d)
{
	memset(d, 0, sizeof(*d));
}

void
diag_free(struct diag *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->msgs[i]);
	free(d->msgs);
	memset(d, 0, sizeof(*d));
}

void
diag_add(struct diag *d, const char *file, int line, const char *fmt, ...)
{
	char body[1024];
	char *msg = NULL;
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	if (line > 0)
		rc = asprintf(&msg, "%s:%d: %s", file, line, body);
	else
		rc = asprintf(&msg, "%s: %s", file, body);
	if (rc < 0) {
		/* Out of memory while reporting: say it at once, keep going. */
		fprintf(stderr, "%s:%d: %s\n", file, line, body);
		return;
	}
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 8;
		char **m = realloc(d->msgs, cap * sizeof(*m));
		if (m == NULL) {
			fprintf(stderr, "%s\n", msg);
			free(msg);
			return;
		}
		d->msgs = m;
		d->cap = cap;
	}
	d->msgs[d->n++] = msg;
}

void
diag_print(const struct diag *d)
{
	for (size_t i = 0; i < d->n; i++)
		fprintf(stderr, "%s\n", d->msgs[i]);
}

struct reader {
	FILE *fp;
	const char *file;
	int line;            /* line most recently handed to inih */
	int section_line;    /* line of the last "[...]" header */
	cfgfile_handler h;
	void *arg;
	struct diag *d;
	bool long_line;
	bool mid_line;       /* the last read ended without a newline */
	size_t line_len;     /* bytes of the current line so far */
};

/* reader_gets - fgets for inih that counts lines and notes section headers.
 * inih reads a line longer than its buffer in several calls; only the first
 * call of a line counts it. */
static char *
reader_gets(char *buf, int size, void *stream)
{
	struct reader *r = stream;
	size_t len;
	char *p;

	if (fgets(buf, size, r->fp) == NULL)
		return NULL;
	len = strlen(buf);
	if (!r->mid_line) {
		r->line++;
		r->line_len = 0;
		p = buf + strspn(buf, " \t");
		if (*p == '[')
			r->section_line = r->line;
	}
	r->line_len += len;
	r->mid_line = len > 0 && buf[len - 1] != '\n';
	if (r->mid_line && r->line_len + 2 >= (size_t)ini_max_line)
		r->long_line = true;
	return buf;
}

static int
reader_handler(void *user, const char *section, const char *name, const char *value)
{
	struct reader *r = user;

	(void)r->h(r->arg, r->file, section, r->section_line, name, value, r->line);
	/* Always "success" for inih: semantic errors are the handler's diags, and
	 * inih's own return then means syntax errors only. */
	return 1;
}

static void
cfgfile_setup_inih(void)
{
	/* Debian's libinih exposes these knobs at run time. */
	ini_use_stack = false;
	ini_allow_realloc = true;
	ini_max_line = 65536;
	ini_allow_inline_comments = false;
	ini_allow_multiline = true;
	ini_stop_on_first_error = false;
}

/* who - "uid N (name)" for messages */
static void
who(uid_t uid, char *buf, size_t len)
{
	struct passwd *pw = getpwuid(uid);

	if (pw != NULL)
		snprintf(buf, len, "%s", pw->pw_name);
	else
		snprintf(buf, len, "uid %u", (unsigned)uid);
}

/* owner_ok - root's, or the user's running this */
static bool
owner_ok(const struct stat *st)
{
	return st->st_uid == 0 || st->st_uid == geteuid();
}

/* bad_owner - the message for a file or directory owned by someone else */
static void
bad_owner(const char *path, const char *what, const struct stat *st, struct diag *d)
{
	char owner[64], me[64];

	who(st->st_uid, owner, sizeof(owner));
	who(geteuid(), me, sizeof(me));
	diag_add(d, path, 0, "%s is owned by %s, not by root or %s (who runs this): "
	    "refused, it could be changed behind our back", what, owner, me);
}

/* bad_mode - the message for group/other write permission */
static void
bad_mode(const char *path, const char *what, const struct stat *st, struct diag *d)
{
	const char *by = (st->st_mode & 022) == 022 ? "group and others" :
	    (st->st_mode & 02) ? "others" : "group";

	diag_add(d, path, 0, "%s is writable by %s (mode %04o): refused, anyone "
	    "there could change it (chmod go-w %s)", what, by,
	    (unsigned)(st->st_mode & 07777), path);
}

/*
 * trusted_dir - may the directory holding a configuration file be
 * trusted?  Root's or ours, and writable by neither group nor others --
 * unless its sticky bit is set (as on /tmp): then nobody else can remove or
 * rename the files in it, and each file's own check decides.
 */
static bool
trusted_dir(const char *dir, struct diag *d)
{
	struct stat st;

	if (stat(dir, &st) != 0) {
		diag_add(d, dir, 0, "cannot look at the directory: %s", strerror(errno));
		return false;
	}
	if (!owner_ok(&st)) {
		bad_owner(dir, "the directory", &st, d);
		return false;
	}
	if ((st.st_mode & 022) != 0 && !(st.st_mode & S_ISVTX)) {
		bad_mode(dir, "the directory (no sticky bit)", &st, d);
		return false;
	}
	return true;
}

/*
 * trusted - may what path says be believed?  What root reads must be
 * root's (OpenBSD's daemons refuse a configuration others can change):
 * the file (st, of the open descriptor) root's or ours and writable by
 * neither group nor others, and so the directory holding it, by its name
 * as given and by its real name if a symbolic link leads elsewhere.
 */
static bool
trusted(const char *path, const struct stat *st, struct diag *d)
{
	char given[4096], *real = NULL, *slash;
	bool ok = true;

	if (!owner_ok(st)) {
		bad_owner(path, "the file", st, d);
		return false;
	}
	if ((st->st_mode & 022) != 0) {
		bad_mode(path, "the file", st, d);
		return false;
	}
	snprintf(given, sizeof(given), "%s", path);
	if ((slash = strrchr(given, '/')) == NULL)
		snprintf(given, sizeof(given), ".");
	else
		slash[slash == given ? 1 : 0] = '\0';
	if (!trusted_dir(given, d))
		return false;
	if ((real = realpath(path, NULL)) == NULL) {
		diag_add(d, path, 0, "cannot resolve: %s", strerror(errno));
		return false;
	}
	slash = strrchr(real, '/');
	slash[slash == real ? 1 : 0] = '\0';
	if (strcmp(real, given) != 0)
		ok = trusted_dir(real, d);
	free(real);
	return ok;
}

int
cfgfile_check_trusted(const char *path, struct diag *d)
{
	struct stat st;

	if (stat(path, &st) != 0) {
		diag_add(d, path, 0, "cannot look at it: %s", strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		diag_add(d, path, 0, "not a regular file");
		return -1;
	}
	return trusted(path, &st, d) ? 0 : -1;
}

int
cfgfile_parse(const char *path, cfgfile_handler h, void *arg, struct diag *d)
{
	struct reader r = { .file = path, .h = h, .arg = arg, .d = d };
	struct stat st;
	int rc;

	cfgfile_setup_inih();
	r.fp = fopen(path, "re");
	if (r.fp == NULL) {
		diag_add(d, path, 0, "cannot open: %s", strerror(errno));
		return -1;
	}
	if (fstat(fileno(r.fp), &st) != 0) {
		diag_add(d, path, 0, "cannot look at it: %s", strerror(errno));
		fclose(r.fp);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		diag_add(d, path, 0, "not a regular file");
		fclose(r.fp);
		return -1;
	}
	if (!trusted(path, &st, d)) {
		fclose(r.fp);
		return -1;
	}
	rc = ini_parse_stream(reader_gets, &r, reader_handler, &r);
	fclose(r.fp);
	if (r.long_line) {
		diag_add(d, path, 0, "a line is longer than %d bytes", ini_max_line);
		return -1;
	}
	if (rc > 0) {
		diag_add(d, path, rc, "syntax error (expected \"[section]\", \"key = value\" or a # comment)");
		return -1;
	}
	if (rc < 0) {
		diag_add(d, path, 0, "cannot read: out of memory or I/O error");
		return -1;
	}
	return 0;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
cfgfile_parse_path(const char *path, const char *suffix, cfgfile_handler h,
    void *arg, struct diag *d)
{
	struct stat st;
	DIR *dir = NULL;
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0, slen = strlen(suffix);
	int rc = -1;

	if (stat(path, &st) != 0) {
		diag_add(d, path, 0, "cannot open: %s", strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return cfgfile_parse(path, h, arg, d);
	/* Even empty, a directory others can write into is theirs. */
	if (!trusted_dir(path, d))
		return -1;

	if ((dir = opendir(path)) == NULL) {
		diag_add(d, path, 0, "cannot open directory: %s", strerror(errno));
		return -1;
	}
	while ((de = readdir(dir)) != NULL) {
		size_t len = strlen(de->d_name);
		if (de->d_name[0] == '.' || len <= slen ||
		    strcmp(de->d_name + len - slen, suffix) != 0)
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			char **nn = realloc(names, ncap * sizeof(*nn));
			if (nn == NULL)
				goto out;
			names = nn;
			cap = ncap;
		}
		if (asprintf(&names[n], "%s/%s", path, de->d_name) < 0)
			goto out;
		n++;
	}
	qsort(names, n, sizeof(*names), name_cmp);
	rc = 0;
	for (size_t i = 0; i < n; i++)
		if (cfgfile_parse(names[i], h, arg, d) != 0)
			rc = -1;
out:
	if (rc != 0 && d->n == 0)
		diag_add(d, path, 0, "out of memory");
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(dir);
	return rc;
}

int
cfg_parse_uint(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (*s == '\0')
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		if (v > (max - (uint64_t)(*s - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

int
cfg_parse_duration(const char *s, int64_t *secs)
{
	/* Ten years is far beyond any sane ban and keeps the arithmetic of
	 * escalation (bantime * factor^N, capped) well inside int64. */
	const uint64_t max = 10ULL * 366 * 86400;
	char digits[32];
	uint64_t v, mult = 1;
	size_t n = strspn(s, "0123456789");

	if (n == 0 || n >= sizeof(digits))
		return -1;
	memcpy(digits, s, n);
	digits[n] = '\0';
	switch (s[n]) {
	case '\0': case 's': mult = 1; break;
	case 'm': mult = 60; break;
	case 'h': mult = 3600; break;
	case 'd': mult = 86400; break;
	case 'w': mult = 7 * 86400; break;
	default: return -1;
	}
	if (s[n] != '\0' && s[n + 1] != '\0')
		return -1;
	if (cfg_parse_uint(digits, max, &v) != 0 || v > max / mult)
		return -1;
	*secs = (int64_t)(v * mult);
	return 0;
}

const char *
cfg_format_duration(int64_t secs, char *buf, size_t len)
{
	static const struct { int64_t s; char u; } units[] = {
		{ 7 * 86400, 'w' }, { 86400, 'd' }, { 3600, 'h' }, { 60, 'm' },
	};

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (secs != 0 && secs % units[i].s == 0) {
			snprintf(buf, len, "%" PRId64 "%c", secs / units[i].s, units[i].u);
			return buf;
		}
	}
	snprintf(buf, len, "%" PRId64 "s", secs);
	return buf;
}

char *
cfg_resolve_path(const char *base, const char *path)
{
	const char *slash;
	char *out = NULL;

	if (path[0] == '/' || base == NULL || (slash = strrchr(base, '/')) == NULL)
		return strdup(path);
	if (asprintf(&out, "%.*s/%s", (int)(slash - base), base, path) < 0)
		return NULL;
	return out;
}
