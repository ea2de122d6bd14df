/*
 * journal - Postfix lines from the systemd journal.  See journal.h.
 *
 * sd-journal does the reading: it interleaves the journal files of the
 * directory in time order, follows new files (its own inotify descriptor,
 * polled by the daemon) and applies the matches.  This module turns a
 * source's match syntax into sd_journal_add_match calls, an entry into one
 * syslog-style line with nothing in it able to pass for a second line or a
 * different header, and keeps the cursor of the last entry delivered.
 *
 * Positioning without a saved cursor goes through the newest entry of any
 * kind (matches are added after it is found): its cursor is a place in the
 * journal's single time-ordered stream, so saving it at once means a restart
 * before the first Postfix entry still loses nothing that came later.
 *
 * After a read that came to the end, the next read first seeks back to the
 * last entry delivered if sd_journal_process reported a change in between
 * (catch_up).  sd_journal_next does not look into a file again once it came
 * to its end until the file's entry count (its header's n_entries) changes.
 * A writer (journald, systemd-journal-remote) counts an entry in the header
 * first and then links it to each of its fields; a reader with matches
 * finds entries through the fields.  So a read in between sees the new
 * count, finds no matching entry, and takes the count as seen: the entry
 * stays unread until another entry lands in that file, however long that
 * is (a quiet host; the last line of a burst).  The writer's notice comes
 * after the linking (journal_file_post_change: an ftruncate to the same
 * size, for inotify), so seeking again to our cursor after any notice
 * that follows a read at the end finds every entry.
 */
#include "journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#include "log.h"

#define FIELD_NAME_MAX 64
#define NAME_MAX_OUT 255          /* bytes of HOST or IDENT kept */
#define UNIT_FIELD "_SYSTEMD_UNIT="
#define UNIT_SUFFIX ".service"

/* A parsed source: "FIELD=VALUE" terms, and "+" between groups. */
struct match {
	char buf[JOURNAL_SOURCE_MAX + JOURNAL_TERMS_MAX * sizeof(UNIT_FIELD)];
	const char *term[JOURNAL_TERMS_MAX];
	size_t n;
};

struct journal {
	sd_journal *j;
	char *source;
	char *directory;           /* NULL: the system journal */
	size_t index;
	int fd;
	char *line;                /* FOLLOW_LINE_MAX + 1 bytes */
	char *cursor;              /* of the last entry delivered (or the start) */
	bool dirty;                /* cursor not yet saved */
	/* Where the last commit left the source (may be the same string as
	 * cursor): journal_rewind goes back there. */
	char *committed;
	bool committed_in_db;      /* else: the start, not yet saved */
	bool have_current;         /* positioned on an entry not yet delivered */
	bool positioned;           /* journal_position done: reading may begin */
	bool at_end;               /* the last read came to the end */
	bool changed;              /* sd_journal_process saw a change since then */
	uint64_t skipped;
};

static void
seterr(char *err, size_t errlen, const char *fmt, ...) MJ_PRINTF(3, 4);

static void
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

bool
journal_is_source(const char *log)
{
	return strncmp(log, JOURNAL_PREFIX, sizeof(JOURNAL_PREFIX) - 1) == 0;
}

/* field_name_ok - sd-journal's rule: A-Z 0-9 _, no leading digit, not "__" */
static bool
field_name_ok(const char *s, size_t len)
{
	if (len == 0 || len > FIELD_NAME_MAX || (s[0] >= '0' && s[0] <= '9'))
		return false;
	if (len >= 2 && s[0] == '_' && s[1] == '_')
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
		    s[i] == '_'))
			return false;
	return true;
}

/* unit_name_ok - "postfix@-.service": systemd's unit name characters */
static bool
unit_name_ok(const char *s, size_t len)
{
	size_t sl = sizeof(UNIT_SUFFIX) - 1;

	if (len <= sl || len > 255 || memcmp(s + len - sl, UNIT_SUFFIX, sl) != 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr(":-_.\\@", c) != NULL))
			return false;
	}
	return true;
}

/* value_ok - no blank, comma or control byte (see journal.h) */
static bool
value_ok(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c == 0x7f || c == ',')
			return false;
	}
	return true;
}

