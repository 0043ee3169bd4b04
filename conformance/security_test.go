package conformance

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
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

// idsTest is a test of one target, given a client acting as the owner, a
// new idle Linode of the owner's and the ids of guessableIDs for it.
type idsTest func(t *testing.T, tg *target, a *api, l gen.Linode, ids map[string]string)

// forEachTargetWithIDs runs fn as a subtest on every target, like
// forEachTarget, after making the Linode and ids it is given.
func forEachTargetWithIDs(t *testing.T, fn idsTest) {
	t.Helper()
	forEachTarget(t, func(t *testing.T, tg *target) {
		a := tg.api(t, tg.owner)
		l := newIdleLinode(t, a, tg, false)
		fn(t, tg, a, l, guessableIDs(t, a, l))
	})
}

// fillPath puts ids, by path parameter name, into a path of the spec.
func fillPath(path string, ids map[string]string) string {
	for name, id := range ids {
		path = strings.ReplaceAll(path, "{"+name+"}", id)
	}
	return path
}

// serverOwned returns the properties of an operation's 200 answer that
// its JSON request body does not list, sorted: what the server alone
// decides (ids, statuses, times), or what only another operation sets.
func serverOwned(o specOp) []string {
	if o.op.RequestBody == nil || o.op.RequestBody.Value.Content.Get("application/json") == nil {
		return nil
	}
	in := o.op.RequestBody.Value.Content.Get("application/json").Schema.Value
	ok := o.op.Responses.Status(http.StatusOK)
	if ok == nil || ok.Value.Content.Get("application/json") == nil {
		return nil
	}
	var owned []string
	for name := range ok.Value.Content.Get("application/json").Schema.Value.Properties {
		if _, listed := in.Properties[name]; !listed {
			owned = append(owned, name)
		}
	}
	slices.Sort(owned)
	return owned
}

// TestServerOwnedFields sends every operation that takes a JSON body its
// valid example with one property more: in turn, each property of the
// operation's answer that the body does not list (an id, a status, a
// creation time, a Linode's addresses, a token's scopes on update). Each
// must be refused with 400 naming the property, and nothing about the
// Linode may change.
func TestServerOwnedFields(t *testing.T) {
	spec := mustSpec(t).spec
	forEachTargetWithIDs(t, func(t *testing.T, tg *target, a *api, l gen.Linode, ids map[string]string) {
		before := linodeState(t, a, l.Id)
		for _, o := range specOps(spec) {
			owned := serverOwned(o)
			if len(owned) == 0 {
				continue
			}
			valid, _ := withIDs(bodyExample(o, "valid"), ids).(map[string]any)
			t.Run(operationID(o.op), func(t *testing.T) {
				a := a.in(t)
				for _, name := range owned {
					body := maps.Clone(valid)
					if body == nil {
						body = map[string]any{}
					}
					body[name] = 1
					r := a.do(o.method, fillPath(o.path, ids), body)
					if got := r.errs(t); r.Status != http.StatusBadRequest || len(got) != 1 ||
						got[0].Reason != fmt.Sprintf("property %q is unsupported", name) {
						t.Errorf("%s with %q: got %d %s, want 400: property %q is unsupported",
							o.method, name, r.Status, r.Body, name)
					}
				}
			})
		}

		if after := linodeState(t, a, l.Id); after != before {
			t.Errorf("a server-owned property changed the Linode:\nbefore %s\nafter  %s", before, after)
		}
	})
}
