package invariant

import (
	"context"
	"database/sql"
	"slices"
	"testing"
	"time"

	"apiv4/db"
	"apiv4/db/dbtest"
)

// world is a fresh database with two accounts, made through the store:
// acme's alice has an idle Linode and a busy one, globex's mallory has
// nothing.
type world struct {
	url         string
	sql         *sql.DB
	check       *Checker
	idle, busy  int64 // Linode ids
	idleCreate  int64 // the idle Linode's create event
	alice, mall *db.Principal
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{url: dbtest.PostgresURL(t)}
	store, err := db.Open(ctx, w.url)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	principal := func(account, user string) *db.Principal {
		u, err := store.EnsureUser(ctx, account, user)
		if err != nil {
			t.Fatal(err)
		}
		secret, err := store.CreateToken(ctx, u, "t", "*", nil)
		if err != nil {
			t.Fatal(err)
		}
		p, err := store.Authenticate(ctx, secret)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	w.alice, w.mall = principal("acme", "alice"), principal("globex", "mallory")
	for _, id := range []*int64{&w.idle, &w.busy} {
		l, err := store.CreateLinode(ctx, w.alice, db.NewLinode{Region: "us-east", Type: "g6-nanode-1"})
		if err != nil {
			t.Fatal(err)
		}
		*id = l.ID
	}
	// The idle Linode's create job ends as a runner would end it.
	for {
		j, err := store.ClaimJob(ctx, "test", time.Minute)
		if err != nil || j == nil {
			t.Fatalf("claim: %v, %v", j, err)
		}
		if err := store.FinishJob(ctx, j, db.Succeeded, ""); err != nil {
			t.Fatal(err)
		}
		if j.LinodeID == w.idle {
			w.idleCreate = j.EventID
			break
		}
	}

	if w.sql, err = sql.Open("pgx", w.url); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.sql.Close() })
	if w.check, err = Open(w.url); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.check.Close() })
	return w
}

func (w *world) exec(t *testing.T, query string, args ...any) {
	t.Helper()
	if _, err := w.sql.Exec(query, args...); err != nil {
		t.Fatal(err)
	}
}

func kinds(vs []Violation) []string {
	var out []string
	for _, v := range vs {
		if !slices.Contains(out, v.Kind) {
			out = append(out, v.Kind)
		}
	}
	slices.Sort(out)
	return out
}

// TestSnapshot checks a state that keeps every promise, then states that
// each break one, planted by hand.
func TestSnapshot(t *testing.T) {
	tests := []struct {
		name  string
		plant func(t *testing.T, w *world)
		want  []string
	}{
		{"as the store left it", func(*testing.T, *world) {}, nil},
		{"busy count off", func(t *testing.T, w *world) {
			w.exec(t, `UPDATE linodes SET jobs_pending = 0 WHERE id = $1`, w.busy)
		}, []string{KindPending}},
		{"second action queued", func(t *testing.T, w *world) {
			w.exec(t, `UPDATE linodes SET jobs_pending = 2 WHERE id = $1`, w.busy)
			w.exec(t, `INSERT INTO jobs (account_id, linode_id, event_id, action, created)
SELECT account_id, linode_id, event_id, 'linode_shutdown', created FROM jobs WHERE linode_id = $1`, w.busy)
		}, []string{KindBusy, KindOneEvent}},
		{"event of a stranger", func(t *testing.T, w *world) {
			w.exec(t, `UPDATE events SET username = 'mallory' WHERE id = $1`, w.idleCreate)
		}, []string{KindVisibility}},
		{"two create events", func(t *testing.T, w *world) {
			w.exec(t, `INSERT INTO events (account_id, seq, action, status, entity_type, entity_id, created, updated)
SELECT account_id, seq + 100, action, status, entity_type, entity_id, created, updated FROM events WHERE id = $1`,
				w.idleCreate)
		}, []string{KindOneEvent}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			tt.plant(t, w)
			vs, err := w.check.Snapshot(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if got := kinds(vs); !slices.Equal(got, sorted(tt.want)) {
				t.Errorf("got %v, want kinds %v", vs, tt.want)
			}
		})
	}

	t.Run("quiescent with a job left", func(t *testing.T) {
		w := newWorld(t)
		vs, err := w.check.Quiescent(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if got, want := kinds(vs), sorted([]string{KindJobEnd, KindStuck}); !slices.Equal(got, want) {
			t.Errorf("got %v, want kinds %v", vs, want)
		}
	})
}

// TestLog checks a request log that agrees with the database, then logs
// that each show a broken promise.
func TestLog(t *testing.T) {
	w := newWorld(t)
	at := time.Now()
	rec := func(op string, status int, mod func(*Record)) Record {
		r := Record{Account: "acme", User: "alice", Op: op, Status: status, Start: at, End: at.Add(time.Millisecond)}
		at = at.Add(time.Second)
		if mod != nil {
			mod(&r)
		}
		return r
	}
	base := []Record{
		rec("create", 200, func(r *Record) { r.Linode = w.idle }),
		rec("create", 200, func(r *Record) { r.Linode = w.busy }),
		rec("seen", 200, func(r *Record) { r.Event = w.idleCreate }),
		rec("list_events", 200, func(r *Record) { r.Events = []Flags{{ID: w.idleCreate, Seen: true}} }),
	}
	tests := []struct {
		name string
		more []Record
		want []string
	}{
		{"agrees", nil, nil},
		{"an accepted shutdown left no event", []Record{rec("shutdown", 200, func(r *Record) { r.Linode = w.idle })},
			[]string{KindLost}},
		{"an unanswered shutdown may leave none", []Record{rec("shutdown", 0, func(r *Record) { r.Linode = w.idle })},
			nil},
		{"a 500", []Record{rec("list_events", 500, nil)}, []string{KindAnswer}},
		{"a 503 without Retry-After", []Record{rec("get_event", 503, func(r *Record) {
			r.Problem = "Retry-After missing"
		})}, []string{KindAnswer}},
		{"another account's Linode served", []Record{rec("get_linode", 200, func(r *Record) {
			r.Account, r.User, r.Linode, r.Foreign = "globex", "mallory", w.idle, true
		})}, []string{KindVisibility}},
		{"another account's event listed", []Record{rec("list_events", 200, func(r *Record) {
			r.Account, r.User, r.Events = "globex", "mallory", []Flags{{ID: w.idleCreate}}
		})}, []string{KindVisibility}},
		{"seen went backwards", []Record{rec("get_event", 200, func(r *Record) {
			r.Events = []Flags{{ID: w.idleCreate}}
		})}, []string{KindMarks}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vs, err := w.check.Log(context.Background(), append(slices.Clone(base), tt.more...))
			if err != nil {
				t.Fatal(err)
			}
			if got := kinds(vs); !slices.Equal(got, sorted(tt.want)) {
				t.Errorf("got %v, want kinds %v", vs, tt.want)
			}
		})
	}
}

func sorted(s []string) []string { return slices.Sorted(slices.Values(s)) }
