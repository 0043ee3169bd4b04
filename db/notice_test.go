package db_test

import (
	"context"
	"testing"

	"apiv4/db"
)

// notices returns the notice events a principal sees, newest first.
func notices(tb testing.TB, s *db.Store, p *db.Principal) []db.Event {
	tb.Helper()
	page, err := s.ListEvents(context.Background(), p,
		db.ListQuery{Page: 1, PageSize: 100, Filter: `{"action": "notice"}`})
	if err != nil {
		tb.Fatal(err)
	}
	return page.Events
}

func TestPostNotice(t *testing.T) {
	eachStore(t, func(t *testing.T, s *db.Store) {
		ctx := context.Background()
		alice := mustPrincipal(t, s, "acme", "alice")
		carol := mustPrincipal(t, s, "acme", "carol")
		bob := mustPrincipal(t, s, "other", "bob")
		dan := mustPrincipal(t, s, "third", "dan")

		n := db.Notice{Message: "Read our new post", Link: "https://blog.example.com/post",
			Accounts: []string{"acme", "nosuch"}}
		if _, err := s.PostNotice(ctx, n); db.ErrorCode(err) != db.Invalid {
			t.Fatalf("unknown account: err = %v, want Invalid", err)
		}
		if got := notices(t, s, alice); len(got) != 0 {
			t.Fatalf("a refused notice left %d events", len(got))
		}

		n.Accounts = []string{"acme", "other"}
		if count, err := s.PostNotice(ctx, n); err != nil || count != 2 {
			t.Fatalf("post to two accounts = %d, %v", count, err)
		}
		for _, p := range []*db.Principal{alice, carol, bob} {
			got := notices(t, s, p)
			if len(got) != 1 {
				t.Fatalf("%s sees %d notices, want 1", p.Username, len(got))
			}
			e := got[0]
			if e.Status != "notification" || e.Username != nil || str(e.Message) != n.Message ||
				str(e.EntityType) != "community" || str(e.EntityURL) != n.Link || e.EntityID != nil {
				t.Errorf("%s's notice = %+v", p.Username, e)
			}
		}
		if got := notices(t, s, dan); len(got) != 0 {
			t.Errorf("dan's account was not named but sees %d notices", len(got))
		}

		count, err := s.PostNotice(ctx, db.Notice{Message: "Maintenance window tonight", All: true})
		if err != nil || count != 3 {
			t.Fatalf("post to all = %d, %v; want 3 accounts", count, err)
		}
		got := notices(t, s, dan)
		if len(got) != 1 || str(got[0].EntityType) != "account" || str(got[0].EntityLabel) != "third" ||
			str(got[0].EntityURL) != "/v4/account" {
			t.Errorf("dan's notice without a link = %+v", got)
		}
	})
}
