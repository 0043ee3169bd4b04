package conformance

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestGuessedIDs sends every operation that names a resource the real ids
// of another account's Linode and event, as a user guessing ids would, and
// checks that each is answered 404 exactly as an unknown id, and that
// nothing about the Linode changed.
func TestGuessedIDs(t *testing.T) {
	spec := mustSpec(t).spec
	forEachTarget(t, func(t *testing.T, tg *target) {
		if tg.other == "" {
			t.Skip("no token of another account (-token2)")
		}
		a := tg.api(t, tg.owner)
		l := newIdleLinode(t, a, tg, false)
		ids := map[string]int{"linodeId": l.Id, "eventId": linodeEvents(t, a, l.Id, nil)[0].Id}
		before := linodeState(t, a, l.Id)

		mallory := a.as(tg.other)
		for _, o := range specOps(spec) {
			if !hasPathParams(o) {
				continue
			}
			path := o.path
			for _, p := range params(o) {
				if p.In != "path" {
					continue
				}
				id, ok := ids[p.Name]
				if !ok {
					t.Errorf("%s: no id of another account for path parameter %s: add one to TestGuessedIDs",
						operationID(o.op), p.Name)
					continue
				}
				path = strings.ReplaceAll(path, "{"+p.Name+"}", fmt.Sprint(id))
			}
			var body any
			if valid := bodyExample(o, "valid"); valid != nil {
				body = withIDs(valid, ids)
			}
			r := mallory.in(t).do(o.method, path, body)
			if r.Status != http.StatusNotFound {
				t.Errorf("%s %s as another account: got %d %s, want 404", o.method, path, r.Status, r.Body)
				continue
			}
			r.wantError(t, http.StatusNotFound, "Not found", "")
		}

		if after := linodeState(t, a, l.Id); after != before {
			t.Errorf("another account changed the Linode:\nbefore %s\nafter  %s", before, after)
		}
	})
}
