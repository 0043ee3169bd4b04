package db

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/uptrace/bun"
)

// Backup is an automatic backup or a manual snapshot of a Linode. It
// records the Linode's plan and image when it was taken, which say what
// disks it holds.
type Backup struct {
	bun.BaseModel `bun:"table:backups,alias:b"`

	AccountID   int64   `bun:"account_id"`
	ID          int64   `bun:"id,pk,autoincrement"`
	LinodeID    int64   `bun:"linode_id"`
	Type        string  `bun:"type"` // auto or snapshot
	Label       *string `bun:"label"`
	Status      string  `bun:"status"` // pending, running, successful or failed
	Maintenance bool    `bun:"maintenance"`
	Region      string  `bun:"region"`
	LinodeType  string  `bun:"linode_type"`
	Image       *string `bun:"image"`
	Created     int64   `bun:"created"`
	Updated     int64   `bun:"updated"`
	Finished    *int64  `bun:"finished"`
}

// Available reports whether the backup can be restored now.
func (b *Backup) Available() bool { return b.Unavailable() == nil }

// Unavailable returns why the backup cannot be restored now, or nil.
func (b *Backup) Unavailable() error {
	why := ""
	switch {
	case b.Status == "pending" || b.Status == "running":
		why = "it is still being taken"
	case b.Status != "successful":
		why = "it failed"
	case b.Maintenance:
		why = "it is under maintenance"
	default:
		return nil
	}
	return Errorf(Invalid, "", "Backup is not available: %s.", why)
}

// ErrBackupsDisabled refuses a snapshot of a Linode without backups.
var ErrBackupsDisabled = &Error{Code: Invalid, Reason: "Backups are not enabled for this Linode."}

// AutoBackup is the action of the job that takes an automatic backup. It
// is no event action: automatic backups write no event.
const AutoBackup = "backup_auto"

// keepAutomatic is how many automatic backups of a Linode are kept.
const keepAutomatic = 3

// BackupList is what a Linode's backups look like to its owner.
type BackupList struct {
	Automatic  []Backup // newest first
	Current    *Backup  // the last snapshot taken, successful or not
	InProgress *Backup  // the snapshot being taken
}

// ListBackups returns the backups of one of the caller's Linodes, or
// ErrNotFound.
func (s *Store) ListBackups(ctx context.Context, p *Principal, linodeID int64) (
	*BackupList, error) {
	if _, err := s.GetLinode(ctx, p, linodeID); err != nil {
		return nil, err
	}
	var all []Backup
	err := s.db.NewSelect().Model(&all).
		Where("b.account_id = ? AND b.linode_id = ?", p.AccountID, linodeID).
		OrderExpr("b.id DESC").
		Scan(ctx)
	if err != nil {
		return nil, translate(err)
	}
	list := &BackupList{Automatic: []Backup{}}
	for i := range all {
		b := &all[i]
		switch {
		case b.Type == "auto":
			list.Automatic = append(list.Automatic, *b)
		case b.Status == "pending" || b.Status == "running":
			list.InProgress = b
		case list.Current == nil:
			list.Current = b
		}
	}
	return list, nil
}

// GetBackup returns one backup of one of the caller's Linodes, or
// ErrNotFound.
func (s *Store) GetBackup(ctx context.Context, p *Principal, linodeID, backupID int64) (
	*Backup, error) {
	if _, err := s.GetLinode(ctx, p, linodeID); err != nil {
		return nil, err
	}
	var b Backup
	err := s.db.NewSelect().Model(&b).
		Where("b.account_id = ? AND b.linode_id = ? AND b.id = ?", p.AccountID, linodeID, backupID).
		Scan(ctx)
	if err != nil {
		return nil, translate(err)
	}
	return &b, nil
}

// scheduling is the backup day and window of a Linode whose schedule the
// service has yet to choose.
const scheduling = "Scheduling"

// enableBackups enrols a Linode in the backup service, keeping the
// schedule it had, if any: its first automatic backup is due at
// nextBackup.
func (s *Store) enableBackups(l *Linode, now int64) {
	if l.BackupDay == nil {
		l.BackupDay = ptr(scheduling)
	}
	if l.BackupWindow == nil {
		l.BackupWindow = ptr(scheduling)
	}
	l.BackupsEnabled, l.BackupsNext = true, ptr(s.nextBackup(l, now))
}

