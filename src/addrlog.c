/*
 * addrlog - failures against an account, and their addresses.  See addrlog.h.
 *
 * An account's ring is an array in time order, f[0] the oldest: a failure
 * goes in its place (nearly always at the end), a full ring drops f[0].
 * It holds at most maxretry entries (20 for the shipped jail), so the
 * memmove of an insert or a drop is a few hundred bytes at most.
 */
#include "addrlog.h"

#include <arpa/inet.h>
#include <string.h>

#include "addr.h"

struct failure {
	uint32_t time;
	unsigned char addr[16];  /* IPv6, IPv4 mapped (::ffff:a.b.c.d), or
	                          * all zero: no address to ban */
};

struct ring {
	uint32_t cap, n;
	struct failure f[];      /* in time order */
};

static const unsigned char v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
static const unsigned char none[16];

/* to_binary - an address of family to 16 bytes (family 0: none); -1 for
 * another family */
static int
to_binary(int family, const unsigned char *addr, unsigned char out[16])
{
	if (family == 0) {
		memset(out, 0, 16);
		return 0;
	}
	if (family == AF_INET) {
		memcpy(out, v4mapped, sizeof(v4mapped));
		memcpy(out + 12, addr, 4);
		return 0;
	}
	if (family != AF_INET6)
		return -1;
	memcpy(out, addr, 16);
	/* "::" never comes from a log line (inet_pton'd client addresses of
	 * TCP connections): it is the marker of none */
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

static uint32_t
t32(int64_t t)
{
	return t < 0 ? 0 : t > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)t;
}

/* grow - room for one more in account's ring (up to max); the ring */
static struct ring *
grow(struct addrlog *a, const char *account, size_t klen, struct ring *r, uint32_t max)
{
	uint32_t ncap;

	if (r->n < r->cap || r->cap >= max)
		return r;
	ncap = r->cap * 2 < max ? r->cap * 2 : max;
	if ((r = keytab_resize(&a->accounts, account, klen, ring_size(ncap))) == NULL)
		return NULL;
	r->cap = ncap;
	return r;
}

int
addrlog_add(struct addrlog *a, const char *account, int64_t t, int family,
    const unsigned char *addr, uint32_t max)
{
	size_t klen = strlen(account);
	struct failure in;
	struct ring *r;
	uint32_t at;
	bool created;

	if (max == 0 || to_binary(family, addr, in.addr) != 0)
		return -1;
	in.time = t32(t);
	/* room for one: most accounts of a spray fail once */
	if ((r = keytab_put(&a->accounts, account, klen, ring_size(1), &created)) == NULL)
		return -1;
	if (created)
		r->cap = 1;
	if ((r = grow(a, account, klen, r, max)) == NULL)
		return -1;
	/* its place: after every failure not later than it */
	for (at = r->n; at > 0 && r->f[at - 1].time > in.time; at--)
		;
	if (r->n == r->cap) {
		if (at == 0)
			return 0;   /* older than all a full ring holds: no window needs it */
		memmove(r->f, r->f + 1, (size_t)(at - 1) * sizeof(r->f[0]));
		at--;
	} else {
		memmove(r->f + at + 1, r->f + at, (size_t)(r->n - at) * sizeof(r->f[0]));
		r->n++;
	}
	r->f[at] = in;
	return 0;
}

bool
addrlog_full(const struct addrlog *a, const char *account, int64_t t, int64_t findtime,
    uint32_t max, int64_t *end)
{
	const struct ring *r = keytab_get(&a->accounts, account, strlen(account));

	if (r == NULL || r->n < max || r->n == 0)
		return false;
	/* max failures, all within one window, that one among them */
	if ((int64_t)r->f[r->n - 1].time - (int64_t)r->f[0].time >= findtime ||
	    t < (int64_t)r->f[0].time || t > (int64_t)r->f[r->n - 1].time)
		return false;
	*end = r->f[r->n - 1].time;
	return true;
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
		const struct failure *f = &r->f[k];
		bool seen = false;
		if ((int64_t)f->time <= after || (int64_t)f->time > until ||
		    memcmp(f->addr, none, sizeof(none)) == 0)
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

void
addrlog_forget(struct addrlog *a, const char *account)
{
	(void)keytab_del(&a->accounts, account, strlen(account));
}

size_t
addrlog_accounts(const struct addrlog *a)
{
	return a->accounts.tab.n;
}

static bool
keep_ring(void *p, const void *arg)
{
	struct ring *r = p;
	int64_t cut = *(const int64_t *)arg;
	uint32_t old = 0;

	while (old < r->n && (int64_t)r->f[old].time <= cut)
		old++;
	memmove(r->f, r->f + old, (size_t)(r->n - old) * sizeof(r->f[0]));
	r->n -= old;
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
