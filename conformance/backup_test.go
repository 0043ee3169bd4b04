package conformance

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/linode/linodego"

	"apiv4/db/dbtest"
	"apiv4/gen"
)

// backupsPath is the path of a Linode's backups.
func backupsPath(id int) string { return fmt.Sprint("/linode/instances/", id, "/backups") }

// restoreBody asks for a restore onto a Linode.
func restoreBody(target int, overwrite bool) map[string]any {
	return map[string]any{"linode_id": target, "overwrite": overwrite}
}

// newLinodeIn creates a Linode of the image in a region, not booted, and
// waits until its job has ended.
func newLinodeIn(tb testing.TB, a *api, tg *target, region, image string) gen.Linode {
	tb.Helper()
	body := createBody(newLabel("bk"), false)
	body["region"], body["image"] = region, image
	var l gen.Linode
	a.in(tb).must(http.StatusOK, "POST", "/linode/instances", body).decode(tb, &l)
	deleteAtCleanup(tb, tg, l.Id)
	return waitIdle(tb, a, l.Id)
}

// TestBackups takes a snapshot of a Linode and restores it onto another
// with linodego, and checks every refusal on the way leaves everything as
// it was.
func TestBackups(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg *target) {
		c, _ := tg.linodego(t, tg.owner)
		a := tg.api(t, tg.owner)
		ctx := context.Background()
		src := newIdleLinode(t, a, tg, true)
		dst := newLinodeIn(t, a, tg, "us-east", "linode/ubuntu24.04")
		abroad := newLinodeIn(t, a, tg, "eu-west", "linode/debian12")

		_, err := c.CreateInstanceSnapshot(ctx, src.Id, "too-early")
		wantAPIError(t, err, http.StatusBadRequest, "Backups are not enabled for this Linode.")
		if err := c.EnableInstanceBackups(ctx, src.Id); err != nil {
			t.Fatalf("EnableInstanceBackups: %v", err)
		}
		inst, err := c.GetInstance(ctx, src.Id)
		if err != nil || !inst.Backups.Enabled || inst.Backups.LastSuccessful != nil {
			t.Fatalf("GetInstance after enabling: got %+v, %v", inst.Backups, err)
		}
		evs := linodeEvents(t, a, src.Id, map[string]any{"action": "backups_enable"})
		if len(evs) != 1 || evs[0].Status != "notification" {
			t.Errorf("got backups_enable events %+v, want one notification", evs)
		}

		// A snapshot being taken cannot be restored. Restoring it abroad
		// is refused either way, so a snapshot that ends first changes
		// nothing and the check starts again.
		var snap *linodego.InstanceSnapshot
		since := time.Now().Add(-clockSkew)
		for try := 1; ; try++ {
			snap, err = c.CreateInstanceSnapshot(ctx, src.Id, "before-upgrade")
			if err != nil {
				t.Fatalf("CreateInstanceSnapshot: %v", err)
			}
			if snap.Status != linodego.SnapshotPending || snap.Available || snap.Label != "before-upgrade" {
				t.Errorf("got snapshot %+v, want a pending one, not available", snap)
			}
			r := a.do("POST", fmt.Sprint(backupsPath(src.Id), "/", snap.ID, "/restore"),
				restoreBody(abroad.Id, true))
			if r.Status == http.StatusBadRequest && r.errs(t)[0].Field == "" {
				r.wantError(t, http.StatusBadRequest, "Backup is not available: it is still being taken.", "")
				break
			}
			if try == attempts {
				t.Fatalf("the snapshot ended before its restore could be refused %d times", attempts)
			}
			waitIdle(t, a, src.Id)
		}
		waitForEventFinished(t, c, src.Id, linodego.ActionLinodeSnapshot, since)

		backups, err := c.GetInstanceBackups(ctx, src.Id)
		if err != nil {
			t.Fatalf("GetInstanceBackups: %v", err)
		}
		cur := backups.Snapshot.Current
		if cur == nil || cur.ID != snap.ID || cur.Status != linodego.SnapshotSuccessful ||
			!cur.Available || cur.Finished == nil || len(cur.Disks) != 2 ||
			backups.Snapshot.InProgress != nil || len(backups.Automatic) != 0 {
			t.Fatalf("got backups %+v with current %+v, want snapshot %d successful", backups, cur, snap.ID)
		}
		got, err := c.GetInstanceSnapshot(ctx, src.Id, snap.ID)
		if err != nil || got.ID != snap.ID || !got.Available || got.Label != "before-upgrade" {
			t.Errorf("GetInstanceSnapshot: got %+v, %v", got, err)
		}
		if inst, err = c.GetInstance(ctx, src.Id); err != nil || inst.Backups.LastSuccessful == nil ||
			!inst.Backups.Available {
			t.Errorf("GetInstance after the snapshot: got %+v, %v; want last_successful set",
				inst.Backups, err)
		}

		// Refusals of an available backup change nothing either.
		restore := fmt.Sprint(backupsPath(src.Id), "/", snap.ID, "/restore")
		refusals := []struct {
			name          string
			body          map[string]any
			reason, field string
		}{
			{"another region", restoreBody(abroad.Id, true),
				"A backup can only be restored to a Linode in its own region.", "linode_id"},
			{"no room without overwrite", restoreBody(dst.Id, false),
				"The target Linode has no room for this backup; restore with overwrite.", "overwrite"},
			{"no such target", restoreBody(unknownID, true), "linode_id is not valid", "linode_id"},
		}
		for _, tt := range refusals {
			a.do("POST", restore, tt.body).wantError(t, http.StatusBadRequest, tt.reason, tt.field)
		}
		unchanged(t, a, dst)
		unchanged(t, a, abroad)

		since = time.Now().Add(-clockSkew)
		err = c.RestoreInstanceBackup(ctx, src.Id, snap.ID,
			linodego.RestoreInstanceOptions{LinodeID: dst.Id, Overwrite: true})
		if err != nil {
			t.Fatalf("RestoreInstanceBackup: %v", err)
		}
		// The target runs the backup's image from the moment the restore is
		// accepted, and is restoring until the job ends (which may be before
		// this GET on a slow machine: then it is offline again).
		var during gen.Linode
		a.must(http.StatusOK, "GET", fmt.Sprint("/linode/instances/", dst.Id), nil).decode(t, &during)
		if value(during.Image) != "linode/debian12" ||
			(during.Status != "restoring" && during.Status != "offline") {
			t.Errorf("right after the restore: got %s %s, want restoring linode/debian12",
				during.Status, value(during.Image))
		}
		ev := waitForEventFinished(t, c, dst.Id, linodego.ActionBackupsRestore, since)
		checkFinished(t, ev, "")
		if sec := ev.SecondaryEntity; sec == nil || sec.Type != "backups" || fmt.Sprint(sec.ID) !=
			fmt.Sprint(snap.ID) {
			t.Errorf("got secondary entity %+v, want backup %d", ev.SecondaryEntity, snap.ID)
		}
		restored, err := c.WaitForInstanceStatus(ctx, dst.Id, linodego.InstanceOffline,
			int(jobTimeout/time.Second))
		if err != nil || restored.Image != "linode/debian12" {
			t.Errorf("after the restore: got %+v, %v; want offline with linode/debian12", restored, err)
		}

		deployFromBackup(t, c, a, tg, snap.ID)

		if err := c.CancelInstanceBackups(ctx, src.Id); err != nil {
			t.Fatalf("CancelInstanceBackups: %v", err)
		}
		if _, err := c.GetInstanceSnapshot(ctx, src.Id, snap.ID); !linodego.IsNotFound(err) {
			t.Errorf("GetInstanceSnapshot after cancelling: got %v, want not found", err)
		}
		inst, err = c.GetInstance(ctx, src.Id)
		if err != nil || inst.Backups.Enabled || inst.Backups.LastSuccessful != nil {
			t.Errorf("GetInstance after cancelling: got %+v, %v", inst.Backups, err)
		}
		if evs := linodeEvents(t, a, src.Id, map[string]any{"action": "backups_cancel"}); len(evs) != 1 {
			t.Errorf("got %d backups_cancel events, want 1", len(evs))
		}
	})
}

