package bench

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// server is an `apiv4 serve` child process on a loopback port.
type server struct {
	cmd  *exec.Cmd
	addr string
	log  string // its log file
	done chan error

	stopOnce sync.Once
	stopErr  error
}

var listening = regexp.MustCompile(`msg=listening addr=(127\.0\.0\.1:[0-9]+)`)

// startServer runs `bin serve` against dbURL on a free loopback port with
// its default settings but one, logging to a file in dir, and waits until
// it answers. The caller stops it. The per-token rate limit is off: the
// bench measures what one process can serve, and the default limit (6,000
// requests a minute per token) would answer most of its requests 429.
func startServer(ctx context.Context, bin, dbURL, dir string) (*server, error) {
	logPath := filepath.Join(dir, "serve-"+strings.SplitN(dbURL, ":", 2)[0]+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--database", dbURL,
		"--log-format", "text", "--rate-limit", "0")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = cleanEnv()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s serve: %w", bin, err)
	}
	s := &server{cmd: cmd, log: logPath, done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait() }()

	deadline := time.Now().Add(2 * time.Minute)
	for s.addr == "" {
		select {
		case err := <-s.done:
			return nil, fmt.Errorf("apiv4 serve exited (%v); see %s", err, logPath)
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("apiv4 serve did not start in time; see %s", logPath)
		}
		if b, err := os.ReadFile(logPath); err == nil {
			if m := listening.FindSubmatch(b); m != nil {
				s.addr = string(m[1])
			}
		}
	}
	resp, err := http.Get("http://" + s.addr + "/healthz")
	if err != nil {
		s.stop()
		return nil, err
	}
	resp.Body.Close()
	return s, nil
}

// cleanEnv is the bench's environment without APIV4_ settings, so that
// the server runs with its defaults whatever the shell set.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "APIV4_") {
			env = append(env, kv)
		}
	}
	return env
}

// memory returns the server's resident set size now and at its peak, in
// bytes, from /proc.
func (s *server) memory() (rss, peak int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, _ := strings.Cut(sc.Text(), ":")
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 10, 64)
		switch key {
		case "VmRSS":
			rss = kb << 10
		case "VmHWM":
			peak = kb << 10
		}
	}
	return rss, peak, sc.Err()
}

// groupCommits reads from the server's /metrics how many commits its
// one-statement writes took, and how many writes shared them.
func (s *server) groupCommits() (commits, writes int64, err error) {
	resp, err := http.Get("http://" + s.addr + "/metrics")
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, val, _ := strings.Cut(sc.Text(), " ")
		n, _ := strconv.ParseFloat(val, 64)
		switch name {
		case "apiv4_group_commits_total":
			commits = int64(n)
		case "apiv4_group_commit_writes_total":
			writes = int64(n)
		}
	}
	return commits, writes, sc.Err()
}

// stop asks the server to shut down and waits for it, killing it if it
// takes more than 30 seconds. Calling it again returns the same result.
func (s *server) stop() error {
	s.stopOnce.Do(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case s.stopErr = <-s.done:
		case <-time.After(30 * time.Second):
			_ = s.cmd.Process.Kill()
			s.stopErr = <-s.done
		}
	})
	return s.stopErr
}
