package db_test

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"

	"apiv4/db"
	"apiv4/db/dbtest"
)

// The schema rule: every table that grows carries account_id, and every
// primary key and unique index on it includes account_id, so that events
// (and the rest) can be hash-partitioned or distributed by account (Citus
// asks the same of a distribution column) with no change to the queries.

// growing are the tables that grow with use; each must follow the rule.
var growing = []string{"events", "event_reads", "event_seen", "event_counters", "jobs",
	"linodes", "tickets", "ticket_replies", "feedback", "ips", "backups"}

// exempt are the tables that may break the rule, and why. Any other table
// must follow it, so a new table is either scoped by account or named here.
var exempt = map[string]string{
	"accounts": "the accounts themselves: a small reference table, keyed by id",
	"users": "looked up by username at sign-in, before the account is known; " +
		"one row per person: a reference table when distributed",
	"tokens": "looked up by the hash of a secret, before the account is known; " +
		"one row per token: a reference table when distributed",
	"ip_pools": "the deployment's address pools, one row per kind of address, " +
		"shared by every account: a reference table when distributed",
	"bun_migrations":      "the migrator's bookkeeping",
	"bun_migration_locks": "the migrator's bookkeeping",
}

// schemaViolations lists how the public schema breaks the rule.
func schemaViolations(ctx context.Context, conn *sql.DB) ([]string, error) {
	rows, err := conn.QueryContext(ctx, `SELECT c.relname,
    EXISTS (SELECT 1 FROM pg_attribute AS a
        WHERE a.attrelid = c.oid AND a.attname = 'account_id' AND NOT a.attisdropped),
    EXISTS (SELECT 1 FROM pg_index AS i WHERE i.indrelid = c.oid AND i.indisprimary)
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
ORDER BY c.relname`)
	if err != nil {
		return nil, err
	}
	type table struct {
		name          string
		account, pkey bool
	}
	var tables []table
	for rows.Next() {
		var t table
		if err := rows.Scan(&t.name, &t.account, &t.pkey); err != nil {
			return nil, err
		}
		tables = append(tables, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}

	var bad []string
	found := map[string]bool{}
	for _, t := range tables {
		found[t.name] = true
		if _, ok := exempt[t.name]; ok {
			continue
		}
		switch {
		case !t.account:
			bad = append(bad, t.name+": no account_id column")
			continue
		case !t.pkey:
			bad = append(bad, t.name+": no primary key")
		}
		keys, err := keysWithoutAccount(ctx, conn, t.name)
		if err != nil {
			return nil, err
		}
		bad = append(bad, keys...)
	}
	for _, name := range growing {
		if !found[name] {
			bad = append(bad, name+": missing")
		}
	}
	return bad, nil
}

// keysWithoutAccount lists a table's primary key and unique indexes that
// do not include account_id, and those on an expression, which a
// distributed engine cannot check per account either.
func keysWithoutAccount(ctx context.Context, conn *sql.DB, table string) ([]string, error) {
	rows, err := conn.QueryContext(ctx, `SELECT ic.relname, i.indisprimary,
    string_agg(COALESCE(a.attname, 'expression'), ',' ORDER BY k.n), bool_or(k.attnum = 0)
FROM pg_index AS i
JOIN pg_class AS ic ON ic.oid = i.indexrelid
CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
LEFT JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = $1::regclass AND i.indisunique
GROUP BY ic.relname, i.indisprimary`, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var bad []string
	for rows.Next() {
		var name, cols string
		var primary, expr bool
		if err := rows.Scan(&name, &primary, &cols, &expr); err != nil {
			return nil, err
		}
		kind := "unique index"
		if primary {
			kind = "primary key"
		}
		switch {
		case expr:
			bad = append(bad, fmt.Sprintf("%s: %s %s (%s) is on an expression", table, kind,
				name, cols))
		case !slices.Contains(strings.Split(cols, ","), "account_id"):
			bad = append(bad, fmt.Sprintf("%s: %s %s (%s) lacks account_id", table, kind, name, cols))
		}
	}
	return bad, rows.Err()
}

func TestSchemaIsScopedByAccount(t *testing.T) {
	ctx := context.Background()
	url := dbtest.PostgresURL(t)
	s, err := db.Open(ctx, url) // migrates
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	conn, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	bad, err := schemaViolations(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bad {
		t.Errorf("schema rule broken: %s", b)
	}

	// The check itself catches each way to break the rule.
	for _, stmt := range []string{
		"CREATE TABLE widgets (account_id BIGINT, id BIGINT PRIMARY KEY)",
		"CREATE TABLE gadgets (id BIGINT PRIMARY KEY)",
		"CREATE UNIQUE INDEX events_id ON events (id)",
		"CREATE UNIQUE INDEX jobs_lower ON jobs (account_id, lower(action))",
	} {
		if _, err := conn.ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	bad, err = schemaViolations(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"events: unique index events_id (id) lacks account_id",
		"gadgets: no account_id column",
		"jobs: unique index jobs_lower (account_id,expression) is on an expression",
		"widgets: primary key widgets_pkey (id) lacks account_id",
	}
	if fmt.Sprint(bad) != fmt.Sprint(want) {
		t.Errorf("violations of a broken schema\n got %q\nwant %q", bad, want)
	}
}
