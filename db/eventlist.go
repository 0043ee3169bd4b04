package db

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
)

// Stmt is one statement as the store sends it: SQL with $n placeholders
// and its arguments.
type Stmt struct {
	SQL  string
	Args []any
}

// ListEventsStmt returns the one statement ListEvents sends for q: the
// check that the caller's token is not revoked, the page, its envelope
// counts, the caller's seen watermark and read marks come back together,
// in one round trip. A bad filter is Invalid. The
// bench runs the same statement straight against PostgreSQL to measure the
// database's ceiling.
func ListEventsStmt(p *Principal, q ListQuery) (Stmt, error) {
	f, err := parseFilter(q.Filter, eventFields)
	if err != nil {
		return Stmt{}, err
	}
	return listEventsStmt(p, q, f), nil
}

func listEventsStmt(p *Principal, q ListQuery, f *Filter) Stmt {
	// A page past any account's end stays past it: q.skip saturates, and
	// 2^62 keeps first_seq + skip clear of overflow in the statement.
	skip := min(q.skip(), 1<<62)
	args := []any{p.AccountID, p.UserID, int64(q.PageSize), skip, p.TokenID}
	switch {
	case f == nil || (f.where == "" && f.orderBy != "created" && f.descending(true)):
		return Stmt{SQL: pageBySeqDesc, Args: args}
	case f.where == "" && f.orderBy != "created":
		return Stmt{SQL: pageBySeqAsc, Args: args}
	}
	return Stmt{SQL: filteredPageSQL(f), Args: append(args, f.args...)}
}

// eventColumns are the columns of an event the list and get statements
// read, in the order scanEvent expects.
const eventColumns = `e.id, e.seq, e.action, e.status, e.username, e.message,
    e.entity_type, e.entity_id, e.entity_label, e.entity_url, e.secondary,
    e.percent_complete, e.time_remaining, e.duration, e.created, e.started, e.updated,
    e.rev, e.not_before`

// readMark tells whether the caller ($2) marked event e read. It is
// evaluated on the page's rows only, outside the LIMIT: one probe per row.
const readMark = `EXISTS (
        SELECT 1 FROM event_reads AS r
        WHERE r.account_id = $1 AND r.user_id = $2 AND r.event_id = e.id)`

// tokenLiveAt holds while the caller's token (the argument placeholder
// token, of account $1) is not revoked. A statement that checks it in its
// own snapshot refuses a token revoked by any process from the next
// statement on, even when this process took the token's other facts from
// its cache (see Store.IdentifyToken).
func tokenLiveAt(token string) string {
	return `EXISTS (
        SELECT 1 FROM tokens WHERE account_id = $1 AND id = ` + token + ` AND NOT revoked)`
}

// tokenLive is tokenLiveAt for the lists, whose token is $5.
var tokenLive = tokenLiveAt("$5")

// seenWatermark is the id of the newest event the caller marked seen, or 0.
const seenWatermark = `COALESCE((
        SELECT seen_id FROM event_seen
        WHERE account_id = $1 AND user_id = $2), 0)`

// pageBySeq serves an unfiltered page from the account's dense sequence:
// the page is the n events at or below a seq computed from the counter, found
// through the (account_id, seq) index, so every page costs the same
// whatever its depth or the account's size. Rows below first_seq are
// deleted in the transaction that raises it, so no lower bound is needed
// (a second bound made the planner misestimate deep pages). The counter is
// read in the same snapshot as the rows, so results and pages always agree
// with the data. A revoked token makes the statement return no row.
// Arguments: account, user, page size, rows to skip, token.
func pageBySeq(bound, order string) string {
	return `WITH c AS (
    SELECT last_seq, first_seq FROM event_counters
    WHERE account_id = $1 AND ` + tokenLive + `
), page AS (
    SELECT * FROM events
    WHERE account_id = $1 AND seq ` + bound + `
    ORDER BY seq ` + order + `
    LIMIT $3
)
SELECT c.last_seq - c.first_seq + 1, ` + seenWatermark + `,
    ` + eventColumns + `,
    ` + readMark + `
FROM c
LEFT JOIN page AS e ON true
ORDER BY e.seq ` + order
}

var (
	pageBySeqDesc = pageBySeq("<= (SELECT last_seq FROM c) - $4", "DESC")
	pageBySeqAsc  = pageBySeq(">= (SELECT first_seq FROM c) + $4", "ASC")
)

