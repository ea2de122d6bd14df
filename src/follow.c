/*
 * follow - complete lines appended to log files.  See follow.h.
 *
 * Each log has a current stream (fd, inode, buffer) and, right after a
 * rename rotation, an old stream that is read to its end and kept open for
 * a grace period, because a syslog daemon writes to the old file until it is
 * told to reopen.  On every read the path is stat()ed: another inode at the
 * path means rotation, a size below our offset (or another first line)
 * means truncation.  inotify (through libinotifytools, watching each log's
 * directory, which also reports changes to the files in it) only says when
 * to look; missing an event costs a delay, never a line.
 *
 * libinotifytools keeps its fd to itself; its next_event() waits in select()
 * with a timeout in whole seconds, and a signal interrupts it, which is all
 * the daemon loop needs (timers are seconds apart; lines wake it at once).
 *
 * Memory: struct follow owns its streams' buffers (BUF_SIZE each) and fds.
 */
#include "follow.h"

#include <errno.h>
#include <fcntl.h>
#include <inotifytools/inotify.h>
#include <inotifytools/inotifytools.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define BUF_SIZE (1024 * 1024)
#define FIRST_LINE_MAX 4096
#define ROTATE_GRACE_SECS 5
#define FOLLOW_FILES_MAX 64

struct stream {
	int fd;
	uint64_t inode;
	char *buf;
	uint64_t buf_off;            /* file offset of buf[0] */
	size_t len, start;           /* valid bytes; first unconsumed byte */
	bool skipping;               /* inside a line longer than FOLLOW_LINE_MAX */
	bool eof;                    /* the last read returned 0 */
};

struct lfile {
	char *path;
	struct stream cur, old;
	uint64_t first_hash;         /* of cur's first line; 0 until it is complete */
	time_t old_until;            /* when to give up on the old stream */
	bool missing_warned, type_warned;
};

struct follow {
	struct lfile files[FOLLOW_FILES_MAX];
	size_t n;
	bool watch;
	size_t next;                 /* round-robin start */
	uint64_t skipped;
};

uint64_t
follow_hash_line(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
	return h ? h : 1;   /* 0 means "no first line yet" */
}

static void
stream_close(struct stream *s)
{
	if (s->fd >= 0)
		close(s->fd);
	free(s->buf);
	memset(s, 0, sizeof(*s));
	s->fd = -1;
}

/* first_line_hash - of the file's first complete line, 0 if none yet */
static uint64_t
first_line_hash(int fd)
{
	char buf[FIRST_LINE_MAX];
	ssize_t n = pread(fd, buf, sizeof(buf), 0);
	char *nl;

	if (n <= 0 || (nl = memchr(buf, '\n', (size_t)n)) == NULL)
		return 0;
	return follow_hash_line(buf, (size_t)(nl - buf));
}

/* open_log - a regular file, read-only; -1 (and a warning once) otherwise */
static int
open_log(struct lfile *lf, struct stat *st)
{
	int fd = open(lf->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0) {
		if (errno != ENOENT && !lf->missing_warned) {
			log_warn("%s", lf->path);
			lf->missing_warned = true;
		}
		return -1;
	}
	if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
		if (!lf->type_warned) {
			log_warnx("%s: not a regular file; waiting for one", lf->path);
			lf->type_warned = true;
		}
		close(fd);
		return -1;
	}
	lf->missing_warned = lf->type_warned = false;
	return fd;
}

/* stream_start - make s read fd from offset */
static int
stream_start(struct stream *s, int fd, uint64_t inode, uint64_t offset)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->inode = inode;
	s->buf_off = offset;
	if ((s->buf = malloc(BUF_SIZE)) == NULL) {
		close(fd);
		s->fd = -1;
		return -1;
	}
	if (lseek(fd, (off_t)offset, SEEK_SET) < 0) {
		stream_close(s);
		return -1;
	}
	return 0;
}

int
follow_open(struct follow **out, bool watch)
{
	struct follow *f = calloc(1, sizeof(*f));

	*out = NULL;
	if (f == NULL)
		return -1;
	f->watch = watch;
	if (watch && !inotifytools_initialize()) {
		log_warnx("inotify: cannot initialise: %s", strerror(inotifytools_error()));
		free(f);
		return -1;
	}
	*out = f;
	return 0;
}

void
follow_close(struct follow *f)
{
	if (f == NULL)
		return;
	for (size_t i = 0; i < f->n; i++) {
		stream_close(&f->files[i].cur);
		stream_close(&f->files[i].old);
		free(f->files[i].path);
	}
	if (f->watch)
		inotifytools_cleanup();
	free(f);
}

/* watch_dir - the directory of path: creations, renames, changes of files */
static void
watch_dir(const char *path)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');
	int events = IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_MODIFY |
	    IN_CLOSE_WRITE | IN_ATTRIB;

	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	if (inotifytools_wd_from_filename(dir) > 0)
		return;
	if (!inotifytools_watch_file(dir, events))
		log_warnx("inotify: cannot watch %s: %s (polling it instead)", dir,
		    strerror(inotifytools_error()));
}

