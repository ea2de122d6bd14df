-- mailjail database, version 3: events holds only what the jails count;
-- every recognised line is counted in event_counts; no index on events(time).
--
-- Writing a row (and an index entry) for each of the 236,000 events of a
-- 1,000,000-line log was most of a replay's cost, and about half of those
-- events (postscreen, disconnects, inbound qmgr lines...) no jail counts:
-- they were stored only to be counted by "mailjail status".  Now a line's
-- event is a row in events only if a jail counts its kind (or it is the
-- queued line a jail joins to a submission): the start-up restore rebuilds
-- the jails from those rows exactly as before.  Every event, stored or not,
-- adds 1 to its (minute, rule) row in event_counts, in the same transaction
-- as the log position, so the counts are exactly-once like the rows.
--
-- The index on events(time) cost more than the row itself on every insert,
-- and nothing hot reads by time: the restore reads the rows of the last
-- window in the order they were added (rowid order, one pass, no sort: see
-- store.c ST_EVENTS_SINCE); the hourly purge scans two days of rows.
DROP INDEX IF EXISTS events_time;

CREATE TABLE event_counts (
    minute  INTEGER NOT NULL,           -- Unix time / 60 of the lines
    rule    TEXT NOT NULL,
    event   TEXT NOT NULL,
    n       INTEGER NOT NULL,
    PRIMARY KEY (minute, rule)
) WITHOUT ROWID;

-- A version 1 database stored every event: count them.
INSERT INTO event_counts(minute, rule, event, n)
SELECT time / 60, rule, max(event), count(*) FROM events GROUP BY time / 60, rule;
