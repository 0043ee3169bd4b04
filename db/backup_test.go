package db_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"apiv4/db"
	"apiv4/db/dbtest"
)

// clock is a test clock that moves only when told to.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock(s *db.Store) *clock {
	c := &clock{now: time.Date(2026, 12, 4, 15, 0, 0, 0, time.UTC)}
	s.SetClock(c.Now)
	return c
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// countEvents returns how many events of the account have the action.
func countEvents(tb testing.TB, s *db.Store, p *db.Principal, action string) int {
	tb.Helper()
	page, err := s.ListEvents(context.Background(), p, db.ListQuery{
		Page: 1, PageSize: 100, Filter: fmt.Sprintf(`{"action": %q}`, action)})
	if err != nil {
		tb.Fatal(err)
	}
	return page.Results
}

// mustReason fails unless err is an *db.Error with the code and reason.
func mustReason(tb testing.TB, what string, err error, code db.Code, reason string) {
	tb.Helper()
	var e *db.Error
	if !errors.As(err, &e) || e.Code != code || e.Reason != reason {
		tb.Fatalf("%s: err = %v, want %s %q", what, err, code, reason)
	}
}

// enabled returns an idle Linode with backups enabled.
func enabled(tb testing.TB, s *db.Store, p *db.Principal) *db.Linode {
	tb.Helper()
	l := mustLinode(tb, s, p)
	drain(tb, s)
	if err := s.EnableBackups(context.Background(), p, l.ID); err != nil {
		tb.Fatal(err)
	}
	return l
}

func TestEnableAndCancelBackups(t *testing.T) {
	eachStore(t, func(t *testing.T, s *db.Store) {
		ctx := context.Background()
		p, l := aliceIdle(t, s)

		_, err := s.TakeSnapshot(ctx, p, l.ID, "first")
		mustReason(t, "snapshot without backups", err, db.Invalid, "Backups are not enabled for this Linode.")
		if err := s.CancelBackups(ctx, p, l.ID); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := s.EnableBackups(ctx, p, l.ID); err != nil {
				t.Fatal(err)
			}
		}
		got, _ := s.GetLinode(ctx, p, l.ID)
		if !got.BackupsEnabled || *got.BackupDay != "Scheduling" || *got.BackupWindow != "Scheduling" {
			t.Fatalf("after enable: enabled %t, day %v, window %v",
				got.BackupsEnabled, got.BackupDay, got.BackupWindow)
		}
		if n := countEvents(t, s, p, "backups_enable"); n != 1 {
			t.Errorf("%d backups_enable events, want 1 (enabling twice changes nothing)", n)
		}

		b, err := s.TakeSnapshot(ctx, p, l.ID, "first")
		if err != nil {
			t.Fatal(err)
		}
		// A backup being taken keeps backups from being cancelled.
		if err := s.CancelBackups(ctx, p, l.ID); !errors.Is(err, db.ErrBusy) {
			t.Fatalf("cancel while taking a snapshot: err = %v, want ErrBusy", err)
		}
		drain(t, s)
		if err := s.CancelBackups(ctx, p, l.ID); err != nil {
			t.Fatal(err)
		}
		got, _ = s.GetLinode(ctx, p, l.ID)
		if got.BackupsEnabled || got.BackupsAvailable || got.BackupsLastSuccessful != nil {
			t.Errorf("after cancel: %+v", got)
		}
		if _, err := s.GetBackup(ctx, p, l.ID, b.ID); !errors.Is(err, db.ErrNotFound) {
			t.Errorf("snapshot after cancel: err = %v, want ErrNotFound", err)
		}
		if n := countEvents(t, s, p, "backups_cancel"); n != 1 {
			t.Errorf("%d backups_cancel events, want 1", n)
		}
		other := mustPrincipal(t, s, "other", "bob")
		if err := s.EnableBackups(ctx, other, l.ID); !errors.Is(err, db.ErrNotFound) {
			t.Errorf("enable by another account: err = %v", err)
		}
	})
}

