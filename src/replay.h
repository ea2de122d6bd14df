/*
 * replay - whole log files through the pipeline with the log's own time as
 * the clock, then a summary.  Resumes from the saved positions, so a replay
 * killed half-way and run again counts every line exactly once.
 *
 * The files may be compressed (gzip, xz, bzip2: logrotate's mail.log.2.gz);
 * several are read one after the other, oldest first by the first stamp
 * each holds (logfiles.h), so the log clock only moves forward.  A file
 * that is not a log is refused before anything is read.
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

/* Returns the process exit status: 0; 1 on a runtime failure (a file
 * missing or unreadable, the database); 2 if a file is not a log. */
int replay_files(struct app *a, char *const *logs, size_t nlogs,
    const struct replay_options *o);

#endif
