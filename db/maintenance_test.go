package db_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"apiv4/db"
)

// clockAt gives the store a clock that the test moves by hand.
func clockAt(s *db.Store, t time.Time) *time.Time {
	now := t
	s.SetClock(func() time.Time { return now })
	return &now
}

func TestScheduledMaintenance(t *testing.T) {
	eachStore(t, func(t *testing.T, s *db.Store) {
		ctx := context.Background()
		now := clockAt(s, time.Date(2026, 12, 4, 15, 0, 0, 0, time.UTC))
		p, l := aliceIdle(t, s)
		at := now.Add(time.Hour)

		if _, err := s.ScheduleMaintenance(ctx, l.ID, *now); db.ErrorCode(err) != db.Invalid {
			t.Errorf("maintenance now: err = %v, want Invalid", err)
		}
		if _, err := s.ScheduleMaintenance(ctx, l.ID+1000, at); !errors.Is(err, db.ErrNotFound) {
			t.Errorf("maintenance of no Linode: err = %v, want ErrNotFound", err)
		}
		e, err := s.ScheduleMaintenance(ctx, l.ID, at)
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.ScheduleMaintenance(ctx, l.ID, at.Add(time.Hour))
		mustReason(t, "maintenance twice", err, db.Invalid,
			fmt.Sprintf("maintenance of Linode %s is already scheduled", l.Label))
		_, err = s.ScheduleMaintenance(ctx, l.ID, now.Add(400*24*time.Hour))
		mustReason(t, "maintenance next year", err, db.Invalid, "the maintenance time must be within a year")
		want := fmt.Sprintf("Scheduled maintenance of Linode %s at 2026-12-04T16:00:00 UTC", l.Label)
		if got, err := s.GetEvent(ctx, p, e.ID); err != nil || got.NotBefore == nil ||
			*got.NotBefore != at.UnixMicro() {
			t.Fatalf("maintenance event's not_before = %v, %v; want %v", got.NotBefore, err, at.UnixMicro())
		}
		if e.Status != "scheduled" || e.Action != "linode_migrate" || e.Username != nil ||
			str(e.Message) != want || *e.EntityID != l.ID {
			t.Fatalf("maintenance event = %+v, message %q", e, str(e.Message))
		}

		// Before its time it holds nothing up: the Linode takes other actions.
		if _, _, err := s.Act(ctx, p, l.ID, db.Action{Name: "linode_shutdown"}); err != nil {
			t.Fatalf("shutdown with maintenance scheduled: %v", err)
		}
		if n := drain(t, s); n != 1 {
			t.Fatalf("ran %d jobs before the maintenance time, want 1 (the shutdown)", n)
		}
		if got, _ := s.GetEvent(ctx, p, e.ID); got.Status != "scheduled" {
			t.Fatalf("maintenance event before its time = %q, want scheduled", got.Status)
		}

		// At its time it runs, and the Linode is busy while it does.
		*now = at
		j, err := s.ClaimJob(ctx, "test", time.Minute)
		if err != nil || j == nil || j.EventID != e.ID {
			t.Fatalf("claim at the maintenance time = %+v, %v", j, err)
		}
		if err := s.StartJob(ctx, j); err != nil {
			t.Fatal(err)
		}
		_, _, err = s.Act(ctx, p, l.ID, db.Action{Name: "linode_reboot"})
		if !errors.Is(err, db.ErrBusy) {
			t.Fatalf("reboot during maintenance: err = %v, want ErrBusy", err)
		}
		if during, _ := s.GetLinode(ctx, p, l.ID); during.Status != "migrating" {
			t.Errorf("Linode during maintenance = %q, want migrating", during.Status)
		}
		if err := s.FinishJob(ctx, j, db.Succeeded, ""); err != nil {
			t.Fatal(err)
		}
		got, _ := s.GetEvent(ctx, p, e.ID)
		after, _ := s.GetLinode(ctx, p, l.ID)
		if got.Status != "finished" || after.Status != "offline" || after.JobsPending != 0 ||
			after.HostUUID == l.HostUUID {
			t.Fatalf("after maintenance: event %q, Linode %q with %d jobs on host %s (was %s)",
				got.Status, after.Status, after.JobsPending, after.HostUUID, l.HostUUID)
		}
	})
}