// deployFromBackup creates Linodes from an available backup of the image
// linode/debian12 with linodego, after checking that each refusal creates
// nothing.
func deployFromBackup(t *testing.T, c *linodego.Client, a *api, tg *target, backupID int) {
	t.Helper()
	refusals := []struct {
		name          string
		opts          linodego.InstanceCreateOptions
		reason, field string
	}{
		{"image too", linodego.InstanceCreateOptions{Region: "us-east", BackupID: backupID,
			Image: "linode/debian12", RootPass: testPassword},
			"Provide an image or a backup_id, not both.", "backup_id"},
		{"another region", linodego.InstanceCreateOptions{Region: "eu-west", BackupID: backupID},
			"A backup can only be deployed in its own region.", "region"},
		{"no such backup", linodego.InstanceCreateOptions{Region: "us-east", BackupID: unknownID},
			"backup_id is not valid", "backup_id"},
	}
	for _, tt := range refusals {
		tt.opts.Type, tt.opts.Label = "g6-nanode-1", newLabel("nope")
		_, err := c.CreateInstance(context.Background(), tt.opts)
		// linodego puts the field before the reason.
		wantAPIError(t, err, http.StatusBadRequest, "["+tt.field+"] "+tt.reason)
		a.do("POST", "/linode/instances", tt.opts).wantError(t, http.StatusBadRequest, tt.reason, tt.field)
		notCreated(t, a, tt.opts.Label)
	}

	since := time.Now().Add(-clockSkew)
	l, err := c.CreateInstance(context.Background(), linodego.InstanceCreateOptions{
		Region: "us-east", Type: "g6-standard-1", Label: newLabel("fromsnap"), BackupID: backupID,
	})
	if err != nil {
		t.Fatalf("CreateInstance from backup %d: %v", backupID, err)
	}
	deleteAtCleanup(t, tg, l.ID)
	if l.Status != linodego.InstanceProvisioning || l.Image != "linode/debian12" {
		t.Errorf("got %s %s, want provisioning with the backup's image", l.Status, l.Image)
	}
	ev := waitForEventFinished(t, c, l.ID, linodego.ActionLinodeCreate, since)
	checkFinished(t, ev, "")
	if sec := ev.SecondaryEntity; sec == nil || sec.Type != "backups" || fmt.Sprint(sec.ID) != fmt.Sprint(backupID) {
		t.Errorf("got secondary entity %+v, want backup %d", ev.SecondaryEntity, backupID)
	}
	// Deployed with disks, it boots unless told not to.
	got, err := c.WaitForInstanceStatus(context.Background(), l.ID, linodego.InstanceRunning,
		int(jobTimeout/time.Second))
	if err != nil || got.Image != "linode/debian12" {
		t.Errorf("after the create: got %+v, %v; want running linode/debian12", got, err)
	}
}

