-- When a scheduled event (maintenance) is due to start; null for the rest.
ALTER TABLE events ADD COLUMN not_before BIGINT;
