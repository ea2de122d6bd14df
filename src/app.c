/*
 * app - the configuration set, loaded and checked as one.  See app.h.
 */
#include "app.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

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
	a->db_path = a->cfg.db;
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
	char err[512];
	const char *path = db_override ? db_override : a->cfg.db;
	char dir[4096];
	const char *slash = strrchr(path, '/');
	struct stat st;

	a->db_path = path;
	/* Name the missing directory rather than let SQLite say "unable to open". */
	if (slash && slash != path) {
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
		if (stat(dir, &st) != 0) {
			log_warnx("database %s: directory %s: %s", path, dir, strerror(errno));
			return -1;
		}
	}
	if (store_open(path, create, &a->store, err, sizeof(err)) != 0) {
		log_warnx("database: %s", err);
		return -1;
	}
	return 0;
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
