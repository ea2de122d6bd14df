/*
 * keytab - a string-keyed table of malloc'd entries.  See keytab.h.
 *
 * An entry is one block: the hashtab head, the payload size, key bytes and
 * a NUL, padding to 8, then the payload, so a payload of a few bytes costs
 * one malloc.
 */
#include "keytab.h"

#include <stdlib.h>
#include <string.h>

struct keytab_ent {
	struct hashent h;
	uint32_t size;           /* payload bytes */
	char key[];
};

#define KEYOFF offsetof(struct keytab_ent, key)

static size_t
payload_off(size_t klen)
{
	return (sizeof(struct keytab_ent) + klen + 1 + 7) & ~(size_t)7;
}

static void *
payload(struct hashent *e)
{
	return (char *)e + payload_off(e->klen);
}

static struct hashent **
find(const struct keytab *t, const char *key, size_t klen)
{
	return hashtab_find(&t->tab, key, klen, hashtab_hash(key, klen), KEYOFF);
}

void *
keytab_get(const struct keytab *t, const char *key, size_t klen)
{
	struct hashent **s = find(t, key, klen);

	return s != NULL && *s != NULL ? payload(*s) : NULL;
}

void *
keytab_put(struct keytab *t, const char *key, size_t klen, size_t size, bool *created)
{
	uint32_t h = hashtab_hash(key, klen);
	struct hashent **s = hashtab_find(&t->tab, key, klen, h, KEYOFF);
	struct keytab_ent *e;

	*created = false;
	if (s != NULL && *s != NULL)
		return payload(*s);
	if (klen > UINT16_MAX || size > UINT32_MAX)
		return NULL;
	if ((s = hashtab_slot_for_insert(&t->tab, key, klen, h, KEYOFF)) == NULL)
		return NULL;
	if ((e = calloc(1, payload_off(klen) + size)) == NULL)
		return NULL;
	e->h.hash = h;
	e->h.klen = (uint16_t)klen;
	e->size = (uint32_t)size;
	memcpy(e->key, key, klen);
	*s = &e->h;
	t->tab.n++;
	*created = true;
	return payload(&e->h);
}

void *
keytab_resize(struct keytab *t, const char *key, size_t klen, size_t size)
{
	struct hashent **s = find(t, key, klen);
	struct keytab_ent *e;
	size_t off;

	if (s == NULL || *s == NULL || size > UINT32_MAX)
		return NULL;
	off = payload_off(klen);
	if ((e = realloc(*s, off + size)) == NULL)
		return NULL;
	if (size > e->size)
		memset((char *)e + off + e->size, 0, size - e->size);
	e->size = (uint32_t)size;
	*s = &e->h;
	return payload(&e->h);
}

bool
keytab_del(struct keytab *t, const char *key, size_t klen)
{
	struct hashent **s = find(t, key, klen);

	if (s == NULL || *s == NULL)
		return false;
	hashtab_del(&t->tab, s);
	return true;
}

struct keep_payload {
	bool (*keep)(void *payload, const void *arg);
	const void *arg;
};

static bool
keep_entry(struct hashent *e, const void *arg)
{
	const struct keep_payload *k = arg;

	return k->keep(payload(e), k->arg);
}

void
keytab_sweep(struct keytab *t, bool (*keep)(void *payload, const void *arg),
    const void *arg)
{
	struct keep_payload k = { keep, arg };

	hashtab_sweep(&t->tab, keep_entry, &k);
}

void
keytab_free(struct keytab *t)
{
	hashtab_free(&t->tab);
}
