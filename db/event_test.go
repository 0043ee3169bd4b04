package db_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"apiv4/db"
)

// mustEvents creates n Linodes, one linode_create event each, and returns
// the events' ids, oldest first.
func mustEvents(tb testing.TB, s *db.Store, p *db.Principal, n int) []int64 {
	tb.Helper()
	for range n {
		mustLinode(tb, s, p)
	}
	page, err := s.ListEvents(context.Background(), p,
		db.ListQuery{Page: 1, PageSize: 500, Filter: `{"+order_by": "id"}`})
	if err != nil {
		tb.Fatalf("list: %v", err)
	}
	ids := make([]int64, len(page.Events))
	for i, e := range page.Events {
		ids[i] = e.ID
	}
	return ids
}

func TestListEventsPages(t *testing.T) {
	eachStore(t, func(t *testing.T, s *db.Store) {
		ctx := context.Background()
		p := mustPrincipal(t, s, "acme", "alice")
		ids := mustEvents(t, s, p, 60) // oldest first
		mustEvents(t, s, mustPrincipal(t, s, "other", "bob"), 3)

		newest := func(from, n int) []int64 { // ids[from-1], ids[from-2], …
			var out []int64
			for i := from - 1; i >= 0 && len(out) < n; i-- {
				out = append(out, ids[i])
			}
			return out
		}
		tests := []struct {
			name   string
			q      db.ListQuery
			want   []int64
			pages  int
			result int
		}{
			{"first", db.ListQuery{Page: 1, PageSize: 25}, newest(60, 25), 3, 60},
			{"middle", db.ListQuery{Page: 2, PageSize: 25}, newest(35, 25), 3, 60},
			{"last is short", db.ListQuery{Page: 3, PageSize: 25}, newest(10, 25), 3, 60},
			{"past the end", db.ListQuery{Page: 4, PageSize: 25}, nil, 3, 60},
			{"ascending", db.ListQuery{Page: 3, PageSize: 25, Filter: `{"+order_by":"id","+order":"asc"}`},
				ids[50:], 3, 60},
			{"descending by id", db.ListQuery{Page: 1, PageSize: 25,
				Filter: `{"+order_by":"id","+order":"desc"}`}, newest(60, 25), 3, 60},
			{"filtered second page", db.ListQuery{Page: 2, PageSize: 25,
				Filter: fmt.Sprintf(`{"id":{"+lte":%d}}`, ids[39])}, newest(15, 25), 2, 40},
			{"filtered past the end", db.ListQuery{Page: 3, PageSize: 25,
				Filter: fmt.Sprintf(`{"id":{"+lte":%d}}`, ids[39])}, nil, 2, 40},
			{"filtered to nothing", db.ListQuery{Page: 1, PageSize: 25, Filter: `{"id": 0}`}, nil, 1, 0},
			{"by created", db.ListQuery{Page: 1, PageSize: 25,
				Filter: `{"+order_by":"created","+order":"desc","entity.type":"linode"}`},
				newest(60, 25), 3, 60},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				page, err := s.ListEvents(ctx, p, tt.q)
				if err != nil {
					t.Fatal(err)
				}
				var got []int64
				for _, e := range page.Events {
					got = append(got, e.ID)
				}
				if fmt.Sprint(got) != fmt.Sprint(tt.want) {
					t.Errorf("ids\n got %v\nwant %v", got, tt.want)
				}
				if page.Pages != tt.pages || page.Results != tt.result || page.Page != tt.q.Page {
					t.Errorf("page %d pages %d results %d, want %d %d %d",
						page.Page, page.Pages, page.Results, tt.q.Page, tt.pages, tt.result)
				}
			})
		}
	})
}

func TestEventMarks(t *testing.T) {
	eachStore(t, func(t *testing.T, s *db.Store) {
		ctx := context.Background()
		p := mustPrincipal(t, s, "acme", "alice")
		colleague := mustPrincipal(t, s, "acme", "carol")
		ids := mustEvents(t, s, p, 5)

		if err := s.MarkEventSeen(ctx, p, ids[2]); err != nil {
			t.Fatal(err)
		}
		for range 2 { // marking again changes nothing and is no error
			if err := s.MarkEventRead(ctx, p, ids[4]); err != nil {
				t.Fatalf("mark read: %v", err)
			}
		}
		for _, err := range []error{
			s.MarkEventSeen(ctx, p, ids[4]+1000), s.MarkEventRead(ctx, p, ids[4]+1000),
		} {
			if !errors.Is(err, db.ErrNotFound) {
				t.Errorf("mark of a missing event: err = %v, want ErrNotFound", err)
			}
		}

		page, err := s.ListEvents(ctx, p, db.ListQuery{Page: 1, PageSize: 25})
		if err != nil {
			t.Fatal(err)
		}
		var got string
		for _, e := range page.Events { // newest first
			got += fmt.Sprintf("%v/%v ", e.Seen, e.Read)
		}
		if want := "false/true false/false true/false true/false true/false "; got != want {
			t.Errorf("seen/read of the page\n got %s\nwant %s", got, want)
		}
		e, err := s.GetEvent(ctx, p, ids[4])
		if err != nil || e.Seen || !e.Read || e.ID != ids[4] || e.Action != "linode_create" {
			t.Errorf("GetEvent = %+v, %v; want unseen and read", e, err)
		}
		e, err = s.GetEvent(ctx, colleague, ids[4])
		if err != nil || e.Seen || e.Read {
			t.Errorf("colleague's GetEvent = %+v, %v; marks are per user", e, err)
		}
	})
}
