/*
 * addrlog - per account, the client addresses that recently failed against
 * it, for jails keyed by account that ban addresses (distributed brute
 * force on one account: when the account is attacked, every address in its
 * window is banned).
 *
 * Per account a ring of (time, address), at most max entries (the jail's
 * maxretry: the window that fires holds no more), the oldest dropped;
 * addresses are kept as 16 bytes (IPv4 mapped), 20 bytes an entry.  A new
 * account's ring starts with room for 1 and doubles as needed (most
 * accounts of a spray see one failure): ~80 bytes an account.
 *
 * Memory: struct addrlog owns its table; addrlog_free releases it.
 */
#ifndef MAILJAIL_ADDRLOG_H
#define MAILJAIL_ADDRLOG_H

#include <stddef.h>
#include <stdint.h>

#include "keytab.h"
#include "types.h"

struct addrlog {
	struct keytab accounts;
};

/* A failure against account at time t from the address addr (4 bytes for
 * AF_INET, 16 for AF_INET6); ring of at most max (1..65535).  0, or -1:
 * out of memory or another family. */
int addrlog_add(struct addrlog *a, const char *account, int64_t t, int family,
    const unsigned char *addr, uint32_t max);
/* The distinct addresses that failed against account at a time in (after,
 * until], oldest first, as text into out[0..max); returns how many. */
size_t addrlog_since(const struct addrlog *a, const char *account, int64_t after,
    int64_t until, char (*out)[MJ_IP_MAX], size_t max);
/* Forget entries at or before time cut, and accounts left with none. */
void addrlog_expire(struct addrlog *a, int64_t cut);
void addrlog_free(struct addrlog *a);

#endif
