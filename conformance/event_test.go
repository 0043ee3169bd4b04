package conformance

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/linode/linodego"

	"apiv4/gen"
)

// eventIDs returns the ids of events, in their order.
func eventIDs[E any](events []E, id func(E) int) []int {
	out := make([]int, len(events))
	for i, e := range events {
		out[i] = id(e)
	}
	return out
}

func genID(e gen.Event) int           { return e.Id }
func linodegoID(e linodego.Event) int { return e.ID }

// newestFirst reports whether ids are strictly decreasing.
func newestFirst(ids []int) bool {
	return slices.IsSortedFunc(ids, func(a, b int) int { return b - a }) && !hasDuplicates(ids)
}

func hasDuplicates(ids []int) bool {
	seen := map[int]bool{}
	for _, id := range ids {
		if seen[id] {
			return true
		}
		seen[id] = true
	}
	return false
}

// updateLinode changes a Linode's tags, which records one linode_update
// event, and returns that event's id.
func updateLinode(tb testing.TB, a *api, id int, tag string) int {
	tb.Helper()
	a.in(tb).must(http.StatusOK, "PUT", fmt.Sprint("/linode/instances/", id),
		map[string]any{"tags": []string{tag}})
	events := linodeEvents(tb, a, id, map[string]any{"action": "linode_update"})
	if len(events) == 0 {
		tb.Fatalf("no linode_update event after updating Linode %d", id)
	}
	return events[0].Id
}

// TestEventPages walks multi-page event lists with raw requests and with
// linodego, and checks that every event comes exactly once, newest first.
func TestEventPages(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg *target) {
		a := tg.api(t, tg.owner)
		l := newIdleLinode(t, a, tg, false)
		const updates = 60
		for i := range updates {
			a.must(http.StatusOK, "PUT", fmt.Sprint("/linode/instances/", l.Id),
				map[string]any{"tags": []string{fmt.Sprint("n", i)}})
		}
		want := eventIDs(linodeEvents(t, a, l.Id, nil), genID)
		if len(want) != updates+1 || !newestFirst(want) {
			t.Fatalf("got events %v, want %d, newest first", want, updates+1)
		}
		entity := map[string]any{"entity.type": "linode", "entity.id": l.Id}

		t.Run("raw", func(t *testing.T) {
			a := a.in(t)
			var got []int
			for page := 1; ; page++ {
				var p gen.EventPage
				a.must(http.StatusOK, "GET", fmt.Sprintf("/account/events?page=%d&page_size=25", page),
					nil, "X-Filter", filterJSON(t, entity)).decode(t, &p)
				if p.Page != page || p.Pages != 3 || p.Results != len(want) {
					t.Fatalf("got page %d of %d, %d results; want page %d of 3, %d results",
						p.Page, p.Pages, p.Results, page, len(want))
				}
				if n := min(25, len(want)-(page-1)*25); len(p.Data) != n {
					t.Errorf("page %d: got %d events, want %d", page, len(p.Data), n)
				}
				got = append(got, eventIDs(p.Data, genID)...)
				if page == p.Pages {
					break
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})

		t.Run("linodego", func(t *testing.T) {
			c, tr := tg.linodego(t, tg.owner)
			tests := []struct {
				name    string
				order   map[string]any
				reverse bool
			}{
				{"default order", nil, false},
				{"created descending", map[string]any{"+order_by": "created", "+order": "desc"}, false},
				{"id ascending", map[string]any{"+order_by": "id", "+order": "asc"}, true},
			}
			for _, tt := range tests {
				f := map[string]any{}
				for k, v := range entity {
					f[k] = v
				}
				for k, v := range tt.order {
					f[k] = v
				}
				before := len(tr.exchanges())
				events, err := c.ListEvents(context.Background(),
					&linodego.ListOptions{PageSize: 25, Filter: filterJSON(t, f)})
				if err != nil {
					t.Fatalf("%s: ListEvents: %v", tt.name, err)
				}
				got := eventIDs(events, linodegoID)
				if tt.reverse {
					slices.Reverse(got)
				}
				if !slices.Equal(got, want) {
					t.Errorf("%s: got %v, want %v", tt.name, got, want)
				}
				if n := len(tr.exchanges()) - before; n != 3 {
					t.Errorf("%s: linodego sent %d requests, want one per page (3)", tt.name, n)
				}
			}
		})

		t.Run("whole account", func(t *testing.T) {
			a := a.in(t)
			var first gen.EventPage
			a.must(http.StatusOK, "GET", "/account/events?page_size=25", nil).decode(t, &first)
			if first.Results > 2000 {
				t.Skipf("the account has %d events; walking them all would take too long", first.Results)
			}
			var byDefault gen.EventPage // 100 a page
			a.must(http.StatusOK, "GET", "/account/events", nil).decode(t, &byDefault)
			if n := (first.Results + 99) / 100; len(byDefault.Data) != min(100, first.Results) ||
				byDefault.Pages != max(1, n) || byDefault.Results != first.Results {
				t.Errorf("default page: got %d events, %d pages, %d results; want %d, %d, %d",
					len(byDefault.Data), byDefault.Pages, byDefault.Results,
					min(100, first.Results), max(1, n), first.Results)
			}
			got := eventIDs(first.Data, genID)
			for page := 2; page <= first.Pages; page++ {
				var p gen.EventPage
				a.must(http.StatusOK, "GET", fmt.Sprintf("/account/events?page=%d&page_size=25", page),
					nil).decode(t, &p)
				got = append(got, eventIDs(p.Data, genID)...)
			}
			if len(got) != first.Results || !newestFirst(got) {
				t.Errorf("got %d events (newest first: %t), want %d, newest first",
					len(got), newestFirst(got), first.Results)
			}
			for _, id := range want {
				if !slices.Contains(got, id) {
					t.Errorf("event %d is missing from the account's list", id)
				}
			}
		})

		t.Run("empty", func(t *testing.T) {
			var p gen.EventPage
			a.in(t).must(http.StatusOK, "GET", "/account/events", nil,
				"X-Filter", `{"entity.type":"linode","entity.id":2147483000}`).decode(t, &p)
			if len(p.Data) != 0 || p.Page != 1 || p.Pages != 1 || p.Results != 0 {
				t.Errorf("got %d events, page %d of %d, %d results; want none, page 1 of 1, 0 results",
					len(p.Data), p.Page, p.Pages, p.Results)
			}
		})
	})
}

