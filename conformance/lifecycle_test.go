package conformance

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"apiv4/db/dbtest"
	"apiv4/gen"
)

// TestGracefulStop stops a server with SIGTERM while a job of its own
// runs and a request is half sent, and checks that the server stops
// accepting connections, answers the request in flight, exits cleanly,
// and hands its job back: the job's lease would last an hour, yet
// another process finishes it.
func TestGracefulStop(t *testing.T) {
	if !local() {
		t.Skip("needs server processes of its own")
	}
	databaseURL := migrated(t, dbtest.PostgresURL(t))
	token, err := createToken(databaseURL, "alice", "acme", "*")
	if err != nil {
		t.Fatal(err)
	}
	first, err := startServer(databaseURL, "--sim-duration", "1h", "--job-lease", "1h")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = first.stop() })
	first.logOnFailure(t)
	a := (&target{name: "first", url: "http://" + first.addr}).api(t, token)

	// A job runs on the first server, and would for an hour.
	var l gen.Linode
	a.must(http.StatusOK, "POST", "/linode/instances", createBody(newLabel("stop"), false)).decode(t, &l)
	eventually(t, "the create job to start", func() (bool, string) {
		e := linodeEvents(t, a, l.Id, nil)[0]
		return e.Status == "started", string(e.Status)
	})

	// A request is in flight: its headers are sent, and its handler has
	// asked for the body (the server said 100 Continue).
	body := `{"tags":["kept"]}`
	conn, err := net.Dial("tcp", first.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PUT /v4/linode/instances/%d HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n",
		l.Id, first.addr, token, len(body))
	_ = conn.SetReadDeadline(time.Now().Add(jobTimeout))
	answers := bufio.NewReader(conn)
	if resp, err := http.ReadResponse(answers, nil); err != nil || resp.StatusCode != http.StatusContinue {
		t.Fatalf("got %v (%v) to the headers, want 100 Continue", resp, err)
	}

	if err := first.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the server to stop accepting connections", func() (bool, string) {
		c, err := net.Dial("tcp", first.addr)
		if err != nil {
			return true, ""
		}
		c.Close()
		return false, "it still accepts"
	})

	if _, err := io.WriteString(conn, body); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(answers, nil)
	if err != nil {
		t.Fatalf("the request in flight got no answer: %v", err)
	}
	var updated gen.Linode
	err = json.NewDecoder(resp.Body).Decode(&updated)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err != nil || len(updated.Tags) != 1 || updated.Tags[0] != "kept" {
		t.Errorf("the request in flight got %d %+v (%v), want 200 with tag kept", resp.StatusCode, updated, err)
	}

	select {
	case <-first.done:
	case <-time.After(jobTimeout):
		t.Fatalf("the server did not exit after SIGTERM")
	}
	if first.err != nil || !strings.Contains(first.log.since(0), "msg=stopped") {
		t.Errorf("the server exited with %v; log:\n%s", first.err, first.log.tail(first.log.since(0), 20))
	}

	second := serveFor(t, databaseURL, "--job-lease", "1h")
	b := (&target{name: "second", url: "http://" + second.addr}).api(t, token)
	if got := waitIdle(t, b, l.Id); got.Status != "offline" {
		t.Errorf("got status %s after the create, want offline", got.Status)
	}
	events := linodeEvents(t, b, l.Id, nil)
	if len(events) != 2 || events[1].Action != "linode_create" || events[1].Status != "finished" {
		t.Errorf("got events %+v, want the update and one finished create", events)
	}
}

// TestDatabaseOutage cuts the connection between a server and its
// PostgreSQL (through a connProxy of the test's own, so that the shared
// server stays up), and checks that every operation then answers 503
// with Retry-After, and that the server serves again by itself once the
// database is back.
func TestDatabaseOutage(t *testing.T) {
	if !local() {
		t.Skip("needs a server process of its own")
	}
	databaseURL := migrated(t, dbtest.PostgresURL(t))
	token, err := createToken(databaseURL, "alice", "acme", "*")
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	p := startConnProxy(t, u.Host)
	u.Host = p.addr
	s := serveFor(t, u.String())
	tg := &target{name: "outage", url: "http://" + s.addr, owner: token}
	a := tg.api(t, token)
	l := newIdleLinode(t, a, tg, false)

	p.cut()
	spec := mustSpec(t).spec
	for _, o := range specOps(spec) {
		path := o.path
		for _, pp := range params(o) {
			if pp.In == "path" {
				path = strings.ReplaceAll(path, "{"+pp.Name+"}", fmt.Sprint(l.Id))
			}
		}
		var body any
		if valid := bodyExample(o, "valid"); valid != nil {
			body = withIDs(valid, map[string]string{"linodeId": fmt.Sprint(l.Id)})
		}
		r := a.do(o.method, path, body)
		r.wantError(t, http.StatusServiceUnavailable, "Service unavailable, try again shortly.", "")
		if got := intHeader(t, r, "Retry-After"); got < 1 {
			t.Errorf("%s: Retry-After = %d, want at least 1", operationID(o.op), got)
		}
	}

	p.restore()
	eventually(t, "the server to serve again", func() (bool, string) {
		r := a.do("GET", fmt.Sprint("/linode/instances/", l.Id), nil)
		return r.Status == http.StatusOK, fmt.Sprint(r.Status)
	})
	a.must(http.StatusOK, "POST", fmt.Sprintf("/linode/instances/%d/boot", l.Id), nil)
	if got := waitIdle(t, a, l.Id); got.Status != "running" {
		t.Errorf("got status %s after a boot once the database is back, want running", got.Status)
	}
}

// A connProxy forwards TCP connections to a backend until it is cut: then it
// closes every connection it holds and every new one at once.
type connProxy struct {
	addr    string
	backend string
	ln      net.Listener

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]bool
}

// startConnProxy starts a connProxy to backend on 127.0.0.1, closed when the test
// ends.
func startConnProxy(t *testing.T, backend string) *connProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &connProxy{addr: ln.Addr().String(), backend: backend, ln: ln, conns: map[net.Conn]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { p.serve(ctx, &wg) })
	t.Cleanup(func() {
		cancel()
		ln.Close()
		p.cut()
		wg.Wait()
	})
	return p
}

func (p *connProxy) serve(ctx context.Context, wg *sync.WaitGroup) {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			c.Close()
			continue
		}
		wg.Go(func() {
			defer p.untrack(c)
			var d net.Dialer
			b, err := d.DialContext(ctx, "tcp", p.backend)
			if err != nil || !p.track(b) {
				if b != nil {
					b.Close()
				}
				return
			}
			defer p.untrack(b)
			done := make(chan struct{}, 2)
			go func() { _, _ = io.Copy(b, c); done <- struct{}{} }()
			go func() { _, _ = io.Copy(c, b); done <- struct{}{} }()
			<-done
		})
	}
}

// track adds a connection, unless the connProxy is cut.
func (p *connProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return false
	}
	p.conns[c] = true
	return true
}

func (p *connProxy) untrack(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, c)
	c.Close()
}

// cut closes every connection and refuses new ones until restore.
func (p *connProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
}

func (p *connProxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}
