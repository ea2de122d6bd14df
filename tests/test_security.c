/*
 * test_security - what "mailjail run" does as root at start, against a run
 * user (nobody here) that plants names in its own state directory; what
 * root reads must be root's; start-up refuses what the run user cannot do.
 * Real processes, real files, run as root (as CI runs).
 *
 * Layout of each test's directory (top, 0755 root):
 *   conf/     root 0755: mailjail.conf, the jails
 *   state/    nobody 0755: the DB and the maps (the run user's directory)
 *   logs/     root 0755: mail.log
 *   secret/   root 0700: root's files and a directory, the symlinks' targets
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#define NOBODY 65534

static char top[256], conf[400], state[400], logs[400], secret[400];
static char cfg[600], logf[600], errf[600], bin[512], db[600];

static void
setup(void)
{
	tu_mkdtemp(top, sizeof(top));
	cr_assert_eq(chmod(top, 0755), 0);
	snprintf(conf, sizeof(conf), "%s/conf", top);
	snprintf(state, sizeof(state), "%s/state", top);
	snprintf(logs, sizeof(logs), "%s/logs", top);
	snprintf(secret, sizeof(secret), "%s/secret", top);
	cr_assert_eq(mkdir(conf, 0755), 0);
	cr_assert_eq(mkdir(state, 0755), 0);
	cr_assert_eq(chown(state, NOBODY, NOBODY), 0);
	cr_assert_eq(mkdir(logs, 0755), 0);
	cr_assert_eq(mkdir(secret, 0700), 0);
	snprintf(db, sizeof(db), "%s/mailjail.db", state);
	snprintf(errf, sizeof(errf), "%s/daemon.err", top);
	snprintf(bin, sizeof(bin), "%s/mailjail", tu_builddir());
	tu_write(logs, "mail.log", "", logf, sizeof(logf));
}

static void
teardown(void)
{
	tu_kill_children();
	tu_rmrf(top);
}

TestSuite(symlinks, .init = setup, .fini = teardown, .timeout = 240);
TestSuite(trust, .init = setup, .fini = teardown, .timeout = 120);
TestSuite(runuser, .init = setup, .fini = teardown, .timeout = 120);

/* write_config - the run user, the maps (NULL: in state/), and jails that hold
 * accounts and reject clients (maps only: no kernel needed) */
static void
write_config(const char *user, const char *hold, const char *reject)
{
	char text[4096], jail[700], dh[700], dr[700];

	snprintf(dh, sizeof(dh), "sqlite:%s/hold.db", state);
	snprintf(dr, sizeof(dr), "sqlite:%s/reject.db", state);
	tu_write(conf, "maps.jail", "[quota]\nevents = submission\nkey = account\n"
	    "limits = 3/1h\naction = hold\nbantime = 1h\n\n"
	    "[relay]\nevents = relay_denied\nkey = ip\nfindtime = 10m\nmaxretry = 2\n"
	    "action = reject\nbantime = 1h\n", jail, sizeof(jail));
	snprintf(text, sizeof(text), "[mailjail]\nlog = %s\ndb = %s\nrules = %s/rules\n"
	    "jails = %s\nuser = %s\n[hold]\nmap = %s\n[reject]\nmap = %s\n", logf, db,
	    tu_srcdir(), jail, user, hold ? hold : dh, reject ? reject : dr);
	tu_write(conf, "mailjail.conf", text, cfg, sizeof(cfg));
}

/* start - "mailjail run -c cfg" plus extra arguments (NULL-terminated, at
 * most 4), stderr into errf */
static pid_t
start(const char *a1, const char *a2, const char *a3)
{
	pid_t pid;

	/* Emptied here, not by the child: a wait for "running:" must not see
	 * the last run's words before the new daemon has said any. */
	cr_assert_eq(truncate(errf, 0) == 0 || errno == ENOENT, true);
	pid = tu_fork();

	cr_assert_neq(pid, -1);
	if (pid == 0) {
		const char *argv[10] = { "mailjail", "run", "-c", cfg, a1, a2, a3, NULL };
		FILE *e = freopen(errf, "w", stderr);

		(void)e;
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	return pid;
}

/* wait_exit - the daemon's exit status if it ends within secs, else -1 */
static int
wait_exit(pid_t pid, int secs)
{
	for (int i = 0; i < secs * 20; i++) {
		int st;
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid) {
			tu_reaped(pid);
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		}
		usleep(50000);
	}
	return -1;
}

