/*
 * follow - reads complete lines appended to log files (see follow.h).
 *
 * Each followed file has one read buffer (FOLLOW_BUF bytes, allocated at
 * follow_add, freed by follow_close) and at most one open descriptor.  Lines
 * are found with memchr in place and handed to the callback as pointers into
 * that buffer: nothing is allocated per line.
 *
 * Waking: libinotifytools hides its inotify descriptor and only waits in
 * whole seconds, so follow_open finds the descriptor it created (the one new
 * "anon_inode:inotify" entry in /proc/self/fd) and follow_wait poll()s it with
 * a millisecond timeout.  The events are read here, with one read(2), not
 * through inotifytools_next_events (a select(2) and a FIONREAD ioctl per
 * event, and one more select to find there are no more): the library keeps
 * the watches and their names; reading the events needs nothing of it.
 *
 * An event marks the file it concerns: "dirty" (read it) for a
 * modification, "check" as well for anything else (attributes, a rename, a
 * creation or deletion of its name, the queue overflowing).  follow_read
 * reads only marked files, and reads a file until a read comes back short
 * of the room it had (the end, for now), so an appended line costs one
 * read(2).  What happened to a file is decided at its end by fstat(fd)
 * against stat(path) (size below our offset: truncated; another inode at
 * the path: rotated): fstat when an event brought no data (a truncation is a
 * modification too), stat only when a check is due.  Every LOOK_MS each
 * file is marked for a check anyway, so an event missed (or a directory not
 * watched) costs a delay, never a line.  Two states no event announces the
 * end of are looked at every QUICK_LOOK_MS instead: a rotated file's
 * successor that is still empty (its first write makes no event we
 * watch), and an open file that could not be watched.
 *
 * Watches: each distinct directory once (creations, renames and deletions:
 * not modifications, or every write to every other log in /var/log would
 * wake us), and each open file through
 * /proc/self/fd/N, which names exactly the inode we read even after it was
 * renamed.  A file watch is removed before its descriptor is closed, so the
 * library's name table never holds a stale /proc/self/fd/N entry.
 *
 * Semantics worth knowing:
 * - A last line without newline is held, in one-shot mode too: replay does
 *   not deliver it and the position stays before it, so a later run (or the
 *   daemon) delivers it once it is complete.
 * - Rotation: while the new file at the path is still empty and the old one
 *   still has a name, we stay on the old one (the writer may not have
 *   reopened yet).  Once the new file has data (or the old one was deleted),
 *   the old one is read to its end, an unterminated tail of it is delivered
 *   as a last line (nobody will finish it), and the new file is read from 0
 *   -- once follow_committed says the old one's lines are committed, if the
 *   caller uses it: until then the old descriptor stays open, so a rewind
 *   after a refused batch can still seek back in it.
 * - Truncation is seen as size < our read offset at end of file; a file
 *   truncated and refilled beyond our offset between two looks is not
 *   detected while reading (the first-line hash is checked on resume and
 *   on rewind only).
 * - Lines longer than FOLLOW_LINE_MAX are skipped but count as consumed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <inotifytools/inotify.h>
#include <inotifytools/inotifytools.h>

#include "follow.h"
#include "log.h"
#include "unpack.h"

/* Large reads make replay fast (256 KiB: 1 MiB bought nothing measurable
 * and cost RSS); must exceed FOLLOW_LINE_MAX + 1. */
#define FOLLOW_BUF (256 * 1024)

#define DIR_EVENTS (IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | \
	IN_DELETE_SELF | IN_MOVE_SELF)
#define FILE_EVENTS (IN_MODIFY | IN_ATTRIB | IN_MOVE_SELF | IN_DELETE_SELF)

/* Every file is read and checked this often, events or not (a directory
 * that cannot be watched is only looked at this often). */
#define LOOK_MS 1000
/* ... and this often while no event can tell what we wait for (above). */
#define QUICK_LOOK_MS 100
/* One read(2) of the inotify descriptor: room for many events (an event is
 * 16 bytes and a name; the kernel wants room for one with NAME_MAX). */
#define EVENT_BUF 8192

struct ffile {
	char path[sizeof(((struct log_position *)0)->path)];
	char dir[PATH_MAX + 2];   /* directory, with a trailing '/' */
	const char *base;         /* last component of path */
	int fd;                   /* -1: missing */
	int file_wd;              /* watch on fd's inode, or -1 */
	int dir_wd;               /* watch on dir, or -1 */
	uint64_t dev, inode;
	uint64_t rd_off;          /* file offset of buf[end] */
	uint64_t pos_off;         /* byte after the last consumed line */
	uint64_t first_hash;
	char *buf;
	size_t start, end;        /* unconsumed bytes: buf[start..end) */
	/* One-shot mode, a compressed file: its decoder.  Offsets and the
	 * first-line hash are then those of the decoded text. */
	struct unpack *unpack;
	enum unpack_format packed;
	bool skipping;            /* inside a line longer than FOLLOW_LINE_MAX */
	bool warned_type;         /* path is not a regular file (warned once) */
	bool warned_open;
	bool warned_stat;         /* stat(path) failed, other than ENOENT */
	bool dirty;               /* may have data: read it */
	bool check;               /* may be truncated, renamed, replaced: look */
	bool quick;               /* look every QUICK_LOOK_MS (see the top) */
	bool has_resume;          /* resume not yet applied: file not seen yet */
	struct log_position resume;
	/* Once follow_committed was called: the position it recorded. */
	uint64_t c_inode, c_offset;
	bool told_wait;           /* "rotated; waiting for a commit" said */
	/* The file read before this one (set at a rotation), finished at
	 * prev_end: a rewind there means offset 0 of this one. */
	bool has_prev;
	uint64_t prev_inode, prev_end, prev_hash;
};