// filteredPageSQL serves a filtered or time-ordered page with an offset
// over the matching rows, counted by a window over the same scan.
// A revoked token makes it return no row. Arguments: account, user, page
// size, offset, token, then the filter's.
func filteredPageSQL(f *Filter) string {
	order := filterOrder(f)
	return `WITH w AS (
    SELECT ` + seenWatermark + ` AS seen_id
    WHERE ` + tokenLive + `
), page AS (
    SELECT e.*, count(*) OVER () AS total
    FROM events AS e
    WHERE e.account_id = $1 AND (` + placeholders(f.where, 6) + `)
    ORDER BY ` + order + `
    LIMIT $3 OFFSET $4
)
SELECT e.total, w.seen_id,
    ` + eventColumns + `,
    ` + readMark + `
FROM w
LEFT JOIN page AS e ON true
ORDER BY ` + order
}

// filteredCountSQL counts the rows of a filtered list; ListEvents asks for
// it only when a page past the end came back empty, without a count.
// Arguments: account, user, then the filter's.
func filteredCountSQL(f *Filter) string {
	return `WITH w AS (
    SELECT ` + seenWatermark + ` AS seen_id
)
SELECT count(*) FROM events AS e
WHERE e.account_id = $1 AND (` + placeholders(f.where, 3) + `)`
}

func filterOrder(f *Filter) string {
	dir := "ASC"
	if f.descending(true) {
		dir = "DESC"
	}
	if f.orderBy == "created" {
		return "e.created " + dir + ", e.id " + dir
	}
	return "e.id " + dir
}

// placeholders turns the parser's numbered placeholders into the
// statement's: ?0 is the seen watermark, ?1 the user ($2), and ?2, ?3, …
// the filter's arguments, numbered from $first on. The clause holds no
// literal text from the request, so every ? is a placeholder.
func placeholders(where string, first int) string {
	if where == "" {
		return "true"
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(where, '?')
		if i < 0 {
			b.WriteString(where)
			return b.String()
		}
		b.WriteString(where[:i])
		j := i + 1
		for j < len(where) && where[j] >= '0' && where[j] <= '9' {
			j++
		}
		n, _ := strconv.Atoi(where[i+1 : j])
		switch n {
		case 0:
			b.WriteString("(SELECT seen_id FROM w)")
		case 1:
			b.WriteString("$2")
		default:
			b.WriteString("$" + strconv.Itoa(n-2+first))
		}
		where = where[j:]
	}
}

// runEventList runs a list statement and scans its rows: every row carries
// the total and the seen watermark, and a row without an event (the LEFT
// JOIN of an empty page) only those. No row at all means the token was
// revoked: Unauthorized. A filtered page that came back empty without a
// total is counted separately.
func (s *Store) runEventList(ctx context.Context, st Stmt, f *Filter,
	q ListQuery) (*EventPage, error) {
	events := make([]Event, 0, q.PageSize)
	account := st.Args[0].(int64)
	var total sql.NullInt64
	var n int
	var err error
	if s.pg {
		arena := newEventArena(q.PageSize)
		err = s.queryEvents(ctx, st, func(r rawRow) error {
			n++
			t, err := r.int(0)
			total = sql.NullInt64{Int64: t, Valid: !r.null(0)}
			if err != nil || r.null(2) { // the empty page's one row has no event
				return err
			}
			events = append(events, Event{AccountID: account})
			e := &events[len(events)-1]
			if err := r.eventIn(2, e, arena); err != nil {
				return err
			}
			seenID, err := r.int(1)
			e.Seen, e.Read = e.ID <= seenID, r.bool(2+eventRowColumns)
			return err
		})
	} else {
		var rows *sql.Rows
		if rows, err = s.query(ctx, s.db.DB, st.SQL, st.Args...); err == nil {
			events, total, n, err = scanEventRows(rows, events, account)
			rows.Close()
		}
	}
	if err != nil {
		return nil, translate(err)
	}
	if n == 0 {
		return nil, errInvalidToken()
	}

	if !total.Valid && q.Page > 1 && f != nil {
		if total.Int64, err = s.countEvents(ctx, st, f); err != nil {
			return nil, err
		}
	}
	page := newPage(q, total.Int64)
	page.Events = events
	return page, nil
}

func (s *Store) countEvents(ctx context.Context, st Stmt, f *Filter) (int64, error) {
	args := append([]any{st.Args[0], st.Args[1]}, f.args...)
	rows, err := s.query(ctx, s.db.DB, filteredCountSQL(f), args...)
	if err != nil {
		return 0, translate(err)
	}
	defer rows.Close()
	var n int64
	if rows.Next() {
		err = rows.Scan(&n)
	}
	if err == nil {
		err = rows.Err()
	}
	return n, translate(err)
}
