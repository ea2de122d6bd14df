/*
 * logtime - the timestamps at the start of a log line, to Unix seconds
 * (and, for what mailjail shows, Unix seconds back to ISO 8601 UTC).
 *
 *   syslog    "Nov 22 10:00:01" / "Aug  3 10:00:01" (local time; the year is
 *             inferred: the reference year, or the one before if that would put
 *             the stamp more than a day after the reference time); "Aug 3
 *             10:00:01", a day with no padding (14 bytes), reads the same
 *   RFC 3339  "2026-11-22T10:00:01.123456+01:00" / "...Z" (rsyslog's
 *             high-precision format, Postfix's maillog_file)
 *
 * Converting local time with mktime() per line is slow (glibc stat()s
 * /etc/localtime each call when TZ is unset), so the result of mktime() is
 * cached per (year, month, day, hour); RFC 3339 needs no mktime at all.
 * A stamp in the same hour as the last one of its format (almost every line)
 * reuses that hour's time and parses only minutes, seconds and offset.
 * A struct logtime is caller-owned, holds no pointers, and is not thread-safe.
 */
#ifndef MAILJAIL_LOGTIME_H
#define MAILJAIL_LOGTIME_H

#include <stddef.h>
#include <stdint.h>

struct logtime {
	int64_t ref;             /* reference "now" for year inference */
	int ref_year;
	/* cache of the last local hour converted */
	int c_year, c_mon, c_mday, c_hour;
	int64_t c_epoch;
	/* the date and hour of the last stamp of each format, and their time:
	 * a line in the same hour as the one before parses only the rest */
	char s_prefix[9];        /* syslog "Nov 22 10" */
	int64_t s_base;          /* its local hour in the reference year */
	int64_t s_next;          /* or in the next (just past New Year), else INT64_MIN */
	char r_prefix[13];       /* RFC 3339 "2026-11-22T10" */
	int64_t r_base;          /* its hour, before the UTC offset */
};

/* Initialise with the reference time (the wall clock, normally). */
void logtime_init(struct logtime *lt, int64_t ref_now);

/*
 * Parse the stamp at the start of s[0..len).  On success returns 0, stores the
 * time in *t and the length of the stamp in *used (the separator after it is
 * not consumed).  Returns -1 if s does not start with a valid stamp.
 */
int logtime_parse(struct logtime *lt, const char *s, size_t len, int64_t *t,
    size_t *used);

/* The other way: t as 2025-01-31T12:00:00Z (UTC) into buf, which it
 * returns; NULL if the year is beyond gmtime or buf cannot take it (each
 * caller says what shows then). */
const char *logtime_iso(int64_t t, char *buf, size_t len);

#endif
