/*
 * ops - the operator commands: ban, unban, status, bans, history (and
 * metrics, at the end).  They work whether or not the daemon runs: the DB
 * is the record (WAL lets both write in turn), and the kernel is reached
 * through the same nft backend the daemon uses.  A running daemon on a
 * SQLite file learns of a manual unban on its next reload (SIGHUP); until
 * then it may treat the target as still banned, which errs on the side of
 * not re-banning early.  A fleet's
 * (PostgreSQL) commands act on the whole fleet: every running node applies
 * the ban or the lift within a second (pipeline_fleet_sync), this host's
 * daemon too.
 *
 * SECURITY: run as root, they open the DB and the maps as [mailjail] user
 * (as_run_user): those live in that user's directory, where a name may be a
 * symbolic link the user planted.  Only what needs root stays root: the
 * look for a running daemon in /proc (status), and postsuper (release
 * --requeue, whose DB and map part runs in a child that drops).
 */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "addr.h"
#include "app.h"
#include "cmdhelp.h"
#include "enforce.h"
#include "holdmap.h"
#include "journal.h"
#include "log.h"
#include "logtime.h"
#include "metrics.h"
#include "notify.h"
#include "pipeline.h"
#include "privdrop.h"
#include "runuser.h"
#include "table.h"

struct common_opts {
	const char *cfgpath;
	const char *db;
	bool dry_run;
	bool json;
	bool all;
	const char *jail;
	int64_t duration;
};

/* parse_common - the options shared by the operator commands */
static int
parse_common(int argc, char **argv, const char *allowed, struct common_opts *o)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "db", required_argument, NULL, 'd' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "all", no_argument, NULL, 'a' },
		{ "jail", required_argument, NULL, 'J' },
		{ "for", required_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	memset(o, 0, sizeof(*o));
	while ((ch = getopt_long(argc, argv, "c:d:", opts, NULL)) != -1) {
		if (ch != 'c' && ch != 'd' && (ch == '?' || strchr(allowed, ch) == NULL)) {
			if (ch != '?')
				fprintf(stderr, "mailjail %s: option not valid here\n", argv[0]);
			return -1;
		}
		switch (ch) {
		case 'c': o->cfgpath = optarg; break;
		case 'd': o->db = optarg; break;
		case 'n': o->dry_run = true; break;
		case 'j': o->json = true; break;
		case 'a': o->all = true; break;
		case 'J': o->jail = optarg; break;
		case 'f':
			if (cfg_parse_duration(optarg, &o->duration) != 0 || o->duration == 0) {
				fprintf(stderr, "mailjail %s: bad duration \"%s\" (e.g. 30m, 2h, 1d)\n",
				    argv[0], optarg);
				return -1;
			}
			break;
		}
	}
	return 0;
}

/* load_app - config, rules and jails */
static int
load_app(struct app *a, const struct common_opts *o)
{
	struct diag d;
	int rc;

	diag_init(&d);
	rc = app_load(a, o->cfgpath, NULL, true, &d);
	diag_print(&d);
	diag_free(&d);
	return rc == 0 ? 0 : EXIT_USAGE;
}

/*
 * as_run_user - run as root, go on as [mailjail] user, as the daemon does
 * (privdrop.h: CAP_NET_ADMIN kept for nftables): the DB and the maps live
 * in that user's directory, where root must not open a name (the user may
 * have planted a symbolic link there, runuser.h), and what the command
 * creates there is the user's.  Not root, or user root: nothing changes.
 */
static int
as_run_user(struct app *a)
{
	struct runuser u;
	struct diag d;
	char err[512];
	int rc = 0;

	diag_init(&d);
	if (runuser_lookup(&a->cfg, &u, &d) != 0) {
		diag_print(&d);
		rc = EXIT_RUNTIME;
	} else if (u.drop && privdrop(a->cfg.user, err, sizeof(err)) != 0) {
		log_warnx("working as user %s: %s", u.name, err);
		rc = EXIT_RUNTIME;
	}
	diag_free(&d);
	return rc;
}

/* open_store - an existing or new DB */
static int
open_store(struct app *a, const struct common_opts *o)
{
	return app_open_store(a, o->db, true) != 0 ? EXIT_RUNTIME : 0;
}

/* open_app - config, rules, jails, then as the run user an existing or new DB */
static int
open_app(struct app *a, const struct common_opts *o)
{
	int rc;

	if ((rc = load_app(a, o)) != 0 || (rc = as_run_user(a)) != 0)
		return rc;
	return open_store(a, o);
}

