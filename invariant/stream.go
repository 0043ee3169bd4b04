package invariant

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
)

// A Stream follows every commit of a database through a logical
// replication slot (plugin test_decoding, so the server needs
// wal_level=logical) and checks each one, in commit order, against the
// promises that are about history: the busy rule at the moment a job is
// accepted, one event per job, busy counts after every commit, marks that
// only move forward, and events that end once.
type Stream struct {
	db      *sql.DB
	slot    string
	tl      *Timeline
	applied uint64 // position of the last commit checked
}

// CreateSlot creates the logical replication slot a Stream reads. Create
// it before the first commit that is to be checked.
func CreateSlot(ctx context.Context, url, slot string) error {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return fmt.Errorf("invariant: %w", err)
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, `SELECT pg_create_logical_replication_slot($1, 'test_decoding')`, slot)
	if err != nil {
		return fmt.Errorf("invariant: create slot: %w", err)
	}
	return nil
}

// OpenStream returns a Stream of the slot; the caller closes it.
func OpenStream(url, slot string) (*Stream, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, fmt.Errorf("invariant: %w", err)
	}
	db.SetMaxOpenConns(1)
	return &Stream{db: db, slot: slot, tl: NewTimeline()}, nil
}

// Close releases the connection; the slot stays.
func (s *Stream) Close() error { return s.db.Close() }

// pollBatch is how many changes one read of the slot asks for at most;
// PostgreSQL ends a read at a commit, so it may return a few more.
const pollBatch = 20000

// Poll reads and checks every commit made since the last Poll, and
// returns how many changes it read. It peeks at the slot, checks what it
// read, and only then moves the slot past it; a commit it reads again
// after a failed move is checked once. An error (the database being
// down, say) loses nothing.
//
// NOTE: pg_logical_slot_get_changes moves the slot before it sends its
// rows, so commits whose rows were lost with the connection (PostgreSQL
// restarting mid-read) were never checked, and the commits after them
// showed busy counts and pending jobs that had never been wrong.
func (s *Stream) Poll(ctx context.Context) (int, error) {
	total := 0
	for {
		lines, err := s.peek(ctx)
		if err != nil {
			return total, err
		}
		total += len(lines)
		if last := s.apply(lines); last != "" {
			_, err := s.db.ExecContext(ctx, `SELECT pg_replication_slot_advance($1, $2::pg_lsn)`, s.slot, last)
			if err != nil {
				return total, fmt.Errorf("invariant: move slot: %w", err)
			}
		}
		if len(lines) < pollBatch {
			return total, nil
		}
	}
}

// slotLine is one line test_decoding wrote, with its position.
type slotLine struct{ lsn, data string }

// peek reads the slot's next changes, whole commits, without moving it.
func (s *Stream) peek(ctx context.Context) ([]slotLine, error) {
	rs, err := s.db.QueryContext(ctx, `
SELECT lsn::text, data FROM pg_logical_slot_peek_changes($1, NULL, $2,
    'skip-empty-xacts', '1', 'include-xids', '0')`, s.slot, pollBatch)
	if err != nil {
		return nil, fmt.Errorf("invariant: read slot: %w", err)
	}
	defer rs.Close()
	var lines []slotLine
	for rs.Next() {
		var l slotLine
		if err := rs.Scan(&l.lsn, &l.data); err != nil {
			return nil, fmt.Errorf("invariant: read slot: %w", err)
		}
		lines = append(lines, l)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("invariant: read slot: %w", err)
	}
	return lines, nil
}

// apply checks the commits among lines that were not checked before, in
// order, and returns the position of the last commit among lines, or ""
// when there is none. Commit positions only grow, so a commit at or
// before the last one checked was checked already.
func (s *Stream) apply(lines []slotLine) string {
	last, start := "", 0
	for i, l := range lines {
		switch {
		case l.data == "BEGIN" || strings.HasPrefix(l.data, "BEGIN "):
			start = i
		case l.data == "COMMIT" || strings.HasPrefix(l.data, "COMMIT "):
			last = l.lsn
			if at := parseLSN(l.lsn); at > s.applied {
				for _, m := range lines[start : i+1] {
					s.tl.Line(m.data)
				}
				s.applied = at
			}
		}
	}
	return last
}

