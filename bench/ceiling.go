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
	_, err := runCount(ctx, q, st)
	return err
}

// runCount is run that also returns how many rows came back.
func runCount(ctx context.Context, q querier, st db.Stmt) (int, error) {
	rows, err := q.Query(ctx, st.SQL, st.Args...)
	if err != nil {
		return 0, err
	}
	n := 0
	for rows.Next() {
		_ = rows.RawValues()
		n++
	}
	rows.Close()
	return n, rows.Err()
}

// runEach sends statements as the server does on PostgreSQL (see
// db.UpdateLinodeStmts): each its own transaction, one round trip each,
// every row read. A statement without arguments is one of bun's, its
// arguments in the text, which the server sends unprepared; the others are
// prepared once per connection, as the server's are. The last one writes,
// and must say so with a row.
func runEach(ctx context.Context, c *pgx.Conn, stmts []db.Stmt) error {
	n := 0
	for _, st := range stmts {
		args := st.Args
		if len(args) == 0 {
			args = []any{pgx.QueryExecModeExec}
		}
		var err error
		if n, err = runCount(ctx, c, db.Stmt{SQL: st.SQL, Args: args}); err != nil {
			return fmt.Errorf("write: %w", err)
		}
	}
	if n == 0 {
		return fmt.Errorf("write: the last statement changed nothing")
	}
	return nil
}
