package db_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"apiv4/db"
	"apiv4/db/dbtest"
)

// eachStore runs fn against a fresh store of each kind.
func eachStore(t *testing.T, fn func(t *testing.T, s *db.Store)) {
	t.Helper()
	for kind, url := range dbtest.URLs(t) {
		t.Run(kind, func(t *testing.T) {
			s, err := db.Open(context.Background(), url)
			if err != nil {
				t.Fatalf("open %s: %v", kind, err)
			}
			t.Cleanup(func() { s.Close() })
			fn(t, s)
		})
	}
}

// mustPrincipal creates a user with a token and returns its principal.
func mustPrincipal(tb testing.TB, s *db.Store, account, user string) *db.Principal {
	tb.Helper()
	ctx := context.Background()
	u, err := s.EnsureUser(ctx, account, user)
	if err != nil {
		tb.Fatalf("ensure user: %v", err)
	}
	secret, err := s.CreateToken(ctx, u, "test", "*", nil)
	if err != nil {
		tb.Fatalf("create token: %v", err)
	}
	p, err := s.Authenticate(ctx, secret)
	if err != nil {
		tb.Fatalf("authenticate: %v", err)
	}
	return p
}

func mustLinode(tb testing.TB, s *db.Store, p *db.Principal) *db.Linode {
	tb.Helper()
	img := "linode/debian12"
	l, err := s.CreateLinode(context.Background(), p, db.NewLinode{
		Region: "us-east", Type: "g6-nanode-1", Image: &img, ImageLabel: "Debian 12", Booted: true,
	})
	if err != nil {
		tb.Fatalf("create linode: %v", err)
	}
	return l
}

// aliceIdle returns alice of acme and a Linode of hers whose create job
// has ended.
func aliceIdle(tb testing.TB, s *db.Store) (*db.Principal, *db.Linode) {
	tb.Helper()
	p := mustPrincipal(tb, s, "acme", "alice")
	l := mustLinode(tb, s, p)
	drain(tb, s)
	return p, l
}

// drain runs every runnable job to a successful end, as a runner would.
func drain(tb testing.TB, s *db.Store) int {
	tb.Helper()
	return runJobs(tb, s, func(*db.Job) db.Outcome { return db.Succeeded })
}

// runJobs runs every runnable job to the end that outcome picks for it and
// returns how many ran.
func runJobs(tb testing.TB, s *db.Store, outcome func(*db.Job) db.Outcome) int {
	tb.Helper()
	ctx := context.Background()
	n := 0
	for {
		j, err := s.ClaimJob(ctx, "test", time.Minute)
		if err != nil {
			tb.Fatalf("claim: %v", err)
		}
		if j == nil {
			return n
		}
		if err := s.StartJob(ctx, j); err != nil {
			tb.Fatalf("start: %v", err)
		}
		if err := s.ProgressJob(ctx, j, 50, time.Second, time.Minute); err != nil {
			tb.Fatalf("progress: %v", err)
		}
		if err := s.FinishJob(ctx, j, outcome(j), ""); err != nil {
			tb.Fatalf("finish: %v", err)
		}
		n++
	}
}

func TestAuthenticate(t *testing.T) {
	eachStore(t, func(t *testing.T, s *db.Store) {
		ctx := context.Background()
		u, err := s.EnsureUser(ctx, "acme", "alice")
		if err != nil {
			t.Fatal(err)
		}
		again, err := s.EnsureUser(ctx, "acme", "alice")
		if err != nil || again.ID != u.ID {
			t.Fatalf("EnsureUser again = %v, %v; want the same user %d", again, err, u.ID)
		}
		if _, err := s.EnsureUser(ctx, "other", "alice"); db.ErrorCode(err) != db.Invalid {
			t.Fatalf("EnsureUser under another account: err = %v, want Invalid", err)
		}
		for _, bad := range []string{"", "esc\x1b[31m", "two words", strings.Repeat("a", 65)} {
			_, err := s.EnsureUser(ctx, "acme", bad)
			mustReason(t, fmt.Sprintf("username %q", bad), err, db.Invalid,
				"A username is 1 to 64 letters, digits, '.', '_', '-', '+' or '@'.")
			_, err = s.EnsureUser(ctx, bad, "zed")
			mustReason(t, fmt.Sprintf("account %q", bad), err, db.Invalid,
				"An account name is 1 to 64 letters, digits, '.', '_', '-', '+' or '@'.")
		}
		secret, err := s.CreateToken(ctx, u, "t", "*", nil)
		if err != nil {
			t.Fatal(err)
		}
		p, err := s.Authenticate(ctx, secret)
		if err != nil || p.Username != "alice" || p.AccountID != u.AccountID {
			t.Fatalf("Authenticate = %+v, %v", p, err)
		}
		past := time.Now().Add(-time.Minute)
		expired, _ := s.CreateToken(ctx, u, "old", "*", &past)
		for _, bad := range []string{"", "nope", secret + "x", expired} {
			if _, err := s.Authenticate(ctx, bad); db.ErrorCode(err) != db.Unauthorized {
				t.Errorf("Authenticate(%q) err = %v, want Unauthorized", bad, err)
			}
		}
	})
}