static int
stop(pid_t pid)
{
	int st;

	kill(pid, SIGTERM);
	cr_assert_eq(tu_waitpid(pid, &st), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static char *
err_text(void)
{
	return tu_sh_output("cat '%s' 2>/dev/null", errf);
}

/* count_lines - lines of errf containing s */
static int
count_lines(const char *s)
{
	char *out = tu_sh_output("grep -c -F -- '%s' '%s' 2>/dev/null", s, errf);
	int n = atoi(out);

	free(out);
	return n;
}

/* ---------------------------------------------------------------- */
/* root's files, the symlinks' targets                               */
/* ---------------------------------------------------------------- */

#define TARGETS 3

struct target {
	char path[600];
	struct stat st;         /* as made */
	bool dir;
};

static struct target targets[TARGETS];

/* make_targets - secret/file (0600, known text), secret/file2 (0640,
 * group adm), secret/dir (0700, empty) */
static void
make_targets(void)
{
	static const char *const names[TARGETS] = { "file", "file2", "dir" };

	for (int i = 0; i < TARGETS; i++) {
		struct target *t = &targets[i];
		char out[700];

		snprintf(t->path, sizeof(t->path), "%s/%s", secret, names[i]);
		t->dir = i == 2;
		if (t->dir) {
			cr_assert_eq(mkdir(t->path, 0700), 0);
		} else {
			tu_write(secret, names[i], i == 0 ? "root's secret\n" :
			    "root's other secret\n", out, sizeof(out));
			cr_assert_eq(chmod(t->path, i == 0 ? 0600 : 0640), 0);
			cr_assert_eq(chown(t->path, 0, i == 0 ? 0 : 4), 0);
		}
		cr_assert_eq(lstat(t->path, &t->st), 0);
	}
}

/* targets_untouched - owner, mode and content (a directory: still empty) */
static void
targets_untouched(const char *what)
{
	for (int i = 0; i < TARGETS; i++) {
		struct target *t = &targets[i];
		struct stat st;
		char *out;

		cr_assert_eq(lstat(t->path, &st), 0, "%s: %s is gone", what, t->path);
		cr_assert(st.st_uid == t->st.st_uid && st.st_gid == t->st.st_gid,
		    "%s: %s changed owner to %u:%u", what, t->path, (unsigned)st.st_uid,
		    (unsigned)st.st_gid);
		cr_assert_eq(st.st_mode, t->st.st_mode, "%s: %s changed mode to %o", what,
		    t->path, (unsigned)st.st_mode);
		if (t->dir) {
			out = tu_sh_output("ls -A '%s'", t->path);
			cr_assert_str_empty(out, "%s: %s got files: %s", what, t->path, out);
		} else {
			out = tu_sh_output("cat '%s'", t->path);
			cr_assert_str_eq(out, i == 0 ? "root's secret\n" : "root's other secret\n",
			    "%s: %s was written", what, t->path);
			cr_assert_eq(st.st_size, t->st.st_size);
		}
		free(out);
	}
}

/* reset_state - an empty state directory of the run user's */
static void
reset_state(void)
{
	cr_assert_eq(tu_sh("rm -rf '%s' && mkdir -m 755 '%s' && chown %d:%d '%s'", state,
	    state, NOBODY, NOBODY, state), 0);
}

/*
 * The names root could be led through: every file of the DB and of both
 * kinds of map, and the names beside them the old start-up chowned (the
 * -wal, -shm and -journal of each).  One at a time, a symbolic link
 * planted there by the run user (to root's files, to root's directory):
 * a name start-up uses is refused by name before anything is opened; one
 * it does not use is left alone while the daemon runs.  No target changes.
 */
Test(symlinks, planted_under_every_state_name_are_refused_or_left_alone)
{
	static const struct {
		const char *name;
		bool hash;          /* with hash: maps (else sqlite:) */
		bool used;          /* start-up refuses it (else: runs beside it) */
	} names[] = {
		{ "mailjail.db", false, true }, { "mailjail.db-wal", false, true },
		{ "mailjail.db-shm", false, true }, { "mailjail.db-journal", false, true },
		{ "hold.db", false, true }, { "hold.db-journal", false, true },
		{ "postfix-hold.cf", false, true }, { "reject.db", false, true },
		{ "reject.db-journal", false, true }, { "postfix-reject.cf", false, true },
		{ "mailjail_hold", true, true }, { "mailjail_hold.db", true, true },
		{ "mailjail_hold.expires", true, true }, { "mailjail_reject.db", true, true },
		{ "postfix-hold.cf-journal", false, false }, { "postfix-hold.cf-wal", false, false },
		{ "hold.db-wal", false, false }, { "hold.db-shm", false, false },
		{ "postfix-reject.cf-shm", false, false }, { "reject.db-wal", false, false },
	};
	char hold[700], reject[700], link[700], want[900];

	cr_assert_eq(geteuid(), 0, "this test needs root (CI runs as root)");
	make_targets();
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		for (int t = 0; t < TARGETS; t++) {
			char *out;
			pid_t pid;
			int rc;

			reset_state();
			if (names[i].hash) {
				snprintf(hold, sizeof(hold), "hash:%s/mailjail_hold", state);
				snprintf(reject, sizeof(reject), "hash:%s/mailjail_reject", state);
			} else {
				snprintf(hold, sizeof(hold), "sqlite:%s/hold.db", state);
				snprintf(reject, sizeof(reject), "sqlite:%s/reject.db", state);
			}
			write_config("nobody", hold, reject);
			snprintf(link, sizeof(link), "%s/%s", state, names[i].name);
			cr_assert_eq(symlink(targets[t].path, link), 0);
			/* (As nobody would: the link is nobody's.) */
			cr_assert_eq(lchown(link, NOBODY, NOBODY), 0);
			pid = start(NULL, NULL, NULL);
			if (names[i].used) {
				if ((rc = wait_exit(pid, 30)) == -1)
					(void)stop(pid);   /* it ran: said below */
			} else {
				(void)tu_wait_file_has(errf, "running:");
				rc = stop(pid);
			}
			/* First what matters: root's files are as they were. */
			targets_untouched(link);
			out = err_text();
			if (!names[i].used) {
				cr_assert_eq(rc, 0, "%s -> %s: runs beside it: %s", link,
				    targets[t].path, out);
				cr_assert(strstr(out, "running:") != NULL, "%s", out);
				free(out);
				cr_assert_eq(tu_sh("test -L '%s'", link), 0, "left alone");
				continue;
			}
			cr_assert_eq(rc, 2, "%s -> %s: refused, exit 2 (got %d): %s", link,
			    targets[t].path, rc, out);
			snprintf(want, sizeof(want), "%s: is a symbolic link, not a regular "
			    "file: refused", link);
			cr_assert(strstr(out, want) != NULL, "named: %s", out);
			cr_assert(strstr(out, "running:") == NULL, "%s", out);
			free(out);
			cr_assert_eq(count_lines("not a regular file"), 1, "one error");
			/* Nothing else was made in the state directory. */
			out = tu_sh_output("ls -A '%s'", state);
			snprintf(want, sizeof(want), "%s\n", names[i].name);
			cr_assert_str_eq(out, want, "%s", out);
			free(out);
		}
	}
}

/* The log file root opens for the daemon: not through a symbolic link. */
Test(symlinks, log_file_through_a_symbolic_link_is_refused)
{
	char link[700], want[900], *out;

	cr_assert_eq(geteuid(), 0, "this test needs root (CI runs as root)");
	make_targets();
	write_config("nobody", NULL, NULL);
	snprintf(link, sizeof(link), "%s/mailjail.log", state);
	for (int t = 0; t < TARGETS; t++) {
		int rc;

		(void)unlink(link);
		cr_assert_eq(symlink(targets[t].path, link), 0);
		cr_assert_eq(lchown(link, NOBODY, NOBODY), 0);
		rc = wait_exit(start("--dry-run", "--log-file", link), 30);
		out = err_text();
		cr_assert_eq(rc, 1, "exit 1 (got %d): %s", rc, out);
		snprintf(want, sizeof(want), "cannot open log file %s: is a symbolic link",
		    link);
		cr_assert(strstr(out, want) != NULL, "named: %s", out);
		free(out);
		targets_untouched(link);
	}
	/* A dangling one: not created through it either. */
	(void)unlink(link);
	snprintf(want, sizeof(want), "%s/made-through-link", secret);
	cr_assert_eq(symlink(want, link), 0);
	cr_assert_eq(wait_exit(start("--dry-run", "--log-file", link), 30), 1);
	cr_assert_neq(access(want, F_OK), 0, "nothing created through the link");
}

/* A FIFO or a directory where a file is expected: refused, named. */
Test(symlinks, non_regular_files_are_refused_by_name)
{
	char hold[700], reject[700], path[700], want[900], *out;
	static const struct { const char *name; const char *is; } cases[] = {
		{ "mailjail.db", "a FIFO" }, { "mailjail.db-wal", "a directory" },
		{ "hold.db", "a directory" }, { "postfix-reject.cf", "a FIFO" },
	};

	cr_assert_eq(geteuid(), 0, "this test needs root (CI runs as root)");
	snprintf(hold, sizeof(hold), "sqlite:%s/hold.db", state);
	snprintf(reject, sizeof(reject), "sqlite:%s/reject.db", state);
	write_config("nobody", hold, reject);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc;

		reset_state();
		snprintf(path, sizeof(path), "%s/%s", state, cases[i].name);
		if (strcmp(cases[i].is, "a FIFO") == 0)
			cr_assert_eq(mkfifo(path, 0600), 0);
		else
			cr_assert_eq(mkdir(path, 0700), 0);
		cr_assert_eq(chown(path, NOBODY, NOBODY), 0);
		rc = wait_exit(start(NULL, NULL, NULL), 30);
		out = err_text();
		cr_assert_eq(rc, 2, "%s: exit 2 (got %d): %s", path, rc, out);
		snprintf(want, sizeof(want), "%s: is %s, not a regular file: refused", path,
		    cases[i].is);
		cr_assert(strstr(out, want) != NULL, "named: %s", out);
		free(out);
	}
	/* The log file too (a FIFO would block an open for writing). */
	snprintf(path, sizeof(path), "%s/mailjail.log", state);
	cr_assert_eq(mkfifo(path, 0600), 0);
	cr_assert_eq(wait_exit(start("--dry-run", "--log-file", path), 30), 1);
	out = err_text();
	snprintf(want, sizeof(want), "cannot open log file %s: is a FIFO", path);
	cr_assert(strstr(out, want) != NULL, "named: %s", out);
	free(out);
}

