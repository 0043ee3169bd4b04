// Package bench measures apiv4 against the database's own ceiling: it
// seeds a PostgreSQL database, starts `apiv4 serve` on it, drives it over
// loopback, runs the statements the server sends straight against
// PostgreSQL, and reports both side by side.
package bench

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/uptrace/bun/driver/sqliteshim"

	"apiv4/db"
)

// Config is one bench run.
type Config struct {
	ServerURL string        // a PostgreSQL server; the bench creates and drops its own database
	Binary    string        // the apiv4 binary to run as `apiv4 serve`
	Events    int64         // events in the big account, and again over Accounts accounts
	Accounts  int64         // how many accounts share the spread events
	Clients   int           // concurrent clients of the list scenarios
	Writers   int           // concurrent writers of the insert scenario
	Duration  time.Duration // per scenario and side, split over Rounds
	Rounds    int           // how many times the scenarios take turns
	Keep      bool          // keep the database after the run, for a look at it
	Reuse     string        // the URL of a database a run kept: measure it again, unseeded
	Only      []string      // run only these scenarios (their bench: keys); all when empty
	SQLite    bool          // also measure the server on a SQLite file seeded alike
}

// Run seeds, serves, measures and prints the table and the bench: line on
// out, with progress on log. It drops the database it created, and stops
// the server it started, whatever happens.
func Run(ctx context.Context, cfg Config, out, log io.Writer) error {
	started := time.Now()
	dbURL := cfg.Reuse
	if dbURL == "" {
		var drop func()
		var err error
		if dbURL, drop, err = createDatabase(ctx, cfg.ServerURL); err != nil {
			return err
		}
		if cfg.Keep {
			fmt.Fprintf(log, "keeping database %s\n", dbURL)
		} else {
			defer drop()
		}
	}
	dir, err := os.MkdirTemp("", "apiv4-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	f, err := prepare(ctx, cfg, dbURL, log)
	if err != nil {
		return err
	}
	srv, err := startServer(ctx, cfg.Binary, dbURL, dir)
	if err != nil {
		return err
	}
	defer srv.stop()
	fmt.Fprintf(log, "apiv4 serve (pid %d) on %s\n", srv.cmd.Process.Pid, srv.addr)

	conns, err := connect(ctx, dbURL, max(cfg.Clients, cfg.Writers))
	if err != nil {
		return err
	}
	defer func() {
		for _, c := range conns {
			c.Close(context.Background())
		}
	}()
	firstSeq, err := waitForPruning(ctx, conns[0], f.big, log)
	if err != nil {
		return err
	}

	var scens []scenario
	for _, sc := range scenarios(f, firstSeq, cfg.Clients) {
		if len(cfg.Only) == 0 || slices.Contains(cfg.Only, sc.key) {
			scens = append(scens, sc)
		}
	}
	rows := measure(ctx, cfg, srv, conns, scens, log)
	if err := ctx.Err(); err != nil {
		return err
	}
	rss, peak, err := srv.memory()
	if err != nil {
		return err
	}
	commits, writes, err := srv.groupCommits()
	if err != nil {
		return err
	}
	if err := srv.stop(); err != nil {
		return fmt.Errorf("bench: apiv4 serve: %w; see %s", err, srv.log)
	}
	r := &report{rows: rows, rss: rss, peak: peak, cfg: cfg, pruned: firstSeq - 1,
		commits: commits, writes: writes}
	if cfg.SQLite {
		if r.sqlite, err = runSQLite(ctx, cfg, dir, log); err != nil {
			return err
		}
	}
	r.elapsed = time.Since(started)
	r.print(out)
	return nil
}

// runSQLite seeds a SQLite file as the PostgreSQL database was seeded
// (without events past the retention), serves it, and measures the
// scenarios against the server only: SQLite has no ceiling to compare.
func runSQLite(ctx context.Context, cfg Config, dir string, log io.Writer) (*sqliteRun, error) {
	path := filepath.Join(dir, "bench.db")
	store, err := db.Open(ctx, "sqlite:"+path)
	if err != nil {
		return nil, err
	}
	conn, err := sql.Open(sqliteshim.ShimName, "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		store.Close()
		return nil, err
	}
	plan := seedPlan{events: cfg.Events, accounts: cfg.Accounts, writers: cfg.Writers}
	start := time.Now()
	f, err := seed(ctx, store, sqliteSeedConn(conn), plan, log)
	conn.Close()
	store.Close()
	if err != nil {
		return nil, fmt.Errorf("bench: seed SQLite: %w", err)
	}
	fmt.Fprintf(log, "seeded SQLite with %s events in %s\n", count(2*cfg.Events+1000),
		time.Since(start).Round(time.Second))

	srv, err := startServer(ctx, cfg.Binary, "sqlite:"+path, dir)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	var scens []scenario
	for _, sc := range scenarios(f, 1, cfg.Clients) {
		if len(cfg.Only) == 0 || slices.Contains(cfg.Only, sc.key) {
			sc.sql = nil
			scens = append(scens, sc)
		}
	}
	run := &sqliteRun{rows: measure(ctx, cfg, srv, nil, scens, log)}
	run.rss, run.peak, err = srv.memory()
	return run, err
}

// createDatabase creates a fresh database apiv4_bench_… on the server and
// returns its URL and a function that drops it.
func createDatabase(ctx context.Context, server string) (string, func(), error) {
	admin, err := pgx.Connect(ctx, server)
	if err != nil {
		return "", nil, fmt.Errorf("bench: connect to %s: %w", server, err)
	}
	name := fmt.Sprintf("apiv4_bench_%d_%d", time.Now().Unix(), os.Getpid())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close(ctx)
		return "", nil, fmt.Errorf("bench: create database: %w", err)
	}
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: drop database %s: %v\n", name, err)
		}
		admin.Close(ctx)
	}
	u, err := url.Parse(server)
	if err != nil {
		drop()
		return "", nil, err
	}
	u.Path = "/" + name
	return u.String(), drop, nil
}

