/*
 * holdmap_util - the plumbing the holdmap files share: error text, key
 * folding, a growing text buffer, replacing a file atomically, and running
 * a Postfix tool (postmap for hash: maps, postqueue and postsuper for the
 * queue release).  See holdmap_impl.h.
 *
 * SECURITY: Postfix tools are run with fork/execv, never through a shell;
 * their arguments are fixed or checked by the caller (queue ids go on
 * standard input, paths are checked by the front).
 */
#include "holdmap_impl.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* The most arguments a tool gets here, "-c dir" included. */
#define RUN_ARGS_MAX 8

/* holdmap_seterr - printf into the caller's error buffer (which may be NULL) */
void
holdmap_seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* holdmap_asprintf - asprintf that returns NULL on failure */
char *
holdmap_asprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return n < 0 ? NULL : s;
}

/* holdmap_fold_key - lower-case copy; Postfix folds lookup keys (ASCII here) */
char *
holdmap_fold_key(const char *key)
{
	char *k = strdup(key);

	if (k != NULL)
		for (char *p = k; *p; p++)
			*p = (char)tolower((unsigned char)*p);
	return k;
}

/* holdmap_text_add - grow the text; false when out of memory */
bool
holdmap_text_add(struct holdmap_text *t, const char *s, size_t n)
{
	if (t->len + n + 1 > t->cap) {
		size_t nc = t->cap ? t->cap : 4096;
		char *nb;

		while (t->len + n + 1 > nc)
			nc *= 2;
		if ((nb = realloc(t->buf, nc)) == NULL)
			return false;
		t->buf = nb;
		t->cap = nc;
	}
	memcpy(t->buf + t->len, s, n);
	t->len += n;
	t->buf[t->len] = '\0';
	return true;
}

/*
 * holdmap_write_atomic - replace path with data: temp file in the same
 * directory, fsync, rename, fsync the directory, so Postfix and a crash see
 * either the old or the new file, never a half-written one.  Mode is set
 * explicitly because the daemon's umask is not ours to trust.
 */
