package job_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"apiv4/db"
	"apiv4/db/dbtest"
	"apiv4/job"
)

func openStore(t *testing.T, url string) (*db.Store, *db.Principal) {
	t.Helper()
	ctx := context.Background()
	s, err := db.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	u, err := s.EnsureUser(ctx, "acme", "alice")
	if err != nil {
		t.Fatal(err)
	}
	secret, err := s.CreateToken(ctx, u, "t", "*", nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Authenticate(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	return s, p
}

// startRunner runs a runner until the test ends.
func startRunner(t *testing.T, s *db.Store, d job.Driver, lease time.Duration) *job.Runner {
	t.Helper()
	cfg := job.Config{Workers: 2, Lease: lease, Poll: 20 * time.Millisecond,
		BackupScan: 20 * time.Millisecond}
	r := job.New(s, d, cfg,
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

// waitEvent polls an event until its status is final or the deadline passes.
func waitEvent(t *testing.T, s *db.Store, p *db.Principal, id int64) *db.Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		e, err := s.GetEvent(context.Background(), p, id)
		if err != nil {
			t.Fatal(err)
		}
		if e.Status == "finished" || e.Status == "failed" {
			return e
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("event %d did not end in time", id)
	return nil
}

func createLinode(t *testing.T, s *db.Store, p *db.Principal) (*db.Linode, int64) {
	t.Helper()
	img := "linode/debian12"
	l, err := s.CreateLinode(context.Background(), p, db.NewLinode{
		Region: "us-east", Type: "g6-nanode-1", Image: &img, Booted: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	page, err := s.ListEvents(context.Background(), p, db.ListQuery{Page: 1, PageSize: 25})
	if err != nil || len(page.Events) == 0 {
		t.Fatalf("list events: %v", err)
	}
	return l, page.Events[0].ID
}

// failing is a driver whose every job fails.
type failing struct{}

func (failing) Run(context.Context, *db.Job, func(int, time.Duration) error) error {
	return errors.New("the disk image could not be read")
}

func TestRunner(t *testing.T) {
	for kind, url := range dbtest.URLs(t) {
		t.Run(kind, func(t *testing.T) {
			t.Run("finishes jobs", func(t *testing.T) {
				s, p := openStore(t, url)
				startRunner(t, s, job.Sim{Duration: 40 * time.Millisecond, Steps: 4}, time.Second)
				l, eventID := createLinode(t, s, p)
				e := waitEvent(t, s, p, eventID)
				if e.Status != "finished" || *e.PercentComplete != 100 || *e.TimeRemaining != 0 {
					t.Fatalf("create event = %s %d%%", e.Status, *e.PercentComplete)
				}
				got, _ := s.GetLinode(context.Background(), p, l.ID)
				if got.Status != "running" || got.JobsPending != 0 {
					t.Fatalf("linode = %s with %d pending jobs, want running and idle",
						got.Status, got.JobsPending)
				}
			})

			t.Run("failed job frees the linode and says why", func(t *testing.T) {
				s, p := openStore(t, dbtestFresh(t, kind))
				startRunner(t, s, failing{}, time.Second)
				l, eventID := createLinode(t, s, p)
				want := fmt.Sprintf("Creating Linode %s: the disk image could not be read", l.Label)
				if e := waitEvent(t, s, p, eventID); e.Status != "failed" || str(e.Message) != want {
					t.Fatalf("event status = %s, message %q; want failed with the driver's reason",
						e.Status, str(e.Message))
				}
				got, _ := s.GetLinode(context.Background(), p, l.ID)
				if got.Status != "offline" || got.JobsPending != 0 {
					t.Fatalf("linode = %s with %d pending, want offline and idle", got.Status, got.JobsPending)
				}
			})

			t.Run("takes automatic backups", func(t *testing.T) {
				s, p := openStore(t, dbtestFresh(t, kind))
				cfg := db.DefaultConfig()
				cfg.BackupInterval = 50 * time.Millisecond
				if err := s.SetConfig(cfg); err != nil {
					t.Fatal(err)
				}
				sim := job.Sim{Duration: 20 * time.Millisecond, UnavailableRate: 1}
				startRunner(t, s, sim, time.Second)
				l, eventID := createLinode(t, s, p)
				waitEvent(t, s, p, eventID)
				ctx := context.Background()
				if err := s.EnableBackups(ctx, p, l.ID); err != nil {
					t.Fatal(err)
				}

				var taken *db.Backup
				deadline := time.Now().Add(10 * time.Second)
				for taken == nil && time.Now().Before(deadline) {
					list, err := s.ListBackups(ctx, p, l.ID)
					if err != nil {
						t.Fatal(err)
					}
					for i, b := range list.Automatic {
						if b.Status == "successful" {
							taken = &list.Automatic[i]
						}
					}
					time.Sleep(10 * time.Millisecond)
				}
				if taken == nil {
					t.Fatal("no automatic backup was taken in time")
				}
				if taken.Type != "auto" || !taken.Maintenance || taken.Available() {
					t.Errorf("backup = %+v; want automatic, under maintenance, not available", taken)
				}
			})

			t.Run("takes over a dead process's job", func(t *testing.T) {
				s, p := openStore(t, dbtestFresh(t, kind))
				_, eventID := createLinode(t, s, p)
				// A process claims the job and dies without a word.
				dead, err := s.ClaimJob(context.Background(), "dead", 200*time.Millisecond)
				if err != nil || dead == nil {
					t.Fatalf("claim = %v, %v", dead, err)
				}
				startRunner(t, s, job.Sim{Duration: 20 * time.Millisecond}, time.Second)
				if e := waitEvent(t, s, p, eventID); e.Status != "finished" {
					t.Fatalf("event status = %s, want finished", e.Status)
				}
				err = s.FinishJob(context.Background(), dead, db.Succeeded, "")
				if !errors.Is(err, db.ErrLeaseLost) {
					t.Fatalf("the dead process finishing late: err = %v, want ErrLeaseLost", err)
				}
			})
		})
	}
}

// dbtestFresh returns a fresh database of the same kind, so that subtests
// do not see each other's jobs.
func dbtestFresh(t *testing.T, kind string) string {
	t.Helper()
	if kind == "postgres" {
		return dbtest.PostgresURL(t)
	}
	return dbtest.SQLiteURL(t)
}

// TestMaintenanceRunsAtItsTime schedules maintenance for an hour ahead on
// a store whose clock the test moves: the runner runs other jobs of the
// Linode meanwhile, leaves the maintenance scheduled, and runs it through
// started to finished once the clock reaches its time.
func TestMaintenanceRunsAtItsTime(t *testing.T) {
	for kind, url := range dbtest.URLs(t) {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			s, p := openStore(t, url)
			var clock atomic.Int64
			clock.Store(time.Now().UnixMicro())
			s.SetClock(func() time.Time { return time.UnixMicro(clock.Load()) })
			startRunner(t, s, job.Sim{Duration: 20 * time.Millisecond}, time.Second)

			l, created := createLinode(t, s, p)
			waitEvent(t, s, p, created)
			at := time.UnixMicro(clock.Load()).Add(time.Hour)
			m, err := s.ScheduleMaintenance(ctx, l.ID, at)
			if err != nil {
				t.Fatal(err)
			}
			_, shutdown, err := s.Act(ctx, p, l.ID, db.Action{Name: "linode_shutdown"})
			if err != nil {
				t.Fatalf("shutdown with maintenance scheduled: %v", err)
			}
			if e := waitEvent(t, s, p, shutdown.ID); e.Status != "finished" {
				t.Fatalf("shutdown = %s", e.Status)
			}
			if e, _ := s.GetEvent(ctx, p, m.ID); e.Status != "scheduled" {
				t.Fatalf("maintenance before its time = %s, want scheduled", e.Status)
			}

			clock.Store(at.UnixMicro())
			e := waitEvent(t, s, p, m.ID)
			got, _ := s.GetLinode(ctx, p, l.ID)
			if e.Status != "finished" || e.Started == nil || got.Status != "offline" ||
				got.JobsPending != 0 || got.HostUUID == l.HostUUID {
				t.Fatalf("after its time: event %s, Linode %s with %d jobs, host %s (was %s)",
					e.Status, got.Status, got.JobsPending, got.HostUUID, l.HostUUID)
			}
		})
	}
}

// str is *p, or "<nil>".
func str(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}
