/*
 * store_pgsql - the PostgreSQL backend of the store (libpq): one database
 * shared by a fleet of nodes.  See store.h for the contracts and
 * store_backend.h for how store.c calls it; schemas/pg/ for the tables.
 *
 * Writes.  A batch is one transaction.  Its event rows are kept in memory
 * in COPY's binary format (lengths, no quoting: nothing in a field can be
 * taken for a delimiter) and sent with one COPY FROM STDIN (BEGIN goes with
 * it) when the batch commits, or before a read, or at COPY_FLUSH bytes;
 * the rest is sent in libpq's pipeline mode without waiting: the
 * per-minute counts (summed in memory, store_counts as SQLite does, then
 * multi-row upserts), the bans of the batch (store_add_bans), the
 * positions, a NOTIFY, COMMIT, and one sync.  A batch costs three round
 * trips (COPY is two), four with bans, whatever its size; any read costs
 * one.  A failed statement is reported at the next sync (a later call, the
 * commit at the latest), as store.h allows.
 *
 * One offence, one row.  A ban is inserted only if no ban of its jail and
 * target is in force, under pg_advisory_xact_lock on the pair: two nodes
 * crossing a threshold at the same moment take the lock in turn, and the
 * second one's INSERT (READ COMMITTED: a new snapshot after the wait) sees
 * the first one's row and writes nothing; store_add_ban says 1.
 *
 * What the others committed.  Ids are no order of commits (a smaller id can
 * commit later), so every row carries the transaction that last wrote it
 * (txid, xid8), and a poll reads, in a REPEATABLE READ transaction, the rows
 * written after the previous poll's snapshot and visible in its own:
 * txid >= pg_snapshot_xmin(prev) AND NOT pg_visible_in_snapshot(txid, prev).
 * Each row comes exactly once, whatever order the transactions commit in.
 * Two snapshots are kept (text, in memory): the bans' moves on at each poll;
 * the events' when the batch they were counted in commits (a refused batch
 * sees them again, live).  The restore reads start both.  Commits that
 * wrote events or bans NOTIFY the channel "mailjail"; store_fd() lets the
 * daemon wait for that.
 *
 * Connection loss.  Every failure of the connection, and what the server
 * says can clear (shutdown, serialization, deadlock, resources, lock
 * timeout), is transient: the daemon rolls the batch back and reads it
 * again.  The next call reconnects, waiting 1, 2, 4 ... 30 s between
 * attempts; a reconnection listens again and takes the node's name again.
 *
 * Secrets.  The URI may hold a password (user:PASSWORD@ or password=):
 * store_path() shows it as ***, and every message taken from libpq or the
 * server has it replaced before it is kept, logged or returned.
 *
 * Memory: struct pg_store owns the connection, the URI, the snapshots and
 * the buffered rows (whose rule and type strings are borrowed until the
 * commit, as store.h says).
 */
#include "store_backend.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "pq.h"
#include "schema.h"

#define PG_COPY_FLUSH (1 << 20)   /* event rows buffered before a COPY */
#define PG_COUNT_ROWS 128
#define PG_COUNT_COLS 4
#define PG_INFLIGHT_MAX 64    /* statements sent before a sync drains them */
#define PG_BACKOFF_MAX 30     /* seconds between reconnection attempts, at most */
#define PG_HEARTBEAT_SECS 5   /* nodes.last_seen moves this often */
#define PG_OWN_BANS_MAX 65536 /* own ban ids awaiting their echo (poll) */
#define PG_NUM 24             /* an int64 in decimal */

/* The schema's migration lock: 'mailjail' as a number. */
#define PG_SCHEMA_LOCK "7881706818185208172"
#define PG_CHANNEL "mailjail"

struct pg_store;

/* row_fn - one row of a result; non-zero stops the rows (kept in *arg) */
typedef int (*row_fn)(struct pg_store *st, const PGresult *r, int row, void *arg);

struct inflight {
	row_fn on_row;            /* NULL: no rows wanted */
	void *arg;
	int64_t *changed;         /* set: gets the rows the statement changed */
};

struct pg_store {
	PGconn *conn;
	char *uri;                 /* as given: may hold a password */
	char *shown;               /* the URI with the password as *** */
	char *secret[3];           /* password spellings to scrub from messages */
	char *node;
	bool created;
	bool in_pipe;              /* libpq in pipeline mode */
	struct inflight q[PG_INFLIGHT_MAX + 8];
	size_t nq;
	bool in_tx;
	bool begun;                /* its BEGIN was sent (deferred until needed) */
	bool wrote;                /* the open transaction wrote events or bans */
	unsigned char *copy;       /* event rows in COPY binary format */
	size_t copylen, copycap, copyrows;
	struct store_counts counts;   /* the open batch's (store_backend.h) */
	uint64_t round_trips;
	/* the last failure */
	char lasterr[512];
	char logged[512];
	char connerr[512];         /* why the last reconnection failed */
	bool failed;               /* since begin / clear_error */
	bool rolling_back;
	bool transient;
	/* reconnection */
	time_t next_attempt;
	int backoff;
	const volatile sig_atomic_t *stop;
	/* the fleet */
	bool claimed;              /* this process is the node (run) */
	bool name_taken;           /* a reconnection found the name taken */
	time_t last_heartbeat;
	char *snap_events;         /* events polled up to here (committed) */
	char *snap_events_next;    /* polled, counted in the open batch */
	char *snap_bans;
	int64_t *own;              /* ids of bans this process committed, not yet */
	size_t nown, capown;       /* seen again by a poll */
	size_t ntx_own;            /* own[nown..nown+ntx_own): the open batch's */
};

static int pipe_sync(struct pg_store *st);
static void pg_close(void *be);

/* ---- secrets and messages --------------------------------------------- */

/* mask_uri - the URI with the password (user:PASSWORD@, password=VALUE) as
 * ***; the raw spellings go to secrets[] (for scrubbing) */
static char *
mask_uri(const char *uri, char **secrets, size_t nsecrets)
{
	size_t len = strlen(uri), ns = 0;
	char *out = malloc(len + 16), *o;
	const char *p = strstr(uri, "://"), *auth, *auth_end, *at = NULL, *q;

	if (out == NULL)
		return NULL;
	if (p == NULL) {
		memcpy(out, uri, len + 1);
		return out;
	}
	auth = p + 3;
	auth_end = auth + strcspn(auth, "/?");
	for (q = auth; q < auth_end; q++)
		if (*q == '@')
			at = q;
	o = out;
	memcpy(o, uri, (size_t)(auth - uri));
	o += auth - uri;
	if (at != NULL) {
		const char *colon = memchr(auth, ':', (size_t)(at - auth));
		if (colon != NULL) {
			memcpy(o, auth, (size_t)(colon + 1 - auth));
			o += colon + 1 - auth;
			memcpy(o, "***", 3);
			o += 3;
			if (ns < nsecrets && at > colon + 1)
				secrets[ns++] = strndup(colon + 1, (size_t)(at - colon - 1));
			auth = at;
		}
	}
	/* the rest, with password=VALUE in the query hidden */
	for (q = auth; *q; ) {
		bool param_start = q > uri && (q[-1] == '?' || q[-1] == '&');
		if (param_start && strncmp(q, "password=", 9) == 0) {
			size_t vlen = strcspn(q + 9, "&");
			memcpy(o, "password=***", 12);
			o += 12;
			if (ns < nsecrets && vlen > 0)
				secrets[ns++] = strndup(q + 9, vlen);
			q += 9 + vlen;
			continue;
		}
		*o++ = *q++;
	}
	*o = '\0';
	return out;
}

/* scrub - buf with every secret replaced by ***, and libpq's lines
 * (newline, indent) joined by "; " on one line */
static void
scrub(const struct pg_store *st, char *buf, size_t len)
{
	char tmp[1024];
	size_t o = 0;

	for (size_t s = 0; s < sizeof(st->secret) / sizeof(st->secret[0]); s++) {
		const char *sec = st->secret[s];
		size_t sl = sec ? strlen(sec) : 0;
		char *hit;

		if (sl == 0)
			continue;
		while ((hit = strstr(buf, sec)) != NULL) {
			snprintf(tmp, sizeof(tmp), "%.*s***%s", (int)(hit - buf), buf, hit + sl);
			snprintf(buf, len, "%s", tmp);
		}
	}
	for (const char *p = buf; *p && o + 3 < sizeof(tmp); p++) {
		if (*p != '\n') {
			tmp[o++] = *p == '\t' ? ' ' : *p;
			continue;
		}
		while (p[1] == ' ' || p[1] == '\t' || p[1] == '\n')
			p++;
		if (p[1] != '\0') {
			tmp[o++] = ';';
			tmp[o++] = ' ';
		}
	}
	tmp[o] = '\0';
	snprintf(buf, len, "%s", tmp);
}

/* keep_error - the failure, scrubbed, remembered and logged once */
static void
keep_error(struct pg_store *st, bool transient, const char *fmt, ...) MJ_PRINTF(3, 4);

static void
keep_error(struct pg_store *st, bool transient, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(st->lasterr, sizeof(st->lasterr), fmt, ap);
	va_end(ap);
	scrub(st, st->lasterr, sizeof(st->lasterr));
	st->failed = true;
	st->transient = transient;
	/* What a rollback drains fails for the first error, said already. */
	if (st->rolling_back || strcmp(st->logged, st->lasterr) == 0)
		return;
	snprintf(st->logged, sizeof(st->logged), "%s", st->lasterr);
	log_warnx("database %s: %s", st->shown, st->lasterr);
}

/* conn_bad - is the connection gone? */
static bool
conn_bad(const struct pg_store *st)
{
	return st->conn == NULL || pq.PQstatus(st->conn) != CONNECTION_OK;
}

/*
 * sqlstate_transient - may this error clear by itself?  Class 08 (the
 * connection), 40 (serialization failure, deadlock: the transaction was
 * rolled back), 53 (disk full, out of memory, too many connections), 57P01
 * to 57P05 (shutdown, crash shutdown, not yet accepting connections, ...),
 * 55P03 (a lock not available in time), 57014 (cancelled: a stop asked
 * for).  The rest (constraints, permissions, syntax, a corrupt page) will
 * not.
 */
static bool
sqlstate_transient(const char *s)
{
	if (s == NULL || strlen(s) != 5)
		return false;
	return strncmp(s, "08", 2) == 0 || strncmp(s, "40", 2) == 0 ||
	    strncmp(s, "53", 2) == 0 || strncmp(s, "57P0", 4) == 0 ||
	    strcmp(s, "55P03") == 0 || strcmp(s, "57014") == 0;
}

/* note_result - keep the error of r (NULL: the connection's) */
static void
note_result(struct pg_store *st, const PGresult *r)
{
	const char *state = r ? pq.PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = r ? pq.PQresultErrorMessage(r) : NULL;

	if (msg == NULL || *msg == '\0')
		msg = st->conn ? pq.PQerrorMessage(st->conn) : "no connection";
	if (conn_bad(st))
		keep_error(st, true, "connection lost: %s", msg);
	else
		keep_error(st, sqlstate_transient(state), "%s%s%s%s", msg,
		    state ? " (SQLSTATE " : "", state ? state : "", state ? ")" : "");
}

/* ---- the connection ---------------------------------------------------- */

static void
drop_notice(void *arg, const char *message)
{
	(void)arg;
	(void)message;   /* "relation already exists, skipping" and the like */
}

/* exec_setup - one statement outside the pipeline (connecting, migrating);
 * returns its result if it succeeded (the caller clears it), else NULL
 * with the reason in err */
static PGresult *
exec_setup(struct pg_store *st, const char *sql, int n, const char *const *vals,
    char *err, size_t errlen)
{
	PGresult *r = pq.PQexecParams(st->conn, sql, n, NULL, vals, NULL, NULL, 0);
	ExecStatusType s = pq.PQresultStatus(r);

	st->round_trips++;
	if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK)
		return r;
	snprintf(err, errlen, "%s", r ? pq.PQresultErrorMessage(r) : pq.PQerrorMessage(st->conn));
	scrub(st, err, errlen);
	pq.PQclear(r);
	return NULL;
}

/* exec_simple - SQL without parameters or rows, several statements allowed
 * (a schema file) */
