package db

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/uptrace/bun"
)

// Job is an action on a Linode that takes time. Jobs are rows, so that any
// server process can run them: a process claims a job with a lease, renews
// it while it works, and a job whose lease ran out is claimed again.
type Job struct {
	bun.BaseModel `bun:"table:jobs,alias:j"`

	AccountID  int64   `bun:"account_id"`
	ID         int64   `bun:"id,pk,autoincrement"`
	LinodeID   int64   `bun:"linode_id"`
	EventID    int64   `bun:"event_id"` // 0 for automatic backups, which have no event
	Action     string  `bun:"action"`
	Params     string  `bun:"params"`
	State      string  `bun:"state"` // queued or running; a finished job is deleted
	RunAfter   int64   `bun:"run_after"`
	LeaseOwner *string `bun:"lease_owner"`
	LeaseUntil *int64  `bun:"lease_until"`
	Attempts   int     `bun:"attempts"`
	Created    int64   `bun:"created"`
}

// previous returns the image and plan a Linode had before a rebuild or
// restore, and whether the job recorded them.
func (j *Job) previous() (image *string, typ string, ok bool) {
	var p struct {
		Image *json.RawMessage `json:"previous_image"`
		Type  string           `json:"previous_type"`
	}
	if json.Unmarshal([]byte(j.Params), &p) != nil || p.Image == nil {
		return nil, "", false
	}
	_ = json.Unmarshal(*p.Image, &image)
	return image, p.Type, true
}

// previousStatus returns the "previous_status" parameter, which keepStatus
// sets: the Linode's status before the job began, or "" when unknown.
func (j *Job) previousStatus() string {
	var p struct {
		Status string `json:"previous_status"`
	}
	_ = json.Unmarshal([]byte(j.Params), &p)
	return p.Status
}

// keepStatus records in the job's params the status its Linode has before
// the job changes it, unless the job has it already (taken over from a
// process that died after starting it).
func keepStatus(ctx context.Context, tx bun.Tx, j *Job) error {
	if j.previousStatus() != "" {
		return nil
	}
	var status []string
	err := tx.NewSelect().Table("linodes").Column("status").
		Where("account_id = ? AND id = ?", j.AccountID, j.LinodeID).Scan(ctx, &status)
	if err != nil || len(status) == 0 {
		return err
	}
	m := map[string]any{}
	_ = json.Unmarshal([]byte(j.Params), &m)
	m["previous_status"] = status[0]
	j.Params = encodeJSON(m)
	_, err = tx.NewUpdate().Table("jobs").Set("params = ?", j.Params).
		Where("account_id = ? AND id = ?", j.AccountID, j.ID).Exec(ctx)
	return err
}

// Booted reports the job's "booted" parameter: whether the Linode runs when
// a create or rebuild ends. It defaults to true.
func (j *Job) Booted() bool {
	var p struct{ Booted *bool }
	if json.Unmarshal([]byte(j.Params), &p) != nil || p.Booted == nil {
		return true
	}
	return *p.Booted
}

// BackupID returns the "backup_id" parameter of a snapshot, automatic
// backup or restore job: the backup it takes or restores.
func (j *Job) BackupID() int64 {
	var p struct {
		BackupID int64 `json:"backup_id"`
	}
	_ = json.Unmarshal([]byte(j.Params), &p)
	return p.BackupID
}

// Outcome is how a job ended.
type Outcome int

// The outcomes of a job.
const (
	Succeeded        Outcome = iota // the work was done
	Failed                          // the work was not done
	UnderMaintenance                // a backup was taken but cannot be restored for now
)

// ErrLeaseLost means another process took the job over: the caller must
// stop working on it and write nothing more.
var ErrLeaseLost = errors.New("db: job lease lost")

// transition is what a job does to its Linode's status: while it runs,
// when it finishes and when it fails. An empty status leaves it as it is.
type transition struct{ running, done, failed string }

var transitions = map[string]transition{
	"linode_create":   {"provisioning", "running", "offline"},
	"linode_boot":     {"booting", "running", "offline"},
	"linode_shutdown": {"shutting_down", "offline", "running"},
	"linode_reboot":   {"rebooting", "running", "offline"},
	"linode_rebuild":  {"rebuilding", "running", "offline"},
	"linode_delete":   {"deleting", "", "offline"},
	"password_reset":  {"", "", ""},
	"linode_migrate":  {"migrating", "", ""}, // maintenance: a move to another host, then back as it was
	"linode_snapshot": {"", "", ""},
	AutoBackup:        {"", "", ""},
	"backups_restore": {"restoring", "offline", "offline"},
}

// deferred reports whether the job was scheduled to run at a later time.
// A deferred job does not hold its Linode busy until it starts.
func (j *Job) deferred() bool { return j.RunAfter > 0 }

// isBackup reports whether a job takes a backup of its Linode.
func isBackup(action string) bool { return action == "linode_snapshot" || action == AutoBackup }