func TestSnapshot(t *testing.T) {
	eachStore(t, func(t *testing.T, s *db.Store) {
		ctx := context.Background()
		p := mustPrincipal(t, s, "acme", "alice")
		l := enabled(t, s, p)

		first, err := s.TakeSnapshot(ctx, p, l.ID, "first")
		if err != nil {
			t.Fatal(err)
		}
		if first.Status != "pending" || first.Available() || *first.Label != "first" ||
			first.Type != "snapshot" || first.Region != "us-east" || *first.Image != "linode/debian12" {
			t.Fatalf("new snapshot = %+v", first)
		}
		if _, err := s.TakeSnapshot(ctx, p, l.ID, "again"); !errors.Is(err, db.ErrBusy) {
			t.Fatalf("second snapshot while taking one: err = %v, want ErrBusy", err)
		}
		list, err := s.ListBackups(ctx, p, l.ID)
		if err != nil || list.InProgress == nil || list.InProgress.ID != first.ID || list.Current != nil {
			t.Fatalf("list while taking = %+v, %v", list, err)
		}
		if n := countEvents(t, s, p, "linode_snapshot"); n != 1 {
			t.Fatalf("%d linode_snapshot events, want 1", n)
		}

		drain(t, s)
		got, _ := s.GetBackup(ctx, p, l.ID, first.ID)
		if got.Status != "successful" || !got.Available() || got.Finished == nil {
			t.Fatalf("snapshot after its job = %+v", got)
		}
		linode, _ := s.GetLinode(ctx, p, l.ID)
		if !linode.BackupsAvailable || linode.BackupsLastSuccessful == nil ||
			*linode.BackupsLastSuccessful != *got.Finished || linode.Status != "running" {
			t.Fatalf("linode after snapshot = %+v", linode)
		}

		// A new snapshot replaces the old one when it ends, even failed.
		second, err := s.TakeSnapshot(ctx, p, l.ID, "second")
		if err != nil {
			t.Fatal(err)
		}
		list, _ = s.ListBackups(ctx, p, l.ID)
		if list.Current == nil || list.Current.ID != first.ID || list.InProgress.ID != second.ID {
			t.Fatalf("list while taking the second = %+v", list)
		}
		runJobs(t, s, func(*db.Job) db.Outcome { return db.Failed })
		list, _ = s.ListBackups(ctx, p, l.ID)
		if list.Current == nil || list.Current.ID != second.ID || list.Current.Status != "failed" ||
			list.InProgress != nil || len(list.Automatic) != 0 {
			t.Fatalf("list after the second failed = %+v", list)
		}
		if _, err := s.GetBackup(ctx, p, l.ID, first.ID); !errors.Is(err, db.ErrNotFound) {
			t.Errorf("replaced snapshot: err = %v, want ErrNotFound", err)
		}
		linode, _ = s.GetLinode(ctx, p, l.ID)
		if linode.BackupsAvailable || linode.BackupsLastSuccessful != nil {
			t.Errorf("linode with only a failed snapshot: available %t, last %v",
				linode.BackupsAvailable, linode.BackupsLastSuccessful)
		}
	})
}