/* iso_time - t as ISO 8601 UTC, "-" for 0 (never) */
static void
iso_time(int64_t t, char *buf, size_t len)
{
	if (t == 0 || logtime_iso(t, buf, len) == NULL)
		snprintf(buf, len, "-");
}

/* enforce_now - one verdict (or unban) through the backends its actions need */
static int
enforce_now(struct app *a, const struct verdict *v, const char *unban_target,
    enum target_kind kind, unsigned actions)
{
	struct backend_set b;
	int rc = 0;

	if (enforce_open(&b, &a->cfg, actions) != 0)
		return -1;
	for (size_t i = 0; i < b.n; i++)
		if ((v ? b.ops[i]->ban(b.state[i], v, (int64_t)time(NULL))
		       : b.ops[i]->unban(b.state[i], unban_target, kind)) != 0 ||
		    b.ops[i]->sync(b.state[i]) != 0)
			rc = -1;
	enforce_close(&b);
	return rc;
}

/* Without --jail, a hand-made ban goes to the built-in jail "manual":
 * it escalates like any jail (level = earlier manual bans of the target
 * + 1) but does not take part in any configured jail's counting. */
#define MANUAL_JAIL "manual"
#define MANUAL_IP_BANTIME 3600
#define MANUAL_HOLD_TIME 86400

static int
count_ban(void *arg, const struct stored_ban *b)
{
	(void)b;
	(*(int *)arg)++;
	return 0;
}

static int
manual_verdict(struct app *a, const char *target, enum target_kind kind,
    int64_t duration, int64_t now, struct verdict *v)
{
	struct ban_filter f = { MANUAL_JAIL, target, false, now };
	int earlier = 0;

	if (store_each_ban(a->store, &f, count_ban, &earlier) != 0)
		return -1;
	memset(v, 0, sizeof(*v));
	v->jail = MANUAL_JAIL;
	v->kind = kind;
	snprintf(v->target, sizeof(v->target), "%s", target);
	v->level = earlier + 1;
	v->actions = kind == TARGET_IP ? ACTION_NFT : ACTION_HOLD;
	v->started_at = now;
	v->expires_at = now + (duration ? duration :
	    kind == TARGET_IP ? MANUAL_IP_BANTIME : MANUAL_HOLD_TIME);
	snprintf(v->reason, sizeof(v->reason), "by hand");
	return 0;
}

/* record_manual - the operator's verdict as a row.  A fleet's store writes
 * no second ban of a jail and target in force (one offence, one row, when
 * two nodes decide it at once); an operator who bans again means the new
 * one: the ban in force is lifted in the same transaction (the nodes see
 * the lift, then the new ban). */
static int
record_manual(struct app *a, const struct verdict *v)
{
	int rc = store_add_ban(a->store, v, NULL);

	if (rc != 1)
		return rc;
	if (store_lift_bans(a->store, v->jail, v->target, v->started_at) < 0)
		return -1;
	return store_add_ban(a->store, v, NULL) == 0 ? 0 : -1;
}