// notCreated checks that no Linode of the owner has the label.
func notCreated(t *testing.T, a *api, label string) {
	t.Helper()
	var page gen.LinodePage
	a.must(http.StatusOK, "GET", "/linode/instances", nil, "X-Filter", filterJSON(t, map[string]any{"label": label})).
		decode(t, &page)
	if page.Results != 0 {
		t.Errorf("a refused create left %d Linodes labelled %s", page.Results, label)
	}
}

// unchanged checks that a Linode is as it was: same status and image, no
// job pending and no restore recorded.
func unchanged(t *testing.T, a *api, was gen.Linode) {
	t.Helper()
	var now gen.Linode
	a.must(http.StatusOK, "GET", fmt.Sprint("/linode/instances/", was.Id), nil).decode(t, &now)
	if now.Status != was.Status || value(now.Image) != value(was.Image) {
		t.Errorf("Linode %d: got %s %s, want %s %s as before", was.Id, now.Status, value(now.Image),
			was.Status, value(was.Image))
	}
	if evs := linodeEvents(t, a, was.Id, pendingFilter(was.Id)); len(evs) != 0 {
		t.Errorf("Linode %d has %d pending events, want none", was.Id, len(evs))
	}
	if evs := linodeEvents(t, a, was.Id, map[string]any{"action": "backups_restore"}); len(evs) != 0 {
		t.Errorf("Linode %d has %d backups_restore events, want none", was.Id, len(evs))
	}
}

// TestBackupsBusy checks that a snapshot is refused while a job runs, and
// that backups cannot be cancelled while a snapshot is being taken.
func TestBackupsBusy(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg *target) {
		t.Run("snapshot", func(t *testing.T) {
			a := tg.api(t, tg.owner)
			for try := 1; try <= attempts; try++ {
				l := newLinode(t, a, tg, false) // its create job runs
				a.must(http.StatusOK, "POST", backupsPath(l.Id)+"/enable", nil)
				r := a.do("POST", backupsPath(l.Id), map[string]any{"label": "busy"})
				if r.Status != http.StatusOK {
					r.wantError(t, http.StatusBadRequest, "Linode busy.", "")
					return
				}
			}
			t.Fatalf("the create job ended before the snapshot %d times", attempts)
		})
		t.Run("cancel", func(t *testing.T) {
			a := tg.api(t, tg.owner)
			for try := 1; try <= attempts; try++ {
				l := newIdleLinode(t, a, tg, false)
				a.must(http.StatusOK, "POST", backupsPath(l.Id)+"/enable", map[string]any{})
				a.must(http.StatusOK, "POST", backupsPath(l.Id), map[string]any{"label": "taking"})
				r := a.do("POST", backupsPath(l.Id)+"/cancel", nil)
				if r.Status != http.StatusOK {
					r.wantError(t, http.StatusBadRequest, "Linode busy.", "")
					return
				}
			}
			t.Fatalf("the snapshot ended before the cancel %d times", attempts)
		})
	})
}

