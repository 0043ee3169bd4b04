package db

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/uptrace/bun"
)

// feed tells the streams of this process when their account's events may
// have changed. On PostgreSQL it LISTENs for the announcements of every
// process and polls the counters now and then in case one was lost while
// the listening connection was down; on SQLite, which has one process, it
// polls the counters often. It starts with the first subscriber and stops
// when the store closes.
type feed struct {
	mu      sync.Mutex
	subs    map[int64]map[chan struct{}]bool // by account
	revs    map[int64]int64                  // last known change position, by account
	started bool
	stop    context.CancelFunc
	done    chan struct{}
}

// Poll intervals of the feed: the safety net beside LISTEN on PostgreSQL,
// and the only source on SQLite.
const (
	pollPostgres = 2 * time.Second
	pollSQLite   = 100 * time.Millisecond
)

// Subscribe returns a channel that receives a value soon after the
// account's events may have changed, and a function that ends the
// subscription. Signals coalesce: one value may stand for many changes, and
// a value may come when nothing changed, so the receiver reads the changes
// from the store. A signal also comes when announcements may have been lost.
func (s *Store) Subscribe(accountID int64) (<-chan struct{}, func()) {
	f := &s.feed
	ch := make(chan struct{}, 1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.subs == nil {
		f.subs, f.revs = map[int64]map[chan struct{}]bool{}, map[int64]int64{}
	}
	if f.subs[accountID] == nil {
		f.subs[accountID] = map[chan struct{}]bool{}
	}
	f.subs[accountID][ch] = true
	if !f.started {
		f.started = true
		ctx, cancel := context.WithCancel(context.Background())
		f.stop, f.done = cancel, make(chan struct{})
		go s.runFeed(ctx)
	}
	return ch, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.subs[accountID], ch)
		if len(f.subs[accountID]) == 0 {
			delete(f.subs, accountID)
			delete(f.revs, accountID)
		}
	}
}

// closeFeed stops the feed's goroutines, if they run, and waits for them.
func (s *Store) closeFeed() {
	f := &s.feed
	f.mu.Lock()
	stop, done := f.stop, f.done
	f.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
}

// wake signals the subscribers of the given accounts, or of every account
// when accounts is nil.
func (f *feed) wake(accounts []int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	signal := func(subs map[chan struct{}]bool) {
		for ch := range subs {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
	if accounts == nil {
		for _, subs := range f.subs {
			signal(subs)
		}
		return
	}
	for _, id := range accounts {
		signal(f.subs[id])
	}
}

func (s *Store) runFeed(ctx context.Context) {
	defer close(s.feed.done)
	var wg sync.WaitGroup
	every := pollSQLite
	if s.IsPostgres() {
		every = pollPostgres
		wg.Go(func() { s.listen(ctx) })
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-t.C:
			s.poll(ctx)
		}
	}
}

// poll reads the change positions of the followed accounts and wakes those
// that moved.
func (s *Store) poll(ctx context.Context) {
	f := &s.feed
	f.mu.Lock()
	ids := make([]int64, 0, len(f.subs))
	for id := range f.subs {
		ids = append(ids, id)
	}
	f.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	var rows []struct {
		AccountID int64 `bun:"account_id"`
		LastRev   int64 `bun:"last_rev"`
	}
	err := s.db.NewSelect().Table("event_counters").Column("account_id", "last_rev").
		Where("account_id IN (?)", bun.In(ids)).Scan(ctx, &rows)
	if err != nil {
		return // the next tick tries again; streams keep their position
	}
	var moved []int64
	f.mu.Lock()
	for _, r := range rows {
		// An account seen for the first time is woken too: it may have
		// changed between its subscriber's first read and this poll.
		if old, ok := f.revs[r.AccountID]; !ok || old != r.LastRev {
			moved = append(moved, r.AccountID)
		}
		if f.subs[r.AccountID] != nil {
			f.revs[r.AccountID] = r.LastRev
		}
	}
	f.mu.Unlock()
	if len(moved) > 0 {
		f.wake(moved)
	}
}

// listen holds one connection that LISTENs on the announcement channel and
// wakes the accounts it names, reconnecting after a failure. Every
// (re)connection wakes everyone, since announcements made meanwhile are
// lost.
func (s *Store) listen(ctx context.Context) {
	for ctx.Err() == nil {
		conn, err := pgx.Connect(ctx, s.url)
		if err == nil {
			_, err = conn.Exec(ctx, "LISTEN "+notifyChannel)
		}
		if err == nil {
			s.feed.wake(nil)
			for {
				n, werr := conn.WaitForNotification(ctx)
				if werr != nil {
					break
				}
				if id, perr := strconv.ParseInt(n.Payload, 10, 64); perr == nil {
					s.feed.wake([]int64{id})
				}
			}
		}
		if conn != nil {
			closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			_ = conn.Close(closeCtx)
			cancel()
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}
