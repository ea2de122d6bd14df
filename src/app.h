/*
 * app - loads the whole configuration set (mailjail.conf, rules, jails),
 * checks it as one (every jail's events exist in some rule), and opens the
 * store.  Used by every subcommand and by the daemon's reload, so they all
 * accept and refuse exactly the same configurations.
 *
 * Memory: struct app owns everything in it; app_free() releases it.
 */
#ifndef MAILJAIL_APP_H
#define MAILJAIL_APP_H

#include <stdbool.h>

#include "cfgfile.h"
#include "config.h"
#include "jail.h"
#include "rules.h"
#include "store.h"

struct app {
	struct config cfg;
	bool have_cfg;
	struct ruleset *rules;
	struct jailset *jails;
	struct store *store;
	const char *db_path;       /* once the store is open: what it opened, fit
	                            * to print (a URI's password hidden) */
};

/*
 * Load config (cfgpath NULL: CONFIG_DEFAULT_PATH), then rules (rules_override
 * instead of the config's, if not NULL) and, if want_jails, the jails.
 * Returns 0, or -1 with every problem in d.
 */
int app_load(struct app *a, const char *cfgpath, const char *rules_override,
    bool want_jails, struct diag *d);
/* Open the DB (db_override instead of the config's, if not NULL) as the
 * configured node.  Returns 0, or -1 after logging why. */
int app_open_store(struct app *a, const char *db_override, bool create);
/* The ACTION_* bits of every jail loaded (0 if none): what enforcement the
 * run needs, what the run user must be able to do. */
unsigned app_actions(const struct app *a);
void app_free(struct app *a);

#endif
