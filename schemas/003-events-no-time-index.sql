-- mailjail database, version 3: no index on events(time).
--
-- The index cost more than the row itself on every event written (an
-- insertion into a second b-tree), and nothing hot reads by time: the start-up
-- restore reads the events of the last window in the order they were added
-- (rowid order, one pass, no sort: see store.c ST_EVENTS_SINCE), and the
-- hourly purge and the status counts scan a table that holds only the last
-- two days.
DROP INDEX IF EXISTS events_time;