static int
exec_simple(struct pg_store *st, const char *sql, char *err, size_t errlen)
{
	PGresult *r = pq.PQexec(st->conn, sql);
	int rc = 0;

	st->round_trips++;
	if (pq.PQresultStatus(r) != PGRES_COMMAND_OK && pq.PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "%s", r ? pq.PQresultErrorMessage(r) : pq.PQerrorMessage(st->conn));
		scrub(st, err, errlen);
		rc = -1;
	}
	pq.PQclear(r);
	return rc;
}

/*
 * migrate - the schema to the newest version, once, even when every node
 * of a new fleet starts at the same moment: everything happens in one
 * transaction under an advisory lock, so the second node waits, then finds
 * the tables made.  schema_version lists the steps applied.
 */
static int
migrate(struct pg_store *st, bool create, char *err, size_t errlen)
{
	int latest = pg_schema_nsteps ? pg_schema_steps[pg_schema_nsteps - 1].version : 0;
	int version = 0;
	PGresult *r;

	if (exec_simple(st, "BEGIN", err, errlen) != 0)
		return -1;
	if (exec_simple(st, "SELECT pg_advisory_xact_lock(" PG_SCHEMA_LOCK ")", err,
	    errlen) != 0)
		goto fail;
	if ((r = exec_setup(st, "SELECT to_regclass('schema_version') IS NOT NULL", 0,
	    NULL, err, errlen)) == NULL)
		goto fail;
	if (strcmp(pq.PQgetvalue(r, 0, 0), "t") == 0) {
		pq.PQclear(r);
		if ((r = exec_setup(st, "SELECT coalesce(max(version), 0) FROM schema_version",
		    0, NULL, err, errlen)) == NULL)
			goto fail;
		version = atoi(pq.PQgetvalue(r, 0, 0));
	} else if (!create) {
		pq.PQclear(r);
		snprintf(err, errlen, "no mailjail tables in this database (\"mailjail "
		    "run\" creates them)");
		goto fail;
	} else if (exec_simple(st, "CREATE TABLE schema_version (version integer PRIMARY "
	    "KEY, name text NOT NULL, applied_at bigint NOT NULL)", err, errlen) != 0) {
		pq.PQclear(r);
		goto fail;
	}
	pq.PQclear(r);
	if (version > latest) {
		snprintf(err, errlen, "database schema version %d is newer than this "
		    "mailjail understands (%d)", version, latest);
		goto fail;
	}
	for (unsigned i = 0; i < pg_schema_nsteps; i++) {
		const struct schema_step *s = &pg_schema_steps[i];
		char v[16], now[PG_NUM], tmp[512];
		const char *vals[3] = { v, s->name, now };

		if (s->version <= version)
			continue;
		snprintf(v, sizeof(v), "%d", s->version);
		snprintf(now, sizeof(now), "%lld", (long long)time(NULL));
		if (exec_simple(st, s->sql, tmp, sizeof(tmp)) != 0) {
			snprintf(err, errlen, "schema pg/%s: %.400s", s->name, tmp);
			goto fail;
		}
		if ((r = exec_setup(st, "INSERT INTO schema_version VALUES ($1::integer, $2,"
		    " $3::bigint)", 3, vals, err, errlen)) == NULL)
			goto fail;
		pq.PQclear(r);
		if (version == 0)
			st->created = true;
	}
	return exec_simple(st, "COMMIT", err, errlen);
fail:
	pq.PQclear(pq.PQexec(st->conn, "ROLLBACK"));
	return -1;
}

/* prepare_rows - head, then nrows rows of ncols parameters ($1 is the node,
 * first in every row; casts[c] follows column c), then tail; malloc'd */
static char *
rows_sql(const char *head, int ncols, const char *const *casts, int nrows,
    const char *tail)
{
	size_t cap = strlen(head) + strlen(tail) + (size_t)nrows * (size_t)(ncols + 1) * 20 + 16;
	char *sql = malloc(cap);
	size_t off;
	int p = 2;

	if (sql == NULL)
		return NULL;
	off = (size_t)snprintf(sql, cap, "%s", head);
	for (int r = 0; r < nrows; r++) {
		off += (size_t)snprintf(sql + off, cap - off, "%s($1", r ? "," : "");
		for (int c = 0; c < ncols; c++)
			off += (size_t)snprintf(sql + off, cap - off, ",$%d%s", p++, casts[c]);
		off += (size_t)snprintf(sql + off, cap - off, ")");
	}
	snprintf(sql + off, cap - off, "%s", tail);
	return sql;
}

static const char *const count_casts[PG_COUNT_COLS] = { "::bigint", "", "", "::bigint" };
#define COUNTS_HEAD "INSERT INTO event_counts(node, minute, rule, event, n) VALUES "
#define COUNTS_TAIL " ON CONFLICT (node, minute, rule) DO UPDATE SET" \
	" n = event_counts.n + excluded.n"

/*
 * A ban: the lock on its jail and target is the statement before, so the
 * INSERT's snapshot (READ COMMITTED: per statement) is taken after the
 * wait and sees the row of the node that held the lock.  $1 node, $2 jail,
 * $3 target, $4 kind, $5 level, $6 reason, $7 actions, $8 reply, $9 start,
 * $10 end.
 */
#define BAN_LOCK_SQL "SELECT pg_advisory_xact_lock(hashtextextended(" \
	"json_build_array($1::text, $2::text)::text, 0))"
#define BAN_ADD_SQL "INSERT INTO bans(node, jail, target, target_kind, level, reason," \
	" actions, reply, started_at, expires_at)" \
	" SELECT $1, $2, $3, $4, $5::integer, $6, $7, $8, $9::bigint, $10::bigint" \
	" WHERE NOT EXISTS (SELECT 1 FROM bans WHERE jail = $2 AND target = $3" \
	" AND lifted_at IS NULL AND expires_at > $9::bigint) RETURNING id"

/* prepare - the statements of every batch */
static int
prepare(struct pg_store *st, char *err, size_t errlen)
{
	static const char *const names[] = { "counts", "ban_lock", "ban_add" };
	char *cn = rows_sql(COUNTS_HEAD, PG_COUNT_COLS, count_casts, PG_COUNT_ROWS,
	    COUNTS_TAIL);
	const char *sql[] = { cn, BAN_LOCK_SQL, BAN_ADD_SQL };
	int rc = 0;

	if (cn == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]) && rc == 0; i++) {
		PGresult *r = pq.PQprepare(st->conn, names[i], sql[i], 0, NULL);

		st->round_trips++;
		if (pq.PQresultStatus(r) != PGRES_COMMAND_OK) {
			snprintf(err, errlen, "%s", pq.PQerrorMessage(st->conn));
			scrub(st, err, errlen);
			rc = -1;
		}
		pq.PQclear(r);
	}
	free(cn);
	return rc;
}

static int take_node(struct pg_store *st, int wait_secs, char *err, size_t errlen);

/* connect_db - a new connection, ready for batches: the schema migrated
 * (at the first connection), statements prepared, listening, and the
 * node's name taken again if this process had it */
