-- mailjail PostgreSQL database, version 3: delivery results joined to their
-- sender (the twin of schemas/005-delivery.sql).
--
-- A provider's refusal of a delivery (rules/remote-reject.rules: events
-- remote_reject, remote_listed) is charged to the account that submitted
-- the message, joined by queue id on the node that logged both (queue ids
-- are unique per host only); a message that went on under a new queue id
-- (an after-queue content filter's "queued as NEWQID", local(8)'s
-- "forwarded as NEWQID": event requeued) is followed.  What the join needs
-- after a restart, and on the other nodes of the fleet, rides on the
-- stored events:
--   rcpt    the recipient of a delivery result (a message counts once per
--           recipient domain however often it is retried)
--   newqid  the queue id a message goes on as (event requeued)
-- Nullable columns with no default: adding them rewrites nothing, and a
-- node still running the older binary keeps writing its rows (its COPY
-- names its columns).
ALTER TABLE events ADD COLUMN rcpt text;
ALTER TABLE events ADD COLUMN newqid text;
