/*
 * logfiles - is it a log, and from when.  See logfiles.h.
 */
#include "logfiles.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* read_head - the first LOGFILES_SNIFF bytes of the file's content
 * (decoded if compressed) into buf; their count, or -1 (err set) */
static ssize_t
read_head(int fd, const char *path, enum unpack_format fmt, char *buf, char *err,
    size_t errlen)
{
	struct unpack *u = NULL;
	size_t got = 0;
	ssize_t n = 0;

	if (fmt != UNPACK_PLAIN && unpack_open(&u, fd, fmt) != 0) {
		snprintf(err, errlen, "%s: cannot start the %s decoder", path,
		    unpack_format_name(fmt));
		return -1;
	}
	while (got < LOGFILES_SNIFF) {
		if (u != NULL)
			n = unpack_read(u, buf + got, LOGFILES_SNIFF - got);
		else
			do
				n = pread(fd, buf + got, LOGFILES_SNIFF - got, (off_t)got);
			while (n < 0 && errno == EINTR);
		if (n < 0) {
			if (u != NULL)
				snprintf(err, errlen, "%s: %s", path, unpack_error(u));
			else
				snprintf(err, errlen, "%s: %s", path, strerror(errno));
			got = 0;
			break;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	unpack_close(u);
	return n < 0 ? -1 : (ssize_t)got;
}

/* first_stamp - the stamp of the first line of buf[0..len) that has one;
 * 0 found, 1 none, -1 a NUL byte came first (binary) */
static int
first_stamp(struct logtime *lt, const char *buf, size_t len, int64_t *t)
{
	const char *p = buf, *end = buf + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t llen = nl ? (size_t)(nl - p) : (size_t)(end - p);
		size_t used;

		if (memchr(p, '\0', llen) != NULL)
			return -1;
		if (logtime_parse(lt, p, llen, t, &used) == 0 && used < llen && p[used] == ' ')
			return 0;
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	return 1;
}

enum logfiles_verdict
logfiles_inspect(const char *path, struct logtime *lt, struct logfile_info *out,
    char *err, size_t errlen)
{
	unsigned char head[UNPACK_MAGIC_MAX];
	enum logfiles_verdict v = LOGFILES_UNREADABLE;
	const char *name = NULL;
	char *buf = NULL;
	struct stat st;
	ssize_t n;
	int fd, r;

	memset(out, 0, sizeof(*out));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return LOGFILES_UNREADABLE;
	}
	if (fstat(fd, &st) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		v = LOGFILES_NOT_LOG;
		goto out;
	}
	do
		n = pread(fd, head, sizeof(head), 0);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	out->format = unpack_sniff(head, (size_t)n, &name);
	if (out->format == UNPACK_FOREIGN) {
		snprintf(err, errlen, "%s: %s data, not a log mailjail reads (gzip, xz and "
		    "bzip2 are): decompress it first", path, name);
		v = LOGFILES_NOT_LOG;
		goto out;
	}
	if ((buf = malloc(LOGFILES_SNIFF)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	if ((n = read_head(fd, path, out->format, buf, err, errlen)) < 0) {
		/* Corrupt from the start: not a log we can read. */
		v = out->format == UNPACK_PLAIN ? LOGFILES_UNREADABLE : LOGFILES_NOT_LOG;
		goto out;
	}
	if (n == 0) {
		v = LOGFILES_LOG;   /* empty: nothing to read, nothing wrong */
		goto out;
	}
	r = first_stamp(lt, buf, (size_t)n, &out->first_time);
	if (r == 0) {
		out->has_time = true;
		v = LOGFILES_LOG;
	} else {
		snprintf(err, errlen, "%s: not a log: %s%s", path, r < 0 ?
		    "binary data (a NUL byte before any line with a time stamp)" :
		    "no line in its first 64 KiB starts with a time stamp",
		    out->format == UNPACK_PLAIN ? "" : " once decompressed");
		v = LOGFILES_NOT_LOG;
	}
out:
	free(buf);
	close(fd);
	return v;
}

enum logfiles_verdict
logfiles_order(char **paths, size_t n, struct logtime *lt, struct logfile_info *info,
    char *err, size_t errlen)
{
	struct logfile_info *in = calloc(n ? n : 1, sizeof(*in));
	enum logfiles_verdict v = LOGFILES_LOG;

	if (in == NULL) {
		snprintf(err, errlen, "out of memory");
		return LOGFILES_UNREADABLE;
	}
	for (size_t i = 0; i < n && v == LOGFILES_LOG; i++)
		v = logfiles_inspect(paths[i], lt, &in[i], err, errlen);
	if (v != LOGFILES_LOG)
		goto out;
	/* Insertion sort: a handful of files, and it keeps ties in order. */
	for (size_t i = 1; i < n; i++) {
		struct logfile_info ki = in[i];
		char *kp = paths[i];
		int64_t kt = ki.has_time ? ki.first_time : INT64_MIN;
		size_t j = i;

		for (; j > 0; j--) {
			int64_t t = in[j - 1].has_time ? in[j - 1].first_time : INT64_MIN;
			if (t <= kt)
				break;
			in[j] = in[j - 1];
			paths[j] = paths[j - 1];
		}
		in[j] = ki;
		paths[j] = kp;
	}
	if (info != NULL)
		memcpy(info, in, n * sizeof(*in));
out:
	free(in);
	return v;
}
