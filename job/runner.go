// Package job runs the jobs stored in the database through a Driver: any
// number of server processes run a Runner each, and every job runs once.
package job

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync"
	"time"

	"apiv4/db"
)

// Driver carries out jobs on the hypervisor.
type Driver interface {
	// Run performs the job. It calls progress as the work advances, with a
	// percentage and an estimate of the time left, and stops when progress
	// returns an error. It returns nil when the job succeeded,
	// ErrUnderMaintenance when it took a backup that cannot be restored for
	// now, and any other error when the job failed: the error's text is the
	// reason the failed event gives its user, so it says what went wrong
	// and nothing that user should not see.
	Run(ctx context.Context, j *db.Job, progress func(percent int, left time.Duration) error) error
}

// ErrUnderMaintenance is what a Driver returns when it took a backup that
// cannot be restored for now: the job succeeded, the backup is unavailable.
var ErrUnderMaintenance = errors.New("the backup is under maintenance")

// Config tunes a Runner. Zero values take the defaults.
type Config struct {
	Workers int           // jobs run at once by this process (default 8)
	Lease   time.Duration // how long a claim holds without renewal (default 15s)
	Poll    time.Duration // how often idle workers look for jobs (default 250ms)

	// BackupScan is how often the runner starts the automatic backups that
	// are due (default 1s).
	BackupScan time.Duration
}

// Runner claims jobs from the store and runs them through a Driver.
type Runner struct {
	store  *db.Store
	driver Driver
	cfg    Config
	owner  string
	log    *slog.Logger
	wake   chan struct{}
}

// New returns a Runner; Run starts it.
func New(store *db.Store, driver Driver, cfg Config, log *slog.Logger) *Runner {
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 15 * time.Second
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 250 * time.Millisecond
	}
	if cfg.BackupScan <= 0 {
		cfg.BackupScan = time.Second
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return &Runner{
		store: store, driver: driver, cfg: cfg, log: log,
		owner: "runner-" + hex.EncodeToString(b),
		wake:  make(chan struct{}, 1),
	}
}

// Wake tells idle workers that a job was queued, so that it starts at once
// rather than at the next poll. It never blocks.
func (r *Runner) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run works until ctx is done, then lets running jobs stop, hands their
// leases back so that another process resumes them at once, and returns.
// One loop claims jobs while a worker slot is free, so an idle process asks
// the database once per poll interval, however many workers it has.
func (r *Runner) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { r.scheduleBackups(ctx) })
	slots := make(chan struct{}, r.cfg.Workers)
	for ctx.Err() == nil {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			continue
		}
		j, err := r.store.ClaimJob(ctx, r.owner, r.cfg.Lease)
		if err != nil && ctx.Err() == nil {
			r.log.WarnContext(ctx, "claim job", "err", err)
		}
		if j == nil {
			<-slots
			select {
			case <-ctx.Done():
			case <-r.wake:
			case <-time.After(r.cfg.Poll):
			}
			continue
		}
		wg.Go(func() {
			defer func() { <-slots }()
			r.run(ctx, j)
		})
	}
	wg.Wait()

	release, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := r.store.ReleaseJobs(release, r.owner); err != nil {
		r.log.ErrorContext(ctx, "release jobs", "err", err)
	}
}

// run carries one claimed job to its end. If the process is stopping, the
// job is left to the lease release, and another process runs it again.
func (r *Runner) run(ctx context.Context, j *db.Job) {
	log := r.log.With("job_id", j.ID, "action", j.Action, "linode_id", j.LinodeID)
	if err := r.store.StartJob(ctx, j); err != nil {
		log.WarnContext(ctx, "start job", "err", err)
		return
	}

	progress := func(percent int, left time.Duration) error {
		return r.store.ProgressJob(ctx, j, percent, left, r.cfg.Lease)
	}
	runErr := r.driver.Run(ctx, j, progress)
	if ctx.Err() != nil || errors.Is(runErr, db.ErrLeaseLost) {
		return
	}

	out := db.Succeeded
	switch {
	case errors.Is(runErr, ErrUnderMaintenance):
		out = db.UnderMaintenance
	case runErr != nil:
		out = db.Failed
	}
	reason := ""
	if out == db.Failed {
		reason = runErr.Error()
	}
	if err := r.store.FinishJob(ctx, j, out, reason); err != nil {
		log.WarnContext(ctx, "finish job", "err", err)
		return
	}
	if out == db.Failed {
		log.InfoContext(ctx, "job failed", "reason", runErr.Error())
	}
	r.Wake() // the Linode may have a queued job that can start now
}

// scheduleBackups starts the automatic backups that are due, every
// BackupScan, until ctx is done. Every process does it; the store makes
// sure each backup starts once.
func (r *Runner) scheduleBackups(ctx context.Context) {
	tick := time.NewTicker(r.cfg.BackupScan)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		n, err := r.store.QueueBackups(ctx, 100)
		if err != nil && ctx.Err() == nil {
			r.log.WarnContext(ctx, "queue backups", "err", err)
		}
		if n > 0 {
			r.Wake()
		}
	}
}