// ClaimJob leases the oldest job that may run now to owner, or returns nil
// when there is none. A job may run when it is queued (or its lease ran
// out), its run_after has come, no earlier job of its Linode that may run
// is still pending, and no other job of its Linode holds a live lease. So
// one Linode's jobs run one at a time, in the order they were accepted,
// and maintenance scheduled for later holds up nothing before its time.
func (s *Store) ClaimJob(ctx context.Context, owner string, lease time.Duration) (*Job, error) {
	now := s.now()
	until := micros(now.Add(lease))
	lock := ""
	if s.IsPostgres() {
		lock = "FOR UPDATE SKIP LOCKED"
	}
	at := micros(now)
	var jobs []Job
	err := s.db.NewRaw(`UPDATE jobs
SET state = 'running', lease_owner = ?, lease_until = ?, attempts = attempts + 1
WHERE id = (
    SELECT c.id FROM jobs AS c
    WHERE (c.state = 'queued' OR c.lease_until < ?) AND c.run_after <= ?
      AND NOT EXISTS (
        SELECT 1 FROM jobs AS k
        WHERE k.account_id = c.account_id AND k.linode_id = c.linode_id AND k.id <> c.id
          AND ((k.id < c.id AND k.run_after <= ?)
            OR (k.state = 'running' AND k.lease_until >= ?)))
    ORDER BY c.id
    LIMIT 1 `+lock+`)
  AND (state = 'queued' OR lease_until < ?)
RETURNING *`, owner, until, at, at, at, at, at).Scan(ctx, &jobs)
	if err != nil {
		return nil, translate(err)
	}
	if len(jobs) == 0 {
		return nil, nil
	}
	return &jobs[0], nil
}

// StartJob marks the job's event started and moves its Linode to the
// job's running status. A deferred job makes its Linode busy only now,
// the first time it starts.
func (s *Store) StartJob(ctx context.Context, j *Job) error {
	return s.tx(ctx, func(tx bun.Tx) error {
		if err := renew(ctx, tx, j, 0); err != nil {
			return err
		}
		if j.deferred() {
			_, err := tx.NewRaw(`UPDATE linodes SET jobs_pending = jobs_pending + 1
WHERE account_id = ? AND id = ? AND EXISTS (
    SELECT 1 FROM events WHERE account_id = ? AND id = ? AND status = 'scheduled')`,
				j.AccountID, j.LinodeID, j.AccountID, j.EventID).Exec(ctx)
			if err != nil {
				return err
			}
		}
		now := micros(s.now())
		// A job taken over from a dead process keeps its start time and
		// progress, so that neither goes backwards.
		_, err := tx.NewUpdate().Table("events").
			Set("status = 'started', percent_complete = COALESCE(percent_complete, 0)").
			Set("started = COALESCE(started, ?), updated = ?", now, now).
			Where("account_id = ? AND id = ?", j.AccountID, j.EventID).Exec(ctx)
		if err != nil {
			return err
		}
		if j.Action == "linode_migrate" {
			if err := keepStatus(ctx, tx, j); err != nil {
				return err
			}
		}
		if st := transitions[j.Action].running; st != "" {
			_, err = tx.NewUpdate().Table("linodes").Set("status = ?, updated = ?", st, now).
				Where("account_id = ? AND id = ?", j.AccountID, j.LinodeID).Exec(ctx)
			if err != nil {
				return err
			}
		}
		if isBackup(j.Action) {
			if err := startBackup(ctx, tx, j, now); err != nil {
				return err
			}
		}
		return touchEvent(ctx, tx, j.AccountID, j.EventID)
	})
}

// ProgressJob records how far the job has come and renews its lease.
func (s *Store) ProgressJob(ctx context.Context, j *Job, percent int, remaining, lease time.Duration) error {
	return s.tx(ctx, func(tx bun.Tx) error {
		if err := renew(ctx, tx, j, micros(s.now().Add(lease))); err != nil {
			return err
		}
		now := micros(s.now())
		_, err := tx.NewUpdate().Table("events").
			Set("percent_complete = "+s.greatest()+"(COALESCE(percent_complete, 0), ?)", percent).
			Set("time_remaining = ?, updated = ?", int(remaining.Round(time.Second)/time.Second), now).
			Set("duration = (? - COALESCE(started, created)) / 1000000.0", now).
			Where("account_id = ? AND id = ?", j.AccountID, j.EventID).Exec(ctx)
		if err != nil {
			return err
		}
		return touchEvent(ctx, tx, j.AccountID, j.EventID)
	})
}

// renew extends the lease of a job the caller holds to until (Unix
// microseconds), or returns ErrLeaseLost. A zero until keeps the deadline.
func renew(ctx context.Context, tx bun.Tx, j *Job, until int64) error {
	q := tx.NewUpdate().Table("jobs").
		Where("account_id = ? AND id = ? AND lease_owner = ?", j.AccountID, j.ID, *j.LeaseOwner)
	if until > 0 {
		q.Set("lease_until = ?", until)
	} else {
		q.Set("lease_until = lease_until")
	}
	res, err := q.Exec(ctx)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrLeaseLost
	}
	return nil
}

