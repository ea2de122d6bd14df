/*
 * logtime - log stamps to Unix seconds, and seconds to ISO 8601.  See
 * logtime.h.
 */
#include "logtime.h"

#include <stdbool.h>
#include <string.h>
#include <time.h>

/* days_from_civil - days since 1970-01-01 of a proleptic Gregorian date
 * (Howard Hinnant's algorithm), so RFC 3339 needs no mktime at all */
static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static int
days_in_month(int y, int m)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : days[m - 1];
}

void
logtime_init(struct logtime *lt, int64_t ref_now)
{
	time_t t = (time_t)ref_now;
	struct tm tm;

	memset(lt, 0, sizeof(*lt));
	lt->ref = ref_now;
	lt->ref_year = localtime_r(&t, &tm) ? tm.tm_year + 1900 : 1970;
	lt->c_year = -1;
}

/* digits - n decimal digits at s, or -1 */
static int
digits(const char *s, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* local_hour - Unix time of the start of a local hour, mktime cached */
static int64_t
local_hour(struct logtime *lt, int year, int mon, int mday, int hour)
{
	struct tm tm;

	if (year == lt->c_year && mon == lt->c_mon && mday == lt->c_mday && hour == lt->c_hour)
		return lt->c_epoch;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = year - 1900;
	tm.tm_mon = mon - 1;
	tm.tm_mday = mday;
	tm.tm_hour = hour;
	tm.tm_isdst = -1;
	lt->c_epoch = (int64_t)mktime(&tm);
	lt->c_year = year;
	lt->c_mon = mon;
	lt->c_mday = mday;
	lt->c_hour = hour;
	return lt->c_epoch;
}

static int
month_number(const char *s)
{
	static const char names[] = "JanFebMarAprMayJunJulAugSepOctNovDec";

	for (int i = 0; i < 12; i++)
		if (memcmp(s, names + 3 * i, 3) == 0)
			return i + 1;
	return 0;
}

/* parse_syslog_full - parse_syslog for a new hour; caches it */
static int
parse_syslog_full(struct logtime *lt, const char *s, int64_t *t, size_t *used)
{
	int mon, mday, h, m, sec, year;
	int64_t v;

	if ((mon = month_number(s)) == 0)
		return -1;
	if (s[4] == ' ')
		mday = digits(s + 5, 1);
	else
		mday = digits(s + 4, 2);
	h = digits(s + 7, 2);
	m = digits(s + 10, 2);
	sec = digits(s + 13, 2);
	if (mday < 1 || h < 0 || h > 23 || m < 0 || m > 59 || sec < 0 || sec > 60)
		return -1;
	year = lt->ref_year;
	if (mday > days_in_month(year, mon) && !(mon == 2 && mday == 29))
		return -1;
	/* Feb 29 in a non-leap reference year belongs to an earlier leap year. */
	while (mday > days_in_month(year, mon))
		year--;
	memcpy(lt->s_prefix, s, sizeof(lt->s_prefix));
	lt->s_base = local_hour(lt, year, mon, mday, h);
	lt->s_next = INT64_MIN;
	v = lt->s_base + m * 60 + sec;
	/* No year in the stamp: this year, unless that is in the future. */
	if (v > lt->ref + 86400) {
		year--;
		while (mday > days_in_month(year, mon))
			year--;
		v = local_hour(lt, year, mon, mday, h) + m * 60 + sec;
	} else if (v < lt->ref - 180 * 86400 && mday <= days_in_month(year + 1, mon)) {
		/* Just past New Year for the writer, not yet for our clock
		 * (skew, or a reference a little behind): next year's date. */
		int64_t next = local_hour(lt, year + 1, mon, mday, h) + m * 60 + sec;
		if (next <= lt->ref + 86400) {
			v = next;
			lt->s_next = v - m * 60 - sec;
		}
	}
	*t = v;
	*used = 15;
	return 0;
}

/* parse_syslog - "Nov 22 10:00:01" or "Aug  3 10:00:01" (15 bytes) */
static int
parse_syslog(struct logtime *lt, const char *s, size_t len, int64_t *t, size_t *used)
{
	int m, sec;
	int64_t v;

	if (len < 15 || s[3] != ' ' || s[6] != ' ' || s[9] != ':' || s[12] != ':')
		return -1;
	if (memcmp(s, lt->s_prefix, sizeof(lt->s_prefix)) != 0)
		return parse_syslog_full(lt, s, t, used);
	m = digits(s + 10, 2);
	sec = digits(s + 13, 2);
	if (m < 0 || m > 59 || sec < 0 || sec > 60)
		return -1;
	if (lt->s_next != INT64_MIN) {
		v = lt->s_next + m * 60 + sec;
		if (v > lt->ref + 86400)
			return parse_syslog_full(lt, s, t, used);
	} else {
		v = lt->s_base + m * 60 + sec;
		if (v > lt->ref + 86400)
			return parse_syslog_full(lt, s, t, used);   /* last year's */
	}
	*t = v;
	*used = 15;
	return 0;
}

/* parse_rfc3339 - "2026-11-22T10:00:01[.frac](Z|+hh:mm|-hh:mm|+hhmm|-hhmm)" */
static int
parse_rfc3339(struct logtime *lt, const char *s, size_t len, int64_t *t, size_t *used)
{
	int y, mo, d, h, mi, sec, oh, om;
	size_t i = 19;
	int64_t off = 0;

	if (len < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
	    s[13] != ':' || s[16] != ':')
		return -1;
	if (memcmp(s, lt->r_prefix, sizeof(lt->r_prefix)) != 0) {
		y = digits(s, 4);
		mo = digits(s + 5, 2);
		d = digits(s + 8, 2);
		h = digits(s + 11, 2);
		if (y < 1970 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 ||
		    d > days_in_month(y, mo))
			return -1;
		memcpy(lt->r_prefix, s, sizeof(lt->r_prefix));
		lt->r_base = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600;
	}
	mi = digits(s + 14, 2);
	sec = digits(s + 17, 2);
	if (mi < 0 || mi > 59 || sec < 0 || sec > 60)
		return -1;
	if (s[i] == '.') {
		size_t start = ++i;
		while (i < len && s[i] >= '0' && s[i] <= '9' && i - start < 9)
			i++;
		if (i == start)
			return -1;
	}
	if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
		i++;
	} else if (i + 6 <= len && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
		oh = digits(s + i + 1, 2);
		om = digits(s + i + 4, 2);
		if (oh < 0 || oh > 23 || om < 0 || om > 59)
			return -1;
		off = (int64_t)(oh * 3600 + om * 60) * (s[i] == '-' ? -1 : 1);
		i += 6;
	} else if (i + 5 <= len && (s[i] == '+' || s[i] == '-') &&
	    (i + 5 == len || s[i + 5] < '0' || s[i + 5] > '9')) {
		/* ISO 8601's basic offset, as journalctl -o short-iso writes it. */
		oh = digits(s + i + 1, 2);
		om = digits(s + i + 3, 2);
		if (oh < 0 || oh > 23 || om < 0 || om > 59)
			return -1;
		off = (int64_t)(oh * 3600 + om * 60) * (s[i] == '-' ? -1 : 1);
		i += 5;
	} else {
		return -1;
	}
	*t = lt->r_base + mi * 60 + sec - off;
	*used = i;
	return 0;
}