func TestBusyAndQueuedBoot(t *testing.T) {
	eachStore(t, func(t *testing.T, s *db.Store) {
		ctx := context.Background()
		p := mustPrincipal(t, s, "acme", "alice")
		l := mustLinode(t, s, p)
		if l.Label != fmt.Sprintf("linode%d", l.ID) || l.Status != "provisioning" {
			t.Fatalf("new linode label %q status %q", l.Label, l.Status)
		}

		// The create job is pending: every action but boot is refused.
		_, _, err := s.Act(ctx, p, l.ID, db.Action{Name: "linode_shutdown"})
		if !errors.Is(err, db.ErrBusy) {
			t.Fatalf("shutdown while provisioning: err = %v, want ErrBusy", err)
		}
		_, boot, err := s.Act(ctx, p, l.ID, db.Action{Name: "linode_boot"})
		if err != nil || boot.Status != "scheduled" {
			t.Fatalf("boot while busy = %+v, %v; want a scheduled event", boot, err)
		}
		// One job already waits: a second boot is refused, not piled up.
		if _, _, err := s.Act(ctx, p, l.ID, db.Action{Name: "linode_boot"}); !errors.Is(err, db.ErrBusy) {
			t.Fatalf("second boot while one waits: err = %v, want ErrBusy", err)
		}
		if n := drain(t, s); n != 2 {
			t.Fatalf("ran %d jobs, want 2 (create, then the queued boot)", n)
		}

		got, err := s.GetLinode(ctx, p, l.ID)
		if err != nil || got.Status != "running" || got.JobsPending != 0 {
			t.Fatalf("after jobs: %+v, %v; want running and idle", got, err)
		}
		e, err := s.GetEvent(ctx, p, boot.ID)
		if err != nil || e.Status != "finished" || *e.PercentComplete != 100 {
			t.Fatalf("boot event after job = %+v, %v", e, err)
		}
		if *e.Message != "Booting Linode "+l.Label {
			t.Errorf("message = %q", *e.Message)
		}

		_, _, err = s.Act(ctx, p, l.ID, db.Action{Name: "password_reset", RequireOffline: true})
		if db.ErrorCode(err) != db.Invalid {
			t.Fatalf("password reset while running: err = %v, want Invalid", err)
		}
		other := mustPrincipal(t, s, "other", "bob")
		if _, _, err := s.Act(ctx, other, l.ID, db.Action{Name: "linode_boot"}); !errors.Is(err, db.ErrNotFound) {
			t.Fatalf("boot of another account's linode: err = %v, want ErrNotFound", err)
		}
	})
}

