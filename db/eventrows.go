package db

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// On PostgreSQL the event statements are read through pgx itself rather
// than database/sql, which converted every column of every row through an
// interface and allocated each string twice: a profile of the list put a
// quarter of the server's CPU there. A list's rows share an eventArena: a
// few blocks hold the text and the nullable values of the whole page.

// eventRowColumns is how many columns eventColumns has.
const eventRowColumns = 19

// queryEvents runs a statement on a pooled connection through pgx,
// prepared, and calls fn with each row's raw values in PostgreSQL's wire
// formats. fn must not keep the values.
func (s *Store) queryEvents(ctx context.Context, st Stmt, fn func(r rawRow) error) error {
	conn, err := s.db.DB.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		rows, err := dc.(*stdlib.Conn).Conn().Query(ctx, st.SQL,
			append([]any{pgx.QueryExecModeCacheStatement}, st.Args...)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		r := rawRow{fields: rows.FieldDescriptions()}
		for rows.Next() {
			r.values = rows.RawValues()
			if err := fn(r); err != nil {
				return err
			}
		}
		return rows.Err()
	})
}

// rawRow is one row as PostgreSQL sent it.
type rawRow struct {
	fields []pgconn.FieldDescription
	values [][]byte
}

func (r rawRow) null(i int) bool { return r.values[i] == nil }

// int decodes an integer column of any width, text or binary. NULL is 0.
func (r rawRow) int(i int) (int64, error) {
	v := r.values[i]
	if v == nil {
		return 0, nil
	}
	if r.fields[i].Format == pgx.TextFormatCode {
		return strconv.ParseInt(string(v), 10, 64)
	}
	switch len(v) {
	case 8:
		return int64(binary.BigEndian.Uint64(v)), nil
	case 4:
		return int64(int32(binary.BigEndian.Uint32(v))), nil
	case 2:
		return int64(int16(binary.BigEndian.Uint16(v))), nil
	}
	return 0, fmt.Errorf("db: column %s: %d bytes for an integer", r.fields[i].Name, len(v))
}

func (r rawRow) float(i int) (float64, error) {
	v := r.values[i]
	if r.fields[i].Format == pgx.TextFormatCode {
		return strconv.ParseFloat(string(v), 64)
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("db: column %s: %d bytes for a float8", r.fields[i].Name, len(v))
	}
	return math.Float64frombits(binary.BigEndian.Uint64(v)), nil
}

func (r rawRow) bool(i int) bool {
	v := r.values[i]
	return len(v) == 1 && (v[0] == 1 || v[0] == 't')
}

// eventValues backs an event's nullable fields, so that a row allocates
// them at once.
type eventValues struct {
	username, message, entityType, label, url, secondary string
	entityID, started, notBefore                         int64
	percent, remaining                                   int
	duration                                             float64
}

// eventArena backs the text and nullable fields of the events of one
// list, so that a page of them allocates a few blocks rather than two for
// each row. The zero value is ready; an arena is not safe for concurrent use.
type eventArena struct {
	rows int             // how many rows to expect; sizes the first blocks
	text strings.Builder // the rows' text, end to end; its String does not copy
	vals []eventValues   // never grown in place: fields point into it
}

// newEventArena returns an arena for a list of up to rows events.
func newEventArena(rows int) *eventArena { return &eventArena{rows: min(rows, 100)} }

// arenaChunk is the least an arena allocates for text at once, after its
// first block.
const arenaChunk = 8 << 10

// values returns a fresh eventValues of the arena.
func (a *eventArena) values() *eventValues {
	if len(a.vals) == cap(a.vals) {
		a.vals = make([]eventValues, 0, max(8, a.rows, 2*cap(a.vals)))
	}
	a.vals = a.vals[:len(a.vals)+1]
	return &a.vals[len(a.vals)-1]
}

// textOf returns the given columns of r, from column i on, as one string
// that the caller slices into fields. Earlier strings of the arena stay
// valid: a builder never changes the bytes it has handed out.
func (a *eventArena) textOf(r rawRow, i int, cols []int) string {
	n := 0
	for _, c := range cols {
		n += len(r.values[i+c])
	}
	if a.text.Cap()-a.text.Len() < n {
		size := max(n, arenaChunk)
		if a.text.Cap() == 0 { // the first row stands for the rest
			size = max(n, n*a.rows*5/4)
		}
		a.text = strings.Builder{}
		a.text.Grow(size)
	}
	start := a.text.Len()
	for _, c := range cols {
		a.text.Write(r.values[i+c])
	}
	return a.text.String()[start:]
}

// textColumns are the text columns of eventColumns, in order.
var textColumns = []int{2, 3, 4, 5, 6, 8, 9, 10}

// event decodes the eventColumns starting at column i into e, in an arena
// of its own. Text and bytea alike are text here: the event columns are
// all text.
func (r rawRow) event(i int, e *Event) error { return r.eventIn(i, e, &eventArena{}) }

