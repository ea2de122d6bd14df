/*
 * hashtab - the open-addressing core of mailjail's string-keyed tables:
 * keytab (a payload per key: msgtrace, addrlog) and the jails' counter
 * rings (jail_ring.c) are both built on it.  The table is an array of
 * pointers to malloc'd entries; what an entry holds is its owner's.
 *
 * An entry begins with struct hashent (its key's hash and length); the
 * owner's fields follow and its key bytes sit at an offset the owner gives
 * (keyoff: offsetof its key), the same for every entry of a table.  The
 * layouts stay apart because they differ for a reason: a jail's entry
 * keeps a ring of times at a fixed place after the key and is replaced by
 * a bigger block when the ring grows, a keytab entry a payload of any
 * size, aligned to 8.
 *
 * FNV-1a hash, linear probing, at most 3/4 full, backward-shift deletion
 * (no tombstones).  Keys are bytes, up to 65535 (klen is a uint16).
 *
 * Memory: the table owns its slots and frees the entries it drops (del,
 * sweep, free); the owner mallocs an entry and puts it in the slot
 * hashtab_slot_for_insert gave (then counts it in n).  An entry may be
 * replaced in its slot by the owner (realloc); rehashing moves pointers,
 * never entries.  Not thread-safe.
 */
#ifndef MAILJAIL_HASHTAB_H
#define MAILJAIL_HASHTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct hashent {
	uint32_t hash;
	uint16_t klen;
	uint16_t aux;            /* the owner's: the table never reads it */
};

struct hashtab {
	struct hashent **slot;
	uint32_t mask;           /* size - 1; no slots while slot == NULL */
	uint32_t n;              /* entries; the owner adds one it inserts */
};

/* hashtab_hash - FNV-1a: keys are short and this needs no state */
static inline uint32_t
hashtab_hash(const char *key, size_t klen)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < klen; i++) {
		h ^= (unsigned char)key[i];
		h *= 16777619u;
	}
	return h;
}

/* hashtab_find - the slot holding key (hash h), or the empty slot where it
 * would go; NULL when the table has no slots yet.  Inline: every event
 * looks up a few keys. */
static inline struct hashent **
hashtab_find(const struct hashtab *t, const char *key, size_t klen, uint32_t h,
    size_t keyoff)
{
	if (t->slot == NULL)
		return NULL;
	for (uint32_t i = h & t->mask;; i = (i + 1) & t->mask) {
		struct hashent *e = t->slot[i];
		if (e == NULL || (e->hash == h && e->klen == klen &&
		    memcmp((const char *)e + keyoff, key, klen) == 0))
			return &t->slot[i];
	}
}

/* Like hashtab_find, but first makes room for one more entry (the table
 * grows to stay at most 3/4 full); NULL if out of memory. */
struct hashent **hashtab_slot_for_insert(struct hashtab *t, const char *key, size_t klen,
    uint32_t h, size_t keyoff);
/* Free the entry in slot and close the gap it leaves. */
void hashtab_del(struct hashtab *t, struct hashent **slot);
/* Free every entry keep() says no to, then shrink the table to fit (a
 * burst of keys must not pin memory).  Out of memory while shrinking, the
 * table is freed whole (its probe chains are broken): only state is lost. */
void hashtab_sweep(struct hashtab *t, bool (*keep)(struct hashent *e, const void *arg),
    const void *arg);
/* Free every entry and the slots; the table is empty and usable again. */
void hashtab_free(struct hashtab *t);

#endif
