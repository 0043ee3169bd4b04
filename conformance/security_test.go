package conformance

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"apiv4/gen"
)

// TestGuessedIDs sends every operation that names a resource the real ids
// of another account's Linode, event, address, backup, ticket and token, as
// a user guessing ids would, and
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
		ids := guessableIDs(t, a, l)
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
				path = strings.ReplaceAll(path, "{"+p.Name+"}", id)
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

// guessableIDs returns the real ids of resources of l's account, one for
// every path parameter of the spec: l itself, its first event and public
// address, a snapshot of it, a ticket and a token.
func guessableIDs(t *testing.T, a *api, l gen.Linode) map[string]string {
	t.Helper()
	path := fmt.Sprint("/linode/instances/", l.Id, "/backups")
	a.must(http.StatusOK, "POST", path+"/enable", map[string]any{})
	var b gen.Backup
	a.must(http.StatusOK, "POST", path, map[string]any{"label": "guessed"}).decode(t, &b)
	waitIdle(t, a, l.Id)
	var tk gen.Ticket
	a.must(http.StatusOK, "POST", "/support/tickets",
		map[string]any{"summary": "Guessed ticket", "description": "Its id is guessed."}).decode(t, &tk)
	var tok gen.Token
	a.must(http.StatusOK, "POST", "/profile/tokens",
		map[string]any{"label": "guessed", "scopes": "events:read_only"}).decode(t, &tok)
	return map[string]string{
		"linodeId": fmt.Sprint(l.Id), "eventId": fmt.Sprint(linodeEvents(t, a, l.Id, nil)[0].Id),
		"address": l.Ipv4[0], "backupId": fmt.Sprint(b.Id), "ticketId": fmt.Sprint(tk.Id),
		"tokenId": fmt.Sprint(tok.Id),
	}
}
