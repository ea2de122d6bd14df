/*
 * unpack - the bytes of a log file as they were written, whether logrotate
 * compressed it or not: plain, gzip (zlib), xz (liblzma) or bzip2 (libbz2),
 * told apart by their first bytes (magic), never by the file's name.
 *
 * Used in one-shot reading only (replay, test-rules: follow.c and
 * logfiles.c); the daemon follows plain logs.  Concatenated members or
 * streams (gzip -c a >x; gzip -c b >>x, pbzip2, xz's own concatenation)
 * are read one after the other, as gzip -d does.  A format we recognise
 * but do not decode (zstd, lz4, compress, zip...) has a name, so the
 * caller can refuse the file saying what it is.
 *
 * Memory: struct unpack owns the decoder's state and an input buffer; it
 * borrows the descriptor (the caller closes it, after unpack_close).
 * A decompression bomb costs time, not memory: output is streamed into the
 * caller's buffer; the xz decoder's memory is capped (UNPACK_XZ_MEMLIMIT).
 */
#ifndef MAILJAIL_UNPACK_H
#define MAILJAIL_UNPACK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum unpack_format {
	UNPACK_PLAIN,            /* not a compressed format we know of */
	UNPACK_GZIP,
	UNPACK_XZ,
	UNPACK_BZIP2,
	UNPACK_FOREIGN,          /* compressed or archived, not decoded here */
};

/* Enough leading bytes for every magic unpack_sniff knows. */
#define UNPACK_MAGIC_MAX 8
/* xz -9 needs 65 MiB to decode; a file asking for more is refused. */
#define UNPACK_XZ_MEMLIMIT ((uint64_t)256 << 20)

/* The format of a file starting with head[0..n).  For UNPACK_FOREIGN,
 * *name (may be NULL) gets what it is, e.g. "zstd". */
enum unpack_format unpack_sniff(const unsigned char *head, size_t n, const char **name);
/* "plain", "gzip", "xz", "bzip2", "foreign" */
const char *unpack_format_name(enum unpack_format fmt);

struct unpack;

/* A decoder for fmt (gzip, xz or bzip2) reading fd from its current
 * offset.  Returns 0, or -1 (out of memory, or fmt is not decoded here). */
int unpack_open(struct unpack **out, int fd, enum unpack_format fmt);
/* Up to len decoded bytes into buf: how many (0 at the end of the data),
 * or -1 with the reason in unpack_error (corrupt or truncated data, a read
 * error). */
ssize_t unpack_read(struct unpack *u, void *buf, size_t len);
const char *unpack_error(const struct unpack *u);
void unpack_close(struct unpack *u);

#endif