static int
connect_db(struct pg_store *st, bool first, bool create, char *err, size_t errlen)
{
	/* Defaults a URI can override: a dead server is found in seconds, not
	 * at the kernel's TCP timeout (nothing is given for a unix socket). */
	static const char *const keys[] = {
		"connect_timeout", "keepalives_idle", "keepalives_interval",
		"keepalives_count", "application_name", "dbname", NULL,
	};
	const char *vals[] = { "10", "10", "5", "3", "mailjail", st->uri, NULL };

	if (st->conn != NULL)
		pq.PQfinish(st->conn);
	st->in_pipe = false;
	st->nq = 0;
	st->conn = pq.PQconnectdbParams(keys, vals, 1);
	st->round_trips++;
	if (st->conn == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (pq.PQstatus(st->conn) != CONNECTION_OK) {
		snprintf(err, errlen, "%s", pq.PQerrorMessage(st->conn));
		scrub(st, err, errlen);
		return -1;
	}
	pq.PQsetNoticeProcessor(st->conn, drop_notice, NULL);
	if (exec_simple(st, "SET client_min_messages = warning", err, errlen) != 0)
		return -1;
	if (first && migrate(st, create, err, errlen) != 0)
		return -1;
	if (prepare(st, err, errlen) != 0 ||
	    exec_simple(st, "LISTEN " PG_CHANNEL, err, errlen) != 0)
		return -1;
	/* Our own session may outlive the connection on the server's side
	 * for a while (TCP): try_node ends it. */
	if (st->claimed && take_node(st, 2, err, errlen) != 0) {
		st->name_taken = true;
		return -1;
	}
	return 0;
}

/*
 * ensure_conn - a working connection, reconnecting if it was lost, but not
 * more often than the backoff allows (1 s, doubling to PG_BACKOFF_MAX).
 * A failure here is transient, except losing the node's name.
 */
static int
ensure_conn(struct pg_store *st)
{
	char err[512];
	time_t now = time(NULL);

	if (!conn_bad(st))
		return 0;
	if (now < st->next_attempt && st->next_attempt - now <= PG_BACKOFF_MAX) {
		/* Still waiting: the reason is the last attempt's, said already. */
		snprintf(st->lasterr, sizeof(st->lasterr), "%s", st->connerr);
		st->failed = true;
		st->transient = !st->name_taken;
		return -1;
	}
	st->in_tx = false;
	if (connect_db(st, false, false, err, sizeof(err)) != 0) {
		st->backoff = st->backoff ? st->backoff * 2 : 1;
		if (st->backoff > PG_BACKOFF_MAX)
			st->backoff = PG_BACKOFF_MAX;
		st->next_attempt = now + st->backoff;
		keep_error(st, !st->name_taken, "cannot reconnect (trying again, at most "
		    "every %d s): %s", PG_BACKOFF_MAX, err);
		snprintf(st->connerr, sizeof(st->connerr), "%s", st->lasterr);
		return -1;
	}
	st->backoff = 0;
	st->next_attempt = 0;
	log_info("database %s: connected again", st->shown);
	return 0;
}

/* ---- the pipeline ------------------------------------------------------- */

/* wait_result - the next result, waiting on the socket so that a stop
 * asked for (SIGTERM) cancels a statement that waits (a lock held by
 * another node's batch) instead of waiting it out */
static PGresult *
wait_result(struct pg_store *st)
{
	bool cancelled = false;

	while (pq.PQisBusy(st->conn)) {
		struct pollfd p = { .fd = pq.PQsocket(st->conn), .events = POLLIN };
		int n;

		if (p.fd < 0)
			break;
		n = poll(&p, 1, 250);
		if (st->stop != NULL && *st->stop && !cancelled) {
			PGcancel *c = pq.PQgetCancel(st->conn);
			char buf[256];

			if (c != NULL) {
				(void)pq.PQcancel(c, buf, sizeof(buf));
				pq.PQfreeCancel(c);
			}
			cancelled = true;
		}
		if (n > 0 && !pq.PQconsumeInput(st->conn))
			break;
	}
	return pq.PQgetResult(st->conn);
}

/* pipe_lost - the connection went away with statements in flight */
static int
pipe_lost(struct pg_store *st)
{
	note_result(st, NULL);
	st->nq = 0;
	st->in_pipe = false;
	st->in_tx = false;
	st->begun = false;
	return -1;
}

/* send_stmt - queue one statement (name: a prepared one, else sql) */
static int
send_stmt(struct pg_store *st, const char *name, const char *sql, int n,
    const char *const *vals, row_fn on_row, void *arg, int64_t *changed)
{
	int ok;

	if (conn_bad(st))
		return pipe_lost(st);
	if (!st->in_pipe) {
		if (pq.PQenterPipelineMode(st->conn) != 1)
			return pipe_lost(st);
		st->in_pipe = true;
	}
	if (st->in_tx && !st->begun) {
		if (!pq.PQsendQueryParams(st->conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0))
			return pipe_lost(st);
		st->q[st->nq++] = (struct inflight){ NULL, NULL, NULL };
		st->begun = true;
	}
	ok = name ? pq.PQsendQueryPrepared(st->conn, name, n, vals, NULL, NULL, 0)
	          : pq.PQsendQueryParams(st->conn, sql, n, NULL, vals, NULL, NULL, 0);
	if (!ok)
		return pipe_lost(st);
	st->q[st->nq++] = (struct inflight){ on_row, arg, changed };
	/* The results wait in the socket until the sync: drain them before
	 * there are many (the server must never block writing them). */
	if (st->nq >= PG_INFLIGHT_MAX)
		return pipe_sync(st);
	return 0;
}

static int
send_sql(struct pg_store *st, const char *sql, int n, const char *const *vals)
{
	return send_stmt(st, NULL, sql, n, vals, NULL, NULL, NULL);
}

/* take_rows - hand each row of r to the statement's handler */
static void
take_rows(struct pg_store *st, struct inflight *f, const PGresult *r, bool *stopped)
{
	for (int i = 0; i < pq.PQntuples(r) && !*stopped; i++)
		if (f->on_row(st, r, i, f->arg) != 0)
			*stopped = true;
}

/*
 * pipe_sync - send a sync and read every result up to it: one round trip.
 * Rows go to their statement's handler (one at a time, single-row mode);
 * the first error is kept.  Leaves pipeline mode.  Returns 0, or -1 if a
 * statement failed (the rest were skipped by the server) or the
 * connection was lost.
 */
static int
pipe_sync(struct pg_store *st)
{
	PGresult *r;
	int rc = 0;

	if (!st->in_pipe)
		return 0;
	if (pq.PQpipelineSync(st->conn) != 1)
		return pipe_lost(st);
	st->round_trips++;
	for (size_t i = 0; i < st->nq; i++) {
		struct inflight *f = &st->q[i];
		bool stopped = false;

		if (f->on_row != NULL)
			(void)pq.PQsetSingleRowMode(st->conn);
		while ((r = wait_result(st)) != NULL) {
			switch (pq.PQresultStatus(r)) {
			case PGRES_SINGLE_TUPLE:
			case PGRES_TUPLES_OK:
				if (f->on_row != NULL)
					take_rows(st, f, r, &stopped);
				break;
			case PGRES_COMMAND_OK:
				if (f->changed != NULL)
					*f->changed = strtoll(pq.PQcmdTuples(r), NULL, 10);
				break;
			case PGRES_PIPELINE_ABORTED:
				rc = -1;   /* an earlier statement's error is kept */
				break;
			default:
				if (rc == 0)
					note_result(st, r);
				rc = -1;
				break;
			}
			pq.PQclear(r);
		}
		if (conn_bad(st))
			return pipe_lost(st);
	}
	st->nq = 0;
	r = wait_result(st);
	if (r == NULL || pq.PQresultStatus(r) != PGRES_PIPELINE_SYNC) {
		pq.PQclear(r);
		return pipe_lost(st);
	}
	pq.PQclear(r);
	if (pq.PQexitPipelineMode(st->conn) != 1)
		return pipe_lost(st);
	st->in_pipe = false;
	return rc;
}

/* ---- open, close, errors ------------------------------------------------ */

static bool
pg_takes(const char *db)
{
	return strncmp(db, "postgresql://", 13) == 0 || strncmp(db, "postgres://", 11) == 0;
}

static int
pg_open(const char *db, bool create, void **out, char *err, size_t errlen)
{
	struct pg_store *st;
	char why[512];

	*out = NULL;
	if (pq_load(why, sizeof(why)) != 0) {
		char *shown = mask_uri(db, NULL, 0);
		snprintf(err, errlen, "%s: %s", shown ? shown : "postgresql://...", why);
		free(shown);
		return -1;
	}
	if ((st = calloc(1, sizeof(*st))) == NULL || (st->uri = strdup(db)) == NULL ||
	    (st->shown = mask_uri(db, st->secret, 2)) == NULL ||
	    (st->node = strdup("")) == NULL) {
		snprintf(err, errlen, "out of memory");
		pg_close(st);
		return -1;
	}
	/* The password as libpq reads it (percent-decoded) is a secret too. */
	{
		PQconninfoOption *opts = pq.PQconninfoParse(db, NULL);
		for (PQconninfoOption *o = opts; o && o->keyword; o++)
			if (strcmp(o->keyword, "password") == 0 && o->val && *o->val)
				st->secret[2] = strdup(o->val);
		pq.PQconninfoFree(opts);
	}
	if (connect_db(st, true, create, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "%s: %s", st->shown, why);
		pg_close(st);
		return -1;
	}
	*out = st;
	return 0;
}

static void
pg_close(void *be)
{
	struct pg_store *st = be;

	if (st == NULL)
		return;
	if (st->conn != NULL)
		pq.PQfinish(st->conn);
	for (size_t i = 0; i < sizeof(st->secret) / sizeof(st->secret[0]); i++)
		free(st->secret[i]);
	free(st->uri);
	free(st->shown);
	free(st->node);
	free(st->snap_events);
	free(st->snap_events_next);
	free(st->snap_bans);
	free(st->own);
	free(st->copy);
	free(st);
}

static int
pg_check_file(const void *be, char *err, size_t errlen)
{
	(void)be; (void)err; (void)errlen;
	return 0;   /* a server: no file to be deleted under us */
}

static const char *
pg_errmsg(const void *be)
{
	const struct pg_store *st = be;

	return st->lasterr[0] ? st->lasterr : "no database error (out of memory?)";
}

static bool
pg_error_is_transient(const void *be)
{
	const struct pg_store *st = be;

	return st->failed && st->transient;
}

static void
pg_clear_error(void *be)
{
	struct pg_store *st = be;

	st->lasterr[0] = '\0';
	st->failed = false;
	st->transient = false;
}

static void
pg_set_stop_flag(void *be, const volatile sig_atomic_t *flag)
{
	struct pg_store *st = be;

	st->stop = flag;
}

static const char *
pg_path(const void *be)
{
	const struct pg_store *st = be;

	return st->shown;
}

static const char *
pg_file(const void *be)
{
	(void)be;
	return NULL;
}

static bool
pg_created(const void *be)
{
	const struct pg_store *st = be;

	return st->created;
}

static uint64_t
pg_round_trips(const void *be)
{
	const struct pg_store *st = be;

	return st->round_trips;
}

/* ---- batches ------------------------------------------------------------ */

static int
pg_begin(void *be)
{
	struct pg_store *st = be;

	pg_clear_error(st);
	if (ensure_conn(st) != 0)
		return -1;
	/* BEGIN goes with the first statement (a COPY cannot be pipelined:
	 * sent alone, BEGIN would cost a round trip of its own). */
	st->in_tx = true;
	st->begun = false;
	st->wrote = false;
	st->ntx_own = 0;
	return 0;
}

static bool
pg_in_transaction(const void *be)
{
	return ((const struct pg_store *)be)->in_tx;
}

static void
fmt_i64(char *buf, int64_t v)
{
	snprintf(buf, PG_NUM, "%" PRId64, v);
}

/* COPY's binary format: big-endian integers, a field is its length (-1:
 * NULL) and its bytes. */
static int
copy_room(struct pg_store *st, size_t more)
{
	size_t cap = st->copycap ? st->copycap : 64 * 1024;
	unsigned char *p;

	if (st->copylen + more <= st->copycap)
		return 0;
	while (cap < st->copylen + more)
		cap *= 2;
	if ((p = realloc(st->copy, cap)) == NULL)
		return -1;
	st->copy = p;
	st->copycap = cap;
	return 0;
}

static void
put_be(struct pg_store *st, uint64_t v, int bytes)
{
	for (int i = bytes - 1; i >= 0; i--)
		st->copy[st->copylen++] = (unsigned char)(v >> (8 * i));
}

/* put_text - "" is stored as NULL, as store_sqlite.c does, unless
 * keep_empty */
static void
put_text(struct pg_store *st, const char *s, bool keep_empty)
{
	size_t n;

	if (!keep_empty && *s == '\0') {
		put_be(st, UINT32_MAX, 4);
		return;
	}
	n = strlen(s);
	put_be(st, (uint32_t)n, 4);
	memcpy(st->copy + st->copylen, s, n);
	st->copylen += n;
}

static void
put_int8(struct pg_store *st, int64_t v)
{
	put_be(st, 8, 4);
	put_be(st, (uint64_t)v, 8);
}

/* buffer_event - ev as one row of the COPY (the header first) */
static int
buffer_event(struct pg_store *st, const struct event *ev)
{
	static const unsigned char header[19] = "PGCOPY\n\377\r\n";   /* + flags, ext */
	size_t need = 2 + 11 * 4 + 16 + strlen(st->node) + strlen(ev->rule) + strlen(ev->type) +
	    strlen(ev->ip) + strlen(ev->user) + strlen(ev->sender) + strlen(ev->qid) +
	    strlen(ev->rcpt) + strlen(ev->newqid) + 19 + 2;

	if (copy_room(st, need) != 0) {
		keep_error(st, false, "out of memory");
		return -1;
	}
	if (st->copylen == 0) {
		memcpy(st->copy, header, sizeof(header));   /* flags and extension 0 */
		st->copylen = sizeof(header);
	}
	put_be(st, 11, 2);
	put_text(st, st->node, true);
	put_int8(st, ev->time);
	put_text(st, ev->rule, true);
	put_text(st, ev->type, true);
	put_text(st, ev->ip, false);
	put_text(st, ev->user, false);
	put_text(st, ev->sender, false);
	put_text(st, ev->qid, false);
	if (ev->nrcpt >= 0)
		put_int8(st, ev->nrcpt);
	else
		put_be(st, UINT32_MAX, 4);
	/* a delivery result's (schema pg/003): NULL for every other row */
	put_text(st, ev->rcpt, false);
	put_text(st, ev->newqid, false);
	st->copyrows++;
	return 0;
}

#define COPY_SQL "COPY events(node, time, rule, event, ip, account, sender, qid, nrcpt," \
	" rcpt, newqid) FROM STDIN (FORMAT binary)"

/* copy_results - read to the end of the COPY's command; until is
 * PGRES_COPY_IN (waiting for data) or 0 (the end) */
static int
copy_results(struct pg_store *st, ExecStatusType until)
{
	PGresult *r;
	int rc = 0;

	while ((r = wait_result(st)) != NULL) {
		ExecStatusType s = pq.PQresultStatus(r);

		if (s == until && until == PGRES_COPY_IN) {
			pq.PQclear(r);
			return rc;
		}
		if (s != PGRES_COMMAND_OK && rc == 0) {
			note_result(st, r);
			rc = -1;
		}
		pq.PQclear(r);
	}
	if (conn_bad(st))
		return pipe_lost(st);
	return until == PGRES_COPY_IN ? -1 : rc;
}

/*
 * flush_events - the buffered rows in one COPY: two round trips (the
 * command, then the data).  A COPY cannot run in pipeline mode, so what
 * is pipelined is synced first; BEGIN, if not sent yet, goes with it.
 */
static int
flush_events(struct pg_store *st)
{
	bool with_begin = st->in_tx && !st->begun;
	int rc;

	if (st->copyrows == 0)
		return 0;
	put_be(st, UINT16_MAX, 2);   /* the trailer: -1 fields */
	st->copyrows = 0;
	if (pipe_sync(st) != 0)
		goto fail;
	if (!pq.PQsendQuery(st->conn, with_begin ? "BEGIN; " COPY_SQL : COPY_SQL)) {
		pipe_lost(st);
		goto fail;
	}
	/* Even if the COPY fails, the transaction is open: ROLLBACK it. */
	if (with_begin)
		st->begun = true;
	st->round_trips++;
	if (copy_results(st, PGRES_COPY_IN) != 0)
		goto fail;
	if (pq.PQputCopyData(st->conn, (const char *)st->copy, (int)st->copylen) != 1 ||
	    pq.PQputCopyEnd(st->conn, NULL) != 1) {
		pipe_lost(st);
		goto fail;
	}
	st->copylen = 0;
	st->round_trips++;
	st->wrote = true;
	rc = copy_results(st, 0);
	return rc;
fail:
	st->copylen = 0;
	return -1;
}

/* send_counts - count rows c[0..n) in one upsert */
static int
send_counts(struct pg_store *st, struct store_count_slot *const *c, size_t n)
{
	const char *vals[1 + PG_COUNT_ROWS * PG_COUNT_COLS];
	char num[PG_COUNT_ROWS][2][PG_NUM];
	char *sql = NULL;
	int rc;

	vals[0] = st->node;
	for (size_t i = 0; i < n; i++) {
		const char **v = &vals[1 + i * PG_COUNT_COLS];
		fmt_i64(num[i][0], c[i]->minute);
		fmt_i64(num[i][1], c[i]->n);
		v[0] = num[i][0];
		v[1] = c[i]->rule;
		v[2] = c[i]->event;
		v[3] = num[i][1];
	}
	if (n < PG_COUNT_ROWS && (sql = rows_sql(COUNTS_HEAD, PG_COUNT_COLS, count_casts,
	    (int)n, COUNTS_TAIL)) == NULL) {
		keep_error(st, false, "out of memory");
		return -1;
	}
	rc = send_stmt(st, sql ? NULL : "counts", sql, 1 + (int)n * PG_COUNT_COLS, vals,
	    NULL, NULL, NULL);
	free(sql);
	return rc;
}

static int
cmp_slot(const void *a, const void *b)
{
	const struct store_count_slot *x = *(struct store_count_slot *const *)a;
	const struct store_count_slot *y = *(struct store_count_slot *const *)b;

	if (x->minute != y->minute)
		return x->minute < y->minute ? -1 : 1;
	return strcmp(x->rule, y->rule);
}

/* flush_counts - the summed counts as upserts.  Slots are keyed by the rule
 * name's address; two addresses of one name would be two rows for one key
 * in a statement, which an upsert refuses: sorted and merged first. */
static int
flush_counts(struct pg_store *st)
{
	struct store_count_slot *all[STORE_COUNT_SLOTS];
	size_t n = 0, m = 0;
	int rc = 0;

	if (st->counts.n == 0)
		return 0;
	for (size_t i = 0; i < STORE_COUNT_SLOTS; i++)
		if (st->counts.slot[i].n != 0)
			all[n++] = &st->counts.slot[i];
	qsort(all, n, sizeof(all[0]), cmp_slot);
	for (size_t i = 0; i < n; i++) {
		if (m > 0 && cmp_slot(&all[m - 1], &all[i]) == 0)
			all[m - 1]->n += all[i]->n;
		else
			all[m++] = all[i];
	}
	for (size_t i = 0; i < m && rc == 0; i += PG_COUNT_ROWS)
		rc = send_counts(st, &all[i], m - i < PG_COUNT_ROWS ? m - i : PG_COUNT_ROWS);
	store_counts_clear(&st->counts);
	return rc;
}

/* flush_pending - send the rows and counts not sent yet */
static int
flush_pending(struct pg_store *st)
{
	if (flush_events(st) != 0) {
		store_counts_clear(&st->counts);   /* the batch is lost: nothing more is sent */
		return -1;
	}
	return flush_counts(st);
}

/* write_now - outside a transaction, what was sent commits at once */
static int
write_now(struct pg_store *st)
{
	if (st->in_tx)
		return 0;
	if (flush_pending(st) != 0)
		return -1;
	return pipe_sync(st);
}

static int
count_event(struct pg_store *st, const struct event *ev)
{
	if (store_counts_add(&st->counts, ev))
		return flush_counts(st);
	return 0;
}

static int
pg_count_event(void *be, const struct event *ev)
{
	struct pg_store *st = be;

	if (!st->in_tx && ensure_conn(st) != 0)
		return -1;
	if (count_event(st, ev) != 0)
		return -1;
	return write_now(st);
}

static int
pg_add_event(void *be, const struct event *ev)
{
	struct pg_store *st = be;

	if (!st->in_tx && ensure_conn(st) != 0)
		return -1;
	if (count_event(st, ev) != 0 || buffer_event(st, ev) != 0)
		return -1;
	if (st->copylen >= PG_COPY_FLUSH && flush_events(st) != 0)
		return -1;
	return write_now(st);
}

/* remember_own - a ban this process wrote: its echo from a poll is skipped */
static int
remember_own(struct pg_store *st, int64_t id)
{
	size_t n = st->nown + st->ntx_own;

	if (!st->claimed)
		return 0;   /* nobody polls: nothing to skip */
	if (n == st->capown) {
		size_t cap = st->capown ? st->capown * 2 : 64;
		int64_t *p;
		if (cap > PG_OWN_BANS_MAX)
			return 0;   /* the echo is applied again: harmless, only work */
		if ((p = realloc(st->own, cap * sizeof(*p))) == NULL)
			return -1;
		st->own = p;
		st->capown = cap;
	}
	st->own[n] = id;
	if (st->in_tx)
		st->ntx_own++;
	else
		st->nown++;
	return 0;
}

/* forget_own - id echoed by a poll: true if it was this process's */
static bool
forget_own(struct pg_store *st, int64_t id)
{
	for (size_t i = 0; i < st->nown; i++) {
		if (st->own[i] == id) {
			st->own[i] = st->own[--st->nown];
			return true;
		}
	}
	return false;
}

static int
send_notify(struct pg_store *st)
{
	const char *vals[1] = { st->node };

	return send_sql(st, "SELECT pg_notify('" PG_CHANNEL "', $1)", 1, vals);
}

static int
pg_commit(void *be)
{
	struct pg_store *st = be;

	if (flush_pending(st) != 0 || (st->wrote && send_notify(st) != 0))
		return -1;
	if (!st->begun) {
		/* Nothing was written: nothing to commit. */
		st->in_tx = false;
		goto done;
	}
	if (send_sql(st, "COMMIT", 0, NULL) != 0 || pipe_sync(st) != 0)
		return -1;
	st->in_tx = false;
done:
	st->nown += st->ntx_own;
	st->ntx_own = 0;
	if (st->snap_events_next != NULL) {
		free(st->snap_events);
		st->snap_events = st->snap_events_next;
		st->snap_events_next = NULL;
	}
	st->logged[0] = '\0';
	return 0;
}

static int
pg_rollback(void *be)
{
	struct pg_store *st = be;
	char msg[sizeof(st->lasterr)];
	bool failed = st->failed, transient = st->transient;
	int rc = 0;

	st->copylen = 0;
	st->copyrows = 0;
	store_counts_clear(&st->counts);
	st->ntx_own = 0;
	free(st->snap_events_next);
	st->snap_events_next = NULL;
	if (!st->in_tx || !st->begun || conn_bad(st)) {
		st->in_tx = false;
		st->begun = false;
		st->nq = 0;
		st->in_pipe = false;
		return 0;
	}
	st->in_tx = false;
	st->begun = false;
	/* The failure that caused the rollback is the one to report. */
	memcpy(msg, st->lasterr, sizeof(msg));
	st->rolling_back = failed;
	if (pipe_sync(st) == 0 || !conn_bad(st)) {
		if (send_sql(st, "ROLLBACK", 0, NULL) != 0 || pipe_sync(st) != 0)
			rc = conn_bad(st) ? 0 : -1;   /* gone: nothing to roll back */
	}
	st->rolling_back = false;
	if (failed) {
		memcpy(st->lasterr, msg, sizeof(msg));
		st->failed = failed;
		st->transient = transient;
	}
	return rc;
}

/* ---- bans ----------------------------------------------------------------- */

struct one_id {
	bool found;
	int64_t id;
};

static int
take_id(struct pg_store *st, const PGresult *r, int row, void *arg)
{
	struct one_id *o = arg;

	(void)st;
	o->found = true;
	o->id = strtoll(pq.PQgetvalue(r, row, 0), NULL, 10);
	return 0;
}

/* The text parameters of one ban (valid until it is sent). */
struct ban_params {
	char level[PG_NUM], start[PG_NUM], end[PG_NUM], actions[32];
	const char *vals[10];
};

static void
ban_params(const struct pg_store *st, const struct verdict *v, struct ban_params *b)
{
	fmt_i64(b->level, v->level);
	fmt_i64(b->start, v->started_at);
	fmt_i64(b->end, v->expires_at);
	store_actions_text(v->actions, b->actions, sizeof(b->actions));
	b->vals[0] = st->node;
	b->vals[1] = v->jail;
	b->vals[2] = v->target;
	b->vals[3] = target_kind_name(v->kind);
	b->vals[4] = b->level;
	b->vals[5] = v->reason;
	b->vals[6] = b->actions;
	b->vals[7] = (v->actions & (ACTION_REJECT | ACTION_DEFER)) && v->reply && *v->reply ?
	    v->reply : NULL;
	b->vals[8] = b->start;
	b->vals[9] = b->end;
}

static int
cmp_lock_order(const void *a, const void *b, void *arg)
{
	const struct verdict *v = arg;
	const struct verdict *x = &v[*(const size_t *)a];
	const struct verdict *y = &v[*(const size_t *)b];
	int c = strcmp(x->jail, y->jail);

	return c ? c : strcmp(x->target, y->target);
}

/*
 * add_bans - v[0..n) in one round trip: every lock first, in one order
 * (jail, then target) that every node follows, so two nodes' batches
 * cannot deadlock on them, then the INSERTs in the verdicts' order.
 * outcome[i]: 0 written (id[i] its row, if id), 1 another's in force.
 */
static int
add_bans(struct pg_store *st, const struct verdict *v, size_t n, int *outcome,
    int64_t *id)
{
	struct ban_params *bp = calloc(n ? n : 1, sizeof(*bp));
	struct one_id *got = calloc(n ? n : 1, sizeof(*got));
	size_t *order = calloc(n ? n : 1, sizeof(*order));
	int rc = -1;

	if (bp == NULL || got == NULL || order == NULL) {
		keep_error(st, false, "out of memory");
		goto out;
	}
	if (!st->in_tx && ensure_conn(st) != 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		ban_params(st, &v[i], &bp[i]);
		order[i] = i;
	}
	qsort_r(order, n, sizeof(order[0]), cmp_lock_order, (void *)v);
	for (size_t k = 0; k < n; k++)
		if (send_stmt(st, "ban_lock", NULL, 2, &bp[order[k]].vals[1], NULL, NULL,
		    NULL) != 0)
			goto out;
	for (size_t i = 0; i < n; i++)
		if (send_stmt(st, "ban_add", NULL, 10, bp[i].vals, take_id, &got[i], NULL) != 0)
			goto out;
	if ((!st->in_tx && send_notify(st) != 0) || pipe_sync(st) != 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		outcome[i] = got[i].found ? 0 : 1;
		if (!got[i].found)
			continue;
		st->wrote = true;
		if (id != NULL)
			id[i] = got[i].id;
		if (remember_own(st, got[i].id) != 0) {
			keep_error(st, false, "out of memory");
			goto out;
		}
	}
	rc = 0;
out:
	free(bp);
	free(got);
	free(order);
	return rc;
}

static int
pg_add_ban(void *be, const struct verdict *v, int64_t *id)
{
	int outcome;

	if (add_bans(be, v, 1, &outcome, id) != 0)
		return -1;
	return outcome;
}

static int
pg_add_bans(void *be, const struct verdict *v, size_t n, int *outcome, int64_t *id)
{
	return add_bans(be, v, n, outcome, id);
}

static int
pg_lift_bans(void *be, const char *jail, const char *target, int64_t now)
{
	struct pg_store *st = be;
	char t[PG_NUM];
	const char *vals[3] = { target, t, jail };
	int64_t changed = 0;

	if (!st->in_tx && ensure_conn(st) != 0)
		return -1;
	fmt_i64(t, now);
	if (send_stmt(st, NULL, "UPDATE bans SET lifted_at = $2::bigint,"
	    " txid = pg_current_xact_id() WHERE target = $1 AND lifted_at IS NULL"
	    " AND expires_at > $2::bigint AND ($3::text IS NULL OR jail = $3)", 3, vals,
	    NULL, NULL, &changed) != 0 ||
	    (!st->in_tx && send_notify(st) != 0) || pipe_sync(st) != 0)
		return -1;
	if (changed > 0)
		st->wrote = true;
	return (int)changed;
}

/* ---- positions and cursors ------------------------------------------------ */

struct position_read {
	struct log_position *out;
	const char *path;
	bool found;
};

static int
take_position(struct pg_store *st, const PGresult *r, int row, void *arg)
{
	struct position_read *p = arg;

	(void)st;
	memset(p->out, 0, sizeof(*p->out));
	snprintf(p->out->path, sizeof(p->out->path), "%s", p->path);
	p->out->inode = (uint64_t)strtoll(pq.PQgetvalue(r, row, 0), NULL, 10);
	p->out->offset = (uint64_t)strtoll(pq.PQgetvalue(r, row, 1), NULL, 10);
	p->out->first_hash = (uint64_t)strtoll(pq.PQgetvalue(r, row, 2), NULL, 10);
	p->found = true;
	return 0;
}

/* read_sync - a read: what was sent before, then this, in one round trip */
static int
read_sync(struct pg_store *st, const char *sql, int n, const char *const *vals,
    row_fn on_row, void *arg)
{
	if (!st->in_tx && ensure_conn(st) != 0)
		return -1;
	if (flush_pending(st) != 0 || send_stmt(st, NULL, sql, n, vals, on_row, arg, NULL) != 0)
		return -1;
	return pipe_sync(st);
}

static int
pg_get_position(void *be, const char *path, struct log_position *out)
{
	struct pg_store *st = be;
	struct position_read p = { out, path, false };
	const char *vals[2] = { st->node, path };

	if (read_sync(st, "SELECT inode, \"offset\", first_hash FROM log_position"
	    " WHERE node = $1 AND path = $2", 2, vals, take_position, &p) != 0)
		return -1;
	return p.found ? 1 : 0;
}

static int
pg_save_position(void *be, const struct log_position *pos)
{
	struct pg_store *st = be;
	char inode[PG_NUM], off[PG_NUM], hash[PG_NUM], now[PG_NUM];
	const char *vals[6] = { st->node, pos->path, inode, off, hash, now };

	if (!st->in_tx && ensure_conn(st) != 0)
		return -1;
	/* The 64-bit hash and inode go in as their two's complement bit pattern. */
	fmt_i64(inode, (int64_t)pos->inode);
	fmt_i64(off, (int64_t)pos->offset);
	fmt_i64(hash, (int64_t)pos->first_hash);
	fmt_i64(now, (int64_t)time(NULL));
	if (send_sql(st, "INSERT INTO log_position(node, path, inode, \"offset\", first_hash,"
	    " updated_at) VALUES ($1, $2, $3::bigint, $4::bigint, $5::bigint, $6::bigint)"
	    " ON CONFLICT (node, path) DO UPDATE SET inode = excluded.inode,"
	    " \"offset\" = excluded.\"offset\", first_hash = excluded.first_hash,"
	    " updated_at = excluded.updated_at", 6, vals) != 0)
		return -1;
	return write_now(st);
}

struct cursor_read {
	char **out;
	bool found;
	bool nomem;
};

static int
take_cursor(struct pg_store *st, const PGresult *r, int row, void *arg)
{
	struct cursor_read *c = arg;

	(void)st;
	if ((*c->out = strdup(pq.PQgetvalue(r, row, 0))) == NULL)
		c->nomem = true;
	else
		c->found = true;
	return 0;
}

static int
pg_get_cursor(void *be, const char *source, char **out)
{
	struct pg_store *st = be;
	struct cursor_read c = { out, false, false };
	const char *vals[2] = { st->node, source };

	*out = NULL;
	if (read_sync(st, "SELECT cursor FROM journal_cursor WHERE node = $1 AND source = $2",
	    2, vals, take_cursor, &c) != 0 || c.nomem) {
		free(*out);
		*out = NULL;
		return -1;
	}
	return c.found ? 1 : 0;
}

static int
pg_save_cursor(void *be, const char *source, const char *cursor)
{
	struct pg_store *st = be;
	char now[PG_NUM];
	const char *vals[4] = { st->node, source, cursor, now };

	if (!st->in_tx && ensure_conn(st) != 0)
		return -1;
	fmt_i64(now, (int64_t)time(NULL));
	if (send_sql(st, "INSERT INTO journal_cursor(node, source, cursor, updated_at)"
	    " VALUES ($1, $2, $3, $4::bigint) ON CONFLICT (node, source) DO UPDATE SET"
	    " cursor = excluded.cursor, updated_at = excluded.updated_at", 4, vals) != 0)
		return -1;
	return write_now(st);
}

/* The user's callback and its first non-zero result, for the readers. */
struct user_cb {
	void *fn;
	void *arg;
	int rc;
};

/* read_each - a read whose rows on_row hands to the user's callback fn
 * (a store.h store_*_cb, cast back by on_row): -1 if the read failed,
 * else the callback's first non-zero result, or 0 */
static int
read_each(struct pg_store *st, const char *sql, int n, const char *const *vals,
    row_fn on_row, void *fn, void *arg)
{
	struct user_cb u = { fn, arg, 0 };

	if (read_sync(st, sql, n, vals, on_row, &u) != 0)
		return -1;
	return u.rc;
}

static int
take_cursor_row(struct pg_store *st, const PGresult *r, int row, void *arg)
{
	struct user_cb *u = arg;
	store_cursor_cb cb = (store_cursor_cb)u->fn;

	(void)st;
	u->rc = cb(u->arg, pq.PQgetvalue(r, row, 0), pq.PQgetvalue(r, row, 1),
	    pq.PQgetvalue(r, row, 2), strtoll(pq.PQgetvalue(r, row, 3), NULL, 10));
	return u->rc;
}

static int
pg_each_cursor(void *be, store_cursor_cb cb, void *arg)
{
	return read_each(be, "SELECT node, source, cursor, updated_at FROM journal_cursor"
	    " ORDER BY node, source", 0, NULL, take_cursor_row, (void *)cb, arg);
}

static int
take_position_row(struct pg_store *st, const PGresult *r, int row, void *arg)
{
	struct user_cb *u = arg;
	store_position_cb cb = (store_position_cb)u->fn;
	struct log_position pos;

	(void)st;
	memset(&pos, 0, sizeof(pos));
	if ((size_t)pq.PQgetlength(r, row, 1) >= sizeof(pos.path))
		return 0;
	snprintf(pos.path, sizeof(pos.path), "%s", pq.PQgetvalue(r, row, 1));
	pos.inode = (uint64_t)strtoll(pq.PQgetvalue(r, row, 2), NULL, 10);
	pos.offset = (uint64_t)strtoll(pq.PQgetvalue(r, row, 3), NULL, 10);
	pos.first_hash = (uint64_t)strtoll(pq.PQgetvalue(r, row, 4), NULL, 10);
	u->rc = cb(u->arg, pq.PQgetvalue(r, row, 0), &pos, strtoll(pq.PQgetvalue(r, row, 5), NULL, 10));
	return u->rc;
}

static int
pg_each_position(void *be, store_position_cb cb, void *arg)
{
	return read_each(be, "SELECT node, path, inode, \"offset\", first_hash, updated_at"
	    " FROM log_position ORDER BY node, path", 0, NULL, take_position_row, (void *)cb, arg);
}

/* ---- reading events and bans ------------------------------------------------ */

/* copy_field - a text column into a fixed buffer; false if it does not fit */
static bool
copy_field(const PGresult *r, int row, int col, char *buf, size_t len)
{
	int n = pq.PQgetlength(r, row, col);

	if (pq.PQgetisnull(r, row, col)) {
		buf[0] = '\0';
		return true;
	}
	if ((size_t)n >= len)
		return false;
	memcpy(buf, pq.PQgetvalue(r, row, col), (size_t)n);
	buf[n] = '\0';
	return true;
}

/* The node comes last: an event of another node names it (store.h), so
 * that its queue ids are joined apart from this node's. */
#define EVENT_COLUMNS "time, rule, event, ip, account, sender, qid, nrcpt, rcpt, newqid," \
	" node"

/* fill_event - columns EVENT_COLUMNS of row into ev, the strings into rule,
 * type and node (RULE_MAX, TYPE_MAX, MJ_NODE_MAX); false if a field does
 * not fit (not written by rules_match: not ours) */
#define RULE_MAX 256
#define TYPE_MAX 64
static bool
fill_event(const struct pg_store *st, const PGresult *r, int row, struct event *ev,
    char *rule, char *type, char *node)
{
	memset(ev, 0, sizeof(*ev));
	ev->time = strtoll(pq.PQgetvalue(r, row, 0), NULL, 10);
	if (!copy_field(r, row, 1, rule, RULE_MAX) ||
	    !copy_field(r, row, 2, type, TYPE_MAX) ||
	    !copy_field(r, row, 3, ev->ip, sizeof(ev->ip)) ||
	    !copy_field(r, row, 4, ev->user, sizeof(ev->user)) ||
	    !copy_field(r, row, 5, ev->sender, sizeof(ev->sender)) ||
	    !copy_field(r, row, 6, ev->qid, sizeof(ev->qid)) ||
	    !copy_field(r, row, 8, ev->rcpt, sizeof(ev->rcpt)) ||
	    !copy_field(r, row, 9, ev->newqid, sizeof(ev->newqid)) ||
	    !copy_field(r, row, 10, node, MJ_NODE_MAX))
		return false;
	ev->rule = rule;
	ev->type = type;
	ev->node = strcmp(node, st->node) == 0 ? NULL : node;
	ev->nrcpt = pq.PQgetisnull(r, row, 7) ? -1 : (long)strtoll(pq.PQgetvalue(r, row, 7), NULL, 10);
	return true;
}

/* take_event_row - columns EVENT_COLUMNS from col 0 to an event */
static int
take_event_row(struct pg_store *st, const PGresult *r, int row, void *arg)
{
	struct user_cb *u = arg;
	store_event_cb cb = (store_event_cb)u->fn;
	struct event ev;
	char rule[RULE_MAX], type[TYPE_MAX], node[MJ_NODE_MAX];

	if (!fill_event(st, r, row, &ev, rule, type, node))
		return 0;   /* cannot come from rules_match; not ours */
	u->rc = cb(u->arg, &ev);
	return u->rc;
}

static int
take_text(struct pg_store *st, const PGresult *r, int row, void *arg)
{
	char **out = arg;

	(void)st;
	free(*out);
	*out = strdup(pq.PQgetvalue(r, row, 0));
	return *out == NULL ? -1 : 0;
}

/* read_snapshot - BEGIN REPEATABLE READ and the transaction's snapshot
 * into *snap (NULL: not wanted), sent; the reads and COMMIT follow */
static int
send_snapshot_tx(struct pg_store *st, char **snap)
{
	if (send_sql(st, "BEGIN ISOLATION LEVEL REPEATABLE READ", 0, NULL) != 0)
		return -1;
	if (snap == NULL)
		return 0;
	return send_stmt(st, NULL, "SELECT pg_current_snapshot()::text", 0, NULL, take_text,
	    snap, NULL);
}

/*
 * pg_each_event_since - the restore's events.  At the first call (no
 * events polled yet), all of them, and the snapshot they were read in is
 * where store_fleet_poll starts.  Later (a rewind after a refused batch),
 * this node's and the events of others that polls had handed over before:
 * the others' later ones come from the next poll, live.
 */
static int
pg_each_event_since(void *be, int64_t since, store_event_cb cb, void *arg)
{
	struct pg_store *st = be;
	struct user_cb u = { (void *)cb, arg, 0 };
	char t[PG_NUM], *snap = NULL;
	const char *vals[3] = { t, st->snap_events, st->node };
	bool first = st->snap_events == NULL && !st->in_tx;
	int rc = -1;

	if (!st->in_tx && ensure_conn(st) != 0)
		return -1;
	fmt_i64(t, since);
	if (flush_pending(st) != 0 || (!st->in_tx && send_snapshot_tx(st, first ? &snap : NULL) != 0))
		goto out;
	if (send_stmt(st, NULL, "SELECT " EVENT_COLUMNS " FROM events WHERE time >= $1::bigint"
	    " AND ($2::pg_snapshot IS NULL OR node = $3"
	    " OR pg_visible_in_snapshot(txid, $2::pg_snapshot)) ORDER BY id", 3, vals,
	    take_event_row, &u, NULL) != 0)
		goto out;
	if (!st->in_tx && send_sql(st, "COMMIT", 0, NULL) != 0)
		goto out;
	if (pipe_sync(st) != 0)
		goto out;
	if (first && snap != NULL) {
		free(st->snap_events);
		st->snap_events = snap;
		snap = NULL;
	}
	rc = u.rc;
out:
	free(snap);
	return rc;
}

#define BAN_COLUMNS "id, node, jail, target, target_kind, level, reason, actions," \
	" reply, started_at, expires_at, coalesce(lifted_at, 0)"

/* fill_ban - BAN_COLUMNS of row into b (pointers into r) */
static void
fill_ban(const PGresult *r, int row, struct stored_ban *b)
{
	b->id = strtoll(pq.PQgetvalue(r, row, 0), NULL, 10);
	b->node = pq.PQgetvalue(r, row, 1);
	b->jail = pq.PQgetvalue(r, row, 2);
	b->target = pq.PQgetvalue(r, row, 3);
	b->target_kind = pq.PQgetvalue(r, row, 4);
	b->level = atoi(pq.PQgetvalue(r, row, 5));
	b->reason = pq.PQgetvalue(r, row, 6);
	b->actions = store_actions_parse(pq.PQgetvalue(r, row, 7));
	b->reply = pq.PQgetisnull(r, row, 8) ? NULL : pq.PQgetvalue(r, row, 8);
	b->started_at = strtoll(pq.PQgetvalue(r, row, 9), NULL, 10);
	b->expires_at = strtoll(pq.PQgetvalue(r, row, 10), NULL, 10);
	b->lifted_at = strtoll(pq.PQgetvalue(r, row, 11), NULL, 10);
}

static int
take_ban_row(struct pg_store *st, const PGresult *r, int row, void *arg)
{
	struct user_cb *u = arg;
	store_ban_cb cb = (store_ban_cb)u->fn;
	struct stored_ban b;

	(void)st;
	fill_ban(r, row, &b);
	u->rc = cb(u->arg, &b);
	return u->rc;
}

static int
read_bans(struct pg_store *st, const char *sql, int n, const char *const *vals,
    store_ban_cb cb, void *arg)
{
	return read_each(st, sql, n, vals, take_ban_row, (void *)cb, arg);
}

/* pg_each_ban_since - the restore's bans, as they are now; the polls go on
 * from the snapshot they were read in (and no echo is awaited any more:
 * what this process wrote is in the restore) */
static int
pg_each_ban_since(void *be, int64_t since, store_ban_cb cb, void *arg)
{
	struct pg_store *st = be;
	struct user_cb u = { (void *)cb, arg, 0 };
	char t[PG_NUM], *snap = NULL;
	const char *vals[1] = { t };
	int rc = -1;

	if (!st->in_tx && ensure_conn(st) != 0)
		return -1;
	fmt_i64(t, since);
	if (flush_pending(st) != 0 || (!st->in_tx && send_snapshot_tx(st, &snap) != 0) ||
	    send_stmt(st, NULL, "SELECT " BAN_COLUMNS " FROM bans WHERE started_at >= $1::bigint"
	    " ORDER BY started_at, id", 1, vals, take_ban_row, &u, NULL) != 0 ||
	    (!st->in_tx && send_sql(st, "COMMIT", 0, NULL) != 0) || pipe_sync(st) != 0)
		goto out;
	if (snap != NULL) {
		free(st->snap_bans);
		st->snap_bans = snap;
		snap = NULL;
		st->nown = 0;
	}
	rc = u.rc;
out:
	free(snap);
	return rc;
}

static int
pg_each_active_ban(void *be, int64_t now, store_ban_cb cb, void *arg)
{
	char t[PG_NUM];
	const char *vals[1] = { t };

	fmt_i64(t, now);
	return read_bans(be, "SELECT " BAN_COLUMNS " FROM bans WHERE lifted_at IS NULL"
	    " AND expires_at > $1::bigint ORDER BY started_at, id", 1, vals, cb, arg);
}

static int
pg_each_ban(void *be, const struct ban_filter *f, store_ban_cb cb, void *arg)
{
	char t[PG_NUM];
	const char *vals[4] = { f->jail, f->target, f->active_only ? "1" : "0", t };

	fmt_i64(t, f->now);
	return read_bans(be, "SELECT " BAN_COLUMNS " FROM bans"
	    " WHERE ($1::text IS NULL OR jail = $1) AND ($2::text IS NULL OR target = $2)"
	    " AND ($3::integer = 0 OR (lifted_at IS NULL AND expires_at > $4::bigint))"
	    " ORDER BY started_at DESC, id DESC", 4, vals, cb, arg);
}

static int
take_count_row(struct pg_store *st, const PGresult *r, int row, void *arg)
{
	struct user_cb *u = arg;
	store_count_cb cb = (store_count_cb)u->fn;

	(void)st;
	u->rc = cb(u->arg, pq.PQgetvalue(r, row, 0), strtoll(pq.PQgetvalue(r, row, 1), NULL, 10));
	return u->rc;
}

static int
pg_event_counts_since(void *be, int64_t since, store_count_cb cb, void *arg)
{
	char m[PG_NUM];
	const char *vals[1] = { m };

	/* the minute holding since counts whole: at most 59 s more */
	fmt_i64(m, store_minute_of(since));
	return read_each(be, "SELECT event, sum(n) FROM event_counts WHERE minute >= $1::bigint"
	    " GROUP BY event ORDER BY event", 1, vals, take_count_row, (void *)cb, arg);
}

struct qids_read {
	char (*qids)[MJ_QID_MAX];
	size_t max, n;
};

static int
take_qid(struct pg_store *st, const PGresult *r, int row, void *arg)
{
	struct qids_read *q = arg;

	(void)st;
	if (q->n < q->max && copy_field(r, row, 0, q->qids[q->n], MJ_QID_MAX))
		q->n++;
	return 0;
}

/* pg_account_qids - this node's: held mail is in this node's queue */
static int
pg_account_qids(void *be, const char *account, char (*qids)[MJ_QID_MAX], size_t max)
{
	struct pg_store *st = be;
	struct qids_read q = { qids, max, 0 };
	char lim[PG_NUM];
	const char *vals[3] = { st->node, account, lim };

	fmt_i64(lim, (int64_t)max);
	if (read_sync(st, "SELECT qid FROM events WHERE node = $1 AND event = 'submission'"
	    " AND account = $2 AND qid IS NOT NULL ORDER BY time DESC, id DESC"
	    " LIMIT $3::bigint", 3, vals, take_qid, &q) != 0)
		return -1;
	return (int)q.n;
}

static int
take_i64(struct pg_store *st, const PGresult *r, int row, void *arg)
{
	(void)st;
	*(int64_t *)arg = strtoll(pq.PQgetvalue(r, row, 0), NULL, 10);
	return 0;
}

static int
pg_newest_time(void *be, int64_t *out)
{
	*out = 0;
	return read_sync(be, "SELECT greatest(coalesce((SELECT max(time) FROM events), 0),"
	    " coalesce((SELECT max(started_at) FROM bans), 0))", 0, NULL, take_i64, out);
}

static int
pg_purge_events(void *be, int64_t before)
{
	struct pg_store *st = be;
	char t[PG_NUM], m[PG_NUM];
	const char *v1[1] = { t }, *v2[1] = { m };

	if (!st->in_tx && ensure_conn(st) != 0)
		return -1;
	fmt_i64(t, before);
	fmt_i64(m, store_minute_of(before));
	if (flush_pending(st) != 0 ||
	    send_sql(st, "DELETE FROM events WHERE time < $1::bigint", 1, v1) != 0 ||
	    send_sql(st, "DELETE FROM event_counts WHERE minute < $1::bigint", 1, v2) != 0)
		return -1;
	return st->in_tx ? 0 : pipe_sync(st);
}

/*
 * pg_each_event_about - store_each_event_about (explain): the SQLite
 * query's shape, with the queued lines joined on (node, qid) (queue ids
 * are unique per host only).  An operator command: one round trip.
 */
static int
pg_each_event_about(void *be, const struct event_about *about, store_event_cb cb,
    void *arg)
{
	char since[PG_NUM];
	const char *vals[4] = { about->ip, about->account, about->domain, since };

	fmt_i64(since, about->since);
	return read_each(be, "WITH q AS (SELECT DISTINCT ON (node, qid) node, qid, sender,"
	    " nrcpt FROM events WHERE event = 'queued' AND qid IS NOT NULL"
	    " AND time >= $4::bigint ORDER BY node, qid, id)"
	    " SELECT e.time, e.rule, e.event, e.ip, e.account,"
	    " coalesce(e.sender, q.sender), e.qid, coalesce(e.nrcpt, q.nrcpt), e.rcpt,"
	    " e.newqid, e.node"
	    " FROM events e LEFT JOIN q ON e.event = 'submission' AND q.node = e.node"
	    " AND q.qid = e.qid WHERE e.time >= $4::bigint AND ("
	    " ($1::text IS NOT NULL AND e.ip = $1)"
	    " OR ($2::text IS NOT NULL AND (e.account = $2 OR coalesce(e.sender, q.sender) = $2"
	    " OR e.event IN ('remote_reject', 'remote_listed', 'requeued')))"
	    " OR ($3::text IS NOT NULL AND (lower(right(e.account, char_length($3) + 1))"
	    " = '@' || lower($3) OR lower(right(coalesce(e.sender, q.sender),"
	    " char_length($3) + 1)) = '@' || lower($3)))"
	    " OR ($1::text IS NULL AND $2::text IS NULL AND $3::text IS NULL"
	    " AND e.ip IS NOT NULL)) ORDER BY e.id", 4, vals, take_event_row, (void *)cb, arg);
}

/* ---- the fleet ------------------------------------------------------------ */

static int
pg_set_node(void *be, const char *node)
{
	struct pg_store *st = be;
	char *n = strdup(node);

	if (n == NULL) {
		keep_error(st, false, "out of memory");
		return -1;
	}
	free(st->node);
	st->node = n;
	return 0;
}

#define NODE_LOCK "hashtextextended('mailjail node ' || $1, 0)"
/* How long "run" waits for another holder of its node name to let go. */
#define NODE_WAIT_SECS 5

/* is_mailjail - does process pid on this host run mailjail? */
static bool
is_mailjail(long pid)
{
	char path[64], comm[32] = "";
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
	if ((fp = fopen(path, "re")) == NULL)
		return false;
	if (fgets(comm, sizeof(comm), fp) == NULL)
		comm[0] = '\0';
	fclose(fp);
	return strncmp(comm, "mailjail", 8) == 0;
}

/*
 * try_node - take the node's advisory lock (held by the session: it goes
 * with the process or its connection).  1 taken, 0 held by another
 * session, -1 error.  A holder that is this host's and no mailjail now
 * (a crash), or this very process (a session the server has not noticed
 * is gone, over TCP), is a stale session: it is ended, and the next try
 * may succeed.  *holder says who holds it.
 */
static int
try_node(struct pg_store *st, const char *host, char *holder, size_t hlen, char *err,
    size_t errlen)
{
	const char *vals[1] = { st->node };
	PGresult *r;
	bool got, stale;
	long pid;

	if ((r = exec_setup(st, "SELECT pg_try_advisory_lock(" NODE_LOCK ")", 1, vals, err,
	    errlen)) == NULL)
		return -1;
	got = strcmp(pq.PQgetvalue(r, 0, 0), "t") == 0;
	pq.PQclear(r);
	if (got)
		return 1;
	snprintf(holder, hlen, "another process");
	if ((r = exec_setup(st, "SELECT host, pid, mailjail_iso(last_seen) FROM nodes"
	    " WHERE name = $1", 1, vals, err, errlen)) == NULL)
		return -1;
	if (pq.PQntuples(r) != 1) {
		pq.PQclear(r);
		return 0;
	}
	pid = strtol(pq.PQgetvalue(r, 0, 1), NULL, 10);
	snprintf(holder, hlen, "pid %ld on host %s, last seen %s", pid, pq.PQgetvalue(r, 0, 0),
	    pq.PQgetvalue(r, 0, 2));
	stale = strcmp(pq.PQgetvalue(r, 0, 0), host) == 0 && (pid == (long)getpid() ||
	    !is_mailjail(pid));
	pq.PQclear(r);
	if (stale && (r = exec_setup(st, "SELECT pg_terminate_backend(l.pid) FROM pg_locks l"
	    " WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted"
	    " AND l.pid <> pg_backend_pid()"
	    " AND l.classid::bigint = ((" NODE_LOCK " >> 32) & 4294967295)"
	    " AND l.objid::bigint = (" NODE_LOCK " & 4294967295)", 1, vals, err,
	    errlen)) != NULL)
		pq.PQclear(r);
	return 0;
}

/* take_node - the node's lock (waiting up to wait_secs for a holder to let
 * go), then its row in nodes */
static int
take_node(struct pg_store *st, int wait_secs, char *err, size_t errlen)
{
	char host[256], pid[PG_NUM], now[PG_NUM], holder[400];
	const char *vals[4] = { st->node, host, pid, now };
	PGresult *r;
	int got;

	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "?");
	host[sizeof(host) - 1] = '\0';
	for (int tries = 0; ; tries++) {
		if ((got = try_node(st, host, holder, sizeof(holder), err, errlen)) < 0)
			return -1;
		if (got)
			break;
		if (tries >= wait_secs * 2 || (st->stop != NULL && *st->stop)) {
			snprintf(err, errlen, "node %s is already running (%s): each node of a "
			    "fleet needs a name of its own ([mailjail] node)", st->node, holder);
			return -1;
		}
		if (tries == 0)
			log_info("database %s: node %s is held by %s; waiting up to %d s for it "
			    "to let go", st->shown, st->node, holder, wait_secs);
		usleep(500 * 1000);
	}
	fmt_i64(pid, (int64_t)getpid());
	fmt_i64(now, (int64_t)time(NULL));
	if ((r = exec_setup(st, "INSERT INTO nodes(name, host, pid, started_at, last_seen)"
	    " VALUES ($1, $2, $3::integer, $4::bigint, $4::bigint) ON CONFLICT (name) DO"
	    " UPDATE SET host = excluded.host, pid = excluded.pid,"
	    " started_at = excluded.started_at, last_seen = excluded.last_seen", 4, vals,
	    err, errlen)) == NULL)
		return -1;
	pq.PQclear(r);
	st->last_heartbeat = time(NULL);
	return 0;
}

