/*
 * replay - whole log files through the pipeline with the log's own time as
 * the clock, then a summary.  Resumes from the saved positions, so a replay
 * killed half-way and run again counts every line exactly once.
 */
#ifndef MAILJAIL_REPLAY_H
#define MAILJAIL_REPLAY_H

#include <stdbool.h>
#include <stddef.h>

#include "app.h"

struct replay_options {
	bool dry_run;              /* verdicts recorded, no kernel, no map */
	bool progress;             /* progress line on stderr (a terminal) */
	bool quiet;                /* no summary */
	bool notify;               /* queue notifications of the verdicts (history
	                            * is not news: off unless asked) */
};

/* Returns the process exit status: 0, or 1 on a runtime failure. */
int replay_files(struct app *a, char *const *logs, size_t nlogs,
    const struct replay_options *o);

#endif
