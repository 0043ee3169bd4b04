-- The SQLite twin of the PostgreSQL schema: ids are rowids, and the composite
-- keys of PostgreSQL become unique indexes so that queries read the same.
CREATE TABLE accounts (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    name    TEXT   NOT NULL UNIQUE,
    created BIGINT NOT NULL
);
--bun:split
CREATE TABLE users (
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    username   TEXT   NOT NULL UNIQUE,
    created    BIGINT NOT NULL
);
--bun:split
CREATE UNIQUE INDEX users_account ON users (account_id, id);
--bun:split
CREATE TABLE tokens (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id BIGINT NOT NULL,
    user_id    BIGINT NOT NULL,
    hash       TEXT   NOT NULL UNIQUE,
    label      TEXT   NOT NULL DEFAULT '',
    scopes     TEXT   NOT NULL DEFAULT '*',
    created    BIGINT NOT NULL,
    expiry     BIGINT,
    revoked    BOOLEAN NOT NULL DEFAULT FALSE,
    FOREIGN KEY (account_id, user_id) REFERENCES users (account_id, id)
);
--bun:split
CREATE TABLE linodes (
    account_id      BIGINT  NOT NULL REFERENCES accounts (id),
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    label           TEXT    NOT NULL,
    region          TEXT    NOT NULL,
    type            TEXT    NOT NULL,
    image           TEXT,
    status          TEXT    NOT NULL,
    ipv4            TEXT    NOT NULL DEFAULT '[]',
    ipv6            TEXT,
    tags            TEXT    NOT NULL DEFAULT '[]',
    grp             TEXT    NOT NULL DEFAULT '',
    alerts          TEXT    NOT NULL DEFAULT '{}',
    watchdog        BOOLEAN NOT NULL DEFAULT TRUE,
    backups_enabled BOOLEAN NOT NULL DEFAULT FALSE,
    backup_day      TEXT,
    backup_window   TEXT,
    has_user_data   BOOLEAN NOT NULL DEFAULT FALSE,
    host_uuid       TEXT    NOT NULL,
    jobs_pending    INTEGER NOT NULL DEFAULT 0,
    deleted         BOOLEAN NOT NULL DEFAULT FALSE,
    created         BIGINT  NOT NULL,
    updated         BIGINT  NOT NULL
);
--bun:split
CREATE UNIQUE INDEX linodes_account ON linodes (account_id, id);
--bun:split
CREATE UNIQUE INDEX linodes_label ON linodes (account_id, label) WHERE deleted = 0;
--bun:split
CREATE TABLE event_counters (
    account_id BIGINT NOT NULL PRIMARY KEY REFERENCES accounts (id),
    last_seq   BIGINT NOT NULL DEFAULT 0,
    first_seq  BIGINT NOT NULL DEFAULT 1
);
--bun:split
CREATE TABLE events (
    account_id       BIGINT NOT NULL,
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    seq              BIGINT NOT NULL,
    action           TEXT   NOT NULL,
    status           TEXT   NOT NULL,
    username         TEXT,
    message          TEXT,
    entity_type      TEXT,
    entity_id        BIGINT,
    entity_label     TEXT,
    entity_url       TEXT,
    secondary        TEXT,
    percent_complete INTEGER,
    time_remaining   INTEGER,
    duration         REAL,
    created          BIGINT NOT NULL,
    started          BIGINT,
    updated          BIGINT NOT NULL
);
--bun:split
CREATE UNIQUE INDEX events_seq ON events (account_id, seq);
--bun:split
CREATE INDEX events_entity ON events (account_id, entity_type, entity_id, id);
--bun:split
CREATE INDEX events_created ON events (account_id, created, id);
--bun:split
CREATE TABLE event_seen (
    account_id BIGINT NOT NULL,
    user_id    BIGINT NOT NULL,
    seen_id    BIGINT NOT NULL,
    PRIMARY KEY (account_id, user_id)
);
--bun:split
CREATE TABLE event_reads (
    account_id BIGINT NOT NULL,
    user_id    BIGINT NOT NULL,
    event_id   BIGINT NOT NULL,
    PRIMARY KEY (account_id, user_id, event_id)
);
--bun:split
CREATE TABLE jobs (
    account_id  BIGINT  NOT NULL,
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    linode_id   BIGINT  NOT NULL,
    event_id    BIGINT  NOT NULL,
    action      TEXT    NOT NULL,
    params      TEXT    NOT NULL DEFAULT '{}',
    state       TEXT    NOT NULL DEFAULT 'queued',
    run_after   BIGINT  NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until BIGINT,
    attempts    INTEGER NOT NULL DEFAULT 0,
    created     BIGINT  NOT NULL
);
--bun:split
CREATE INDEX jobs_linode ON jobs (account_id, linode_id, id);