// parseLSN reads a PostgreSQL log position such as 16/B374D848; anything
// else is 0.
func parseLSN(s string) uint64 {
	hi, lo, ok := strings.Cut(s, "/")
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if !ok || err1 != nil || err2 != nil {
		return 0
	}
	return h<<32 | l
}

// Violations returns what the commits read so far broke.
func (s *Stream) Violations() []Violation { return s.tl.Violations() }

// Commits returns how many commits were checked.
func (s *Stream) Commits() int { return s.tl.commits }

// A Timeline replays the lines test_decoding writes, one commit at a
// time, keeping the rows it needs: the jobs, the Linodes' busy counts,
// the seen marks and which events have ended.
type Timeline struct {
	jobs    map[int64]jobRow           // by job id
	live    map[int64]map[int64]string // Linode id → its jobs' ids → action
	pending map[int64]int              // Linode id → jobs_pending, for Linodes that exist
	seen    map[[2]int64]int64         // (account, user) → seen watermark
	ended   map[int64]string           // event id → finished or failed

	tx      []change
	commits int
	vs      []Violation
}

type jobRow struct {
	linode, event int64
	action        string
}

// change is one row change of a commit.
type change struct {
	table, op string
	cols      map[string]string // column → value as text ("" for null)
}

// NewTimeline returns an empty Timeline.
func NewTimeline() *Timeline {
	return &Timeline{
		jobs: map[int64]jobRow{}, live: map[int64]map[int64]string{}, pending: map[int64]int{},
		seen: map[[2]int64]int64{}, ended: map[int64]string{},
	}
}

// Violations returns what the commits replayed so far broke.
func (t *Timeline) Violations() []Violation { return t.vs }

// Line takes one line of test_decoding output.
func (t *Timeline) Line(line string) {
	switch {
	case line == "BEGIN" || strings.HasPrefix(line, "BEGIN "):
		t.tx = t.tx[:0]
	case line == "COMMIT" || strings.HasPrefix(line, "COMMIT "):
		t.commit()
		t.tx = t.tx[:0]
	case strings.HasPrefix(line, "table "):
		if c, ok := parseChange(line); ok {
			t.tx = append(t.tx, c)
		}
	}
}

// commit checks one transaction and applies it.
func (t *Timeline) commit() {
	t.commits++
	touched := map[int64]bool{}
	jobEvents := map[int64]string{} // event id → action, of the jobs inserted
	newEvents := map[int64]change{} // the scheduled events inserted
	for _, c := range t.tx {
		switch c.table + " " + c.op {
		case "jobs INSERT":
			j := jobRow{linode: num(c, "linode_id"), event: num(c, "event_id"), action: c.cols["action"]}
			id := num(c, "id")
			if j.action != "linode_boot" && len(t.live[j.linode]) > 0 {
				t.add(violation(KindBusy, "job %d (%s) accepted on Linode %d while jobs %v were pending",
					id, j.action, j.linode, t.live[j.linode]))
			}
			t.jobs[id] = j
			if t.live[j.linode] == nil {
				t.live[j.linode] = map[int64]string{}
			}
			t.live[j.linode][id] = j.action
			jobEvents[j.event] = j.action
			touched[j.linode] = true
		case "jobs DELETE":
			id := num(c, "id")
			if j, ok := t.jobs[id]; ok {
				delete(t.live[j.linode], id)
				delete(t.jobs, id)
				touched[j.linode] = true
			}
		case "linodes INSERT", "linodes UPDATE":
			id := num(c, "id")
			t.pending[id] = int(num(c, "jobs_pending"))
			touched[id] = true
		case "linodes DELETE":
			id := num(c, "id")
			delete(t.pending, id)
			touched[id] = true
			if len(t.live[id]) > 0 {
				t.add(violation(KindPending, "Linode %d was removed with jobs %v pending", id, t.live[id]))
			}
		case "events INSERT":
			if jobActions[c.cols["action"]] {
				newEvents[num(c, "id")] = c
			}
		case "events UPDATE":
			t.eventUpdate(c)
		case "event_seen INSERT", "event_seen UPDATE":
			k := [2]int64{num(c, "account_id"), num(c, "user_id")}
			if v := num(c, "seen_id"); v < t.seen[k] {
				t.add(violation(KindMarks, "user %d/%d: seen went from %d back to %d", k[0], k[1], t.seen[k], v))
			} else {
				t.seen[k] = v
			}
		case "event_reads DELETE":
			t.add(violation(KindMarks, "a read mark was removed: %v", c.cols))
		}
	}

	for id, c := range newEvents {
		if action, ok := jobEvents[id]; !ok || action != c.cols["action"] {
			t.add(violation(KindOneEvent, "event %d (%s of Linode %s) was recorded without its job",
				id, c.cols["action"], c.cols["entity_id"]))
		}
	}
	for id, action := range jobEvents {
		if _, ok := newEvents[id]; !ok {
			t.add(violation(KindOneEvent, "a %s job was queued without its event %d", action, id))
		}
	}
	for id := range touched {
		n, exists := t.pending[id]
		if exists && n != len(t.live[id]) {
			t.add(violation(KindPending, "Linode %d counts %d pending jobs after a commit, has %d: %v",
				id, n, len(t.live[id]), t.live[id]))
		}
	}
}