/*
 * What root made in the run user's directory (an operator command run as
 * root before the first start creates the DB) is handed over through its
 * descriptor, and the daemon works; a hard link to root's file is not.
 */
Test(symlinks, roots_own_files_are_handed_over_but_not_a_hard_link)
{
	char hold[700], reject[700], path[700], want[900], *out;
	pid_t pid;
	struct stat st;

	cr_assert_eq(geteuid(), 0, "this test needs root (CI runs as root)");
	make_targets();
	snprintf(hold, sizeof(hold), "sqlite:%s/hold.db", state);
	snprintf(reject, sizeof(reject), "sqlite:%s/reject.db", state);
	write_config("nobody", hold, reject);
	/* Root's sqlite3 makes the DB and a map, as root's commands would. */
	cr_assert_eq(tu_sh("sqlite3 '%s' 'CREATE TABLE x(y)' && sqlite3 '%s/hold.db' "
	    "'CREATE TABLE z(y)'", db, state), 0);
	pid = start(NULL, NULL, NULL);
	cr_assert(tu_wait_file_has(errf, "running:"), "starts");
	out = err_text();
	snprintf(want, sizeof(want), "%s: was root's; given to user nobody", db);
	cr_assert(strstr(out, want) != NULL, "%s", out);
	free(out);
	cr_assert_eq(stat(db, &st), 0);
	cr_assert_eq(st.st_uid, NOBODY, "the DB is the run user's now");
	snprintf(path, sizeof(path), "%s/hold.db", state);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_uid, NOBODY, "the map is the run user's now");
	cr_assert_eq(stop(pid), 0);

	/* A second name for root's file (root made it: protected_hardlinks
	 * keeps nobody from doing so, but a name is not to be trusted). */
	reset_state();
	snprintf(path, sizeof(path), "%s/hold.db", state);
	cr_assert_eq(link(targets[0].path, path), 0);
	cr_assert_eq(wait_exit(start(NULL, NULL, NULL), 30), 2);
	out = err_text();
	snprintf(want, sizeof(want), "%s: owned by root, with 2 hard links: refused", path);
	cr_assert(strstr(out, want) != NULL, "%s", out);
	free(out);
	targets_untouched("hard link");
}