// TestEventFilters checks X-Filter keys, operators and orders on the
// events of one Linode.
func TestEventFilters(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg *target) {
		a := tg.api(t, tg.owner)
		l := newIdleLinode(t, a, tg, false)
		a.must(http.StatusOK, "POST", fmt.Sprintf("/linode/instances/%d/boot", l.Id), nil)
		waitIdle(t, a, l.Id)
		updateLinode(t, a, l.Id, "a")
		updateLinode(t, a, l.Id, "b")
		updateLinode(t, a, l.Id, "c")
		all := linodeEvents(t, a, l.Id, nil)
		if len(all) != 5 {
			t.Fatalf("got %d events, want 5", len(all))
		}
		u3, u2, u1, boot, create := all[0].Id, all[1].Id, all[2].Id, all[3].Id, all[4].Id
		ids := []int{u3, u2, u1, boot, create}
		user := value(all[4].Username)

		tests := []struct {
			name   string
			filter map[string]any
			want   []int
		}{
			{"equal", map[string]any{"action": "linode_update"}, []int{u3, u2, u1}},
			{"not equal", map[string]any{"action": map[string]any{"+neq": "linode_update"}},
				[]int{boot, create}},
			{"contains", map[string]any{"action": map[string]any{"+contains": "boot"}}, []int{boot}},
			{"or", map[string]any{"+or": []any{
				map[string]any{"action": "linode_create"}, map[string]any{"action": "linode_boot"},
			}}, []int{boot, create}},
			{"and", map[string]any{"+and": []any{
				map[string]any{"id": map[string]any{"+gte": create}},
				map[string]any{"id": map[string]any{"+lt": u1}},
			}}, []int{boot, create}},
			{"status", map[string]any{"status": "notification"}, []int{u3, u2, u1}},
			{"greater than", map[string]any{"id": map[string]any{"+gt": boot}}, []int{u3, u2, u1}},
			{"range", map[string]any{"id": map[string]any{"+gte": boot, "+lte": u2}},
				[]int{u2, u1, boot}},
			{"created since", map[string]any{"created": map[string]any{"+gte": all[4].Created}}, ids},
			{"created before", map[string]any{"created": map[string]any{"+lt": "2001-01-01T00:00:00"}},
				[]int{}},
			{"username", map[string]any{"username": user}, ids},
			{"read", map[string]any{"read": true}, []int{}},
			{"other entity type", map[string]any{"entity.type": "domain"}, []int{}},
			{"id ascending", map[string]any{"+order_by": "id", "+order": "asc"},
				[]int{create, boot, u1, u2, u3}},
			{"created ascending by default", map[string]any{"+order_by": "created"},
				[]int{create, boot, u1, u2, u3}},
			{"created descending", map[string]any{"+order_by": "created", "+order": "desc"}, ids},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got := eventIDs(linodeEvents(t, a.in(t), l.Id, tt.filter), genID)
				if !slices.Equal(got, tt.want) {
					t.Errorf("X-Filter %s: got %v, want %v", filterJSON(t, tt.filter), got, tt.want)
				}
			})
		}
	})
}