/* manual_ban - shared by ban and hold */
static int
manual_ban(int argc, char **argv, enum target_kind kind)
{
	struct common_opts o;
	struct app a;
	struct pipeline p;
	struct verdict v;
	char target[MJ_TARGET_MAX], until[32];
	int64_t now = (int64_t)time(NULL);
	int rc;
	bool p_up = false;

	if (parse_common(argc, argv, "nJf", &o) != 0)
		return cmdhelp_usage_error(argv[0]);
	if (optind + 1 != argc) {
		return cmdhelp_usage_error(argv[0]);
	}
	if (kind == TARGET_IP) {
		if (addr_canonical(argv[optind], target, sizeof(target)) != 0) {
			fprintf(stderr, "mailjail ban: \"%s\" is not an IP address or prefix\n",
			    argv[optind]);
			return EXIT_USAGE;
		}
	} else {
		if (argv[optind][0] == '\0' || strlen(argv[optind]) >= MJ_FIELD_MAX) {
			fprintf(stderr, "mailjail hold: bad account name\n");
			return EXIT_USAGE;
		}
		snprintf(target, sizeof(target), "%s", argv[optind]);
	}
	if ((rc = open_app(&a, &o)) != 0)
		goto out;
	rc = EXIT_RUNTIME;
	/* Levels come from the history, as for a ban the log caused. */
	if (pipeline_init(&p, a.rules, a.jails, a.store, false) != 0)
		goto out;
	p_up = true;
	if (pipeline_restore(&p, now) != 0)
		goto out;
	if (o.jail == NULL) {
		if (manual_verdict(&a, target, kind, o.duration, now, &v) != 0)
			goto out;
	} else if (jail_manual_verdict(a.jails, o.jail, target, kind, o.duration, now,
	    &v) != 0) {
		fprintf(stderr, "mailjail %s: no jail \"%s\" that handles this kind of target\n",
		    argv[0], o.jail);
		rc = EXIT_USAGE;
		goto out;
	}
	if (store_begin(a.store) != 0 || record_manual(&a, &v) != 0 ||
	    store_commit(a.store) != 0) {
		log_warnx("database %s: %s", a.db_path, store_errmsg(a.store));
		(void)store_rollback(a.store);
		goto out;
	}
	if (!o.dry_run && enforce_now(&a, &v, NULL, kind, v.actions) != 0) {
		log_warnx("recorded, but enforcing failed (the daemon retries on its next start)");
		goto out;
	}
	iso_time(v.expires_at, until, sizeof(until));
	printf("%s %s in jail %s, level %d, until %s\n",
	    kind == TARGET_IP ? "banned" : "held", v.target, v.jail, v.level, until);
	rc = 0;
out:
	if (p_up)
		pipeline_fini(&p);
	app_free(&a);
	return rc;
}

int
cli_ban(int argc, char **argv)
{
	return manual_ban(argc, argv, TARGET_IP);
}

int
cli_hold(int argc, char **argv)
{
	return manual_ban(argc, argv, TARGET_ACCOUNT);
}

/* The active bans of a target, kept to tell of their lift (notify.h). */
#define LIFT_TOLD_MAX 32

struct lift_ctx {
	unsigned actions;
	int n;
	struct stored_ban told[LIFT_TOLD_MAX];   /* strings strdup'd */
	size_t ntold;
};

static int
collect_actions(void *arg, const struct stored_ban *b)
{
	struct lift_ctx *c = arg;
	struct stored_ban *t = &c->told[c->ntold];

	c->actions |= b->actions;
	c->n++;
	if (c->ntold == LIFT_TOLD_MAX)
		return 0;
	*t = *b;
	t->target = NULL;   /* the target is the caller's */
	t->reply = NULL;
	t->jail = strdup(b->jail);
	t->target_kind = strdup(b->target_kind);
	t->reason = strdup(b->reason ? b->reason : "");
	if (t->jail == NULL || t->target_kind == NULL || t->reason == NULL) {
		free((char *)t->jail);
		free((char *)t->target_kind);
		free((char *)t->reason);
		return -1;
	}
	c->ntold++;
	return 0;
}

static void
lift_ctx_free(struct lift_ctx *c)
{
	for (size_t i = 0; i < c->ntold; i++) {
		free((char *)c->told[i].jail);
		free((char *)c->told[i].target_kind);
		free((char *)c->told[i].reason);
	}
	c->ntold = 0;
}

/* tell_lifts - queue the notification of each lift, in the lift's
 * transaction (the daemon delivers it) */
static int
tell_lifts(struct app *a, struct lift_ctx *c, const char *target, int64_t now)
{
	for (size_t i = 0; i < c->ntold; i++) {
		c->told[i].target = target;
		if (notify_queue_lift(&a->cfg.notify, a->jails, a->store, &c->told[i], now) < 0)
			return -1;
	}
	return 0;
}

/* manual_lift - lift the active bans of target in the DB, then enforce;
 * *lifted gets how many (0: it was not banned) */
static int
manual_lift(struct app *a, const char *target, enum target_kind kind, bool dry_run,
    int *lifted)
{
	struct lift_ctx c;
	struct ban_filter f = { NULL, target, true, (int64_t)time(NULL) };
	int n, rc = EXIT_RUNTIME;

	memset(&c, 0, sizeof(c));
	if (store_each_ban(a->store, &f, collect_actions, &c) != 0)
		goto out;
	if (c.n == 0) {
		*lifted = 0;
		rc = 0;
		goto out;
	}
	if (store_begin(a->store) != 0 ||
	    (n = store_lift_bans(a->store, NULL, target, f.now)) < 0 ||
	    tell_lifts(a, &c, target, f.now) != 0 ||
	    store_commit(a->store) != 0) {
		log_warnx("database %s: %s", a->db_path, store_errmsg(a->store));
		(void)store_rollback(a->store);
		goto out;
	}
	*lifted = n;
	if (!dry_run && enforce_now(a, NULL, target, kind, c.actions) != 0)
		goto out;
	rc = 0;
out:
	lift_ctx_free(&c);
	return rc;
}