func TestLinodeLabelsAndFilters(t *testing.T) {
	eachStore(t, func(t *testing.T, s *db.Store) {
		ctx := context.Background()
		p := mustPrincipal(t, s, "acme", "alice")
		first := mustLinode(t, s, p)
		// Take the label the next Linode would be given.
		next := fmt.Sprintf("linode%d", first.ID+1)
		tags := []string{"a&b", `q"uote`, "web"}
		_, err := s.UpdateLinode(ctx, p, first.ID, db.LinodeUpdate{Label: &next, Tags: &tags})
		if err != nil {
			t.Fatal(err)
		}
		second := mustLinode(t, s, p)
		if second.Label != next+"-2" {
			t.Errorf("generated label = %q, want %q", second.Label, next+"-2")
		}

		tests := []struct {
			filter string
			want   int
		}{
			{`{"tags": "a&b"}`, 1},
			{`{"tags": "q\"uote"}`, 1},
			{`{"tags": "we"}`, 0},
			{`{"tags": {"+contains": "we"}}`, 1},
			{`{"tags": {"+contains": "\",\""}}`, 0},
			{`{"label": {"+contains": "LINODE"}}`, 2},
			{`{"+order_by": "id"}`, 2},
			{fmt.Sprintf(`{"ipv4": %q}`, second.IPv4()[0]), 1},
			{fmt.Sprintf(`{"ipv4": {"+neq": %q}}`, second.IPv4()[0]), 1},
			{`{"ipv4": "203.0.113.77"}`, 0},
		}
		for _, bad := range []string{`{"ipv4": "not an address"}`, `{"ipv4": "::1"}`, `{"ipv4": {"+gt": "1.2.3.4"}}`} {
			_, err := s.ListLinodes(ctx, p, db.ListQuery{Page: 1, PageSize: 25, Filter: bad})
			if db.ErrorCode(err) != db.Invalid {
				t.Errorf("%s: err = %v, want Invalid", bad, err)
			}
		}
		for _, tt := range tests {
			page, err := s.ListLinodes(ctx, p, db.ListQuery{Page: 1, PageSize: 25, Filter: tt.filter})
			if err != nil {
				t.Fatalf("%s: %v", tt.filter, err)
			}
			if page.Results != tt.want {
				t.Errorf("%s: %d results, want %d", tt.filter, page.Results, tt.want)
			}
		}

		huge := db.ListQuery{Page: 1 << 62, PageSize: 500}
		page, err := s.ListLinodes(ctx, p, huge)
		if err != nil || len(page.Linodes) != 0 || page.Results != 2 {
			t.Errorf("page 2^62: %d linodes of %d, err %v; want none of 2", len(page.Linodes), page.Results, err)
		}
		events, err := s.ListEvents(ctx, p, huge)
		if err != nil || len(events.Events) != 0 {
			t.Errorf("events page 2^62: %d events, err %v; want none", len(events.Events), err)
		}
		asc, err := s.ListEvents(ctx, p, db.ListQuery{Page: 1, PageSize: 25, Filter: `{"+order_by":"id"}`})
		if err != nil || len(asc.Events) < 2 || asc.Events[0].ID > asc.Events[1].ID {
			t.Errorf("+order_by id alone must be ascending: %v", err)
		}
	})
}

func TestListEvents(t *testing.T) {
	eachStore(t, func(t *testing.T, s *db.Store) {
		ctx := context.Background()
		p := mustPrincipal(t, s, "acme", "alice")
		var ids []int64
		for range 30 {
			l := mustLinode(t, s, p)
			ids = append(ids, l.ID)
		}
		first, err := s.ListEvents(ctx, p, db.ListQuery{Page: 1, PageSize: 25})
		if err != nil {
			t.Fatal(err)
		}
		if first.Results != 30 || first.Pages != 2 || len(first.Events) != 25 {
			t.Fatalf("page 1: results %d pages %d len %d", first.Results, first.Pages, len(first.Events))
		}
		second, _ := s.ListEvents(ctx, p, db.ListQuery{Page: 2, PageSize: 25})
		all := append(first.Events, second.Events...)
		for i := 1; i < len(all); i++ {
			if all[i].ID >= all[i-1].ID {
				t.Fatalf("events not newest first at %d: %d after %d", i, all[i].ID, all[i-1].ID)
			}
		}
		if len(all) != 30 {
			t.Fatalf("two pages hold %d events, want 30", len(all))
		}

		// Mark the 10th newest seen: it and every earlier one are seen.
		mark := all[9].ID
		if err := s.MarkEventSeen(ctx, p, mark); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkEventSeen(ctx, p, all[20].ID); err != nil { // never goes back
			t.Fatal(err)
		}
		if err := s.MarkEventRead(ctx, p, all[0].ID); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name   string
			filter string
			want   int
		}{
			{"seen", `{"seen": true}`, 21},
			{"unseen", `{"seen": false}`, 9},
			{"read", `{"read": true}`, 1},
			{"entity", fmt.Sprintf(`{"entity.id": %d, "entity.type": "linode"}`, ids[3]), 1},
			{"id range", fmt.Sprintf(`{"id": {"+gte": %d, "+lt": %d}}`, all[9].ID, all[4].ID), 5},
			{"or", fmt.Sprintf(`{"+or": [{"id": %d}, {"id": %d}]}`, all[1].ID, all[2].ID), 2},
			{"created", `{"+order_by": "created", "+order": "desc", "created": {"+gte": "2020-01-01T00:00:00"}}`, 30},
			{"action", `{"action": "linode_boot"}`, 0},
		}
		for _, tt := range tests {
			page, err := s.ListEvents(ctx, p, db.ListQuery{Page: 1, PageSize: 100, Filter: tt.filter})
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if page.Results != tt.want || len(page.Events) != tt.want {
				t.Errorf("%s: results %d, len %d; want %d", tt.name, page.Results, len(page.Events), tt.want)
			}
		}

		_, err = s.ListEvents(ctx, p, db.ListQuery{Page: 1, PageSize: 25, Filter: `{"foo": 1}`})
		var e *db.Error
		if !errors.As(err, &e) || e.Reason != "Cannot filter on foo" || e.Field != "X-Filter" {
			t.Fatalf("bad key: err = %v", err)
		}
		other := mustPrincipal(t, s, "other", "bob")
		if _, err := s.GetEvent(ctx, other, all[0].ID); !errors.Is(err, db.ErrNotFound) {
			t.Fatalf("another account's event: err = %v", err)
		}
		if err := s.MarkEventSeen(ctx, other, all[0].ID); !errors.Is(err, db.ErrNotFound) {
			t.Fatalf("mark another account's event: err = %v", err)
		}
	})
}

