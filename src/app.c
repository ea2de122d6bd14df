/*
 * app - the configuration set, loaded and checked as one.  See app.h.
 */
#include "app.h"

#include <stdio.h>
#include <string.h>

#include "log.h"

static bool
rule_event_known(void *arg, const char *event)
{
	return rules_has_event(arg, event);
}

static bool
rule_event_carries(void *arg, const char *event, const char *field)
{
	return rules_event_captures(arg, event, field);
}

int
app_load(struct app *a, const char *cfgpath, const char *rules_override,
    bool want_jails, struct diag *d)
{
	size_t before = d->n;

	memset(a, 0, sizeof(*a));
	if (config_load(cfgpath ? cfgpath : CONFIG_DEFAULT_PATH, &a->cfg, d) != 0) {
		/* What was set before the bad key (app_free skips a failed cfg). */
		config_free(&a->cfg);
		if (cfgpath == NULL && d->n > before)
			diag_add(d, CONFIG_DEFAULT_PATH, 0, "(give another with -c FILE)");
		return -1;
	}
	a->have_cfg = true;
	if (rules_load(rules_override ? rules_override : a->cfg.rules, &a->rules, d) != 0)
		return -1;
	if (!want_jails)
		return 0;
	if (jails_load(a->cfg.jails, &a->jails, d) != 0)
		return -1;
	if (jails_check_events(a->jails, rule_event_known, a->rules, d) != 0)
		return -1;
	if (jails_check_keys(a->jails, rule_event_carries, a->rules, d) != 0)
		return -1;
	return d->n > before ? -1 : 0;
}

int
app_open_store(struct app *a, const char *db_override, bool create)
{
	char err[768];
	const char *db = db_override ? db_override : a->cfg.db;

	/* Until it is open, say nothing of db here: a URI may hold a
	 * password, and the store's own words hide it. */
	a->db_path = NULL;
	if (store_open(db, create, &a->store, err, sizeof(err)) != 0) {
		log_warnx("database: %s", err);
		return -1;
	}
	a->db_path = store_path(a->store);
	if (store_set_node(a->store, a->cfg.node) != 0) {
		log_warnx("database %s: %s", a->db_path, store_errmsg(a->store));
		return -1;
	}
	return 0;
}

unsigned
app_actions(const struct app *a)
{
	unsigned actions = 0;

	for (size_t j = 0; a->jails != NULL && j < jails_count(a->jails); j++)
		actions |= jails_actions(a->jails, j);
	return actions;
}

void
app_free(struct app *a)
{
	store_close(a->store);
	jails_free(a->jails);
	rules_free(a->rules);
	if (a->have_cfg)
		config_free(&a->cfg);
	memset(a, 0, sizeof(*a));
}