static int
pg_claim_node(void *be, char *err, size_t errlen)
{
	struct pg_store *st = be;

	if (ensure_conn(st) != 0) {
		snprintf(err, errlen, "%s", st->lasterr);
		return -1;
	}
	if (take_node(st, NODE_WAIT_SECS, err, errlen) != 0) {
		keep_error(st, false, "%s", err);
		return -1;
	}
	st->claimed = true;
	return 0;
}

static int
pg_fd(const void *be)
{
	const struct pg_store *st = be;

	return conn_bad(st) ? -1 : pq.PQsocket(st->conn);
}

static int
pg_fleet_wake(void *be)
{
	struct pg_store *st = be;
	PGnotify *n;
	int news = 0;

	if (conn_bad(st))
		return 1;
	if (!pq.PQconsumeInput(st->conn))
		return 1;   /* the poll will say what is wrong */
	while ((n = pq.PQnotifies(st->conn)) != NULL) {
		if (n->be_pid != pq.PQbackendPID(st->conn))
			news = 1;
		pq.PQfreemem(n);
	}
	return news;
}

/* The bans a poll reads, copied (the callbacks run after the round trip:
 * they may use the store). */
struct polled_ban {
	struct stored_ban b;
	char *text;                /* node, jail, target, kind, reason, reply */
};

