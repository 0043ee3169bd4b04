package invariant

import (
	"context"
	"database/sql"
	"net/http"
	"slices"
	"sort"
)

// outcome counts the requests of one kind by what a client can know of
// them: accepted (2xx) or unknown (no answer, or 503, which may come
// after a commit whose acknowledgement was lost).
type outcome struct{ accepted, unknown int }

func (o *outcome) add(r Record) {
	switch {
	case r.Status >= 200 && r.Status < 300:
		o.accepted++
	case r.Status == 0 || r.Status == http.StatusServiceUnavailable:
		o.unknown++
	}
}

// Log checks the request log against the database, once it is quiescent:
// answers of the promised kinds, exactly one event per accepted action,
// no answer from another account, and marks that never went backwards.
func (c *Checker) Log(ctx context.Context, records []Record) ([]Violation, error) {
	vs := checkAnswers(records)

	owners, err := c.owners(ctx)
	if err != nil {
		return nil, err
	}
	accounts, err := c.accountIDs(ctx)
	if err != nil {
		return nil, err
	}
	vs = append(vs, checkVisibility(records, owners, accounts)...)

	more, err := c.checkEvents(ctx, records, accounts)
	if err != nil {
		return nil, err
	}
	vs = append(vs, more...)
	return append(vs, checkMarks(records)...), nil
}

// checkAnswers finds answers no promise allows: a 5xx other than 503, an
// answer of the wrong form, no answer in time, or another account's
// resource served.
func checkAnswers(records []Record) []Violation {
	var vs []Violation
	for _, r := range records {
		switch {
		case r.Problem != "":
			vs = append(vs, violation(KindAnswer, "%s %s by %s → %d: %s", r.Op, target(r), r.User,
				r.Status, r.Problem))
		case r.Status >= 500 && r.Status != http.StatusServiceUnavailable:
			vs = append(vs, violation(KindAnswer, "%s %s by %s → %d", r.Op, target(r), r.User, r.Status))
		case r.Foreign && r.Status >= 200 && r.Status < 300:
			vs = append(vs, violation(KindVisibility, "%s %s of another account by %s → %d",
				r.Op, target(r), r.User, r.Status))
		}
	}
	return vs
}

func target(r Record) string {
	switch {
	case r.Event != 0:
		return "event " + itoa(r.Event)
	case r.Linode != 0:
		return "Linode " + itoa(r.Linode)
	}
	return ""
}

// owners maps every Linode id ever created (its linode_create event
// survives it) and every event id to the account that owns it.
func (c *Checker) owners(ctx context.Context) (map[string]map[int64]int64, error) {
	out := map[string]map[int64]int64{"linode": {}, "event": {}}
	err := c.rows(ctx, `SELECT account_id, id, action, COALESCE(entity_id, 0) FROM events`,
		func(rs *sql.Rows) error {
			var account, id, entity int64
			var action string
			if err := rs.Scan(&account, &id, &action, &entity); err != nil {
				return err
			}
			out["event"][id] = account
			if action == "linode_create" {
				out["linode"][entity] = account
			}
			return nil
		})
	return out, err
}

// accountIDs maps account names to ids.
func (c *Checker) accountIDs(ctx context.Context) (map[string]int64, error) {
	out := map[string]int64{}
	err := c.rows(ctx, `SELECT name, id FROM accounts`, func(rs *sql.Rows) error {
		var name string
		var id int64
		if err := rs.Scan(&name, &id); err != nil {
			return err
		}
		out[name] = id
		return nil
	})
	return out, err
}

// checkVisibility finds list answers that showed another account's
// events or Linodes.
func checkVisibility(records []Record, owners map[string]map[int64]int64, accounts map[string]int64) []Violation {
	var vs []Violation
	for _, r := range records {
		mine := accounts[r.Account]
		for _, e := range r.Events {
			if owner, ok := owners["event"][e.ID]; !ok || owner != mine {
				vs = append(vs, violation(KindVisibility, "%s by %s of %s showed event %d of account %d",
					r.Op, r.User, r.Account, e.ID, owner))
			}
		}
		for _, id := range r.Linodes {
			if owner, ok := owners["linode"][id]; !ok || owner != mine {
				vs = append(vs, violation(KindVisibility, "%s by %s of %s showed Linode %d of account %d",
					r.Op, r.User, r.Account, id, owner))
			}
		}
	}
	return vs
}

