-- The SQLite twin of the PostgreSQL migration of the same name; see there
-- for why each table is shaped as it is.
CREATE TABLE ips (
    account_id BIGINT  NOT NULL,
    address    TEXT    NOT NULL,
    linode_id  BIGINT  NOT NULL,
    family     TEXT    NOT NULL,
    public     BOOLEAN NOT NULL,
    prefix     INTEGER NOT NULL,
    gateway    TEXT,
    region     TEXT    NOT NULL,
    rdns       TEXT,
    created    BIGINT  NOT NULL,
    PRIMARY KEY (account_id, address)
);
--bun:split
CREATE INDEX ips_linode ON ips (account_id, linode_id);
--bun:split
CREATE INDEX ips_address ON ips (address);
--bun:split
CREATE TABLE ip_pools (
    kind TEXT   NOT NULL PRIMARY KEY,
    pool TEXT   NOT NULL,
    next BIGINT NOT NULL DEFAULT 0
);
--bun:split
INSERT INTO ips (account_id, address, linode_id, family, public, prefix, gateway, region, rdns,
                 created)
SELECT l.account_id, a.value, l.id, 'ipv4', 1, 10, '100.64.0.1', l.region,
       replace(a.value, '.', '-') || '.ip.apiv4.example', l.created
FROM linodes AS l, json_each(l.ipv4) AS a;
--bun:split
INSERT INTO ips (account_id, address, linode_id, family, public, prefix, gateway, region, rdns,
                 created)
SELECT account_id, substr(ipv6, 1, instr(ipv6, '/') - 1), id, 'ipv6', 1, 64, 'fe80::1', region,
       NULL, created
FROM linodes
WHERE ipv6 IS NOT NULL;
--bun:split
ALTER TABLE linodes DROP COLUMN ipv4;
--bun:split
ALTER TABLE linodes DROP COLUMN ipv6;
--bun:split
ALTER TABLE linodes ADD COLUMN backups_next BIGINT;
--bun:split
ALTER TABLE linodes ADD COLUMN backups_last_successful BIGINT;
--bun:split
ALTER TABLE linodes ADD COLUMN backups_available BOOLEAN NOT NULL DEFAULT FALSE;
--bun:split
UPDATE linodes SET backups_next = 0 WHERE backups_enabled;
--bun:split
CREATE INDEX linodes_backups_due ON linodes (backups_next) WHERE backups_enabled AND deleted = 0;
--bun:split
CREATE TABLE backups (
    account_id  BIGINT  NOT NULL,
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    linode_id   BIGINT  NOT NULL,
    type        TEXT    NOT NULL,
    label       TEXT,
    status      TEXT    NOT NULL,
    maintenance BOOLEAN NOT NULL DEFAULT FALSE,
    region      TEXT    NOT NULL,
    linode_type TEXT    NOT NULL,
    image       TEXT,
    created     BIGINT  NOT NULL,
    updated     BIGINT  NOT NULL,
    finished    BIGINT
);
--bun:split
CREATE INDEX backups_linode ON backups (account_id, linode_id, id);