struct polled_bans {
	struct polled_ban *p;
	size_t n, cap;
	bool nomem;
};

static int
keep_polled_ban(struct pg_store *st, const PGresult *r, int row, void *arg)
{
	struct polled_bans *p = arg;
	struct polled_ban *pb;
	struct stored_ban b;
	const char *f[6];
	size_t len = 0, off = 0;

	fill_ban(r, row, &b);
	/* This process's own new ban: the pipeline has it already. */
	if (b.lifted_at == 0 && forget_own(st, b.id))
		return 0;
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 16;
		struct polled_ban *np = realloc(p->p, cap * sizeof(*np));
		if (np == NULL) {
			p->nomem = true;
			return 1;
		}
		p->p = np;
		p->cap = cap;
	}
	f[0] = b.node; f[1] = b.jail; f[2] = b.target; f[3] = b.target_kind;
	f[4] = b.reason; f[5] = b.reply ? b.reply : "";
	for (int i = 0; i < 6; i++)
		len += strlen(f[i]) + 1;
	pb = &p->p[p->n];
	if ((pb->text = malloc(len)) == NULL) {
		p->nomem = true;
		return 1;
	}
	pb->b = b;
	for (int i = 0; i < 6; i++) {
		size_t n = strlen(f[i]) + 1;
		memcpy(pb->text + off, f[i], n);
		f[i] = pb->text + off;
		off += n;
	}
	pb->b.node = f[0]; pb->b.jail = f[1]; pb->b.target = f[2];
	pb->b.target_kind = f[3]; pb->b.reason = f[4];
	pb->b.reply = b.reply ? f[5] : NULL;
	p->n++;
	return 0;
}

