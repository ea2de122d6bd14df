/*
 * spread - events of one kind over keys in a window.  See spread.h.
 *
 * The distinct keys of a window (and the events of each) are counted with a
 * set of hashes on the stack (open addressing, twice the ring's size): the
 * ring is at most
 * SPREAD_EVENTS_MAX long, and a listed server's refusals are few per
 * minute, so a pass over it per refusal is cheap.
 */
#include "spread.h"

#include <stdlib.h>
#include <string.h>

#define SET_SLOTS (2 * SPREAD_EVENTS_MAX)

static uint32_t
hash_key(const char *key)
{
	uint32_t h = 2166136261u;

	for (; *key; key++) {
		h ^= (unsigned char)*key;
		h *= 16777619u;
	}
	return h ? h : 1;   /* 0 marks an empty set slot */
}

/* source_tag - 0 for this node, else a hash that is never 0 */
static uint32_t
source_tag(const char *source)
{
	return source == NULL ? 0 : hash_key(source);
}

int
spread_add(struct spread *s, int64_t t, const char *source, const char *key)
{
	uint32_t i;

	if (s->time == NULL) {
		s->time = calloc(SPREAD_EVENTS_MAX, sizeof(*s->time));
		s->hash = calloc(SPREAD_EVENTS_MAX, sizeof(*s->hash));
		s->source = calloc(SPREAD_EVENTS_MAX, sizeof(*s->source));
		if (s->time == NULL || s->hash == NULL || s->source == NULL) {
			spread_free(s);
			return -1;
		}
	}
	i = (s->head + s->n) & (SPREAD_EVENTS_MAX - 1);
	if (s->n == SPREAD_EVENTS_MAX)
		s->head = (s->head + 1) & (SPREAD_EVENTS_MAX - 1);   /* drop the oldest */
	else
		s->n++;
	s->time[i] = t < 0 ? 0 : t > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)t;
	s->hash[i] = hash_key(key);
	s->source[i] = source_tag(source);
	return 0;
}

void
spread_stats(const struct spread *s, int64_t t, int64_t window, const char *source,
    const char *key, struct spread_stats *out)
{
	uint32_t set[SET_SLOTS], count[SET_SLOTS];
	uint32_t mine = hash_key(key), from = source_tag(source);

	memset(out, 0, sizeof(*out));
	memset(set, 0, sizeof(set));
	for (uint32_t k = 0; k < s->n; k++) {
		uint32_t i = (s->head + k) & (SPREAD_EVENTS_MAX - 1), j;
		int64_t et = s->time[i];
		if (et <= t - window || et > t || s->source[i] != from)
			continue;
		out->events++;
		if (s->hash[i] == mine)
			out->mine++;
		for (j = s->hash[i] & (SET_SLOTS - 1); set[j] != 0 && set[j] != s->hash[i];
		    j = (j + 1) & (SET_SLOTS - 1))
			;
		if (set[j] == 0) {
			set[j] = s->hash[i];
			count[j] = 0;
			out->keys++;
		}
		if (++count[j] > out->top)
			out->top = count[j];
	}
}

void
spread_free(struct spread *s)
{
	free(s->time);
	free(s->hash);
	free(s->source);
	memset(s, 0, sizeof(*s));
}
