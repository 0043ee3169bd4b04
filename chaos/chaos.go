// Package chaos runs apiv4 the way production would hurt it, and checks
// that it keeps its promises: three apiv4 serve processes on one
// PostgreSQL of the harness's own, many concurrent clients, a random
// process killed with SIGKILL every few seconds and started again, and
// PostgreSQL restarted once. Everything listens on 127.0.0.1 and every
// step is bounded in time.
//
// While the load runs, the checker of package invariant follows every
// commit through logical decoding and looks at the database's state
// twice a second. Once the load ends and the jobs had time to finish, it
// checks the database against the log of every request (requests.jsonl
// in the run's directory), and the server logs and the database are
// searched for every secret the clients sent.
package chaos

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"apiv4/invariant"
)

// Config describes one run. Zero values take the defaults of Defaults.
type Config struct {
	Binary      string        // the apiv4 binary (required)
	Duration    time.Duration // how long the load runs
	Servers     int           // apiv4 serve processes
	Clients     int           // concurrent clients
	KillMin     time.Duration // shortest time between two kills
	KillMax     time.Duration // longest time between two kills
	Outage      time.Duration // how long PostgreSQL stays down when it is restarted
	SimDuration time.Duration // how long each simulated job takes
	JobLease    time.Duration // how long a killed process's job stays claimed
	Settle      time.Duration // at most how long to wait for the jobs to end after the load
	PGBin       string        // PostgreSQL's server tools ("" to look for them)
	Dir         string        // where the run's files go ("" for a new temporary directory)
	Keep        bool          // keep the run's directory
	Seed        uint64        // of the random choices (0 for a random one)
	Progress    io.Writer     // where progress lines go (nil for nowhere)
}

// Defaults is the ten-minute run of make chaos.
var Defaults = Config{
	Duration: 10 * time.Minute, Servers: 3, Clients: 12, KillMin: 2 * time.Second, KillMax: 6 * time.Second,
	Outage: 4 * time.Second, SimDuration: time.Second, JobLease: 3 * time.Second, Settle: 2 * time.Minute,
}

