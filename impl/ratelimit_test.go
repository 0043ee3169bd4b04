package impl

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"apiv4/db"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestLimiter(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	l := newLimiter(Rate{Burst: 3, Per: 3 * time.Second}) // one request a second
	l.now = clock.now

	type want struct {
		allowed    bool
		remaining  int
		reset      int64 // Unix seconds
		retryAfter int
	}
	steps := []struct {
		name    string
		advance time.Duration
		want    want
	}{
		{"first", 0, want{true, 2, 1_800_000_001, 0}},
		{"second", 0, want{true, 1, 1_800_000_002, 0}},
		{"third", 0, want{true, 0, 1_800_000_003, 0}},
		{"spent", 0, want{false, 0, 1_800_000_003, 1}},
		{"half a second on", 500 * time.Millisecond, want{false, 0, 1_800_000_003, 1}},
		{"one came back", 500 * time.Millisecond, want{true, 0, 1_800_000_004, 0}},
		{"an hour on, full", time.Hour, want{true, 2, 1_800_003_602, 0}},
	}
	for _, s := range steps {
		clock.advance(s.advance)
		v := l.take("token:1", true)
		got := want{v.allowed, v.remaining, (v.reset.UnixNano() + int64(time.Second) - 1) / int64(time.Second),
			v.retryAfter}
		if got != s.want {
			t.Errorf("%s: got %+v, want %+v", s.name, got, s.want)
		}
	}

	if v := l.take("token:2", true); !v.allowed || v.remaining != 2 {
		t.Errorf("another key: got %+v, want its own full budget", v)
	}
}

func TestLimiterForgetsFullBuckets(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	l := newLimiter(Rate{Burst: 10, Per: time.Minute})
	l.now = clock.now
	for i := range maxBuckets {
		l.take(fmt.Sprint("key:", i), true)
	}
	l.take("spent", true)
	clock.advance(time.Minute)
	l.take("new", true)
	// A minute on every bucket is full again, "spent" too: only "new" stays.
	if got := len(l.buckets); got != 1 {
		t.Errorf("got %d buckets once the others refilled, want 1", got)
	}
}

// TestAuthGateForgetsRefusedTokens: a token found valid passes the gate
// of an address out of budget until the store refuses it (revoked since):
// from then on it is charged and stopped like any unknown token.
func TestAuthGateForgetsRefusedTokens(t *testing.T) {
	g := newAuthGate(Rate{Burst: 1, Per: time.Hour}, nil)
	c := echo.New().NewContext(httptest.NewRequest(http.MethodGet, "/v4/account/events", nil),
		httptest.NewRecorder())
	g.judged(c, "good", nil)
	g.judged(c, "bad", &db.Error{Code: db.Unauthorized, Reason: "Invalid Token"}) // spends the budget
	if !g.isKnown("good") {
		t.Fatalf("a token found valid is not known")
	}
	g.judged(c, "good", &db.Error{Code: db.Unauthorized, Reason: "Invalid Token"})
	if g.isKnown("good") {
		t.Errorf("a token refused since is still known, so the gate would let it through")
	}
}

// TestAuthGateRemembersWhenFull: with maxBuckets valid tokens all recent,
// a new one is still remembered, and the set stays within its bound.
func TestAuthGateRemembersWhenFull(t *testing.T) {
	g := newAuthGate(Rate{Burst: 1, Per: time.Hour}, nil)
	c := echo.New().NewContext(httptest.NewRequest(http.MethodGet, "/v4/account/events", nil),
		httptest.NewRecorder())
	for i := range maxBuckets {
		g.judged(c, fmt.Sprint("token-", i), nil)
	}
	g.judged(c, "newcomer", nil)
	if !g.isKnown("newcomer") {
		t.Errorf("a token found valid when the set was full is not known")
	}
	if n := len(g.known); n > maxBuckets {
		t.Errorf("the gate knows %d tokens, more than its bound %d", n, maxBuckets)
	}
}