int
holdmap_write_atomic(const char *path, const char *data, size_t len,
    mode_t mode, char *err, size_t errlen)
{
	char *tmp = NULL, *dir = NULL, *slash;
	int fd = -1, dfd = -1, rc = -1;
	size_t off = 0;

	if ((tmp = holdmap_asprintf("%s.tmpXXXXXX", path)) == NULL
	    || (dir = strdup(path)) == NULL) {
		holdmap_seterr(err, errlen, "%s: out of memory", path);
		goto out;
	}
	if ((fd = mkstemp(tmp)) == -1) {
		holdmap_seterr(err, errlen, "%s: %s", tmp, strerror(errno));
		free(tmp);
		tmp = NULL;
		goto out;
	}
	while (off < len) {
		ssize_t n = write(fd, data + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			holdmap_seterr(err, errlen, "write %s: %s", tmp,
			    strerror(errno));
			goto out;
		}
		off += (size_t)n;
	}
	if (fchmod(fd, mode) == -1 || fsync(fd) == -1) {
		holdmap_seterr(err, errlen, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	if (close(fd) == -1) {
		fd = -1;
		holdmap_seterr(err, errlen, "close %s: %s", tmp,
		    strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) == -1) {
		holdmap_seterr(err, errlen, "rename %s to %s: %s", tmp, path,
		    strerror(errno));
		goto out;
	}
	free(tmp);
	tmp = NULL;
	slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	/* The rename is durable only once the directory is. */
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1
	    || fsync(dfd) == -1) {
		holdmap_seterr(err, errlen, "fsync directory %s: %s", dir,
		    strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (fd != -1)
		(void)close(fd);
	if (dfd != -1)
		(void)close(dfd);
	if (tmp != NULL)
		(void)unlink(tmp);
	free(tmp);
	free(dir);
	return rc;
}

/*
 * run_cmd - fork/execv argv[0] with argv; feed `in` (if not NULL) to its
 * stdin, or collect its stdout into *out (malloc'd, NUL-terminated) if out
 * is not NULL.  Never both: the data here is small and one-way.  Returns
 * the exit status (0..255), or -1 (logged) if it could not run or died.
 */
static int
run_cmd(char *const argv[], const char *in, size_t inlen, char **out)
{
	int pin[2] = { -1, -1 }, pout[2] = { -1, -1 };
	char *buf = NULL;
	size_t len = 0, cap = 0;
	sigset_t pipeset, oldset;
	bool masked = false;
	pid_t pid = -1;
	int status, rc = -1;

	if (out != NULL)
		*out = NULL;
	if ((in != NULL && pipe2(pin, O_CLOEXEC) == -1)
	    || (out != NULL && pipe2(pout, O_CLOEXEC) == -1)) {
		log_warn("%s: pipe", argv[0]);
		goto out;
	}
	if ((pid = fork()) == -1) {
		log_warn("%s: fork", argv[0]);
		goto out;
	}
	if (pid == 0) {
		int nullfd = open("/dev/null", O_RDWR);

		if (nullfd == -1
		    || dup2(in != NULL ? pin[0] : nullfd, 0) == -1
		    || dup2(out != NULL ? pout[1] : nullfd, 1) == -1)
			_exit(127);
		/* stderr stays ours: Postfix's complaints reach our log. */
		closefrom(3);
		execv(argv[0], argv);
		_exit(127);
	}
	if (in != NULL) {
		size_t off = 0;

		(void)close(pin[0]);
		pin[0] = -1;
		/* A child that exits early must not kill us with SIGPIPE. */
		sigemptyset(&pipeset);
		sigaddset(&pipeset, SIGPIPE);
		if (pthread_sigmask(SIG_BLOCK, &pipeset, &oldset) == 0)
			masked = true;
		while (off < inlen) {
			ssize_t n = write(pin[1], in + off, inlen - off);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				log_warn("%s: writing its input", argv[0]);
				break;
			}
			off += (size_t)n;
		}
		(void)close(pin[1]);
		pin[1] = -1;
		if (masked) {
			struct timespec zero = { 0, 0 };

			while (sigtimedwait(&pipeset, NULL, &zero) > 0)
				;
			(void)pthread_sigmask(SIG_SETMASK, &oldset, NULL);
		}
	}
	if (out != NULL) {
		(void)close(pout[1]);
		pout[1] = -1;
		for (;;) {
			ssize_t n;

			if (cap - len < 4096) {
				char *nb = realloc(buf, cap ? cap * 2 : 8192);

				if (nb == NULL) {
					log_warnx("%s: out of memory", argv[0]);
					break;
				}
				buf = nb;
				cap = cap ? cap * 2 : 8192;
			}
			n = read(pout[0], buf + len, cap - len - 1);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				log_warn("%s: reading its output", argv[0]);
				break;
			}
			if (n == 0)
				break;
			len += (size_t)n;
		}
	}
	while (waitpid(pid, &status, 0) == -1) {
		if (errno != EINTR) {
			log_warn("%s: waitpid", argv[0]);
			goto out;
		}
	}
	if (!WIFEXITED(status)) {
		log_warnx("%s: killed by signal %d", argv[0], WTERMSIG(status));
		goto out;
	}
	rc = WEXITSTATUS(status);
	if (rc == 127)
		log_warnx("%s: could not be run (is Postfix installed?)", argv[0]);
	if (out != NULL && buf != NULL) {
		buf[len] = '\0';
		*out = buf;
		buf = NULL;
	}
out:
	for (int i = 0; i < 2; i++) {
		if (pin[i] != -1)
			(void)close(pin[i]);
		if (pout[i] != -1)
			(void)close(pout[i]);
	}
	free(buf);
	return rc;
}

/* holdmap_run_postfix - argv is tool, "-c confdir" if any, then args */
int
holdmap_run_postfix(const char *tool, const char *confdir,
    const char *const *args, const char *in, size_t inlen, char **out)
{
	char *argv[RUN_ARGS_MAX + 1];
	size_t n = 0;

	argv[n++] = (char *)tool;
	if (confdir != NULL) {
		argv[n++] = (char *)"-c";
		argv[n++] = (char *)confdir;
	}
	for (; *args != NULL; args++) {
		if (n == RUN_ARGS_MAX) {
			log_warnx("%s: too many arguments", tool);
			return -1;
		}
		argv[n++] = (char *)*args;
	}
	argv[n] = NULL;
	return run_cmd(argv, in, inlen, out);
}
