package job

import (
	"context"
	"log/slog"
	"time"

	"apiv4/db"
)

// Pruner deletes events older than the retention window, in the
// background, a few small transactions at a time. Any number of server
// processes may run one: they never delete an event twice.
type Pruner struct {
	store     *db.Store
	retention time.Duration
	limits    db.PruneLimits
	pause     time.Duration // between two steps of a sweep
	idle      time.Duration // between two sweeps
	log       *slog.Logger
}

// NewPruner returns a Pruner that keeps retention's worth of events; Run
// starts it.
func NewPruner(store *db.Store, retention time.Duration, log *slog.Logger) *Pruner {
	return &Pruner{store: store, retention: retention, limits: db.DefaultPruneLimits,
		pause: 50 * time.Millisecond, idle: time.Minute, log: log}
}

// Run sweeps every account at once, then once a minute, until ctx ends.
// Between two steps it pauses, so that it takes a small share of the
// database whatever the backlog.
func (p *Pruner) Run(ctx context.Context) {
	var after, swept int64
	for ctx.Err() == nil {
		step, err := p.store.PruneEvents(ctx, time.Now().Add(-p.retention), after, p.limits)
		wait := p.pause
		switch {
		case err != nil:
			if ctx.Err() == nil {
				p.log.WarnContext(ctx, "prune events", "err", err)
			}
			wait = p.idle
		case step.Done:
			if swept += step.Deleted; swept > 0 {
				p.log.InfoContext(ctx, "pruned events", "deleted", swept,
					"retention", p.retention.String())
			}
			swept, wait = 0, p.idle
		default:
			swept += step.Deleted
		}
		after = step.Next
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}
