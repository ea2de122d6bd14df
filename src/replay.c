/*
 * replay - see replay.h.
 */
#include "replay.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "enforce.h"
#include "follow.h"
#include "log.h"
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
	for (size_t i = 0; i < s->nrules; i++)
		printf("  rule %-28s %-20s %" PRIu64 "\n", rules_name(a->rules, i),
		    rules_event(a->rules, i), s->rule_hits[i]);
	for (size_t j = 0; j < s->njails; j++)
		printf("  jail %-28s %" PRIu64 " bans/holds\n", jails_name(a->jails, j),
		    s->jail_verdicts[j]);
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

int
replay_files(struct app *a, char *const *logs, size_t nlogs,
    const struct replay_options *o)
{
	struct pipeline p;
	struct backend_set b = { .n = 0 };
	struct follow *f = NULL;
	struct log_position pos;
	double t0 = mono_now(), last_progress = t0;
	uint64_t batch = a->cfg.batch_lines;
	int status = 1;
	long n;

	if (pipeline_init(&p, a->rules, a->jails, a->store, true) != 0) {
		log_warnx("out of memory");
		return 1;
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
	if (follow_open(&f, false) != 0) {
		log_warnx("cannot set up reading of logs");
		goto out;
	}
	for (size_t i = 0; i < nlogs; i++) {
		int found = store_get_position(a->store, logs[i], &pos);
		if (found < 0)
			goto out;
		if (follow_add(f, logs[i], found ? &pos : NULL) < 0)
			goto out;
	}
	do {
		if ((n = follow_read(f, pipeline_follow_cb, &p, batch)) < 0)
			goto out;
		if (pipeline_commit(&p, f) != 0) {
			log_warnx("database %s: cannot commit: %s", a->db_path,
			    store_errmsg(a->store));
			goto out;
		}
		if (o->progress && mono_now() - last_progress > 0.5) {
			last_progress = mono_now();
			fprintf(stderr, "\r%" PRIu64 " lines, %" PRIu64 " events, %"
			    PRIu64 " bans/holds", p.st.lines, p.st.events, p.st.verdicts);
		}
	} while (n > 0);
	if (o->progress)
		fprintf(stderr, "\r\033[K");
	if (!o->quiet)
		print_summary(&p, a, mono_now() - t0);
	if (o->notify && !o->quiet)
		printf("%" PRIu64 " notification%s queued%s\n", p.notes_committed,
		    p.notes_committed == 1 ? "" : "s", notify_enabled(&a->cfg.notify) ?
		    " (the daemon sends them)" : ": none, [notify] has no mailto or command");
	status = 0;
out:
	follow_close(f);
	enforce_close(&b);
	pipeline_fini(&p);
	return status;
}