func (c *Config) fill() {
	d := Defaults
	set := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	set(&c.Duration, d.Duration)
	set(&c.KillMin, d.KillMin)
	set(&c.KillMax, d.KillMax)
	set(&c.Outage, d.Outage)
	set(&c.SimDuration, d.SimDuration)
	set(&c.JobLease, d.JobLease)
	set(&c.Settle, d.Settle)
	if c.Servers == 0 {
		c.Servers = d.Servers
	}
	if c.Clients == 0 {
		c.Clients = d.Clients
	}
	if c.Seed == 0 {
		c.Seed = mrand.Uint64()
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
}

// Result is what a run saw.
type Result struct {
	Seed         uint64
	Dir          string
	Requests     map[int]int    // by status; 0 is no answer (the process was killed)
	Ops          map[string]int // by operation
	Unavailable  int            // 503 answers
	InOutage     int            // of which while PostgreSQL was down or coming back
	Other5xx     int            // 5xx answers other than 503
	Kills        int
	PGRestarts   int
	Commits      int // checked one by one through logical decoding
	Snapshots    int // consistent reads of the state checked during the load
	Lost         int // accepted actions that left no event
	Stuck        int // jobs or Linodes not ended once the load stopped
	Recovered    time.Duration
	UncleanStops []string // servers that did not stop cleanly on SIGTERM
	Violations   []invariant.Violation
}

// OK reports whether the run kept every promise.
func (r *Result) OK() bool {
	return len(r.Violations) == 0 && r.Other5xx == 0 && r.Lost == 0 && r.Stuck == 0 && len(r.UncleanStops) == 0
}

// Print writes the counts of the run, and the first violations.
func (r *Result) Print(w io.Writer) {
	total := 0
	for _, n := range r.Requests {
		total += n
	}
	fmt.Fprintf(w, "chaos run (seed %d, files in %s)\n", r.Seed, r.Dir)
	fmt.Fprintf(w, "requests: %d\n", total)
	statuses := make([]int, 0, len(r.Requests))
	for s := range r.Requests {
		statuses = append(statuses, s)
	}
	sort.Ints(statuses)
	for _, s := range statuses {
		name := http.StatusText(s)
		if s == 0 {
			name = "no answer (process killed or not yet back)"
		}
		fmt.Fprintf(w, "  %3d %-40s %8d\n", s, name, r.Requests[s])
	}
	ops := make([]string, 0, len(r.Ops))
	for op := range r.Ops {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	fmt.Fprint(w, "by operation:")
	for _, op := range ops {
		fmt.Fprintf(w, " %s=%d", op, r.Ops[op])
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "SIGKILLs: %d, PostgreSQL restarts: %d (served again %v after it was back)\n",
		r.Kills, r.PGRestarts, r.Recovered.Round(time.Millisecond))
	fmt.Fprintf(w, "503 answers: %d (%d while PostgreSQL was down or coming back)\n", r.Unavailable, r.InOutage)
	fmt.Fprintf(w, "5xx other than 503: %d\n", r.Other5xx)
	fmt.Fprintf(w, "commits checked one by one: %d, consistent snapshots checked: %d\n", r.Commits, r.Snapshots)
	fmt.Fprintf(w, "lost jobs: %d, stuck jobs: %d\n", r.Lost, r.Stuck)
	fmt.Fprintf(w, "servers not stopping cleanly on SIGTERM: %d %v\n", len(r.UncleanStops), r.UncleanStops)
	fmt.Fprintf(w, "violations: %d\n", len(r.Violations))
	fmt.Fprint(w, invariant.Summary(r.Violations))
	for i, v := range r.Violations {
		if i == 20 {
			fmt.Fprintf(w, "  … and %d more\n", len(r.Violations)-20)
			break
		}
		fmt.Fprintln(w, "  "+v.String())
	}
}

// harness is the state of one run.
type harness struct {
	cfg      Config
	dir      string
	pg       *postgres
	dbURL    string
	servers  []*serverProc
	accounts []*account
	probe    *http.Client
	secrets  *secrets

	pidMu   sync.Mutex
	pidFile string

	logMu  sync.Mutex
	logW   *bufio.Writer
	logF   *os.File
	logErr error

	mu        sync.Mutex
	flagged   []invariant.Violation
	outages   [][2]time.Time // [down, back] of each PostgreSQL restart
	kills     atomic.Int64
	restarts  atomic.Int64
	snapshots atomic.Int64
}

// slot is the name of the logical replication slot of the run.
const slot = "apiv4_chaos"

// Run runs the chaos of cfg and returns what it saw. An error means the
// run itself could not be carried out; a broken promise is in the Result.
func Run(ctx context.Context, cfg Config) (res *Result, err error) {
	cfg.fill()
	if cfg.Binary == "" {
		return nil, errors.New("chaos: no apiv4 binary given")
	}
	h := &harness{cfg: cfg, secrets: newSecrets(), probe: &http.Client{Timeout: 2 * time.Second}}
	if h.dir = cfg.Dir; h.dir == "" {
		if h.dir, err = os.MkdirTemp("", "apiv4-chaos-"); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(h.dir, 0o755); err != nil {
		return nil, err
	}
	h.pidFile = filepath.Join(h.dir, "pids")
	rng := mrand.New(mrand.NewPCG(cfg.Seed, cfg.Seed>>1|1))
	h.say("run directory %s, seed %d", h.dir, cfg.Seed)

	if err := h.setUp(ctx); err != nil {
		h.tearDown()
		return nil, err
	}
	defer h.tearDown()
	return h.run(ctx, rng)
}

func (h *harness) say(format string, args ...any) {
	fmt.Fprintf(h.cfg.Progress, "%s chaos: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// setUp starts PostgreSQL, makes the accounts and their tokens, and starts
// the servers.
func (h *harness) setUp(ctx context.Context) error {
	bin, err := findPGBin(h.cfg.PGBin)
	if err != nil {
		return err
	}
	if h.pg, err = startPostgres(ctx, bin, h.dir); err != nil {
		return err
	}
	if _, err := h.startWatchdog(); err != nil {
		return err
	}
	h.say("PostgreSQL %s up on 127.0.0.1:%d", bin, h.pg.port)
	if err := h.pg.createDatabase(ctx, "apiv4"); err != nil {
		return err
	}
	h.dbURL = h.pg.url("apiv4")
	if err := invariant.CreateSlot(ctx, h.dbURL, slot); err != nil {
		return err
	}

	for i := range h.cfg.Servers {
		port, err := freePort()
		if err != nil {
			return err
		}
		h.servers = append(h.servers, &serverProc{n: i, addr: fmt.Sprintf("127.0.0.1:%d", port),
			log: filepath.Join(h.dir, fmt.Sprintf("server%d.log", i))})
	}
	var wg sync.WaitGroup
	errs := make([]error, len(h.servers))
	for i, s := range h.servers {
		wg.Go(func() { errs[i] = h.start(ctx, s) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}

	// Tokens come once the servers are up, as an operator's would: only
	// apiv4 serve creates and migrates the database token create uses.
	for _, a := range []struct {
		name  string
		users []string
	}{{"acme", []string{"alice", "bob"}}, {"globex", []string{"mallory", "trent"}}, {"initech", []string{"carol"}}} {
		acct := &account{name: a.name}
		for _, name := range a.users {
			token, err := h.createToken(ctx, a.name, name)
			if err != nil {
				return err
			}
			h.secrets.add(token)
			acct.users = append(acct.users, &user{name: name, token: token, account: acct})
		}
		h.accounts = append(h.accounts, acct)
	}

	h.logF, err = os.Create(filepath.Join(h.dir, "requests.jsonl"))
	if err != nil {
		return err
	}
	h.logW = bufio.NewWriterSize(h.logF, 1<<20)
	h.say("%d servers up", len(h.servers))
	return nil
}

// createToken runs apiv4 token create, as an operator would.
func (h *harness) createToken(ctx context.Context, accountName, username string) (string, error) {
	logFile, err := os.OpenFile(filepath.Join(h.dir, "tokens.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return "", err
	}
	defer logFile.Close()
	cmd := commandContext(ctx, h.cfg.Binary, "token", "create", "--database", h.dbURL,
		"--username", username, "--account", accountName)
	cmd.Stderr = logFile
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("chaos: token create: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// tearDown stops everything the run started; the watchdog would do it if
// the harness itself died.
func (h *harness) tearDown() {
	for _, s := range h.servers {
		s.kill()
	}
	if h.pg != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_ = h.pg.stop(ctx, "immediate")
		cancel()
	}
	if h.logF != nil {
		h.logF.Close()
	}
	if !h.cfg.Keep {
		os.RemoveAll(h.dir)
	}
}

// record appends a request to the log.
func (h *harness) record(r invariant.Record) {
	b, err := json.Marshal(r)
	h.logMu.Lock()
	defer h.logMu.Unlock()
	if err == nil {
		b = append(b, '\n')
		_, err = h.logW.Write(b)
	}
	if err != nil && h.logErr == nil {
		h.logErr = err
	}
}

// flag records a violation the harness saw itself.
func (h *harness) flag(v invariant.Violation) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.flagged = append(h.flagged, v)
}

// run drives the load and the chaos, then checks everything.
func (h *harness) run(ctx context.Context, rng *mrand.Rand) (*Result, error) {
	stream, err := invariant.OpenStream(h.dbURL, slot)
	if err != nil {
		return nil, err
	}
	defer stream.Close()
	checker, err := invariant.Open(h.dbURL)
	if err != nil {
		return nil, err
	}
	defer checker.Close()

	// The watchers follow the database while the load runs; a failed read
	// (PostgreSQL down) is tried again at the next tick.
	watchCtx, stopWatching := context.WithCancel(ctx)
	defer stopWatching()
	var watchers sync.WaitGroup
	defer watchers.Wait()
	seen := map[string]bool{}
	watchers.Go(func() {
		for tick(watchCtx, time.Second) {
			_, _ = stream.Poll(watchCtx)
		}
	})
	watchers.Go(func() {
		for tick(watchCtx, 500*time.Millisecond) {
			vs, err := checker.Snapshot(watchCtx)
			if err != nil {
				continue
			}
			h.snapshots.Add(1)
			for _, v := range vs {
				if !seen[v.String()] {
					seen[v.String()] = true
					h.flag(v)
				}
			}
		}
	})

	loadCtx, stopLoad := context.WithTimeout(ctx, h.cfg.Duration)
	defer stopLoad()
	var clients sync.WaitGroup
	transport := &http.Transport{MaxIdleConnsPerHost: 8, IdleConnTimeout: 30 * time.Second}
	var users []*user
	for _, a := range h.accounts {
		users = append(users, a.users...)
	}
	for i := range h.cfg.Clients {
		c := &client{n: i, h: h, u: users[i%len(users)], hc: &http.Client{Transport: transport},
			rng: mrand.New(mrand.NewPCG(rng.Uint64(), uint64(i)))}
		clients.Go(func() { c.run(loadCtx) })
	}
	h.say("%d clients running for %v", h.cfg.Clients, h.cfg.Duration)

	var recovered time.Duration
	var chaos sync.WaitGroup
	chaos.Go(func() { recovered = h.chaos(loadCtx, rng) })
	chaos.Wait()
	clients.Wait()
	transport.CloseIdleConnections()
	h.say("load over: %d SIGKILLs, %d restarts of PostgreSQL", h.kills.Load(), len(h.outages))

	// Every slot runs again, then the jobs get time to end.
	for _, s := range h.servers {
		if !s.alive() {
			if err := h.start(ctx, s); err != nil {
				return nil, err
			}
		}
	}
	settled := h.settle(ctx, checker)
	stopWatching()
	watchers.Wait()
	h.say("jobs settled: %t", settled)

	res := &Result{Seed: h.cfg.Seed, Dir: h.dir, Kills: int(h.kills.Load()), PGRestarts: len(h.outages),
		Recovered: recovered, Snapshots: int(h.snapshots.Load())}
	if _, err := stream.Poll(ctx); err != nil {
		return nil, err
	}
	res.Commits = stream.Commits()
	if err := h.check(ctx, checker, stream, res); err != nil {
		return nil, err
	}
	for _, s := range h.servers {
		if err := s.terminate(); err != nil {
			res.UncleanStops = append(res.UncleanStops, fmt.Sprintf("server %d: %v", s.n, err))
		}
	}
	return res, nil
}

// tick waits d and reports whether ctx is still going.
func tick(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// chaos kills a random server every few seconds and starts it again, and
// restarts PostgreSQL once, 40% into the load. It returns how long after
// PostgreSQL was back the first request was served again.
func (h *harness) chaos(ctx context.Context, rng *mrand.Rand) time.Duration {
	restartAt := time.Now().Add(h.cfg.Duration * 4 / 10)
	restarted := false
	var recovered time.Duration
	for {
		wait := h.cfg.KillMin + time.Duration(rng.Int64N(int64(h.cfg.KillMax-h.cfg.KillMin)+1))
		if !restarted {
			// Never wait past the restart: a slow server start on a
			// loaded machine must not push it beyond the end of the run.
			wait = max(0, min(wait, time.Until(restartAt)))
		}
		if !tick(ctx, wait) {
			return recovered
		}
		if !restarted && time.Now().After(restartAt) {
			restarted = true
			recovered = h.restartPostgres(ctx)
			continue
		}
		s := h.servers[rng.IntN(len(h.servers))]
		s.kill()
		h.kills.Add(1)
		if err := h.start(ctx, s); err != nil && ctx.Err() == nil {
			h.flag(invariant.Violation{Kind: invariant.KindAnswer,
				Detail: fmt.Sprintf("server %d did not start again: %v", s.n, err)})
		}
	}
}

// restartPostgres stops PostgreSQL (fast: every session ends at once),
// keeps it down for the outage, starts it, and returns how long it then
// took until a server answered an authenticated request again.
func (h *harness) restartPostgres(ctx context.Context) time.Duration {
	down := time.Now()
	h.say("stopping PostgreSQL for %v", h.cfg.Outage)
	if err := h.pg.stop(ctx, "fast"); err != nil {
		h.flag(invariant.Violation{Kind: invariant.KindAnswer, Detail: "could not stop PostgreSQL: " + err.Error()})
		return 0
	}
	tick(ctx, h.cfg.Outage)
	startCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if err := h.pg.start(startCtx); err != nil {
		h.flag(invariant.Violation{Kind: invariant.KindAnswer, Detail: "could not start PostgreSQL: " + err.Error()})
		return 0
	}
	back := time.Now()
	h.say("PostgreSQL back after %v", back.Sub(down).Round(time.Millisecond))

	token := h.accounts[0].users[0].token
	var recovered time.Duration
	for deadline := back.Add(time.Minute); time.Now().Before(deadline); {
		req, _ := http.NewRequest("GET", "http://"+h.servers[0].addr+"/v4/linode/instances", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := h.probe.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				recovered = time.Since(back)
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.mu.Lock()
	h.outages = append(h.outages, [2]time.Time{down, time.Now()})
	h.mu.Unlock()
	if recovered == 0 {
		h.flag(invariant.Violation{Kind: invariant.KindAnswer,
			Detail: "no server served again within a minute of PostgreSQL coming back"})
	}
	return recovered
}

// settle waits until no job is pending, at most Settle.
func (h *harness) settle(ctx context.Context, checker *invariant.Checker) bool {
	deadline := time.Now().Add(h.cfg.Settle)
	for time.Now().Before(deadline) {
		if n, err := checker.Pending(ctx); err == nil && n == 0 {
			return true
		}
		if !tick(ctx, 250*time.Millisecond) {
			return false
		}
	}
	return false
}

// check runs the final checks and fills res.
func (h *harness) check(ctx context.Context, checker *invariant.Checker, stream *invariant.Stream, res *Result) error {
	h.logMu.Lock()
	err := errors.Join(h.logErr, h.logW.Flush())
	h.logMu.Unlock()
	if err != nil {
		return fmt.Errorf("chaos: request log: %w", err)
	}
	records, err := invariant.ReadLog(filepath.Join(h.dir, "requests.jsonl"))
	if err != nil {
		return err
	}

	res.Requests, res.Ops = map[int]int{}, map[string]int{}
	for _, r := range records {
		res.Requests[r.Status]++
		res.Ops[r.Op]++
		switch {
		case r.Status == http.StatusServiceUnavailable:
			res.Unavailable++
			if h.inOutage(r) {
				res.InOutage++
			}
		case r.Status >= 500:
			res.Other5xx++
		}
	}

	quiet, err := checker.Quiescent(ctx)
	if err != nil {
		return err
	}
	logged, err := checker.Log(ctx, records)
	if err != nil {
		return err
	}
	leaks, err := h.findSecrets(ctx)
	if err != nil {
		return err
	}

	h.mu.Lock()
	vs := slices.Clone(h.flagged)
	h.mu.Unlock()
	vs = append(vs, stream.Violations()...)
	vs = append(vs, quiet...)
	vs = append(vs, logged...)
	vs = append(vs, leaks...)
	for _, v := range vs {
		switch v.Kind {
		case invariant.KindLost:
			res.Lost++
		case invariant.KindJobEnd, invariant.KindStuck:
			res.Stuck++
		}
	}
	res.Violations = vs
	return nil
}

// inOutage reports whether a request ran while PostgreSQL was down or
// until a server served again after it.
func (h *harness) inOutage(r invariant.Record) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, o := range h.outages {
		if r.End.After(o[0]) && r.Start.Before(o[1]) {
			return true
		}
	}
	return false
}