int
cli_unban(int argc, char **argv)
{
	struct common_opts o;
	struct app a;
	char target[MJ_TARGET_MAX];
	int rc, lifted = 0;

	if (parse_common(argc, argv, "n", &o) != 0)
		return cmdhelp_usage_error(argv[0]);
	if (optind + 1 != argc) {
		return cmdhelp_usage_error(argv[0]);
	}
	if (addr_canonical(argv[optind], target, sizeof(target)) != 0) {
		fprintf(stderr, "mailjail unban: \"%s\" is not an IP address or prefix\n",
		    argv[optind]);
		return EXIT_USAGE;
	}
	if ((rc = open_app(&a, &o)) != 0)
		goto out;
	if ((rc = manual_lift(&a, target, TARGET_IP, o.dry_run, &lifted)) != 0)
		goto out;
	if (lifted == 0) {
		fprintf(stderr, "mailjail unban: %s is not banned\n", target);
		rc = EXIT_RUNTIME;
		goto out;
	}
	printf("unbanned %s (%d active ban%s lifted)\n", target, lifted, lifted == 1 ? "" : "s");
out:
	app_free(&a);
	return rc;
}

/* How many of an account's recent messages release --requeue looks for. */
#define RELEASE_QIDS_MAX 10000

/*
 * release_lift - release's part in the DB and the map, as the run user:
 * lift the hold, and with requeue (and no dry run) find the account's
 * queue ids into qids (*nq of them).
 */
static int
release_lift(struct app *a, const struct common_opts *o, const char *account,
    bool requeue, char (*qids)[MJ_QID_MAX], int *nq)
{
	int rc, lifted = 0;

	*nq = 0;
	if ((rc = as_run_user(a)) != 0 || (rc = open_store(a, o)) != 0)
		return rc;
	if ((rc = manual_lift(a, account, TARGET_ACCOUNT, o->dry_run, &lifted)) != 0)
		return rc;
	if (lifted == 0 && !requeue) {
		fprintf(stderr, "mailjail release: %s is not on hold\n", account);
		return EXIT_RUNTIME;
	}
	if (lifted)
		printf("released %s from the hold map\n", account);
	/* The queue ids the log showed for this account; plus, for a login
	 * that is an address, mail it sent under that envelope sender. */
	if (requeue && !o->dry_run &&
	    (*nq = store_account_qids(a->store, account, qids, RELEASE_QIDS_MAX)) < 0)
		return EXIT_RUNTIME;
	return 0;
}

/* read_full - want bytes from fd into buf, through EINTR; how many came
 * (fewer: the end of the pipe or an error) */
