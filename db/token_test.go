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
			s, err := Open(ctx, dbtest.PostgresURL(t))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			now := time.Now()
			s.SetClock(func() time.Time { return now })
			s.SetTokenCacheTTL(tt.ttl)

			u, err := s.EnsureUser(ctx, "acme", "alice")
			if err != nil {
				t.Fatal(err)
			}
			secret, err := s.CreateToken(ctx, u, "t", "*", nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Authenticate(ctx, secret); err != nil {
				t.Fatalf("before revocation: %v", err)
			}
			_, err = s.db.ExecContext(ctx, "UPDATE tokens SET revoked = true WHERE hash = ?",
				hashToken(secret))
			if err != nil {
				t.Fatal(err)
			}
			now = now.Add(tt.wait)
			_, err = s.Authenticate(ctx, secret)
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