struct follow {
	bool watch;
	int ifd;                  /* libinotifytools' descriptor */
	struct ffile *files;
	size_t n, cap;
	size_t next;              /* round-robin start for fairness */
	bool more;                /* follow_read stopped early: data may wait */
	bool waiting;             /* a rotated file waits for follow_committed */
	bool fresh;               /* follow_wait took the events: the next
	                           * follow_read need not */
	bool tracking;            /* follow_committed was called */
	uint64_t skipped;
	int64_t next_look_ms;     /* every file is looked at by then */
	int64_t next_quick_ms;    /* files marked quick, by then */
	int pace_ms;              /* follow_set_pace */
	int64_t pace_until;       /* the last read that delivered lines + pace */
	bool streaming;           /* an event came within the pace: sleep it
	                           * out first next time */
	_Alignas(struct inotify_event) char events[EVENT_BUF];
};

static bool inotify_in_use;

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define FNV_BASIS 0xcbf29ce484222325ULL

/* fnv_add - continue an FNV-1a 64 hash (lines may arrive in pieces) */
static uint64_t
fnv_add(uint64_t h, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* follow_hash_line - FNV-1a 64 */
uint64_t
follow_hash_line(const char *s, size_t len)
{
	return fnv_add(FNV_BASIS, s, len);
}

/* inotify_fds - list the inotify descriptors open in this process */
static int
inotify_fds(int *fds, size_t max, size_t *n)
{
	DIR *d;
	struct dirent *de;
	char link[300], target[64];
	ssize_t len;

	*n = 0;
	if ((d = opendir("/proc/self/fd")) == NULL) {
		log_warn("opendir /proc/self/fd");
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(link, sizeof(link), "/proc/self/fd/%s", de->d_name);
		len = readlink(link, target, sizeof(target) - 1);
		if (len < 0)
			continue;   /* e.g. the directory's own fd, now closed */
		target[len] = '\0';
		if (strcmp(target, "anon_inode:inotify") == 0 && *n < max)
			fds[(*n)++] = atoi(de->d_name);
	}
	closedir(d);
	return 0;
}

/* start_inotify - initialise the library and learn which fd it made */
static int
start_inotify(int *out)
{
	int before[64], after[64];
	size_t nb, na, found = 0;
	int fd = -1;

	if (inotify_fds(before, 64, &nb) == -1)
		return -1;
	if (!inotifytools_initialize()) {
		errno = inotifytools_error();
		log_warn("inotifytools_initialize");
		return -1;
	}
	if (inotify_fds(after, 64, &na) == -1)
		goto fail;
	for (size_t i = 0; i < na; i++) {
		bool old = false;
		for (size_t j = 0; j < nb; j++)
			old = old || before[j] == after[i];
		if (!old) {
			fd = after[i];
			found++;
		}
	}
	if (found != 1) {
		log_warnx("cannot identify libinotifytools' descriptor "
		    "(%zu candidates)", found);
		goto fail;
	}
	/* Keep it out of anything the daemon may exec. */
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) == -1)
		log_warn("fcntl FD_CLOEXEC on inotify fd");
	/* We read it ourselves, after poll(2) said so; never block there. */
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == -1) {
		log_warn("fcntl O_NONBLOCK on inotify fd");
		goto fail;
	}
	*out = fd;
	return 0;
fail:
	inotifytools_cleanup();
	return -1;
}

/* follow_open - one-shot (watch false) or watching follower */
int
follow_open(struct follow **out, bool watch)
{
	struct follow *f;

	*out = NULL;
	if (watch && inotify_in_use) {
		log_warnx("follow: only one watching follower per process");
		return -1;
	}
	if ((f = calloc(1, sizeof(*f))) == NULL) {
		log_warn("calloc");
		return -1;
	}
	f->watch = watch;
	f->ifd = -1;
	if (watch) {
		if (start_inotify(&f->ifd) == -1) {
			free(f);
			return -1;
		}
		inotify_in_use = true;
		f->next_look_ms = now_ms() + LOOK_MS;
	}
	*out = f;
	return 0;
}

/* unwatch_file - drop the watch on the open file before its fd closes */
static void
unwatch_file(struct ffile *fl)
{
	if (fl->file_wd >= 0 && !inotifytools_remove_watch_by_wd(fl->file_wd))
		log_warnx("%s: cannot remove inotify watch", fl->path);
	fl->file_wd = -1;
}

static void
close_file(struct follow *f, struct ffile *fl)
{
	fl->quick = false;
	if (f->watch)
		unwatch_file(fl);
	unpack_close(fl->unpack);
	fl->unpack = NULL;
	if (fl->fd >= 0 && close(fl->fd) == -1)
		log_warn("close %s", fl->path);
	fl->fd = -1;
}

/* follow_close - close descriptors, drop watches, free buffers */
void
follow_close(struct follow *f)
{
	if (f == NULL)
		return;
	for (size_t i = 0; i < f->n; i++) {
		close_file(f, &f->files[i]);
		free(f->files[i].buf);
	}
	free(f->files);
	if (f->watch) {
		inotifytools_cleanup();   /* closes ifd too */
		inotify_in_use = false;
	}
	free(f);
}

/* watch_dir - watch the file's directory, sharing one watch per directory */
static void
watch_dir(struct follow *f, struct ffile *fl)
{
	int wd;

	for (size_t i = 0; i < f->n; i++) {
		if (&f->files[i] != fl && f->files[i].dir_wd >= 0 &&
		    strcmp(f->files[i].dir, fl->dir) == 0) {
			fl->dir_wd = f->files[i].dir_wd;
			return;
		}
	}
	if (!inotifytools_watch_file(fl->dir, DIR_EVENTS)) {
		if (!fl->warned_open) {
			errno = inotifytools_error();
			log_warn("%s: cannot watch directory %s", fl->path,
			    fl->dir);
		}
		return;
	}
	/* The library keys directories by their name with a trailing '/'. */
	if ((wd = inotifytools_wd_from_filename(fl->dir)) < 0)
		log_warnx("%s: no watch descriptor for %s", fl->path, fl->dir);
	fl->dir_wd = wd;
}

