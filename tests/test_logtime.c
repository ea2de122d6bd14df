/*
 * test_logtime - syslog and RFC 3339 stamps, year inference, junk.
 * TZ is set to UTC so expected values are plain arithmetic.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "logtime.h"

static void
utc(void)
{
	setenv("TZ", "UTC", 1);
	tzset();
}

TestSuite(logtime, .init = utc);

static int64_t
parse(struct logtime *lt, const char *s, size_t *used)
{
	int64_t t = -1;
	size_t u = 0;

	cr_assert_eq(logtime_parse(lt, s, strlen(s), &t, &u), 0, "parse \"%s\"", s);
	if (used)
		*used = u;
	return t;
}

Test(logtime, syslog_stamps)
{
	struct logtime lt;
	size_t used;

	logtime_init(&lt, 1795305600);                 /* 2026-11-22T00:00:00Z */
	cr_assert_eq(parse(&lt, "Nov 22 10:00:01 mx", &used), 1795341601);
	cr_assert_eq(used, 15);
	cr_assert_eq(parse(&lt, "Aug  3 00:00:00 mx", NULL), 1785715200);   /* 2026-08-03 */
	cr_assert_eq(parse(&lt, "Jan  1 00:00:00", NULL), 1767225600);      /* 2026-01-01 */
}

/* "Aug 3 15:30:49": a one-digit day after a single space (fail2ban's
 * corpus, some syslog writers) is the same time as "Aug  3 15:30:49", and
 * the stamp is 14 bytes long. */
Test(logtime, one_space_day_reads_like_padded)
{
	struct logtime lt;
	size_t used;

	logtime_init(&lt, 1795305600);                 /* 2026-11-22T00:00:00Z */
	cr_assert_eq(parse(&lt, "Aug 3 15:30:49 mx postfix", &used), 1785715200 + 55849);
	cr_assert_eq(used, 14);
	cr_assert_eq(parse(&lt, "Aug  3 15:30:49 mx postfix", &used), 1785715200 + 55849);
	cr_assert_eq(used, 15);
	/* the same hour again, from the cache, in both forms */
	cr_assert_eq(parse(&lt, "Aug 3 15:31:00 mx", &used), 1785715200 + 55860);
	cr_assert_eq(used, 14);
	cr_assert_eq(parse(&lt, "Jan 1 00:00:00", &used), 1767225600);
	cr_assert_eq(parse(&lt, "Aug 31 10:00:00 mx", &used), 1788170400);
	cr_assert_eq(used, 15);
}

Test(logtime, year_is_inferred_backwards_across_new_year)
{
	struct logtime lt;

	logtime_init(&lt, 1767225600 + 1800);          /* 2026-01-01T00:30:00Z */
	cr_assert_eq(parse(&lt, "Dec 31 23:59:59", NULL), 1767225599, "2025-12-31, not 2026");
	cr_assert_eq(parse(&lt, "Jan  1 00:10:00", NULL), 1767225600 + 600);
	/* up to a day ahead (clock skew) stays in this year */
	cr_assert_eq(parse(&lt, "Jan  1 12:00:00", NULL), 1767225600 + 43200);
}

Test(logtime, year_is_inferred_forwards_just_after_new_year)
{
	struct logtime lt;

	logtime_init(&lt, 1798761600 - 30);            /* 2026-12-31T23:59:30Z */
	cr_assert_eq(parse(&lt, "Jan  1 00:00:10", NULL), 1798761610, "2027-01-01, not 2026");
	cr_assert_eq(parse(&lt, "Jan  1 00:00:20", NULL), 1798761620, "the cached hour too");
	cr_assert_eq(parse(&lt, "Dec 31 23:59:00", NULL), 1798761540);
	/* long past, not just ahead: this year's */
	cr_assert_eq(parse(&lt, "Jan  5 00:00:00", NULL), 1767571200, "2026-01-05");
}

Test(logtime, feb_29_goes_to_a_leap_year)
{
	struct logtime lt;

	logtime_init(&lt, 1795339200);                 /* 2026 is not a leap year */
	cr_assert_eq(parse(&lt, "Feb 29 12:00:00", NULL), 1709208000, "2024-02-29T12:00Z");
}

