/*
 * addr - see addr.h.
 */
#include "addr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

/* put_dec - v (0..255) in decimal at p; returns the end */
static char *
put_dec(char *p, unsigned v)
{
	if (v >= 100)
		*p++ = (char)('0' + v / 100);
	if (v >= 10)
		*p++ = (char)('0' + v / 10 % 10);
	*p++ = (char)('0' + v % 10);
	return p;
}

/* put_hex - v (0..0xffff) in lowercase hex without leading zeros */
static char *
put_hex(char *p, unsigned v)
{
	static const char hex[] = "0123456789abcdef";
	int shift = 12;

	while (shift > 0 && (v >> shift) == 0)
		shift -= 4;
	for (; shift >= 0; shift -= 4)
		*p++ = hex[(v >> shift) & 0xf];
	return p;
}

static char *
put_ipv4(char *p, const unsigned char *b)
{
	for (int i = 0; i < 4; i++) {
		if (i)
			*p++ = '.';
		p = put_dec(p, b[i]);
	}
	return p;
}

int
addr_format(int family, const unsigned char *bin, char *out, size_t len)
{
	char buf[INET6_ADDRSTRLEN], *p = buf;
	unsigned w[8];
	int best = -1, bestlen = 0, cur = -1;

	if (family == AF_INET) {
		p = put_ipv4(p, bin);
	} else if (family == AF_INET6) {
		/* the longest run of two or more zero groups (the first of equals)
		 * becomes "::", as in glibc's inet_ntop6 */
		for (int i = 0; i < 8; i++) {
			w[i] = (unsigned)bin[2 * i] << 8 | bin[2 * i + 1];
			if (w[i] == 0 && cur < 0)
				cur = i;
			if (cur >= 0 && (w[i] != 0 || i == 7)) {
				int n = (w[i] != 0 ? i : 8) - cur;
				if (n > bestlen) {
					best = cur;
					bestlen = n;
				}
				cur = -1;
			}
		}
		if (bestlen < 2)
			best = -1;
		for (int i = 0; i < 8; i++) {
			if (best >= 0 && i >= best && i < best + bestlen) {
				if (i == best)
					*p++ = ':';
				continue;
			}
			if (i)
				*p++ = ':';
			if (i == 6 && best == 0 && (bestlen == 6 || (bestlen == 5 && w[5] == 0xffff))) {
				p = put_ipv4(p, bin + 12);
				break;
			}
			p = put_hex(p, w[i]);
		}
		if (best >= 0 && best + bestlen == 8)
			*p++ = ':';
	} else {
		return -1;
	}
	if ((size_t)(p - buf) >= len)
		return -1;
	memcpy(out, buf, (size_t)(p - buf));
	out[p - buf] = '\0';
	return 0;
}

int
addr_canonical(const char *in, char *out, size_t outlen)
{
	unsigned char bin[16];
	char host[INET6_ADDRSTRLEN], text[INET6_ADDRSTRLEN];
	const char *slash = strchr(in, '/');
	size_t hostlen = slash ? (size_t)(slash - in) : strlen(in);
	int family, maxlen, len;

	if (hostlen == 0 || hostlen >= sizeof(host))
		return -1;
	memcpy(host, in, hostlen);
	host[hostlen] = '\0';
	if (inet_pton(AF_INET, host, bin) == 1) {
		family = AF_INET;
		maxlen = 32;
	} else if (inet_pton(AF_INET6, host, bin) == 1) {
		family = AF_INET6;
		maxlen = 128;
	} else {
		return -1;
	}
	len = maxlen;
	if (slash) {
		const char *p = slash + 1;
		if (*p == '\0' || strlen(p) > 3)
			return -1;
		len = 0;
		for (; *p; p++) {
			if (*p < '0' || *p > '9')
				return -1;
			len = len * 10 + (*p - '0');
		}
		if (len < 1 || len > maxlen)
			return -1;
	}
	for (int bit = len; bit < maxlen; bit++)
		bin[bit / 8] &= (unsigned char)~(0x80u >> (bit % 8));
	if (addr_format(family, bin, text, sizeof(text)) != 0)
		return -1;
	if (len == maxlen)
		return snprintf(out, outlen, "%s", text) < (int)outlen ? 0 : -1;
	return snprintf(out, outlen, "%s/%d", text, len) < (int)outlen ? 0 : -1;
}

bool
addr_is_ip(const char *s)
{
	char buf[INET6_ADDRSTRLEN + 8];

	return addr_canonical(s, buf, sizeof(buf)) == 0;
}
