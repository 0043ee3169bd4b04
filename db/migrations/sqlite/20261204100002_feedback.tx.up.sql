-- The SQLite twin of the PostgreSQL migration.
CREATE TABLE feedback (
    account_id BIGINT  NOT NULL,
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    BIGINT  NOT NULL,
    token_id   BIGINT  NOT NULL,
    message    TEXT    NOT NULL,
    created    BIGINT  NOT NULL,
    FOREIGN KEY (account_id, user_id) REFERENCES users (account_id, id)
);
--bun:split
CREATE UNIQUE INDEX feedback_account ON feedback (account_id, id);