func TestMaintenanceWaitsForRunningJob(t *testing.T) {
	eachStore(t, func(t *testing.T, s *db.Store) {
		ctx := context.Background()
		now := clockAt(s, time.Date(2026, 12, 4, 15, 0, 0, 0, time.UTC))
		p, l := aliceIdle(t, s)
		e, err := s.ScheduleMaintenance(ctx, l.ID, now.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Act(ctx, p, l.ID, db.Action{Name: "linode_shutdown"}); err != nil {
			t.Fatal(err)
		}
		shutdown, err := s.ClaimJob(ctx, "test", 3*time.Hour)
		if err != nil || shutdown == nil || shutdown.Action != "linode_shutdown" {
			t.Fatalf("claim = %+v, %v; want the shutdown", shutdown, err)
		}

		*now = now.Add(time.Hour)
		if j, err := s.ClaimJob(ctx, "test", time.Minute); err != nil || j != nil {
			t.Fatalf("claim while the shutdown runs = %+v, %v; want nothing", j, err)
		}
		if err := s.StartJob(ctx, shutdown); err != nil {
			t.Fatal(err)
		}
		if err := s.FinishJob(ctx, shutdown, db.Succeeded, ""); err != nil {
			t.Fatal(err)
		}
		j, err := s.ClaimJob(ctx, "test", time.Minute)
		if err != nil || j == nil || j.EventID != e.ID {
			t.Fatalf("claim after the shutdown = %+v, %v; want the maintenance", j, err)
		}
	})
}

func TestDeleteCancelsMaintenance(t *testing.T) {
	eachStore(t, func(t *testing.T, s *db.Store) {
		ctx := context.Background()
		now := clockAt(s, time.Date(2026, 12, 4, 15, 0, 0, 0, time.UTC))
		p, l := aliceIdle(t, s)
		e, err := s.ScheduleMaintenance(ctx, l.ID, now.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Act(ctx, p, l.ID, db.Action{Name: "linode_delete"}); err != nil {
			t.Fatal(err)
		}
		if n := drain(t, s); n != 1 {
			t.Fatalf("ran %d jobs, want 1 (the delete)", n)
		}
		want := *e.Message + ": the Linode was deleted"
		if got, _ := s.GetEvent(ctx, p, e.ID); got.Status != "failed" || str(got.Message) != want {
			t.Errorf("maintenance of a deleted Linode = %q, %q; want failed, %q", got.Status, str(got.Message), want)
		}
		*now = now.Add(2 * time.Hour)
		if n := drain(t, s); n != 0 {
			t.Errorf("ran %d jobs after the maintenance time, want none", n)
		}
	})
}

// TestMaintenanceLeavesStatusAsItWas: a running Linode is migrating while
// its maintenance runs and running again after it, whether the move
// succeeded or failed, also when another process takes the job over.
func TestMaintenanceLeavesStatusAsItWas(t *testing.T) {
	for _, out := range []db.Outcome{db.Succeeded, db.Failed} {
		eachStore(t, func(t *testing.T, s *db.Store) {
			ctx := context.Background()
			now := clockAt(s, time.Date(2026, 12, 4, 15, 0, 0, 0, time.UTC))
			p, l := aliceIdle(t, s)
			if l, _ := s.GetLinode(ctx, p, l.ID); l.Status != "running" {
				t.Fatalf("Linode before maintenance = %q, want running", l.Status)
			}
			if _, err := s.ScheduleMaintenance(ctx, l.ID, now.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			*now = now.Add(time.Minute)
			j, err := s.ClaimJob(ctx, "dies", time.Minute)
			if err != nil || j == nil {
				t.Fatalf("claim: %+v, %v", j, err)
			}
			if err := s.StartJob(ctx, j); err != nil {
				t.Fatal(err)
			}
			*now = now.Add(2 * time.Minute) // the first owner's lease runs out
			j, err = s.ClaimJob(ctx, "takes over", time.Minute)
			if err != nil || j == nil {
				t.Fatalf("claim after the lease: %+v, %v", j, err)
			}
			if err := s.StartJob(ctx, j); err != nil {
				t.Fatal(err)
			}
			if during, _ := s.GetLinode(ctx, p, l.ID); during.Status != "migrating" {
				t.Errorf("Linode during maintenance = %q, want migrating", during.Status)
			}
			if err := s.FinishJob(ctx, j, out, "the new host is full"); err != nil {
				t.Fatal(err)
			}
			e, _ := s.GetEvent(ctx, p, j.EventID)
			want := fmt.Sprintf("Scheduled maintenance of Linode %s at 2026-12-04T15:01:00 UTC", l.Label)
			if out == db.Failed {
				want += ": the new host is full"
			}
			if str(e.Message) != want {
				t.Errorf("maintenance event's message (outcome %v) = %q, want %q", out, str(e.Message), want)
			}
			if after, _ := s.GetLinode(ctx, p, l.ID); after.Status != "running" || after.JobsPending != 0 {
				t.Errorf("Linode after maintenance (outcome %v) = %q with %d jobs, want running and idle",
					out, after.Status, after.JobsPending)
			}
		})
	}
}
