package db

import (
	"context"
	"reflect"
	"testing"
	"time"

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
