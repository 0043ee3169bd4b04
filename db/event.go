package db

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/uptrace/bun"
)

// Event is something that happened, or is scheduled to happen, on an
// account. Seen and Read are the calling user's marks, not columns.
type Event struct {
	bun.BaseModel `bun:"table:events,alias:e"`

	AccountID       int64    `bun:"account_id"`
	ID              int64    `bun:"id,pk,autoincrement"`
	Seq             int64    `bun:"seq"`
	Rev             int64    `bun:"rev"` // the account's change position of its last change
	Action          string   `bun:"action"`
	Status          string   `bun:"status"`
	Username        *string  `bun:"username"`
	Message         *string  `bun:"message"`
	EntityType      *string  `bun:"entity_type"`
	EntityID        *int64   `bun:"entity_id"`
	EntityLabel     *string  `bun:"entity_label"`
	EntityURL       *string  `bun:"entity_url"`
	SecondaryJSON   *string  `bun:"secondary"`
	PercentComplete *int     `bun:"percent_complete"`
	TimeRemaining   *int     `bun:"time_remaining"`
	Duration        *float64 `bun:"duration"`
	Created         int64    `bun:"created"`
	Started         *int64   `bun:"started"`
	Updated         int64    `bun:"updated"`

	Seen bool `bun:"-"`
	Read bool `bun:"-"`
}

// Entity is what an event is about: a Linode, a config, an image, a ticket.
// ID is an int64, a string (an image id such as "linode/debian12") or nil.
type Entity struct {
	ID    any    `json:"id"`
	Label string `json:"label"`
	Type  string `json:"type"`
	URL   string `json:"url"`
}

// Secondary returns the event's secondary entity, or nil when it has none.
func (e *Event) Secondary() *Entity {
	if e.SecondaryJSON == nil {
		return nil
	}
	var ent Entity
	dec := json.NewDecoder(strings.NewReader(*e.SecondaryJSON))
	dec.UseNumber()
	if err := dec.Decode(&ent); err != nil {
		return nil
	}
	if n, ok := ent.ID.(json.Number); ok {
		ent.ID, _ = n.Int64()
	}
	return &ent
}

// eventCounter holds an account's dense event sequence: the seq of its
// newest event and of its oldest kept one. It replaces COUNT(*) and OFFSET.
type eventCounter struct {
	bun.BaseModel `bun:"table:event_counters"`

	AccountID int64 `bun:"account_id,pk"`
	LastSeq   int64 `bun:"last_seq"`
	FirstSeq  int64 `bun:"first_seq"`
}

// eventFields are the X-Filter keys of the events list.
var eventFields = map[string]field{
	"id":          {kind: kindInt, column: "e.id", orderBy: true},
	"created":     {kind: kindTime, column: "e.created", orderBy: true},
	"action":      {kind: kindString, column: "e.action"},
	"status":      {kind: kindString, column: "e.status"},
	"username":    {kind: kindString, column: "e.username"},
	"entity.id":   {kind: kindInt, column: "e.entity_id"},
	"entity.type": {kind: kindString, column: "e.entity_type"},
	"seen":        {kind: kindSeen},
	"read":        {kind: kindRead},
}

// ListQuery asks for one page of a collection: a 1-based page, its size and
// an optional X-Filter.
type ListQuery struct {
	Page     int
	PageSize int
	Filter   string
}

// EventPage is one page of events with the envelope counts.
type EventPage struct {
	Events  []Event
	Page    int
	Pages   int
	Results int
}

// ListEvents returns one page of the caller's account events, newest first
// unless the filter orders otherwise. A bad filter is Invalid.
func (s *Store) ListEvents(ctx context.Context, p *Principal, q ListQuery) (*EventPage, error) {
	f, err := parseFilter(q.Filter, eventFields)
	if err != nil {
		return nil, err
	}
	seenID, err := s.seenWatermark(ctx, s.db, p)
	if err != nil {
		return nil, err
	}

	var page *EventPage
	if f == nil || (f.where == "" && f.orderBy != "created") {
		page, err = s.listEventsBySeq(ctx, p, q, f.descending(true))
	} else {
		page, err = s.listEventsFiltered(ctx, p, q, f, seenID)
	}
	if err != nil {
		return nil, translate(err)
	}
	if err := s.markFlags(ctx, s.db, p, seenID, page.Events); err != nil {
		return nil, err
	}
	return page, nil
}