static size_t
read_full(int fd, void *buf, size_t want)
{
	size_t got = 0;

	while (got < want) {
		ssize_t n = read(fd, (char *)buf + got, want - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	return got;
}

/*
 * release_lift_apart - release_lift in a child process, which becomes the
 * run user, while this one stays root for postsuper (only the superuser
 * may requeue held mail): the queue ids come back over a pipe.
 */
static int
release_lift_apart(struct app *a, const struct common_opts *o, const char *account,
    char (*qids)[MJ_QID_MAX], int *nq)
{
	int fds[2], st, rc;
	size_t got, want;
	pid_t pid;

	*nq = 0;
	if (pipe2(fds, O_CLOEXEC) != 0) {
		log_warn("pipe");
		return EXIT_RUNTIME;
	}
	fflush(stdout);
	if ((pid = fork()) < 0) {
		log_warn("fork");
		close(fds[0]);
		close(fds[1]);
		return EXIT_RUNTIME;
	}
	if (pid == 0) {
		close(fds[0]);
		rc = release_lift(a, o, account, true, qids, nq);
		fflush(stdout);
		if (rc == 0 && (write(fds[1], nq, sizeof(*nq)) != (ssize_t)sizeof(*nq) ||
		    (*nq > 0 && write(fds[1], qids, (size_t)*nq * sizeof(*qids)) !=
		    (ssize_t)((size_t)*nq * sizeof(*qids)))))
			rc = EXIT_RUNTIME;
		_exit(rc);
	}
	close(fds[1]);
	want = sizeof(*nq);
	got = read_full(fds[0], nq, want);
	if (got == want && *nq > 0 && *nq <= RELEASE_QIDS_MAX) {
		want = (size_t)*nq * sizeof(*qids);
		got = read_full(fds[0], qids, want);
	}
	close(fds[0]);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			log_warn("waitpid");
			return EXIT_RUNTIME;
		}
	if (!WIFEXITED(st))
		return EXIT_RUNTIME;
	if ((rc = WEXITSTATUS(st)) != 0)
		return rc;
	if (got != want || *nq < 0 || *nq > RELEASE_QIDS_MAX) {
		log_warnx("release: the queue ids did not come back whole");
		return EXIT_RUNTIME;
	}
	for (int i = 0; i < *nq; i++)
		qids[i][MJ_QID_MAX - 1] = '\0';
	return 0;
}

int
cli_release(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "db", required_argument, NULL, 'd' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "requeue", no_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	struct common_opts o;
	struct app a;
	char (*qids)[MJ_QID_MAX] = NULL;
	const char **qp = NULL;
	const char *account;
	bool requeue = false;
	int ch, rc, nq = 0, released = 0;

	memset(&o, 0, sizeof(o));
	while ((ch = getopt_long(argc, argv, "c:d:", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': o.cfgpath = optarg; break;
		case 'd': o.db = optarg; break;
		case 'n': o.dry_run = true; break;
		case 'r': requeue = true; break;
		default: return cmdhelp_usage_error(argv[0]);
		}
	}
	if (optind + 1 != argc) {
		return cmdhelp_usage_error(argv[0]);
	}
	account = argv[optind];
	if ((rc = load_app(&a, &o)) != 0)
		goto out;
	rc = EXIT_RUNTIME;
	if ((qids = calloc(RELEASE_QIDS_MAX, sizeof(*qids))) == NULL ||
	    (qp = calloc(RELEASE_QIDS_MAX, sizeof(*qp))) == NULL)
		goto out;
	if (requeue && !o.dry_run && geteuid() == 0)
		rc = release_lift_apart(&a, &o, account, qids, &nq);
	else
		rc = release_lift(&a, &o, account, requeue, qids, &nq);
	if (rc != 0 || !requeue || o.dry_run)
		goto out;
	rc = EXIT_RUNTIME;
	for (int i = 0; i < nq; i++)
		qp[i] = qids[i];
	if (holdmap_release_queue(a.cfg.postfix_config_dir, qp, (size_t)nq,
	    strchr(account, '@') ? account : NULL, &released) != 0) {
		log_warnx("releasing %s's held mail failed", account);
		goto out;
	}
	printf("requeued %d held message%s of %s\n", released, released == 1 ? "" : "s",
	    account);
	rc = 0;
out:
	free(qids);
	free(qp);
	app_free(&a);
	return rc;
}

/* bans / history: one table of ban rows */

/* The JSON shape (README, "JSON output"): level a number, times ISO 8601
 * UTC strings, lifted null while the ban was not lifted.  A fleet's rows
 * say which node decided them: the last column (only there: one SQLite
 * file is one node). */
static const char *const ban_headers[] = {
	"jail", "target", "kind", "level", "started", "expires", "lifted", "reason", "node",
};
static const enum table_type ban_types[] = {
	TABLE_TEXT, TABLE_TEXT, TABLE_TEXT, TABLE_INTEGER, TABLE_TEXT, TABLE_TEXT,
	TABLE_TEXT, TABLE_TEXT, TABLE_TEXT,
};
#define NBAN_COLS (sizeof(ban_headers) / sizeof(ban_headers[0]))

static int
add_ban_row(void *arg, const struct stored_ban *b)
{
	struct table *t = arg;
	char level[16], st[32], ex[32], li[32];
	const char *row[NBAN_COLS];

	snprintf(level, sizeof(level), "%d", b->level);
	row[0] = b->jail;
	row[1] = b->target;
	row[2] = b->target_kind;
	row[3] = level;
	/* 1970 too: a ban's times are all set (NULL: the year does not fit) */
	row[4] = logtime_iso(b->started_at, st, sizeof(st));
	row[5] = logtime_iso(b->expires_at, ex, sizeof(ex));
	row[6] = b->lifted_at ? logtime_iso(b->lifted_at, li, sizeof(li)) : NULL;
	row[7] = b->reason;
	row[8] = b->node;
	return table_add(t, row);
}

static int
print_bans(struct app *a, const struct ban_filter *f, bool json)
{
	struct table t;
	int rc = 0;

	table_init(&t, ban_headers, store_fleet(a->store) ? NBAN_COLS : NBAN_COLS - 1);
	table_set_types(&t, ban_types);
	if (store_each_ban(a->store, f, add_ban_row, &t) != 0) {
		rc = EXIT_RUNTIME;
		goto out;
	}
	if (json) {
		if (table_print_json(&t, stdout) != 0) {
			log_warnx("writing the JSON output failed");
			rc = EXIT_RUNTIME;
		}
	} else if (t.nrows == 0)
		printf("no %s\n", f->active_only ? "active bans or holds" : "bans or holds");
	else
		table_print(&t, stdout);
out:
	table_free(&t);
	return rc;
}

int
cli_bans(int argc, char **argv)
{
	struct common_opts o;
	struct app a;
	struct ban_filter f;
	int rc;

	if (parse_common(argc, argv, "jaJ", &o) != 0)
		return cmdhelp_usage_error(argv[0]);
	if (optind != argc) {
		return cmdhelp_usage_error(argv[0]);
	}
	if ((rc = open_app(&a, &o)) == 0) {
		f = (struct ban_filter){ o.jail, NULL, !o.all, (int64_t)time(NULL) };
		rc = print_bans(&a, &f, o.json);
	}
	app_free(&a);
	return rc;
}

int
cli_history(int argc, char **argv)
{
	struct common_opts o;
	struct app a;
	struct ban_filter f;
	char target[MJ_TARGET_MAX];
	int rc;

	if (parse_common(argc, argv, "j", &o) != 0)
		return cmdhelp_usage_error(argv[0]);
	if (optind + 1 != argc) {
		return cmdhelp_usage_error(argv[0]);
	}
	/* An IP is looked up in its canonical form, as it was stored. */
	if (addr_canonical(argv[optind], target, sizeof(target)) != 0)
		snprintf(target, sizeof(target), "%s", argv[optind]);
	if ((rc = open_app(&a, &o)) == 0) {
		f = (struct ban_filter){ NULL, target, false, (int64_t)time(NULL) };
		rc = print_bans(&a, &f, o.json);
	}
	app_free(&a);
	return rc;
}

/* status */

/* has_open - does process pid have file open? */
static bool
has_open(const char *pid, const char *file)
{
	char dir[300], link[600], target[4096];
	struct dirent *de;
	DIR *d;
	bool found = false;

	snprintf(dir, sizeof(dir), "/proc/%s/fd", pid);
	if ((d = opendir(dir)) == NULL)
		return false;
	while (!found && (de = readdir(d)) != NULL) {
		ssize_t n;
		snprintf(link, sizeof(link), "%s/%s", dir, de->d_name);
		if ((n = readlink(link, target, sizeof(target) - 1)) <= 0)
			continue;
		target[n] = '\0';
		found = strcmp(target, file) == 0;
	}
	closedir(d);
	return found;
}

/* daemon_pid - a running "mailjail run" that has our database open, found
 * in /proc; 0 if none */
static long
daemon_pid(const char *db)
{
	char real[4096];

	if (realpath(db, real) == NULL)
		return 0;

	DIR *d = opendir("/proc");
	struct dirent *de;
	long found = 0;

	if (d == NULL)
		return 0;
	while (found == 0 && (de = readdir(d)) != NULL) {
		char path[300], buf[512];
		FILE *fp;
		size_t n;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", de->d_name);
		if ((fp = fopen(path, "re")) == NULL)
			continue;
		n = fread(buf, 1, sizeof(buf) - 1, fp);
		fclose(fp);
		buf[n] = '\0';
		/* argv[0] ends in "mailjail", argv[1] is "run" */
		if (n > 0 && strlen(buf) + 4 < n) {
			const char *base = strrchr(buf, '/');
			base = base ? base + 1 : buf;
			if (strcmp(base, "mailjail") == 0 &&
			    strcmp(buf + strlen(buf) + 1, "run") == 0 && has_open(de->d_name, real))
				found = strtol(de->d_name, NULL, 10);
		}
	}
	closedir(d);
	return found;
}

struct jail_count {
	struct app *a;
	size_t *active;
};

static int
count_active(void *arg, const struct stored_ban *b)
{
	struct jail_count *c = arg;

	for (size_t j = 0; j < jails_count(c->a->jails); j++)
		if (strcmp(jails_name(c->a->jails, j), b->jail) == 0)
			c->active[j]++;
	return 0;
}

static int
print_event_count(void *arg, const char *name, int64_t n)
{
	(void)arg;
	printf("  %-24s %" PRId64 "\n", name, n);
	return 0;
}

/* A fleet's positions and cursors are per node: "node NAME:" heads each
 * node's lines (node NULL: one node, no heading).  arg: the last node
 * headed, a char[CONFIG_NODE_MAX + 1]. */
static const char *
node_heading(char *last, const char *node)
{
	if (node == NULL)
		return "";
	if (strcmp(last, node) != 0) {
		printf("  node %s:\n", node);
		snprintf(last, CONFIG_NODE_MAX + 1, "%s", node);
	}
	return "  ";
}

static int
print_position(void *arg, const char *node, const struct log_position *pos,
    int64_t updated)
{
	const char *indent = node_heading(arg, node);
	char when[32];

	iso_time(updated, when, sizeof(when));
	printf("  %s%s: offset %" PRIu64 ", inode %" PRIu64 ", saved %s\n", indent,
	    pos->path, pos->offset, pos->inode, when);
	return 0;
}

static int
print_cursor(void *arg, const char *node, const char *source, const char *cursor,
    int64_t updated)
{
	const char *indent = node_heading(arg, node);
	char when[32], at[32];
	uint64_t usec;

	iso_time(updated, when, sizeof(when));
	if (journal_cursor_time(cursor, &usec) == 0)
		iso_time((int64_t)(usec / 1000000), at, sizeof(at));
	else
		snprintf(at, sizeof(at), "-");
	printf("  %s%s: entry of %s, saved %s\n  %s  cursor %s\n", indent, source, at, when,
	    indent, cursor);
	return 0;
}

/* A fleet's nodes: who runs, since when, last heard of when. */
struct nodes_ctx {
	struct table t;
	const char *me;            /* this host's node name */
	int64_t now;
	long my_pid;               /* this node's daemon, running: its pid */
};

static int
add_node_row(void *arg, const struct store_node *n)
{
	struct nodes_ctx *c = arg;
	char pid[24], started[32], seen[64], ago[24];
	const char *row[6] = { n->name, n->host, pid, started, seen,
	    n->running ? "running" : "stopped" };

	snprintf(pid, sizeof(pid), "%ld", n->pid);
	iso_time(n->started_at, started, sizeof(started));
	iso_time(n->last_seen, seen, sizeof(seen));
	snprintf(ago, sizeof(ago), " (%llds ago)", (long long)(c->now - n->last_seen));
	snprintf(seen + strlen(seen), sizeof(seen) - strlen(seen), "%s", ago);
	if (strcmp(n->name, c->me) == 0 && n->running)
		c->my_pid = n->pid;
	return table_add(&c->t, row);
}

/* print_daemon - whether this host's daemon runs: a fleet's nodes table
 * says (and every node is listed); one SQLite file: pid, the process that
 * has it open (found before the privilege drop), or 0 */
static int
print_daemon(struct app *a, int64_t now, long pid)
{
	static const char *const headers[] = {
		"node", "host", "pid", "started", "last seen", "state",
	};
	struct nodes_ctx c = { .me = a->cfg.node, .now = now, .my_pid = 0 };

	if (!store_fleet(a->store)) {
		if (pid)
			printf("daemon: running (pid %ld)\n", pid);
		else
			printf("daemon: not running\n");
		printf("database: %s\n\n", a->db_path);
		return 0;
	}
	table_init(&c.t, headers, 6);
	if (store_each_node(a->store, add_node_row, &c) != 0) {
		table_free(&c.t);
		return -1;
	}
	if (c.my_pid)
		printf("daemon: running (pid %ld, node %s)\n", c.my_pid, a->cfg.node);
	else
		printf("daemon: not running (node %s)\n", a->cfg.node);
	printf("database: %s\n\nnodes:\n", a->db_path);
	if (c.t.nrows == 0)
		printf("  none has run yet\n");
	else
		table_print(&c.t, stdout);
	printf("\n");
	table_free(&c.t);
	return 0;
}

int
cli_status(int argc, char **argv)
{
	struct common_opts o;
	struct app a;
	struct pipeline p;
	struct jail_count jc;
	struct ban_filter f;
	struct table t;
	static const char *const headers[] = { "jail", "keys tracked", "active" };
	char last_node[CONFIG_NODE_MAX + 1] = "";
	int64_t now = (int64_t)time(NULL);
	const char *db;
	long pid = 0;
	int rc;
	bool p_up = false;

	memset(&jc, 0, sizeof(jc));
	table_init(&t, headers, 3);
	if (parse_common(argc, argv, "", &o) != 0)
		return cmdhelp_usage_error(argv[0]);
	if (optind != argc) {
		return cmdhelp_usage_error(argv[0]);
	}
	if ((rc = load_app(&a, &o)) != 0)
		goto out;
	/* Before the drop: a daemon that dropped privileges itself cannot be
	 * looked into by its user (it is not dumpable).  A fleet's nodes
	 * table says instead. */
	db = o.db ? o.db : a.cfg.db;
	if (store_db_is_file(db))
		pid = daemon_pid(db);
	if ((rc = as_run_user(&a)) != 0 || (rc = open_store(&a, &o)) != 0)
		goto out;
	rc = EXIT_RUNTIME;
	if (pipeline_init(&p, a.rules, a.jails, a.store, false) != 0)
		goto out;
	p_up = true;
	if (pipeline_restore(&p, now) != 0)
		goto out;
	jc.a = &a;
	if ((jc.active = calloc(jails_count(a.jails) + 1, sizeof(size_t))) == NULL)
		goto out;
	f = (struct ban_filter){ NULL, NULL, true, now };
	if (store_each_ban(a.store, &f, count_active, &jc) != 0)
		goto out;
	if (print_daemon(&a, now, pid) != 0)
		goto out;
	for (size_t j = 0; j < jails_count(a.jails); j++) {
		char keys[32], active[32];
		const char *row[3] = { jails_name(a.jails, j), keys, active };
		snprintf(keys, sizeof(keys), "%zu", jails_tracked_keys(a.jails, j));
		snprintf(active, sizeof(active), "%zu", jc.active[j]);
		if (table_add(&t, row) != 0)
			goto out;
	}
	table_print(&t, stdout);
	printf("\nevents in the last hour:\n");
	if (store_event_counts_since(a.store, now - 3600, print_event_count, NULL) != 0)
		goto out;
	printf("\nlogs:\n");
	if (store_each_position(a.store, print_position, last_node) != 0)
		goto out;
	last_node[0] = '\0';
	if (store_each_cursor(a.store, print_cursor, last_node) != 0)
		goto out;
	rc = 0;
out:
	free(jc.active);
	table_free(&t);
	if (p_up)
		pipeline_fini(&p);
	app_free(&a);
	return rc;
}

/*
 * cli_metrics - the Prometheus text once, on standard output: the daemon's
 * counters as it last saved them (every 10 s and at stop), the gauges read
 * now.  Run as root, the DB is read as the run user, like the other
 * commands; it must exist (a new one would have nothing to say).
 */
int
cli_metrics(int argc, char **argv)
{
	struct common_opts o;
	struct metrics *m = NULL;
	struct app a;
	char *text = NULL;
	size_t len = 0;
	int rc;

	if (parse_common(argc, argv, "", &o) != 0 || optind != argc)
		return cmdhelp_usage_error(argv[0]);
	if ((rc = load_app(&a, &o)) != 0 || (rc = as_run_user(&a)) != 0)
		goto out;
	rc = EXIT_RUNTIME;
	if (app_open_store(&a, o.db, false) != 0)
		goto out;
	if (metrics_open(&m, a.cfg.node) != 0 ||
	    metrics_declare(m, &a.cfg, a.rules, a.jails) != 0) {
		log_warnx("out of memory");
		goto out;
	}
	if (metrics_load(m, a.store) != 0) {
		log_warnx("database %s: cannot read the saved counters: %s", a.db_path,
		    store_errmsg(a.store));
		goto out;
	}
	if ((text = metrics_render(m, a.store, &a.cfg, (int64_t)time(NULL), &len)) == NULL) {
		log_warnx("out of memory");
		goto out;
	}
	if (fwrite(text, 1, len, stdout) != len || fflush(stdout) != 0) {
		log_warn("standard output");
		goto out;
	}
	rc = 0;
out:
	free(text);
	metrics_close(m);
	app_free(&a);
	return rc;
}