/* attach - open the log now at path: resume there if it is the same file */
static void
attach(struct lfile *lf, const struct log_position *resume)
{
	struct stat st;
	uint64_t offset = 0, hash;
	int fd = open_log(lf, &st);

	if (fd < 0)
		return;
	hash = first_line_hash(fd);
	if (resume && resume->inode == (uint64_t)st.st_ino && resume->first_hash == hash &&
	    resume->offset <= (uint64_t)st.st_size)
		offset = resume->offset;
	else if (resume && resume->offset > 0)
		log_info("%s: not the file of the saved position (rotated?): reading from "
		    "the start", lf->path);
	if (stream_start(&lf->cur, fd, (uint64_t)st.st_ino, offset) != 0) {
		log_warn("%s", lf->path);
		return;
	}
	lf->first_hash = hash;
}

int
follow_add(struct follow *f, const char *path, const struct log_position *resume)
{
	struct lfile *lf;

	if (f->n == FOLLOW_FILES_MAX) {
		log_warnx("%s: more than %d logs", path, FOLLOW_FILES_MAX);
		return -1;
	}
	lf = &f->files[f->n];
	memset(lf, 0, sizeof(*lf));
	lf->cur.fd = lf->old.fd = -1;
	if ((lf->path = strdup(path)) == NULL)
		return -1;
	attach(lf, resume);
	if (lf->cur.fd < 0 && !f->watch) {
		/* replay of a file that is not there: say so and fail */
		struct stat st;
		if (stat(path, &st) != 0)
			log_warn("%s", path);
		else
			log_warnx("%s: not a regular file", path);
		free(lf->path);
		return -1;
	}
	if (f->watch)
		watch_dir(path);
	return (int)f->n++;
}

size_t
follow_count(const struct follow *f)
{
	return f->n;
}

uint64_t
follow_skipped_lines(const struct follow *f)
{
	return f->skipped;
}

void
follow_position(const struct follow *f, size_t i, struct log_position *out)
{
	const struct lfile *lf = &f->files[i];

	memset(out, 0, sizeof(*out));
	snprintf(out->path, sizeof(out->path), "%s", lf->path);
	if (lf->cur.fd < 0 && lf->cur.buf == NULL)
		return;
	out->inode = lf->cur.inode;
	out->offset = lf->cur.buf_off + lf->cur.start;
	out->first_hash = lf->first_hash;
}

/* stream_fill - read what is there; 1 got bytes, 0 nothing new, -1 error */
static int
stream_fill(struct stream *s, const char *path)
{
	ssize_t n;

	if (s->start > 0 && (s->len == s->start || BUF_SIZE - s->len < BUF_SIZE / 4)) {
		memmove(s->buf, s->buf + s->start, s->len - s->start);
		s->buf_off += s->start;
		s->len -= s->start;
		s->start = 0;
	}
	if (s->len == BUF_SIZE)
		return 0;   /* full of an unfinished line: the caller skips it */
	n = read(s->fd, s->buf + s->len, BUF_SIZE - s->len);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		log_warn("%s: read", path);
		return -1;
	}
	s->eof = n == 0;
	s->len += (size_t)n;
	return n > 0;
}

/*
 * stream_lines - deliver complete lines from s, at most *budget; returns -1
 * if the callback asked to stop, else 0.  Lines longer than FOLLOW_LINE_MAX
 * are skipped.  With final, a last line without a newline is delivered too
 * (the old file after rotation: nobody will finish it).
 */
static int
stream_lines(struct follow *f, size_t idx, struct stream *s, struct lfile *lf,
    follow_line_cb cb, void *arg, size_t *budget, long *consumed, bool final)
{
	while (*budget > 0) {
		char *p = s->buf + s->start;
		size_t avail = s->len - s->start;
		char *nl = memchr(p, '\n', avail);
		size_t linelen;

		if (s->skipping) {
			if (nl == NULL) {
				s->start = s->len;
				return 0;
			}
			s->start += (size_t)(nl - p) + 1;
			s->skipping = false;
			(*consumed)++;
			continue;
		}
		if (nl == NULL) {
			if (avail >= FOLLOW_LINE_MAX) {
				log_warnx("%s: skipping a line longer than %d bytes at offset %llu",
				    lf->path, FOLLOW_LINE_MAX,
				    (unsigned long long)(s->buf_off + s->start));
				f->skipped++;
				s->skipping = true;
				continue;
			}
			if (!final || avail == 0)
				return 0;
			linelen = avail;
		} else {
			linelen = (size_t)(nl - p);
			if (linelen >= FOLLOW_LINE_MAX) {
				log_warnx("%s: skipping a line longer than %d bytes at offset %llu",
				    lf->path, FOLLOW_LINE_MAX,
				    (unsigned long long)(s->buf_off + s->start));
				f->skipped++;
				s->start += linelen + 1;
				(*consumed)++;
				continue;
			}
		}
		if (s == &lf->cur && s->buf_off + s->start == 0 && nl)
			lf->first_hash = follow_hash_line(p, linelen);
		s->start += linelen + (nl ? 1 : 0);
		(*consumed)++;
		(*budget)--;
		if (cb(arg, idx, p, linelen) != 0)
			return -1;
	}
	return 0;
}

