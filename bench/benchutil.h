/*
 * benchutil - what the latency benches (bench/latency.c, bench/fleet.c)
 * share: a monotonic clock, waiting for a target to be in the kernel's set,
 * and the summary line of the latencies.  No memory of its own.
 */
#ifndef MAILJAIL_BENCHUTIL_H
#define MAILJAIL_BENCHUTIL_H

struct nft;

/* Milliseconds on the monotonic clock. */
double bench_now_ms(void);
/* Poll until target is in our nft sets: the milliseconds since t0
 * (bench_now_ms), or -1 after timeout_ms or on a netlink error (said on
 * stderr, prefixed by who). */
double bench_wait_in_set(struct nft *n, const char *target, double t0, double timeout_ms,
    const char *who);
/* Sort lat[0..count) and print "WHAT: p50 X ms, p99 Y ms, max Z ms" with
 * prec decimals. */
void bench_print_latencies(const char *what, double *lat, int count, int prec);

#endif
