package db

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// Group commit. Every event an account records takes the account's next
// seq from its counter row, whose lock is held until the transaction has
// committed, the commit's flush to disk included. Writers of one account
// therefore take turns at one flush each, which bounds an account's
// events per second by the disk, not by the statements. The writes that
// are one statement each (a Linode's settings, see updateLinodeAtOnce)
// queue per account instead: one of the waiting writers sends every
// statement queued behind it in one round trip and one transaction, so
// that they share a single flush. The result of each is what it would
// have been run alone, in the order of the queue, since each statement
// decides from what the ones before it left.

// groupBatchMax bounds the statements of one group commit, so that the
// writer that sends them does not wait for ever on a busy account.
const groupBatchMax = 64

// groupTimeout bounds a group commit, which runs for several requests and
// so outlives the one that sends it when that request is cancelled.
const groupTimeout = 30 * time.Second

// groups holds the queued writes of each account with writes in flight.
type groups struct {
	mu      sync.Mutex
	queues  map[int64]*groupQueue
	commits atomic.Int64 // batches sent
	writes  atomic.Int64 // writes in them
}

// GroupCommits returns how many batches of writes this process has sent
// to PostgreSQL (see groupWrite), and how many writes they held: their ratio is how many
// writes shared each commit.
func (s *Store) GroupCommits() (commits, writes int64) {
	return s.groups.commits.Load(), s.groups.writes.Load()
}

// groupQueue is one account's queue: while a writer sends a batch, the
// writes that arrive wait here for the next.
type groupQueue struct {
	waiting []*groupWrite
	sending bool
}

// groupWrite is one statement that appends an event to its account and
// returns a row when it changed something; linode is the Linode whose row
// it updates.
type groupWrite struct {
	linode int64
	st     Stmt
	done   chan struct{} // closed when found and err are set
	lead   chan struct{} // closed when this write is to send the next batch
	found  bool
	err    error
}

// groupWrite runs st, which updates linode and appends an event to
// account, in a commit shared with the other such writes of the account
// in flight, and reports whether it returned a row. It waits for its
// result even when ctx ends: the batch it belongs to may be on its way.
func (s *Store) groupWrite(ctx context.Context, account, linode int64, st Stmt) (bool, error) {
	if !s.pg {
		return s.exists(ctx, st.SQL, st.Args...)
	}
	w := &groupWrite{linode: linode, st: st, done: make(chan struct{}), lead: make(chan struct{})}
	g := &s.groups
	g.mu.Lock()
	if g.queues == nil {
		g.queues = map[int64]*groupQueue{}
	}
	q := g.queues[account]
	if q == nil {
		q = &groupQueue{}
		g.queues[account] = q
	}
	q.waiting = append(q.waiting, w)
	sending := q.sending
	q.sending = true
	g.mu.Unlock()
	if sending {
		select {
		case <-w.done:
			return w.found, w.err
		case <-w.lead:
		}
	}

	g.mu.Lock()
	n := min(len(q.waiting), groupBatchMax)
	batch := slices.Clone(q.waiting[:n])
	q.waiting = q.waiting[n:]
	g.mu.Unlock()

	// Whatever happens to this batch, its writers get their answer and
	// the next waiting write its turn.
	defer func() {
		g.mu.Lock()
		if len(q.waiting) > 0 {
			close(q.waiting[0].lead)
		} else {
			delete(g.queues, account)
		}
		g.mu.Unlock()
		for _, b := range batch {
			if b != w {
				close(b.done)
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), groupTimeout)
	defer cancel()
	s.sendGroup(ctx, account, batch)
	g.commits.Add(1)
	g.writes.Add(int64(len(batch)))
	return w.found, w.err
}

// sendGroup runs a batch and sets each write's result. A single write is
// sent alone. Several are sent in one pipeline, which PostgreSQL runs as
// one implicit transaction: first the Linodes' rows are locked in the
// order of their ids, as every transaction that locks several does, so
// that no statement of the batch waits for a Linode while the batch holds
// the counter; then the statements, in turn. When one of them fails the
// whole batch is rolled back, and each is run again alone, so that only
// the failing one fails.
func (s *Store) sendGroup(ctx context.Context, account int64, batch []*groupWrite) {
	if len(batch) > 1 {
		err := s.pipeline(ctx, account, batch)
		var pgErr *pgconn.PgError
		if err == nil || !errors.As(err, &pgErr) {
			for _, w := range batch {
				w.err = translate(err)
			}
			return
		}
	}
	for _, w := range batch {
		w.err = retry(func() error {
			var err error
			w.found, err = s.exists(ctx, w.st.SQL, w.st.Args...)
			return err
		})
	}
}

// lockLinodesSQL locks an account's Linodes in the order of their ids.
const lockLinodesSQL = `SELECT 1 FROM linodes WHERE account_id = $1 AND id = ANY($2) ORDER BY id FOR UPDATE`

// pipeline sends a batch in one round trip, as one transaction, and sets
// each write's found. The statements are prepared on the connection the
// first time it sends them.
func (s *Store) pipeline(ctx context.Context, account int64, batch []*groupWrite) error {
	conn, err := s.db.DB.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(driverConn any) error {
		c := driverConn.(*stdlib.Conn).Conn()
		ids := make([]int64, len(batch))
		var b pgx.Batch
		for i, w := range batch {
			ids[i] = w.linode
			if _, err := c.Prepare(ctx, w.st.SQL, w.st.SQL); err != nil {
				return err
			}
		}
		slices.Sort(ids)
		b.Queue(lockLinodesSQL, account, slices.Compact(ids))
		for _, w := range batch {
			b.Queue(w.st.SQL, w.st.Args...)
		}
		res := c.SendBatch(ctx, &b)
		defer res.Close()
		if _, err := res.Exec(); err != nil {
			return err
		}
		for _, w := range batch {
			rows, err := res.Query()
			if err != nil {
				return err
			}
			w.found = rows.Next()
			rows.Close()
			if err := rows.Err(); err != nil {
				return fmt.Errorf("db: group commit: %w", err)
			}
		}
		return res.Close()
	})
}