/* The events a poll reads, kept until the bans are handed over (both come
 * in one round trip, bans first). */
struct polled_event {
	struct event ev;
	char rule[RULE_MAX], type[TYPE_MAX], node[MJ_NODE_MAX];
};

struct polled_events {
	struct polled_event *p;
	size_t n, cap;
	bool nomem;
};

static int
keep_polled_event(struct pg_store *st, const PGresult *r, int row, void *arg)
{
	struct polled_events *p = arg;
	struct polled_event *pe;

	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 64;
		struct polled_event *np = realloc(p->p, cap * sizeof(*np));
		if (np == NULL) {
			p->nomem = true;
			return 1;
		}
		p->p = np;
		p->cap = cap;
	}
	pe = &p->p[p->n];
	if (!fill_event(st, r, row, &pe->ev, pe->rule, pe->type, pe->node))
		return 0;
	p->n++;
	return 0;
}

/*
 * pg_fleet_poll - in one REPEATABLE READ transaction (one round trip): the
 * heartbeat when due, the snapshot, the bans and the other nodes' events
 * written since the last poll.  Bans are handed over and count as seen at
 * once; the events are counted in the caller's batch and count as seen
 * when it commits (snap_events_next).
 */
static int
pg_fleet_poll(void *be, store_ban_cb ban_cb, store_event_cb event_cb, void *arg)
{
	struct pg_store *st = be;
	struct polled_bans pb = { NULL, 0, 0, false };
	struct polled_events pe = { NULL, 0, 0, false };
	char *snap = NULL, now[PG_NUM];
	const char *hb[2] = { st->node, now };
	const char *vb[1] = { st->snap_bans }, *ve[2] = { st->snap_events, st->node };
	time_t t = time(NULL);
	bool beat = st->claimed && t - st->last_heartbeat >= PG_HEARTBEAT_SECS;
	int rc = -1;

	if (st->in_tx) {
		keep_error(st, false, "internal error: fleet poll inside a batch");
		return -1;
	}
	if (ensure_conn(st) != 0)
		return -1;
	fmt_i64(now, (int64_t)t);
	if (send_snapshot_tx(st, &snap) != 0)
		goto out;
	if (beat && send_sql(st, "UPDATE nodes SET last_seen = $2::bigint WHERE name = $1",
	    2, hb) != 0)
		goto out;
	if (st->snap_bans != NULL && send_stmt(st, NULL, "SELECT " BAN_COLUMNS " FROM bans"
	    " WHERE txid >= pg_snapshot_xmin($1::pg_snapshot)"
	    " AND NOT pg_visible_in_snapshot(txid, $1::pg_snapshot) ORDER BY id", 1, vb,
	    keep_polled_ban, &pb, NULL) != 0)
		goto out;
	if (st->snap_events != NULL && send_stmt(st, NULL, "SELECT " EVENT_COLUMNS
	    " FROM events WHERE txid >= pg_snapshot_xmin($1::pg_snapshot)"
	    " AND NOT pg_visible_in_snapshot(txid, $1::pg_snapshot) AND node <> $2"
	    " ORDER BY id", 2, ve, keep_polled_event, &pe, NULL) != 0)
		goto out;
	if (send_sql(st, "COMMIT", 0, NULL) != 0 || pipe_sync(st) != 0)
		goto out;
	if (pb.nomem || pe.nomem || snap == NULL) {
		keep_error(st, false, "out of memory");
		goto out;
	}
	if (beat)
		st->last_heartbeat = t;
	/* Bans: seen, whatever the callback makes of them. */
	free(st->snap_bans);
	st->snap_bans = snap;
	snap = NULL;
	/* Events: seen when the batch they are counted in commits; at once
	 * if there are none, or if no restore started the events yet. */
	if (st->snap_events == NULL || pe.n == 0) {
		free(st->snap_events);
		st->snap_events = strdup(st->snap_bans);
	} else {
		free(st->snap_events_next);
		st->snap_events_next = strdup(st->snap_bans);
	}
	if (st->snap_events == NULL || (pe.n > 0 && st->snap_events_next == NULL)) {
		keep_error(st, false, "out of memory");
		goto out;
	}
	rc = 0;
	for (size_t i = 0; i < pb.n && rc == 0; i++)
		rc = ban_cb(arg, &pb.p[i].b);
	for (size_t i = 0; i < pe.n && rc == 0; i++) {
		/* the array moved as it grew: point into it again */
		pe.p[i].ev.rule = pe.p[i].rule;
		pe.p[i].ev.type = pe.p[i].type;
		pe.p[i].ev.node = pe.p[i].node;   /* always another node's */
		rc = event_cb(arg, &pe.p[i].ev);
	}
out:
	free(snap);
	for (size_t i = 0; i < pb.n; i++)
		free(pb.p[i].text);
	free(pb.p);
	free(pe.p);
	return rc;
}