// checkEvents compares the actions the log says were accepted with the
// events of the database: for every Linode and action (for creates, every
// account) the events number at least the accepted requests and at most
// those plus the requests whose outcome is unknown.
func (c *Checker) checkEvents(ctx context.Context, records []Record, accounts map[string]int64) ([]Violation, error) {
	type key struct {
		scope  int64 // the Linode, or for creates the account
		action string
	}
	sent := map[key]*outcome{}
	for _, r := range records {
		action, ok := Ops[r.Op]
		if !ok || r.Foreign {
			continue
		}
		k := key{r.Linode, action}
		if action == "linode_create" {
			k.scope = accounts[r.Account]
		}
		if sent[k] == nil {
			sent[k] = &outcome{}
		}
		sent[k].add(r)
	}

	got := map[key]int{}
	err := c.rows(ctx, `
SELECT account_id, entity_id, action, COUNT(*)
FROM events
WHERE entity_type = 'linode'
GROUP BY account_id, entity_id, action`, func(rs *sql.Rows) error {
		var account, entity int64
		var action string
		var n int
		if err := rs.Scan(&account, &entity, &action, &n); err != nil {
			return err
		}
		k := key{entity, action}
		if action == "linode_create" {
			k.scope = account
		}
		got[k] += n
		return nil
	})
	if err != nil {
		return nil, err
	}

	var vs []Violation
	keys := make([]key, 0, len(sent)+len(got))
	for k := range sent {
		keys = append(keys, k)
	}
	for k := range got {
		if sent[k] == nil {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i].scope < keys[j].scope || keys[i].scope == keys[j].scope && keys[i].action < keys[j].action
	})
	for _, k := range keys {
		o := sent[k]
		if o == nil {
			o = &outcome{}
		}
		n := got[k]
		what := "Linode " + itoa(k.scope)
		if k.action == "linode_create" {
			what = "account " + itoa(k.scope)
		}
		switch {
		case n < o.accepted:
			vs = append(vs, violation(KindLost, "%s: %d %s accepted, %d events", what, o.accepted,
				k.action, n))
		case n > o.accepted+o.unknown && o.accepted+o.unknown == 0:
			vs = append(vs, violation(KindUnknownEvent, "%s: %d %s events, no such request sent", what, n,
				k.action))
		case n > o.accepted+o.unknown:
			vs = append(vs, violation(KindOneEvent, "%s: %d %s events for %d accepted and %d unanswered",
				what, n, k.action, o.accepted, o.unknown))
		}
	}
	return vs, nil
}

// checkMarks replays each user's requests in the order they were sent:
// once a client knew an event seen or read for a user (a mark was
// answered 200, or an answer showed it so), every answer to a request
// sent after that must show it so too.
func checkMarks(records []Record) []Violation {
	type known struct {
		at   int64 // when the client knew it: the End of that answer, in ns
		seen int64 // watermark: events up to it are seen
		read int64 // one read event
	}
	byUser := map[string][]Record{}
	for _, r := range records {
		if r.Status == http.StatusOK && (r.Op == "seen" || r.Op == "read" || len(r.Events) > 0) {
			byUser[r.Account+"/"+r.User] = append(byUser[r.Account+"/"+r.User], r)
		}
	}

	var vs []Violation
	for user, rs := range byUser {
		var facts []known
		for _, r := range rs {
			end := r.End.UnixNano()
			switch r.Op {
			case "seen":
				facts = append(facts, known{at: end, seen: r.Event})
			case "read":
				facts = append(facts, known{at: end, read: r.Event})
			}
			for _, e := range r.Events {
				if e.Seen {
					facts = append(facts, known{at: end, seen: e.ID})
				}
				if e.Read {
					facts = append(facts, known{at: end, read: e.ID})
				}
			}
		}
		slices.SortFunc(facts, func(a, b known) int { return compare(a.at, b.at) })
		slices.SortFunc(rs, func(a, b Record) int { return compare(a.Start.UnixNano(), b.Start.UnixNano()) })

		var seen int64
		read := map[int64]bool{}
		next := 0
		for _, r := range rs {
			for next < len(facts) && facts[next].at < r.Start.UnixNano() {
				seen = max(seen, facts[next].seen)
				if facts[next].read != 0 {
					read[facts[next].read] = true
				}
				next++
			}
			for _, e := range r.Events {
				if e.ID <= seen && !e.Seen {
					vs = append(vs, violation(KindMarks, "%s: %s showed event %d unseen, known seen up to %d",
						user, r.Op, e.ID, seen))
				}
				if read[e.ID] && !e.Read {
					vs = append(vs, violation(KindMarks, "%s: %s showed event %d unread, known read",
						user, r.Op, e.ID))
				}
			}
		}
	}
	return vs
}

func compare(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
