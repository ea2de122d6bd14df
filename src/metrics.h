/*
 * metrics - the daemon's counters and gauges, and their exposition in the
 * Prometheus text format 0.0.4 (HELP and TYPE lines, label values escaped):
 * the same text goes to the textfile, to "mailjail metrics" and to /metrics
 * (exporter.h).  The families and their labels are pinned in DESIGN.md,
 * "Operator signals"; no label ever holds an account name or an address
 * (series would grow with every attacker): sources, rule events, jails,
 * actions, backends and channels are all named by the configuration.
 *
 * Counters are kept here and saved in the store (metrics_save: the daemon
 * does so every 15 s and at stop), so they go on counting across restarts
 * and another process (mailjail metrics) reads them back (metrics_load).  A
 * kill -9 loses the increments since the last save; Prometheus reads the
 * lower value as a counter reset.  Gauges are not kept: each exposition
 * reads them (bans in force from the store, exactly the rows active_bans
 * shows; the outbox; the log lag from the saved positions and the files).
 *
 * No SQL here (the store's functions), no netlink.  Memory: struct metrics
 * owns its series; metrics_render's text is the caller's to free.
 */
#ifndef MAILJAIL_METRICS_H
#define MAILJAIL_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "jail.h"
#include "rules.h"
#include "store.h"

/* The counter families, with their label names (metrics.c). */
enum metrics_counter {
	METRIC_LINES,              /* mailjail_lines_total{source} */
	METRIC_EVENTS,             /* mailjail_events_total{event} */
	METRIC_VERDICTS,           /* mailjail_verdicts_total{jail,action} */
	METRIC_ENFORCE_ERRORS,     /* mailjail_enforce_errors_total{backend} */
	METRIC_NOTIFICATIONS,      /* mailjail_notifications_total{channel,result} */
	METRIC_ALARMS,             /* mailjail_alarms_total{jail,event} */
	METRIC_COUNTERS
};

struct metrics;

/* Empty counters of node (the name their saved rows carry).  -1: no memory. */
int metrics_open(struct metrics **out, const char *node);
void metrics_close(struct metrics *m);

/* The counters saved in st for this node, added to these.  -1 on a DB error. */
int metrics_load(struct metrics *m, struct store *st);
/* Save every counter in st, if any changed since the last save: in a
 * transaction of its own, or in the one open (the daemon's batch waiting
 * for its commit), whose commit then carries them.  -1 on a DB error (then
 * the next save tries again). */
int metrics_save(struct metrics *m, struct store *st);

/* The series a configuration has, at 0 until something is counted (so a
 * rate is defined from the start): lines per source, events per rule event,
 * verdicts per jail and action, bans in force per jail, enforcement errors
 * per backend the jails need, notifications per channel and result, alarms
 * per jail that raises them.  Call
 * again after a reload; series never go away before a restart. */
int metrics_declare(struct metrics *m, const struct config *cfg,
    const struct ruleset *rules, const struct jailset *jails);

/* The counter series of family f with label values l1 (and l2 for the
 * two-label families), created at 0 if new: a handle for metrics_add, or
 * -1 on no memory.  Handles stay valid until metrics_close. */
int metrics_series(struct metrics *m, enum metrics_counter f, const char *l1,
    const char *l2);
void metrics_add(struct metrics *m, int series, uint64_t n);
/* Both at once, for what happens seldom (a verdict, an error). */
void metrics_count(struct metrics *m, enum metrics_counter f, const char *l1,
    const char *l2, uint64_t n);
/* One database commit took seconds (mailjail_db_commit_seconds). */
void metrics_observe_commit(struct metrics *m, double seconds);

/* Every family, counters and gauges, at now.  st may be NULL (no gauges
 * from the store); a gauge the store cannot read now is left out, with a
 * comment line saying so.  Returns malloc'd text (*len bytes, NUL after
 * them), or NULL on no memory. */
char *metrics_render(struct metrics *m, struct store *st, const struct config *cfg,
    int64_t now, size_t *len);

/* text into path atomically: a temporary file in the same directory (so
 * node_exporter never reads half a file; its name does not end in .prom),
 * mode 0644, then rename.  -1 with the reason in err. */
int metrics_write_file(const char *path, const char *text, size_t len, char *err,
    size_t errlen);

#endif
