package job

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"apiv4/db"
)

// Sim is the default Driver: it simulates the hypervisor. Each job takes
// Duration, reports progress in Steps, and fails with probability
// FailRate (deletes never fail). Of the automatic backups that do not fail,
// a share UnavailableRate ends under maintenance.
type Sim struct {
	Duration        time.Duration
	Steps           int
	FailRate        float64
	UnavailableRate float64
}

// ErrSimulatedFailure is how a simulated job fails.
var ErrSimulatedFailure = errors.New("the hypervisor reported a failure")

// Run implements Driver.
func (s Sim) Run(ctx context.Context, j *db.Job, progress func(int, time.Duration) error) error {
	// At least one step a second, so that the lease is renewed in time
	// however long the simulated job takes.
	steps := max(1, s.Steps, int(s.Duration/time.Second))
	tick := s.Duration / time.Duration(steps)
	for i := 1; i < steps; i++ {
		if err := sleep(ctx, tick); err != nil {
			return err
		}
		left := s.Duration - time.Duration(i)*tick
		if err := progress(i*100/steps, left); err != nil {
			return err
		}
	}
	if err := sleep(ctx, tick); err != nil {
		return err
	}
	if j.Action != "linode_delete" && s.FailRate > 0 && rand.Float64() < s.FailRate {
		return ErrSimulatedFailure
	}
	if j.Action == db.AutoBackup && s.UnavailableRate > 0 && rand.Float64() < s.UnavailableRate {
		return ErrUnderMaintenance
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