/* parse_syslog_one_space - "Aug 3 15:30:49" (14 bytes): a day below 10
 * padded with nothing, as some writers (and fail2ban's corpus) have it, read
 * as "Aug  3 15:30:49".  Only a single digit between single spaces: "Aug
 * 31" and "Aug  3" never come here. */
static int
parse_syslog_one_space(struct logtime *lt, const char *s, size_t len, int64_t *t,
    size_t *used)
{
	char padded[15];

	if (len < 14 || s[3] != ' ' || s[4] < '1' || s[4] > '9' || s[5] != ' ')
		return -1;
	memcpy(padded, s, 4);
	padded[4] = ' ';
	memcpy(padded + 5, s + 4, 10);
	if (parse_syslog(lt, padded, sizeof(padded), t, used) != 0)
		return -1;
	*used = 14;
	return 0;
}

int
logtime_parse(struct logtime *lt, const char *s, size_t len, int64_t *t, size_t *used)
{
	if (len == 0)
		return -1;
	if (s[0] >= '0' && s[0] <= '9')
		return parse_rfc3339(lt, s, len, t, used);
	if (len >= 6 && s[5] == ' ' && s[4] != ' ')
		return parse_syslog_one_space(lt, s, len, t, used);
	return parse_syslog(lt, s, len, t, used);
}

const char *
logtime_iso(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return NULL;
	return buf;
}