/* add_term - copy pfx + s[0..len) into m as one term */
static void
add_term(struct match *m, size_t *used, const char *pfx, const char *s, size_t len)
{
	size_t pl = strlen(pfx);
	char *t = m->buf + *used;

	/* Fits: the source is at most JOURNAL_SOURCE_MAX bytes and every term
	 * grows by at most the unit prefix and its NUL. */
	memcpy(t, pfx, pl);
	memcpy(t + pl, s, len);
	t[pl + len] = '\0';
	*used += pl + len + 1;
	m->term[m->n++] = t;
}

/* parse_source - "journal:TERM..." into m, see journal.h for the syntax */
static int
parse_source(const char *source, struct match *m, char *why, size_t wlen)
{
	const char *p = source + sizeof(JOURNAL_PREFIX) - 1;
	size_t used = 0;
	bool group_empty = true;

	m->n = 0;
	if (!journal_is_source(source)) {
		seterr(why, wlen, "not a journal source (expected \"journal:...\")");
		return -1;
	}
	if (strlen(source) > JOURNAL_SOURCE_MAX) {
		seterr(why, wlen, "journal match longer than %d bytes", JOURNAL_SOURCE_MAX);
		return -1;
	}
	for (;;) {
		const char *start, *eq;
		size_t len;

		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		start = p;
		while (*p != '\0' && *p != ' ' && *p != '\t')
			p++;
		len = (size_t)(p - start);
		if (m->n == JOURNAL_TERMS_MAX) {
			seterr(why, wlen, "more than %d journal match terms", JOURNAL_TERMS_MAX);
			return -1;
		}
		if (len == 1 && *start == '+') {
			if (group_empty) {
				seterr(why, wlen, "journal match: \"+\" must stand between two "
				    "matches");
				return -1;
			}
			add_term(m, &used, "", start, 1);
			group_empty = true;
			continue;
		}
		eq = memchr(start, '=', len);
		if (eq != NULL) {
			size_t flen = (size_t)(eq - start);
			if (!field_name_ok(start, flen)) {
				seterr(why, wlen, "journal match \"%.*s\": bad field name (A-Z, "
				    "0-9 and _, at most %d, no leading digit or \"__\")",
				    (int)(len > 80 ? 80 : len), start, FIELD_NAME_MAX);
				return -1;
			}
			if (!value_ok(eq + 1, len - flen - 1)) {
				seterr(why, wlen, "journal match \"%.*s\": control byte in the "
				    "value", (int)(len > 80 ? 80 : len), start);
				return -1;
			}
			add_term(m, &used, "", start, len);
		} else if (unit_name_ok(start, len)) {
			add_term(m, &used, UNIT_FIELD, start, len);
		} else {
			seterr(why, wlen, "journal match \"%.*s\": expected FIELD=VALUE or a "
			    "unit name ending in .service", (int)(len > 80 ? 80 : len), start);
			return -1;
		}
		group_empty = false;
	}
	if (m->n > 0 && group_empty) {
		seterr(why, wlen, "journal match: \"+\" must stand between two matches");
		return -1;
	}
	if (m->n == 0) {
		static const char dflt[] = JOURNAL_DEFAULT_MATCH;
		add_term(m, &used, "", dflt, sizeof(dflt) - 1);
	}
	return 0;
}

int
journal_check_source(const char *source, char *why, size_t wlen)
{
	struct match m;

	return parse_source(source, &m, why, wlen);
}

/* add_matches - the parsed terms into sd-journal */
static int
add_matches(sd_journal *sj, const struct match *m)
{
	int r;

	for (size_t i = 0; i < m->n; i++) {
		if (strcmp(m->term[i], "+") == 0)
			r = sd_journal_add_disjunction(sj);
		else
			r = sd_journal_add_match(sj, m->term[i], 0);
		if (r < 0)
			return r;
	}
	return 0;
}

/*
 * seek_after - make the next entry read the first one after cursor at
 * (NULL: the journal's head).  Returns 0 or a negative errno.
 */
