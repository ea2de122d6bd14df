/*
 * addr - IP addresses and prefixes as text, validated with inet_pton.
 * Every address that reaches the kernel or a map goes through here first.
 */
#ifndef MAILJAIL_ADDR_H
#define MAILJAIL_ADDR_H

#include <stdbool.h>
#include <stddef.h>

/*
 * "192.0.2.7", "2001:DB8::1", "192.0.2.0/24", "2001:db8::/64" to canonical
 * inet_ntop form, the prefix masked to its network address; a full-length
 * prefix (/32, /128) is written as the plain address.  Anything else
 * (junk around it, a zone, a bad length) returns -1.
 */
int addr_canonical(const char *in, char *out, size_t outlen);
bool addr_is_ip(const char *s);   /* an address or prefix addr_canonical accepts */

/*
 * The text glibc's inet_ntop writes for a binary address (4 bytes for
 * AF_INET, 16 for AF_INET6: RFC 5952 zero compression, lowercase hex, the
 * ::a.b.c.d and ::ffff:a.b.c.d forms), without printf: this runs for every
 * address a log line yields.  Returns 0, or -1 if it does not fit in len.
 */
int addr_format(int family, const unsigned char *bin, char *out, size_t len);

#endif
