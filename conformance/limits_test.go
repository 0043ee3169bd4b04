package conformance

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"apiv4/db/dbtest"
	"apiv4/gen"
)

// startLimited starts a server of its own on a fresh SQLite file, with
// extra flags, and returns a client of it acting as a new user of acme,
// and that user's token and another user's.
func startLimited(t *testing.T, extra ...string) (a *api, owner, peer string) {
	t.Helper()
	if !local() {
		t.Skip("needs a server of its own")
	}
	t.Parallel()
	databaseURL := migrated(t, dbtest.SQLiteURL(t))
	var err error
	if owner, err = createToken(databaseURL, "alice", "acme", "*"); err != nil {
		t.Fatal(err)
	}
	if peer, err = createToken(databaseURL, "bob", "acme", "*"); err != nil {
		t.Fatal(err)
	}
	s := serveFor(t, databaseURL, extra...)
	tg := &target{name: "limited", url: "http://" + s.addr, owner: owner, server: s}
	return tg.api(t, owner), owner, peer
}

// intHeader returns a header's value as an integer, failing the test
// when it is not one.
func intHeader(tb testing.TB, r *reply, name string) int64 {
	tb.Helper()
	n, err := strconv.ParseInt(r.Header.Get(name), 10, 64)
	if err != nil {
		tb.Fatalf("%s %s → %d: %s = %q, want an integer", r.Method, r.Path, r.Status, name,
			r.Header.Get(name))
	}
	return n
}

// TestRateLimit spends a token's budget of five requests a minute and
// checks the X-RateLimit-* headers on the way, then that every operation
// answers 429 with Retry-After in whole seconds while another token of
// the account is still served; and that an address sending unknown
// tokens is refused after three, for unknown tokens only.
func TestRateLimit(t *testing.T) {
	spec := mustSpec(t).spec
	a, _, peer := startLimited(t, "--rate-limit", "5", "--auth-fail-limit", "3")

	start := time.Now().Unix()
	for i := range 5 {
		r := a.must(http.StatusOK, "GET", "/account/events", nil)
		if got := intHeader(t, r, "X-RateLimit-Limit"); got != 5 {
			t.Errorf("request %d: X-RateLimit-Limit = %d, want 5", i+1, got)
		}
		if got := intHeader(t, r, "X-RateLimit-Remaining"); got != int64(4-i) {
			t.Errorf("request %d: X-RateLimit-Remaining = %d, want %d", i+1, got, 4-i)
		}
		// The budget refills in a minute; the reset is when it is whole.
		if got := intHeader(t, r, "X-RateLimit-Reset"); got < start || got > time.Now().Unix()+61 {
			t.Errorf("request %d: X-RateLimit-Reset = %d, want a time within the next minute", i+1, got)
		}
	}

	for _, o := range specOps(spec) {
		path := o.path
		for _, p := range params(o) {
			if p.In == "path" {
				path = strings.ReplaceAll(path, "{"+p.Name+"}", fmt.Sprint(unknownID))
			}
		}
		r := a.do(o.method, path, nil)
		r.wantError(t, http.StatusTooManyRequests, "Too many requests", "")
		// One request comes back every 12 seconds.
		if got := intHeader(t, r, "Retry-After"); got < 1 || got > 12 {
			t.Errorf("%s: Retry-After = %d, want 1 to 12 seconds", operationID(o.op), got)
		}
		if got := intHeader(t, r, "X-RateLimit-Remaining"); got != 0 {
			t.Errorf("%s: X-RateLimit-Remaining = %d, want 0", operationID(o.op), got)
		}
	}
	a.as(peer).must(http.StatusOK, "GET", "/account/events", nil)

	unknown := a.as(strings.Repeat("0", 64))
	for range 3 {
		unknown.do("GET", "/account/events", nil).wantError(t, http.StatusUnauthorized, "Invalid Token", "")
	}
	r := unknown.do("GET", "/account/events", nil)
	r.wantError(t, http.StatusTooManyRequests, "Too many requests", "")
	intHeader(t, r, "Retry-After")
	// A token the server found valid before still gets through from that
	// address, and routes that need no token are not limited.
	a.as(peer).must(http.StatusOK, "GET", "/account/events", nil)
	unknown.do("GET", "/account/events", nil).wantError(t, http.StatusTooManyRequests,
		"Too many requests", "")
	for _, path := range []string{"/healthz", "/readyz", "/openapi.json"} {
		resp, err := http.Get(strings.TrimSuffix(a.base, "/v4") + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s from the limited address: %d, want 200", path, resp.StatusCode)
		}
	}
}

// TestRequestDeadline runs a server whose requests may take one
// nanosecond: every request that reaches the database is answered 503
// with Retry-After, never 500.
func TestRequestDeadline(t *testing.T) {
	a, _, _ := startLimited(t, "--request-timeout", "1ns")
	for _, path := range []string{"/account/events", "/linode/instances", "/linode/instances/1"} {
		r := a.do("GET", path, nil)
		r.wantError(t, http.StatusServiceUnavailable, "Service unavailable, try again shortly.", "")
		if got := intHeader(t, r, "Retry-After"); got < 1 {
			t.Errorf("GET %s: Retry-After = %d, want at least 1", path, got)
		}
	}
	r := a.do("POST", "/linode/instances", createBody(newLabel("late"), false))
	r.wantError(t, http.StatusServiceUnavailable, "Service unavailable, try again shortly.", "")
}