/* watch_file - watch the inode behind our fd, wherever it is renamed to */
static void
watch_file(struct ffile *fl)
{
	char name[64];

	snprintf(name, sizeof(name), "/proc/self/fd/%d", fl->fd);
	if (!inotifytools_watch_file(name, FILE_EVENTS)) {
		errno = inotifytools_error();
		log_warn("%s: cannot watch file (looking at it every %d ms instead)",
		    fl->path, QUICK_LOOK_MS);
		fl->quick = true;
		return;
	}
	fl->file_wd = inotifytools_wd_from_filename(name);
}

/* fd_first_line_hash - hash of fd's first line, 0 if it has none; buf
 * (FOLLOW_BUF bytes) is scratch */
static int
fd_first_line_hash(int fd, char *buf, const char *path, uint64_t *out)
{
	uint64_t h = FNV_BASIS;
	uint64_t off = 0;
	ssize_t n;

	*out = 0;
	for (;;) {
		n = pread(fd, buf, FOLLOW_BUF, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			log_warn("read %s", path);
			return -1;
		}
		if (n == 0)
			return 0;
		char *nl = memchr(buf, '\n', (size_t)n);
		h = fnv_add(h, buf, nl ? (size_t)(nl - buf) : (size_t)n);
		if (nl) {
			*out = h;
			return 0;
		}
		off += (uint64_t)n;
	}
}

/* first_line_hash - hash of the open file's first line, 0 if it has none */
static int
first_line_hash(struct ffile *fl, uint64_t *out)
{
	return fd_first_line_hash(fl->fd, fl->buf, fl->path, out);
}

/* last_line_end - offset of the byte after fd's last newline (0: none) */
static int
last_line_end(int fd, char *buf, const char *path, uint64_t size, uint64_t *out)
{
	uint64_t end = size;

	while (end > 0) {
		size_t n = end < FOLLOW_BUF ? (size_t)end : FOLLOW_BUF;
		ssize_t got = pread(fd, buf, n, (off_t)(end - n));
		char *nl;

		if (got < 0 && errno == EINTR)
			continue;
		if (got != (ssize_t)n) {
			if (got < 0)
				log_warn("read %s", path);
			else
				log_warnx("read %s: the file shrank while read", path);
			return -1;
		}
		if ((nl = memrchr(buf, '\n', n)) != NULL) {
			*out = end - n + (uint64_t)(nl - buf) + 1;
			return 0;
		}
		end -= n;
	}
	*out = 0;
	return 0;
}

/* follow_end_position - see follow.h */
int
follow_end_position(const char *path, struct log_position *out)
{
	struct stat st;
	char *buf = NULL;
	int fd, rv = -1;

	memset(out, 0, sizeof(*out));
	if (strlen(path) >= sizeof(out->path)) {
		log_warnx("follow: log path too long \"%.64s...\"", path);
		return -1;
	}
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd == -1) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		log_warn("open %s", path);
		return -1;
	}
	if (fstat(fd, &st) == -1) {
		log_warn("fstat %s", path);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rv = 0;
		goto out;
	}
	if ((buf = malloc(FOLLOW_BUF)) == NULL) {
		log_warn("malloc");
		goto out;
	}
	if (fd_first_line_hash(fd, buf, path, &out->first_hash) != 0 ||
	    last_line_end(fd, buf, path, (uint64_t)st.st_size, &out->offset) != 0)
		goto out;
	strcpy(out->path, path);
	out->inode = (uint64_t)st.st_ino;
	rv = 1;
out:
	free(buf);
	close(fd);
	return rv;
}

static void
reset_reading(struct ffile *fl)
{
	fl->rd_off = fl->pos_off = 0;
	fl->first_hash = 0;
	fl->start = fl->end = 0;
	fl->skipping = false;
	fl->told_wait = false;
}

/* restart_unpacked - the decoder again from the file's first byte */
static int
restart_unpacked(struct ffile *fl)
{
	unpack_close(fl->unpack);
	fl->unpack = NULL;
	if (lseek(fl->fd, 0, SEEK_SET) == -1) {
		log_warn("lseek %s", fl->path);
		return -1;
	}
	if (unpack_open(&fl->unpack, fl->fd, fl->packed) != 0) {
		log_warnx("%s: cannot start the %s decoder", fl->path,
		    unpack_format_name(fl->packed));
		return -1;
	}
	return 0;
}

/* unpacked_first_hash - the hash of the decoded first line (what a resume
 * compares), read with the decoder that is then started again */
static int
unpacked_first_hash(struct ffile *fl)
{
	uint64_t h = FNV_BASIS;
	ssize_t n;

	for (;;) {
		if ((n = unpack_read(fl->unpack, fl->buf, FOLLOW_BUF)) < 0) {
			log_warnx("%s: %s", fl->path, unpack_error(fl->unpack));
			return -1;
		}
		char *nl = memchr(fl->buf, '\n', (size_t)n);
		h = fnv_add(h, fl->buf, nl ? (size_t)(nl - fl->buf) : (size_t)n);
		if (nl || n == 0)
			break;
	}
	fl->first_hash = n == 0 && h == FNV_BASIS ? 0 : h;
	return restart_unpacked(fl);
}

/*
 * open_unpacked - one-shot mode: a compressed file is read through its
 * decoder (unpack.h), told by its first bytes.  A format not decoded here
 * is refused (replay and test-rules say so before they get here).
 */
static int
open_unpacked(struct ffile *fl)
{
	unsigned char head[UNPACK_MAGIC_MAX];
	enum unpack_format fmt;
	const char *name;
	ssize_t n;

	do
		n = pread(fl->fd, head, sizeof(head), 0);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		log_warn("read %s", fl->path);
		return -1;
	}
	fmt = unpack_sniff(head, (size_t)n, &name);
	if (fmt == UNPACK_PLAIN)
		return 0;
	if (fmt == UNPACK_FOREIGN) {
		log_warnx("%s: %s data, not read (gzip, xz and bzip2 are)", fl->path, name);
		return -1;
	}
	fl->packed = fmt;
	if (restart_unpacked(fl) != 0)
		return -1;
	return unpacked_first_hash(fl);
}

