package bench

import (
	"context"
	"database/sql"

	"github.com/jackc/pgx/v5"
)

// seedConn is a connection the seed writes through, with the few pieces
// of SQL that differ between PostgreSQL and SQLite.
type seedConn struct {
	exec     func(ctx context.Context, sql string, args ...any) error
	queryRow func(ctx context.Context, sql string, args ...any) interface{ Scan(...any) error }
	pg       bool
	analyze  string // refreshes the planner's statistics
	flush    string // writes the seed's dirty pages out now, not while measuring
}

func pgSeedConn(c *pgx.Conn) seedConn {
	return seedConn{
		exec: func(ctx context.Context, sql string, args ...any) error {
			_, err := c.Exec(ctx, sql, args...)
			return err
		},
		queryRow: func(ctx context.Context, sql string, args ...any) interface{ Scan(...any) error } {
			return c.QueryRow(ctx, sql, args...)
		},
		pg: true, analyze: "VACUUM ANALYZE", flush: "CHECKPOINT",
	}
}

func sqliteSeedConn(c *sql.DB) seedConn {
	return seedConn{
		exec: func(ctx context.Context, sql string, args ...any) error {
			_, err := c.ExecContext(ctx, sql, args...)
			return err
		},
		queryRow: func(ctx context.Context, sql string, args ...any) interface{ Scan(...any) error } {
			return c.QueryRowContext(ctx, sql, args...)
		},
		analyze: "ANALYZE", flush: "PRAGMA wal_checkpoint(TRUNCATE)",
	}
}

// series names a run of integers lo..hi, as a column called name.
type series struct{ name, lo, hi string }

// with is the WITH clause a statement that uses from(s) for each series
// starts with: empty on PostgreSQL, recursive counts on SQLite.
func (c seedConn) with(all ...series) string {
	if c.pg {
		return ""
	}
	q := "WITH RECURSIVE "
	for i, s := range all {
		if i > 0 {
			q += ", "
		}
		q += s.name + "(" + s.name + ") AS (SELECT CAST(" + s.lo + " AS BIGINT) UNION ALL SELECT " +
			s.name + " + 1 FROM " + s.name + " WHERE " + s.name + " < " + s.hi + ")"
	}
	return q + "\n"
}

// from is the FROM item of a series.
func (c seedConn) from(s series) string {
	if c.pg {
		return "generate_series(CAST(" + s.lo + " AS BIGINT), CAST(" + s.hi + " AS BIGINT)) AS " +
			s.name
	}
	return s.name
}

// randomBelow is an integer drawn at random in [0, n).
func (c seedConn) randomBelow(n string) string {
	if c.pg {
		return "floor(random() * " + n + ")::bigint"
	}
	return "abs(random()) % " + n
}
