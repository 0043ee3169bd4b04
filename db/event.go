package db

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
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
	NotBefore       *int64   `bun:"not_before"` // when a scheduled event (maintenance) starts at the earliest

	Seen bool `bun:"-"`
	Read bool `bun:"-"`
}

// StartTime is when the work the event describes started, or nil.
func (e *Event) StartTime() *int64 { return e.Started }

// CompleteTime is when the work the event describes ended, finished or
// failed, or nil: an ended event changes no more, so its last update is
// its end.
func (e *Event) CompleteTime() *int64 {
	if e.Status != "finished" && e.Status != "failed" {
		return nil
	}
	return &e.Updated
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
// unless the filter orders otherwise. A bad filter is Invalid. It costs one
// statement (see ListEventsStmt), two for a filtered page past the end.
func (s *Store) ListEvents(ctx context.Context, p *Principal, q ListQuery) (*EventPage, error) {
	f, err := parseFilter(q.Filter, eventFields)
	if err != nil {
		return nil, err
	}
	return s.runEventList(ctx, listEventsStmt(p, q, f), f, q)
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
	st := Stmt{SQL: getEventSQL, Args: []any{p.AccountID, p.UserID, id}}
	var e *Event
	var err error
	if s.pg {
		err = s.queryEvents(ctx, st, func(r rawRow) error {
			e = &Event{AccountID: p.AccountID}
			if err := r.event(1, e); err != nil {
				return err
			}
			seenID, err := r.int(0)
			e.Seen, e.Read = e.ID <= seenID, r.bool(1+eventRowColumns)
			return err
		})
	} else {
		e, err = s.getEventSQLite(ctx, st)
	}
	if err != nil {
		return nil, translate(err)
	}
	if e == nil {
		return nil, ErrNotFound
	}
	return e, nil
}

func (s *Store) getEventSQLite(ctx context.Context, st Stmt) (*Event, error) {
	rows, err := s.query(ctx, s.db.DB, st.SQL, st.Args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, rows.Err()
	}
	e := &Event{AccountID: st.Args[0].(int64)}
	var ev eventScan
	var seenID int64
	dest := append([]any{&seenID}, ev.dest()...)
	if err := rows.Scan(append(dest, &e.Read)...); err != nil {
		return nil, err
	}
	ev.fill(e)
	e.Seen = e.ID <= seenID
	return e, nil
}

const getEventSQL = `SELECT ` + seenWatermark + `,
    ` + eventColumns + `,
    ` + readMark + `
FROM events AS e
WHERE e.account_id = $1 AND e.id = $3`

// MarkEventSeen marks the event and every earlier one seen for the caller.
// It moves one watermark row in one statement, so it costs the same
// whatever the history, and the mark never goes backwards.
func (s *Store) MarkEventSeen(ctx context.Context, p *Principal, id int64) error {
	q := markSeenSQL
	if !s.pg {
		q = strings.Replace(q, "GREATEST(", "MAX(", 1)
	}
	found, err := s.exists(ctx, q, p.AccountID, p.UserID, id)
	if err == nil && !found {
		err = ErrNotFound
	}
	return err
}

// MarkEventSeenStmt and MarkEventReadStmt return the one statement
// MarkEventSeen and MarkEventRead send on PostgreSQL (when the event is
// there and, for read, not yet marked). The bench replays them.
func MarkEventSeenStmt(p *Principal, id int64) Stmt {
	return Stmt{SQL: markSeenSQL, Args: []any{p.AccountID, p.UserID, id}}
}

// MarkEventReadStmt: see MarkEventSeenStmt.
func MarkEventReadStmt(p *Principal, id int64) Stmt {
	return Stmt{SQL: markReadSQL, Args: []any{p.AccountID, p.UserID, id}}
}

// markSeenSQL raises the caller's watermark to an event of the account;
// it returns no row when there is no such event.
const markSeenSQL = `INSERT INTO event_seen (account_id, user_id, seen_id)
SELECT e.account_id, $2, e.id FROM events AS e
WHERE e.account_id = $1 AND e.id = $3
ON CONFLICT (account_id, user_id)
DO UPDATE SET seen_id = GREATEST(event_seen.seen_id, EXCLUDED.seen_id)
RETURNING seen_id`

// MarkEventRead marks one event read for the caller: one row, written
// once; marking it again writes nothing.
func (s *Store) MarkEventRead(ctx context.Context, p *Principal, id int64) error {
	added, err := s.exists(ctx, markReadSQL, p.AccountID, p.UserID, id)
	if err != nil || added {
		return err
	}
	// Already read, or no such event: only a repeated mark gets here.
	found, err := s.exists(ctx, `SELECT 1 FROM events WHERE account_id = $1 AND id = $2`,
		p.AccountID, id)
	if err == nil && !found {
		err = ErrNotFound
	}
	return err
}

// markReadSQL adds the caller's read mark on an event of the account; it
// returns no row when the mark was there already or there is no such event.
const markReadSQL = `INSERT INTO event_reads (account_id, user_id, event_id)
SELECT e.account_id, $2, e.id FROM events AS e
WHERE e.account_id = $1 AND e.id = $3
ON CONFLICT (account_id, user_id, event_id) DO NOTHING
RETURNING event_id`

// exists runs a statement and reports whether it returned a row.
func (s *Store) exists(ctx context.Context, query string, args ...any) (bool, error) {
	rows, err := s.query(ctx, s.db.DB, query, args...)
	if err != nil {
		return false, translate(err)
	}
	defer rows.Close()
	found := rows.Next()
	return found, translate(rows.Err())
}

// insertEvent appends an event to its account's history. See
// insertEventJob.
func insertEvent(ctx context.Context, tx bun.Tx, e *Event) error {
	return insertEventJob(ctx, tx, e, nil)
}

// insertEventJob appends an event to its account's history, and queues j
// when it is not nil, with the event's id. The next seq and change
// position (rev) come from the account's counter, whose row stays locked
// until the transaction ends: callers make this their last statement, and
// on PostgreSQL it is one statement, which also announces the change
// (pg_notify, delivered at commit), so the lock is held for that statement
// and the commit only. The event's id is drawn after the lock is taken, so
// ids follow seq within an account and the list's seq order is its id
// order.
func insertEventJob(ctx context.Context, tx bun.Tx, e *Event, j *Job) error {
	st := insertEventStmt(e, j)
	if tx.Dialect().Name() != dialect.PG {
		return insertEventSQLite(ctx, tx, e, j, st.Args)
	}
	rows, err := tx.Tx.QueryContext(ctx, st.SQL,
		append([]any{pgx.QueryExecModeCacheStatement}, st.Args...)...)
	if err != nil {
		return fmt.Errorf("db: insert event: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return fmt.Errorf("db: insert event: %w", err)
		}
		return fmt.Errorf("db: insert event: account %d has no event counter", e.AccountID)
	}
	if err := scanInserted(rows, e, j); err != nil {
		return fmt.Errorf("db: insert event: %w", err)
	}
	return rows.Close()
}

// scanInserted reads what insertEventStmt returns: the event's id, seq,
// rev and time, and its job's id.
func scanInserted(rows interface{ Scan(...any) error }, e *Event, j *Job) error {
	dest := []any{&e.ID, &e.Seq, &e.Rev, &e.Created}
	if j != nil {
		dest = append(dest, &j.ID)
	}
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	e.Updated = max(e.Updated, e.Created) // as the statement stored it
	if j != nil {
		j.AccountID, j.EventID = e.AccountID, e.ID
	}
	return nil
}

// insertEventStmt is the PostgreSQL statement of insertEvent.
func insertEventStmt(e *Event, j *Job) Stmt {
	args := []any{e.AccountID, e.Action, e.Status, e.Username, e.Message, e.EntityType,
		e.EntityID, e.EntityLabel, e.EntityURL, e.SecondaryJSON, e.PercentComplete,
		e.TimeRemaining, e.Duration, e.Created, e.Started, e.Updated}
	if j == nil {
		return Stmt{SQL: insertEventSQL, Args: args}
	}
	args = append(args, j.LinodeID, j.Action, j.Params, j.State, j.Created)
	return Stmt{SQL: insertEventJobSQL, Args: args}
}

// seenMark returns the id of the newest event the caller marked seen, or
// 0: the seenWatermark subquery, for the stream's bun queries.
func (s *Store) seenMark(ctx context.Context, db bun.IDB, p *Principal) (int64, error) {
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
func (s *Store) markFlags(ctx context.Context, db bun.IDB, p *Principal, seenID int64,
	events []Event) error {
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

// insertEventSQLite does what insertEvent does in three statements:
// SQLite runs one writer at a time anyway.
func insertEventSQLite(ctx context.Context, tx bun.Tx, e *Event, j *Job,
	args []any) error {
	args = args[:16]
	err := tx.NewRaw(`UPDATE event_counters SET last_seq = last_seq + 1, last_rev = last_rev + 1
WHERE account_id = ?
RETURNING last_seq, last_rev`, e.AccountID).Scan(ctx, &e.Seq, &e.Rev)
	if err != nil {
		return fmt.Errorf("db: event counter: %w", err)
	}
	rows, err := tx.Tx.QueryContext(ctx, `INSERT INTO events (`+insertEventColumns+`)
VALUES ($1, $17, $18, `+insertEventValues+`)
RETURNING id`, append(args, e.Seq, e.Rev)...)
	if err != nil {
		return fmt.Errorf("db: insert event: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		return fmt.Errorf("db: insert event: %w", rows.Err())
	}
	if err := rows.Scan(&e.ID); err != nil {
		return err
	}
	rows.Close()
	if j != nil {
		j.AccountID, j.EventID = e.AccountID, e.ID
		if _, err = tx.NewInsert().Model(j).Returning("id").Exec(ctx); err != nil {
			return err
		}
	}
	return nil // SQLite has one process: its streams poll the counter
}

const (
	insertEventColumns = `account_id, seq, rev, action, status, username, message,
    entity_type, entity_id, entity_label, entity_url, secondary,
    percent_complete, time_remaining, duration, created, started, updated`
	insertEventValues = `$2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16`
)

// appendEvent is the part of a statement that takes the account's next
// seq and rev (when cond holds) and inserts the event: the CTEs c, t and
// e. The event is created no earlier than the account's previous one (t):
// its time was read before the statement waited for the counter, behind
// other writers, and clients that poll by created (as linodego's waiters
// do) must find the events in the order of their ids.
// Arguments: account, then the event's columns after rev.
func appendEvent(cond string) string {
	return `c AS (
    UPDATE event_counters SET last_seq = last_seq + 1, last_rev = last_rev + 1
    WHERE account_id = $1` + cond + `
    RETURNING last_seq, last_rev
), t AS (
    SELECT GREATEST($14::bigint, COALESCE((
        SELECT p.created FROM events AS p WHERE p.account_id = $1 AND p.seq = c.last_seq - 1
    ), $14::bigint)) AS at
    FROM c
), e AS (
    INSERT INTO events (` + insertEventColumns + `)
    SELECT $1, c.last_seq, c.last_rev, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
        t.at, $15, GREATEST($16::bigint, t.at)
    FROM c, t
    RETURNING id, seq, rev, created
)`
}

// insertEventSQL takes the next seq and rev, inserts the event and
// announces the change, in one statement. Arguments: account, then the
// event's columns after rev.
var insertEventSQL = `WITH ` + appendEvent("") + `
SELECT e.id, e.seq, e.rev, e.created FROM e, ` + notifyEvents

// insertEventJobSQL is insertEventSQL that also queues the event's job.
// Arguments: those of insertEventSQL, then linode, action, params, state
// and created of the job.
var insertEventJobSQL = `WITH ` + appendEvent("") + `, j AS (
    INSERT INTO jobs (account_id, linode_id, event_id, action, params, state, created)
    SELECT $1, $17, e.id, $18, $19, $20, $21 FROM e
    RETURNING id
)
SELECT e.id, e.seq, e.rev, e.created, j.id FROM e, j, ` + notifyEvents

// notifyEvents announces at commit that account $1's events changed, as
// notifyChange does; a FROM item, so that the insert stays one statement.
const notifyEvents = `pg_notify('` + notifyChannel + `', $1::bigint::text) AS n`
