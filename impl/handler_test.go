package impl_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"apiv4/db"
	"apiv4/db/dbtest"
	"apiv4/impl"
	"apiv4/job"
)

// testServer is the whole API handler on a fresh SQLite file, with a job
// runner whose jobs end at once, one user's token, and one Linode.
type testServer struct {
	h      http.Handler
	store  *db.Store
	token  string
	linode string // its id
}

// newTestServer starts a test server that lives until tb ends.
func newTestServer(tb testing.TB, opts ...impl.Option) *testServer {
	tb.Helper()
	ctx := context.Background()
	store, err := db.Open(ctx, dbtest.SQLiteURL(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	u, err := store.EnsureUser(ctx, "acme", "alice")
	if err != nil {
		tb.Fatal(err)
	}
	token, err := store.CreateToken(ctx, u, "test", "*", nil)
	if err != nil {
		tb.Fatal(err)
	}

	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	runner := job.New(store, job.Sim{Steps: 1}, job.Config{Workers: 2, Poll: 10 * time.Millisecond}, quiet)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { runner.Run(runCtx); close(done) }()
	tb.Cleanup(func() { stop(); <-done })

	h, err := impl.NewHandler(store, runner, quiet, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	s := &testServer{h: h, store: store, token: token}
	w := s.do("POST", "/v4/linode/instances",
		[]byte(`{"region":"us-east","type":"g6-nanode-1","label":"fuzzed"}`))
	var l struct{ ID int64 }
	if err := json.Unmarshal(w.Body.Bytes(), &l); w.Code != http.StatusOK || err != nil {
		tb.Fatalf("create a Linode: %d %s", w.Code, w.Body)
	}
	s.linode = fmt.Sprint(l.ID)
	return s
}

// do sends one request with the token; header holds name, value pairs
// and a body gets Content-Type application/json unless header sets one.
func (s *testServer) do(method, path string, body []byte, header ...string) *httptest.ResponseRecorder {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	req.RemoteAddr = "127.0.0.1:40000"
	req.Header.Set("Authorization", "Bearer "+s.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	s.h.ServeHTTP(w, req)
	return w
}

// checkAnswer fails t unless the answer is no 5xx and an error answer has
// the error shape that linodego needs, and it echoes no root password of
// the request.
func checkAnswer(t *testing.T, w *httptest.ResponseRecorder, body []byte) {
	t.Helper()
	if w.Code >= 500 || w.Code < 200 {
		t.Fatalf("got %d: %s", w.Code, w.Body)
	}
	if w.Code >= 400 {
		if ct := w.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("got %d with Content-Type %q, want exactly application/json", w.Code, ct)
		}
		var e struct{ Errors []struct{ Reason string } }
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || len(e.Errors) == 0 || e.Errors[0].Reason == "" {
			t.Errorf("got %d with body %s, want the error shape", w.Code, w.Body)
		}
	}
	var req struct {
		RootPass any `json:"root_pass"`
	}
	if json.Unmarshal(body, &req) == nil {
		if pw, ok := req.RootPass.(string); ok && len(pw) >= 8 && strings.Contains(w.Body.String(), pw) {
			t.Errorf("the answer echoes the root password: %s", w.Body)
		}
	}
}

// TestStrictTransportSecurity checks that an answer to a request that
// came over TLS tells browsers to keep to HTTPS, whatever its status, and
// that one over plain HTTP does not.
func TestStrictTransportSecurity(t *testing.T) {
	s := newTestServer(t)
	for _, target := range []string{"https://api.test/v4/account/events", "https://api.test/v4/nothing"} {
		for _, token := range []string{s.token, "wrong"} {
			req := httptest.NewRequest("GET", target, nil)
			req.Header.Set("Authorization", "Bearer "+token)
			w := httptest.NewRecorder()
			s.h.ServeHTTP(w, req)
			if got := w.Header().Get("Strict-Transport-Security"); !strings.HasPrefix(got, "max-age=") {
				t.Errorf("%s with token %.5s → %d: Strict-Transport-Security = %q, want max-age=…",
					target, token, w.Code, got)
			}
		}
	}
	if got := s.do("GET", "/v4/account/events", nil).Header().Get("Strict-Transport-Security"); got != "" {
		t.Errorf("over plain HTTP: Strict-Transport-Security = %q, want none", got)
	}
}

// TestNoSecretInAnswersOrLogs sends root passwords and tokens in every
// place a request can hold them, valid and not, and checks that no answer
// and no log line repeats one.
func TestNoSecretInAnswersOrLogs(t *testing.T) {
	var logs bytes.Buffer
	ctx := context.Background()
	store, err := db.Open(ctx, dbtest.SQLiteURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	u, _ := store.EnsureUser(ctx, "acme", "alice")
	token, err := store.CreateToken(ctx, u, "test", "*", nil)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h, err := impl.NewHandler(store, nopWaker{}, log)
	if err != nil {
		t.Fatal(err)
	}
	const pw, weak = "S3cret-Passw0rd-xyz", "weakpassword-xyz"
	wrongToken := strings.Repeat("f", 63) + "e"
	requests := []struct{ method, path, token, body string }{
		{"POST", "/v4/linode/instances", token, `{"region":"us-east","type":"g6-nanode-1",` +
			`"image":"linode/debian12","root_pass":"` + pw + `","label":"secret-1"}`},
		{"POST", "/v4/linode/instances", token, `{"region":"us-east","type":"g6-nanode-1",` +
			`"image":"linode/debian12","root_pass":"` + weak + `"}`},
		{"POST", "/v4/linode/instances", token, `{"region":"us-east","root_pass":"` + pw + `","bogus":1}`},
		{"POST", "/v4/linode/instances", token, `{"root_pass":` + pw + `}`},
		{"POST", "/v4/linode/instances/1/password", token, `{"root_pass":"` + weak + `"}`},
		{"POST", "/v4/linode/instances/1/password", token, `{"root_pass":"` + pw + `"}`},
		{"POST", "/v4/linode/instances/1/rebuild", token, `{"image":"linode/nosuch","root_pass":"` + pw + `"}`},
		{"GET", "/v4/account/events", wrongToken, ``},
		{"GET", "/v4/account/events?token=" + token, "x " + token, ``},
	}
	var answers bytes.Buffer
	for _, r := range requests {
		var body io.Reader
		if r.body != "" {
			body = strings.NewReader(r.body)
		}
		req := httptest.NewRequest(r.method, r.path, body)
		req.Header.Set("Authorization", "Bearer "+r.token)
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		fmt.Fprintf(&answers, "%d %v %s\n", w.Code, w.Header(), w.Body)
	}
	for _, secret := range []string{pw, weak, token, wrongToken} {
		if strings.Contains(answers.String(), secret) {
			t.Errorf("an answer holds the secret %.6s…:\n%s", secret, answers.String())
		}
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the log holds the secret %.6s…:\n%s", secret, logs.String())
		}
	}
}

type nopWaker struct{}

func (nopWaker) Wake() {}