// TestBadRequests checks that bad list parameters and filters are
// answered 400 with the field at fault, on both collections and through
// linodego.
func TestBadRequests(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg *target) {
		a := tg.api(t, tg.owner)
		tests := []struct {
			name, query, filter string
			reason, field       string // reason is checked when not empty
		}{
			{"unknown key", "", `{"foo":"bar"}`, "Cannot filter on foo", "X-Filter"},
			{"unknown nested key", "", `{"+or":[{"message":"x"}]}`, "Cannot filter on message", "X-Filter"},
			{"not JSON", "", `{"action":`, "", "X-Filter"},
			{"not an object", "", `["action"]`, "", "X-Filter"},
			{"unknown operator", "", `{"id":{"+like":1}}`, "", "X-Filter"},
			{"order by an unknown key", "", `{"+order_by":"message"}`, "", "X-Filter"},
			{"page size too small", "?page_size=24", "", "", "page_size"},
			{"page size too large", "?page_size=501", "", "", "page_size"},
			{"page zero", "?page=0", "", "", "page"},
		}
		for _, collection := range []string{"/account/events", "/linode/instances"} {
			for _, tt := range tests {
				t.Run(collection+" "+tt.name, func(t *testing.T) {
					var header []string
					if tt.filter != "" {
						header = []string{"X-Filter", tt.filter}
					}
					r := a.in(t).do("GET", collection+tt.query, nil, header...)
					if r.Status != http.StatusBadRequest {
						t.Fatalf("got status %d, want 400; body: %s", r.Status, r.Body)
					}
					got := r.errs(t)
					if len(got) != 1 || got[0].Field != tt.field ||
						(tt.reason != "" && got[0].Reason != tt.reason) {
						t.Errorf("got errors %+v, want one with field %q and reason %q",
							got, tt.field, tt.reason)
					}
				})
			}
		}

		t.Run("linodego", func(t *testing.T) {
			c, _ := tg.linodego(t, tg.owner)
			bad := &linodego.ListOptions{Filter: `{"foo":"bar"}`}
			_, err := c.ListEvents(context.Background(), bad)
			wantAPIError(t, err, http.StatusBadRequest, "[X-Filter] Cannot filter on foo")
			_, err = c.ListInstances(context.Background(), bad)
			wantAPIError(t, err, http.StatusBadRequest, "[X-Filter] Cannot filter on foo")
		})
	})
}

// TestEventProgress follows a boot's event from the moment it is
// accepted to its end, and checks every state it shows on the way.
func TestEventProgress(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg *target) {
		a := tg.api(t, tg.owner)
		l := newIdleLinode(t, a, tg, false)
		a.must(http.StatusOK, "POST", fmt.Sprintf("/linode/instances/%d/boot", l.Id), map[string]any{})
		boots := linodeEvents(t, a, l.Id, map[string]any{"action": "linode_boot"})
		if len(boots) != 1 {
			t.Fatalf("got %d boot events, want 1", len(boots))
		}
		rank := map[gen.EventStatus]int{"scheduled": 0, "started": 1, "finished": 2}
		var ev gen.Event
		last := boots[0]
		eventually(t, "the boot to finish", func() (bool, string) {
			a.must(http.StatusOK, "GET", fmt.Sprint("/account/events/", boots[0].Id), nil).decode(t, &ev)
			r, known := rank[ev.Status]
			if !known || r < rank[last.Status] {
				t.Fatalf("event went from %s to %s", last.Status, ev.Status)
			}
			if value(ev.PercentComplete) < value(last.PercentComplete) {
				t.Fatalf("percent_complete went from %d to %d",
					value(last.PercentComplete), value(ev.PercentComplete))
			}
			last = ev
			return ev.Status == "finished", string(ev.Status)
		})

		if value(ev.PercentComplete) != 100 || value(ev.TimeRemaining) != 0 ||
			ev.Duration.IsNull() || value(ev.Duration) < 0 {
			t.Errorf("got finished event at %d%%, %d s left, duration %v; want 100%%, 0, a duration",
				value(ev.PercentComplete), value(ev.TimeRemaining), ev.Duration)
		}
		if got, want := value(ev.Message), "Booting Linode "+l.Label; got != want {
			t.Errorf("got message %q, want %q", got, want)
		}
		url := fmt.Sprint("/v4/linode/instances/", l.Id)
		ent := value(ev.Entity)
		if value(ent.Id) != l.Id || ent.Label != l.Label || ent.Type != "linode" || ent.Url != url {
			t.Errorf("got entity %+v, want Linode %d %s at %s", ent, l.Id, l.Label, url)
		}
		sec := value(ev.SecondaryEntity)
		config, err := sec.Id.AsEventSecondaryEntityId0()
		wantURL := fmt.Sprintf("%s/configs/%d", url, l.Id)
		if err != nil || config != l.Id || sec.Type != "linode_config" || sec.Url != wantURL {
			t.Errorf("got secondary entity %+v, want config %d at %s", sec, l.Id, wantURL)
		}
		if got := waitIdle(t, a, l.Id); got.Status != "running" {
			t.Errorf("got status %s after boot, want running", got.Status)
		}

		c, _ := tg.linodego(t, tg.owner)
		got, err := c.GetEvent(context.Background(), ev.Id)
		if err != nil || got.ID != ev.Id || got.Action != linodego.ActionLinodeBoot {
			t.Errorf("GetEvent: got %+v, %v; want the boot event %d", got, err, ev.Id)
		}
	})
}

