-- mailjail database, version 5: delivery results joined to their sender.
--
-- A provider's refusal of a delivery (rules/remote-reject.rules: events
-- remote_reject, remote_listed) is charged to the account that submitted
-- the message, joined by queue id; a message that went on under a new
-- queue id (an after-queue content filter's "queued as NEWQID", local(8)'s
-- "forwarded as NEWQID": event requeued) is followed.  What the join needs
-- after a restart rides on the stored events, as the recipients join does:
--   rcpt    the recipient of a delivery result (a message counts once per
--           recipient domain however often it is retried)
--   newqid  the queue id a message goes on as (event requeued)
ALTER TABLE events ADD COLUMN rcpt TEXT;
ALTER TABLE events ADD COLUMN newqid TEXT;
