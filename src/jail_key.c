/*
 * jail_key - what a jail counts an event under: the key (ip, ip/N,
 * account, sender, domain) taken from the event's fields, the CIDRs and
 * names it ignores, and the canonical form of an operator's target.  Part
 * of the jail module (jail_impl.h).
 *
 *   - key = ip/N: IPv6 addresses are masked to /N (N <= 128); IPv4 addresses to
 *     /N if N <= 32, else kept exact.  So ip/64 means "v4 exact, v6 /64".
 *   - ignore: CIDRs match ip-keyed jails (by the event's address), names match
 *     account/sender/domain keys exactly.  Loopback is ignored unless the jail
 *     says "ignore =" explicitly (jail_conf.c).  CIDRs do not apply to
 *     account-keyed jails, so a webmail on localhost is still under its quota.
 *
 * Memory: keys are written into the caller's buffers; nothing is allocated.
 * Every address is parsed with inet_pton (an event's once: struct ipmemo).
 */
#include "jail_impl.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "addr.h"
#include "cfgfile.h"

/* ---- addresses -------------------------------------------------------- */

/* jail_parse_cidr - "addr" or "addr/len"; host bits are masked off */
int
jail_parse_cidr(const char *s, struct cidr *c)
{
	char buf[MJ_IP_MAX + 8];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	uint64_t len;
	int max;

	if (alen == 0 || alen >= MJ_IP_MAX)
		return -1;
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	memset(c, 0, sizeof(*c));
	if (inet_pton(AF_INET, buf, c->addr) == 1) {
		c->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, c->addr) == 1) {
		c->family = AF_INET6;
		max = 128;
	} else {
		return -1;
	}
	if (slash == NULL)
		len = (uint64_t)max;
	else if (cfg_parse_uint(slash + 1, (uint64_t)max, &len) != 0)
		return -1;
	c->len = (int)len;
	for (int b = c->len; b < max; b++)
		c->addr[b / 8] &= (unsigned char)~(0x80u >> (b % 8));
	return 0;
}

static bool
cidr_match(const struct cidr *c, int family, const unsigned char *addr)
{
	int full = c->len / 8, rest = c->len % 8;

	if (c->family != family)
		return false;
	if (memcmp(c->addr, addr, (size_t)full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((c->addr[full] ^ addr[full]) & (0xff00u >> rest) & 0xff) == 0;
}

/* jail_format_cidr - canonical text of c; "/len" only when it is a prefix */
void
jail_format_cidr(const struct cidr *c, char *out, size_t len)
{
	char a[MJ_IP_MAX];
	int max = c->family == AF_INET ? 32 : 128;

	if (addr_format(c->family, c->addr, a, sizeof(a)) != 0)
		a[0] = '\0';
	if (c->len == max)
		snprintf(out, len, "%s", a);
	else
		snprintf(out, len, "%s/%d", a, c->len);
}

/* ---- keys ------------------------------------------------------------- */

/* jail_ip_key - the key (and target) for the address in m in jail j; false if it
 * is not an address or is ignored */
bool
jail_ip_key(const struct jail *j, struct ipmemo *m, char *out, size_t len)
{
	struct cidr c;

	if (m->state == 0)
		m->state = m->ip[0] != '\0' && strchr(m->ip, '/') == NULL &&
		    jail_parse_cidr(m->ip, &m->c) == 0 ? 1 : -1;
	if (m->state < 0)
		return false;
	c = m->c;
	for (size_t i = 0; i < j->ncidrs; i++)
		if (cidr_match(&j->cidrs[i], c.family, c.addr))
			return false;
	/* Event addresses are canonical already (rules.c): an exact key is the
	 * address as it is, with no formatting on the hot path. */
	if (j->key != KEY_PREFIX)
		return jail_copy_key(out, len, m->ip);
	{
		int max = c.family == AF_INET ? 32 : 128;
		if (j->prefix <= max) {
			for (int b = j->prefix; b < max; b++)
				c.addr[b / 8] &= (unsigned char)~(0x80u >> (b % 8));
			c.len = j->prefix;
		}
	}
	jail_format_cidr(&c, out, len);
	return true;
}

static bool
name_ignored(const struct jail *j, const char *name)
{
	return str_in(j->names, j->nnames, name);
}

/* jail_event_key - the key of ev in j; false if ev lacks the field or it is
 * ignored */
bool
jail_event_key(const struct jail *j, const struct event *ev, struct ipmemo *m, char *out,
    size_t len)
{
	const char *at;

	switch (j->key) {
	case KEY_IP:
	case KEY_PREFIX:
		return jail_ip_key(j, m, out, len);
	case KEY_ACCOUNT:
		if (ev->user[0] == '\0' || !jail_copy_key(out, len, ev->user))
			return false;
		break;
	case KEY_SENDER:
		if (ev->sender[0] == '\0' || !jail_copy_key(out, len, ev->sender))
			return false;
		break;
	case KEY_DOMAIN:
		if ((at = strrchr(ev->user, '@')) == NULL && (at = strrchr(ev->sender, '@')) == NULL)
			return false;
		if (at[1] == '\0')
			return false;
		if (!jail_copy_key(out, len, at + 1))
			return false;
		/* domains are case-insensitive; one key per domain */
		for (char *p = out; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		break;
	}
	return !name_ignored(j, out);
}

/* jail_target_key - the key of a verdict's target in a recidive jail */
bool
jail_target_key(const struct jail *j, const char *target, enum target_kind kind,
    char *out, size_t len)
{
	struct cidr c;

	if (kind == TARGET_IP) {
		if (!key_is_ip(j))
			return false;
		if (strchr(target, '/') == NULL) {
			struct ipmemo m = { .ip = target };
			return jail_ip_key(j, &m, out, len);
		}
		if (jail_parse_cidr(target, &c) != 0)
			return false;
		for (size_t i = 0; i < j->ncidrs; i++)
			if (cidr_match(&j->cidrs[i], c.family, c.addr))
				return false;
		jail_format_cidr(&c, out, len);
		return true;
	}
	if (key_is_ip(j) || name_ignored(j, target))
		return false;
	snprintf(out, len, "%s", target);
	return true;
}

/* jail_canon_target - canonical form of an operator-given target; -1 if bad */
int
jail_canon_target(const char *target, enum target_kind kind, char *out, size_t len)
{
	struct cidr c;

	if (kind == TARGET_IP) {
		if (jail_parse_cidr(target, &c) != 0)
			return -1;
		jail_format_cidr(&c, out, len);
		return 0;
	}
	/* an account goes into a Postfix map: no spaces or control characters */
	if (target[0] == '\0' || strlen(target) >= MJ_FIELD_MAX)
		return -1;
	for (const char *p = target; *p; p++)
		if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p))
			return -1;
	snprintf(out, len, "%s", target);
	return 0;
}
