package db

import (
	"strings"
	"testing"
)

func TestPlaceholders(t *testing.T) {
	tests := []struct {
		where string
		first int
		want  string
	}{
		{"", 5, "true"},
		{"e.id = ?2", 5, "e.id = $5"},
		{"e.id > ?0 AND r.user_id = ?1 AND e.action = ?3", 5,
			"e.id > (SELECT seen_id FROM w) AND r.user_id = $2 AND e.action = $6"},
		{"e.id = ?12", 3, "e.id = $13"},
	}
	for _, tt := range tests {
		if got := placeholders(tt.where, tt.first); got != tt.want {
			t.Errorf("placeholders(%q, %d) = %q, want %q", tt.where, tt.first, got, tt.want)
		}
	}
}

// The linodego filters take the filtered path, with their arguments after
// the five fixed ones; an unfiltered list takes the seq path.
func TestListEventsStmt(t *testing.T) {
	p := &Principal{AccountID: 7, UserID: 9, TokenID: 11}
	st, err := ListEventsStmt(p, ListQuery{Page: 3, PageSize: 25})
	if err != nil || st.SQL != pageBySeqDesc || len(st.Args) != 5 || st.Args[3] != int64(50) ||
		st.Args[4] != int64(11) {
		t.Errorf("unfiltered: %v %v, want the seq path skipping 50 for token 11", st.Args, err)
	}
	st, err = ListEventsStmt(p, ListQuery{Page: 1, PageSize: 100, Filter: linodegoFilter})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(st.SQL, "e.action = $6 AND (e.created >= $7)") ||
		!strings.Contains(st.SQL, "ORDER BY e.created DESC, e.id DESC") || len(st.Args) != 10 {
		t.Errorf("linodego filter: %d args, statement\n%s", len(st.Args), st.SQL)
	}
}

const linodegoFilter = `{"+order":"desc","+order_by":"created","action":"linode_boot",` +
	`"created":{"+gte":"2026-12-04T15:04:05"},"entity.id":123,"entity.type":"linode",` +
	`"id":{"+gte":9}}`

func BenchmarkListEventsStmt(b *testing.B) {
	p := &Principal{AccountID: 7, UserID: 9}
	for _, bb := range []struct{ name, filter string }{
		{"unfiltered", ""}, {"linodego", linodegoFilter},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ListEventsStmt(p, ListQuery{Page: 40000, PageSize: 25,
					Filter: bb.filter}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