/* ---------------------------------------------------------------- */
/* what root reads must be root's                                    */
/* ---------------------------------------------------------------- */

/* check_config - exit status of check-config (as user and group, if not
 * NULL), its output in *out */
static int
check_config(const char *user, const char *group, char **out)
{
	char *text;
	int rc;

	if (user)
		text = tu_sh_output("setpriv --reuid=%s --regid=%s --init-groups '%s' "
		    "check-config -c '%s' 2>&1; echo \"exit=$?\"", user, group, bin, cfg);
	else
		text = tu_sh_output("'%s' check-config -c '%s' 2>&1; echo \"exit=$?\"",
		    bin, cfg);
	rc = atoi(strstr(text, "exit=") ? strstr(text, "exit=") + 5 : "-1");
	*out = text;
	return rc;
}

/* refused - check-config and run both exit 2 with one line "path: ..." */
static void
refused(const char *path, const char *why)
{
	char want[900], *out;
	int rc;

	snprintf(want, sizeof(want), "%s: %s", path, why);
	rc = check_config(NULL, NULL, &out);
	cr_assert_eq(rc, 2, "check-config exits 2: %s", out);
	cr_assert(strstr(out, want) != NULL, "check-config says \"%s\": %s", want, out);
	free(out);
	rc = wait_exit(start("--dry-run", NULL, NULL), 30);
	out = err_text();
	cr_assert_eq(rc, 2, "run exits 2: %s", out);
	cr_assert(strstr(out, want) != NULL, "run says \"%s\": %s", want, out);
	cr_assert_eq(count_lines(path), 1, "one line: %s", out);
	free(out);
}