func TestRestore(t *testing.T) {
	eachStore(t, func(t *testing.T, s *db.Store) {
		ctx := context.Background()
		p := mustPrincipal(t, s, "acme", "alice")
		src := enabled(t, s, p)
		target := mustLinode(t, s, p)
		drain(t, s)
		taking, err := s.TakeSnapshot(ctx, p, src.ID, "snap")
		if err != nil {
			t.Fatal(err)
		}
		onto := func(id int64) db.Restore { return db.Restore{TargetID: id, Overwrite: true} }

		// Every refusal leaves everything as it was: no event, no job.
		refusals := func() int {
			return countEvents(t, s, p, "backups_restore")
		}
		err = s.RestoreBackup(ctx, p, src.ID, taking.ID, onto(target.ID))
		mustReason(t, "restore while taken", err, db.Invalid, "Backup is not available: it is still being taken.")
		drain(t, s)

		euro, err := s.CreateLinode(ctx, p, db.NewLinode{Region: "eu-west", Type: "g6-nanode-1"})
		if err != nil {
			t.Fatal(err)
		}
		drain(t, s)
		other := mustPrincipal(t, s, "other", "bob")
		foreign := mustLinode(t, s, other)
		noRoom := db.Errorf(db.Invalid, "overwrite", "no room")
		tests := []struct {
			name   string
			p      *db.Principal
			linode int64
			backup int64
			r      db.Restore
			code   db.Code
			field  string
		}{
			{"unknown backup", p, src.ID, taking.ID + 100, onto(target.ID), db.NotFound, ""},
			{"backup of another Linode", p, target.ID, taking.ID, onto(target.ID), db.NotFound, ""},
			{"another account", other, src.ID, taking.ID, onto(foreign.ID), db.NotFound, ""},
			{"no such target", p, src.ID, taking.ID, onto(target.ID + 1000), db.Invalid, "linode_id"},
			{"another account's target", p, src.ID, taking.ID, onto(foreign.ID), db.Invalid, "linode_id"},
			{"another region", p, src.ID, taking.ID, onto(euro.ID), db.Invalid, "linode_id"},
			{"does not fit", p, src.ID, taking.ID, db.Restore{TargetID: target.ID,
				Fits: func(*db.Backup, *db.Linode) error { return noRoom }}, db.Invalid, "overwrite"},
		}
		for _, tt := range tests {
			err := s.RestoreBackup(ctx, tt.p, tt.linode, tt.backup, tt.r)
			var e *db.Error
			errors.As(err, &e)
			if db.ErrorCode(err) != tt.code || (e != nil && e.Field != tt.field) {
				t.Errorf("%s: err = %v, want %s on %q", tt.name, err, tt.code, tt.field)
			}
		}

		if _, _, err := s.Act(ctx, p, target.ID, db.Action{Name: "linode_shutdown"}); err != nil {
			t.Fatal(err)
		}
		err = s.RestoreBackup(ctx, p, src.ID, taking.ID, onto(target.ID))
		if !errors.Is(err, db.ErrBusy) {
			t.Fatalf("restore onto a busy Linode: err = %v, want ErrBusy", err)
		}
		drain(t, s)
		if n := refusals(); n != 0 {
			t.Fatalf("%d backups_restore events after refusals, want 0", n)
		}

		if err := s.RestoreBackup(ctx, p, src.ID, taking.ID, onto(target.ID)); err != nil {
			t.Fatal(err)
		}
		got, _ := s.GetLinode(ctx, p, target.ID)
		if got.Status != "restoring" || got.JobsPending != 1 {
			t.Fatalf("target after restore = %s with %d jobs", got.Status, got.JobsPending)
		}
		page, _ := s.ListEvents(ctx, p, db.ListQuery{Page: 1, PageSize: 25, Filter: `{"action": "backups_restore"}`})
		e := page.Events[0]
		sec := e.Secondary()
		if *e.EntityID != target.ID || sec == nil || sec.Type != "backups" || sec.ID != taking.ID ||
			sec.URL != fmt.Sprintf("/v4/linode/instances/%d/backups/%d", src.ID, taking.ID) {
			t.Errorf("restore event = %+v, secondary %+v", e, sec)
		}
		drain(t, s)
		if got, _ = s.GetLinode(ctx, p, target.ID); got.Status != "offline" {
			t.Errorf("target after the restore job = %s, want offline", got.Status)
		}
	})
}