/*
 * resume_unpacked - go to a saved position in a compressed file: decode
 * and drop the bytes before it, keeping what follows it in the buffer.
 * A position that does not fit the file (another inode, another first
 * line, beyond its end) means it was rewritten: read from the start.
 */
static int
resume_unpacked(struct ffile *fl, const struct log_position *r)
{
	uint64_t total = 0;
	ssize_t n = 1;

	if (r->offset == 0)
		return 0;
	if (r->inode == fl->inode && r->first_hash == fl->first_hash) {
		while (total < r->offset) {
			if ((n = unpack_read(fl->unpack, fl->buf, FOLLOW_BUF)) < 0) {
				log_warnx("%s: %s", fl->path, unpack_error(fl->unpack));
				return -1;
			}
			if (n == 0)
				break;
			total += (uint64_t)n;
		}
		if (total >= r->offset) {
			fl->start = (size_t)(r->offset - (total - (uint64_t)n));
			fl->end = (size_t)n;
			fl->rd_off = total;
			fl->pos_off = r->offset;
			return 0;
		}
	}
	log_info("%s: saved position does not match the file (rotated or rewritten), "
	    "reading from the start", fl->path);
	fl->start = fl->end = 0;
	fl->rd_off = fl->pos_off = 0;
	return restart_unpacked(fl);
}

/*
 * open_file - open the path if it is a regular file.  Returns 1 if opened,
 * 0 if missing (or not a regular file: warned once), -1 on error.  A pending
 * resume position is applied here, the first time the file is seen.
 */
static int
open_file(struct follow *f, struct ffile *fl)
{
	struct stat st;
	uint64_t h;
	int fd, rv = -1;

	/* No access-time update per read (the writer keeps mtime newer, so
	 * relatime would write the inode at every read); only the owner or
	 * root may ask that, so without it after the privilege drop. */
	fd = open(fl->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY | O_NOATIME);
	if (fd == -1 && errno == EPERM)
		fd = open(fl->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd == -1) {
		if (errno != ENOENT && !fl->warned_open) {
			log_warn("open %s (treated as missing)", fl->path);
			fl->warned_open = true;
		}
		return 0;
	}
	if (fstat(fd, &st) == -1) {
		log_warn("fstat %s", fl->path);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		if (!fl->warned_type)
			log_warnx("%s: not a regular file, treated as missing",
			    fl->path);
		fl->warned_type = true;
		rv = 0;
		goto out;
	}
	fl->warned_type = fl->warned_open = false;
	fl->fd = fd;
	fd = -1;
	fl->dev = (uint64_t)st.st_dev;
	fl->inode = (uint64_t)st.st_ino;
	reset_reading(fl);
	if (!f->watch && open_unpacked(fl) != 0)
		goto out;

	if (fl->has_resume && fl->unpack != NULL) {
		fl->has_resume = false;
		if (resume_unpacked(fl, &fl->resume) != 0)
			goto out;
	} else if (fl->has_resume) {
		const struct log_position *r = &fl->resume;

		fl->has_resume = false;
		if (r->offset == 0)
			goto opened;   /* from the start anyway */
		if (first_line_hash(fl, &h) == -1)
			goto out;
		if (r->inode == fl->inode && r->offset <= (uint64_t)st.st_size &&
		    r->first_hash == h) {
			if (lseek(fl->fd, (off_t)r->offset, SEEK_SET) == -1) {
				log_warn("lseek %s", fl->path);
				goto out;
			}
			fl->rd_off = fl->pos_off = r->offset;
			fl->first_hash = h;
		} else {
			log_info("%s: saved position does not match the file "
			    "(rotated or rewritten), reading from the start",
			    fl->path);
		}
	}
opened:
	fl->quick = false;
	if (f->watch)
		watch_file(fl);
	fl->dirty = true;
	rv = 1;
out:
	if (fd >= 0)
		close(fd);
	if (rv == -1 && fl->fd >= 0)
		close_file(f, fl);
	return rv;
}

/* follow_add - register a log file, see follow.h */
int
follow_add(struct follow *f, const char *path, const struct log_position *resume)
{
	struct ffile *fl;
	const char *slash;
	size_t dlen;

	if (strlen(path) >= sizeof(fl->path) || path[0] == '\0') {
		log_warnx("follow: bad log path \"%.64s\"", path);
		return -1;
	}
	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 4;
		struct ffile *nf = reallocarray(f->files, cap, sizeof(*nf));
		if (nf == NULL) {
			log_warn("reallocarray");
			return -1;
		}
		f->files = nf;
		f->cap = cap;
	}
	fl = &f->files[f->n];
	memset(fl, 0, sizeof(*fl));
	fl->fd = fl->file_wd = fl->dir_wd = -1;
	strcpy(fl->path, path);
	if ((slash = strrchr(fl->path, '/')) == NULL) {
		strcpy(fl->dir, "./");
		fl->base = fl->path;
	} else {
		dlen = (size_t)(slash - fl->path) + 1;
		if (dlen >= sizeof(fl->dir)) {
			log_warnx("%s: directory name too long", path);
			return -1;
		}
		memcpy(fl->dir, fl->path, dlen);
		fl->dir[dlen] = '\0';
		fl->base = slash + 1;
	}
	if (fl->base[0] == '\0') {
		log_warnx("%s: not a file name", path);
		return -1;
	}
	if (resume != NULL && resume->path[0] != '\0' &&
	    strcmp(resume->path, path) != 0) {
		log_warnx("%s: saved position is for %s, ignored", path,
		    resume->path);
		resume = NULL;
	}
	if (resume != NULL) {
		fl->resume = *resume;
		fl->has_resume = true;
	}
	if ((fl->buf = malloc(FOLLOW_BUF)) == NULL) {
		log_warn("malloc");
		return -1;
	}
	/* Watch the directory first, so a file created meanwhile is seen. */
	if (f->watch)
		watch_dir(f, fl);
	switch (open_file(f, fl)) {
	case 1:
		break;
	case 0:
		if (!f->watch) {
			if (!fl->warned_type && !fl->warned_open)
				log_warnx("%s: no such file", path);
			goto fail;
		}
		log_info("%s: not there yet, waiting for it", path);
		break;
	default:
		goto fail;
	}
	return (int)f->n++;
