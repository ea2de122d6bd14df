/*
 * jail_ring - the jails' counter tables: per key, the times of its recent
 * events in a ring, in a hashtab.  Part of the jail module (jail_impl.h).
 *
 * Memory.  Times are stored as uint32 Unix seconds (good until 2106).  Every
 * tracked key is one malloc'd block: a 16-byte header, the key string, and a
 * ring of uint32 times kept in time order, so the count in a window is two
 * binary searches (plus uint32 weights for count = recipients), that grows
 * by doubling up to maxretry (failure jails) or largest limit + 1 (quota
 * jails), referenced from an open-addressing table of pointers (load <= 3/4).
 * A new key's ring has room for 2 times (most keys never see a third), so an
 * IPv4 key is a 48-byte heap chunk and an account like user123@example.org a
 * 64-byte one, plus 11-21 bytes of table (8-byte slots, load 3/8..3/4):
 * 60-85 bytes per tracked key, 100,000 keys (half each) ~7.7 MB (massif,
 * bench/genkeys.py; a quota key with 100+ messages in its window holds up to
 * 4 bytes per message, 8 with recipients).  Ban history (per jail and
 * target: last ban end and the start times within the history span, at
 * most BAN_STARTS_MAX), the logins of spare_authenticated and the pending
 * queue ids use the same block layout in tables of their own.  The table
 * owns the blocks (hashtab.h); a block moves when its ring grows.
 */
#include "jail_impl.h"

#include <stdlib.h>
#include <string.h>

/* jail_ent_new - a block for key with a ring of cap (x2 if weighted) uint32 */
struct ent *
jail_ent_new(const char *key, size_t klen, uint32_t h, uint16_t cap, bool weighted)
{
	struct ent *e = calloc(1, ring_off(klen) + (size_t)cap * 4 * (weighted ? 2 : 1));

	if (e == NULL)
		return NULL;
	e->h.hash = h;
	e->h.klen = (uint16_t)klen;
	e->h.aux = cap;
	memcpy(e->key, key, klen);
	e->key[klen] = '\0';
	return e;
}

/* jail_ent_get - the entry for key in t, created (ring of initcap) if absent */
struct ent *
jail_ent_get(struct hashtab *t, const char *key, uint16_t initcap, bool weighted)
{
	size_t klen = strlen(key);
	uint32_t h = hashtab_hash(key, klen);
	struct hashent **s = hashtab_find(t, key, klen, h, ENT_KEYOFF);
	struct ent *e;

	if (s != NULL && *s != NULL)
		return ent_of(*s);
	s = hashtab_slot_for_insert(t, key, klen, h, ENT_KEYOFF);
	if (s == NULL)
		return NULL;
	if ((e = jail_ent_new(key, klen, h, initcap, weighted)) == NULL)
		return NULL;
	*s = &e->h;
	t->n++;
	return e;
}

/* ent_grow - replace e (in its slot of t) by a block with a ring of ncap,
 * its times in order from slot 0 */
static struct ent *
ent_grow(struct hashtab *t, struct ent *e, uint16_t ncap, bool weighted)
{
	struct ent *ne = jail_ent_new(e->key, e->h.klen, e->h.hash, ncap, weighted);

	if (ne == NULL)
		return NULL;
	ne->t32 = e->t32;
	for (uint32_t i = 0; i < e->n; i++) {
		uint32_t k = ring_pos(e, i);
		ent_ring(ne)[i] = ent_ring(e)[k];
		if (weighted)
			ent_ring(ne)[ncap + i] = ent_ring(e)[ent_cap(e) + k];
	}
	ne->n = e->n;
	*jail_ent_slot(t, e->key, e->h.klen) = &ne->h;
	free(e);
	return ne;
}

/* jail_ent_push - insert (time, weight) into e's ring, kept in time order (an
 * event from a second log may be older than the last one), growing it up to
 * max entries; when full the oldest time is dropped, which is the new one if
 * it is older than all.  May move e (the table slot is updated). */
int
jail_ent_push(struct hashtab *t, struct ent **ep, uint32_t time, uint32_t weight,
    uint16_t max, bool weighted)
{
	struct ent *e = *ep;
	uint32_t *r, *w, i;

	if (e->n == ent_cap(e) && ent_cap(e) < max) {
		uint16_t cap = ent_cap(e);
		if ((e = ent_grow(t, e, cap * 2 > max ? max : (uint16_t)(cap * 2),
		    weighted)) == NULL)
			return -1;
		*ep = e;
	}
	r = ent_ring(e);
	w = r + ent_cap(e);
	if (e->n == ent_cap(e)) {
		if (time < r[e->head])
			return 0;
		e->head = (uint16_t)ring_pos(e, 1);
		e->n--;
	}
	/* Shift newer entries up one; none, when the logs are in time order. */
	for (i = e->n; i > 0 && r[ring_pos(e, i - 1)] > time; i--) {
		r[ring_pos(e, i)] = r[ring_pos(e, i - 1)];
		if (weighted)
			w[ring_pos(e, i)] = w[ring_pos(e, i - 1)];
	}
	r[ring_pos(e, i)] = time;
	if (weighted)
		w[ring_pos(e, i)] = weight;
	e->n++;
	return 0;
}

/* jail_ent_prune - drop ring entries with time <= cut (the oldest come first) */
void
jail_ent_prune(struct ent *e, int64_t cut)
{
	uint32_t *r = ent_ring(e);

	while (e->n > 0 && (int64_t)r[e->head] <= cut) {
		e->head = (uint16_t)ring_pos(e, 1);
		e->n--;
	}
}