// TestUnavailableBackups runs servers of their own whose simulation
// leaves every automatic backup under maintenance, or fails every job,
// and checks with linodego that such backups are listed, say they are
// not available, and are refused a restore that would change anything.
func TestUnavailableBackups(t *testing.T) {
	if !local() {
		t.Skip("needs servers of its own, with their own simulation settings")
	}
	cases := []struct {
		name, reason string
		flags        []string
		backup       func(t *testing.T, c *linodego.Client, id int) *linodego.InstanceSnapshot
	}{
		{"under maintenance", "Backup is not available: it is under maintenance.",
			[]string{"--backup-interval", "300ms", "--sim-backup-unavailable-rate", "1"},
			func(t *testing.T, c *linodego.Client, id int) *linodego.InstanceSnapshot {
				var auto *linodego.InstanceSnapshot
				eventually(t, "an automatic backup", func() (bool, string) {
					b, err := c.GetInstanceBackups(context.Background(), id)
					if err != nil {
						return false, err.Error()
					}
					for _, s := range b.Automatic {
						if s.Status == linodego.SnapshotSuccessful {
							auto = s
							return true, ""
						}
					}
					return false, fmt.Sprintf("%d automatic backups, none taken", len(b.Automatic))
				})
				if auto.Type != "auto" || auto.Label != "" || auto.Available {
					t.Errorf("got automatic backup %+v, want one not available", auto)
				}
				return auto
			}},
		{"failed", "Backup is not available: it failed.", []string{"--sim-fail-rate", "1"},
			func(t *testing.T, c *linodego.Client, id int) *linodego.InstanceSnapshot {
				snap, err := c.CreateInstanceSnapshot(context.Background(), id, "doomed")
				if err != nil {
					t.Fatalf("CreateInstanceSnapshot: %v", err)
				}
				var got *linodego.InstanceSnapshot
				eventually(t, "the snapshot to fail", func() (bool, string) {
					got, err = c.GetInstanceSnapshot(context.Background(), id, snap.ID)
					if err != nil {
						return false, err.Error()
					}
					return got.Status == linodego.SnapshotFailed, string(got.Status)
				})
				if got.Available {
					t.Errorf("got failed snapshot %+v, want it not available", got)
				}
				return got
			}},
	}
	for _, tc := range cases {
		for kind, databaseURL := range map[string]string{
			"postgres": migrated(t, dbtest.PostgresURL(t)),
			"sqlite":   migrated(t, dbtest.SQLiteURL(t)),
		} {
			t.Run(tc.name+"/"+kind, func(t *testing.T) {
				tg := ownServer(t, databaseURL, tc.flags...)
				c, _ := tg.linodego(t, tg.owner)
				a := tg.api(t, tg.owner)
				ctx := context.Background()
				var src, dst gen.Linode
				a.must(http.StatusOK, "POST", "/linode/instances",
					createBody(newLabel("src"), true)).decode(t, &src)
				a.must(http.StatusOK, "POST", "/linode/instances",
					createBody(newLabel("dst"), false)).decode(t, &dst)
				waitIdle(t, a, src.Id)
				dst = waitIdle(t, a, dst.Id)
				if err := c.EnableInstanceBackups(ctx, src.Id); err != nil {
					t.Fatalf("EnableInstanceBackups: %v", err)
				}
				b := tc.backup(t, c, src.Id)

				err := c.RestoreInstanceBackup(ctx, src.Id, b.ID,
					linodego.RestoreInstanceOptions{LinodeID: dst.Id, Overwrite: true})
				wantAPIError(t, err, http.StatusBadRequest, tc.reason)
				unchanged(t, a, dst)
				label := newLabel("nope")
				_, err = c.CreateInstance(ctx, linodego.InstanceCreateOptions{Region: "us-east",
					Type: "g6-nanode-1", Label: label, BackupID: b.ID})
				wantAPIError(t, err, http.StatusBadRequest, tc.reason)
				notCreated(t, a, label)
			})
		}
	}
}

// ownServer starts a server with extra flags on a fresh database, stopped
// when the test ends, and returns it as a target whose owner has every
// scope.
func ownServer(t *testing.T, databaseURL string, flags ...string) *target {
	t.Helper()
	token, err := createToken(databaseURL, "alice", "acme", "*")
	if err != nil {
		t.Fatal(err)
	}
	s := serveFor(t, databaseURL, flags...)
	return &target{name: "own", url: "http://" + s.addr, owner: token}
}
