/*
 * hashtab - the open-addressing core of the string-keyed tables.  See
 * hashtab.h.
 */
#include "hashtab.h"

#include <stdlib.h>

#define HASHTAB_MIN 16           /* slots, a power of two */

/* rehash - into size slots (a power of two above n) */
static int
rehash(struct hashtab *t, uint32_t size)
{
	struct hashent **ns = calloc(size, sizeof(*ns));

	if (ns == NULL)
		return -1;
	for (uint32_t i = 0; t->slot != NULL && i <= t->mask; i++) {
		struct hashent *e = t->slot[i];
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

struct hashent **
hashtab_slot_for_insert(struct hashtab *t, const char *key, size_t klen, uint32_t h,
    size_t keyoff)
{
	uint32_t size = t->slot ? t->mask + 1 : 0;

	if (size == 0 || (uint64_t)(t->n + 1) * 4 > (uint64_t)size * 3) {
		if (rehash(t, size ? size * 2 : HASHTAB_MIN) != 0)
			return NULL;
	}
	return hashtab_find(t, key, klen, h, keyoff);
}

void
hashtab_del(struct hashtab *t, struct hashent **slot)
{
	uint32_t i = (uint32_t)(slot - t->slot), j = i;

	free(*slot);
	t->n--;
	/* backward shift: move up any entry whose probe chain crossed i */
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
}

void
hashtab_sweep(struct hashtab *t, bool (*keep)(struct hashent *e, const void *arg),
    const void *arg)
{
	uint32_t size = HASHTAB_MIN;

	if (t->slot == NULL)
		return;
	for (uint32_t i = 0; i <= t->mask; i++) {
		if (t->slot[i] != NULL && !keep(t->slot[i], arg)) {
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
	if (rehash(t, size) != 0)
		hashtab_free(t);
}

void
hashtab_free(struct hashtab *t)
{
	for (uint32_t i = 0; t->slot != NULL && i <= t->mask; i++)
		free(t->slot[i]);
	free(t->slot);
	memset(t, 0, sizeof(*t));
}
