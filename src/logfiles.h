/*
 * logfiles - the files replay and test-rules are given on the command line:
 * what each holds (plain text, or a log logrotate compressed: unpack.h),
 * whether it is a log at all, and the time of its first stamped line, so
 * that several files are read oldest first whatever their names say
 * (mail.log.2.gz before mail.log.1 before mail.log, and just as well when
 * the shell or the admin gives them in another order).
 *
 * A file is a log if it is empty, or if a line in its first
 * LOGFILES_SNIFF bytes (decoded) starts with a stamp logtime_parse reads,
 * with no NUL byte before that line.  An ELF binary, a tar archive, an
 * image or a zstd file is refused by name instead of being counted as
 * thousands of bad lines.
 *
 * Memory: nothing is kept; the caller owns the path arrays.
 */
#ifndef MAILJAIL_LOGFILES_H
#define MAILJAIL_LOGFILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "logtime.h"
#include "unpack.h"

#define LOGFILES_SNIFF (64 * 1024)

struct logfile_info {
	enum unpack_format format;   /* plain, gzip, xz or bzip2 */
	bool has_time;               /* false: an empty log */
	int64_t first_time;          /* the first stamp, Unix seconds */
};

enum logfiles_verdict {
	LOGFILES_LOG = 0,            /* a log: info filled */
	LOGFILES_NOT_LOG = 1,        /* refused: why in err (exit 2) */
	LOGFILES_UNREADABLE = -1,    /* missing, no permission, I/O: err (exit 1) */
};

/* Look at path with lt for the stamps (syslog stamps take their year from
 * lt's reference time).  err gets "PATH: reason" unless LOGFILES_LOG. */
enum logfiles_verdict logfiles_inspect(const char *path, struct logtime *lt,
    struct logfile_info *out, char *err, size_t errlen);

/*
 * Inspect paths[0..n) and sort them oldest first by their first stamps (an
 * empty log first; equal times keep their order).  info (may be NULL) gets
 * each file's info in the new order.  Stops at the first file that is not a
 * readable log: returns its verdict, with err saying which and why.
 */
enum logfiles_verdict logfiles_order(char **paths, size_t n, struct logtime *lt,
    struct logfile_info *info, char *err, size_t errlen);

#endif
