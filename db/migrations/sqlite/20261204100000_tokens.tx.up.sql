-- The SQLite twin of the PostgreSQL migration. SQLite cannot drop a
-- column constraint, so the tokens table is rebuilt without the unique
-- hash, with the account-first unique index the other tables have, and
-- with prefix, the first 16 characters of the secret.
CREATE TABLE tokens_new (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id BIGINT  NOT NULL,
    user_id    BIGINT  NOT NULL,
    hash       TEXT    NOT NULL,
    prefix     TEXT    NOT NULL DEFAULT '',
    label      TEXT    NOT NULL DEFAULT '',
    scopes     TEXT    NOT NULL DEFAULT '*',
    created    BIGINT  NOT NULL,
    expiry     BIGINT,
    revoked    BOOLEAN NOT NULL DEFAULT FALSE,
    FOREIGN KEY (account_id, user_id) REFERENCES users (account_id, id)
);
--bun:split
INSERT INTO tokens_new (id, account_id, user_id, hash, label, scopes, created, expiry, revoked)
SELECT id, account_id, user_id, hash, label, scopes, created, expiry, revoked FROM tokens;
--bun:split
DROP TABLE tokens;
--bun:split
ALTER TABLE tokens_new RENAME TO tokens;
--bun:split
CREATE UNIQUE INDEX tokens_account ON tokens (account_id, id);
--bun:split
CREATE INDEX tokens_hash ON tokens (hash);
--bun:split
CREATE INDEX tokens_user ON tokens (account_id, user_id, id);