fail:
	close_file(f, fl);
	free(fl->buf);
	fl->buf = NULL;
	return -1;
}

int
follow_fd(const struct follow *f)
{
	return f->ifd;
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

/* follow_position - where the next line for file i starts */
void
follow_position(const struct follow *f, size_t i, struct log_position *out)
{
	const struct ffile *fl = &f->files[i];

	/* Not opened yet: keep the saved position rather than erase it. */
	if (fl->has_resume && fl->fd < 0) {
		*out = fl->resume;
		return;
	}
	memset(out, 0, sizeof(*out));
	strcpy(out->path, fl->path);
	out->inode = fl->inode;
	out->offset = fl->pos_off;
	out->first_hash = fl->first_hash;
}

/* seek_to - read the open file again from off (hash: of its first line) */
static int
seek_to(struct ffile *fl, uint64_t off, uint64_t hash)
{
	if (lseek(fl->fd, (off_t)off, SEEK_SET) == -1) {
		log_warn("lseek %s", fl->path);
		return -1;
	}
	fl->rd_off = fl->pos_off = off;
	fl->first_hash = hash;
	fl->start = fl->end = 0;
	fl->skipping = false;
	fl->dirty = true;
	return 0;
}

/* follow_rewind - see follow.h */
int
follow_rewind(struct follow *f, size_t i, const struct log_position *pos)
{
	struct ffile *fl = &f->files[i];
	struct stat st;
	uint64_t h;
	int rc = 0;

	f->more = true;   /* follow_wait must not sleep on lines to re-read */
	if (fl->fd >= 0 && pos->inode == fl->inode && pos->offset <= fl->rd_off) {
		uint64_t off = pos->offset, hash = pos->first_hash;

		/*
		 * The same inode may hold other bytes by now: copytruncate, and
		 * the writer refilled it past pos while the batch waited.
		 * Going to pos would skip the new bytes before it and start
		 * mid-line; all of it is new, so read it from the start.
		 */
		if (off > 0) {
			if (fstat(fl->fd, &st) == -1) {
				log_warn("fstat %s", fl->path);
				goto resume;
			}
			if (first_line_hash(fl, &h) == -1)
				goto resume;
			if ((uint64_t)st.st_size < off || h != pos->first_hash) {
				log_warnx("%s: truncated or rewritten since the last "
				    "saved position, reading from the start", fl->path);
				off = hash = 0;
			}
		}
		if (seek_to(fl, off, hash) == 0)
			return 0;
		rc = -1;
	} else if (fl->fd >= 0 && fl->has_prev && pos->inode == fl->prev_inode &&
	    pos->offset == fl->prev_end && pos->first_hash == fl->prev_hash) {
		/* The last commit finished the file before this one (a
		 * rotation is only crossed once that is saved): the batch
		 * began at this one's start. */
		if (seek_to(fl, 0, 0) == 0)
			return 0;
		rc = -1;
	}
resume:
	close_file(f, fl);
	reset_reading(fl);
	fl->dirty = fl->check = true;   /* reopen at the next read */
	fl->has_prev = false;
	fl->resume = *pos;
	fl->has_resume = pos->offset > 0;
	return rc;
}

/* follow_committed - see follow.h */
void
follow_committed(struct follow *f)
{
	struct log_position pos;

	f->tracking = true;
	for (size_t i = 0; i < f->n; i++) {
		follow_position(f, i, &pos);
		f->files[i].c_inode = pos.inode;
		f->files[i].c_offset = pos.offset;
	}
}

/* skipped_first_hash - hash a too-long first line straight from the file */
static void
skipped_first_hash(struct ffile *fl)
{
	uint64_t h = FNV_BASIS, off = 0;
	char tmp[4096];
	ssize_t n;

	for (;;) {
		n = pread(fl->fd, tmp, sizeof(tmp), (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n < 0)
				log_warn("read %s", fl->path);
			return;
		}
		char *nl = memchr(tmp, '\n', (size_t)n);
		h = fnv_add(h, tmp, nl ? (size_t)(nl - tmp) : (size_t)n);
		if (nl) {
			fl->first_hash = h;
			return;
		}
		off += (uint64_t)n;
	}
}

/*
 * consumed - a line (delivered, or skipped when line is NULL) ended at
 * buffer index end_idx; the position moves past it.
 */
static void
consumed(struct ffile *fl, size_t end_idx, const char *line, size_t len)
{
	bool first = fl->pos_off == 0;

	fl->pos_off = fl->rd_off - (fl->end - end_idx);
	if (first && fl->first_hash == 0) {
		if (line != NULL)
			fl->first_hash = follow_hash_line(line, len);
		else
			skipped_first_hash(fl);
	}
}

static void
skip_warn(struct follow *f, struct ffile *fl)
{
	f->skipped++;
	log_warnx("%s: line at offset %ju longer than %d bytes, skipped",
	    fl->path, (uintmax_t)(fl->rd_off - (fl->end - fl->start)),
	    FOLLOW_LINE_MAX);
}

/*
 * deliver - hand complete lines in the buffer to cb.  Returns 1 if it must
 * stop (budget used up or cb asked), 0 when the buffer holds no complete
 * line any more.
 */
static int
deliver(struct follow *f, size_t idx, follow_line_cb cb, void *arg,
    size_t *budget, long *count)
{
	struct ffile *fl = &f->files[idx];
	char *nl, *line;
	size_t len;

	while (fl->start < fl->end) {
		if (*budget == 0)
			return 1;
		line = fl->buf + fl->start;
		nl = memchr(line, '\n', fl->end - fl->start);
		if (fl->skipping) {
			if (nl == NULL) {
				fl->start = fl->end;
				break;
			}
			fl->skipping = false;
			fl->start = (size_t)(nl - fl->buf) + 1;
			consumed(fl, fl->start, NULL, 0);
			continue;
		}
		if (nl == NULL) {
			if (fl->end - fl->start > FOLLOW_LINE_MAX) {
				skip_warn(f, fl);
				fl->skipping = true;
				fl->start = fl->end;
			}
			break;
		}
		len = (size_t)(nl - line);
		if (len > FOLLOW_LINE_MAX) {
			skip_warn(f, fl);
			fl->start = (size_t)(nl - fl->buf) + 1;
			consumed(fl, fl->start, NULL, 0);
			continue;
		}
		fl->start = (size_t)(nl - fl->buf) + 1;
		consumed(fl, fl->start, line, len);
		(*budget)--;
		(*count)++;
		if (cb(arg, idx, line, len) != 0)
			return 1;
	}
	if (fl->start == fl->end)
		fl->start = fl->end = 0;
	return 0;
}

/* deliver_tail - the unterminated rest of a finished file, as its last
 * line; 1 if reading must stop (no budget left, or cb asked), else 0 */
static int
deliver_tail(struct ffile *fl, size_t idx, follow_line_cb cb, void *arg,
    size_t *budget, long *count)
{
	size_t len = fl->end - fl->start;
	const char *line = fl->buf + fl->start;

	if (*budget == 0)
		return 1;
	fl->start = fl->end;
	consumed(fl, fl->end, line, len);
	(*budget)--;
	(*count)++;
	return cb(arg, idx, line, len) != 0;
}

/*
 * fill - read more of the file; >0 bytes read, 0 at end of file, -1 error.
 * *at_end tells whether the read met the end of the file: it came back short
 * of the room it had (a regular file reads short only there), so reading
 * again now would only return 0.
 */
static ssize_t
fill(struct ffile *fl, bool *at_end)
{
	size_t room;
	ssize_t n;

	if (fl->end == FOLLOW_BUF) {
		/* What is left is a partial line of at most FOLLOW_LINE_MAX. */
		memmove(fl->buf, fl->buf + fl->start, fl->end - fl->start);
		fl->end -= fl->start;
		fl->start = 0;
	}
	if (fl->unpack != NULL) {
		if ((n = unpack_read(fl->unpack, fl->buf + fl->end, FOLLOW_BUF - fl->end)) < 0) {
			log_warnx("%s: %s", fl->path, unpack_error(fl->unpack));
			return -1;
		}
		*at_end = n == 0;
		fl->end += (size_t)n;
		fl->rd_off += (uint64_t)n;
		return n;
	}
	room = FOLLOW_BUF - fl->end;
	do
		n = read(fl->fd, fl->buf + fl->end, room);
	while (n == -1 && errno == EINTR);
	if (n == -1) {
		*at_end = true;
		if (errno == EAGAIN)
			return 0;
		log_warn("read %s", fl->path);
		return -1;
	}
	*at_end = (size_t)n < room;
	fl->end += (size_t)n;
	fl->rd_off += (uint64_t)n;
	return n;
}

enum eof_action { EOF_IDLE, EOF_PENDING, EOF_EMPTY, EOF_AGAIN, EOF_SWITCH, EOF_ERROR };

/*
 * at_eof - decide what end of file means (watching only): nothing new,
 * truncation (restart at 0), or, if path_too, rotation (the path names
 * another file).  EOF_PENDING: the path names no file or another one we
 * do not switch to yet; look again at the next read.  EOF_EMPTY: the path
 * names a new, still empty file (no event will say when it gets data).
 */
static enum eof_action
at_eof(struct ffile *fl, bool path_too)
{
	struct stat st, pst;
	bool at_end;
	ssize_t n;

	if (fstat(fl->fd, &st) == -1) {
		log_warn("fstat %s", fl->path);
		return EOF_ERROR;
	}
	if ((uint64_t)st.st_size < fl->rd_off) {
		log_warnx("%s: truncated (size %jd, we were at %ju), reading "
		    "from the start", fl->path, (intmax_t)st.st_size,
		    (uintmax_t)fl->rd_off);
		if (lseek(fl->fd, 0, SEEK_SET) == -1) {
			log_warn("lseek %s", fl->path);
			return EOF_ERROR;
		}
		reset_reading(fl);
		return EOF_AGAIN;
	}
	if (!path_too)
		return EOF_IDLE;
	if (stat(fl->path, &pst) == -1) {
		/* Said once (this is asked after every read), again only after
		 * it worked in between. */
		if (errno != ENOENT && !fl->warned_stat)
			log_warn("%s: cannot look at the name (a rotation is not "
			    "noticed until this clears; said once)", fl->path);
		fl->warned_stat = errno != ENOENT;
		return EOF_PENDING;   /* renamed away, successor not there yet */
	}
	if (fl->warned_stat)
		log_info("%s: can look at the name again", fl->path);
	fl->warned_stat = false;
	if ((uint64_t)pst.st_ino == fl->inode &&
	    (uint64_t)pst.st_dev == fl->dev)
		return EOF_IDLE;
	if (!S_ISREG(pst.st_mode)) {
		if (!fl->warned_type)
			log_warnx("%s: not a regular file, treated as missing",
			    fl->path);
		fl->warned_type = true;
		return EOF_PENDING;
	}
	/*
	 * A new, still empty file while the old one lives on: the writer may
	 * not have reopened yet and still appends to the old one.
	 */
	if (pst.st_size == 0 && st.st_nlink > 0)
		return EOF_EMPTY;
	/* Drain: whatever reached the old file before the switch is ours. */
	if ((n = fill(fl, &at_end)) == -1)
		return EOF_ERROR;
	if (n > 0)
		return EOF_AGAIN;
	return EOF_SWITCH;
}

/*
 * read_file - deliver lines of one file until budget, stop or no data.
 * Returns 1 if it stopped with lines left, 0 when none are left now, 2 if
 * the file rotated and waits for a commit before its successor is read,
 * -1 on error.  Clears the file's check mark once a check found nothing
 * (see the top of this file); its dirty mark is the caller's.
 */
static int
read_file(struct follow *f, size_t idx, follow_line_cb cb, void *arg,
    size_t *budget, long *count)
{
	struct ffile *fl = &f->files[idx];
	bool got = false, at_end = false;
	ssize_t n;
	int r;

	for (;;) {
		if (deliver(f, idx, cb, arg, budget, count))
			return 1;
		if (fl->fd < 0) {
			if (!f->watch)
				return 0;
			if ((r = open_file(f, fl)) <= 0)
				return r;
			at_end = got = false;
			continue;
		}
		if (!at_end) {
			if ((n = fill(fl, &at_end)) == -1)
				return -1;
			if (n > 0) {
				got = true;
				continue;
			}
		}
		if (!f->watch && fl->unpack == NULL)
			return 0;   /* one-shot: a partial last line is held */
		if (!f->watch) {
			/* A compressed file is finished: nobody appends to
			 * it, so an unterminated tail is its last line. */
			if (fl->start < fl->end && !fl->skipping)
				return deliver_tail(fl, idx, cb, arg, budget, count);
			return 0;
		}
		/* Lines came and no event said more than "modified": the
		 * common case, and no system call more. */
		if (got && !fl->check)
			return 0;
		switch (at_eof(fl, fl->check)) {
		case EOF_IDLE:
			fl->check = false;
			fl->quick = fl->file_wd < 0;
			return 0;
		case EOF_PENDING:
			fl->quick = fl->file_wd < 0;
			return 0;
		case EOF_EMPTY:
			fl->quick = true;
			return 0;
		case EOF_AGAIN:
			at_end = false;
			continue;
		case EOF_ERROR:
			return -1;
		case EOF_SWITCH:
			break;
		}
		/* The old file is finished: its unterminated tail is a line.
		 * (Stopped there, the next read switches.) */
		if (fl->start < fl->end && !fl->skipping &&
		    deliver_tail(fl, idx, cb, arg, budget, count) != 0)
			return 1;
		/*
		 * Lines of the old file not committed yet: a batch that went on
		 * into the new file and were refused could only resume by path,
		 * i.e. in the new file, and the old one's lines would be lost.
		 * Stop here; once the caller has committed, the next read
		 * switches (and a rewind meanwhile finds this descriptor).
		 */
		if (f->tracking && (fl->c_inode != fl->inode ||
		    fl->c_offset != fl->pos_off)) {
			if (!fl->told_wait)
				log_info("%s: rotated; the new file is read once the "
				    "old one's last lines are saved", fl->path);
			fl->told_wait = true;
			return 2;
		}
		log_info("%s: rotated, following the new file", fl->path);
		fl->has_prev = f->tracking;
		fl->prev_inode = fl->inode;
		fl->prev_end = fl->pos_off;
		fl->prev_hash = fl->first_hash;
		close_file(f, fl);
		fl->has_resume = false;
		reset_reading(fl);
		if ((r = open_file(f, fl)) <= 0)
			return r;
		at_end = got = false;
	}
}

static int take_events(struct follow *f, bool *hit);

/* follow_read - see follow.h */
long
follow_read(struct follow *f, follow_line_cb cb, void *arg, size_t max_lines)
{
	size_t budget = max_lines;
	long count = 0;
	bool waiting = false;
	int r;

	f->more = false;
	f->waiting = false;
	if (f->n == 0)
		return 0;
	/* Events since the last look (none when follow_wait just took them:
	 * the daemon's case, which saves a read(2) per wake-up). */
	if (f->watch && !f->fresh && take_events(f, NULL) == -1)
		return -1;
	f->fresh = false;
	for (size_t k = 0; k < f->n; k++) {
		size_t idx = (f->next + k) % f->n;
		struct ffile *fl = &f->files[idx];

		/* Watching: only what an event (or a look) marked. */
		if (f->watch && !fl->dirty && !fl->check)
			continue;
		if ((r = read_file(f, idx, cb, arg, &budget, &count)) == -1)
			return -1;
		if (r == 0)
			fl->dirty = false;
		if (r == 2)
			waiting = true;   /* the others may go on */
		if (r == 1) {
			f->more = true;
			/* Next call starts after the file that had more. */
			f->next = (idx + 1) % f->n;
			if (budget > 0)
				f->next = idx;   /* cb stopped us mid-file */
			return count;
		}
	}
	/* A switch waits for the caller's commit: read again right after. */
	if (waiting)
		f->more = f->waiting = true;
	if (count > 0 && f->pace_ms > 0)
		f->pace_until = now_ms() + f->pace_ms;
	return count;
}

/* follow_set_pace - see follow.h */
void
follow_set_pace(struct follow *f, int ms)
{
	f->pace_ms = ms > 0 ? ms : 0;
	f->pace_until = 0;
	f->streaming = false;
}

/* follow_waits_commit - see follow.h */
bool
follow_waits_commit(const struct follow *f)
{
	return f->waiting;
}

/* mark - what an event says about the files we follow; true if it
 * concerns one */
static bool
mark(struct follow *f, const struct inotify_event *ev)
{
	bool hit = false;

	for (size_t i = 0; i < f->n; i++) {
		struct ffile *fl = &f->files[i];
		bool mine = false, more = false;

		if (ev->mask & IN_Q_OVERFLOW) {
			mine = more = true;   /* events were lost: look at all */
		} else if (fl->file_wd >= 0 && ev->wd == fl->file_wd) {
			mine = true;
			more = (ev->mask & ~(uint32_t)IN_MODIFY) != 0;
		} else if (fl->dir_wd >= 0 && ev->wd == fl->dir_wd) {
			if (ev->mask & IN_IGNORED) {
				/*
				 * The directory is gone.  The library keeps its
				 * stale name entry, so it is not watched again:
				 * the file is only looked at every LOOK_MS.
				 */
				log_warnx("%s: directory %s is gone, no longer "
				    "watched", fl->path, fl->dir);
				fl->dir_wd = -1;
				mine = more = true;
			} else if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
				mine = more = true;
			} else if (ev->len > 0 && strcmp(ev->name, fl->base) == 0) {
				mine = more = true;   /* created, renamed, deleted */
			}
		}
		if (mine) {
			fl->dirty = true;
			fl->check = fl->check || more;
			hit = true;
		}
	}
	return hit;
}

