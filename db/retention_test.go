package db_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"apiv4/db"
)

// allPages walks every page of the caller's events and returns their ids,
// checking that each page agrees with the first on the counts.
func allPages(tb testing.TB, s *db.Store, p *db.Principal, size int) []int64 {
	tb.Helper()
	var ids []int64
	first, err := s.ListEvents(context.Background(), p, db.ListQuery{Page: 1, PageSize: size})
	if err != nil {
		tb.Fatal(err)
	}
	for page := 1; page <= first.Pages; page++ {
		got, err := s.ListEvents(context.Background(), p, db.ListQuery{Page: page, PageSize: size})
		if err != nil {
			tb.Fatal(err)
		}
		if got.Results != first.Results || got.Pages != first.Pages {
			tb.Fatalf("page %d: results %d pages %d, page 1 said %d %d",
				page, got.Results, got.Pages, first.Results, first.Pages)
		}
		for _, e := range got.Events {
			ids = append(ids, e.ID)
		}
	}
	if len(ids) != first.Results {
		tb.Fatalf("pages hold %d events, results says %d", len(ids), first.Results)
	}
	return ids
}

func TestPruneEvents(t *testing.T) {
	eachStore(t, func(t *testing.T, s *db.Store) {
		ctx := context.Background()
		now := time.Now()
		clock := now.Add(-100 * 24 * time.Hour)
		s.SetClock(func() time.Time { return clock })
		p := mustPrincipal(t, s, "acme", "alice")
		other := mustPrincipal(t, s, "other", "bob")
		old := mustEvents(t, s, p, 11) // oldest first
		oldOther := mustEvents(t, s, other, 2)
		clock = now
		kept := mustEvents(t, s, p, 7)[11:]
		if err := s.MarkEventRead(ctx, p, old[3]); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkEventRead(ctx, p, kept[0]); err != nil {
			t.Fatal(err)
		}

		newest := slices.Concat(old, kept)
		slices.Reverse(newest)

		// Small steps: one account at a time, three events per account.
		lim := db.PruneLimits{Accounts: 1, Events: 3}
		cutoff := now.Add(-90 * 24 * time.Hour)
		var after, deleted int64
		for step := 0; ; step++ {
			if step > 20 {
				t.Fatal("the sweep does not end")
			}
			st, err := s.PruneEvents(ctx, cutoff, after, lim)
			if err != nil {
				t.Fatal(err)
			}
			deleted += st.Deleted
			// Between two steps, the pages agree with the counts and hold
			// the newest events, with no gap.
			ids := allPages(t, s, p, 25)
			if fmt.Sprint(ids) != fmt.Sprint(newest[:len(ids)]) {
				t.Fatalf("step %d: listed %v, want the newest %d of %v", step, ids, len(ids), newest)
			}
			if after = st.Next; st.Done && st.Deleted == 0 {
				break
			}
		}

		if deleted != int64(len(old)+len(oldOther)) {
			t.Errorf("deleted %d events, want %d", deleted, len(old)+len(oldOther))
		}
		want := slices.Clone(kept)
		slices.Reverse(want)
		if got := allPages(t, s, p, 25); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("kept events\n got %v\nwant %v", got, want)
		}
		asc, err := s.ListEvents(ctx, p, db.ListQuery{Page: 2, PageSize: 25,
			Filter: `{"+order_by": "id"}`})
		if err != nil || asc.Results != len(kept) || len(asc.Events) != 0 {
			t.Errorf("ascending page 2 = %+v, %v; want empty with %d results", asc, err, len(kept))
		}
		page, err := s.ListEvents(ctx, p, db.ListQuery{Page: 1, PageSize: 25,
			Filter: `{"read": true}`})
		if err != nil || page.Results != 1 || page.Events[0].ID != kept[0] {
			t.Errorf("read events after pruning = %+v, %v; want only the kept one", page, err)
		}
		if _, err := s.GetEvent(ctx, p, old[10]); err != db.ErrNotFound {
			t.Errorf("a pruned event: err = %v, want ErrNotFound", err)
		}

		// Events keep coming after a prune, and a second sweep finds nothing.
		more := mustEvents(t, s, p, 1)
		if got := allPages(t, s, p, 25); len(got) != len(kept)+1 || got[0] != more[len(more)-1] {
			t.Errorf("after a new event: %v", got)
		}
		st, err := s.PruneEvents(ctx, cutoff, 0, db.DefaultPruneLimits)
		if st != (db.PruneStep{Done: true}) || err != nil {
			t.Errorf("second sweep = %+v, %v; want nothing to do", st, err)
		}
	})
}