// TestSlowClients checks that a client cannot hold a connection by
// sending its request slowly: with a read timeout of one second, a
// connection stalled in its headers, or in its body, is closed by the
// server. The test waits at most a minute for that.
func TestSlowClients(t *testing.T) {
	a, owner, _ := startLimited(t, "--read-timeout", "1s")
	addr := strings.TrimPrefix(strings.TrimSuffix(a.base, "/v4"), "http://")
	tests := []struct{ name, sent string }{
		{"stalled headers", "GET /v4/account/events HTTP/1.1\r\nHost: x\r\nAuthor"},
		{"stalled body", "PUT /v4/linode/instances/1 HTTP/1.1\r\nHost: x\r\n" +
			"Authorization: Bearer " + owner + "\r\nContent-Type: application/json\r\n" +
			"Content-Length: 100\r\n\r\n{\"tags\":"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := io.WriteString(conn, tt.sent); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(time.Minute))
			got, err := io.ReadAll(conn)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the server kept the connection a minute")
			}
			if len(got) == 0 {
				return // closed without an answer
			}
			resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(string(got))), nil)
			if err != nil || resp.StatusCode < 400 || resp.StatusCode >= 500 {
				t.Errorf("got %q before the close, want nothing or a 4xx answer", got)
			}
		})
	}
}

// TestStreamLimit holds a token's limit of two event streams open and
// checks that one more, by GET or HEAD, is refused 429 in the error shape
// with Retry-After while another token still opens one; that opening
// spends one request of the token's rate budget and the frames of an open
// stream none; and that a stream closed gives its slot back.
func TestStreamLimit(t *testing.T) {
	a, owner, peer := startLimited(t, "--stream-limit", "2", "--rate-limit", "8")
	base := strings.TrimSuffix(a.base, "/v4")
	quiet := entityFilter(t, unknownID)
	first := openStream(t, base, owner, quiet, -1)
	openStream(t, base, owner, quiet, -1)

	refused := a.do("GET", "/account/events/stream", nil)
	refused.wantError(t, http.StatusTooManyRequests, "Too many event streams open for this token", "")
	if got := intHeader(t, refused, "Retry-After"); got != 2 {
		t.Errorf("Retry-After = %d, want 2, the stream's reconnection delay", got)
	}
	if got := intHeader(t, refused, "X-RateLimit-Remaining"); got != 5 {
		t.Errorf("X-RateLimit-Remaining = %d after two opens and one refusal, want 5", got)
	}
	head := a.raw("HEAD", "/account/events/stream", nil)
	if head.Status != http.StatusTooManyRequests || len(head.Body) != 0 ||
		head.Header.Get("Retry-After") == "" {
		t.Errorf("HEAD at the limit: got %d, %d bytes, Retry-After %q; want 429 as GET, no body",
			head.Status, len(head.Body), head.Header.Get("Retry-After"))
	}
	openStream(t, base, peer, quiet, -1)

	if f := first.next(t); f.Comment != "keep-alive" {
		t.Fatalf("got frame %+v, want a keep-alive", f)
	}
	r := a.must(http.StatusOK, "GET", "/account/events", nil)
	if got := intHeader(t, r, "X-RateLimit-Remaining"); got != 3 {
		t.Errorf("X-RateLimit-Remaining = %d after a keep-alive and one more request, want 3", got)
	}

	first.cancel()
	eventually(t, "the closed stream to be gone", func() (bool, string) {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return err == nil && strings.Contains(string(b), "\napiv4_event_streams_open 2\n"), "still open"
	})
	openStream(t, base, owner, quiet, -1)
}

// TestPageSizeBounds checks every list of the spec: its page_size is at
// most 500 in the spec, the server refuses one outside 25 to 500 with 400
// naming it, and the largest page allowed holds at most 500 items.
func TestPageSizeBounds(t *testing.T) {
	spec := mustSpec(t).spec
	forEachTargetWithIDs(t, func(t *testing.T, _ *target, a *api, _ gen.Linode, ids map[string]string) {
		lists := 0
		for _, o := range specOps(spec) {
			i := slices.IndexFunc(params(o), func(p *openapi3.Parameter) bool {
				return p.In == "query" && p.Name == "page_size"
			})
			if i < 0 {
				continue
			}
			lists++
			path := fillPath(o.path, ids)
			t.Run(operationID(o.op), func(t *testing.T) {
				a := a.in(t)
				if s := params(o)[i].Schema.Value; s.Max == nil || *s.Max > 500 {
					t.Errorf("the spec lets page_size be above 500")
				}
				tests := []struct{ size, reason string }{
					{"24", "page_size: number must be at least 25"},
					{"501", "page_size: number must be at most 500"},
					{"1000000", "page_size: number must be at most 500"},
				}
				for _, tt := range tests {
					a.do(o.method, path+"?page_size="+tt.size, nil).
						wantError(t, http.StatusBadRequest, tt.reason, "page_size")
				}
				var page struct{ Data []json.RawMessage }
				a.must(http.StatusOK, o.method, path+"?page_size=500", nil).decode(t, &page)
				if len(page.Data) > 500 {
					t.Errorf("a page of at most 500 holds %d items", len(page.Data))
				}
			})
		}
		if lists < 2 {
			t.Errorf("found %d lists with page_size in the spec, want every collection", lists)
		}
	})
}
