package db

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// maxMaintenanceAhead is how far ahead maintenance may be scheduled.
const maxMaintenanceAhead = 366 * 24 * time.Hour

// ScheduleMaintenance schedules maintenance of the Linode with that id, in
// whichever account it is, for the time at: a live move to another host
// (action linode_migrate). Its event is created scheduled, with no
// username, and stays so until at; the job then runs through the job
// runner like any other, and until it starts the Linode is not busy. A
// time that is not in the future or more than a year ahead is Invalid, as
// is a Linode whose maintenance is already scheduled; an unknown Linode
// is ErrNotFound.
func (s *Store) ScheduleMaintenance(ctx context.Context, linodeID int64,
	at time.Time) (*Event, error) {
	now := s.now()
	if !at.After(now) {
		return nil, Errorf(Invalid, "at", "the maintenance time must be in the future")
	}
	if at.After(now.Add(maxMaintenanceAhead)) {
		return nil, Errorf(Invalid, "at", "the maintenance time must be within a year")
	}
	var e *Event
	err := s.tx(ctx, func(tx bun.Tx) error {
		var l Linode
		sel := tx.NewSelect().Model(&l).Where("l.id = ? AND NOT l.deleted", linodeID)
		if err := s.lockForUpdate(sel).Scan(ctx); err != nil {
			return err
		}
		// Under the Linode's lock, so that two operators cannot both
		// schedule it.
		pending, err := tx.NewSelect().Table("jobs").
			Where("account_id = ? AND linode_id = ? AND action = 'linode_migrate'", l.AccountID, l.ID).
			Exists(ctx)
		if err != nil {
			return err
		}
		if pending {
			return Errorf(Invalid, "linode", "maintenance of Linode %s is already scheduled", l.Label)
		}
		zero := 0
		typ, url := "linode", fmt.Sprintf("/v4/linode/instances/%d", l.ID)
		msg := fmt.Sprintf("Scheduled maintenance of Linode %s at %s UTC", l.Label,
			at.UTC().Format(TimeLayout))
		e = &Event{
			AccountID: l.AccountID, Action: "linode_migrate", Status: "scheduled", Message: &msg,
			EntityType: &typ, EntityID: &l.ID, EntityLabel: &l.Label, EntityURL: &url,
			PercentComplete: &zero, Created: micros(now), Updated: micros(now),
		}
		if err := insertEvent(ctx, tx, e); err != nil {
			return err
		}
		// The insert statement is shared by every event; the time is set
		// apart, in the same transaction, before any reader can see it.
		e.NotBefore = ptr(micros(at))
		_, err = tx.NewUpdate().Table("events").Set("not_before = ?", *e.NotBefore).
			Where("account_id = ? AND id = ?", e.AccountID, e.ID).Exec(ctx)
		if err != nil {
			return err
		}
		j := &Job{
			AccountID: l.AccountID, LinodeID: l.ID, EventID: e.ID, Action: "linode_migrate",
			Params: "{}", State: "queued", RunAfter: micros(at), Created: micros(now),
		}
		_, err = tx.NewInsert().Model(j).Returning("id").Exec(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}
