/*
 * unpack - decoded bytes of a plain or compressed log.  See unpack.h.
 *
 * Why three small libraries and not libarchive: zlib, liblzma and libbz2
 * are tiny, already on every Debian system (dpkg needs them), and each has
 * a plain streaming call; libarchive would bring libxml2, nettle, acl, lz4
 * and zstd into a daemon that follows plain text, for three decoders.
 *
 * Input is read into one buffer (UNPACK_IN bytes) that every decoder
 * consumes from; each decoder fills the caller's buffer as far as it can.
 */
#include "unpack.h"

#include <bzlib.h>
#include <errno.h>
#include <lzma.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define UNPACK_IN (64 * 1024)

struct unpack {
	enum unpack_format fmt;
	int fd;
	unsigned char in[UNPACK_IN];
	size_t in_start, in_end;   /* unconsumed input: in[in_start..in_end) */
	bool in_eof;
	bool done;                 /* the data ended */
	bool in_member;            /* gzip/bzip2: inside a member or stream */
	char err[160];
	union {
		z_stream z;
		lzma_stream x;
		bz_stream b;
	} s;
	bool s_live;               /* s holds an initialised decoder */
};

static const struct magic {
	const char *bytes;
	size_t len;
	enum unpack_format fmt;
	const char *name;
} magics[] = {
	{ "\x1f\x8b", 2, UNPACK_GZIP, "gzip" },
	{ "\xfd" "7zXZ\0", 6, UNPACK_XZ, "xz" },
	{ "BZh", 3, UNPACK_BZIP2, "bzip2" },
	/* Known, not decoded: named so the refusal says what the file is. */
	{ "\x28\xb5\x2f\xfd", 4, UNPACK_FOREIGN, "zstd" },
	{ "\x04\x22\x4d\x18", 4, UNPACK_FOREIGN, "lz4" },
	{ "\x1f\x9d", 2, UNPACK_FOREIGN, "compress (.Z)" },
	{ "LZIP", 4, UNPACK_FOREIGN, "lzip" },
	{ "\x5d\0\0", 3, UNPACK_FOREIGN, "lzma (legacy .lzma)" },
	{ "\x89LZO", 4, UNPACK_FOREIGN, "lzop" },
	{ "PK\x03\x04", 4, UNPACK_FOREIGN, "zip" },
	{ "7z\xbc\xaf\x27\x1c", 6, UNPACK_FOREIGN, "7-Zip" },
};

enum unpack_format
unpack_sniff(const unsigned char *head, size_t n, const char **name)
{
	for (size_t i = 0; i < sizeof(magics) / sizeof(magics[0]); i++) {
		const struct magic *m = &magics[i];
		if (n < m->len || memcmp(head, m->bytes, m->len) != 0)
			continue;
		/* "BZh" is followed by the block size digit; text could start
		 * with "BZh" but hardly with that digit too. */
		if (m->fmt == UNPACK_BZIP2 && (n < 4 || head[3] < '1' || head[3] > '9'))
			continue;
		if (name)
			*name = m->name;
		return m->fmt;
	}
	if (name)
		*name = "plain";
	return UNPACK_PLAIN;
}

const char *
unpack_format_name(enum unpack_format fmt)
{
	switch (fmt) {
	case UNPACK_PLAIN: return "plain";
	case UNPACK_GZIP: return "gzip";
	case UNPACK_XZ: return "xz";
	case UNPACK_BZIP2: return "bzip2";
	case UNPACK_FOREIGN: return "foreign";
	}
	return "?";
}

const char *
unpack_error(const struct unpack *u)
{
	return u->err[0] ? u->err : "no error";
}

static ssize_t
fail(struct unpack *u, const char *what)
{
	snprintf(u->err, sizeof(u->err), "%s data: %s", unpack_format_name(u->fmt), what);
	return -1;
}

/* need_input - at least want unconsumed input bytes, unless the file ends
 * first; returns how many there are, or -1 on a read error */
static ssize_t
need_input(struct unpack *u, size_t want)
{
	while (u->in_end - u->in_start < want && !u->in_eof) {
		ssize_t n;
		if (u->in_start > 0) {
			memmove(u->in, u->in + u->in_start, u->in_end - u->in_start);
			u->in_end -= u->in_start;
			u->in_start = 0;
		}
		do
			n = read(u->fd, u->in + u->in_end, sizeof(u->in) - u->in_end);
		while (n < 0 && errno == EINTR);
		if (n < 0) {
			snprintf(u->err, sizeof(u->err), "read: %s", strerror(errno));
			return -1;
		}
		if (n == 0)
			u->in_eof = true;
		u->in_end += (size_t)n;
	}
	return (ssize_t)(u->in_end - u->in_start);
}

/* next_member - at a member boundary: does another one follow?  Anything
 * else after the last member (zero padding, garbage) ends the data, as
 * gzip -d and bzip2 -d treat it (with a warning we do not need). */
static int
next_member(struct unpack *u, const char *magic, size_t len)
{
	ssize_t n = need_input(u, len);

	if (n < 0)
		return -1;
	if ((size_t)n < len || memcmp(u->in + u->in_start, magic, len) != 0) {
		u->done = true;
		return 0;
	}
	return 1;
}