/* check_rotation - is the file at path still ours, whole? */
static void
check_rotation(struct follow *f, struct lfile *lf)
{
	struct stat st, fst;

	if (!f->watch)
		return;
	if (lf->cur.fd < 0) {
		attach(lf, NULL);
		return;
	}
	if (fstat(lf->cur.fd, &fst) == 0 &&
	    (uint64_t)fst.st_size < lf->cur.buf_off + lf->cur.len) {
		log_info("%s: truncated: reading from the start", lf->path);
		goto restart;
	}
	if (lf->first_hash != 0 && lf->cur.buf_off + lf->cur.len > 0 &&
	    first_line_hash(lf->cur.fd) != lf->first_hash) {
		log_info("%s: rewritten in place: reading from the start", lf->path);
		goto restart;
	}
	if (stat(lf->path, &st) == 0 && (uint64_t)st.st_ino == lf->cur.inode)
		return;
	/* Renamed away (or deleted): keep reading the old file for a while,
	 * and take the new one at the path from its start. */
	if (lf->old.fd >= 0)
		stream_close(&lf->old);
	lf->old = lf->cur;
	lf->cur.fd = -1;
	lf->cur.buf = NULL;
	lf->old_until = time(NULL) + ROTATE_GRACE_SECS;
	lf->first_hash = 0;
	attach(lf, NULL);
	return;
restart:
	lf->cur.buf_off = 0;
	lf->cur.len = lf->cur.start = 0;
	lf->cur.skipping = false;
	lf->first_hash = 0;
	if (lseek(lf->cur.fd, 0, SEEK_SET) < 0)
		log_warn("%s: lseek", lf->path);
}

/* read_stream - fill and deliver until the budget or the data runs out */
static int
read_stream(struct follow *f, size_t idx, struct lfile *lf, struct stream *s,
    follow_line_cb cb, void *arg, size_t *budget, long *consumed, bool final)
{
	int got;

	if (s->fd < 0)
		return 0;
	do {
		if (stream_lines(f, idx, s, lf, cb, arg, budget, consumed, false) != 0)
			return -1;
		if (*budget == 0)
			return 0;
		if ((got = stream_fill(s, lf->path)) < 0)
			return -1;
		if (got == 0 && s->len == BUF_SIZE && s->start == 0)
			got = 1;   /* a buffer-long line: stream_lines skips it */
	} while (got > 0);
	return stream_lines(f, idx, s, lf, cb, arg, budget, consumed, final);
}

long
follow_read(struct follow *f, follow_line_cb cb, void *arg, size_t max_lines)
{
	size_t budget = max_lines;
	long consumed = 0;

	for (size_t k = 0; k < f->n && budget > 0; k++) {
		size_t i = (f->next + k) % f->n;
		struct lfile *lf = &f->files[i];
		bool expired;

		if (lf->old.fd >= 0) {
			expired = time(NULL) >= lf->old_until;
			if (read_stream(f, i, lf, &lf->old, cb, arg, &budget, &consumed,
			    expired) != 0)
				return -1;
			if (expired && budget > 0)
				stream_close(&lf->old);
		}
		if (read_stream(f, i, lf, &lf->cur, cb, arg, &budget, &consumed, false) != 0)
			return -1;
		if (budget > 0) {
			/* Caught up: only now is it safe to look for rotation (the
			 * old file has been read to its end). */
			check_rotation(f, lf);
			if (read_stream(f, i, lf, &lf->old, cb, arg, &budget, &consumed,
			    false) != 0 ||
			    read_stream(f, i, lf, &lf->cur, cb, arg, &budget, &consumed,
			    false) != 0)
				return -1;
		}
	}
	f->next = f->n ? (f->next + 1) % f->n : 0;
	return consumed;
}

int
follow_wait(struct follow *f, int timeout_ms)
{
	struct inotify_event *ev;
	long secs;

	if (!f->watch)
		return 0;
	secs = timeout_ms < 0 ? -1 : (timeout_ms + 999) / 1000;
	/* The library reports a select() failure through errno, a timeout not
	 * at all: clear errno to tell them apart. */
	errno = 0;
	ev = inotifytools_next_event(secs);
	if (ev == NULL) {
		if (errno != 0 && errno != EINTR && errno != EAGAIN) {
			log_warn("inotify");
			return -1;
		}
		return 0;
	}
	/* Drain what else is queued: one look at the files covers it all. */
	while (inotifytools_next_event(0) != NULL)
		;
	return 1;
}