// prepare migrates the database through the store and seeds it, or
// describes the data of the kept database it reuses.
func prepare(ctx context.Context, cfg Config, dbURL string, log io.Writer) (*fixture, error) {
	store, err := db.Open(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	defer store.Close()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	if cfg.Reuse != "" {
		return loadFixture(ctx, store, pgSeedConn(conn), cfg.Writers)
	}
	plan := seedPlan{events: cfg.Events, accounts: cfg.Accounts, writers: cfg.Writers,
		expired: true}
	start := time.Now()
	f, err := seed(ctx, store, pgSeedConn(conn), plan, log)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "seeded %s events in %s\n", count(2*cfg.Events+1000),
		time.Since(start).Round(time.Second))
	return f, nil
}

func connect(ctx context.Context, dbURL string, n int) ([]*pgx.Conn, error) {
	conns := make([]*pgx.Conn, n)
	for i := range conns {
		c, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			for _, c := range conns[:i] {
				c.Close(ctx)
			}
			return nil, err
		}
		conns[i] = c
	}
	return conns, nil
}

// waitForPruning waits until the server has pruned the big account's
// events past the retention window, and returns its oldest kept seq.
func waitForPruning(ctx context.Context, c *pgx.Conn, big *account, log io.Writer) (int64, error) {
	cutoff := time.Now().Add(-retentionDays * 24 * time.Hour).UnixMicro()
	want := (cutoff-big.start)/big.step + 1 // the first seq created at or after cutoff
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var first int64
		err := c.QueryRow(ctx, `SELECT first_seq FROM event_counters WHERE account_id = $1`,
			big.AccountID).Scan(&first)
		if err != nil {
			return 0, err
		}
		if first >= want {
			fmt.Fprintf(log, "the server pruned %s events past the %d-day retention\n",
				count(first-1), retentionDays)
			return first, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("bench: the server pruned up to seq %d, want %d", first, want)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// row is one scenario measured on both sides.
type row struct {
	scenario
	server, ceiling result
}

// measure runs every scenario against the server and against the
// database, taking turns in short slices so that a drift of the machine's
// speed touches every scenario alike.
func measure(ctx context.Context, cfg Config, srv *server, conns []*pgx.Conn,
	scens []scenario, log io.Writer) []*row {
	rows := make([]*row, len(scens))
	for i := range scens {
		rows[i] = &row{scenario: scens[i]}
	}
	slice := cfg.Duration / time.Duration(cfg.Rounds)
	bar := newProgress(log, "measuring", int64(2*cfg.Rounds*len(rows)+len(rows)))
	for _, r := range rows { // warm up caches, connections and plans
		loadHTTP(ctx, srv.addr, r.token, r.clients, time.Second, r.req)
		if r.sql != nil {
			loadSQL(ctx, conns, r.clients, time.Second/2, r.sql)
		}
		bar.add(1)
	}
	for round := range cfg.Rounds {
		for _, r := range rows {
			if r.sql == nil { // the server only
				r.server.merge(loadHTTP(ctx, srv.addr, r.token, r.clients, slice, r.req))
				bar.add(2)
				continue
			}
			both := []func(){
				func() { r.server.merge(loadHTTP(ctx, srv.addr, r.token, r.clients, slice, r.req)) },
				func() { r.ceiling.merge(loadSQL(ctx, conns, r.clients, slice, r.sql)) },
			}
			if round%2 == 1 { // half the rounds measure the database first
				both[0], both[1] = both[1], both[0]
			}
			for _, fn := range both {
				fn()
				bar.add(1)
			}
		}
	}
	bar.done()
	return rows
}