func TestAutomaticBackups(t *testing.T) {
	eachStore(t, func(t *testing.T, s *db.Store) {
		ctx := context.Background()
		cfg := db.DefaultConfig()
		cfg.BackupInterval = time.Hour
		if err := s.SetConfig(cfg); err != nil {
			t.Fatal(err)
		}
		c := newClock(s)
		p := mustPrincipal(t, s, "acme", "alice")
		l := enabled(t, s, p)
		idle := mustLinode(t, s, p) // backups off: never backed up
		drain(t, s)

		queue := func(want int) {
			t.Helper()
			if n, err := s.QueueBackups(ctx, 10); err != nil || n != want {
				t.Fatalf("QueueBackups = %d, %v; want %d", n, err, want)
			}
		}
		queue(0) // not due yet
		c.Add(time.Hour)
		queue(1)
		queue(0) // started already
		if got, _ := s.GetLinode(ctx, p, l.ID); got.JobsPending != 1 {
			t.Fatalf("linode taking a backup has %d jobs, want 1", got.JobsPending)
		}
		if _, _, err := s.Act(ctx, p, l.ID, db.Action{Name: "linode_shutdown"}); !errors.Is(err, db.ErrBusy) {
			t.Fatalf("shutdown while backing up: err = %v, want ErrBusy", err)
		}
		runJobs(t, s, func(*db.Job) db.Outcome { return db.UnderMaintenance })
		list, _ := s.ListBackups(ctx, p, l.ID)
		if len(list.Automatic) != 1 {
			t.Fatalf("automatic backups = %d, want 1", len(list.Automatic))
		}
		b := list.Automatic[0]
		if b.Type != "auto" || b.Label != nil || b.Status != "successful" || b.Available() {
			t.Fatalf("backup under maintenance = %+v", b)
		}
		err := s.RestoreBackup(ctx, p, l.ID, b.ID, db.Restore{TargetID: l.ID, Overwrite: true})
		mustReason(t, "restore under maintenance", err, db.Invalid, "Backup is not available: it is under maintenance.")

		// A Linode busy when its backup is due gets it once it is free.
		c.Add(time.Hour)
		if _, _, err := s.Act(ctx, p, l.ID, db.Action{Name: "linode_reboot"}); err != nil {
			t.Fatal(err)
		}
		queue(0)
		drain(t, s)
		queue(1)
		runJobs(t, s, func(*db.Job) db.Outcome { return db.Failed })
		list, _ = s.ListBackups(ctx, p, l.ID)
		err = s.RestoreBackup(ctx, p, l.ID, list.Automatic[0].ID, db.Restore{TargetID: l.ID, Overwrite: true})
		mustReason(t, "restore of a failed backup", err, db.Invalid, "Backup is not available: it failed.")

		for range 3 {
			c.Add(time.Hour)
			queue(1)
			drain(t, s)
		}
		list, _ = s.ListBackups(ctx, p, l.ID)
		if len(list.Automatic) != 3 {
			t.Fatalf("kept %d automatic backups, want 3", len(list.Automatic))
		}
		for i, b := range list.Automatic {
			if !b.Available() || (i > 0 && b.ID > list.Automatic[i-1].ID) {
				t.Errorf("backup %d = %+v; want available, newest first", i, b)
			}
		}
		got, _ := s.GetLinode(ctx, p, l.ID)
		if !got.BackupsAvailable || *got.BackupsLastSuccessful != c.Now().UnixMicro() {
			t.Errorf("linode backups: available %t, last %v", got.BackupsAvailable, got.BackupsLastSuccessful)
		}
		if list, _ := s.ListBackups(ctx, p, idle.ID); len(list.Automatic) != 0 {
			t.Errorf("a Linode without backups got %d", len(list.Automatic))
		}
		if n := countEvents(t, s, p, "linode_snapshot"); n != 0 {
			t.Errorf("automatic backups wrote %d snapshot events", n)
		}
	})
}

