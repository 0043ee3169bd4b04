package chaos

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// raceEnabled is set by race_test.go when the test runs under -race; the
// servers are then built with -race too, and report their own races.
var raceEnabled bool

// TestShortChaos is the short version of make chaos: twenty seconds of
// load on three servers with a SIGKILL every few seconds and one
// PostgreSQL restart, on a PostgreSQL of its own. Every promise must hold.
func TestShortChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and three servers")
	}
	pgBin, err := findPGBin(os.Getenv("APIV4_PG_BIN"))
	if err != nil {
		t.Skipf("no private PostgreSQL possible: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "apiv4")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	if out, err := exec.Command("go", append(args, "apiv4/cmd/apiv4")...).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	var progress strings.Builder
	cfg := Config{
		Binary: bin, PGBin: pgBin, Duration: 20 * time.Second, Clients: 8,
		KillMin: 2 * time.Second, KillMax: 4 * time.Second, Outage: 2 * time.Second,
		SimDuration: 500 * time.Millisecond, JobLease: 2 * time.Second, Settle: 90 * time.Second,
		Progress: &progress,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	var out strings.Builder
	res.Print(&out)
	t.Log("\n" + progress.String() + out.String())
	if !res.OK() {
		t.Errorf("apiv4 broke a promise under chaos:\n%s", out.String())
	}
	if res.Kills == 0 || res.PGRestarts != 1 || res.Requests[200] == 0 {
		t.Errorf("the run did not do what it must: %d kills, %d PostgreSQL restarts, %d answers 200",
			res.Kills, res.PGRestarts, res.Requests[200])
	}
	if res.InOutage == 0 {
		t.Errorf("no request met the PostgreSQL outage with a 503")
	}
}
