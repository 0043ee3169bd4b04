// Command chaos runs apiv4 under faults and load and checks its promises
// (see package chaos and docs/invariants.md). It exits 1 on any violation.
//
//	go build -o bin/apiv4 ./cmd/apiv4
//	go run ./cmd/chaos -apiv4 bin/apiv4 -duration 10m
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"apiv4/chaos"
)

func main() {
	cfg := chaos.Defaults
	flag.StringVar(&cfg.Binary, "apiv4", "bin/apiv4", "the apiv4 binary to run")
	flag.DurationVar(&cfg.Duration, "duration", cfg.Duration, "how long the load runs")
	flag.IntVar(&cfg.Servers, "servers", cfg.Servers, "apiv4 serve processes")
	flag.IntVar(&cfg.Clients, "clients", cfg.Clients, "concurrent clients")
	flag.DurationVar(&cfg.KillMin, "kill-min", cfg.KillMin, "shortest time between two SIGKILLs")
	flag.DurationVar(&cfg.KillMax, "kill-max", cfg.KillMax, "longest time between two SIGKILLs")
	flag.DurationVar(&cfg.Outage, "outage", cfg.Outage, "how long PostgreSQL stays down")
	flag.DurationVar(&cfg.SimDuration, "sim-duration", cfg.SimDuration, "how long each simulated job takes")
	flag.DurationVar(&cfg.JobLease, "job-lease", cfg.JobLease, "how long a killed process's job stays claimed")
	flag.DurationVar(&cfg.Settle, "settle", cfg.Settle, "at most how long to wait for jobs to end after the load")
	flag.StringVar(&cfg.PGBin, "pg-bin", "", "directory of PostgreSQL's initdb and pg_ctl (default: found)")
	flag.StringVar(&cfg.Dir, "dir", "", "directory for the run's files, kept (default: a temporary one, removed)")
	flag.Uint64Var(&cfg.Seed, "seed", 0, "seed of the random choices (default: random)")
	flag.Parse()
	cfg.Keep = cfg.Dir != ""
	cfg.Progress = os.Stderr

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	res, err := chaos.Run(ctx, cfg)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(2)
	}
	res.Print(os.Stdout)
	if !res.OK() {
		fmt.Println("FAIL: apiv4 broke a promise")
		os.Exit(1)
	}
	fmt.Println("PASS")
}
