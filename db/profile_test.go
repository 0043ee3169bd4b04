package db_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"apiv4/db"
	"apiv4/db/dbtest"
)

// eventsAbout returns the account's events about one entity, oldest first.
func eventsAbout(tb testing.TB, s *db.Store, p *db.Principal, typ string, id int64) []db.Event {
	tb.Helper()
	filter := fmt.Sprintf(`{"entity.type": %q, "entity.id": %d, "+order_by": "id"}`, typ, id)
	q := db.ListQuery{Page: 1, PageSize: 100, Filter: filter}
	page, err := s.ListEvents(context.Background(), p, q)
	if err != nil {
		tb.Fatalf("list events: %v", err)
	}
	return page.Events
}

// str reads an optional string, "" for nil.
func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// principalWith creates a user with a token of the given scopes.
func principalWith(tb testing.TB, s *db.Store, account, user, scopes string) *db.Principal {
	tb.Helper()
	ctx := context.Background()
	u, err := s.EnsureUser(ctx, account, user)
	if err != nil {
		tb.Fatal(err)
	}
	secret, err := s.CreateToken(ctx, u, "test", scopes, nil)
	if err != nil {
		tb.Fatalf("create token with %q: %v", scopes, err)
	}
	p, err := s.Authenticate(ctx, secret)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

func TestIssueTokenScopes(t *testing.T) {
	eachStore(t, func(t *testing.T, s *db.Store) {
		ctx := context.Background()
		p := principalWith(t, s, "acme", "alice", "linodes:read_write,events:read_only")
		if p.Scopes != "events:read_only linodes:read_write" {
			t.Fatalf("operator token scopes = %q, want the canonical form", p.Scopes)
		}
		tests := []struct {
			name, scopes, want, field string
		}{
			{"same as caller", "", "events:read_only linodes:read_write", ""},
			{"narrower", "linodes:read_only", "linodes:read_only", ""},
			{"canonical", "linodes:read_only, events:read_only", "events:read_only linodes:read_only", ""},
			{"wider level", "events:read_write", "", "scopes"},
			{"other area", "tickets:read_only", "", "scopes"},
			{"everything", "*", "", "scopes"},
			{"unknown", "domains:read_only", "", "scopes"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				tok, secret, err := s.IssueToken(ctx, p, "t", tt.scopes, nil)
				if tt.field != "" {
					var e *db.Error
					if !errors.As(err, &e) || e.Code != db.Invalid || e.Field != tt.field {
						t.Fatalf("err = %v, want Invalid on %s", err, tt.field)
					}
					return
				}
				if err != nil || tok.Scopes != tt.want {
					t.Fatalf("token = %+v, %v; want scopes %q", tok, err, tt.want)
				}
				got, err := s.Authenticate(ctx, secret)
				if err != nil || got.Scopes != tt.want || got.UserID != p.UserID {
					t.Fatalf("its principal = %+v, %v", got, err)
				}
			})
		}
	})
}

func TestTokenLifecycle(t *testing.T) {
	eachStore(t, func(t *testing.T, s *db.Store) {
		ctx := context.Background()
		now := time.Date(2026, 12, 4, 15, 0, 0, 0, time.UTC)
		s.SetClock(func() time.Time { return now })
		p := principalWith(t, s, "acme", "alice", "*")
		bob := principalWith(t, s, "acme", "bob", "*")

		past := now.Add(-time.Second)
		if _, _, err := s.IssueToken(ctx, p, "old", "", &past); db.ErrorCode(err) != db.Invalid {
			t.Fatalf("expiry in the past: err = %v, want Invalid", err)
		}
		soon := now.Add(time.Hour)
		short, shortSecret, err := s.IssueToken(ctx, p, "short", "events:read_only", &soon)
		if err != nil {
			t.Fatal(err)
		}
		long, longSecret, err := s.IssueToken(ctx, p, "long", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if long.Prefix != longSecret[:16] || len(longSecret) != 64 || long.Expiry != nil {
			t.Fatalf("long token = %+v (secret of %d chars)", long, len(longSecret))
		}

		// alice's list holds her operator token and the two new ones; bob sees none of them.
		page, err := s.ListTokens(ctx, p, db.ListQuery{Page: 1, PageSize: 25})
		if err != nil || page.Results != 3 || page.Items[1].ID != short.ID ||
			page.Items[2].ID != long.ID {
			t.Fatalf("alice's tokens = %+v, %v", page, err)
		}
		page, _ = s.ListTokens(ctx, p, db.ListQuery{Page: 1, PageSize: 25, Filter: `{"label": "long"}`})
		if page.Results != 1 || page.Items[0].ID != long.ID {
			t.Fatalf("filtered by label = %+v", page)
		}
		if _, err := s.GetToken(ctx, bob, long.ID); !errors.Is(err, db.ErrNotFound) {
			t.Errorf("bob reads alice's token: err = %v, want ErrNotFound", err)
		}
		if err := s.RevokeToken(ctx, bob, long.ID); !errors.Is(err, db.ErrNotFound) {
			t.Errorf("bob revokes alice's token: err = %v, want ErrNotFound", err)
		}

		renamed, err := s.RenameToken(ctx, p, long.ID, "longer")
		if err != nil || renamed.Label != "longer" || renamed.Scopes != "*" {
			t.Fatalf("rename = %+v, %v", renamed, err)
		}

		// An hour on, the short token has expired: gone from the list and refused.
		now = now.Add(time.Hour)
		if _, err := s.Authenticate(ctx, shortSecret); db.ErrorCode(err) != db.Unauthorized {
			t.Errorf("expired token: err = %v, want Unauthorized", err)
		}
		if _, err := s.GetToken(ctx, p, short.ID); !errors.Is(err, db.ErrNotFound) {
			t.Errorf("get expired token: err = %v, want ErrNotFound", err)
		}

		if err := s.RevokeToken(ctx, p, long.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Authenticate(ctx, longSecret); db.ErrorCode(err) != db.Unauthorized {
			t.Errorf("revoked token: err = %v, want Unauthorized", err)
		}
		if err := s.RevokeToken(ctx, p, long.ID); !errors.Is(err, db.ErrNotFound) {
			t.Errorf("revoke twice: err = %v, want ErrNotFound", err)
		}
		page, _ = s.ListTokens(ctx, p, db.ListQuery{Page: 1, PageSize: 25})
		if page.Results != 1 || page.Items[0].ID != p.TokenID {
			t.Errorf("after expiry and revocation the list = %+v, want only the operator token", page)
		}

		var actions []string
		for _, e := range eventsAbout(t, s, p, "token", long.ID) {
			actions = append(actions, e.Action+" "+str(e.EntityLabel)+" "+str(e.Username))
		}
		want := "[token_create long alice token_update longer alice token_delete longer alice]"
		if got := fmt.Sprint(actions); got != want {
			t.Errorf("token events = %s, want %s", got, want)
		}
	})
}

// TestRevocationAcrossProcesses revokes a token through one store and sees
// another store on the same database refuse it on its next request.
func TestRevocationAcrossProcesses(t *testing.T) {
	ctx := context.Background()
	url := dbtest.PostgresURL(t)
	a, err := db.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := db.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	p := principalWith(t, a, "acme", "alice", "*")
	tok, secret, err := a.IssueToken(ctx, p, "shared", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Authenticate(ctx, secret); err != nil {
		t.Fatalf("before revocation: %v", err)
	}
	if err := a.RevokeToken(ctx, p, tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Authenticate(ctx, secret); db.ErrorCode(err) != db.Unauthorized {
		t.Fatalf("other process after revocation: err = %v, want Unauthorized", err)
	}
}
