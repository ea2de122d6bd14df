/*
 * notify_job - one delivery as a child process with a time limit: the
 * admin's command (fork + exec, the JSON on its standard input), or the
 * mail (fork; the child speaks SMTP through libcurl and exits).  A child
 * never blocks the daemon: its exit is seen through a pidfd and its output
 * through a non-blocking pipe, both waited on with the logs (the caller
 * puts them in its epoll set), and a child past its deadline is killed with
 * its whole process group (a hook's curl too).
 *
 * The child runs as the daemon's user, with no capability (CAP_NET_ADMIN:
 * the ambient set cleared before an exec, which drops the rest; dropped
 * with capset(2) in a child that does not exec) and no descriptor but 0, 1
 * and 2.  Its output
 * (standard output and error together) is kept up to NOTIFY_JOB_OUTPUT_MAX
 * bytes; the rest is read and counted, not kept.
 *
 * Memory: a job owns its descriptors and output; notify_job_free closes
 * them (and kills and reaps a child still running).
 */
#ifndef MAILJAIL_NOTIFY_JOB_H
#define MAILJAIL_NOTIFY_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define NOTIFY_JOB_OUTPUT_MAX 2048

struct notify_job {
	pid_t pid;
	int pidfd;                 /* readable once the child exited */
	int outfd;                 /* its stdout+stderr, non-blocking; -1 at EOF */
	int64_t deadline;          /* killed then (wall clock seconds) */
	bool killed;               /* ... and it was */
	bool done;
	int status;                /* waitpid's, once done */
	char out[NOTIFY_JOB_OUTPUT_MAX + 1];
	size_t outlen;             /* kept (NUL-terminated) */
	size_t dropped;            /* read beyond what is kept */
};

/* Run path with argv { path, NULL } and envp, stdin_text on its standard
 * input (a memfd: never a blocked write).  Returns 0 or -1 (err says why). */
int notify_job_exec(struct notify_job *j, const char *path, char *const envp[],
    const char *stdin_text, size_t stdin_len, int64_t deadline, char *err, size_t errlen);
/* Run fn(arg) in a child (stdout is the captured pipe); its return value is
 * the exit status.  The child must not touch the daemon's state (the
 * store, the logs): it only does fn and exits. */
int notify_job_fork(struct notify_job *j, int (*fn)(void *arg), void *arg, int64_t deadline,
    char *err, size_t errlen);
/* Read its output, kill it if past the deadline, reap it once exited.
 * Returns true once done (status, killed, out are final). */
bool notify_job_poll(struct notify_job *j, int64_t now);
/* Exited 0, not killed. */
bool notify_job_ok(const struct notify_job *j);
/* "exit 3", "killed by signal 9", "killed after the time limit". */
void notify_job_describe(const struct notify_job *j, char *buf, size_t len);
void notify_job_free(struct notify_job *j);

#endif