// listEventsBySeq serves an unfiltered list from the account's dense
// sequence: the page is a range of seq found through the unique index, so
// every page costs the same whatever its depth or the account's size.
func (s *Store) listEventsBySeq(ctx context.Context, p *Principal, q ListQuery, desc bool) (*EventPage, error) {
	var c eventCounter
	err := s.db.NewSelect().Model(&c).Where("account_id = ?", p.AccountID).Scan(ctx)
	if err != nil && translate(err) != ErrNotFound {
		return nil, err
	}
	total := max(0, c.LastSeq-c.FirstSeq+1)
	page := newPage(q, total)

	skip := q.skip()
	if skip >= total {
		return page, nil
	}
	sel := s.db.NewSelect().Model(&page.Events).
		Where("e.account_id = ?", p.AccountID).
		Limit(int64(q.PageSize))
	if desc {
		sel.Where("e.seq <= ?", c.LastSeq-skip).OrderExpr("e.seq DESC")
	} else {
		sel.Where("e.seq >= ?", c.FirstSeq+skip).OrderExpr("e.seq ASC")
	}
	return page, sel.Scan(ctx)
}

// listEventsFiltered serves a filtered or time-ordered list with a count and
// an offset over the rows that match.
func (s *Store) listEventsFiltered(ctx context.Context, p *Principal, q ListQuery, f *Filter,
	seenID int64) (*EventPage, error) {
	base := func(sel *bun.SelectQuery) *bun.SelectQuery {
		sel.Where("e.account_id = ?", p.AccountID)
		if f.where != "" {
			sel.Where(f.where, append([]any{seenID, p.UserID}, f.args...)...)
		}
		return sel
	}

	total, err := base(s.db.NewSelect().Model((*Event)(nil))).Count(ctx)
	if err != nil {
		return nil, err
	}
	page := newPage(q, int64(total))
	dir := "ASC"
	if f.descending(true) {
		dir = "DESC"
	}
	order := "e.id " + dir
	if f.orderBy == "created" {
		order = fmt.Sprintf("e.created %s, e.id %s", dir, dir)
	}
	err = base(s.db.NewSelect().Model(&page.Events)).
		OrderExpr(order).
		Limit(int64(q.PageSize)).
		Offset(q.skip()).
		Scan(ctx)
	return page, err
}

// skip is how many items come before the page, saturated so that a huge
// page number means "past the end" rather than wrapping around.
func (q ListQuery) skip() int64 {
	if int64(q.Page-1) > math.MaxInt64/int64(q.PageSize) {
		return math.MaxInt64
	}
	return int64(q.Page-1) * int64(q.PageSize)
}

func newPage(q ListQuery, total int64) *EventPage {
	pages := max(1, int((total+int64(q.PageSize)-1)/int64(q.PageSize)))
	return &EventPage{Events: []Event{}, Page: q.Page, Pages: pages, Results: int(total)}
}

// GetEvent returns one event of the caller's account, or ErrNotFound.
func (s *Store) GetEvent(ctx context.Context, p *Principal, id int64) (*Event, error) {
	var e Event
	err := s.db.NewSelect().Model(&e).
		Where("e.account_id = ? AND e.id = ?", p.AccountID, id).
		Scan(ctx)
	if err != nil {
		return nil, translate(err)
	}
	seenID, err := s.seenWatermark(ctx, s.db, p)
	if err != nil {
		return nil, err
	}
	events := []Event{e}
	if err := s.markFlags(ctx, s.db, p, seenID, events); err != nil {
		return nil, err
	}
	return &events[0], nil
}

