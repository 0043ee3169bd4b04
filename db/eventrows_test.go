package db

import (
	"context"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"apiv4/db/dbtest"
)

// TestEventRowsMatchDatabaseSQL holds the pgx decoding of event rows to
// what database/sql reads from the same rows, over every kind of value:
// finished jobs, notifications, secondary entities, progress and nulls.
func TestEventRowsMatchDatabaseSQL(t *testing.T) {
	ctx := context.Background()
	s, secret := mustTokenStore(t, dbtest.PostgresURL(t))
	p, err := s.Authenticate(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	img := "linode/debian12"
	l, err := s.CreateLinode(ctx, p, NewLinode{Region: "us-east", Type: "g6-nanode-1",
		Image: &img, ImageLabel: "Debian 12 \"é\"", Label: "web-1"})
	if err != nil {
		t.Fatal(err)
	}
	tags := []string{"x"}
	if _, err := s.UpdateLinode(ctx, p, l.ID, LinodeUpdate{Tags: &tags}); err != nil {
		t.Fatal(err)
	}
	j, err := s.ClaimJob(ctx, "test", time.Minute)
	if err != nil || j == nil {
		t.Fatalf("claim: %v, %v", j, err)
	}
	if err := s.StartJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	if err := s.ProgressJob(ctx, j, 40, 3*time.Second, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkEventRead(ctx, p, j.EventID); err != nil {
		t.Fatal(err)
	}

	st, err := ListEventsStmt(p, ListQuery{Page: 1, PageSize: 25})
	if err != nil {
		t.Fatal(err)
	}
	page, err := s.runEventList(ctx, st, nil, ListQuery{Page: 1, PageSize: 25})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := s.query(ctx, s.db.DB, st.SQL, st.Args...)
	if err != nil {
		t.Fatal(err)
	}
	want, _, _, err := scanEventRows(rows, nil, p.AccountID)
	rows.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 2 || !reflect.DeepEqual(page.Events, want) {
		t.Errorf("pgx decoded\n%+v\ndatabase/sql scanned\n%+v", page.Events, want)
	}
	for i, e := range page.Events {
		t.Logf("event %d: %s %s percent=%v secondary=%v read=%v", i, e.Action, e.Status,
			e.PercentComplete != nil, e.SecondaryJSON != nil, e.Read)
	}
}

// TestEventArenaKeepsEarlierRows decodes more rows through one arena than
// one of its blocks holds, and holds every event to the same row decoded
// alone: a new block must leave the strings of the earlier rows intact.
func TestEventArenaKeepsEarlierRows(t *testing.T) {
	fields := make([]pgconn.FieldDescription, eventRowColumns)
	rows := make([]rawRow, 3*arenaChunk/200)
	for n := range rows {
		label := strings.Repeat(strconv.Itoa(n%10), 100+n%50)
		values := [][]byte{[]byte(strconv.Itoa(n + 1)), []byte(strconv.Itoa(n + 1)),
			[]byte("linode_boot"), []byte("finished"), []byte("user"), nil,
			[]byte("linode"), []byte("42"), []byte(label), []byte("/v4/linode/instances/42"), nil,
			[]byte("100"), nil, []byte("30.5"), []byte("1700000000000000"), nil,
			[]byte("1700000000000000"), []byte("7"), nil}
		if n%3 == 0 { // some rows without an entity or a progress
			values[6], values[7], values[8], values[9], values[11] = nil, nil, nil, nil, nil
		}
		rows[n] = rawRow{fields: fields, values: values}
	}

	for _, arena := range []*eventArena{{}, newEventArena(10), newEventArena(len(rows))} {
		got := make([]Event, len(rows))
		for n, r := range rows {
			if err := r.eventIn(0, &got[n], arena); err != nil {
				t.Fatal(err)
			}
		}
		for n, r := range rows {
			var want Event
			if err := r.event(0, &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got[n], want) {
				t.Fatalf("arena for %d rows: row %d through it\n%+v\nalone\n%+v",
					arena.rows, n, got[n], want)
			}
		}
	}
}