static int
take_node_row(struct pg_store *st, const PGresult *r, int row, void *arg)
{
	struct user_cb *u = arg;
	store_node_cb cb = (store_node_cb)u->fn;
	struct store_node n;

	(void)st;
	n.name = pq.PQgetvalue(r, row, 0);
	n.host = pq.PQgetvalue(r, row, 1);
	n.pid = strtol(pq.PQgetvalue(r, row, 2), NULL, 10);
	n.started_at = strtoll(pq.PQgetvalue(r, row, 3), NULL, 10);
	n.last_seen = strtoll(pq.PQgetvalue(r, row, 4), NULL, 10);
	n.running = strcmp(pq.PQgetvalue(r, row, 5), "t") == 0;
	u->rc = cb(u->arg, &n);
	return u->rc;
}

/* pg_each_node - running: its node lock is held now (pg_locks shows a
 * bigint advisory key as classid = high 32 bits, objid = low, objsubid 1) */
static int
pg_each_node(void *be, store_node_cb cb, void *arg)
{
	return read_each(be, "SELECT n.name, n.host, n.pid, n.started_at, n.last_seen,"
	    " EXISTS (SELECT 1 FROM pg_locks l, (SELECT hashtextextended('mailjail node '"
	    " || n.name, 0) AS k) h WHERE l.locktype = 'advisory' AND l.granted"
	    " AND l.objsubid = 1 AND l.database = (SELECT oid FROM pg_database"
	    " WHERE datname = current_database())"
	    " AND l.classid::bigint = ((h.k >> 32) & 4294967295)"
	    " AND l.objid::bigint = (h.k & 4294967295))"
	    " FROM nodes n ORDER BY n.name", 0, NULL, take_node_row, (void *)cb, arg);
}

/* ---- operator signals ------------------------------------------------------
 * The outbox, the evidence of an account verdict, the bans in force per
 * jail, the saved metric counters (schemas/pg/002-signals.sql; the
 * contracts are in store_backend.h).  Each node queues, reads and marks its
 * own notifications (node = st->node), so two nodes never send the same
 * one; the evidence and the bans in force are the fleet's, as the jails
 * and the enforcement are.  Reads are one round trip; the writes ride the
 * pipeline like the batch's (write_now outside a transaction).
 */

#define NOTE_COLUMNS "id, event, digest, coalesce(ban_id, 0), jail, target, target_kind," \
	" level, reason, started_at, expires_at, evidence_key, evidence_window, node," \
	" created_at, done, attempts, due_at"

static int
pg_queue_notification(void *be, const struct stored_notification *n, int64_t *id)
{
	struct pg_store *st = be;
	char digest[PG_NUM], ban[PG_NUM], level[PG_NUM], start[PG_NUM], end[PG_NUM],
	    window[PG_NUM], created[PG_NUM];
	const char *vals[14] = { st->node, n->event, digest, n->ban_id > 0 ? ban : NULL,
		n->jail, n->target, n->target_kind, level, n->reason, start, end,
		n->evidence_key && *n->evidence_key ? n->evidence_key : NULL, window, created };
	static const char sql[] = "INSERT INTO notifications(node, event, digest, ban_id,"
	    " jail, target, target_kind, level, reason, started_at, expires_at,"
	    " evidence_key, evidence_window, created_at, due_at) VALUES ($1, $2,"
	    " $3::integer, $4::bigint, $5, $6, $7, $8::integer, $9, $10::bigint,"
	    " $11::bigint, $12, $13::bigint, $14::bigint, $14::bigint) RETURNING id";
	struct one_id got = { false, 0 };

	if (!st->in_tx && ensure_conn(st) != 0)
		return -1;
	fmt_i64(digest, n->digest ? 1 : 0);
	fmt_i64(ban, n->ban_id);
	fmt_i64(level, n->level);
	fmt_i64(start, n->started_at);
	fmt_i64(end, n->expires_at);
	fmt_i64(window, n->evidence_window);
	fmt_i64(created, n->created_at);
	if (id == NULL) {
		/* Sent with the batch (the verdict's transaction). */
		if (send_sql(st, sql, 14, vals) != 0)
			return -1;
		return write_now(st);
	}
	if (read_sync(st, sql, 14, vals, take_id, &got) != 0)
		return -1;
	*id = got.id;
	return 0;
}

