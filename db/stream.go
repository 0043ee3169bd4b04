package db

import (
	"context"
	"fmt"
	"strconv"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
)

// notifyChannel is the PostgreSQL channel on which every change of an
// account's events is announced, with the account id as payload.
const notifyChannel = "apiv4_events"

// touchEvent records that an existing event changed: it takes the
// account's next change position for it and announces the change. It locks
// the account's counter row until the transaction ends, so callers make it
// their last statement, as with insertEvent.
func touchEvent(ctx context.Context, tx bun.Tx, accountID, eventID int64) error {
	var rev int64
	err := tx.NewRaw(`UPDATE event_counters SET last_rev = last_rev + 1
WHERE account_id = ?
RETURNING last_rev`, accountID).Scan(ctx, &rev)
	if err != nil {
		return fmt.Errorf("db: event counter: %w", err)
	}
	_, err = tx.NewUpdate().Table("events").Set("rev = ?", rev).
		Where("account_id = ? AND id = ?", accountID, eventID).Exec(ctx)
	if err != nil {
		return err
	}
	return notifyChange(ctx, tx, accountID)
}

// notifyChange announces, when the transaction commits, that the account's
// events changed. PostgreSQL delivers it to every process that listens;
// SQLite has one process, whose streams poll the counter instead.
func notifyChange(ctx context.Context, tx bun.Tx, accountID int64) error {
	if tx.Dialect().Name() != dialect.PG {
		return nil
	}
	_, err := tx.ExecContext(ctx, "SELECT pg_notify(?, ?)", notifyChannel, strconv.FormatInt(accountID, 10))
	return err
}

// EventFilter is a parsed X-Filter for the events stream; nil matches
// every event.
type EventFilter = Filter

// ParseEventFilter parses an X-Filter with the keys of the events list.
// A bad filter is Invalid with field X-Filter.
func ParseEventFilter(raw string) (*EventFilter, error) {
	return parseFilter(raw, eventFields)
}

// EventRev returns the account's current change position: the number of
// event inserts and changes it has had.
func (s *Store) EventRev(ctx context.Context, accountID int64) (int64, error) {
	var revs []int64
	err := s.db.NewSelect().Table("event_counters").Column("last_rev").
		Where("account_id = ?", accountID).Scan(ctx, &revs)
	if err != nil || len(revs) == 0 {
		return 0, translate(err)
	}
	return revs[0], nil
}

// EventChanges returns the caller's events created or changed after the
// change position after, in their current state and in the order of their
// last change, at most limit of them, keeping those f matches. It also
// returns the position to ask from next time: past every change it looked
// at, matched or not. Each event's Rev is the position of its last change.
func (s *Store) EventChanges(ctx context.Context, p *Principal, after int64, f *EventFilter,
	limit int) ([]Event, int64, error) {
	// Every change up to the counter's value has committed by the time the
	// counter shows it (the row lock orders them), so nothing below it can
	// appear later.
	upTo, err := s.EventRev(ctx, p.AccountID)
	if err != nil || upTo <= after {
		return nil, after, err
	}
	seenID, err := s.seenMark(ctx, s.db, p)
	if err != nil {
		return nil, after, err
	}

	events := []Event{}
	q := s.db.NewSelect().Model(&events).
		Where("e.account_id = ? AND e.rev > ? AND e.rev <= ?", p.AccountID, after, upTo).
		OrderExpr("e.rev ASC").
		Limit(int64(limit))
	if f != nil && f.where != "" {
		q.Where(f.where, append([]any{seenID, p.UserID}, f.args...)...)
	}
	if err := q.Scan(ctx); err != nil {
		return nil, after, translate(err)
	}
	next := upTo
	if len(events) == limit {
		next = events[len(events)-1].Rev
	}
	if err := s.markFlags(ctx, s.db, p, seenID, events); err != nil {
		return nil, after, err
	}
	return events, next, nil
}
