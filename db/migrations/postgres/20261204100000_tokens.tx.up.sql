-- Users now create tokens over the API, so the tokens table grows like the
-- others and comes under their rule: account_id first in every key. A
-- token is still found by the hash of its secret: the index on hash is not
-- unique, as a unique key must start with account_id, and two random
-- 256-bit secrets do not collide. prefix keeps the first 16 characters of
-- the secret, which token lists show.
ALTER TABLE tokens ADD COLUMN prefix TEXT NOT NULL DEFAULT '';
--bun:split
ALTER TABLE tokens DROP CONSTRAINT tokens_pkey;
--bun:split
ALTER TABLE tokens ADD PRIMARY KEY (account_id, id);
--bun:split
ALTER TABLE tokens DROP CONSTRAINT tokens_hash_key;
--bun:split
CREATE INDEX tokens_hash ON tokens (hash);
--bun:split
CREATE INDEX tokens_user ON tokens (account_id, user_id, id);