Test(trust, the_shipped_tree_and_a_plain_setup_pass)
{
	char *out;

	write_config("nobody", NULL, NULL);
	cr_assert_eq(check_config(NULL, NULL, &out), 0, "%s", out);
	cr_assert(strstr(out, ": OK") != NULL, "%s", out);
	free(out);
}

Test(trust, a_world_writable_config_is_refused)
{
	write_config("nobody", NULL, NULL);
	cr_assert_eq(chmod(cfg, 0666), 0);
	refused(cfg, "the file is writable by group and others (mode 0666): refused");
	cr_assert_eq(chmod(cfg, 0646), 0);
	refused(cfg, "the file is writable by others (mode 0646): refused");
}

Test(trust, a_group_writable_jails_directory_is_refused)
{
	char jails[600], out[700], text[4096];

	snprintf(jails, sizeof(jails), "%s/jails.d", conf);
	cr_assert_eq(mkdir(jails, 0755), 0);
	tu_write(jails, "ssh.jail", "[sasl]\nevents = auth_failure\nkey = ip\n"
	    "findtime = 10m\nmaxretry = 5\naction = nft\nbantime = 1h\n", out, sizeof(out));
	snprintf(text, sizeof(text), "[mailjail]\nlog = %s\ndb = %s\nrules = %s/rules\n"
	    "jails = %s\nuser = nobody\n", logf, db, tu_srcdir(), jails);
	tu_write(conf, "mailjail.conf", text, cfg, sizeof(cfg));
	cr_assert_eq(chmod(jails, 0775), 0);
	refused(jails, "the directory (no sticky bit) is writable by group (mode 0775)");
	/* Empty, it is refused all the same: anyone in the group could add. */
	cr_assert_eq(unlink(out), 0);
	refused(jails, "the directory (no sticky bit) is writable by group (mode 0775)");
}

