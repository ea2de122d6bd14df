/*
 * runuser - the run user and what it must be able to do.  See runuser.h.
 *
 * The check runs in a child that becomes the run user (groups, gid, uid:
 * no capabilities, nothing kept) and asks access(2) for each path; its
 * findings come back over a pipe as "path\0message\0" pairs.  access(2)
 * sees what the kernel would decide for that user: modes, groups, ACLs,
 * read-only mounts.
 */
#include "runuser.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "holdmap.h"
#include "journal.h"
#include "log.h"
#include "safefile.h"
#include "store.h"
#include "types.h"

#define STATE_FILES_MAX 12
#define STATE_DIRS_MAX 4        /* the DB's, two maps', the textfile's */
#define RU_PATH_MAX 4200

struct state_file {
	char path[RU_PATH_MAX];
	char what[RU_PATH_MAX + 32];    /* "the database /x/y.db" */
	bool in_place;          /* written in place (else replaced by a rename) */
	bool handed;            /* root's: handed over (or would be) */
};

struct state_dir {
	char path[RU_PATH_MAX];
	char what[RU_PATH_MAX + 32];
};

/* What the run user must be able to write. */
struct plan {
	struct state_file file[STATE_FILES_MAX];
	size_t nfiles;
	struct state_dir dir[STATE_DIRS_MAX];
	size_t ndirs;
	bool hook_script;       /* [notify] command starts with #!: read too */
};

/* A finding: the path it is about, and what is wrong. */
typedef void (*say_fn)(void *arg, const char *path, const char *msg);

int
runuser_lookup(const struct config *cfg, struct runuser *u, struct diag *d)
{
	struct passwd *pw;

	memset(u, 0, sizeof(*u));
	errno = 0;
	if (geteuid() == 0) {
		if ((pw = getpwnam(cfg->user)) == NULL) {
			diag_add(d, cfg->path, 0, "user \"%s\": %s (create it, or set "
			    "[mailjail] user)", cfg->user, errno ? strerror(errno) :
			    "no such user");
			return -1;
		}
		u->drop = pw->pw_uid != 0;
	} else if ((pw = getpwuid(geteuid())) == NULL) {
		/* A uid without a name (a container's): checked as it is. */
		snprintf(u->name, sizeof(u->name), "%u", (unsigned)geteuid());
		u->uid = geteuid();
		u->gid = getegid();
		return 0;
	}
	snprintf(u->name, sizeof(u->name), "%s", pw->pw_name);
	u->uid = pw->pw_uid;
	u->gid = pw->pw_gid;
	return 0;
}

/* dir_of - the directory part of path ("." if none, "/" for "/x") */
static void
dir_of(const char *path, char *out, size_t len)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		snprintf(out, len, ".");
	else
		snprintf(out, len, "%.*s", slash == path ? 1 : (int)(slash - path), path);
}

static void
add_file(struct plan *p, const char *path, const char *suffix, const char *what,
    bool in_place)
{
	struct state_file *f;

	if (p->nfiles == STATE_FILES_MAX)
		return;
	f = &p->file[p->nfiles++];
	snprintf(f->path, sizeof(f->path), "%s%s", path, suffix);
	snprintf(f->what, sizeof(f->what), "%s", what);
	f->in_place = in_place;
	f->handed = false;
}

static void
add_dir(struct plan *p, const char *file, const char *what)
{
	struct state_dir *sd;
	char dir[RU_PATH_MAX];

	dir_of(file, dir, sizeof(dir));
	for (size_t i = 0; i < p->ndirs; i++)
		if (strcmp(p->dir[i].path, dir) == 0)
			return;
	if (p->ndirs == STATE_DIRS_MAX)
		return;
	sd = &p->dir[p->ndirs++];
	snprintf(sd->path, sizeof(sd->path), "%s", dir);
	snprintf(sd->what, sizeof(sd->what), "%s", what);
}

/* add_map - the files a map spec names (holdmap.h); a bad spec is left to
 * holdmap_open to report */
static void
add_map(struct plan *p, const char *spec, enum holdmap_kind kind, const char *name)
{
	char what[RU_PATH_MAX + 32], cf[RU_PATH_MAX];
	const char *path;

	if (strncmp(spec, "sqlite:", 7) == 0) {
		path = spec + 7;
		snprintf(what, sizeof(what), "the %s map %s", name, path);
		add_dir(p, path, what);
		add_file(p, path, "", what, true);
		add_file(p, path, "-journal", what, true);
		/* The .cf: "sqlite:DIR/postfix-NAME.cf" */
		if (holdmap_postfix_name(spec, kind, cf, sizeof(cf)) != NULL)
			add_file(p, cf + 7, "", what, false);
	} else if (strncmp(spec, "hash:", 5) == 0) {
		path = spec + 5;
		snprintf(what, sizeof(what), "the %s map %s", name, path);
		add_dir(p, path, what);
		add_file(p, path, "", what, false);
		add_file(p, path, ".db", what, true);   /* postmap writes it */
		add_file(p, path, ".expires", what, false);
	}
}

