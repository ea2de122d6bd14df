/*
 * keytab - a string-keyed table of malloc'd entries.  See keytab.h.
 *
 * An entry is one block: header, key bytes and a NUL, padding to 8, then
 * the payload, so a payload of a few bytes costs one malloc.
 */
#include "keytab.h"

#include <stdlib.h>
#include <string.h>

#define KEYTAB_MIN 16            /* slots, a power of two */

struct keytab_ent {
	uint32_t hash;
	uint32_t size;           /* payload bytes */
	uint16_t klen;
	char key[];
};

/* hash_key - FNV-1a */
static uint32_t
hash_key(const char *key, size_t klen)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < klen; i++) {
		h ^= (unsigned char)key[i];
		h *= 16777619u;
	}
	return h;
}

static size_t
payload_off(size_t klen)
{
	return (sizeof(struct keytab_ent) + klen + 1 + 7) & ~(size_t)7;
}

static void *
payload(struct keytab_ent *e)
{
	return (char *)e + payload_off(e->klen);
}

/* find - the slot holding key, or the empty slot where it would go; NULL
 * when the table has no slots */
static struct keytab_ent **
find(const struct keytab *t, const char *key, size_t klen, uint32_t h)
{
	if (t->slot == NULL)
		return NULL;
	for (uint32_t i = h & t->mask;; i = (i + 1) & t->mask) {
		struct keytab_ent *e = t->slot[i];
		if (e == NULL || (e->hash == h && e->klen == klen &&
		    memcmp(e->key, key, klen) == 0))
			return &t->slot[i];
	}
}

/* rehash - into size slots (a power of two above n) */
static int
rehash(struct keytab *t, uint32_t size)
{
	struct keytab_ent **ns = calloc(size, sizeof(*ns));

	if (ns == NULL)
		return -1;
	for (uint32_t i = 0; t->slot != NULL && i <= t->mask; i++) {
		struct keytab_ent *e = t->slot[i];
		uint32_t j;
		if (e == NULL)
			continue;
		for (j = e->hash & (size - 1); ns[j] != NULL; j = (j + 1) & (size - 1))
			;
		ns[j] = e;
	}
	free(t->slot);
	t->slot = ns;
	t->mask = size - 1;
	return 0;
}

void *
keytab_get(const struct keytab *t, const char *key, size_t klen)
{
	struct keytab_ent **s = find(t, key, klen, hash_key(key, klen));

	return s != NULL && *s != NULL ? payload(*s) : NULL;
}

void *
keytab_put(struct keytab *t, const char *key, size_t klen, size_t size, bool *created)
{
	uint32_t h = hash_key(key, klen), slots = t->slot ? t->mask + 1 : 0;
	struct keytab_ent **s = find(t, key, klen, h), *e;

	*created = false;
	if (s != NULL && *s != NULL)
		return payload(*s);
	if (klen > UINT16_MAX || size > UINT32_MAX)
		return NULL;
	if (slots == 0 || (uint64_t)(t->n + 1) * 4 > (uint64_t)slots * 3) {
		if (rehash(t, slots ? slots * 2 : KEYTAB_MIN) != 0)
			return NULL;
		s = find(t, key, klen, h);
	}
	if ((e = calloc(1, payload_off(klen) + size)) == NULL)
		return NULL;
	e->hash = h;
	e->size = (uint32_t)size;
	e->klen = (uint16_t)klen;
	memcpy(e->key, key, klen);
	*s = e;
	t->n++;
	*created = true;
	return payload(e);
}

void *
keytab_resize(struct keytab *t, const char *key, size_t klen, size_t size)
{
	struct keytab_ent **s = find(t, key, klen, hash_key(key, klen)), *e;
	size_t off;

	if (s == NULL || *s == NULL || size > UINT32_MAX)
		return NULL;
	off = payload_off(klen);
	if ((e = realloc(*s, off + size)) == NULL)
		return NULL;
	if (size > e->size)
		memset((char *)e + off + e->size, 0, size - e->size);
	e->size = (uint32_t)size;
	*s = e;
	return payload(e);
}

bool
keytab_del(struct keytab *t, const char *key, size_t klen)
{
	struct keytab_ent **s = find(t, key, klen, hash_key(key, klen));
	uint32_t i, j;

	if (s == NULL || *s == NULL)
		return false;
	free(*s);
	t->n--;
	/* backward shift: move up any entry whose probe chain crossed i */
	i = j = (uint32_t)(s - t->slot);
	for (;;) {
		uint32_t k;
		j = (j + 1) & t->mask;
		if (t->slot[j] == NULL)
			break;
		k = t->slot[j]->hash & t->mask;
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		t->slot[i] = t->slot[j];
		i = j;
	}
	t->slot[i] = NULL;
	return true;
}

void
keytab_sweep(struct keytab *t, bool (*keep)(void *payload, const void *arg),
    const void *arg)
{
	uint32_t size = KEYTAB_MIN;

	if (t->slot == NULL)
		return;
	for (uint32_t i = 0; i <= t->mask; i++) {
		if (t->slot[i] != NULL && !keep(payload(t->slot[i]), arg)) {
			free(t->slot[i]);
			t->slot[i] = NULL;
			t->n--;
		}
	}
	while ((uint64_t)size * 3 < (uint64_t)t->n * 4 * 2)
		size *= 2;
	if (size > t->mask + 1)
		size = t->mask + 1;
	/* rehash even at the same size: the holes broke probe chains */
	if (rehash(t, size) != 0) {
		/* out of memory: a table with broken chains cannot be kept */
		keytab_free(t);
	}
}

void
keytab_free(struct keytab *t)
{
	for (uint32_t i = 0; t->slot != NULL && i <= t->mask; i++)
		free(t->slot[i]);
	free(t->slot);
	memset(t, 0, sizeof(*t));
}
