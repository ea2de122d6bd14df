/*
 * enforce - the table of enforcement backends, chosen by name (OpenBSD
 * smtpd's queue backends are the model).  A backend acts on the verdicts
 * whose actions include its bit; "dry-run" acts on none and exists so the
 * decision logic runs without privilege.
 *
 * The pipeline calls ban/unban for each verdict of a batch, then sync once
 * per batch, after the store transaction committed (a crash in between is
 * repaired by restore on the next start).
 */
#ifndef MAILJAIL_ENFORCE_H
#define MAILJAIL_ENFORCE_H

#include <stddef.h>
#include <stdint.h>

#include "types.h"

struct config;

struct enforcer_ops {
	const char *name;
	unsigned action;          /* the ACTION_* bits it serves; 0 for dry-run */
	int (*init)(void **state, const struct config *cfg, char *err, size_t errlen);
	/* Queue a ban that lasts until v->expires_at; now is the wall clock. */
	int (*ban)(void *state, const struct verdict *v, int64_t now);
	int (*unban)(void *state, const char *target, enum target_kind kind);
	int (*sync)(void *state);
	/* Is our state in place?  1 yes; 0 it was gone and has been re-created
	 * (the caller re-applies active bans); -1 error.  NULL: nothing to check. */
	int (*check)(void *state);
	/* Drop entries whose time is over (maps that cannot expire by
	 * themselves).  NULL: the kernel or the map expires them. */
	int (*expire)(void *state, int64_t now);
	void (*fini)(void *state);
};

/* By name: "nft", "hold" (serves hold and defer: the same map), "reject",
 * "dry-run"; NULL if unknown. */
const struct enforcer_ops *enforce_backend(const char *name);

#define ENFORCE_BACKENDS_MAX 4

/* The backends a set of actions needs, each initialised. */
struct backend_set {
	const struct enforcer_ops *ops[ENFORCE_BACKENDS_MAX];
	void *state[ENFORCE_BACKENDS_MAX];
	size_t n;
};

/* Open a backend for every ACTION_* bit in actions.  Fails closed: if one is
 * missing or cannot start, the others are closed, the reason logged, -1. */
int enforce_open(struct backend_set *b, const struct config *cfg, unsigned actions);
void enforce_close(struct backend_set *b);

#endif