/* is_script - does path start with "#!"?  Then its interpreter opens it:
 * the run user must read it too.  (The admin's file, not in the run
 * user's directories: read by whoever runs the check.) */
static bool
is_script(const char *path)
{
	char head[2];
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	bool script;

	if (fd < 0)
		return false;
	script = read(fd, head, 2) == 2 && head[0] == '#' && head[1] == '!';
	close(fd);
	return script;
}

static void
make_plan(struct plan *p, const struct config *cfg, const char *db, unsigned actions)
{
	char what[RU_PATH_MAX + 32];

	memset(p, 0, sizeof(*p));
	/* A server's URI (a fleet's PostgreSQL) is no file of the user's. */
	if (store_db_is_file(db)) {
		snprintf(what, sizeof(what), "the database %s", db);
		add_dir(p, db, what);
		add_file(p, db, "", what, true);
		add_file(p, db, "-wal", what, true);
		add_file(p, db, "-shm", what, true);
		add_file(p, db, "-journal", what, true);
	}
	/* defer answers from the same account map as hold */
	if ((actions & (ACTION_HOLD | ACTION_DEFER)) && cfg->hold_map)
		add_map(p, cfg->hold_map, HOLDMAP_HOLD, "hold");
	if ((actions & ACTION_REJECT) && cfg->reject_map)
		add_map(p, cfg->reject_map, HOLDMAP_REJECT, "reject");
	/* The textfile is replaced by a rename: its directory is written. */
	if (cfg->metrics.textfile) {
		snprintf(what, sizeof(what), "the [metrics] textfile %s", cfg->metrics.textfile);
		add_dir(p, cfg->metrics.textfile, what);
	}
	p->hook_script = cfg->notify.command && is_script(cfg->notify.command);
}

/* can - access(2) with the effective ids; 0 or an errno */
static int
can(const char *path, int mode)
{
	return faccessat(AT_FDCWD, path, mode, AT_EACCESS) == 0 ? 0 : errno;
}

/* check_all - everything the run user must do, as the current user */
static void
check_all(const struct plan *p, const struct config *cfg, const char *user,
    say_fn say, void *arg)
{
	char msg[RU_PATH_MAX * 2 + 200], dir[RU_PATH_MAX];
	int e;

	for (size_t i = 0; i < p->ndirs; i++) {
		if ((e = can(p->dir[i].path, W_OK | X_OK)) != 0) {
			snprintf(msg, sizeof(msg), "user %s cannot create files in this "
			    "directory, which holds %s: %s", user, p->dir[i].what,
			    strerror(e));
			say(arg, p->dir[i].path, msg);
		}
	}
	for (size_t i = 0; i < p->nfiles; i++) {
		const struct state_file *f = &p->file[i];

		if (!f->in_place || f->handed || can(f->path, F_OK) == ENOENT)
			continue;
		if ((e = can(f->path, R_OK | W_OK)) != 0) {
			snprintf(msg, sizeof(msg), "user %s cannot write it (a file of %s): "
			    "%s; give it to the user (chown %s)", user, f->what,
			    strerror(e), user);
			say(arg, f->path, msg);
		}
	}
	if (cfg->notify.command &&
	    ((e = can(cfg->notify.command, X_OK)) != 0 ||
	    (p->hook_script && (e = can(cfg->notify.command, R_OK)) != 0))) {
		snprintf(msg, sizeof(msg), "user %s cannot run this [notify] command%s: %s",
		    user, p->hook_script ? " (a script: read and execute)" : "", strerror(e));
		say(arg, cfg->notify.command, msg);
	}
	for (size_t i = 0; i < cfg->nlogs; i++) {
		const char *log = cfg->logs[i];

		if (journal_is_source(log))
			continue;
		dir_of(log, dir, sizeof(dir));
		/* Read: the directory is watched for a rotation (inotify).  One
		 * that does not exist yet is waited for (follow.h), as is a
		 * log in it. */
		if ((e = can(dir, R_OK | X_OK)) == ENOENT)
			continue;
		if (e != 0) {
			snprintf(msg, sizeof(msg), "user %s cannot read this directory, so "
			    "the log %s cannot be followed: %s", user, log, strerror(e));
			say(arg, dir, msg);
		} else if ((e = can(log, F_OK)) != ENOENT && (e = can(log, R_OK)) != 0) {
			snprintf(msg, sizeof(msg), "user %s cannot read this log: %s", user,
			    strerror(e));
			say(arg, log, msg);
		}
	}
}

/* say_diag - a finding into the caller's diag (checked in this process) */
static void
say_diag(void *arg, const char *path, const char *msg)
{
	diag_add(arg, path, 0, "%s", msg);
}

