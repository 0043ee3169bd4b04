package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"

	"apiv4/chaos"
)

// chaosConfig is what apiv4 chaos runs: chaos.Config, plus the errors of
// the environment variables that did not parse.
type chaosConfig struct {
	chaos.Config
	envErrs []error
}

// chaosFlags binds the chaos run to a flag set, each flag beside its
// APIV4_CHAOS_* variable.
func chaosFlags(c *chaosConfig, getenv func(string) string, stderr io.Writer) *flag.FlagSet {
	fs := flagSet("apiv4 chaos", stderr)
	e := envFlags{fs, getenv, &c.envErrs}
	d := chaos.Defaults
	e.string(&c.Binary, "apiv4", "APIV4_CHAOS_BINARY", "",
		"the apiv4 binary the servers run (none: this one)")
	e.duration(&c.Duration, "duration", "APIV4_CHAOS_DURATION", d.Duration.String(), "how long the load runs")
	e.int(&c.Servers, "servers", "APIV4_CHAOS_SERVERS", strconv.Itoa(d.Servers), "apiv4 serve processes")
	e.int(&c.Clients, "clients", "APIV4_CHAOS_CLIENTS", strconv.Itoa(d.Clients), "concurrent clients")
	e.duration(&c.KillMin, "kill-min", "APIV4_CHAOS_KILL_MIN", d.KillMin.String(),
		"shortest time between two SIGKILLs")
	e.duration(&c.KillMax, "kill-max", "APIV4_CHAOS_KILL_MAX", d.KillMax.String(),
		"longest time between two SIGKILLs")
	e.duration(&c.Outage, "outage", "APIV4_CHAOS_OUTAGE", d.Outage.String(),
		"how long the private PostgreSQL stays down")
	e.duration(&c.SimDuration, "sim-duration", "APIV4_CHAOS_SIM_DURATION", d.SimDuration.String(),
		"how long each simulated job takes")
	e.duration(&c.JobLease, "job-lease", "APIV4_CHAOS_JOB_LEASE", d.JobLease.String(),
		"how long a killed process's job stays claimed")
	e.duration(&c.Settle, "settle", "APIV4_CHAOS_SETTLE", d.Settle.String(),
		"at most how long to wait for jobs to end after the load")
	e.string(&c.PGBin, "pg-bin", "APIV4_CHAOS_PG_BIN", "",
		"directory of PostgreSQL's initdb and pg_ctl for the private instance (none: found)")
	e.string(&c.Dir, "dir", "APIV4_CHAOS_DIR", "",
		"directory for the run's files, kept (none: a temporary one, removed)")
	e.define("seed", "APIV4_CHAOS_SEED", "0", "seed of the random choices (0: random)",
		func(s string) error {
			n, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return fmt.Errorf("want a whole number")
			}
			c.Seed = n
			return nil
		})
	return fs
}

// runChaos runs apiv4 under faults and load on a PostgreSQL of its own,
// which it starts, restarts and stops (never any other), and checks every
// promise of docs/invariants.md. A broken promise is an error.
func runChaos(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var c chaosConfig
	fs := chaosFlags(&c, getenv, stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if len(c.envErrs) > 0 {
		return errors.Join(c.envErrs...)
	}
	if c.Binary == "" {
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("chaos: find this binary: %w", err)
		}
		c.Binary = self
	}
	c.Keep = c.Dir != ""
	c.Progress = stderr
	res, err := chaos.Run(ctx, c.Config)
	if err != nil {
		return err
	}
	res.Print(stdout)
	if !res.OK() {
		return fmt.Errorf("chaos: apiv4 broke a promise")
	}
	fmt.Fprintln(stdout, "PASS")
	return nil
}
