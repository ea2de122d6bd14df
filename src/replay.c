/*
 * replay - see replay.h.
 */
#include "replay.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "enforce.h"
#include "follow.h"
#include "log.h"
#include "logfiles.h"
#include "notify.h"
#include "pipeline.h"

static double
mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
print_summary(const struct pipeline *p, struct app *a, double secs)
{
	const struct pipeline_stats *s = &p->st;

	printf("%" PRIu64 " lines in %.2f s (%.0f lines/s): %" PRIu64 " events, "
	    "%" PRIu64 " bans/holds, %" PRIu64 " bad lines, %" PRIu64 " bad fields\n",
	    s->lines, secs, secs > 0 ? (double)s->lines / secs : 0.0, s->events,
	    s->verdicts, s->bad_lines, s->bad_fields);
	if (store_round_trips(a->store) > 0)
		printf("  database round trips: %" PRIu64 " (%.2f per 1,000 lines)\n",
		    store_round_trips(a->store), s->lines ?
		    (double)store_round_trips(a->store) * 1000.0 / (double)s->lines : 0.0);
	for (size_t i = 0; i < s->nrules; i++)
		printf("  rule %-28s %-20s %" PRIu64 "\n", rules_name(a->rules, i),
		    rules_event(a->rules, i), s->rule_hits[i]);
	for (size_t j = 0; j < s->njails; j++)
		printf("  jail %-28s %" PRIu64 " bans/holds\n", jails_name(a->jails, j),
		    s->jail_verdicts[j]);
	if (s->alarms > 0)
		printf("  %" PRIu64 " alarm(s): see the \"alarm\" lines above\n", s->alarms);
}

/* setup_backends - the backends the jails need, handed to the pipeline */
static int
setup_backends(struct pipeline *p, struct backend_set *b, struct app *a, bool dry_run)
{
	unsigned needed = 0;

	b->n = 0;
	if (dry_run)
		return 0;
	for (size_t j = 0; j < jails_count(a->jails); j++)
		needed |= jails_actions(a->jails, j);
	if (enforce_open(b, &a->cfg, needed) != 0)
		return -1;
	for (size_t i = 0; i < b->n; i++)
		(void)pipeline_add_backend(p, b->ops[i], b->state[i]);
	return 0;
}

/* print_order - which files, read in which order, and what they hold */
static void
print_order(char **logs, const struct logfile_info *info, size_t n)
{
	char when[32];

	printf("%zu log%s, oldest first:\n", n, n == 1 ? "" : "s");
	for (size_t i = 0; i < n; i++) {
		time_t t = (time_t)info[i].first_time;
		struct tm tm;

		if (!info[i].has_time || localtime_r(&t, &tm) == NULL)
			snprintf(when, sizeof(when), "empty");
		else
			strftime(when, sizeof(when), "from %Y-%m-%d %H:%M:%S", &tm);
		printf("  %s (%s, %s)\n", logs[i], unpack_format_name(info[i].format), when);
	}
}

/* read_one - one file to its end through the pipeline, committing every
 * batch with the file's position; 0, or -1 after saying why */
static int
read_one(struct app *a, struct pipeline *p, const char *log,
    const struct replay_options *o, double *last_progress)
{
	struct log_position pos;
	struct follow *f = NULL;
	int found, rc = -1;
	long n;

	if ((found = store_get_position(a->store, log, &pos)) < 0)
		return -1;
	if (follow_open(&f, false) != 0) {
		log_warnx("cannot set up reading of logs");
		return -1;
	}
	if (follow_add(f, log, found ? &pos : NULL) < 0)
		goto out;
	do {
		if ((n = follow_read(f, pipeline_follow_cb, p, a->cfg.batch_lines)) < 0)
			goto out;
		if (pipeline_commit(p, f) != 0) {
			log_warnx("database %s: cannot commit: %s", a->db_path,
			    store_errmsg(a->store));
			goto out;
		}
		if (o->progress && mono_now() - *last_progress > 0.5) {
			*last_progress = mono_now();
			fprintf(stderr, "\r%" PRIu64 " lines, %" PRIu64 " events, %"
			    PRIu64 " bans/holds", p->st.lines, p->st.events, p->st.verdicts);
		}
	} while (n > 0);
	rc = 0;
out:
	follow_close(f);
	return rc;
}

int
replay_files(struct app *a, char *const *logs, size_t nlogs,
    const struct replay_options *o)
{
	struct pipeline p;
	struct backend_set b = { .n = 0 };
	struct logfile_info *info = NULL;
	struct logtime lt;
	char **order = NULL, err[600];
	double t0 = mono_now(), last_progress = t0;
	int status = 1;

	/* Every file is looked at before any is read: a wrong one given with
	 * the right ones refuses the whole command, not half of it. */
	order = calloc(nlogs ? nlogs : 1, sizeof(*order));
	info = calloc(nlogs ? nlogs : 1, sizeof(*info));
	if (order == NULL || info == NULL) {
		log_warnx("out of memory");
		goto out_files;
	}
	memcpy(order, logs, nlogs * sizeof(*order));
	logtime_init(&lt, (int64_t)time(NULL));
	switch (logfiles_order(order, nlogs, &lt, info, err, sizeof(err))) {
	case LOGFILES_LOG:
		break;
	case LOGFILES_NOT_LOG:
		log_warnx("%s", err);
		status = 2;
		goto out_files;
	case LOGFILES_UNREADABLE:
		log_warnx("%s", err);
		goto out_files;
	}
	if (pipeline_init(&p, a->rules, a->jails, a->store, true) != 0) {
		log_warnx("out of memory");
		goto out_files;
	}
	/* Queued only; the running daemon (or its next start) sends them. */
	if (o->notify && notify_enabled(&a->cfg.notify))
		(void)pipeline_set_signals(&p, &a->cfg.notify, NULL);
	if (pipeline_restore(&p, (int64_t)time(NULL)) != 0) {
		log_warnx("cannot rebuild state from %s", a->db_path);
		goto out;
	}
	if (setup_backends(&p, &b, a, o->dry_run) != 0)
		goto out;
	/* One file after the other, oldest first: the log clock then only
	 * moves forward, so windows, bans and escalation come out as they
	 * happened. */
	for (size_t i = 0; i < nlogs; i++)
		if (read_one(a, &p, order[i], o, &last_progress) != 0)
			goto out;
	if (o->progress)
		fprintf(stderr, "\r\033[K");
	if (!o->quiet) {
		if (nlogs > 1 || info[0].format != UNPACK_PLAIN)
			print_order(order, info, nlogs);
		print_summary(&p, a, mono_now() - t0);
	}
	if (o->notify && !o->quiet)
		printf("%" PRIu64 " notification%s queued%s\n", p.notes_committed,
		    p.notes_committed == 1 ? "" : "s", notify_enabled(&a->cfg.notify) ?
		    " (the daemon sends them)" : ": none, [notify] has no mailto or command");
	status = 0;
out:
	enforce_close(&b);
	pipeline_fini(&p);
out_files:
	free(order);
	free(info);
	return status;
}