/* say_pipe - a finding to the parent, from the child */
static void
say_pipe(void *arg, const char *path, const char *msg)
{
	int fd = *(int *)arg;

	/* A short write loses only this finding; the exit status says so. */
	if (write(fd, path, strlen(path) + 1) < 0 || write(fd, msg, strlen(msg) + 1) < 0)
		_exit(3);
}

/* become - in the child: the user's groups, gid, uid; nothing kept */
static int
become(const struct runuser *u)
{
	if (initgroups(u->name, u->gid) != 0 || setgid(u->gid) != 0 ||
	    setuid(u->uid) != 0)
		return -1;
	if (getuid() != u->uid || geteuid() != u->uid || getegid() != u->gid)
		return -1;
	return 0;
}

/* read_findings - the child's "path\0msg\0" pairs into d; the count */
static size_t
read_findings(int fd, struct diag *d)
{
	char *buf = NULL, *p, *end;
	size_t len = 0, cap = 0, n = 0;
	ssize_t r;

	for (;;) {
		if (cap - len < 4096) {
			char *nb = realloc(buf, cap + 65536);
			if (nb == NULL)
				break;
			buf = nb;
			cap += 65536;
		}
		r = read(fd, buf + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	for (p = buf, end = buf + len; p < end; ) {
		char *path = p, *z = memchr(p, '\0', (size_t)(end - p)), *msg, *z2;

		if (z == NULL || (z2 = memchr(z + 1, '\0', (size_t)(end - z - 1))) == NULL)
			break;
		msg = z + 1;
		diag_add(d, path, 0, "%s", msg);
		n++;
		p = z2 + 1;
	}
	free(buf);
	return n;
}

/* check_as - check_all in a child that became u */
static int
check_as(const struct runuser *u, const struct plan *p, const struct config *cfg,
    struct diag *d)
{
	int fds[2], st;
	pid_t pid;
	size_t n;

	if (pipe2(fds, O_CLOEXEC) != 0) {
		diag_add(d, cfg->path, 0, "checking as user %s: pipe: %s", u->name,
		    strerror(errno));
		return -1;
	}
	if ((pid = fork()) < 0) {
		diag_add(d, cfg->path, 0, "checking as user %s: fork: %s", u->name,
		    strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		close(fds[0]);
		if (become(u) != 0)
			_exit(2);
		check_all(p, cfg, u->name, say_pipe, &fds[1]);
		_exit(0);
	}
	close(fds[1]);
	n = read_findings(fds[0], d);
	close(fds[0]);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			diag_add(d, cfg->path, 0, "checking as user %s: waitpid: %s",
			    u->name, strerror(errno));
			return -1;
		}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		diag_add(d, cfg->path, 0, "checking as user %s: %s", u->name,
		    WIFEXITED(st) && WEXITSTATUS(st) == 2 ? "cannot take its uid, gid "
		    "and groups" : "the check did not finish");
		return -1;
	}
	return n > 0 ? -1 : 0;
}

/* hand_over - root's state files to u (or only mark them: change false) */
static int
hand_over(const struct runuser *u, struct plan *p, bool change, struct diag *d)
{
	char err[RU_PATH_MAX + 300];
	int rc = 0;

	for (size_t i = 0; i < p->nfiles; i++) {
		struct state_file *f = &p->file[i];
		size_t plen = strlen(f->path);

		switch (safefile_give(f->path, u->uid, u->gid, change, err, sizeof(err))) {
		case 1:
			f->handed = true;
			if (change)
				log_info("%s: was root's; given to user %s", f->path, u->name);
			else
				log_info("%s: is root's; run gives it to user %s", f->path,
				    u->name);
			break;
		case 0:
			break;
		default:
			/* err is "PATH: why": keep the path once. */
			if (strncmp(err, f->path, plen) == 0 && strncmp(err + plen, ": ", 2) == 0)
				diag_add(d, f->path, 0, "%s", err + plen + 2);
			else
				diag_add(d, f->path, 0, "%s", err);
			rc = -1;
		}
	}
	return rc;
}

int
runuser_check(const struct runuser *u, const struct config *cfg, const char *db,
    unsigned actions, bool change, struct diag *d)
{
	struct plan *p;
	size_t before = d->n;
	int rc = 0;

	if ((p = malloc(sizeof(*p))) == NULL) {
		diag_add(d, cfg->path, 0, "out of memory");
		return -1;
	}
	make_plan(p, cfg, db, actions);
	if (u->drop) {
		/* A refused name is the one thing to say: what access(2) would
		 * add about it (through a symbolic link) only confuses. */
		if (hand_over(u, p, change, d) != 0 || check_as(u, p, cfg, d) != 0)
			rc = -1;
	} else {
		check_all(p, cfg, u->name, say_diag, d);
	}
	free(p);
	return rc != 0 || d->n > before ? -1 : 0;
}