// FinishJob ends the job: its event becomes finished (or failed, with
// reason, when not empty, added to its message) and its Linode leaves the
// busy state with the job's final status. A finished linode_delete removes
// the Linode for good, with its addresses and backups; a backup job
// records its backup's outcome.
func (s *Store) FinishJob(ctx context.Context, j *Job, out Outcome, reason string) error {
	failed := out == Failed
	return s.tx(ctx, func(tx bun.Tx) error {
		res, err := tx.NewDelete().Table("jobs").
			Where("account_id = ? AND id = ? AND lease_owner = ?", j.AccountID, j.ID, *j.LeaseOwner).
			Exec(ctx)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrLeaseLost
		}

		now := micros(s.now())
		ev := tx.NewUpdate().Table("events").
			Set("time_remaining = 0, updated = ?", now).
			Set("duration = (? - COALESCE(started, created)) / 1000000.0", now).
			Where("account_id = ? AND id = ?", j.AccountID, j.EventID)
		if failed {
			ev.Set("status = 'failed'")
			if reason != "" {
				ev.Set(failureMessage, reason, reason)
			}
		} else {
			ev.Set("status = 'finished', percent_complete = 100")
		}
		if _, err := ev.Exec(ctx); err != nil {
			return err
		}

		st := transitions[j.Action]
		final := st.done
		if failed {
			final = st.failed
		} else if (j.Action == "linode_create" || j.Action == "linode_rebuild") && !j.Booted() {
			final = "offline"
		}
		if j.Action == "linode_migrate" {
			final = j.previousStatus() // a migration, done or failed, leaves the Linode as it was
		}
		where := []any{j.AccountID, j.LinodeID}
		if j.Action == "linode_delete" && !failed {
			_, err = tx.NewDelete().Table("linodes").Where("account_id = ? AND id = ?", where...).Exec(ctx)
			if err != nil {
				return err
			}
			if err := cancelWaiting(ctx, tx, j.AccountID, j.LinodeID, now); err != nil {
				return err
			}
			if err := forgetLinode(ctx, tx, j.AccountID, j.LinodeID); err != nil {
				return err
			}
			return touchEvent(ctx, tx, j.AccountID, j.EventID)
		}
		q := tx.NewUpdate().Table("linodes").
			Set("jobs_pending = jobs_pending - 1, updated = ?", now).
			Where("account_id = ? AND id = ?", where...)
		if final != "" {
			q.Set("status = ?", final)
		}
		if img, typ, ok := j.previous(); failed && ok {
			q.Set("image = ?", img)
			if typ != "" {
				q.Set("type = ?", typ)
			}
		}
		if j.Action == "linode_delete" {
			q.Set("deleted = ?", false)
		}
		if j.Action == "linode_migrate" && !failed {
			q.Set("host_uuid = ?", newUUID())
		}
		if _, err = q.Exec(ctx); err != nil {
			return err
		}
		if isBackup(j.Action) {
			if err := finishBackup(ctx, tx, j, out, now); err != nil {
				return err
			}
		}
		return touchEvent(ctx, tx, j.AccountID, j.EventID)
	})
}

// cancelWaiting drops the jobs still waiting for a Linode that is gone
// (maintenance scheduled for later) and marks their events failed.
func cancelWaiting(ctx context.Context, tx bun.Tx, accountID, linodeID, now int64) error {
	var events []int64
	err := tx.NewRaw(`DELETE FROM jobs
WHERE account_id = ? AND linode_id = ? AND state = 'queued'
RETURNING event_id`, accountID, linodeID).Scan(ctx, &events)
	if err != nil || len(events) == 0 {
		return err
	}
	_, err = tx.NewUpdate().Table("events").Set("status = 'failed', updated = ?", now).
		Set(failureMessage, "the Linode was deleted", "the Linode was deleted").
		Where("account_id = ? AND id IN (?)", accountID, bun.In(events)).Exec(ctx)
	return err
}

// failureMessage gives a failed event its reason (the two arguments): as
// its message, or after it when it has one.
const failureMessage = `message = CASE WHEN COALESCE(message, '') = '' THEN ?
    ELSE message || ': ' || ? END`

// ReleaseJobs hands back every job leased to owner, so that another
// process may claim them at once; a process calls it when it stops.
func (s *Store) ReleaseJobs(ctx context.Context, owner string) error {
	return s.tx(ctx, func(tx bun.Tx) error {
		_, err := tx.NewUpdate().Table("jobs").
			Set("state = 'queued', lease_owner = NULL, lease_until = NULL").
			Where("lease_owner = ?", owner).Exec(ctx)
		return err
	})
}