static int
seek_after(struct journal *j, const char *at)
{
	int r;

	j->have_current = false;
	j->at_end = false;
	j->changed = false;
	if (at == NULL)
		return sd_journal_seek_head(j->j);
	if ((r = sd_journal_seek_cursor(j->j, at)) < 0 || (r = sd_journal_next(j->j)) < 0)
		return r;
	if (r > 0) {
		/* The entry at the cursor if it is still there and matches (done
		 * already), else the first matching one after it (new).  Not
		 * matching is no sign of its being gone: the start is an entry
		 * of any kind (see saved_gone). */
		if ((r = sd_journal_test_cursor(j->j, at)) < 0)
			return r;
		if (r == 0)
			j->have_current = true;
	}
	/* r == 0: nothing after the cursor yet; sd_journal_next finds what
	 * comes later. */
	return 0;
}

/*
 * saved_gone - before the matches are added: 1 if the entry at cursor at
 * is no longer in the journal but later ones are (vacuumed), else 0, or a
 * negative errno.
 */
static int
saved_gone(struct journal *j, const char *at)
{
	int r;

	if ((r = sd_journal_seek_cursor(j->j, at)) < 0 || (r = sd_journal_next(j->j)) <= 0)
		return r;
	if ((r = sd_journal_test_cursor(j->j, at)) < 0)
		return r;
	return r == 0;
}

/*
 * position - make the next entry read the first one after saved (a cursor
 * from the database, or NULL: after the newest entry in the journal now),
 * and add the matches.  Returns 0 or a negative errno; *what says which
 * step failed.
 */
static int
position(struct journal *j, const struct match *m, const char *saved, const char **what)
{
	int r;

	if (saved != NULL) {
		if ((j->committed = strdup(saved)) == NULL)
			return -ENOMEM;
		j->cursor = j->committed;   /* where reading goes on from */
		j->committed_in_db = true;
		*what = "seeking to the saved cursor";
		if ((r = saved_gone(j, saved)) < 0)
			return r;
		if (r > 0)
			log_info("%s: the saved entry is no longer in the journal "
			    "(vacuumed?); resuming at the first entry after it", j->source);
	} else {
		/* Before the matches: the newest entry of any kind.  Its cursor
		 * is the start, to be saved at the first commit. */
		*what = "finding the newest entry";
		if ((r = sd_journal_seek_tail(j->j)) < 0 ||
		    (r = sd_journal_previous(j->j)) < 0)
			return r;
		if (r > 0 && (r = sd_journal_get_cursor(j->j, &j->cursor)) < 0)
			return r;
		j->committed = j->cursor;
		j->dirty = j->cursor != NULL;
	}
	*what = "adding the match";
	if ((r = add_matches(j->j, m)) < 0)
		return r;
	/* An empty journal (no cursor): whatever comes is new. */
	*what = saved ? "seeking to the saved cursor" : "seeking to the newest entry";
	return seek_after(j, j->committed);
}

int
journal_open(struct journal **out, const char *source, size_t index,
    const char *directory, char *err, size_t errlen)
{
	struct journal *j;
	struct match m;
	char why[256];
	uint64_t usage = 0;
	int r;

	*out = NULL;
	if (parse_source(source, &m, why, sizeof(why)) != 0) {
		seterr(err, errlen, "%s", why);
		return -1;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL ||
	    (j->source = strdup(source)) == NULL ||
	    (j->line = malloc(FOLLOW_LINE_MAX + 1)) == NULL ||
	    (directory && (j->directory = strdup(directory)) == NULL)) {
		seterr(err, errlen, "out of memory");
		goto fail;
	}
	j->index = index;
	j->fd = -1;
	if (directory)
		r = sd_journal_open_directory(&j->j, directory, 0);
	else
		r = sd_journal_open(&j->j, SD_JOURNAL_LOCAL_ONLY | SD_JOURNAL_SYSTEM);
	if (r < 0) {
		j->j = NULL;
		seterr(err, errlen, "%s: opening the journal%s%s: %s", source,
		    directory ? " in " : "", directory ? directory : "", strerror(-r));
		goto fail;
	}
	/* The inotify watches are made here, while still root (journal.h). */
	if ((j->fd = sd_journal_get_fd(j->j)) < 0) {
		seterr(err, errlen, "%s: watching the journal: %s", source, strerror(-j->fd));
		goto fail;
	}
	/* A hint: fields up to a line's length come whole; longer ones are cut
	 * and then skipped as too long (format_entry checks the length). */
	if ((r = sd_journal_set_data_threshold(j->j, FOLLOW_LINE_MAX + 16)) < 0) {
		seterr(err, errlen, "%s: setting the data threshold: %s", source,
		    strerror(-r));
		goto fail;
	}
	if (sd_journal_get_usage(j->j, &usage) >= 0 && usage == 0)
		log_info("%s: no journal files%s%s yet; waiting for them", source,
		    directory ? " in " : "", directory ? directory : "");
	*out = j;
	return 0;
fail:
	journal_close(j);
	return -1;
}