// TestEventMarks checks that seen marks an event and every earlier one,
// read marks only one, and both hold for the user who marked only.
func TestEventMarks(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg *target) {
		a := tg.api(t, tg.owner)
		l := newIdleLinode(t, a, tg, false)
		u1 := updateLinode(t, a, l.Id, "a")
		u2 := updateLinode(t, a, l.Id, "b")
		u3 := updateLinode(t, a, l.Id, "c")
		create := linodeEvents(t, a, l.Id, map[string]any{"action": "linode_create"})[0].Id
		c, _ := tg.linodego(t, tg.owner)
		ctx := context.Background()

		if err := c.MarkEventsSeen(ctx, &linodego.Event{ID: u2}); err != nil {
			t.Fatalf("MarkEventsSeen: %v", err)
		}
		if err := c.MarkEventRead(ctx, &linodego.Event{ID: u1}); err != nil {
			t.Fatalf("MarkEventRead: %v", err)
		}
		// Marking again, or an earlier event, changes nothing.
		if err := c.MarkEventsSeen(ctx, &linodego.Event{ID: u1}); err != nil {
			t.Fatalf("MarkEventsSeen again: %v", err)
		}
		if err := c.MarkEventRead(ctx, &linodego.Event{ID: u1}); err != nil {
			t.Fatalf("MarkEventRead again: %v", err)
		}

		type flags struct{ seen, read bool }
		check := func(t *testing.T, a *api, want map[int]flags) {
			t.Helper()
			for _, e := range linodeEvents(t, a, l.Id, nil) {
				if got := (flags{e.Seen, e.Read}); got != want[e.Id] {
					t.Errorf("event %d: got seen %t read %t, want %t %t",
						e.Id, got.seen, got.read, want[e.Id].seen, want[e.Id].read)
				}
			}
		}
		t.Run("owner", func(t *testing.T) {
			a := a.in(t)
			check(t, a, map[int]flags{create: {true, false}, u1: {true, true}, u2: {true, false},
				u3: {false, false}})
			var p gen.EventPage
			a.must(http.StatusOK, "GET", "/account/events", nil, "X-Filter",
				filterJSON(t, map[string]any{"id": map[string]any{"+lte": u2}, "seen": false})).decode(t, &p)
			if p.Results != 0 {
				t.Errorf("got %d unseen events up to %d, want none", p.Results, u2)
			}
			got := eventIDs(linodeEvents(t, a, l.Id, map[string]any{"read": true}), genID)
			if !slices.Equal(got, []int{u1}) {
				t.Errorf("read filter: got %v, want [%d]", got, u1)
			}
			got = eventIDs(linodeEvents(t, a, l.Id, map[string]any{"seen": false}), genID)
			if !slices.Equal(got, []int{u3}) {
				t.Errorf("seen filter: got %v, want [%d]", got, u3)
			}
		})
		t.Run("peer", func(t *testing.T) {
			if tg.peer == "" {
				t.Skip("no token for another user of the account (-token-peer)")
			}
			check(t, a.in(t).as(tg.peer), map[int]flags{})
		})
	})
}
