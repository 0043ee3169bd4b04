package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"apiv4/bench"
)

// benchFlags binds the bench's configuration to a new flag set; values of
// APIV4_BENCH_* variables that do not parse are added to errs.
func benchFlags(cfg *bench.Config, errs *[]error, getenv func(string) string,
	stderr io.Writer) *flag.FlagSet {
	fs := flagSet("apiv4 bench", stderr)
	e := envFlags{fs, getenv, errs}
	e.string(&cfg.ServerURL, "database", "APIV4_BENCH_DATABASE_URL",
		"postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
		"PostgreSQL server to create the bench database on; it is dropped at the end")
	e.define("events", "APIV4_BENCH_EVENTS", "1000000",
		"events in the big account, and as many again spread over -accounts accounts",
		int64Setter(&cfg.Events))
	e.define("accounts", "APIV4_BENCH_ACCOUNTS", "1000", "accounts that share the spread events",
		int64Setter(&cfg.Accounts))
	e.int(&cfg.Clients, "clients", "APIV4_BENCH_CLIENTS", "16", "concurrent clients of the list scenarios")
	e.int(&cfg.Writers, "writers", "APIV4_BENCH_WRITERS", "8", "concurrent writers of the insert scenario")
	e.duration(&cfg.Duration, "duration", "APIV4_BENCH_DURATION", "20s",
		"measuring time per scenario, for the server and again for the database")
	e.int(&cfg.Rounds, "rounds", "APIV4_BENCH_ROUNDS", "10", "turns the scenarios take within -duration")
	e.define("keep", "APIV4_BENCH_KEEP", "false", "keep the bench database after the run: true or false",
		boolSetter(&cfg.Keep))
	e.define("sqlite", "APIV4_BENCH_SQLITE", "false", "also seed a SQLite file alike and measure the "+
		"server on it (no ceiling): true or false", boolSetter(&cfg.SQLite))
	e.string(&cfg.Reuse, "reuse", "APIV4_BENCH_REUSE", "",
		"measure a database a -keep run kept, without seeding")
	e.define("only", "APIV4_BENCH_ONLY", "", "run only these scenarios, comma-separated: page1, deep, "+
		"small, event_finished, resource_free, seen, read, insert", func(s string) error {
		cfg.Only = nil
		if s != "" {
			cfg.Only = strings.Split(s, ",")
		}
		return nil
	})
	return fs
}

func int64Setter(p *int64) func(string) error {
	return func(s string) error {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("want an integer")
		}
		*p = n
		return nil
	}
}

func boolSetter(p *bool) func(string) error {
	return func(s string) error {
		v, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("want true or false")
		}
		*p = v
		return nil
	}
}

// runBench seeds a PostgreSQL database, starts this binary's `serve` on
// it, measures it against the database's ceiling and prints the table.
func runBench(ctx context.Context, args []string, getenv func(string) string,
	stdout, stderr io.Writer) error {
	var cfg bench.Config
	var envErrs []error
	fs := benchFlags(&cfg, &envErrs, getenv, stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if len(envErrs) > 0 {
		return errors.Join(envErrs...)
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