/* take_events - read the events the kernel has now (one read); *hit (if
 * not NULL) is set if one concerns a file we follow */
static int
take_events(struct follow *f, bool *hit)
{
	const struct inotify_event *ev;
	ssize_t n;

	f->fresh = true;
	n = read(f->ifd, f->events, sizeof(f->events));
	if (n == -1) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		log_warn("reading inotify events");
		return -1;
	}
	for (ssize_t off = 0; off + (ssize_t)sizeof(*ev) <= n;
	    off += (ssize_t)(sizeof(*ev) + ev->len)) {
		ev = (const struct inotify_event *)(f->events + off);
		if (mark(f, ev) && hit != NULL)
			*hit = true;
	}
	return 0;
}

/*
 * Pacing (follow_set_pace).  An event that comes less than pace_ms after a
 * read that delivered lines means lines are coming fast: its events are
 * taken only once the pace is over, so the lines appended meanwhile come in
 * the same read.  From then on (streaming) a wait sleeps out the pace first,
 * without waking for each event, until a pace passes with nothing new.
 * Lines further apart than the pace cost nothing more: each is read at once.
 *
 * sleep_out - sleep until the pace is over (or the caller's deadline),
 * awake only for the caller's descriptors.  Returns 0, 1 if one of them is
 * ready, 2 on a signal, -1 on error.
 */
