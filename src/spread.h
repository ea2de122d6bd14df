/*
 * spread - how the events of one kind spread over the keys of a jail within
 * a window: how many events, how many distinct keys, how many of them one
 * key has.  For refusals that are about the server rather than about the
 * account that sent the message (remote_listed): spread over many accounts
 * they say the server is listed; from one account nearly alone, that
 * account.
 *
 * Each event has a source, the fleet node whose server it is about (NULL:
 * this node): a listed server is one node's address, so the stats of a
 * window are those of one source's events.
 *
 * Keeps the last SPREAD_EVENTS_MAX events (time, hash of the source, hash of
 * the key), in the order added, all sources in one ring; a window that holds
 * more sees the newest of them.  Two keys (or sources) with the same 32-bit
 * hash count as one (rare; it can only make a spread look smaller).
 *
 * Memory: the caller owns the struct; spread_free releases its ring.
 */
#ifndef MAILJAIL_SPREAD_H
#define MAILJAIL_SPREAD_H

#include <stdint.h>

#define SPREAD_EVENTS_MAX 1024   /* a power of two */

struct spread {
	uint32_t *time;          /* ring of SPREAD_EVENTS_MAX, NULL until used */
	uint32_t *hash;
	uint32_t *source;        /* 0: this node */
	uint32_t head, n;
};

struct spread_stats {
	uint32_t events;         /* in the window, this one included */
	uint32_t keys;           /* distinct keys among them */
	uint32_t mine;           /* events of the key asked about */
	uint32_t top;            /* events of the busiest key */
};

/* Add an event of key from source (NULL: this node) at time t.  0, or -1
 * out of memory. */
int spread_add(struct spread *s, int64_t t, const char *source, const char *key);
/* The events of source in (t - window, t], and key's share of them. */
void spread_stats(const struct spread *s, int64_t t, int64_t window, const char *source,
    const char *key, struct spread_stats *out);
void spread_free(struct spread *s);

#endif