// nextBackup returns when l's next automatic backup is due, after one
// taken (or backups enabled) at now. Backups are taken once per interval
// (a day by default) at the start of the Linode's window: window Wn is
// the two hours from n:00 UTC. A Linode whose window is still being
// chosen gets its first backup one interval away, and the time of that
// backup becomes its window and day (chooseSchedule). An interval under a
// day, which demos and tests use, ignores the window.
func (s *Store) nextBackup(l *Linode, now int64) int64 {
	interval := s.cfg.BackupInterval
	hour, ok := windowHour(l.BackupWindow)
	if !ok || interval < 24*time.Hour {
		return now + interval.Microseconds()
	}
	// The first window start after the interval, less a day: a daily
	// backup at 02:00 is next due at 02:00 the day after.
	t := time.UnixMicro(now).UTC().Add(interval - 24*time.Hour)
	start := time.Date(t.Year(), t.Month(), t.Day(), hour, 0, 0, 0, time.UTC)
	if !start.After(t) {
		start = start.AddDate(0, 0, 1)
	}
	return start.UnixMicro()
}

// windowHour is the UTC hour a backup window (W0, W2, … W22) starts at;
// false for Scheduling.
func windowHour(w *string) (int, bool) {
	if w == nil || !strings.HasPrefix(*w, "W") {
		return 0, false
	}
	n, err := strconv.Atoi((*w)[1:])
	if err != nil || n < 0 || n > 22 || n%2 != 0 {
		return 0, false
	}
	return n, true
}

// chooseSchedule gives a Linode whose schedule is still being chosen the
// day and window of now, the time of its first automatic backup.
func chooseSchedule(l *Linode, now int64) {
	t := time.UnixMicro(now).UTC()
	if l.BackupDay == nil || *l.BackupDay == scheduling {
		l.BackupDay = ptr(t.Weekday().String())
	}
	if l.BackupWindow == nil || *l.BackupWindow == scheduling {
		l.BackupWindow = ptr(fmt.Sprintf("W%d", t.Hour()-t.Hour()%2))
	}
}

// EnableBackups enrols one of the caller's Linodes in the backup service
// and writes a backups_enable notification. A Linode already enrolled is
// left as it is, with no event.
func (s *Store) EnableBackups(ctx context.Context, p *Principal, linodeID int64) error {
	return s.tx(ctx, func(tx bun.Tx) error {
		l, err := s.lockLinodes(ctx, tx, p, linodeID)
		if err != nil || l[0].BackupsEnabled {
			return err
		}
		now := micros(s.now())
		s.enableBackups(&l[0], now)
		l[0].Updated = now
		_, err = tx.NewUpdate().Model(&l[0]).
			Column("backups_enabled", "backups_next", "backup_day", "backup_window", "updated").
			Where("account_id = ? AND id = ?", p.AccountID, linodeID).Exec(ctx)
		if err != nil {
			return err
		}
		return insertEvent(ctx, tx, linodeEvent(p, &l[0], "backups_enable", "notification", nil, now))
	})
}

// CancelBackups takes one of the caller's Linodes out of the backup
// service, deletes all its backups and writes a backups_cancel
// notification. A Linode not enrolled is left as it is, with no event;
// one with a backup being taken is ErrBusy.
func (s *Store) CancelBackups(ctx context.Context, p *Principal, linodeID int64) error {
	return s.tx(ctx, func(tx bun.Tx) error {
		l, err := s.lockLinodes(ctx, tx, p, linodeID)
		if err != nil || !l[0].BackupsEnabled {
			return err
		}
		// The Linode's row is locked, so no backup can start until the end.
		taking, err := tx.NewSelect().Model((*Backup)(nil)).
			Where("b.account_id = ? AND b.linode_id = ?", p.AccountID, linodeID).
			Where("b.status IN ('pending', 'running')").
			Exists(ctx)
		if err != nil {
			return err
		}
		if taking {
			return ErrBusy
		}
		if err := backupsInUse(ctx, tx, p.AccountID, linodeID); err != nil {
			return err
		}

		_, err = tx.NewDelete().Model((*Backup)(nil)).
			Where("account_id = ? AND linode_id = ?", p.AccountID, linodeID).Exec(ctx)
		if err != nil {
			return err
		}
		now := micros(s.now())
		_, err = tx.NewUpdate().Model((*Linode)(nil)).
			Set("backups_enabled = ?, backups_available = ?", false, false).
			Set("backups_next = NULL, backups_last_successful = NULL, updated = ?", now).
			Where("account_id = ? AND id = ?", p.AccountID, linodeID).Exec(ctx)
		if err != nil {
			return err
		}
		return insertEvent(ctx, tx, linodeEvent(p, &l[0], "backups_cancel", "notification", nil, now))
	})
}

