package conformance

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"apiv4/db"
	"apiv4/db/dbtest"
)

// simDuration is how long every simulated job of the local servers takes.
const simDuration = 300 * time.Millisecond

// A target is one apiv4 deployment the suite runs against, with a token
// for each of the users the checks need: owner, peer and reader share an
// account, other is alone in another one. An empty token means the check
// that needs it is skipped.
type target struct {
	name  string // postgres, sqlite or deployment
	start func() error

	once sync.Once
	err  error

	url                string // scheme://host[:port], without /v4
	owner, peer, other string
	reader             string  // owner's account, scopes events:read_only linodes:read_only
	server             *server // nil for a deployment
	databaseURL        string
	dropDatabase       func() error
}

var (
	targets []*target
	tmpDir  string // holds the binary and the SQLite file of local targets
)

// raceEnabled is set by race_test.go when the suite runs under -race.
var raceEnabled bool

// local reports whether the suite starts its own servers.
func local() bool { return *flagBaseURL == "" }

// setUp picks the targets: the deployment named by -base-url, or else
// PostgreSQL and SQLite servers started from a freshly built binary. The
// servers themselves start when a test first needs them.
func setUp() error {
	if !local() {
		if *flagToken == "" {
			return errors.New("-base-url needs -token")
		}
		tokens := []namedToken{{"-token", *flagToken}, {"-token2", *flagToken2},
			{"-token-peer", *flagTokenPeer}, {"-token-read-only", *flagTokenReader}}
		if err := checkDeployment(*flagBaseURL, tokens); err != nil {
			return err
		}
		targets = []*target{{
			name: "deployment", url: strings.TrimSuffix(*flagBaseURL, "/"),
			owner: *flagToken, peer: *flagTokenPeer, other: *flagToken2, reader: *flagTokenReader,
			start: func() error { return nil },
		}}
		return nil
	}

	var err error
	if tmpDir, err = os.MkdirTemp("", "apiv4-conformance-"); err != nil {
		return err
	}
	pg := &target{name: "postgres"}
	pg.start = func() error {
		u, drop, err := dbtest.CreatePostgres(context.Background())
		if err != nil {
			return err
		}
		pg.databaseURL, pg.dropDatabase = u, drop
		return pg.startLocal()
	}
	lite := &target{name: "sqlite"}
	lite.start = func() error {
		lite.databaseURL = "sqlite:" + filepath.Join(tmpDir, "apiv4.db")
		return lite.startLocal()
	}
	targets = []*target{pg, lite}
	return nil
}

// A namedToken is a token and the flag that gave it; an empty token was
// not given.
type namedToken struct{ flag, token string }

// checkDeployment checks, with one GET /v4/account/events per token, that
// -base-url is an http(s) URL that answers and that it takes the tokens,
// so that a wrong flag fails the run at once with one message instead of
// failing every check.
func checkDeployment(baseURL string, tokens []namedToken) error {
	base := strings.TrimSuffix(baseURL, "/")
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("-base-url %q must be an http or https URL such as http://127.0.0.1:8080", base)
	}
	if strings.HasSuffix(u.Path, "/v4") {
		return fmt.Errorf("-base-url %q must not end in /v4: the suite adds it", base)
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	for _, tk := range tokens {
		if tk.token == "" {
			continue
		}
		req, err := http.NewRequest(http.MethodGet, base+"/v4/account/events", nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+tk.token)
		resp, err := hc.Do(req)
		if err != nil {
			return fmt.Errorf("cannot reach -base-url %s: %w", base, err)
		}
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusUnauthorized:
			return fmt.Errorf("%s was refused by %s (GET /v4/account/events: %s): "+
				"is it a token of this deployment?", tk.flag, base, resp.Status)
		case resp.StatusCode != http.StatusOK:
			return fmt.Errorf("GET %s/v4/account/events with %s: %s, want 200 OK: "+
				"is -base-url an apiv4 deployment?", base, tk.flag, resp.Status)
		}
	}
	return nil
}

// buildBinary builds cmd/apiv4 once, the first time a local server is
// needed, and returns its path. Under -race the servers are built with
// -race too, so that they report their own data races.
var buildBinary = sync.OnceValues(func() (string, error) {
	bin := filepath.Join(tmpDir, "apiv4")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "apiv4/cmd/apiv4")...)
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// startLocal migrates the target's database as apiv4 serve would (token
// create only works on a migrated database), creates the users' tokens in
// it, then starts a server on it. SQLite allows one process at a time on
// a file, so the tokens come first.
func (tg *target) startLocal() error {
	if err := migrate(tg.databaseURL); err != nil {
		return err
	}
	var err error
	users := []struct {
		token                     *string
		username, account, scopes string
	}{
		{&tg.owner, "alice", "acme", "*"},
		{&tg.peer, "bob", "acme", "*"},
		{&tg.other, "mallory", "globex", "*"},
		{&tg.reader, "carol", "acme", "events:read_only linodes:read_only"},
	}
	for _, u := range users {
		*u.token, err = createToken(tg.databaseURL, u.username, u.account, u.scopes)
		if err != nil {
			return err
		}
	}
	if tg.server, err = startServer(tg.databaseURL); err != nil {
		return err
	}
	tg.url = "http://" + tg.server.addr
	return nil
}

// tearDown stops the servers and drops their databases.
func tearDown() error {
	var errs []error
	for _, tg := range targets {
		if tg.server != nil {
			errs = append(errs, tg.server.stop())
		}
		if tg.dropDatabase != nil {
			errs = append(errs, tg.dropDatabase())
		}
	}
	if tmpDir != "" {
		errs = append(errs, os.RemoveAll(tmpDir))
	}
	return errors.Join(errs...)
}

