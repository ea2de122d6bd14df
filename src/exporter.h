/*
 * exporter - where the daemon's metrics (metrics.h) go: the textfile for
 * node_exporter's textfile collector ([metrics] textfile, rewritten every
 * EXPORTER_SECS and at stop), /metrics over HTTP ([metrics] listen, through
 * libmicrohttpd; off unless configured), and the counters saved in the
 * store on the same beat.
 *
 * libmicrohttpd runs without a thread of its own: its one epoll descriptor
 * (exporter_fd) is waited on with the logs, and exporter_tick serves what is
 * ready, so a scrape renders in the daemon's own thread between batches
 * (the store is not thread-safe) and a slow client blocks nothing.
 *
 * Memory: struct exporter borrows the metrics; it copies what it keeps of
 * the configuration.
 */
#ifndef MAILJAIL_EXPORTER_H
#define MAILJAIL_EXPORTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "metrics.h"
#include "store.h"

/* How often the textfile is rewritten and the counters saved (node
 * exporter reads the file at each of its scrapes: at least every 15 s). */
#define EXPORTER_SECS 10

struct exporter;

/* Whether mc->listen names a port below 1024, which only root (or
 * CAP_NET_BIND_SERVICE) may bind: the daemon opens the exporter before the
 * privilege drop then, and after it otherwise (daemon.c). */
bool exporter_needs_privilege(const struct metrics_config *mc);
/* Listen if mc->listen is set.  Returns 0, or -1 after logging why. */
int exporter_open(struct exporter **out, struct metrics *m, const struct metrics_config *mc);
/* The textfile now, and the counters saved; -1 (with err) if the textfile
 * cannot be written: at start, after the privilege drop, it must work. */
int exporter_flush(struct exporter *e, struct store *st, const struct config *cfg,
    int64_t now, char *err, size_t errlen);
/* Each turn of the loop: answer HTTP requests that are ready, and flush
 * every EXPORTER_SECS (a failure is logged once until it works again). */
void exporter_tick(struct exporter *e, struct store *st, const struct config *cfg,
    int64_t now);
/* The descriptor to wait on (readable: exporter_tick has work), or -1. */
int exporter_fd(const struct exporter *e);
/* Stop listening (the caller flushes first).  e may be NULL. */
void exporter_close(struct exporter *e);

#endif