Test(trust, a_rules_file_owned_by_another_user_is_refused)
{
	char rules[600], text[4096], *out;

	/* one file holding every shipped rule: the shipped jails count them all */
	cr_assert_eq(tu_sh("cat '%s'/rules/*.rules > '%s/my.rules'", tu_srcdir(), conf), 0);
	snprintf(rules, sizeof(rules), "%s/my.rules", conf);
	snprintf(text, sizeof(text), "[mailjail]\nlog = %s\ndb = %s\nrules = %s\n"
	    "jails = %s/jails\nuser = nobody\n[hold]\nmap = sqlite:%s/hold.db\n", logf, db,
	    rules, tu_srcdir(), state);
	tu_write(conf, "mailjail.conf", text, cfg, sizeof(cfg));
	cr_assert_eq(check_config(NULL, NULL, &out), 0, "root's: fine: %s", out);
	free(out);
	cr_assert_eq(chown(rules, 1, 1), 0);   /* user daemon */
	refused(rules, "the file is owned by daemon, not by root or root (who runs "
	    "this): refused");
	/* The user running the command may own its files; others may not. */
	cr_assert_eq(chown(conf, NOBODY, NOBODY), 0);
	cr_assert_eq(chown(cfg, NOBODY, NOBODY), 0);
	cr_assert_eq(chown(rules, NOBODY, NOBODY), 0);
	cr_assert_eq(check_config("nobody", "nogroup", &out), 0, "nobody's own files: %s", out);
	free(out);
	cr_assert_eq(chown(rules, 1, 1), 0);
	cr_assert_eq(check_config("nobody", "nogroup", &out), 2, "%s", out);
	cr_assert(strstr(out, "the file is owned by daemon, not by root or nobody") != NULL,
	    "%s", out);
	free(out);
}

Test(trust, a_directory_others_can_write_is_refused_unless_sticky)
{
	char text[4096], *out;

	write_config("nobody", NULL, NULL);
	cr_assert_eq(chmod(conf, 0777), 0);
	refused(conf, "the directory (no sticky bit) is writable by group and others "
	    "(mode 0777)");
	/* Sticky, root's (like /tmp): nobody else can replace root's files. */
	cr_assert_eq(chmod(conf, 01777), 0);
	cr_assert_eq(check_config(NULL, NULL, &out), 0, "%s", out);
	free(out);
	/* A symbolic link from a good directory into a bad one: the real
	 * directory counts too. */
	cr_assert_eq(chmod(conf, 0755), 0);
	cr_assert_eq(mkdir(state, 0755) == 0 || errno == EEXIST, 1);
	snprintf(text, sizeof(text), "%s/elsewhere", top);
	cr_assert_eq(mkdir(text, 0777), 0);
	cr_assert_eq(chmod(text, 0777), 0);
	cr_assert_eq(tu_sh("mv '%s' '%s/' && ln -s '%s/mailjail.conf' '%s'", cfg, text,
	    text, cfg), 0);
	refused(text, "the directory (no sticky bit) is writable by group and others "
	    "(mode 0777)");
}

/* ---------------------------------------------------------------- */
/* start-up refuses what the run user cannot do                      */
/* ---------------------------------------------------------------- */

/* notify_socket - systemd's side of sd_notify, where user nobody can
 * reach it; its path goes to the daemons started from now on */
