package db_test

import (
	"context"
	"testing"

	"apiv4/db"
)

func TestFeedback(t *testing.T) {
	eachStore(t, func(t *testing.T, s *db.Store) {
		ctx := context.Background()
		alice := mustPrincipal(t, s, "acme", "alice")
		bob := mustPrincipal(t, s, "other", "bob")
		for _, f := range []struct {
			p   *db.Principal
			msg string
		}{{alice, "More regions, please."}, {bob, "Line one\nline two"}, {alice, "Thanks!"}} {
			if err := s.SendFeedback(ctx, f.p, f.msg); err != nil {
				t.Fatal(err)
			}
		}
		all, err := s.ListFeedback(ctx, 0, 100)
		if err != nil || len(all) != 3 {
			t.Fatalf("list = %+v, %v", all, err)
		}
		got := all[1]
		if got.Account != "other" || got.Username != "bob" || got.Message != "Line one\nline two" ||
			got.TokenID != bob.TokenID || got.UserID != bob.UserID {
			t.Errorf("second message = %+v", got)
		}
		rest, err := s.ListFeedback(ctx, all[0].ID, 1)
		if err != nil || len(rest) != 1 || rest[0].ID != all[1].ID {
			t.Errorf("after the first, one at most = %+v, %v", rest, err)
		}
	})
}
