-- Every event insert and every change of an event takes the account's next
-- change position (rev), under the account's counter row lock, so that revs
-- follow commit order within an account: the events stream resumes from one.
ALTER TABLE event_counters ADD COLUMN last_rev BIGINT NOT NULL DEFAULT 0;
--bun:split
ALTER TABLE events ADD COLUMN rev BIGINT NOT NULL DEFAULT 0;
--bun:split
UPDATE events SET rev = seq;
--bun:split
UPDATE event_counters SET last_rev = last_seq;
--bun:split
CREATE UNIQUE INDEX events_rev ON events (account_id, rev);
