package db

import (
	"context"
	"time"
)

// Stats are counts over the whole deployment, read from the database, for
// metrics: they are the same whichever process reads them.
type Stats struct {
	JobsQueued    int           // jobs waiting for a runner
	JobsRunning   int           // jobs leased to a runner
	OldestQueued  time.Duration // age of the oldest queued job, 0 when none
	EventsWritten int64         // events ever recorded, over every account
	EventChanges  int64         // event inserts and status changes, over every account
}

// Stats reads the deployment's job queue and event counters.
func (s *Store) Stats(ctx context.Context) (*Stats, error) {
	var st Stats
	var jobs []struct {
		State  string `bun:"state"`
		N      int    `bun:"n"`
		Oldest int64  `bun:"oldest"`
	}
	err := s.db.NewSelect().Table("jobs").
		ColumnExpr("state, COUNT(*) AS n, MIN(created) AS oldest").
		Group("state").Scan(ctx, &jobs)
	if err != nil {
		return nil, translate(err)
	}
	for _, j := range jobs {
		switch j.State {
		case "queued":
			st.JobsQueued = j.N
			st.OldestQueued = max(0, s.now().Sub(time.UnixMicro(j.Oldest)))
		case "running":
			st.JobsRunning = j.N
		}
	}

	err = s.db.NewSelect().Table("event_counters").
		ColumnExpr("COALESCE(SUM(last_seq), 0), COALESCE(SUM(last_rev), 0)").
		Scan(ctx, &st.EventsWritten, &st.EventChanges)
	if err != nil {
		return nil, translate(err)
	}
	return &st, nil
}
