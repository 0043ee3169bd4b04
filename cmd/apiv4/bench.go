package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"apiv4/bench"
)

// runBench seeds a PostgreSQL database, starts this binary's `serve` on
// it, measures it against the database's ceiling and prints the table.
func runBench(ctx context.Context, args []string, getenv func(string) string,
	stdout, stderr io.Writer) error {
	fs := flagSet("apiv4 bench", stderr)
	server := getenv("APIV4_BENCH_DATABASE_URL")
	if server == "" {
		server = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	cfg := bench.Config{}
	fs.StringVar(&cfg.ServerURL, "database", server, "PostgreSQL server to create the bench "+
		"database on; it is dropped at the end (APIV4_BENCH_DATABASE_URL)")
	fs.Int64Var(&cfg.Events, "events", 1_000_000,
		"events in the big account, and as many again spread over -accounts accounts")
	fs.Int64Var(&cfg.Accounts, "accounts", 1000, "accounts that share the spread events")
	fs.IntVar(&cfg.Clients, "clients", 16, "concurrent clients of the list scenarios")
	fs.IntVar(&cfg.Writers, "writers", 8, "concurrent writers of the insert scenario")
	fs.DurationVar(&cfg.Duration, "duration", 20*time.Second,
		"measuring time per scenario, for the server and again for the database")
	fs.IntVar(&cfg.Rounds, "rounds", 10, "turns the scenarios take within -duration")
	fs.BoolVar(&cfg.Keep, "keep", false, "keep the bench database after the run")
	fs.BoolVar(&cfg.SQLite, "sqlite", false, "also seed a SQLite file alike and measure the "+
		"server on it (no ceiling)")
	fs.StringVar(&cfg.Reuse, "reuse", "", "measure a database a -keep run kept, without seeding")
	fs.Func("only", "run only these scenarios, comma-separated: page1, deep, small, "+
		"event_finished, resource_free, seen, read, insert", func(s string) error {
		cfg.Only = strings.Split(s, ",")
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case cfg.Events < 1000 || cfg.Accounts < 1 || cfg.Clients < 1 || cfg.Writers < 1:
		return fmt.Errorf("-events must be at least 1000; -accounts, -clients, -writers at least 1")
	case cfg.Rounds < 1 || cfg.Duration < time.Duration(cfg.Rounds)*100*time.Millisecond:
		return fmt.Errorf("-rounds must be at least 1 and -duration at least 100ms per round")
	}
	bin, err := os.Executable()
	if err != nil {
		return err
	}
	cfg.Binary = bin
	return bench.Run(ctx, cfg, stdout, stderr)
}
