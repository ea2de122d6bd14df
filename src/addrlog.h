/*
 * addrlog - per account, the recent failures against it and the client
 * addresses they came from, for jails keyed by account that ban addresses
 * (distributed brute force on one account: when the account is attacked,
 * every address in its window is banned).  It is also such a jail's
 * counter: the account's window is full when its ring is.
 *
 * Per account a ring of (time, address) in time order (a line read late,
 * another fleet node's, goes in its place), at most max entries (the
 * jail's maxretry: the window that fires holds no more), the oldest
 * dropped; addresses are kept as 16 bytes (IPv4 mapped), 20 bytes an entry.
 * A failure from an address that must not be banned (an ignored one)
 * counts with no address.  A new account's ring starts with room for 1 and
 * doubles as needed (most accounts of a spray see one failure): one block
 * of ~64 bytes an account, its key included.
 *
 * Memory: struct addrlog owns its table; addrlog_free releases it.
 */
#ifndef MAILJAIL_ADDRLOG_H
#define MAILJAIL_ADDRLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keytab.h"
#include "types.h"

struct addrlog {
	struct keytab accounts;
};

/* A failure against account at time t from the address addr (4 bytes for
 * AF_INET, 16 for AF_INET6; family 0: counted with no address, addr
 * unused); ring of at most max (1..65535).  0, or -1: out of memory or
 * another family. */
int addrlog_add(struct addrlog *a, const char *account, int64_t t, int family,
    const unsigned char *addr, uint32_t max);
/* Whether account's ring is full (max failures) within less than findtime
 * and holds a failure at time t: then *end is the newest failure's time
 * (the window (end - findtime, end] holds them all). */
bool addrlog_full(const struct addrlog *a, const char *account, int64_t t,
    int64_t findtime, uint32_t max, int64_t *end);
/* The distinct addresses that failed against account at a time in (after,
 * until], oldest first, as text into out[0..max); returns how many. */
size_t addrlog_since(const struct addrlog *a, const char *account, int64_t after,
    int64_t until, char (*out)[MJ_IP_MAX], size_t max);
/* Forget account's failures: its counting starts afresh. */
void addrlog_forget(struct addrlog *a, const char *account);
/* Accounts with failures kept. */
size_t addrlog_accounts(const struct addrlog *a);
/* Forget entries at or before time cut, and accounts left with none. */
void addrlog_expire(struct addrlog *a, int64_t cut);
void addrlog_free(struct addrlog *a);

#endif
