/*
 * nft - the only code that talks to the kernel: nftables through libnftnl and
 * libmnl (netlink, no nft(8) processes).
 *
 * nft_open() creates, idempotently, "table inet <table>" with sets
 * <set_v4> (ipv4_addr) and <set_v6> (ipv6_addr) for addresses, and
 * <set_v4>_net and <set_v6>_net for prefixes, flags timeout and interval,
 * and a base chain <chain> on the input hook, priority -10, that drops packets
 * from members of any of them to the configured TCP ports (or all traffic).  Existing
 * elements are left alone; a table of that name with a foreign layout is an
 * error, never flushed.
 *
 * nft_ban/nft_unban queue elements; nft_commit sends them as one netlink
 * batch and reads every ACK, reporting errors with the element concerned.
 * Every address is validated with inet_pton before it goes into a message.
 *
 * Memory: struct nft owns its mnl socket and the pending batch.
 */
#ifndef MAILJAIL_NFT_H
#define MAILJAIL_NFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NFT_PORTS_MAX 32
/* Prefixes go in a set of their own beside each address set, named like it
 * with this suffix (the kernel refuses overlapping intervals in one set). */
#define NFT_NET_SUFFIX "_net"

struct nft_options {
	const char *table;       /* default "mailjail" */
	const char *set_v4;      /* default "banned_ipv4" */
	const char *set_v6;      /* default "banned_ipv6" */
	const char *chain;       /* default "input" */
	uint16_t ports[NFT_PORTS_MAX];
	size_t nports;           /* 0: all traffic */
};

struct nft;

int nft_open(struct nft **out, const struct nft_options *o, char *err, size_t errlen);
void nft_close(struct nft *n);

/* target: "192.0.2.1", "2001:db8::1", "192.0.2.0/24", "2001:db8::/64".
 * Returns 0, or -1 if the target is not a valid address or prefix. */
int nft_ban(struct nft *n, const char *target, uint64_t timeout_ms);
int nft_unban(struct nft *n, const char *target);
/* Send the queued batch.  Returns 0, or -1 if any element failed (each
 * failure is logged with its element). */
int nft_commit(struct nft *n);
/* 1 if our table, sets and chain are present, 0 if not (flushed from
 * outside), -1 on error. */
int nft_check(struct nft *n);
/* Is addr in our sets now, per the kernel?  For an address: is it dropped
 * (its own element, or a banned prefix around it); for a prefix: is it in
 * the prefix set (or inside one there).  1 yes, 0 no, -1 error.  One or two
 * netlink GETs; for benchmarks and tests. */
int nft_has(struct nft *n, const char *addr);
/* Re-create the table layout (after nft_check() returned 0). */
int nft_setup(struct nft *n, char *err, size_t errlen);

#endif