// eventIn is event with the text and nullable values kept in a.
func (r rawRow) eventIn(i int, e *Event, a *eventArena) error {
	// All the row's text goes into one string, which the fields slice.
	all := a.textOf(r, i, textColumns)
	next := func(c int) string {
		s := all[:len(r.values[i+c])]
		all = all[len(s):]
		return s
	}
	v := a.values()
	e.Action, e.Status = next(2), next(3)
	opt := func(c int, dst *string) *string {
		*dst = next(c)
		if r.null(i + c) {
			return nil
		}
		return dst
	}
	e.Username, e.Message = opt(4, &v.username), opt(5, &v.message)
	e.EntityType = opt(6, &v.entityType)
	e.EntityLabel, e.EntityURL = opt(8, &v.label), opt(9, &v.url)
	e.SecondaryJSON = opt(10, &v.secondary)

	var err error
	ints := []struct {
		col int
		dst *int64
	}{{0, &e.ID}, {1, &e.Seq}, {7, &v.entityID}, {14, &e.Created}, {15, &v.started},
		{16, &e.Updated}, {17, &e.Rev}}
	for _, x := range ints {
		if *x.dst, err = r.int(i + x.col); err != nil {
			return err
		}
	}
	if !r.null(i + 7) {
		e.EntityID = &v.entityID
	}
	if !r.null(i + 15) {
		e.Started = &v.started
	}
	if !r.null(i + 18) {
		if v.notBefore, err = r.int(i + 18); err != nil {
			return err
		}
		e.NotBefore = &v.notBefore
	}
	for _, x := range []struct {
		col int
		dst **int
		val *int
	}{{11, &e.PercentComplete, &v.percent}, {12, &e.TimeRemaining, &v.remaining}} {
		if r.null(i + x.col) {
			continue
		}
		n, err := r.int(i + x.col)
		if err != nil {
			return err
		}
		*x.val, *x.dst = int(n), x.val
	}
	if !r.null(i + 13) {
		if v.duration, err = r.float(i + 13); err != nil {
			return err
		}
		e.Duration = &v.duration
	}
	return nil
}

// scanEventRows reads a list statement's rows through database/sql, as
// SQLite answers them, and counts them.
func scanEventRows(rows *sql.Rows, events []Event, accountID int64) ([]Event, sql.NullInt64,
	int, error) {
	var total sql.NullInt64
	n := 0
	for rows.Next() {
		n++
		var seenID int64
		var e Event
		var ev eventScan
		dest := append([]any{&total, &seenID}, ev.dest()...)
		if err := rows.Scan(append(dest, &e.Read)...); err != nil {
			return nil, total, n, err
		}
		if !ev.id.Valid {
			continue
		}
		ev.fill(&e)
		e.AccountID, e.Seen = accountID, e.ID <= seenID
		events = append(events, e)
	}
	return events, total, n, rows.Err()
}

// eventScan holds the nullable columns of an event while a row is scanned.
type eventScan struct {
	id                           sql.NullInt64
	username, message            sql.NullString
	entityType, label, url, sec  sql.NullString
	entityID, started, notBefore sql.NullInt64
	percent, remaining           sql.NullInt32
	duration                     sql.NullFloat64
	seq, created, updated, rev   sql.NullInt64
	action, status               sql.NullString
}

// dest returns the scan destinations of eventColumns.
func (v *eventScan) dest() []any {
	return []any{&v.id, &v.seq, &v.action, &v.status, &v.username, &v.message,
		&v.entityType, &v.entityID, &v.label, &v.url, &v.sec,
		&v.percent, &v.remaining, &v.duration, &v.created, &v.started, &v.updated, &v.rev, &v.notBefore}
}

// fill copies a scanned row into e.
func (v *eventScan) fill(e *Event) {
	e.ID, e.Seq, e.Action, e.Status = v.id.Int64, v.seq.Int64, v.action.String, v.status.String
	e.Created, e.Updated, e.Rev = v.created.Int64, v.updated.Int64, v.rev.Int64
	e.Username, e.Message = strPtr(v.username), strPtr(v.message)
	e.EntityType, e.EntityLabel, e.EntityURL = strPtr(v.entityType), strPtr(v.label), strPtr(v.url)
	e.SecondaryJSON = strPtr(v.sec)
	if v.entityID.Valid {
		e.EntityID = &v.entityID.Int64
	}
	if v.started.Valid {
		e.Started = &v.started.Int64
	}
	if v.notBefore.Valid {
		e.NotBefore = &v.notBefore.Int64
	}
	if v.percent.Valid {
		n := int(v.percent.Int32)
		e.PercentComplete = &n
	}
	if v.remaining.Valid {
		n := int(v.remaining.Int32)
		e.TimeRemaining = &n
	}
	if v.duration.Valid {
		e.Duration = &v.duration.Float64
	}
}

func strPtr(v sql.NullString) *string {
	if !v.Valid {
		return nil
	}
	return &v.String
}
