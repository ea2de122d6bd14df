/*
 * notify_job - deliveries as child processes.  See notify_job.h.
 */
#include "notify_job.h"

#include <cap-ng.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int
pidfd_of(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* child_setup - in the child: its own process group (killed whole), no
 * capability, stdout and stderr on the pipe, stdin from in (or /dev/null),
 * nothing else open.  execs: it execs next.  Only calls that are fine after
 * fork. */
static int
child_setup(int in, int out, bool execs)
{
	int null = -1;

	(void)setpgid(0, 0);
	/* Default dispositions: the daemon ignores SIGPIPE, a hook should not. */
	signal(SIGPIPE, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGUSR1, SIG_DFL);
	if (in < 0 && (in = null = open("/dev/null", O_RDONLY)) < 0)
		return -1;
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
		return -1;
	(void)close_range(3, ~0U, 0);
	(void)null;
	/* CAP_NET_ADMIN is the daemon's, not the delivery's.  An ambient
	 * capability (the unit gives it so) would survive an exec: cleared.
	 * Then an exec by a non-root user drops the rest by itself; without
	 * an exec (the mail's child, libcurl) or as root they are dropped
	 * here, by capset(2), which the unit's filter allows for this alone
	 * (dist/mailjail.service.in).  (A root run user keeps nothing after
	 * its exec either: the daemon's bounding set is empty.) */
	(void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if (!execs || geteuid() == 0) {
		capng_clear(CAPNG_SELECT_BOTH);
		(void)capng_apply(CAPNG_SELECT_CAPS);
	}
	return 0;
}

/* start - fork with the output pipe; in the parent fills j, returns the pid
 * (0 in the child, -1 on error with err) */
static pid_t
start(struct notify_job *j, int64_t deadline, int *pipe_w, char *err, size_t errlen)
{
	int p[2];
	pid_t pid;

	memset(j, 0, sizeof(*j));
	j->pidfd = j->outfd = -1;
	j->deadline = deadline;
	if (pipe2(p, O_CLOEXEC) != 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	if ((pid = fork()) < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		close(p[0]);
		*pipe_w = p[1];
		return 0;
	}
	close(p[1]);
	j->pid = pid;
	/* Also in the parent: no race with the child's own setpgid. */
	(void)setpgid(pid, pid);
	j->outfd = p[0];
	(void)fcntl(j->outfd, F_SETFL, O_NONBLOCK);
	if ((j->pidfd = pidfd_of(pid)) < 0) {
		/* Old kernel: the 1 s loop still reaps it, only later. */
		j->pidfd = -1;
	}
	return pid;
}

int
notify_job_exec(struct notify_job *j, const char *path, char *const envp[],
    const char *stdin_text, size_t stdin_len, int64_t deadline, char *err, size_t errlen)
{
	int in = memfd_create("mailjail-notification", MFD_CLOEXEC);
	int w = -1;
	size_t off = 0;
	pid_t pid;

	if (in < 0) {
		snprintf(err, errlen, "memfd_create: %s", strerror(errno));
		return -1;
	}
	while (off < stdin_len) {
		ssize_t n = write(in, stdin_text + off, stdin_len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "memfd: %s", strerror(errno));
			close(in);
			return -1;
		}
		off += (size_t)n;
	}
	(void)lseek(in, 0, SEEK_SET);
	if ((pid = start(j, deadline, &w, err, errlen)) < 0) {
		close(in);
		return -1;
	}
	if (pid == 0) {
		char *const argv[] = { (char *)path, NULL };
		if (child_setup(in, w, true) == 0)
			execve(path, argv, envp);
		dprintf(w >= 0 ? 1 : 2, "cannot run %s: %s\n", path, strerror(errno));
		_exit(126);
	}
	close(in);
	return 0;
}

int
notify_job_fork(struct notify_job *j, int (*fn)(void *arg), void *arg, int64_t deadline,
    char *err, size_t errlen)
{
	int w = -1;
	pid_t pid = start(j, deadline, &w, err, errlen);

	if (pid < 0)
		return -1;
	if (pid == 0) {
		int rc = child_setup(-1, w, false) == 0 ? fn(arg) : 125;
		/* _exit: the daemon's atexit handlers and stdio are not ours. */
		_exit(rc);
	}
	return 0;
}

/* drain - read what the child wrote, keeping the first bytes */
static void
drain(struct notify_job *j)
{
	char buf[4096];

	while (j->outfd >= 0) {
		ssize_t n = read(j->outfd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return;   /* EAGAIN: nothing more now */
		if (n == 0) {
			close(j->outfd);
			j->outfd = -1;
			return;
		}
		{
			size_t keep = NOTIFY_JOB_OUTPUT_MAX - j->outlen;
			if (keep > (size_t)n)
				keep = (size_t)n;
			memcpy(j->out + j->outlen, buf, keep);
			j->outlen += keep;
			j->out[j->outlen] = '\0';
			j->dropped += (size_t)n - keep;
		}
	}
}

bool
notify_job_poll(struct notify_job *j, int64_t now)
{
	int st;
	pid_t r;

	if (j->done)
		return true;
	drain(j);
	if (!j->killed && now >= j->deadline) {
		/* The whole group: a shell's curl would hold the pipe. */
		(void)kill(-j->pid, SIGKILL);
		(void)kill(j->pid, SIGKILL);
		j->killed = true;
	}
	r = waitpid(j->pid, &st, WNOHANG);
	if (r == 0)
		return false;
	if (r < 0 && errno == EINTR)
		return false;
	drain(j);
	/* A grandchild still holding the pipe is the group's: gone with it. */
	if (j->outfd >= 0 && !j->killed)
		(void)kill(-j->pid, SIGKILL);
	if (j->outfd >= 0) {
		close(j->outfd);
		j->outfd = -1;
	}
	j->status = r == j->pid ? st : -1;
	j->done = true;
	return true;
}

bool
notify_job_ok(const struct notify_job *j)
{
	return j->done && !j->killed && j->status >= 0 && WIFEXITED(j->status) &&
	    WEXITSTATUS(j->status) == 0;
}

void
notify_job_describe(const struct notify_job *j, char *buf, size_t len)
{
	if (j->killed)
		snprintf(buf, len, "killed after the time limit");
	else if (j->status < 0)
		snprintf(buf, len, "lost (not reaped)");
	else if (WIFEXITED(j->status))
		snprintf(buf, len, "exit %d", WEXITSTATUS(j->status));
	else if (WIFSIGNALED(j->status))
		snprintf(buf, len, "killed by signal %d", WTERMSIG(j->status));
	else
		snprintf(buf, len, "status %#x", (unsigned)j->status);
}

void
notify_job_free(struct notify_job *j)
{
	if (j->pid > 0 && !j->done) {
		(void)kill(-j->pid, SIGKILL);
		(void)kill(j->pid, SIGKILL);
		while (waitpid(j->pid, NULL, 0) < 0 && errno == EINTR)
			;
		j->done = true;
	}
	if (j->outfd >= 0)
		close(j->outfd);
	if (j->pidfd >= 0)
		close(j->pidfd);
	j->outfd = j->pidfd = -1;
}
