package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"apiv4/db"
)

// querier is a pgx connection or transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// loadSQL runs op from clients connections of conns straight against
// PostgreSQL for d, each connection waiting for its answer before the next
// op: the database's ceiling for the statements op sends.
func loadSQL(ctx context.Context, conns []*pgx.Conn, clients int, d time.Duration,
	op func(ctx context.Context, c *pgx.Conn, rng *rand.Rand, worker int) error) *result {
	var out workerResult
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for w := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
			var h histogram
			var failures uint64
			var firstErr error
			for ctx.Err() == nil && time.Now().Before(deadline) {
				t := time.Now()
				err := op(ctx, conns[w], rng, w)
				h.add(time.Since(t))
				if err != nil {
					failures++
					if firstErr == nil {
						firstErr = err
					}
				}
			}
			out.add(&h, failures, firstErr)
		})
	}
	wg.Wait()
	out.res.elapsed = time.Since(start)
	return &out.res
}

// run sends one statement, prepared (pgx caches it per connection), and
// reads every row it returns, without decoding: a client as lean as can be,
// so that the ceiling is the database's.
func run(ctx context.Context, q querier, st db.Stmt) error {
	rows, err := q.Query(ctx, st.SQL, st.Args...)
	if err != nil {
		return err
	}
	for rows.Next() {
		_ = rows.RawValues()
	}
	rows.Close()
	return rows.Err()
}

// runWriteTx sends a write transaction as the server does on PostgreSQL
// (see db.UpdateLinodeStmts): BEGIN with the first statement, then the
// others with COMMIT, two round trips, every row read.
func runWriteTx(ctx context.Context, c *pgx.Conn, stmts []db.Stmt) error {
	send := func(before string, stmts []db.Stmt, after string) error {
		b := &pgx.Batch{}
		if before != "" {
			b.Queue(before)
		}
		for _, st := range stmts {
			b.Queue(st.SQL, st.Args...).Query(func(rows pgx.Rows) error {
				for rows.Next() {
					_ = rows.RawValues()
				}
				return rows.Err()
			})
		}
		if after != "" {
			b.Queue(after)
		}
		return c.SendBatch(ctx, b).Close()
	}
	err := send("BEGIN", stmts[:1], "")
	if err == nil {
		err = send("", stmts[1:], "COMMIT")
	}
	if err != nil && c.PgConn().TxStatus() != 'I' && !c.IsClosed() {
		_, _ = c.Exec(ctx, "ROLLBACK")
	}
	if err != nil {
		return fmt.Errorf("write transaction: %w", err)
	}
	return nil
}