// eventUpdate checks that an event that ended stays as it ended.
func (t *Timeline) eventUpdate(c change) {
	id, status := num(c, "id"), c.cols["status"]
	if was, ok := t.ended[id]; ok && status != was {
		t.add(violation(KindJobTwice, "event %d (%s) went from %s to %s", id, c.cols["action"], was, status))
		return
	}
	if status == "finished" || status == "failed" {
		t.ended[id] = status
	}
}

// maxViolations bounds what a Timeline keeps: past it, more of the same
// tells nothing new.
const maxViolations = 1000

func (t *Timeline) add(v Violation) {
	if len(t.vs) < maxViolations {
		t.vs = append(t.vs, v)
	}
}

func num(c change, col string) int64 {
	n, _ := strconv.ParseInt(c.cols[col], 10, 64)
	return n
}

// parseChange reads one row change line of test_decoding:
//
//	table public.jobs: INSERT: id[bigint]:5 action[text]:'linode_boot' lease_owner[text]:null
//
// An UPDATE with its old key shows "old-key: … new-tuple: …"; the new
// tuple is what counts.
func parseChange(line string) (change, bool) {
	rest, ok := strings.CutPrefix(line, "table ")
	if !ok {
		return change{}, false
	}
	name, rest, ok := strings.Cut(rest, ": ")
	if !ok {
		return change{}, false
	}
	op, rest, ok := strings.Cut(rest, ": ")
	if !ok {
		op, rest = strings.TrimSuffix(rest, ":"), ""
	}
	if _, after, found := strings.Cut(rest, "new-tuple: "); found {
		rest = after
	}
	_, table, _ := strings.Cut(name, ".")
	c := change{table: table, op: op, cols: map[string]string{}}
	for rest != "" {
		col, r, ok := strings.Cut(rest, "[")
		if !ok {
			break
		}
		_, r, ok = strings.Cut(r, "]:")
		if !ok {
			break
		}
		var v string
		v, rest = parseValue(r)
		c.cols[strings.TrimSpace(col)] = v
		rest = strings.TrimPrefix(rest, " ")
	}
	return c, true
}

// parseValue reads one value: null, a quoted string with ” for a quote,
// or a bare token; it returns the value and what follows.
func parseValue(s string) (string, string) {
	if !strings.HasPrefix(s, "'") {
		v, rest, _ := strings.Cut(s, " ")
		if v == "null" {
			v = ""
		}
		return v, rest
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		if s[i] != '\'' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '\'' {
			b.WriteByte('\'')
			i++
			continue
		}
		return b.String(), s[i+1:]
	}
	return b.String(), ""
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