static int
take_note_row(struct pg_store *st, const PGresult *r, int row, void *arg)
{
	struct user_cb *u = arg;
	store_notification_cb cb = (store_notification_cb)u->fn;
	struct stored_notification n;

	(void)st;
	memset(&n, 0, sizeof(n));
	n.id = strtoll(pq.PQgetvalue(r, row, 0), NULL, 10);
	n.event = pq.PQgetvalue(r, row, 1);
	n.digest = atoi(pq.PQgetvalue(r, row, 2)) != 0;
	n.ban_id = strtoll(pq.PQgetvalue(r, row, 3), NULL, 10);
	n.jail = pq.PQgetvalue(r, row, 4);
	n.target = pq.PQgetvalue(r, row, 5);
	n.target_kind = pq.PQgetvalue(r, row, 6);
	n.level = atoi(pq.PQgetvalue(r, row, 7));
	n.reason = pq.PQgetvalue(r, row, 8);
	n.started_at = strtoll(pq.PQgetvalue(r, row, 9), NULL, 10);
	n.expires_at = strtoll(pq.PQgetvalue(r, row, 10), NULL, 10);
	n.evidence_key = pq.PQgetisnull(r, row, 11) ? NULL : pq.PQgetvalue(r, row, 11);
	n.evidence_window = strtoll(pq.PQgetvalue(r, row, 12), NULL, 10);
	n.node = pq.PQgetvalue(r, row, 13);
	n.created_at = strtoll(pq.PQgetvalue(r, row, 14), NULL, 10);
	n.done = (unsigned)atoi(pq.PQgetvalue(r, row, 15));
	n.attempts = atoi(pq.PQgetvalue(r, row, 16));
	n.due_at = strtoll(pq.PQgetvalue(r, row, 17), NULL, 10);
	u->rc = cb(u->arg, &n);
	return u->rc;
}

static int
pg_each_open_notification(void *be, size_t max, store_notification_cb cb, void *arg)
{
	struct pg_store *st = be;
	char lim[PG_NUM];
	const char *vals[2] = { st->node, lim };

	fmt_i64(lim, (int64_t)max);
	return read_each(st, "SELECT " NOTE_COLUMNS " FROM notifications WHERE node = $1"
	    " AND sent_at IS NULL AND gave_up_at IS NULL ORDER BY id LIMIT $2::bigint",
	    2, vals, take_note_row, (void *)cb, arg);
}

static int
pg_count_open_notifications(void *be, int64_t *out)
{
	struct pg_store *st = be;
	const char *vals[1] = { st->node };

	*out = 0;
	return read_sync(st, "SELECT count(*) FROM notifications WHERE node = $1"
	    " AND sent_at IS NULL AND gave_up_at IS NULL", 1, vals, take_i64, out);
}

/* note_write - one statement on a notification row, committed at once
 * outside a transaction */
static int
note_write(struct pg_store *st, const char *sql, int n, const char *const *vals)
{
	if (!st->in_tx && ensure_conn(st) != 0)
		return -1;
	if (send_sql(st, sql, n, vals) != 0)
		return -1;
	return write_now(st);
}

static int
pg_notification_delivered(void *be, int64_t id, unsigned channel, unsigned all,
    int64_t now)
{
	char i[PG_NUM], c[PG_NUM], a[PG_NUM], t[PG_NUM];
	const char *vals[4] = { i, c, a, t };

	fmt_i64(i, id);
	fmt_i64(c, (int64_t)channel);
	fmt_i64(a, (int64_t)all);
	fmt_i64(t, now);
	return note_write(be, "UPDATE notifications SET done = done | $2::integer,"
	    " sent_at = CASE WHEN ((done | $2::integer) & $3::integer) = $3::integer"
	    " THEN $4::bigint ELSE sent_at END WHERE id = $1::bigint", 4, vals);
}

/* mark_failed - one failed attempt more: sql ($1 id, $2 t, $3 error) sets
 * due_at (a retry) or gave_up_at to t */
static int
mark_failed(void *be, const char *sql, int64_t id, int64_t t, const char *error)
{
	char i[PG_NUM], tt[PG_NUM];
	const char *vals[3] = { i, tt, error && *error ? error : NULL };

	fmt_i64(i, id);
	fmt_i64(tt, t);
	return note_write(be, sql, 3, vals);
}

static int
pg_notification_retry(void *be, int64_t id, int64_t due_at, const char *error)
{
	return mark_failed(be, "UPDATE notifications SET attempts = attempts + 1,"
	    " due_at = $2::bigint, last_error = $3 WHERE id = $1::bigint", id, due_at, error);
}

static int
pg_notification_gave_up(void *be, int64_t id, int64_t now, const char *error)
{
	return mark_failed(be, "UPDATE notifications SET attempts = attempts + 1,"
	    " gave_up_at = $2::bigint, last_error = $3 WHERE id = $1::bigint", id, now, error);
}

struct evidence_read {
	struct store_evidence *out;
	bool rcpt_known;
};

static int
take_evidence_row(struct pg_store *st, const PGresult *r, int row, void *arg)
{
	struct evidence_read *e = arg;
	bool null_ip = pq.PQgetisnull(r, row, 0);

	(void)st;
	store_evidence_add(e->out, &e->rcpt_known, pq.PQgetvalue(r, row, 0),
	    null_ip ? 0 : (size_t)pq.PQgetlength(r, row, 0),
	    strtoll(pq.PQgetvalue(r, row, 1), NULL, 10),
	    strtoll(pq.PQgetvalue(r, row, 2), NULL, 10),
	    strtoll(pq.PQgetvalue(r, row, 3), NULL, 10));
	return 0;
}

/* pg_submission_evidence - the SQLite query's shape over the fleet's
 * events, the queued line joined on (node, qid) */
static int
pg_submission_evidence(void *be, const char *key, const char *target, int64_t since,
    int64_t until, struct store_evidence *out)
{
	struct evidence_read e = { out, false };
	char s[PG_NUM], u[PG_NUM];
	const char *vals[4] = { key, target, s, u };

	memset(out, 0, sizeof(*out));
	fmt_i64(s, since);
	fmt_i64(u, until);
	if (read_sync(be, "SELECT s.ip, count(*), coalesce(sum(q.nrcpt), 0), count(q.nrcpt)"
	    " FROM events s LEFT JOIN events q ON q.node = s.node AND q.qid = s.qid"
	    " AND q.event = 'queued'"
	    " WHERE s.event = 'submission' AND s.time > $3::bigint AND s.time <= $4::bigint"
	    " AND CASE $1::text"
	    " WHEN 'account' THEN s.account = $2"
	    " WHEN 'sender' THEN q.sender = $2"
	    " ELSE lower(right(coalesce(s.account, ''), length($2) + 1)) = '@' || $2"
	    "  OR lower(right(coalesce(q.sender, ''), length($2) + 1)) = '@' || $2 END"
	    " GROUP BY s.ip ORDER BY 2 DESC, s.ip", 4, vals, take_evidence_row, &e) != 0)
		return -1;
	if (!e.rcpt_known)
		out->recipients = -1;
	return 0;
}

static int
take_active_row(struct pg_store *st, const PGresult *r, int row, void *arg)
{
	struct user_cb *u = arg;
	store_active_cb cb = (store_active_cb)u->fn;

	(void)st;
	u->rc = cb(u->arg, pq.PQgetvalue(r, row, 0), pq.PQgetvalue(r, row, 1),
	    strtoll(pq.PQgetvalue(r, row, 2), NULL, 10));
	return u->rc;
}

static int
pg_count_active(void *be, int64_t now, store_active_cb cb, void *arg)
{
	char t[PG_NUM];
	const char *vals[1] = { t };

	fmt_i64(t, now);
	return read_each(be, "SELECT jail, target_kind, count(*) FROM bans WHERE lifted_at IS NULL"
	    " AND expires_at > $1::bigint GROUP BY jail, target_kind ORDER BY jail, target_kind",
	    1, vals, take_active_row, (void *)cb, arg);
}

static int
take_counter_row(struct pg_store *st, const PGresult *r, int row, void *arg)
{
	struct user_cb *u = arg;
	store_counter_cb cb = (store_counter_cb)u->fn;

	(void)st;
	u->rc = cb(u->arg, pq.PQgetvalue(r, row, 0), pq.PQgetvalue(r, row, 1),
	    strtod(pq.PQgetvalue(r, row, 2), NULL));
	return u->rc;
}

static int
pg_each_counter(void *be, const char *node, store_counter_cb cb, void *arg)
{
	const char *vals[1] = { node };

	return read_each(be, "SELECT name, labels, value FROM metric_counters WHERE node = $1"
	    " ORDER BY name, labels", 1, vals, take_counter_row, (void *)cb, arg);
}

static int
pg_save_counter(void *be, const char *node, const char *name, const char *labels,
    double value)
{
	struct pg_store *st = be;
	char v[40];
	const char *vals[4] = { node, name, labels, v };

	if (!st->in_tx && ensure_conn(st) != 0)
		return -1;
	/* %.17g: a double read back as the same double. */
	snprintf(v, sizeof(v), "%.17g", value);
	if (send_sql(st, "INSERT INTO metric_counters(node, name, labels, value)"
	    " VALUES ($1, $2, $3, $4::double precision) ON CONFLICT (node, name, labels)"
	    " DO UPDATE SET value = excluded.value", 4, vals) != 0)
		return -1;
	return write_now(st);
}

const struct store_backend store_backend_pgsql = {
	.name = "pgsql",
	.takes = pg_takes,
	.open = pg_open,
	.close = pg_close,
	.check_file = pg_check_file,
	.errmsg = pg_errmsg,
	.error_is_transient = pg_error_is_transient,
	.clear_error = pg_clear_error,
	.set_stop_flag = pg_set_stop_flag,
	.path = pg_path,
	.file = pg_file,
	.created = pg_created,
	.round_trips = pg_round_trips,
	.begin = pg_begin,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.in_transaction = pg_in_transaction,
	.add_event = pg_add_event,
	.count_event = pg_count_event,
	.add_ban = pg_add_ban,
	.add_bans = pg_add_bans,
	.lift_bans = pg_lift_bans,
	.get_position = pg_get_position,
	.save_position = pg_save_position,
	.get_cursor = pg_get_cursor,
	.save_cursor = pg_save_cursor,
	.each_cursor = pg_each_cursor,
	.each_event_since = pg_each_event_since,
	.each_ban_since = pg_each_ban_since,
	.each_active_ban = pg_each_active_ban,
	.each_ban = pg_each_ban,
	.event_counts_since = pg_event_counts_since,
	.each_position = pg_each_position,
	.account_qids = pg_account_qids,
	.newest_time = pg_newest_time,
	.purge_events = pg_purge_events,
	.each_event_about = pg_each_event_about,
	.queue_notification = pg_queue_notification,
	.each_open_notification = pg_each_open_notification,
	.count_open_notifications = pg_count_open_notifications,
	.notification_delivered = pg_notification_delivered,
	.notification_retry = pg_notification_retry,
	.notification_gave_up = pg_notification_gave_up,
	.submission_evidence = pg_submission_evidence,
	.count_active = pg_count_active,
	.each_counter = pg_each_counter,
	.save_counter = pg_save_counter,
	.set_node = pg_set_node,
	.claim_node = pg_claim_node,
	.fd = pg_fd,
	.fleet_wake = pg_fleet_wake,
	.fleet_poll = pg_fleet_poll,
	.each_node = pg_each_node,
};
