package impl_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"apiv4"
	"apiv4/db"
	"apiv4/db/dbtest"
	"apiv4/impl"
)

type noWaker struct{}

func (noWaker) Wake() {}

// newServer serves a fresh SQLite store and returns it with a token of
// every scope and the server's log.
func newServer(t *testing.T) (*httptest.Server, *db.Store, string, *bytes.Buffer) {
	t.Helper()
	ctx := context.Background()
	store, err := db.Open(ctx, dbtest.SQLiteURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	u, err := store.EnsureUser(ctx, "acme", "alice")
	if err != nil {
		t.Fatal(err)
	}
	token, err := store.CreateToken(ctx, u, "test", "*", nil)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	h, err := impl.NewHandler(store, noWaker{}, log)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, store, token, &logs
}

func get(t *testing.T, url string, header ...string) (*http.Response, string) {
	t.Helper()
	return send(t, "GET", url, header...)
}

// send sends a request without a body; header holds name, value pairs.
func send(t *testing.T, method, url string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// TestOperationalEndpoints checks the endpoints beside the API.
func TestOperationalEndpoints(t *testing.T) {
	srv, _, _, _ := newServer(t)
	tests := []struct {
		path, contentType, contains string
	}{
		{"/healthz", "application/json", "{}"},
		{"/readyz", "application/json", "{}"},
		{"/openapi.yaml", "application/yaml", "operationId: streamEvents"},
		{"/openapi.json", "application/json", `"operationId":"streamEvents"`},
		{"/docs", "text/html; charset=utf-8", "openapi.json"}, // the plain page or the portal
		{"/metrics", "text/plain", "apiv4_jobs_queued 0"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, body := get(t, srv.URL+tt.path)
			ct := resp.Header.Get("Content-Type")
			if resp.StatusCode != http.StatusOK || !strings.HasPrefix(ct, tt.contentType) {
				t.Fatalf("got %d %q, want 200 %q", resp.StatusCode, ct, tt.contentType)
			}
			if !strings.Contains(body, tt.contains) {
				t.Errorf("body lacks %q", tt.contains)
			}
		})
	}
	if _, body := get(t, srv.URL+"/openapi.yaml"); body != string(apiv4.Spec) {
		t.Errorf("/openapi.yaml is not openapi.yaml as written")
	}
}

// TestDocsLinksResolve checks that the links of the docs page lead to
// the contract whether the page was asked for as /docs or /docs/, which
// the server also accepts.
func TestDocsLinksResolve(t *testing.T) {
	srv, _, _, _ := newServer(t)
	link := regexp.MustCompile(`(?:href|src)="([^"]+)"|url: "([^"]+)"`)
	for _, path := range []string{"/docs", "/docs/"} {
		t.Run(path, func(t *testing.T) {
			resp, body := get(t, srv.URL+path)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: got %d, want 200", path, resp.StatusCode)
			}
			page := resp.Request.URL // after redirects
			links := link.FindAllStringSubmatch(body, -1)
			if len(links) == 0 {
				t.Fatalf("GET %s: the page has no link", path)
			}
			for _, m := range links {
				u, err := page.Parse(m[1] + m[2])
				if err != nil {
					t.Fatal(err)
				}
				if r, _ := get(t, u.String()); r.StatusCode != http.StatusOK {
					t.Errorf("on %s, %q leads to %s: got %d, want 200", page.Path, m[1]+m[2], u.Path,
						r.StatusCode)
				}
			}
		})
	}
}

// TestReadyzNeedsMigrations checks that /readyz refuses while a migration
// is missing.
func TestReadyzNeedsMigrations(t *testing.T) {
	srv, store, _, _ := newServer(t)
	if err := store.ForgetMigration(context.Background(), "20261206060001"); err != nil {
		t.Fatal(err)
	}
	resp, body := get(t, srv.URL+"/readyz")
	want := `{"errors":[{"reason":"Database migrations pending: 1, first 20261206060001_event_rev"}]}`
	if resp.StatusCode != http.StatusServiceUnavailable || strings.TrimSpace(body) != want {
		t.Errorf("got %d %s, want 503 %s", resp.StatusCode, body, want)
	}
}