int
journal_position(struct journal *j, const char *cursor, char *err, size_t errlen)
{
	struct match m;
	char why[256];
	const char *what = "positioning";
	int r;

	if (j->positioned) {
		seterr(err, errlen, "%s: already positioned", j->source);
		return -1;
	}
	/* (Checked at journal_open: cannot fail here.) */
	if (parse_source(j->source, &m, why, sizeof(why)) != 0) {
		seterr(err, errlen, "%s", why);
		return -1;
	}
	if ((r = position(j, &m, cursor, &what)) < 0) {
		seterr(err, errlen, "%s: %s: %s", j->source, what, strerror(-r));
		return -1;
	}
	j->positioned = true;
	return 0;
}

void
journal_close(struct journal *j)
{
	if (j == NULL)
		return;
	if (j->j)
		sd_journal_close(j->j);
	if (j->committed != j->cursor)
		free(j->committed);
	free(j->cursor);
	free(j->line);
	free(j->source);
	free(j->directory);
	free(j);
}

const char *
journal_source(const struct journal *j)
{
	return j->source;
}

/* Output into the line buffer; over is set (and nothing more written) once
 * the line would exceed FOLLOW_LINE_MAX. */
struct out {
	char *p;
	size_t len;
	bool over;
};

static void
put(struct out *o, const char *s, size_t n)
{
	if (o->over || n > FOLLOW_LINE_MAX - o->len) {
		o->over = true;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

/* put_name - HOST or IDENT: blanks, control bytes, [ ] : become '_' */
static void
put_name(struct out *o, const char *s, size_t n)
{
	if (n > NAME_MAX_OUT)
		n = NAME_MAX_OUT;
	if (o->over || n > FOLLOW_LINE_MAX - o->len) {
		o->over = true;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		o->p[o->len++] = (c <= 0x20 || c == 0x7f || c == '[' || c == ']' || c == ':')
		    ? '_' : (char)c;
	}
}

/* put_message - control bytes as rsyslog writes them: '#' and 3 octal digits */
static void
put_message(struct out *o, const char *s, size_t n)
{
	for (size_t i = 0; i < n && !o->over; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f) {
			char esc[4] = { '#', (char)('0' + (c >> 6)), (char)('0' + ((c >> 3) & 7)),
			    (char)('0' + (c & 7)) };
			put(o, esc, 4);
		} else {
			put(o, (const char *)&s[i], 1);
		}
	}
}

/* get_field - the value of field name in the current entry: 1, or 0 if absent */
static int
get_field(sd_journal *sj, const char *name, const char **v, size_t *vl)
{
	const void *d;
	size_t l, nl = strlen(name);

	if (sd_journal_get_data(sj, name, &d, &l) < 0 || l <= nl ||
	    memcmp(d, name, nl) != 0 || ((const char *)d)[nl] != '=')
		return 0;
	*v = (const char *)d + nl + 1;
	*vl = l - nl - 1;
	return 1;
}

static bool
all_digits(const char *s, size_t n)
{
	if (n == 0 || n > 10)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/*
 * format_entry - the current entry as "STAMP HOST IDENT[PID]: MESSAGE" in
 * j->line.  Each field is copied out before the next is asked for: the data
 * sd_journal_get_data returns is valid only until the next call.  Returns
 * the length, or -1 if the entry is skipped (no MESSAGE, too long).
 */
static long
format_entry(struct journal *j)
{
	struct out o = { j->line, 0, false };
	const char *v;
	size_t vl;
	uint64_t usec;
	time_t secs;
	struct tm tm;
	char buf[64];
	int n;

	if (sd_journal_get_realtime_usec(j->j, &usec) < 0)
		return -1;
	secs = (time_t)(usec / 1000000);
	if (gmtime_r(&secs, &tm) == NULL)
		return -1;
	n = snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%06u+00:00 ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	    tm.tm_sec, (unsigned)(usec % 1000000));
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -1;
	put(&o, buf, (size_t)n);

	if (get_field(j->j, "_HOSTNAME", &v, &vl))
		put_name(&o, v, vl);
	else
		put(&o, "-", 1);
	put(&o, " ", 1);

	if (get_field(j->j, "SYSLOG_IDENTIFIER", &v, &vl) ||
	    get_field(j->j, "_COMM", &v, &vl))
		put_name(&o, v, vl);
	else
		put(&o, "-", 1);

	if ((get_field(j->j, "SYSLOG_PID", &v, &vl) && all_digits(v, vl)) ||
	    (get_field(j->j, "_PID", &v, &vl) && all_digits(v, vl))) {
		put(&o, "[", 1);
		put(&o, v, vl);
		put(&o, "]", 1);
	}
	put(&o, ": ", 2);

	if (!get_field(j->j, "MESSAGE", &v, &vl)) {
		j->skipped++;
		return -1;
	}
	put_message(&o, v, vl);
	if (o.over) {
		j->skipped++;
		log_warnx("%s: an entry longer than %d bytes as a line was skipped",
		    j->source, FOLLOW_LINE_MAX);
		return -1;
	}
	j->line[o.len] = '\0';
	return (long)o.len;
}

/*
 * catch_up - after a read that came to the end and a change since: seek
 * again to the last entry delivered (or the start), so that an entry a
 * writer was still linking at that read is found (see the top of the file).
 * Returns 0 or a negative errno.
 */
static int
catch_up(struct journal *j)
{
	if (!j->at_end || !j->changed)
		return 0;
	return seek_after(j, j->cursor);
}

long
journal_read(struct journal *j, follow_line_cb cb, void *arg, size_t max)
{
	long count = 0;
	bool moved = false;
	int r;

	if (!j->positioned) {
		log_warnx("%s: read before journal_position", j->source);
		return -1;
	}
	if ((r = catch_up(j)) < 0) {
		log_warnx("%s: going back to the last entry read: %s", j->source,
		    strerror(-r));
		return -1;
	}
	j->at_end = false;
	while ((size_t)count < max) {
		long len;

		if (j->have_current) {
			j->have_current = false;
			r = 1;
		} else if ((r = sd_journal_next(j->j)) < 0) {
			log_warnx("%s: reading the journal: %s", j->source, strerror(-r));
			return -1;
		}
		if (r == 0) {
			/* A change reported before this read is covered by it;
			 * one after it may be an entry it saw half linked. */
			j->at_end = true;
			j->changed = false;
			break;
		}
		moved = true;
		count++;
		if ((len = format_entry(j)) < 0)
			continue;
		if (cb(arg, j->index, j->line, (size_t)len) != 0)
			break;
	}
	if (moved) {
		char *c = NULL;

		/* The current entry is the last one delivered (sd_journal_next at
		 * the end does not move it). */
		if ((r = sd_journal_get_cursor(j->j, &c)) < 0) {
			log_warnx("%s: cursor: %s", j->source, strerror(-r));
			return -1;
		}
		if (j->cursor != j->committed)
			free(j->cursor);
		j->cursor = c;
		j->dirty = true;
	}
	return count;
}

int
journal_rewind_saved(struct journal *j, const char *saved)
{
	char *c;

	if (saved != NULL && (j->committed == NULL || strcmp(saved, j->committed) != 0)) {
		/* The batch's COMMIT went through though its answer was lost
		 * (a server's connection cut at that instant). */
		if ((c = strdup(saved)) == NULL)
			return -1;
		if (j->committed != j->cursor)
			free(j->committed);
		j->committed = c;
		j->committed_in_db = true;
	}
	return journal_rewind(j);
}

int
journal_rewind(struct journal *j)
{
	int r;

	if (!j->positioned) {
		log_warnx("%s: rewind before journal_position", j->source);
		return -1;
	}
	if ((r = seek_after(j, j->committed)) < 0) {
		log_warnx("%s: going back to the last committed entry: %s", j->source,
		    strerror(-r));
		return -1;
	}
	if (j->cursor != j->committed)
		free(j->cursor);
	j->cursor = j->committed;
	j->dirty = j->cursor != NULL && !j->committed_in_db;
	return 0;
}

int
journal_fd(const struct journal *j)
{
	return j->fd;
}

short
journal_events(const struct journal *j)
{
	int e = sd_journal_get_events(j->j);

	return e < 0 ? POLLIN : (short)e;
}

int
journal_timeout_ms(const struct journal *j)
{
	uint64_t t, now;
	struct timespec ts;

	if (sd_journal_get_timeout(j->j, &t) < 0 || t == UINT64_MAX)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
	if (t <= now)
		return 0;
	t = (t - now + 999) / 1000;
	return t > INT_MAX ? INT_MAX : (int)t;
}

int
journal_process(struct journal *j)
{
	int r = sd_journal_process(j->j);

	if (r < 0) {
		log_warnx("%s: following the journal: %s", j->source, strerror(-r));
		return -1;
	}
	if (r != SD_JOURNAL_NOP)
		j->changed = true;
	return 0;
}

const char *
journal_pending_cursor(const struct journal *j)
{
	return j->dirty ? j->cursor : NULL;
}

void
journal_saved(struct journal *j)
{
	if (!j->dirty)
		return;
	if (j->committed != j->cursor)
		free(j->committed);
	j->committed = j->cursor;
	j->committed_in_db = true;
	j->dirty = false;
}

uint64_t
journal_skipped(const struct journal *j)
{
	return j->skipped;
}

int
journal_cursor_time(const char *cursor, uint64_t *usec)
{
	const char *p = cursor;

	while (p != NULL && *p != '\0') {
		if (p[0] == 't' && p[1] == '=') {
			char *end;
			unsigned long long v;

			errno = 0;
			v = strtoull(p + 2, &end, 16);
			if (errno != 0 || end == p + 2 || (*end != ';' && *end != '\0'))
				return -1;
			*usec = (uint64_t)v;
			return 0;
		}
		if ((p = strchr(p, ';')) != NULL)
			p++;
	}
	return -1;
}

/* unreadable_in - first journal file (or directory) in d, and in its
 * subdirectories when depth > 0, that cannot be opened: 1 with it in path */
static int
unreadable_in(const char *d, int depth, char *path, size_t plen)
{
	DIR *dir = opendir(d);
	struct dirent *e;
	int found = 0;

	if (dir == NULL) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		snprintf(path, plen, "%s", d);
		return 1;
	}
	while (!found && (e = readdir(dir)) != NULL) {
		char p[4096];
		size_t nl = strlen(e->d_name);
		int fd;

		if (e->d_name[0] == '.')
			continue;
		if (snprintf(p, sizeof(p), "%s/%s", d, e->d_name) >= (int)sizeof(p))
			continue;
		if (e->d_type == DT_DIR) {
			if (depth > 0)
				found = unreadable_in(p, depth - 1, path, plen);
			continue;
		}
		if (!(nl > 8 && strcmp(e->d_name + nl - 8, ".journal") == 0) &&
		    !(nl > 9 && strcmp(e->d_name + nl - 9, ".journal~") == 0))
			continue;
		if ((fd = open(p, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) >= 0) {
			close(fd);
			continue;
		}
		if (errno == EACCES || errno == EPERM) {
			snprintf(path, plen, "%s", p);
			found = 1;
		}
	}
	closedir(dir);
	return found;
}

int
journal_unreadable(const struct journal *j, char *path, size_t plen)
{
	if (j->directory)
		return unreadable_in(j->directory, 1, path, plen);
	/* The system journal: persistent and volatile, one machine-id level. */
	return unreadable_in("/var/log/journal", 1, path, plen) ||
	    unreadable_in("/run/log/journal", 1, path, plen);
}
