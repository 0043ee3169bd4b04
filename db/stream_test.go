package db_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"apiv4/db"
	"apiv4/db/dbtest"
)

// TestEventChanges checks that every insert and every change of an event
// takes the account's next position, and that reading from a position
// gives each event changed since once, as it is now.
func TestEventChanges(t *testing.T) {
	eachStore(t, func(t *testing.T, s *db.Store) {
		ctx := context.Background()
		p := mustPrincipal(t, s, "acme", "alice")
		other := mustPrincipal(t, s, "globex", "mallory")
		mustLinode(t, s, other) // another account's changes move only its own position

		l := mustLinode(t, s, p)
		if got := mustRev(t, s, p); got != 1 {
			t.Fatalf("after a create: position %d, want 1", got)
		}
		drain(t, s) // start, progress, finish: three changes per job
		if got := mustRev(t, s, p); got != 4 {
			t.Fatalf("after the create job: position %d, want 4", got)
		}
		for i := range 3 {
			tags := []string{fmt.Sprint("t", i)}
			if _, err := s.UpdateLinode(ctx, p, l.ID, db.LinodeUpdate{Tags: &tags}); err != nil {
				t.Fatal(err)
			}
		}

		tests := []struct {
			name      string
			after     int64
			filter    string
			limit     int
			wantIDs   []int64 // by position
			wantRevs  []int64
			wantNext  int64
			wantFirst string // status of the first event
		}{
			{"everything", 0, "", 100, nil, []int64{4, 5, 6, 7}, 7, "finished"},
			{"after the create job", 4, "", 100, nil, []int64{5, 6, 7}, 7, "notification"},
			{"nothing new", 7, "", 100, nil, []int64{}, 7, ""},
			{"ahead of the account", 50, "", 100, nil, []int64{}, 50, ""},
			{"a page", 0, "", 2, nil, []int64{4, 5}, 5, "finished"},
			{"filtered", 0, `{"action":"linode_create"}`, 100, nil, []int64{4}, 7, "finished"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				f, err := db.ParseEventFilter(tt.filter)
				if err != nil {
					t.Fatal(err)
				}
				events, next, err := s.EventChanges(ctx, p, tt.after, f, tt.limit)
				if err != nil {
					t.Fatal(err)
				}
				revs := []int64{}
				for _, e := range events {
					revs = append(revs, e.Rev)
				}
				if fmt.Sprint(revs) != fmt.Sprint(tt.wantRevs) || next != tt.wantNext {
					t.Errorf("got positions %v, next %d; want %v, next %d", revs, next, tt.wantRevs, tt.wantNext)
				}
				if len(events) > 0 && events[0].Status != tt.wantFirst {
					t.Errorf("first event is %s, want %s", events[0].Status, tt.wantFirst)
				}
			})
		}
		if _, err := db.ParseEventFilter(`{"message":"x"}`); db.ErrorCode(err) != db.Invalid {
			t.Errorf("bad filter: err = %v, want Invalid", err)
		}
	})
}

func mustRev(tb testing.TB, s *db.Store, p *db.Principal) int64 {
	tb.Helper()
	rev, err := s.EventRev(context.Background(), p.AccountID)
	if err != nil {
		tb.Fatal(err)
	}
	return rev
}

// TestSubscribe checks that a subscriber hears of a change made through
// another store on the same database: another process, on PostgreSQL.
func TestSubscribe(t *testing.T) {
	for kind, url := range dbtest.URLs(t) {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			follower, err := db.Open(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			defer follower.Close()
			writer := follower
			if kind == "postgres" {
				if writer, err = db.Open(ctx, url); err != nil {
					t.Fatal(err)
				}
				defer writer.Close()
			}
			p := mustPrincipal(t, writer, "acme", "alice")
			wake, cancel := follower.Subscribe(p.AccountID)
			defer cancel()
			time.Sleep(200 * time.Millisecond) // let the feed start listening
			drainSignals(wake)

			start := time.Now()
			mustLinode(t, writer, p)
			select {
			case <-wake:
				t.Logf("%s: a change reached the subscriber after %v", kind, time.Since(start))
			case <-time.After(10 * time.Second):
				t.Fatal("no signal within 10s of a change")
			}
		})
	}
}

func drainSignals(ch <-chan struct{}) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// TestReady checks that a store is ready once migrated, and not when a
// migration it knows is missing from the database.
func TestReady(t *testing.T) {
	eachStore(t, func(t *testing.T, s *db.Store) {
		ctx := context.Background()
		if err := s.Ready(ctx); err != nil {
			t.Fatalf("Ready after Open = %v, want nil", err)
		}
		if err := s.ForgetMigration(ctx, "20261206060001"); err != nil {
			t.Fatal(err)
		}
		err := s.Ready(ctx)
		if db.ErrorCode(err) != db.Unavailable || err.Error() !=
			"Database migrations pending: 1, first 20261206060001_event_rev" {
			t.Errorf("Ready with a migration missing = %v, want Unavailable naming it", err)
		}
	})
}
