package conformance

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"apiv4/db/dbtest"
)

// TestWatchAcrossProcesses runs apiv4 watch against one server process,
// through a proxy that the test can cut, while events are written
// through another process on the same PostgreSQL database. It checks
// that the watcher's line follows each change, and that after a cut it
// resumes from its last position and gets every change made meanwhile.
func TestWatchAcrossProcesses(t *testing.T) {
	if !local() {
		t.Skip("needs two server processes of its own")
	}
	binary, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	databaseURL := migrated(t, dbtest.PostgresURL(t))
	token, err := createToken(databaseURL, "alice", "acme", "*")
	if err != nil {
		t.Fatal(err)
	}
	apis, tg := startProcesses(t, databaseURL, token, 2)
	writer := apis[0]
	l := newIdleLinode(t, writer, tg, false)
	create := linodeEvents(t, writer, l.Id, nil)[0].Id
	px := startProxy(t, strings.TrimPrefix(strings.TrimSuffix(apis[1].base, "/v4"), "http://"))

	w := startWatch(t, binary, "http://"+px.addr(), token)
	w.expect(t, fmt.Sprintf("1 unseen · linode_create finished %s #%d", l.Label, create))

	// A change through the other process shows at once.
	sent := time.Now()
	u1 := updateLinode(t, writer, l.Id, "w1")
	w.expect(t, fmt.Sprintf("2 unseen · linode_update notification %s #%d", l.Label, u1))
	t.Logf("write through one process to the watcher's line via another: %v", time.Since(sent))
	w.expectLog(t, fmt.Sprintf("event_id=%d", u1))

	// Cut the connection; change things while the watcher is away.
	px.cut()
	w.expectLog(t, "stream dropped")
	u2 := updateLinode(t, writer, l.Id, "w2")
	writer.must(http.StatusOK, "POST", fmt.Sprintf("/linode/instances/%d/boot", l.Id), nil)
	waitIdle(t, writer, l.Id)
	boot := linodeEvents(t, writer, l.Id, map[string]any{"action": "linode_boot"})[0].Id
	px.resume()

	w.expect(t, fmt.Sprintf("4 unseen · linode_boot finished %s #%d", l.Label, boot))
	w.expectLog(t, "msg=connected resume_from=")
	for _, id := range []int{u2, boot} {
		w.expectLog(t, fmt.Sprintf("event_id=%d", id))
	}
	if n := strings.Count(w.logSince(0), fmt.Sprintf("event_id=%d ", u1)); n != 1 {
		t.Errorf("event %d reached the watcher %d times, want once: it resumed after it", u1, n)
	}

	// Marking everything seen elsewhere shows at the next change.
	writer.must(http.StatusOK, "POST", fmt.Sprintf("/account/events/%d/seen", boot), nil)
	u3 := updateLinode(t, writer, l.Id, "w3")
	w.expect(t, fmt.Sprintf("1 unseen · linode_update notification %s #%d", l.Label, u3))
}

// A watchProcess is apiv4 watch running in plain mode.
type watchProcess struct {
	lines chan string
	mu    sync.Mutex
	log   strings.Builder
}

func startWatch(t *testing.T, binary, url, token string) *watchProcess {
	t.Helper()
	cmd := exec.Command(binary, "watch", "--url", url, "--token", token, "--format", "plain",
		"--log-level", "debug")
	w := &watchProcess{lines: make(chan string, 100)}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = writerFunc(func(p []byte) (int, error) {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.log.Write(p)
	})
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("apiv4 watch stderr:\n%s", w.logSince(0))
		}
	})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			w.lines <- sc.Text()
		}
		close(w.lines)
	}()
	return w
}

// expect waits until the watcher prints want, skipping other lines.
func (w *watchProcess) expect(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(jobTimeout)
	var seen []string
	for {
		select {
		case line, ok := <-w.lines:
			if !ok {
				t.Fatalf("apiv4 watch exited; printed %q, want %q", seen, want)
			}
			if line == want {
				return
			}
			seen = append(seen, line)
		case <-deadline:
			t.Fatalf("apiv4 watch printed %q in %v, not %q", seen, jobTimeout, want)
		}
	}
}

// expectLog waits until the watcher's stderr holds want.
func (w *watchProcess) expectLog(t *testing.T, want string) {
	t.Helper()
	eventually(t, "apiv4 watch to log "+want, func() (bool, string) {
		return strings.Contains(w.logSince(0), want), "not yet"
	})
}

func (w *watchProcess) logSince(n int) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.log.String()[n:]
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// A proxy forwards TCP connections on 127.0.0.1 to a target, and can
// drop them all and refuse new ones, as a broken network would.
type proxy struct {
	ln      net.Listener
	target  string
	mu      sync.Mutex
	conns   []net.Conn
	refused bool
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	t.Cleanup(func() {
		ln.Close()
		p.cut()
	})
	go p.serve()
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refused := p.refused
		p.mu.Unlock()
		if refused {
			in.Close()
			continue
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, in, out)
		p.mu.Unlock()
		go pipe(in, out)
		go pipe(out, in)
	}
}

func pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
}

// cut drops every connection and refuses new ones until resume.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refused = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *proxy) resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refused = false
}
