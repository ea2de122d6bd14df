-- mailjail database, version 2: journal sources.

-- Where reading of each journal source ("journal:MATCH" in [mailjail] log)
-- stopped: the sd-journal cursor of the last entry consumed, committed with
-- what the entries caused (like log_position for files).
CREATE TABLE journal_cursor (
    source      TEXT PRIMARY KEY,   -- the log item as configured
    cursor      TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
);