// TakeSnapshot starts a manual snapshot of one of the caller's Linodes:
// the snapshot (status pending), its linode_snapshot event and its job, in
// one transaction. A Linode without backups is ErrBackupsDisabled, a busy
// one ErrBusy.
func (s *Store) TakeSnapshot(ctx context.Context, p *Principal, linodeID int64, label string) (
	*Backup, error) {
	var b *Backup
	err := s.tx(ctx, func(tx bun.Tx) error {
		now := micros(s.now())
		a := Action{Name: "linode_snapshot", RequireBackups: true}
		l, err := s.claim(ctx, tx, p, linodeID, &a, now)
		if err != nil {
			return err
		}
		b = newBackup(l, "snapshot", &label, now)
		if _, err := tx.NewInsert().Model(b).Returning("id").Exec(ctx); err != nil {
			return err
		}
		_, err = enqueue(ctx, tx, p, l, a.Name, backupParams(b.ID), nil, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	return b, nil
}

func newBackup(l *Linode, typ string, label *string, now int64) *Backup {
	return &Backup{
		AccountID: l.AccountID, LinodeID: l.ID, Type: typ, Label: label, Status: "pending",
		Region: l.Region, LinodeType: l.Type, Image: l.Image, Created: now, Updated: now,
	}
}

func backupParams(id int64) string { return fmt.Sprintf(`{"backup_id":%d}`, id) }

// Restore says where a backup goes.
type Restore struct {
	TargetID  int64 // the Linode restored onto, in the caller's account
	Overwrite bool  // replace the target's disks rather than add beside them

	// Fits returns why the backup's disks do not fit on the target, or nil.
	// The store knows no plan sizes; the caller does.
	Fits func(b *Backup, target *Linode) error
}

// RestoreBackup starts restoring one of a Linode's backups onto a target
// Linode: the backups_restore event and the job on the target, which goes
// restoring. Nothing changes when it is refused: an unknown Linode or backup
// is ErrNotFound; a backup that is not available, a target that does not
// exist, is in another region or does not fit is Invalid; a busy target is
// ErrBusy.
func (s *Store) RestoreBackup(ctx context.Context, p *Principal, linodeID, backupID int64,
	r Restore) error {
	return s.tx(ctx, func(tx bun.Tx) error {
		// Both Linodes are locked, in id order, before the backup is read,
		// like every other path that touches backups.
		locked, err := s.lockLinodes(ctx, tx, p, linodeID, r.TargetID)
		if err != nil {
			return err
		}
		var target *Linode
		found := false
		for i := range locked {
			found = found || locked[i].ID == linodeID
			if locked[i].ID == r.TargetID {
				target = &locked[i]
			}
		}
		if !found {
			return ErrNotFound
		}
		var b Backup
		err = tx.NewSelect().Model(&b).
			Where("b.account_id = ? AND b.linode_id = ? AND b.id = ?", p.AccountID, linodeID, backupID).
			Scan(ctx)
		if err != nil {
			return err
		}

		if err := b.Unavailable(); err != nil {
			return err
		}
		if target == nil {
			return Errorf(Invalid, "linode_id", "linode_id is not valid")
		}
		if target.Region != b.Region {
			return Errorf(Invalid, "linode_id",
				"A backup can only be restored to a Linode in its own region.")
		}
		if r.Fits != nil {
			if err := r.Fits(&b, target); err != nil {
				return err
			}
		}

		now := micros(s.now())
		a := Action{
			Name: "backups_restore", Image: b.Image, ClearImage: b.Image == nil,
			Params: backupParams(b.ID), Secondary: backupEntity(&b),
		}
		l, err := s.claim(ctx, tx, p, target.ID, &a, now)
		if err != nil {
			return err
		}
		_, err = enqueue(ctx, tx, p, l, a.Name, a.Params, a.Secondary, now)
		return err
	})
}

// errBackupInUse refuses to delete backups that a job is restoring or
// deploying.
var errBackupInUse = Errorf(Invalid, "",
	"A backup of this Linode is being restored or deployed; try again when that has ended.")

// backupsInUse returns errBackupInUse when a pending restore, or a create
// from a backup, reads one of the Linode's backups. Callers hold the
// Linode's row lock, which those jobs' requests take too, so none can
// start meanwhile.
func backupsInUse(ctx context.Context, tx bun.Tx, accountID, linodeID int64) error {
	var ids []int64
	err := tx.NewSelect().Model((*Backup)(nil)).Column("id").
		Where("account_id = ? AND linode_id = ?", accountID, linodeID).Scan(ctx, &ids)
	if err != nil || len(ids) == 0 {
		return err
	}
	var params []string
	err = tx.NewSelect().Table("jobs").Column("params").
		Where("account_id = ? AND action IN ('linode_create', 'backups_restore')", accountID).
		Scan(ctx, &params)
	if err != nil {
		return err
	}
	for _, ps := range params {
		if slices.Contains(ids, (&Job{Params: ps}).BackupID()) {
			return errBackupInUse
		}
	}
	return nil
}

// backupEntity is a backup as the secondary entity of an event.
func backupEntity(b *Backup) *Entity {
	label := ""
	if b.Label != nil {
		label = *b.Label
	}
	return &Entity{ID: b.ID, Label: label, Type: "backups",
		URL: fmt.Sprintf("/v4/linode/instances/%d/backups/%d", b.LinodeID, b.ID)}
}

// deployable returns the backup a new Linode l is to be deployed from,
// with its Linode locked so that the backup stays while l is created. A
// backup the caller does not have is Invalid, like one that is not
// available, is in another region than l, or does not fit on l.
func (s *Store) deployable(ctx context.Context, tx bun.Tx, p *Principal, l *Linode,
	from *FromBackup) (*Backup, error) {
	invalid := Errorf(Invalid, "backup_id", "backup_id is not valid")
	var b Backup
	find := func() error {
		return tx.NewSelect().Model(&b).Where("b.account_id = ? AND b.id = ?", p.AccountID, from.ID).
			Scan(ctx)
	}
	if err := find(); err != nil {
		return nil, notFoundAs(err, invalid)
	}
	if _, err := s.lockLinodes(ctx, tx, p, b.LinodeID); err != nil {
		return nil, notFoundAs(err, invalid)
	}
	// Read again under the lock: the backup may have gone meanwhile.
	if err := find(); err != nil {
		return nil, notFoundAs(err, invalid)
	}
	if err := b.Unavailable(); err != nil {
		return nil, err
	}
	if b.Region != l.Region {
		return nil, Errorf(Invalid, "region", "A backup can only be deployed in its own region.")
	}
	if from.Fits != nil {
		if err := from.Fits(&b, l); err != nil {
			return nil, err
		}
	}
	return &b, nil
}

// notFoundAs returns instead for an error that means not found.
func notFoundAs(err, instead error) error {
	if errors.Is(translate(err), ErrNotFound) {
		return instead
	}
	return err
}

// lockLinodes locks the caller's Linodes with the given ids, in id order so
// that two transactions never wait for each other, and returns those that
// exist. It is ErrNotFound when none does.
func (s *Store) lockLinodes(ctx context.Context, tx bun.Tx, p *Principal, ids ...int64) (
	[]Linode, error) {
	var ls []Linode
	sel := tx.NewSelect().Model(&ls).
		Where("l.account_id = ? AND l.id IN (?) AND NOT l.deleted", p.AccountID, bun.In(ids)).
		OrderExpr("l.id")
	err := s.lockForUpdate(sel).Scan(ctx)
	if err != nil {
		return nil, err
	}
	if len(ls) == 0 {
		return nil, ErrNotFound
	}
	return ls, nil
}

// QueueBackups starts the automatic backups that are due, at most max of
// them, and returns how many it started. Each is a job on its Linode, with
// no event, and makes it busy like any job. A Linode that is busy when its
// backup is due gets it at a later call, once it is free. Processes sharing
// a database may call it at once: each due backup starts once.
func (s *Store) QueueBackups(ctx context.Context, max int) (int, error) {
	n := 0
	err := s.tx(ctx, func(tx bun.Tx) error {
		now := micros(s.now())
		var due []Linode
		q := tx.NewSelect().Model(&due).Column("l.account_id", "l.id").
			Where("l.backups_enabled AND NOT l.deleted AND l.backups_next <= ?", now).
			Where("l.jobs_pending = 0").
			OrderExpr("l.backups_next").
			Limit(int64(max))
		if s.IsPostgres() {
			q.For("UPDATE SKIP LOCKED")
		}
		if err := q.Scan(ctx); err != nil {
			return err
		}

		for _, d := range due {
			owner := &Principal{AccountID: d.AccountID}
			l, err := s.claim(ctx, tx, owner, d.ID, &Action{Name: AutoBackup, RequireBackups: true}, now)
			var refused *Error
			if errors.As(err, &refused) {
				continue // busy, or gone since the scan: a later call gets it
			}
			if err != nil {
				return err
			}
			chooseSchedule(l, now)
			l.BackupsNext = ptr(s.nextBackup(l, now))
			_, err = tx.NewUpdate().Model(l).Column("backup_day", "backup_window", "backups_next").
				Where("account_id = ? AND id = ?", l.AccountID, l.ID).Exec(ctx)
			if err != nil {
				return err
			}
			b := newBackup(l, "auto", nil, now)
			if _, err := tx.NewInsert().Model(b).Returning("id").Exec(ctx); err != nil {
				return err
			}
			j := &Job{
				AccountID: l.AccountID, LinodeID: l.ID, Action: AutoBackup,
				Params: backupParams(b.ID), State: "queued", Created: now,
			}
			if _, err := tx.NewInsert().Model(j).Returning("id").Exec(ctx); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

// startBackup marks the backup of a backup job running.
func startBackup(ctx context.Context, tx bun.Tx, j *Job, now int64) error {
	_, err := tx.NewUpdate().Model((*Backup)(nil)).
		Set("status = 'running', updated = ?", now).
		Where("account_id = ? AND id = ?", j.AccountID, j.BackupID()).Exec(ctx)
	return err
}

// finishBackup records how a backup job ended. A finished snapshot replaces
// the Linode's previous one; only the newest automatic backups are kept.
// The Linode's backup summary follows.
func finishBackup(ctx context.Context, tx bun.Tx, j *Job, out Outcome, now int64) error {
	status := "successful"
	if out == Failed {
		status = "failed"
	}
	_, err := tx.NewUpdate().Model((*Backup)(nil)).
		Set("status = ?, maintenance = ?, finished = ?, updated = ?",
			status, out == UnderMaintenance, now, now).
		Where("account_id = ? AND id = ?", j.AccountID, j.BackupID()).Exec(ctx)
	if err != nil {
		return err
	}

	if j.Action == "linode_snapshot" {
		_, err = tx.NewDelete().Model((*Backup)(nil)).
			Where("account_id = ? AND linode_id = ?", j.AccountID, j.LinodeID).
			Where("type = 'snapshot' AND id <> ?", j.BackupID()).
			Where("status IN ('successful', 'failed')").
			Exec(ctx)
	} else {
		_, err = tx.NewRaw(`DELETE FROM backups
WHERE account_id = ? AND linode_id = ? AND type = 'auto' AND id NOT IN (
    SELECT id FROM backups
    WHERE account_id = ? AND linode_id = ? AND type = 'auto'
    ORDER BY id DESC
    LIMIT ?)`, j.AccountID, j.LinodeID, j.AccountID, j.LinodeID, keepAutomatic).Exec(ctx)
	}
	if err != nil {
		return err
	}
	return summarizeBackups(ctx, tx, j.AccountID, j.LinodeID)
}

// summarizeBackups recomputes what a Linode object says of its backups.
func summarizeBackups(ctx context.Context, tx bun.Tx, accountID, linodeID int64) error {
	_, err := tx.NewRaw(`UPDATE linodes SET
    backups_available = EXISTS (
        SELECT 1 FROM backups AS b
        WHERE b.account_id = ? AND b.linode_id = ? AND b.status = 'successful'
          AND NOT b.maintenance),
    backups_last_successful = (
        SELECT MAX(b.finished) FROM backups AS b
        WHERE b.account_id = ? AND b.linode_id = ? AND b.status = 'successful')
WHERE account_id = ? AND id = ?`,
		accountID, linodeID, accountID, linodeID, accountID, linodeID).Exec(ctx)
	return err
}

// forgetLinode deletes what a Linode leaves behind once it is gone: its
// addresses, which other Linodes may then get, and its backups.
func forgetLinode(ctx context.Context, tx bun.Tx, accountID, linodeID int64) error {
	for _, model := range []any{(*IPAddress)(nil), (*Backup)(nil)} {
		_, err := tx.NewDelete().Model(model).
			Where("account_id = ? AND linode_id = ?", accountID, linodeID).Exec(ctx)
		if err != nil {
			return err
		}
	}
	return nil
}
