/*
 * addr - see addr.h.
 */
#include "addr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

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
	if (inet_ntop(family, bin, text, sizeof(text)) == NULL)
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