// TestRequestMetricsAndID checks that a request is counted by route and
// status, and logged with the request id the client sent back to it; and
// that HEAD, which is handled as GET, is logged and counted as HEAD.
func TestRequestMetricsAndID(t *testing.T) {
	srv, _, token, logs := newServer(t)
	resp, _ := get(t, srv.URL+"/v4/account/events", "Authorization", "Bearer "+token,
		"X-Request-Id", "trace-42")
	send(t, "HEAD", srv.URL+"/v4/account/events/stream", "Authorization", "Bearer "+token)
	send(t, "HEAD", srv.URL+"/v4/linode/instances", "Authorization", "Bearer "+token)
	if got := resp.Header.Get("X-Request-Id"); got != "trace-42" {
		t.Errorf("X-Request-Id = %q, want the one sent back", got)
	}
	resp, _ = get(t, srv.URL+"/v4/account/events", "X-Request-Id", "bad id with spaces")
	if got := resp.Header.Get("X-Request-Id"); len(got) != 16 {
		t.Errorf("X-Request-Id = %q, want a fresh 16-digit id instead of an unsafe one", got)
	}
	if !strings.Contains(logs.String(), `"route":"/v4/account/events","status":200`) ||
		!strings.Contains(logs.String(), `"request_id":"trace-42"`) {
		t.Errorf("log lacks the request line with its id:\n%s", logs)
	}
	want := `"method":"HEAD","route":"/v4/account/events/stream","status":200`
	if !strings.Contains(logs.String(), want) {
		t.Errorf("log lacks %s:\n%s", want, logs)
	}

	_, metrics := get(t, srv.URL+"/metrics")
	for _, want := range []string{
		`apiv4_http_request_duration_seconds_count{method="GET",route="/v4/account/events",status="200"} 1`,
		`apiv4_http_request_duration_seconds_count{method="GET",route="/v4/account/events",status="401"} 1`,
		`apiv4_http_request_duration_seconds_count{method="HEAD",route="/v4/linode/instances",status="200"} 1`,
		`apiv4_events_written_total 0`,
		`apiv4_group_commits_total 0`,
		`apiv4_event_streams_open 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestRateLimitHook checks the counter the rate limiter reports refusals to.
func TestRateLimitHook(t *testing.T) {
	ctx := context.Background()
	store, err := db.Open(ctx, dbtest.SQLiteURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	m := impl.NewMetrics(store, slog.New(slog.DiscardHandler))
	m.RateLimitRefused("/v4/linode/instances")
	m.RateLimitRefused("/v4/linode/instances")
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	want := `apiv4_rate_limit_refusals_total{route="/v4/linode/instances"} 2`
	if !strings.Contains(rec.Body.String(), want) {
		t.Errorf("/metrics lacks %s", want)
	}
}

// TestMetricsMethodsBounded checks that methods HTTP does not define,
// which any client may make up, share one label, so that /metrics cannot
// be grown without bound.
func TestMetricsMethodsBounded(t *testing.T) {
	srv, _, _, _ := newServer(t)
	for i := range 5 {
		req, err := http.NewRequest(fmt.Sprintf("MADEUP%d", i), srv.URL+"/v4/account/events", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	_, metrics := get(t, srv.URL+"/metrics")
	if strings.Contains(metrics, "MADEUP") {
		t.Errorf("a made-up method became a label:\n%s", metrics)
	}
	want := `apiv4_http_request_duration_seconds_count{method="other",route="/v4/account/events",status="405"} 5`
	if !strings.Contains(metrics, want) {
		t.Errorf("/metrics lacks %s", want)
	}
}

// TestCrossOrigin checks that a browser page on any origin may call the
// API: a preflight is answered without a token, with the methods of the
// path and the headers a client sends, and answers, errors included,
// carry Access-Control-Allow-Origin and expose the headers clients read.
func TestCrossOrigin(t *testing.T) {
	srv, _, token, _ := newServer(t)
	do := func(method, path string, header ...string) *http.Response {
		t.Helper()
		resp, _ := send(t, method, srv.URL+path, header...)
		return resp
	}
	want := func(what string, resp *http.Response, status int, headers map[string]string) {
		t.Helper()
		if resp.StatusCode != status {
			t.Errorf("%s: status %d, want %d", what, resp.StatusCode, status)
		}
		for name, value := range headers {
			if got := resp.Header.Get(name); got != value {
				t.Errorf("%s: %s = %q, want %q", what, name, got, value)
			}
		}
	}

	want("preflight", do("OPTIONS", "/v4/linode/instances", "Origin", "https://app.example",
		"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization, x-filter"),
		http.StatusNoContent, map[string]string{
			"Access-Control-Allow-Origin":  "*",
			"Access-Control-Allow-Methods": "GET, HEAD, OPTIONS, POST",
			"Access-Control-Allow-Headers": "Authorization, Content-Type, X-Filter, If-None-Match, " +
				"Last-Event-ID, X-Request-Id",
			"Allow": "GET, HEAD, OPTIONS, POST",
		})
	want("OPTIONS without Origin", do("OPTIONS", "/v4/account/events"), http.StatusNoContent,
		map[string]string{"Allow": "GET, HEAD, OPTIONS", "Access-Control-Allow-Origin": ""})
	expose := "ETag, Retry-After, X-OAuth-Scopes, X-Accepted-OAuth-Scopes, X-RateLimit-Limit, " +
		"X-RateLimit-Remaining, X-RateLimit-Reset, X-Request-Id"
	want("a list", do("GET", "/v4/account/events", "Origin", "https://app.example",
		"Authorization", "Bearer "+token), http.StatusOK,
		map[string]string{"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": expose})
	want("an error", do("GET", "/v4/account/events", "Origin", "https://app.example"),
		http.StatusUnauthorized, map[string]string{"Access-Control-Allow-Origin": "*"})
}

// TestBetaVersion checks that /v4beta serves the same operations as /v4,
// as a client switched to the beta version calls them.
func TestBetaVersion(t *testing.T) {
	srv, _, token, _ := newServer(t)
	v4resp, v4body := get(t, srv.URL+"/v4/account/events", "Authorization", "Bearer "+token)
	resp, body := get(t, srv.URL+"/v4beta/account/events", "Authorization", "Bearer "+token)
	if resp.StatusCode != http.StatusOK || v4resp.StatusCode != http.StatusOK || body != v4body {
		t.Errorf("GET /v4beta/account/events: %d %s; want what /v4 answers: %d %s",
			resp.StatusCode, body, v4resp.StatusCode, v4body)
	}
	if resp, _ := get(t, srv.URL+"/v4beta/account/events"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /v4beta/account/events without a token: %d, want 401", resp.StatusCode)
	}
	if resp, _ := get(t, srv.URL+"/v4betax/account/events"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /v4betax/account/events: %d, want 404", resp.StatusCode)
	}
}