// forEachTarget runs fn as a parallel subtest on every target, named
// after it, starting the target's server first if needed. When fn fails,
// the server's log lines written meanwhile are added to the test's output.
func forEachTarget(t *testing.T, fn func(t *testing.T, tg *target)) {
	t.Helper()
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			tg.once.Do(func() { tg.err = tg.start() })
			if tg.err != nil {
				t.Fatalf("start %s: %v", tg.name, tg.err)
			}
			if tg.server != nil {
				tg.server.logOnFailure(t)
			}
			fn(t, tg)
		})
	}
}

// migrate applies every migration to the database at url, as apiv4 serve
// does when it starts: apiv4 token create works only on a database that
// serve has migrated, and the tests create tokens before any server.
func migrate(url string) error {
	store, err := db.Open(context.Background(), url, db.WithMaxConns(2))
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return store.Close()
}

// migrated migrates the fresh database at url, as apiv4 serve would, and
// returns url.
func migrated(t *testing.T, url string) string {
	t.Helper()
	if err := migrate(url); err != nil {
		t.Fatal(err)
	}
	return url
}

// createToken runs apiv4 token create and returns the token it prints.
func createToken(databaseURL, username, account, scopes string) (string, error) {
	binary, err := buildBinary()
	if err != nil {
		return "", err
	}
	cmd := exec.Command(binary, "token", "create", "--database", databaseURL,
		"--username", username, "--account", account, "--scopes", scopes)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("apiv4 token create: %v\n%s", err, stderr.Bytes())
	}
	return strings.TrimSpace(string(out)), nil
}

// A server is one apiv4 serve process listening on 127.0.0.1.
type server struct {
	cmd  *exec.Cmd
	addr string
	log  *serverLog
	done chan struct{} // closed when the process has exited
	err  error         // how it exited, once done is closed
}

// serveFor starts a server for one test: stopped, cleanly or the test
// fails, when the test ends, and its log shown if the test fails.
func serveFor(t *testing.T, databaseURL string, extra ...string) *server {
	t.Helper()
	s, err := startServer(databaseURL, extra...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Error(err)
		}
	})
	s.logOnFailure(t)
	return s
}

// startServer starts apiv4 serve on a free port of 127.0.0.1, with extra
// flags after the suite's own, and waits until it says it listens.
func startServer(databaseURL string, extra ...string) (*server, error) {
	binary, err := buildBinary()
	if err != nil {
		return nil, err
	}
	s := &server{log: newServerLog(), done: make(chan struct{})}
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--database", databaseURL,
		"--sim-duration", simDuration.String(), "--sim-fail-rate", "0", "--stream-keepalive", "1s",
		"--db-max-conns", "6",
		"--log-level", "info", "--log-format", "text"}, // what waiting for "listening" reads
		extra...)
	s.cmd = exec.Command(binary, args...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.done)
	}()

	select {
	case s.addr = <-s.log.listening:
		return s, nil
	case <-s.done:
		return nil, fmt.Errorf("apiv4 serve exited: %v\n%s", s.err, s.log.since(0))
	case <-time.After(30 * time.Second):
		_ = s.stop()
		return nil, fmt.Errorf("apiv4 serve did not listen within 30s\n%s", s.log.since(0))
	}
}

// stop asks the server to stop with SIGTERM and waits for it; a server
// that takes more than 30 seconds is killed.
func (s *server) stop() error {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
		return fmt.Errorf("apiv4 serve did not stop within 30s; killed")
	}
	if s.err != nil {
		return fmt.Errorf("apiv4 serve: %v\n%s", s.err, s.log.tail(s.log.since(0), 200))
	}
	return nil
}

// logOnFailure adds the server's log lines written during the test to
// its output if it fails, and fails it if the server (built with -race
// when the suite is) reported a data race meanwhile.
func (s *server) logOnFailure(t testing.TB) {
	t.Helper()
	from := s.log.size()
	t.Cleanup(func() {
		if strings.Contains(s.log.since(from), "WARNING: DATA RACE") {
			t.Errorf("the server at %s reported a data race", s.addr)
		}
		if t.Failed() {
			t.Logf("server log (%s) during the test:\n%s", s.addr, s.log.tail(s.log.since(from), 200))
		}
	})
}

// serverLog keeps everything a server writes and tells when it listens.
type serverLog struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	listening chan string
	found     bool
}

func newServerLog() *serverLog { return &serverLog{listening: make(chan string, 1)} }

var listeningLine = regexp.MustCompile(`msg=listening addr=(\S+)`)

// Write implements io.Writer; it sends the address on listening once
// the server has logged it.
func (l *serverLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	if !l.found {
		if m := listeningLine.FindSubmatch(l.buf.Bytes()); m != nil {
			l.found = true
			l.listening <- string(m[1])
		}
	}
	return len(p), nil
}

func (l *serverLog) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Len()
}

// since returns what was written after the first n bytes.
func (l *serverLog) since(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.buf.Bytes()[n:])
}

// tail returns the last n lines of s.
func (l *serverLog) tail(s string, n int) string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("[%d earlier lines left out]", len(lines)-n)},
			lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// httpClient returns an HTTP client whose every response is checked
// against the spec and counted for coverage, failing t on a violation.
func (tg *target) httpClient(t testing.TB) (*http.Client, *checkedTransport) {
	tr := newCheckedTransport(t, tg.url)
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}, tr
}
