/*
 * keytab - a small hash table of malloc'd entries keyed by a string, each
 * with a payload the caller lays out (zeroed when the entry is made).  For
 * the bookkeeping behind the jails that is not a counter: the queue-id
 * join of delivery results (msgtrace) and the addresses that failed
 * against an account (addrlog).
 *
 * Built on hashtab (open addressing, linear probing, at most 3/4 full,
 * backward-shift deletion); keys are bytes (klen given), up to 65535.
 *
 * Memory: the table owns its entries.  A payload pointer stays valid until
 * its entry is deleted, swept, resized (keytab_resize returns the new one)
 * or the table freed; inserting other keys never moves a payload (the
 * table holds pointers to the entries).  Not thread-safe.
 */
#ifndef MAILJAIL_KEYTAB_H
#define MAILJAIL_KEYTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hashtab.h"

struct keytab {
	struct hashtab tab;      /* tab.n: how many keys */
};

/* The payload of key, or NULL. */
void *keytab_get(const struct keytab *t, const char *key, size_t klen);
/* The payload of key, made (size bytes, zeroed) if absent: *created says
 * which.  NULL if out of memory or the key is too long. */
void *keytab_put(struct keytab *t, const char *key, size_t klen, size_t size,
    bool *created);
/* Give key's payload size bytes (the first min(old, size) kept, the rest
 * zeroed); returns the new payload, or NULL (out of memory: the old one
 * stays) or if key is absent. */
void *keytab_resize(struct keytab *t, const char *key, size_t klen, size_t size);
/* Remove key; whether it was there. */
bool keytab_del(struct keytab *t, const char *key, size_t klen);
/* Remove every entry keep() says no to, then shrink the table to fit. */
void keytab_sweep(struct keytab *t, bool (*keep)(void *payload, const void *arg),
    const void *arg);
void keytab_free(struct keytab *t);

#endif
