-- mailjail database, version 4: operator signals (issue 12, DESIGN.md
-- "Operator signals"): the notification outbox and the saved metric counters.
-- (The fleet's PostgreSQL copy is schemas/pg/002-signals.sql: the same
-- tables, where each node sends and counts only its own rows.)

-- The outbox.  A notification is queued in the same transaction as the ban,
-- hold or lift it tells of, and marked once delivered, so it is sent at least
-- once: a crash or a refused delivery leaves it here, and it is sent later.
-- Each row is one ban/hold/lift/alarm; rows with digest = 1 are sent
-- together, as one summary, at most every [notify] digest.
CREATE TABLE notifications (
    id              INTEGER PRIMARY KEY,
    event           TEXT NOT NULL CHECK (event IN ('ban', 'hold', 'defer', 'lift', 'alarm')),
    digest          INTEGER NOT NULL DEFAULT 0,   -- 1: summarised in the next digest
    ban_id          INTEGER,                      -- the bans row it tells of (none for an alarm)
    jail            TEXT NOT NULL,
    target          TEXT NOT NULL,
    target_kind     TEXT NOT NULL,                -- ip | account | '' (alarm)
    level           INTEGER NOT NULL DEFAULT 0,
    reason          TEXT NOT NULL,
    started_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    -- Where the evidence of an account verdict is (submissions in the
    -- evidence_window seconds before started_at, by this key of the events
    -- table): account | sender | domain, or NULL (none: an IP verdict).
    evidence_key    TEXT,
    evidence_window INTEGER NOT NULL DEFAULT 0,
    node            TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    done            INTEGER NOT NULL DEFAULT 0,   -- channels delivered: 1 mail, 2 command
    attempts        INTEGER NOT NULL DEFAULT 0,   -- failed deliveries so far
    due_at          INTEGER NOT NULL,             -- not tried again before this
    last_error      TEXT,
    sent_at         INTEGER,                      -- every configured channel delivered
    gave_up_at      INTEGER                       -- failed for a day: abandoned
);
CREATE INDEX notifications_open ON notifications(id)
    WHERE sent_at IS NULL AND gave_up_at IS NULL;

-- Counters of the metrics exposition (mailjail_*_total and the commit
-- histogram), saved by the daemon every 15 s and at stop, so they go on
-- counting across restarts and "mailjail metrics" prints them without
-- asking the daemon.  labels is the label set as exposed ('jail="x",...').
CREATE TABLE metric_counters (
    node    TEXT NOT NULL,
    name    TEXT NOT NULL,
    labels  TEXT NOT NULL,
    value   REAL NOT NULL,
    PRIMARY KEY (node, name, labels)
) WITHOUT ROWID;
