/*
 * store_util - what both store backends (store_sqlite.c, store_pgsql.c) do
 * alike that is no database's business: the bans' actions column as text
 * and back, the per-minute event counts summed in memory before a batch
 * writes them, and the evidence totals built from the per-address rows of
 * the evidence query.  Declared in store_backend.h (internal to the store).
 *
 * Memory: nothing is allocated; the count table is the caller's and its
 * rule and event strings are borrowed, like a buffered event row's.
 */
#include "store_backend.h"

#include <stdio.h>
#include <string.h>

static const struct {
	unsigned bit;
	const char *name;
} action_names[] = {
	{ ACTION_NFT, "nft" }, { ACTION_HOLD, "hold" }, { ACTION_REJECT, "reject" },
	{ ACTION_DEFER, "defer" },
};

const char *
store_actions_text(unsigned actions, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(action_names) / sizeof(action_names[0]); i++) {
		if (!(actions & action_names[i].bit))
			continue;
		off += (size_t)snprintf(buf + off, len - off, "%s%s", off ? "," : "",
		    action_names[i].name);
		if (off >= len)
			break;
	}
	return buf;
}

unsigned
store_actions_parse(const char *s)
{
	unsigned a = 0;

	if (s == NULL)
		return 0;
	for (size_t i = 0; i < sizeof(action_names) / sizeof(action_names[0]); i++)
		if (strstr(s, action_names[i].name))
			a |= action_names[i].bit;
	return a;
}

int64_t
store_minute_of(int64_t t)
{
	return t >= 0 ? t / 60 : -((-t + 59) / 60);
}

bool
store_counts_add(struct store_counts *c, const struct event *ev)
{
	int64_t minute = store_minute_of(ev->time);
	/* the rule name is owned by the ruleset: its address identifies it */
	uint64_t h = ((uint64_t)minute * 0x9E3779B97F4A7C15ULL) ^ (uint64_t)(uintptr_t)ev->rule;
	size_t i = (size_t)(h ^ (h >> 29)) & (STORE_COUNT_SLOTS - 1);

	for (;; i = (i + 1) & (STORE_COUNT_SLOTS - 1)) {
		struct store_count_slot *s = &c->slot[i];
		if (s->n == 0) {
			*s = (struct store_count_slot){ minute, ev->rule, ev->type, 1 };
			c->n++;
			break;
		}
		if (s->minute == minute && s->rule == ev->rule) {
			s->n++;
			break;
		}
	}
	return c->n * 4 >= STORE_COUNT_SLOTS * 3;
}

void
store_counts_clear(struct store_counts *c)
{
	if (c->n == 0)
		return;
	for (size_t i = 0; i < STORE_COUNT_SLOTS; i++)
		c->slot[i].n = 0;
	c->n = 0;
}

void
store_evidence_add(struct store_evidence *out, bool *rcpt_known, const char *ip,
    size_t iplen, int64_t submissions, int64_t recipients, int64_t queued)
{
	out->submissions += submissions;
	out->clients++;
	if (queued > 0) {
		*rcpt_known = true;
		out->recipients += recipients;
	}
	if (out->ntop < STORE_EVIDENCE_TOP && iplen < sizeof(out->top[0].ip)) {
		if (iplen > 0)
			memcpy(out->top[out->ntop].ip, ip, iplen);
		out->top[out->ntop].ip[iplen] = '\0';
		out->top[out->ntop].submissions = submissions;
		out->ntop++;
	}
}
