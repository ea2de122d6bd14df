-- mailjail PostgreSQL database (a fleet's shared record), version 1.
--
-- The same record as the SQLite file (schemas/*.sql), for several nodes at
-- once: every row a node writes names it (node), log positions and journal
-- cursors are per node, and counts are per node and minute (two nodes never
-- update the same row, so their batches never wait on each other).  Times
-- are bigint Unix seconds, as in SQLite; the views show them as ISO 8601 text
-- (UTC).  txid is the transaction that last wrote the row
-- (pg_current_xact_id()): a node reads what the others committed since its
-- last look by snapshot, not by id (a smaller id can commit later), see
-- src/store_pgsql.c.

-- Every node that ran "mailjail run" here, and when it was last heard of.
CREATE TABLE nodes (
    name        text PRIMARY KEY,
    host        text NOT NULL,
    pid         integer NOT NULL,
    started_at  bigint NOT NULL,
    last_seen   bigint NOT NULL
);

-- Where each node's reading of each log stopped, committed with what those
-- lines caused.
CREATE TABLE log_position (
    node        text NOT NULL,
    path        text NOT NULL,
    inode       bigint NOT NULL,
    "offset"    bigint NOT NULL,
    first_hash  bigint NOT NULL,    -- FNV-1a 64 of the first line (as signed)
    updated_at  bigint NOT NULL,
    PRIMARY KEY (node, path)
);

-- Each node's sd-journal cursor per journal source.
CREATE TABLE journal_cursor (
    node        text NOT NULL,
    source      text NOT NULL,
    cursor      text NOT NULL,
    updated_at  bigint NOT NULL,
    PRIMARY KEY (node, source)
);

-- What the jails count, from every node, kept for the longest window.
CREATE TABLE events (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    node    text NOT NULL,
    time    bigint NOT NULL,
    rule    text NOT NULL,
    event   text NOT NULL,
    ip      text,
    account text,
    sender  text,
    qid     text,
    nrcpt   bigint,
    txid    xid8 NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX events_txid ON events (txid);

-- Every recognised line, counted per node, minute and rule.
CREATE TABLE event_counts (
    node    text NOT NULL,
    minute  bigint NOT NULL,
    rule    text NOT NULL,
    event   text NOT NULL,
    n       bigint NOT NULL,
    PRIMARY KEY (node, minute, rule)
);

-- Every ban and hold of the fleet; never purged (levels and recidive).
CREATE TABLE bans (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    node        text NOT NULL,      -- the node that decided it
    jail        text NOT NULL,
    target      text NOT NULL,
    target_kind text NOT NULL CHECK (target_kind IN ('ip', 'account')),
    level       integer NOT NULL CHECK (level >= 1),
    reason      text NOT NULL,
    actions     text NOT NULL,
    reply       text,
    started_at  bigint NOT NULL,
    expires_at  bigint NOT NULL,
    lifted_at   bigint,
    txid        xid8 NOT NULL DEFAULT pg_current_xact_id()   -- set again by a lift
);
CREATE INDEX bans_target ON bans (target, jail);
CREATE INDEX bans_started ON bans (started_at);
CREATE INDEX bans_txid ON bans (txid);

-- Unix seconds as ISO 8601 UTC text, as the SQLite views show them.
CREATE FUNCTION mailjail_iso(t bigint) RETURNS text
    LANGUAGE sql STABLE STRICT
    AS $$ SELECT to_char(to_timestamp(t) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') $$;

-- Public contract: every ban and hold, newest first; the columns of the
-- SQLite view, in its order, then the node.
CREATE VIEW ban_history AS
SELECT jail, target, target_kind, level, reason,
       mailjail_iso(started_at) AS started_at,
       mailjail_iso(expires_at) AS expires_at,
       mailjail_iso(lifted_at) AS lifted_at,
       node
FROM bans
ORDER BY bans.started_at DESC, bans.id DESC;

-- Public contract: the bans and holds in force now.
CREATE VIEW active_bans AS
SELECT jail, target, target_kind, level, reason,
       mailjail_iso(started_at) AS started_at,
       mailjail_iso(expires_at) AS expires_at,
       mailjail_iso(lifted_at) AS lifted_at,
       node
FROM bans
WHERE lifted_at IS NULL AND expires_at > floor(extract(epoch FROM now()))::bigint
ORDER BY bans.started_at DESC, bans.id DESC;