// MarkEventSeen marks the event and every earlier one seen for the caller.
// It moves one watermark row, so it costs the same whatever the history,
// and the mark never goes backwards.
func (s *Store) MarkEventSeen(ctx context.Context, p *Principal, id int64) error {
	return s.tx(ctx, func(tx bun.Tx) error {
		if err := eventExists(ctx, tx, p, id); err != nil {
			return err
		}
		_, err := tx.NewRaw(`INSERT INTO event_seen (account_id, user_id, seen_id) VALUES (?, ?, ?)
ON CONFLICT (account_id, user_id)
DO UPDATE SET seen_id = `+s.greatest()+`(event_seen.seen_id, EXCLUDED.seen_id)`,
			p.AccountID, p.UserID, id).Exec(ctx)
		return err
	})
}

// MarkEventRead marks one event read for the caller.
func (s *Store) MarkEventRead(ctx context.Context, p *Principal, id int64) error {
	return s.tx(ctx, func(tx bun.Tx) error {
		if err := eventExists(ctx, tx, p, id); err != nil {
			return err
		}
		_, err := tx.NewRaw(`INSERT INTO event_reads (account_id, user_id, event_id) VALUES (?, ?, ?)
ON CONFLICT DO NOTHING`, p.AccountID, p.UserID, id).Exec(ctx)
		return err
	})
}

func eventExists(ctx context.Context, db bun.IDB, p *Principal, id int64) error {
	ok, err := db.NewSelect().Model((*Event)(nil)).
		Where("e.account_id = ? AND e.id = ?", p.AccountID, id).
		Exists(ctx)
	if err != nil {
		return err
	}
	if !ok {
		return ErrNotFound
	}
	return nil
}

// seenWatermark returns the id of the newest event the caller marked seen,
// or 0.
func (s *Store) seenWatermark(ctx context.Context, db bun.IDB, p *Principal) (int64, error) {
	var ids []int64
	err := db.NewSelect().Table("event_seen").Column("seen_id").
		Where("account_id = ? AND user_id = ?", p.AccountID, p.UserID).
		Scan(ctx, &ids)
	if err != nil || len(ids) == 0 {
		return 0, translate(err)
	}
	return ids[0], nil
}

// markFlags sets Seen and Read on a page of events: seen from the
// watermark, read with one probe of the read marks for the page's ids.
func (s *Store) markFlags(ctx context.Context, db bun.IDB, p *Principal, seenID int64, events []Event) error {
	if len(events) == 0 {
		return nil
	}
	ids := make([]int64, len(events))
	for i := range events {
		events[i].Seen = events[i].ID <= seenID
		ids[i] = events[i].ID
	}
	var read []int64
	err := db.NewSelect().Table("event_reads").Column("event_id").
		Where("account_id = ? AND user_id = ?", p.AccountID, p.UserID).
		Where("event_id IN (?)", bun.In(ids)).
		Scan(ctx, &read)
	if err != nil {
		return translate(err)
	}
	for _, id := range read {
		for i := range events {
			if events[i].ID == id {
				events[i].Read = true
			}
		}
	}
	return nil
}

// insertEvent appends an event to its account's history, taking the next
// seq and change position from the account's counter. The counter row
// stays locked until the transaction ends, so callers make this their last
// statement.
func insertEvent(ctx context.Context, tx bun.Tx, e *Event) error {
	err := tx.NewRaw(`UPDATE event_counters SET last_seq = last_seq + 1, last_rev = last_rev + 1
WHERE account_id = ?
RETURNING last_seq, last_rev`, e.AccountID).Scan(ctx, &e.Seq, &e.Rev)
	if err != nil {
		return fmt.Errorf("db: event counter: %w", err)
	}
	if _, err = tx.NewInsert().Model(e).Returning("id").Exec(ctx); err != nil {
		return err
	}
	return notifyChange(ctx, tx, e.AccountID)
}