// TestAutomaticBackupsOnce queues due backups from several stores at once,
// as processes sharing a PostgreSQL database do: each starts once.
func TestAutomaticBackupsOnce(t *testing.T) {
	url := dbtest.PostgresURL(t)
	ctx := context.Background()
	var stores []*db.Store
	for range 4 {
		s, err := db.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores = append(stores, s)
	}
	p := mustPrincipal(t, stores[0], "acme", "alice")
	for range 20 {
		enabled(t, stores[0], p)
	}
	var mu sync.Mutex
	total := 0
	var wg sync.WaitGroup
	for _, s := range stores {
		s.SetClock(func() time.Time { return time.Now().Add(25 * time.Hour) })
		wg.Go(func() {
			for range 10 {
				n, err := s.QueueBackups(ctx, 3)
				if err != nil {
					t.Errorf("queue: %v", err)
					return
				}
				mu.Lock()
				total += n
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if total != 20 {
		t.Errorf("queued %d backups, want 20: one per Linode", total)
	}
}

// TestBackupSchedule checks that daily automatic backups start at the
// Linode's window: the first one day after enabling while the window is
// being chosen, which then chooses it, and the window the user sets after.
func TestBackupSchedule(t *testing.T) {
	eachStore(t, func(t *testing.T, s *db.Store) {
		ctx := context.Background()
		c := newClock(s) // Friday 2026-12-04 15:00 UTC; backups daily by default
		p := mustPrincipal(t, s, "acme", "alice")
		l := enabled(t, s, p)
		check := func(day, window string, next time.Time) {
			t.Helper()
			got, err := s.GetLinode(ctx, p, l.ID)
			if err != nil {
				t.Fatal(err)
			}
			if *got.BackupDay != day || *got.BackupWindow != window || got.BackupsNext == nil ||
				*got.BackupsNext != next.UnixMicro() {
				t.Fatalf("schedule %s %s, next %v; want %s %s, next %v", *got.BackupDay,
					*got.BackupWindow, got.BackupsNext, day, window, next.UnixMicro())
			}
		}
		queue := func(want int) {
			t.Helper()
			if n, err := s.QueueBackups(ctx, 10); err != nil || n != want {
				t.Fatalf("QueueBackups = %d, %v; want %d", n, err, want)
			}
			runJobs(t, s, func(*db.Job) db.Outcome { return db.Succeeded })
		}
		at := func(day, hour, minute int) time.Time {
			return time.Date(2026, 12, day, hour, minute, 0, 0, time.UTC)
		}
		check("Scheduling", "Scheduling", at(5, 15, 0))

		c.Add(24*time.Hour - time.Minute)
		queue(0)
		c.Add(time.Minute)
		queue(1)
		check("Saturday", "W14", at(6, 14, 0))

		w2 := "W2"
		if _, err := s.UpdateLinode(ctx, p, l.ID, db.LinodeUpdate{BackupWindow: &w2}); err != nil {
			t.Fatal(err)
		}
		check("Saturday", "W2", at(6, 2, 0))
		c.Add(at(6, 1, 59).Sub(c.Now()))
		queue(0)
		c.Add(time.Minute)
		queue(1)
		check("Saturday", "W2", at(7, 2, 0))
		if list, _ := s.ListBackups(ctx, p, l.ID); len(list.Automatic) != 2 {
			t.Errorf("%d automatic backups, want 2", len(list.Automatic))
		}
	})
}

// TestBackupsInUse checks that a Linode's backups cannot be cancelled, nor
// the Linode deleted, while a restore or a create reads one of them.
func TestBackupsInUse(t *testing.T) {
	eachStore(t, func(t *testing.T, s *db.Store) {
		ctx := context.Background()
		p := mustPrincipal(t, s, "acme", "alice")
		src := enabled(t, s, p)
		snap, err := s.TakeSnapshot(ctx, p, src.ID, "golden")
		if err != nil {
			t.Fatal(err)
		}
		target := mustLinode(t, s, p)
		drain(t, s)
		const inUse = "A backup of this Linode is being restored or deployed; try again when that has ended."
		refused := func(what string) {
			t.Helper()
			mustReason(t, what+": cancel", s.CancelBackups(ctx, p, src.ID), db.Invalid, inUse)
			_, _, err := s.Act(ctx, p, src.ID, db.Action{Name: "linode_delete"})
			mustReason(t, what+": delete", err, db.Invalid, inUse)
			if got, _ := s.GetLinode(ctx, p, src.ID); !got.BackupsEnabled || got.JobsPending != 0 {
				t.Fatalf("%s: the source changed: %+v", what, got)
			}
		}

		err = s.RestoreBackup(ctx, p, src.ID, snap.ID, db.Restore{TargetID: target.ID, Overwrite: true})
		if err != nil {
			t.Fatal(err)
		}
		refused("while restoring")
		drain(t, s)

		_, err = s.CreateLinode(ctx, p, db.NewLinode{Region: "us-east", Type: "g6-nanode-1",
			FromBackup: &db.FromBackup{ID: snap.ID}})
		if err != nil {
			t.Fatal(err)
		}
		refused("while deploying")
		drain(t, s)

		if err := s.CancelBackups(ctx, p, src.ID); err != nil {
			t.Fatalf("cancel once nothing reads the backups: %v", err)
		}
	})
}
