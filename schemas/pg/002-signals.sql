-- mailjail PostgreSQL database, version 2: operator signals (DESIGN.md
-- "Operator signals"), the fleet's copy of the SQLite file's
-- 004-signals.sql: the notification outbox and the saved metric counters.
-- Both are per node: a node queues a notification in its verdict's (or its
-- operator command's) transaction and is the one that sends it, so no two
-- nodes send the same one; a node saves and reads back its own counters.

-- The outbox.  Marked once delivered: sent at least once (a crash or a
-- refused delivery leaves the row open, and it is sent later).  Rows with
-- digest = 1 go together, as one summary, at most every [notify] digest.
CREATE TABLE notifications (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    node            text NOT NULL,      -- the node that queued it and sends it
    event           text NOT NULL CHECK (event IN ('ban', 'hold', 'defer', 'lift', 'alarm')),
    digest          integer NOT NULL DEFAULT 0 CHECK (digest IN (0, 1)),
    ban_id          bigint,             -- the bans row it tells of (none for an alarm)
    jail            text NOT NULL,
    target          text NOT NULL,
    target_kind     text NOT NULL,      -- ip | account | '' (alarm)
    level           integer NOT NULL DEFAULT 0,
    reason          text NOT NULL,
    started_at      bigint NOT NULL,
    expires_at      bigint NOT NULL,
    -- The evidence of an account verdict: submissions in the
    -- evidence_window seconds before started_at by this key (account |
    -- sender | domain), or NULL (an IP verdict).
    evidence_key    text,
    evidence_window bigint NOT NULL DEFAULT 0,
    created_at      bigint NOT NULL,
    done            integer NOT NULL DEFAULT 0,   -- channels delivered: 1 mail, 2 command
    attempts        integer NOT NULL DEFAULT 0,   -- failed deliveries so far
    due_at          bigint NOT NULL,              -- not tried again before this
    last_error      text,
    sent_at         bigint,                       -- every configured channel delivered
    gave_up_at      bigint                        -- failed for a day: abandoned
);
CREATE INDEX notifications_open ON notifications (node, id)
    WHERE sent_at IS NULL AND gave_up_at IS NULL;

-- The counters of the metrics exposition (mailjail_*_total and the commit
-- histogram), saved by each node every 10 s and at stop; labels is the
-- label set as exposed ('jail="x",...').
CREATE TABLE metric_counters (
    node    text NOT NULL,
    name    text NOT NULL,
    labels  text NOT NULL,
    value   double precision NOT NULL,
    PRIMARY KEY (node, name, labels)
);
