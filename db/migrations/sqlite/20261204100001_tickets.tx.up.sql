-- The SQLite twin of the PostgreSQL migration.
CREATE TABLE tickets (
    account_id   BIGINT  NOT NULL REFERENCES accounts (id),
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    summary      TEXT    NOT NULL,
    description  TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    entity_type  TEXT,
    entity_id    BIGINT,
    entity_label TEXT,
    entity_url   TEXT,
    opened_by    TEXT    NOT NULL,
    opened       BIGINT  NOT NULL,
    updated      BIGINT  NOT NULL,
    updated_by   TEXT,
    closed       BIGINT
);
--bun:split
CREATE UNIQUE INDEX tickets_account ON tickets (account_id, id);
--bun:split
CREATE TABLE ticket_replies (
    account_id   BIGINT  NOT NULL,
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id    BIGINT  NOT NULL,
    description  TEXT    NOT NULL,
    created_by   TEXT    NOT NULL,
    from_support BOOLEAN NOT NULL,
    created      BIGINT  NOT NULL,
    FOREIGN KEY (account_id, ticket_id) REFERENCES tickets (account_id, id)
);
--bun:split
CREATE UNIQUE INDEX ticket_replies_account ON ticket_replies (account_id, id);
--bun:split
CREATE INDEX ticket_replies_ticket ON ticket_replies (account_id, ticket_id, id);
