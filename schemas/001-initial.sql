-- mailjail database, version 1.
-- Times are integer Unix seconds; the views show them as ISO 8601 (UTC).

-- Where reading of each log stopped, committed with what those lines caused.
CREATE TABLE log_position (
    path        TEXT PRIMARY KEY,
    inode       INTEGER NOT NULL,
    offset      INTEGER NOT NULL,
    first_hash  INTEGER NOT NULL,   -- FNV-1a 64 of the first line (as signed)
    updated_at  INTEGER NOT NULL
);

-- Every recognised line.  Kept for the longest jail window (at least a day),
-- so counters are rebuilt exactly after a restart.
CREATE TABLE events (
    id      INTEGER PRIMARY KEY,
    time    INTEGER NOT NULL,
    rule    TEXT NOT NULL,
    event   TEXT NOT NULL,
    ip      TEXT,
    account TEXT,
    sender  TEXT,
    qid     TEXT,
    nrcpt   INTEGER
);
CREATE INDEX events_time ON events(time);

-- Every ban and hold ever made.  Never purged by the daemon: escalation levels
-- and recidive depend on it.
CREATE TABLE bans (
    id          INTEGER PRIMARY KEY,
    jail        TEXT NOT NULL,
    target      TEXT NOT NULL,
    target_kind TEXT NOT NULL CHECK (target_kind IN ('ip', 'account')),
    level       INTEGER NOT NULL CHECK (level >= 1),
    reason      TEXT NOT NULL,
    actions     TEXT NOT NULL,      -- e.g. 'nft', 'hold', 'nft,reject', '' (none)
    reply       TEXT,               -- reject reply, when actions has reject
    started_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    lifted_at   INTEGER             -- set when an operator lifted it early
);
CREATE INDEX bans_target ON bans(target, jail);
CREATE INDEX bans_started ON bans(started_at);
CREATE INDEX bans_expires ON bans(expires_at);

-- Public contract: every ban and hold, newest first.
CREATE VIEW ban_history AS
SELECT jail, target, target_kind, level, reason,
       strftime('%Y-%m-%dT%H:%M:%SZ', started_at, 'unixepoch') AS started_at,
       strftime('%Y-%m-%dT%H:%M:%SZ', expires_at, 'unixepoch') AS expires_at,
       strftime('%Y-%m-%dT%H:%M:%SZ', lifted_at, 'unixepoch') AS lifted_at
FROM bans
ORDER BY bans.started_at DESC, bans.id DESC;

-- Public contract: the bans and holds in force now.
CREATE VIEW active_bans AS
SELECT jail, target, target_kind, level, reason,
       strftime('%Y-%m-%dT%H:%M:%SZ', started_at, 'unixepoch') AS started_at,
       strftime('%Y-%m-%dT%H:%M:%SZ', expires_at, 'unixepoch') AS expires_at,
       strftime('%Y-%m-%dT%H:%M:%SZ', lifted_at, 'unixepoch') AS lifted_at
FROM bans
WHERE lifted_at IS NULL AND expires_at > CAST(strftime('%s', 'now') AS INTEGER)
ORDER BY bans.started_at DESC, bans.id DESC;
