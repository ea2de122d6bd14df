/*
 * benchutil - see benchutil.h.
 */
#include "benchutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "nft.h"

double
bench_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

double
bench_wait_in_set(struct nft *n, const char *target, double t0, double timeout_ms,
    const char *who)
{
	for (;;) {
		int has = nft_has(n, target);

		if (has < 0) {
			fprintf(stderr, "%s: netlink query failed\n", who);
			return -1;
		}
		if (has)
			return bench_now_ms() - t0;
		if (bench_now_ms() - t0 > timeout_ms) {
			fprintf(stderr, "%s: %s not in the set within %.0f s\n", who, target,
			    timeout_ms / 1000);
			return -1;
		}
		usleep(100);
	}
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

void
bench_print_latencies(const char *what, double *lat, int count, int prec)
{
	int p99 = (count * 99) / 100 < count ? (count * 99) / 100 : count - 1;

	qsort(lat, (size_t)count, sizeof(*lat), cmp_double);
	printf("%s: p50 %.*f ms, p99 %.*f ms, max %.*f ms\n", what, prec, lat[count / 2], prec,
	    lat[p99], prec, lat[count - 1]);
}