static int
sleep_out(struct follow *f, int timeout_ms, int64_t deadline, struct pollfd *extra,
    size_t nextra)
{
	int64_t now = now_ms(), until = f->pace_until;
	int rc;

	if (timeout_ms >= 0 && deadline < until)
		until = deadline;
	if (until <= now)
		return 0;
	rc = poll(extra, (nfds_t)nextra, (int)(until - now));
	if (rc == -1) {
		if (errno == EINTR)
			return 2;
		log_warn("poll");
		return -1;
	}
	return rc > 0;
}

/* follow_wait - see follow.h */
int
follow_wait(struct follow *f, int timeout_ms)
{
	return follow_wait_fds(f, timeout_ms, NULL, 0);
}

/* follow_wait_fds - see follow.h */
int
follow_wait_fds(struct follow *f, int timeout_ms, struct pollfd *extra, size_t nextra)
{
	struct pollfd pfd[1 + FOLLOW_EXTRA_FDS_MAX];
	int64_t deadline = 0;

	if (!f->watch) {
		log_warnx("follow_wait: not watching (one-shot mode)");
		return -1;
	}
	if (nextra > FOLLOW_EXTRA_FDS_MAX) {
		log_warnx("follow_wait: more than %d other descriptors", FOLLOW_EXTRA_FDS_MAX);
		return -1;
	}
	for (size_t i = 0; i < nextra; i++)
		extra[i].revents = 0;
	if (f->more)
		return 1;
	if (timeout_ms >= 0)
		deadline = now_ms() + timeout_ms;
	if (f->streaming && now_ms() < f->pace_until) {
		bool hit = false;
		int r = sleep_out(f, timeout_ms, deadline, extra, nextra);

		if (r == -1 || take_events(f, &hit) == -1)
			return -1;
		if (r == 2)
			return 0;   /* a signal */
		if (hit || r == 1)
			return 1;
		f->streaming = false;   /* nothing new: the stream paused */
		if (timeout_ms >= 0 && now_ms() >= deadline)
			return 0;
	}
	for (;;) {
		int64_t now = now_ms(), wait = f->next_look_ms - now;
		bool hit = false, other = false, quick = false;
		int rc;

		for (size_t i = 0; i < f->n; i++)
			quick = quick || f->files[i].quick;
		if (quick && f->next_quick_ms - now < wait)
			wait = f->next_quick_ms - now;
		if (wait <= 0) {
			/* The periodic looks: every file, events or not, or
			 * the ones no event can tell about. */
			bool all = now >= f->next_look_ms;

			for (size_t i = 0; i < f->n; i++)
				if (all || f->files[i].quick)
					f->files[i].dirty = f->files[i].check = true;
			if (all)
				f->next_look_ms = now + LOOK_MS;
			f->next_quick_ms = now + QUICK_LOOK_MS;
			return 1;
		}
		if (timeout_ms >= 0) {
			if (deadline - now < wait)
				wait = deadline - now > 0 ? deadline - now : 0;
		}
		pfd[0].fd = f->ifd;
		pfd[0].events = POLLIN;
		pfd[0].revents = 0;
		for (size_t i = 0; i < nextra; i++) {
			pfd[1 + i] = extra[i];
			pfd[1 + i].revents = 0;
		}
		rc = poll(pfd, (nfds_t)(1 + nextra), (int)wait);
		if (rc == -1) {
			if (errno == EINTR)
				return 0;
			log_warn("poll");
			return -1;
		}
		for (size_t i = 0; i < nextra; i++) {
			extra[i].revents = pfd[1 + i].revents;
			if (pfd[1 + i].revents)
				other = true;
		}
		if (!pfd[0].revents) {
			f->fresh = true;   /* no event was waiting */
		} else {
			if (!other && now_ms() < f->pace_until) {
				/* Lines come fast: let the next ones join. */
				int r = sleep_out(f, timeout_ms, deadline, extra, nextra);

				if (r == -1)
					return -1;
				if (r == 2)
					return 0;
				other = r == 1;
				f->streaming = true;
			}
			if (take_events(f, &hit) == -1)
				return -1;
		}
		if (hit || other)
			return 1;
		if (rc == 0 && timeout_ms >= 0 && now_ms() >= deadline)
			return 0;
		/* Only other files in our directories changed, or the look
		 * is due: go round. */
	}
}
