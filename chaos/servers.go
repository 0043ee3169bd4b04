package chaos

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// serverProc is one apiv4 serve slot of the harness: always the same port
// and log file, a new process after each kill.
type serverProc struct {
	n    int
	addr string
	log  string // its log file, appended to by every process of the slot

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the current process has exited
	err  error         // how it exited, once done is closed
}

// start starts a process in the slot and waits until it answers; the
// database may be down, so it tries again until ctx ends.
func (h *harness) start(ctx context.Context, s *serverProc) error {
	for {
		err := h.startOnce(ctx, s)
		if err == nil || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (h *harness) startOnce(ctx context.Context, s *serverProc) error {
	logFile, err := os.OpenFile(s.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(h.cfg.Binary, "serve", "--addr", s.addr, "--database", h.dbURL,
		"--sim-duration", h.cfg.SimDuration.String(), "--sim-fail-rate", "0.05",
		"--job-lease", h.cfg.JobLease.String(), "--request-timeout", "10s",
		"--rate-limit", "1000000", "--log-format", "json")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("chaos: start server %d: %w", s.n, err)
	}
	h.remember(cmd.Process.Pid)
	done := make(chan struct{})
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	go func() {
		err := cmd.Wait()
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
		close(done)
	}()

	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("chaos: server %d exited at start: %v", s.n, s.err)
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			<-done
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		resp, err := h.probe.Get("http://" + s.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	_ = cmd.Process.Kill()
	<-done
	return fmt.Errorf("chaos: server %d did not answer within 30s", s.n)
}

// kill ends the slot's process with SIGKILL and waits for it.
func (s *serverProc) kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// alive reports whether the slot's process runs.
func (s *serverProc) alive() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// terminate stops the slot's process with SIGTERM, as an operator would,
// and returns an error unless it exits cleanly within 30 seconds.
func (s *serverProc) terminate() error {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil || !s.alive() {
		return errors.New("not running")
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		return errors.New("still running 30s after SIGTERM; killed")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return fmt.Errorf("exited with %v after SIGTERM", s.err)
	}
	return nil
}

// remember adds a process id to the file the watchdog reads.
func (h *harness) remember(pid int) {
	h.pidMu.Lock()
	defer h.pidMu.Unlock()
	f, err := os.OpenFile(h.pidFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	fmt.Fprintln(f, pid)
	f.Close()
}

// startWatchdog starts a shell that waits for the harness to end, however
// it ends, then kills the processes it started and stops PostgreSQL, so
// that nothing outlives a run that was itself killed. The harness stops
// the watchdog when it cleans up by itself.
func (h *harness) startWatchdog() (*exec.Cmd, error) {
	script := fmt.Sprintf(`while [ -d /proc/%d ]; do sleep 1; done
for p in $(cat %s 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
%s >/dev/null 2>&1`, os.Getpid(), h.pidFile, h.pg.stopCommand())
	if !h.cfg.Keep {
		script += "\nrm -rf " + h.dir
	}
	cmd := exec.Command("sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // not killed with the harness's group
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("chaos: watchdog: %w", err)
	}
	go func() { _ = cmd.Wait() }()
	return cmd, nil
}

// serverLogs returns the paths of every server log.
func (h *harness) serverLogs() []string {
	var out []string
	for _, s := range h.servers {
		out = append(out, s.log)
	}
	return append(out, filepath.Join(h.dir, "tokens.log"))
}