static int
notify_socket(void)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	cr_assert_geq(fd, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	cr_assert_lt(snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/notify", top),
	    (int)sizeof(sa.sun_path));
	(void)unlink(sa.sun_path);   /* the previous call's */
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(chmod(sa.sun_path, 0666), 0);
	cr_assert_eq(setenv("NOTIFY_SOCKET", sa.sun_path, 1), 0);
	return fd;
}

/* got_ready - whether READY=1 came on fd (nothing waited for) */
static bool
got_ready(int fd)
{
	char msg[1024];
	ssize_t n;
	bool ready = false;

	while ((n = recv(fd, msg, sizeof(msg) - 1, 0)) > 0) {
		msg[n] = '\0';
		if (strstr(msg, "READY=1") != NULL)
			ready = true;
	}
	return ready;
}

/* cannot - check-config and run (real maps, no dry run) both refuse,
 * exit 2, with the line "path: user nobody cannot ...", before READY=1 */
static void
cannot(const char *path, const char *what)
{
	char want[1200], *out;
	int fd = notify_socket(), rc;

	snprintf(want, sizeof(want), "%s: user nobody cannot %s", path, what);
	rc = check_config(NULL, NULL, &out);
	cr_assert_eq(rc, 2, "check-config exits 2: %s", out);
	cr_assert(strstr(out, want) != NULL, "check-config says \"%s\": %s", want, out);
	free(out);
	rc = wait_exit(start(NULL, NULL, NULL), 30);
	out = err_text();
	cr_assert_eq(rc, 2, "run exits 2: %s", out);
	cr_assert(strstr(out, want) != NULL, "run says \"%s\": %s", want, out);
	free(out);
	cr_assert_not(got_ready(fd), "refused before READY=1");
	close(fd);
}

/* works - check-config says OK and run gets to READY=1 */
static void
works(void)
{
	char *out;
	int fd = notify_socket();
	pid_t pid;
	bool ready = false;

	cr_assert_eq(check_config(NULL, NULL, &out), 0, "%s", out);
	cr_assert(strstr(out, ": OK") != NULL, "%s", out);
	free(out);
	pid = start(NULL, NULL, NULL);
	for (int i = 0; i < 300 && !(ready = got_ready(fd)); i++)
		usleep(50000);
	out = err_text();
	cr_assert(ready, "READY=1: %s", out);
	free(out);
	cr_assert_eq(stop(pid), 0);
	close(fd);
}

Test(runuser, a_state_directory_the_user_cannot_write)
{
	char want[900];

	cr_assert_eq(geteuid(), 0, "this test needs root (CI runs as root)");
	write_config("nobody", NULL, NULL);
	works();
	reset_state();
	cr_assert_eq(chown(state, 0, 0), 0);
	snprintf(want, sizeof(want), "create files in this directory, which holds the "
	    "database %s: Permission denied", db);
	cannot(state, want);
}

Test(runuser, a_map_directory_the_user_cannot_write)
{
	char maps[600], hold[700], want[900];

	cr_assert_eq(geteuid(), 0, "this test needs root (CI runs as root)");
	snprintf(maps, sizeof(maps), "%s/maps", top);
	cr_assert_eq(mkdir(maps, 0755), 0);
	snprintf(hold, sizeof(hold), "sqlite:%s/hold.db", maps);
	write_config("nobody", hold, NULL);
	snprintf(want, sizeof(want), "create files in this directory, which holds the "
	    "hold map %s/hold.db: Permission denied", maps);
	cannot(maps, want);
	cr_assert_eq(chown(maps, NOBODY, NOBODY), 0);
	works();
}

Test(runuser, a_log_the_user_cannot_read)
{
	char want[900];

	cr_assert_eq(geteuid(), 0, "this test needs root (CI runs as root)");
	write_config("nobody", NULL, NULL);
	cr_assert_eq(chmod(logf, 0600), 0);
	cannot(logf, "read this log: Permission denied");
	cr_assert_eq(chmod(logf, 0644), 0);
	/* Not there yet: fine while the directory can be read (watched). */
	cr_assert_eq(unlink(logf), 0);
	works();
	cr_assert_eq(chmod(logs, 0711), 0);
	snprintf(want, sizeof(want), "read this directory, so the log %s cannot be "
	    "followed: Permission denied", logf);
	cannot(logs, want);
}