func TestUpdateLinode(t *testing.T) {
	eachStore(t, func(t *testing.T, s *db.Store) {
		ctx := context.Background()
		p := mustPrincipal(t, s, "acme", "alice")
		l := mustLinode(t, s, p)
		label, tags := "web-01", []string{"prod"}
		got, err := s.UpdateLinode(ctx, p, l.ID, db.LinodeUpdate{Label: &label, Tags: &tags})
		if err != nil || got.Label != label || fmt.Sprint(got.Tags()) != "[prod]" {
			t.Fatalf("UpdateLinode = %+v, %v", got, err)
		}
		other := mustLinode(t, s, p)
		_, err = s.UpdateLinode(ctx, p, other.ID, db.LinodeUpdate{Label: &label})
		var e *db.Error
		if !errors.As(err, &e) || e.Field != "label" {
			t.Fatalf("taken label: err = %v, want Invalid on label", err)
		}
	})
}

// TestUpdateLinodeConcurrently: updates that each change one alert
// threshold, sent at once, lose none of the others' changes, and each
// records one event.
func TestUpdateLinodeConcurrently(t *testing.T) {
	eachStore(t, func(t *testing.T, s *db.Store) {
		ctx := context.Background()
		p := mustPrincipal(t, s, "acme", "alice")
		l := mustLinode(t, s, p)
		sets := []func(a *db.Alerts){
			func(a *db.Alerts) { a.CPU = 11 }, func(a *db.Alerts) { a.IO = 12 },
			func(a *db.Alerts) { a.NetworkIn = 13 }, func(a *db.Alerts) { a.NetworkOut = 14 },
			func(a *db.Alerts) { a.TransferQuota = 15 },
		}
		before, err := s.ListEvents(ctx, p, db.ListQuery{Page: 1, PageSize: 25})
		if err != nil {
			t.Fatal(err)
		}
		errs := make(chan error, len(sets))
		for _, set := range sets {
			go func() {
				_, err := s.UpdateLinode(ctx, p, l.ID, db.LinodeUpdate{Alerts: set})
				errs <- err
			}()
		}
		for range sets {
			if err := <-errs; err != nil {
				t.Fatalf("UpdateLinode: %v", err)
			}
		}

		got, err := s.GetLinode(ctx, p, l.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := db.Alerts{CPU: 11, IO: 12, NetworkIn: 13, NetworkOut: 14, TransferQuota: 15}
		if got.Alerts() != want {
			t.Errorf("alerts = %+v, want %+v", got.Alerts(), want)
		}
		after, err := s.ListEvents(ctx, p, db.ListQuery{Page: 1, PageSize: 25})
		if err != nil {
			t.Fatal(err)
		}
		if n := after.Results - before.Results; n != len(sets) {
			t.Errorf("%d events recorded, want %d", n, len(sets))
		}
	})
}
