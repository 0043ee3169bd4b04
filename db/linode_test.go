package db_test

import (
	"context"
	"errors"
	"testing"

	"apiv4/db"
)

func TestUpdateLinodeRecordsItsEvent(t *testing.T) {
	eachStore(t, func(t *testing.T, s *db.Store) {
		p := mustPrincipal(t, s, "acme", "alice")
		l := mustLinode(t, s, p)
		tags := []string{"a"}
		got, err := s.UpdateLinode(context.Background(), p, l.ID, db.LinodeUpdate{Tags: &tags})
		if err != nil || got.TagsJSON != `["a"]` {
			t.Fatalf("update = %+v, %v; want tags [\"a\"]", got, err)
		}
		page, err := s.ListEvents(context.Background(), p,
			db.ListQuery{Page: 1, PageSize: 25, Filter: `{"action": "linode_update"}`})
		if err != nil || page.Results != 1 || page.Events[0].Status != "notification" ||
			*page.Events[0].EntityID != l.ID || page.Events[0].Seq != 2 {
			t.Fatalf("update events = %+v, %v; want one notification with seq 2", page, err)
		}
		_, err = s.UpdateLinode(context.Background(), p, l.ID+100, db.LinodeUpdate{Tags: &tags})
		if !errors.Is(err, db.ErrNotFound) {
			t.Fatalf("update of a missing linode: err = %v, want ErrNotFound", err)
		}
		l2 := mustLinode(t, s, p)
		_, err = s.UpdateLinode(context.Background(), p, l2.ID, db.LinodeUpdate{Label: &got.Label})
		if db.ErrorCode(err) != db.Invalid {
			t.Fatalf("update to a used label: err = %v, want Invalid", err)
		}
	})
}

// TestRebuildToAnotherPlan rebuilds a Linode onto another image and plan:
// both change when the rebuild is accepted, and a rebuild that fails puts
// back the image and plan it replaced.
func TestRebuildToAnotherPlan(t *testing.T) {
	eachStore(t, func(t *testing.T, s *db.Store) {
		ctx := context.Background()
		p, l := aliceIdle(t, s)
		rebuild := func(image, typ string) {
			t.Helper()
			got, _, err := s.Act(ctx, p, l.ID, db.Action{Name: "linode_rebuild", Image: &image, Type: &typ,
				Params: `{"booted":true}`})
			if err != nil || *got.Image != image || got.Type != typ {
				t.Fatalf("rebuild to %s %s: got %+v, %v", image, typ, got, err)
			}
		}
		want := func(image, typ string) {
			t.Helper()
			got, err := s.GetLinode(ctx, p, l.ID)
			if err != nil || *got.Image != image || got.Type != typ || got.JobsPending != 0 {
				t.Fatalf("after the rebuild: got %+v, %v; want %s %s, idle", got, err, image, typ)
			}
		}

		rebuild("linode/ubuntu24.04", "g6-standard-2")
		drain(t, s)
		want("linode/ubuntu24.04", "g6-standard-2")

		rebuild("linode/debian12", "g6-nanode-1")
		runJobs(t, s, func(*db.Job) db.Outcome { return db.Failed })
		want("linode/ubuntu24.04", "g6-standard-2")
	})
}