/* A followed log whose directory the run user can no longer look into:
 * said once, not at every read; said again only after it cleared. */
Test(runuser, a_log_directory_closed_while_running_is_said_once)
{
	const char *line = "Nov 22 10:00:01 mx postfix/smtpd[1]: connect from "
	    "unknown[192.0.2.1]\n";
	const char *said = "cannot look at the name";
	pid_t pid;
	FILE *fp;

	cr_assert_eq(geteuid(), 0, "this test needs root (CI runs as root)");
	write_config("nobody", NULL, NULL);
	pid = start("--dry-run", NULL, NULL);
	cr_assert(tu_wait_file_has(errf, "running:"));
	for (int round = 1; round <= 2; round++) {
		cr_assert_eq(chmod(logs, 0700), 0);
		/* Three seconds of lines, each read and then looked for at the name. */
		for (int i = 0; i < 15; i++) {
			cr_assert_not_null(fp = fopen(logf, "a"));
			fputs(line, fp);
			fclose(fp);
			usleep(200000);
		}
		cr_assert(tu_wait_file_has(errf, said));
		cr_assert_eq(count_lines(said), round, "said once per closing, round %d",
		    round);
		cr_assert_eq(count_lines("Permission denied"), round);
		cr_assert_eq(chmod(logs, 0755), 0);
		cr_assert_eq(tu_sh("echo '%.*s' >> '%s'", (int)strlen(line) - 1, line, logf), 0);
		cr_assert(tu_wait_file_has(errf, "can look at the name again"));
	}
	cr_assert_eq(stop(pid), 0);
}

/*
 * The operator commands, run as root, work on the DB and the maps as the
 * run user: what they create there is the user's, and a name the user
 * planted leads root nowhere.
 */
Test(symlinks, operator_commands_as_root_work_as_the_run_user)
{
	char hold[700], reject[700], link[700], *out;

	cr_assert_eq(geteuid(), 0, "this test needs root (CI runs as root)");
	make_targets();
	snprintf(hold, sizeof(hold), "sqlite:%s/hold.db", state);
	snprintf(reject, sizeof(reject), "sqlite:%s/reject.db", state);
	write_config("nobody", hold, reject);
	out = tu_sh_output("'%s' hold alice -c '%s' 2>&1; echo \"exit=$?\"", bin, cfg);
	cr_assert(strstr(out, "held alice") != NULL && strstr(out, "exit=0") != NULL, "%s", out);
	free(out);
	out = tu_sh_output("cd '%s' && stat -c '%%U %%n' mailjail.db hold.db postfix-hold.cf",
	    state);
	cr_assert_str_eq(out, "nobody mailjail.db\nnobody hold.db\nnobody postfix-hold.cf\n",
	    "made by the run user, not root: %s", out);
	free(out);
	/* The map's rollback journal, planted: root's file stays as it was,
	 * whatever becomes of the command. */
	snprintf(link, sizeof(link), "%s/hold.db-journal", state);
	cr_assert_eq(symlink(targets[0].path, link), 0);
	cr_assert_eq(lchown(link, NOBODY, NOBODY), 0);
	(void)tu_sh("'%s' hold bob -c '%s' >/dev/null 2>&1", bin, cfg);
	(void)tu_sh("'%s' release alice -c '%s' >/dev/null 2>&1", bin, cfg);
	targets_untouched(link);
	cr_assert_eq(unlink(link), 0);
	out = tu_sh_output("'%s' release alice -c '%s' 2>&1; '%s' status -c '%s' >/dev/null "
	    "2>&1; echo \"exit=$?\"", bin, cfg, bin, cfg);
	cr_assert(strstr(out, "exit=0") != NULL, "%s", out);
	free(out);
}
