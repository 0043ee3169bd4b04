package db

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// step is one statement of a pipelined write transaction, and what reads
// its rows.
type step struct {
	Stmt
	scan func(pgx.Rows) error // nil when the rows are not read
}

// writeTx runs a write transaction on PostgreSQL in two round trips
// through pgx: BEGIN with head, then the steps tail returns (which may use
// what head read) with COMMIT. A transaction whose last step inserts an
// event thus holds the account's event counter for that statement and the
// commit only, not for a round trip to this process and back: on a busy
// two-core machine that round trip was most of the lock's time. Any error
// rolls the transaction back.
func (s *Store) writeTx(ctx context.Context, head step, tail func() ([]step, error)) error {
	conn, err := s.db.DB.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		c := dc.(*stdlib.Conn).Conn()
		err := pipeline(ctx, c, "BEGIN", []step{head}, "")
		if err == nil {
			var steps []step
			if steps, err = tail(); err == nil {
				err = pipeline(ctx, c, "", steps, "COMMIT")
			}
		}
		if err != nil && c.PgConn().TxStatus() != 'I' && !c.IsClosed() {
			if _, rbErr := c.Exec(context.WithoutCancel(ctx), "ROLLBACK"); rbErr != nil {
				return fmt.Errorf("%w (and rollback: %v)", err, rbErr)
			}
		}
		return err
	})
}

// pipeline sends steps between before and after (either may be empty) in
// one round trip, each step prepared once per connection, and reads their
// rows in order. PostgreSQL skips the rest of a pipeline after an error.
func pipeline(ctx context.Context, c *pgx.Conn, before string, steps []step, after string) error {
	b := &pgx.Batch{}
	if before != "" {
		b.Queue(before)
	}
	for _, st := range steps {
		if _, err := c.Prepare(ctx, st.SQL, st.SQL); err != nil {
			return err
		}
		q := b.Queue(st.SQL, st.Args...)
		if st.scan != nil {
			q.Query(st.scan)
		}
	}
	if after != "" {
		b.Queue(after)
	}
	return c.SendBatch(ctx, b).Close()
}