Test(logtime, rfc3339_stamps)
{
	struct logtime lt;
	size_t used;

	logtime_init(&lt, 0);
	cr_assert_eq(parse(&lt, "2026-11-22T10:00:01.123456+00:00 mx", &used), 1795341601);
	cr_assert_eq(used, 32);
	cr_assert_eq(parse(&lt, "2026-11-22T11:00:01+01:00", NULL), 1795341601);
	cr_assert_eq(parse(&lt, "2026-11-22T05:30:01-04:30", NULL), 1795341601);
	cr_assert_eq(parse(&lt, "2026-11-22T10:00:01Z", NULL), 1795341601);
	/* journalctl -o short-iso: ISO 8601's basic offset */
	cr_assert_eq(parse(&lt, "2026-11-22T11:00:01+0100 mx", &used), 1795341601);
	cr_assert_eq(used, 24);
	cr_assert_eq(parse(&lt, "2026-11-22T05:30:01-0430", NULL), 1795341601);
	cr_assert_eq(parse(&lt, "2024-02-29T00:00:00Z", NULL), 1709164800);
	cr_assert_eq(parse(&lt, "2100-01-01T00:00:00Z", NULL), 4102444800LL);
	cr_assert_eq(parse(&lt, "1970-01-01T00:00:00Z", NULL), 0);
}

Test(logtime, junk_is_refused)
{
	struct logtime lt;
	const char *bad[] = {
		"", "Nov", "Foo 22 10:00:01", "Nov 32 10:00:01", "Nov  0 10:00:01",
		"Nov 22 24:00:01", "Nov 22 10:60:01", "Nov 22 1:00:01 ", "Feb 30 10:00:00",
		"2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z", "2026-11-22T10:00:01",
		"2026-11-22 10:00:01Z", "2026-11-22T10:00:01+01000", "2026-11-22T10:00:01+01:0",
		"2026-11-22T10:00:01+2400", "2026-11-22T10:00:01+01", "2026-11-22T10:00:01.Z",
		"1969-12-31T23:59:59Z",
		/* one-space days: only a single digit 1-9, the rest as usual */
		"Aug 0 10:00:01", "Aug 3 24:00:01", "Aug 3 10:00:0", "Aug 3 1:00:01 ",
		"Aug x 10:00:01", "Foo 3 10:00:01", "Feb 3 10:60:01",
	};

	logtime_init(&lt, 1795339200);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int64_t t;
		size_t u;
		cr_assert_eq(logtime_parse(&lt, bad[i], strlen(bad[i]), &t, &u), -1,
		    "accepted \"%s\"", bad[i]);
	}
}

/* Each format caches its last hour: within one hour the year inference
 * still works minute by minute, and the two formats do not mix. */
Test(logtime, hour_cache_keeps_year_inference_and_formats_apart)
{
	struct logtime lt;

	logtime_init(&lt, 1767225600 + 1800);          /* 2026-01-01T00:30:00Z */
	/* ref + 1 day is 2026-01-02T00:30: 00:10 is this year, 00:40 last year */
	cr_assert_eq(parse(&lt, "Jan  2 00:10:00", NULL), 1767225600 + 86400 + 600);
	cr_assert_eq(parse(&lt, "2025-06-01T10:00:00Z", NULL), 1748772000);
	cr_assert_eq(parse(&lt, "Jan  2 00:40:00", NULL), 1735776000 + 2400, "2025-01-02");
	cr_assert_eq(parse(&lt, "Jan  2 00:10:00", NULL), 1767225600 + 86400 + 600);
	cr_assert_eq(parse(&lt, "2025-06-01T10:59:59+02:00", NULL), 1748772000 + 3599 - 7200);
	cr_assert_eq(parse(&lt, "2025-06-01T10:00:00Z", NULL), 1748772000);
	/* a bad minute in a cached hour is still refused */
	{
		int64_t t;
		size_t u;
		cr_assert_eq(logtime_parse(&lt, "Jan  2 00:60:00", 15, &t, &u), -1);
		cr_assert_eq(logtime_parse(&lt, "2025-06-01T10:61:00Z", 20, &t, &u), -1);
	}
}