static ssize_t
read_gzip(struct unpack *u, unsigned char *buf, size_t len)
{
	z_stream *z = &u->s.z;
	size_t got = 0;

	while (got < len && !u->done) {
		ssize_t avail;
		int rc;

		if (!u->in_member) {
			if ((rc = next_member(u, "\x1f\x8b", 2)) <= 0)
				return rc < 0 ? -1 : (ssize_t)got;
			if (inflateReset(z) != Z_OK)
				return fail(u, "cannot restart the decoder");
			u->in_member = true;
		}
		if ((avail = need_input(u, 1)) < 0)
			return -1;
		if (avail == 0)
			return fail(u, "truncated (the file ends inside a member)");
		z->next_in = u->in + u->in_start;
		z->avail_in = (uInt)avail;
		z->next_out = buf + got;
		z->avail_out = (uInt)(len - got > UINT32_MAX ? UINT32_MAX : len - got);
		rc = inflate(z, Z_NO_FLUSH);
		got = (size_t)(z->next_out - buf);
		u->in_start = u->in_end - z->avail_in;
		if (rc == Z_STREAM_END)
			u->in_member = false;
		else if (rc != Z_OK && rc != Z_BUF_ERROR)
			return fail(u, z->msg ? z->msg : "corrupt");
	}
	return (ssize_t)got;
}

static ssize_t
read_xz(struct unpack *u, unsigned char *buf, size_t len)
{
	lzma_stream *x = &u->s.x;
	size_t got = 0;

	while (got < len && !u->done) {
		ssize_t avail = need_input(u, 1);
		lzma_ret rc;

		if (avail < 0)
			return -1;
		x->next_in = u->in + u->in_start;
		x->avail_in = (size_t)avail;
		x->next_out = buf + got;
		x->avail_out = len - got;
		rc = lzma_code(x, u->in_eof ? LZMA_FINISH : LZMA_RUN);
		got = (size_t)(x->next_out - buf);
		u->in_start = u->in_end - x->avail_in;
		switch (rc) {
		case LZMA_OK:
			break;
		case LZMA_STREAM_END:
			u->done = true;
			break;
		case LZMA_BUF_ERROR:
			return fail(u, "truncated (the file ends inside a stream)");
		case LZMA_MEMLIMIT_ERROR:
			return fail(u, "needs more memory to decode than the 256 MiB allowed");
		case LZMA_FORMAT_ERROR:
		case LZMA_DATA_ERROR:
			return fail(u, "corrupt");
		default:
			return fail(u, "cannot be decoded");
		}
	}
	return (ssize_t)got;
}

static ssize_t
read_bzip2(struct unpack *u, unsigned char *buf, size_t len)
{
	bz_stream *b = &u->s.b;
	size_t got = 0;

	while (got < len && !u->done) {
		ssize_t avail;
		int rc;

		if (!u->in_member) {
			if ((rc = next_member(u, "BZh", 3)) <= 0)
				return rc < 0 ? -1 : (ssize_t)got;
			if (u->s_live)
				BZ2_bzDecompressEnd(b);
			memset(b, 0, sizeof(*b));
			u->s_live = BZ2_bzDecompressInit(b, 0, 0) == BZ_OK;
			if (!u->s_live)
				return fail(u, "cannot start the decoder");
			u->in_member = true;
		}
		if ((avail = need_input(u, 1)) < 0)
			return -1;
		if (avail == 0)
			return fail(u, "truncated (the file ends inside a stream)");
		b->next_in = (char *)(u->in + u->in_start);
		b->avail_in = (unsigned)avail;
		b->next_out = (char *)(buf + got);
		b->avail_out = (unsigned)(len - got > UINT32_MAX ? UINT32_MAX : len - got);
		rc = BZ2_bzDecompress(b);
		got = (size_t)((unsigned char *)b->next_out - buf);
		u->in_start = u->in_end - b->avail_in;
		if (rc == BZ_STREAM_END)
			u->in_member = false;
		else if (rc != BZ_OK)
			return fail(u, "corrupt");
	}
	return (ssize_t)got;
}

int
unpack_open(struct unpack **out, int fd, enum unpack_format fmt)
{
	struct unpack *u;

	*out = NULL;
	if ((u = calloc(1, sizeof(*u))) == NULL)
		return -1;
	u->fmt = fmt;
	u->fd = fd;
	switch (fmt) {
	case UNPACK_GZIP:
		/* 16 + MAX_WBITS: gzip framing only (no raw zlib streams) */
		u->s_live = inflateInit2(&u->s.z, 16 + MAX_WBITS) == Z_OK;
		break;
	case UNPACK_XZ:
		u->s.x = (lzma_stream)LZMA_STREAM_INIT;
		u->s_live = lzma_stream_decoder(&u->s.x, UNPACK_XZ_MEMLIMIT,
		    LZMA_CONCATENATED) == LZMA_OK;
		break;
	case UNPACK_BZIP2:
		/* each stream starts its own decoder (read_bzip2) */
		*out = u;
		return 0;
	default:
		break;
	}
	if (!u->s_live) {
		free(u);
		return -1;
	}
	*out = u;
	return 0;
}

ssize_t
unpack_read(struct unpack *u, void *buf, size_t len)
{
	if (u->err[0])
		return -1;
	switch (u->fmt) {
	case UNPACK_GZIP: return read_gzip(u, buf, len);
	case UNPACK_XZ: return read_xz(u, buf, len);
	case UNPACK_BZIP2: return read_bzip2(u, buf, len);
	default: return fail(u, "not a format decoded here");
	}
}

void
unpack_close(struct unpack *u)
{
	if (u == NULL)
		return;
	if (u->s_live) {
		switch (u->fmt) {
		case UNPACK_GZIP: inflateEnd(&u->s.z); break;
		case UNPACK_XZ: lzma_end(&u->s.x); break;
		case UNPACK_BZIP2: BZ2_bzDecompressEnd(&u->s.b); break;
		default: break;
		}
	}
	free(u);
}
