package db

import (
	"context"
	"fmt"
	"testing"
	"time"

	"apiv4/db/dbtest"
)

// TestTokenCacheRevocation shows the bound the token cache puts on
// revocation: a token revoked in the database stops working on a process
// that cached it once the TTL has passed, and at once without the cache.
func TestTokenCacheRevocation(t *testing.T) {
	tests := []struct {
		name         string
		ttl          time.Duration
		wait         time.Duration // after the revocation
		validRevoked bool          // does the revoked token still work?
	}{
		{"within the ttl", 5 * time.Second, 4 * time.Second, true},
		{"after the ttl", 5 * time.Second, 5 * time.Second, false},
		{"without a cache", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s, secret := mustTokenStore(t, dbtest.PostgresURL(t))
			now := time.Now()
			s.SetClock(func() time.Time { return now })
			s.SetTokenCacheTTL(tt.ttl)

			if _, err := s.Authenticate(ctx, secret); err != nil {
				t.Fatalf("before revocation: %v", err)
			}
			mustRevoke(t, s, secret)
			now = now.Add(tt.wait)
			_, err := s.Authenticate(ctx, secret)
			if got := err == nil; got != tt.validRevoked {
				t.Errorf("revoked token valid = %v (err %v), want %v", got, err, tt.validRevoked)
			}
		})
	}
}

func TestTokenCacheExpiryAndBound(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	c := newTokenCache(time.Minute, 100)
	expiry := micros(now.Add(time.Second))
	c.put("expiring", &Principal{UserID: 1}, &expiry, now)
	if p, ok := c.get("expiring", now); !ok || p.UserID != 1 {
		t.Fatalf("get before expiry = %v, %v", p, ok)
	}
	if _, ok := c.get("expiring", now.Add(time.Second)); ok {
		t.Errorf("an expired token was served from the cache")
	}

	for i := range 1000 {
		c.put(fmt.Sprint(i), &Principal{UserID: int64(i)}, nil, now)
	}
	if n := c.len(); n > 100 {
		t.Errorf("cache holds %d entries, want at most 100", n)
	}
	if p, ok := c.get("999", now); !ok || p.UserID != 999 {
		t.Errorf("the newest entry is missing: %v, %v", p, ok)
	}
}

// TestIdentifyTokenRevocation: IdentifyToken answers from its cache once
// it has seen a token, and the list and the settings update refuse the
// token once it is revoked anywhere, on every store: the update changes
// nothing and does not tell a missing Linode from one of the account's.
func TestIdentifyTokenRevocation(t *testing.T) {
	for kind, url := range dbtest.URLs(t) {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			s, secret := mustTokenStore(t, url)
			p, err := s.IdentifyToken(ctx, secret)
			if err != nil {
				t.Fatalf("before revocation: %v", err)
			}
			l, err := s.CreateLinode(ctx, p, NewLinode{Region: "us-east", Type: "g6-nanode-1", Label: "kept"})
			if err != nil {
				t.Fatal(err)
			}
			mustRevoke(t, s, secret)

			cached, err := s.IdentifyToken(ctx, secret)
			if err != nil || *cached != *p {
				t.Fatalf("IdentifyToken after revocation = %+v, %v; want the cached %+v", cached, err, p)
			}
			if _, err := s.Authenticate(ctx, secret); ErrorCode(err) != Unauthorized {
				t.Errorf("Authenticate after revocation: err = %v, want Unauthorized", err)
			}
			for _, filter := range []string{"", `{"action":"linode_boot"}`} {
				_, err := s.ListEvents(ctx, cached, ListQuery{Page: 1, PageSize: 25, Filter: filter})
				if ErrorCode(err) != Unauthorized {
					t.Errorf("ListEvents(filter %q) with the revoked token: err = %v, want Unauthorized",
						filter, err)
				}
			}
			label := "changed"
			for _, id := range []int64{l.ID, l.ID + 1000} {
				_, err := s.UpdateLinode(ctx, cached, id, LinodeUpdate{Label: &label})
				if ErrorCode(err) != Unauthorized {
					t.Errorf("UpdateLinode(%d) with the revoked token: err = %v, want Unauthorized", id, err)
				}
			}
			var labels []string
			if err := s.db.NewSelect().Table("linodes").Column("label").Scan(ctx, &labels); err != nil {
				t.Fatal(err)
			}
			n, err := s.CountEvents(ctx, p.AccountID)
			if err != nil {
				t.Fatal(err)
			}
			if len(labels) != 1 || labels[0] != "kept" || n != 1 {
				t.Errorf("after the refused updates: labels %q, %d events; want [kept] and linode_create only",
					labels, n)
			}
		})
	}
}

// mustTokenStore opens a store on url, closed when the test ends, with a
// user alice of account acme and a token of hers, whose secret it returns.
func mustTokenStore(tb testing.TB, url string) (*Store, string) {
	tb.Helper()
	ctx := context.Background()
	s, err := Open(ctx, url)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	u, err := s.EnsureUser(ctx, "acme", "alice")
	if err != nil {
		tb.Fatal(err)
	}
	secret, err := s.CreateToken(ctx, u, "t", "*", nil)
	if err != nil {
		tb.Fatal(err)
	}
	return s, secret
}

// mustRevoke revokes a token in the database, as another process would.
func mustRevoke(tb testing.TB, s *Store, secret string) {
	tb.Helper()
	_, err := s.db.ExecContext(context.Background(), "UPDATE tokens SET revoked = true WHERE hash = ?",
		hashToken(secret))
	if err != nil {
		tb.Fatal(err)
	}
}
