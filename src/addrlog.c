/*
 * addrlog - addresses that failed against an account.  See addrlog.h.
 */
#include "addrlog.h"

#include <arpa/inet.h>
#include <string.h>

#include "addr.h"

struct failure {
	uint32_t time;
	unsigned char addr[16];  /* IPv6, or IPv4 mapped (::ffff:a.b.c.d) */
};

struct ring {
	uint32_t cap, head, n;
	struct failure f[];      /* in the order added */
};

static const unsigned char v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

/* to_binary - an address of family to 16 bytes; -1 for another family */
static int
to_binary(int family, const unsigned char *addr, unsigned char out[16])
{
	if (family == AF_INET) {
		memcpy(out, v4mapped, sizeof(v4mapped));
		memcpy(out + 12, addr, 4);
		return 0;
	}
	if (family != AF_INET6)
		return -1;
	memcpy(out, addr, 16);
	return 0;
}

/* to_text - back to the canonical text (the form rules.c gives events) */
static int
to_text(const unsigned char in[16], char *out, size_t len)
{
	if (memcmp(in, v4mapped, sizeof(v4mapped)) == 0)
		return addr_format(AF_INET, in + 12, out, len);
	return addr_format(AF_INET6, in, out, len);
}

static size_t
ring_size(uint32_t cap)
{
	return sizeof(struct ring) + (size_t)cap * sizeof(struct failure);
}

int
addrlog_add(struct addrlog *a, const char *account, int64_t t, int family,
    const unsigned char *addr, uint32_t max)
{
	size_t klen = strlen(account);
	unsigned char bin[16];
	struct ring *r;
	bool created;

	if (max == 0 || to_binary(family, addr, bin) != 0)
		return -1;
	/* room for one: most accounts of a spray fail once */
	if ((r = keytab_put(&a->accounts, account, klen, ring_size(1), &created)) == NULL)
		return -1;
	if (created)
		r->cap = 1;
	if (r->n == r->cap && r->cap < max) {
		uint32_t ncap = r->cap * 2 < max ? r->cap * 2 : max;
		struct ring *nr = keytab_resize(&a->accounts, account, klen, ring_size(ncap));
		if (nr == NULL)
			return -1;
		r = nr;
		/* unroll the ring so it runs from 0 */
		if (r->head != 0) {
			struct failure tmp[64];
			uint32_t moved = 0;
			while (moved < r->head) {
				uint32_t k = r->head - moved < 64 ? r->head - moved : 64;
				memcpy(tmp, r->f, k * sizeof(*tmp));
				memmove(r->f, r->f + k, (r->n - k) * sizeof(*tmp));
				memcpy(r->f + r->n - k, tmp, k * sizeof(*tmp));
				moved += k;
			}
			r->head = 0;
		}
		r->cap = ncap;
	}
	if (r->n == r->cap) {
		r->head = (r->head + 1) % r->cap;   /* the oldest goes */
		r->n--;
	}
	{
		struct failure *f = &r->f[(r->head + r->n) % r->cap];
		f->time = t < 0 ? 0 : t > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)t;
		memcpy(f->addr, bin, sizeof(bin));
		r->n++;
	}
	return 0;
}

size_t
addrlog_since(const struct addrlog *a, const char *account, int64_t after,
    int64_t until, char (*out)[MJ_IP_MAX], size_t max)
{
	const struct ring *r = keytab_get(&a->accounts, account, strlen(account));
	size_t n = 0;

	if (r == NULL)
		return 0;
	for (uint32_t k = 0; k < r->n && n < max; k++) {
		const struct failure *f = &r->f[(r->head + k) % r->cap];
		bool seen = false;
		if ((int64_t)f->time <= after || (int64_t)f->time > until)
			continue;
		if (to_text(f->addr, out[n], MJ_IP_MAX) != 0)
			continue;
		/* distinct: a later failure of the same address adds nothing
		 * (against what was found so far: at most max compares) */
		for (size_t p = 0; p < n && !seen; p++)
			seen = strcmp(out[p], out[n]) == 0;
		if (!seen)
			n++;
	}
	return n;
}

static bool
keep_ring(void *p, const void *arg)
{
	struct ring *r = p;
	int64_t cut = *(const int64_t *)arg;

	/* entries are nearly in time order (two logs may interleave): drop
	 * from the oldest end while they are old */
	while (r->n > 0 && (int64_t)r->f[r->head].time <= cut) {
		r->head = (r->head + 1) % r->cap;
		r->n--;
	}
	return r->n > 0;
}

void
addrlog_expire(struct addrlog *a, int64_t cut)
{
	keytab_sweep(&a->accounts, keep_ring, &cut);
}

void
addrlog_free(struct addrlog *a)
{
	keytab_free(&a->accounts);
}
