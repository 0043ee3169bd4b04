// Package invariant checks the promises of docs/invariants.md against an
// apiv4 PostgreSQL database and a log of the requests clients sent and
// the answers they got. It reads the database with its own SQL, not with
// the store it checks.
//
// Three kinds of check:
//   - Snapshot: what must hold at any instant, in one consistent read
//     (the jobs of a Linode against its busy count and queue order).
//   - Stream: the exact history, from PostgreSQL's logical decoding of
//     every commit, replayed in commit order (the busy rule at each
//     accepted job, one event per job, marks that only move forward).
//   - Final: once no request is running and every job had time to end,
//     the database and the request log together (nothing stuck, exactly
//     one event per accepted action, no answer from another account,
//     marks that never went backwards as the clients saw them).
package invariant

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

// A Violation is one broken promise.
type Violation struct {
	Kind   string // a short name of the promise, as in docs/invariants.md
	Detail string // what was seen
}

func (v Violation) String() string { return v.Kind + ": " + v.Detail }

func violation(kind, format string, args ...any) Violation {
	return Violation{Kind: kind, Detail: fmt.Sprintf(format, args...)}
}

// The kinds of violation.
const (
	KindBusy         = "busy Linode accepted a second action"
	KindPending      = "busy count differs from pending jobs"
	KindOneEvent     = "accepted action without exactly one event"
	KindLost         = "accepted action lost"
	KindJobEnd       = "job did not end finished or failed"
	KindStuck        = "Linode stuck busy"
	KindMarks        = "seen or read went backwards"
	KindVisibility   = "data of another account"
	KindAnswer       = "answer other than promised"
	KindJobTwice     = "job ended twice"
	KindUnknownEvent = "event nobody caused"
)

// A Record is one request of the log the chaos harness keeps: who sent
// what, and what came back.
type Record struct {
	Client  int       `json:"client"`
	Account string    `json:"account"`
	User    string    `json:"user"`
	Op      string    `json:"op"` // see Ops
	Linode  int64     `json:"linode,omitempty"`
	Event   int64     `json:"event,omitempty"`
	Foreign bool      `json:"foreign,omitempty"` // the id in the path is another account's
	Status  int       `json:"status"`            // 0: no answer
	Problem string    `json:"problem,omitempty"` // what was wrong with the answer, if anything
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Events  []Flags   `json:"events,omitempty"`  // events the answer showed, with the caller's marks
	Linodes []int64   `json:"linodes,omitempty"` // Linodes the answer showed
}

// Flags are the caller's marks on one event as an answer showed them.
type Flags struct {
	ID   int64 `json:"id"`
	Seen bool  `json:"seen"`
	Read bool  `json:"read"`
}

// Ops maps the operations of the log that change something to the
// action of the event they record.
var Ops = map[string]string{
	"create": "linode_create", "boot": "linode_boot", "shutdown": "linode_shutdown",
	"reboot": "linode_reboot", "rebuild": "linode_rebuild", "password": "password_reset",
	"delete": "linode_delete", "update": "linode_update",
}

// jobActions are the event actions that run as jobs.
var jobActions = map[string]bool{
	"linode_create": true, "linode_boot": true, "linode_shutdown": true, "linode_reboot": true,
	"linode_rebuild": true, "password_reset": true, "linode_delete": true,
}

// Checker reads one apiv4 database.
type Checker struct {
	db *sql.DB
}

// Open connects to the PostgreSQL database at url; the caller closes the
// Checker.
func Open(url string) (*Checker, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, fmt.Errorf("invariant: %w", err)
	}
	db.SetMaxOpenConns(2)
	return &Checker{db: db}, nil
}

// Close releases the connections.
func (c *Checker) Close() error { return c.db.Close() }

// rows runs a query and calls scan for each row.
func (c *Checker) rows(ctx context.Context, query string, scan func(*sql.Rows) error, args ...any) error {
	rs, err := c.db.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("invariant: %w", err)
	}
	defer rs.Close()
	for rs.Next() {
		if err := scan(rs); err != nil {
			return fmt.Errorf("invariant: %w", err)
		}
	}
	return rs.Err()
}

// Summary counts violations by kind, in a stable order.
func Summary(vs []Violation) string {
	counts := map[string]int{}
	for _, v := range vs {
		counts[v.Kind]++
	}
	kinds := make([]string, 0, len(counts))
	for k := range counts {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var b strings.Builder
	for _, k := range kinds {
		fmt.Fprintf(&b, "%6d  %s\n", counts[k], k)
	}
	return b.String()
}

// ReadLog reads a request log: one JSON Record per line.
func ReadLog(path string) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("invariant: %w", err)
	}
	defer f.Close()
	var out []Record
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("invariant: %s line %d: %w", path, len(out)+1, err)
		}
		out = append(out, r)
	}
	return out, sc.Err()
}
