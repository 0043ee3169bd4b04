package db

import (
	"context"
	"unicode/utf8"

	"github.com/uptrace/bun"
)

// Notice is an operator's message to the users of some accounts, such as
// a new post on the company blog.
type Notice struct {
	Message  string
	Link     string   // where to read more; empty for none
	Accounts []string // names of the accounts to tell; ignored with All
	All      bool     // tell every account
}

// PostNotice writes the notice as one "notice" event, status notification,
// in each targeted account, where every user sees it, and returns how many
// accounts it reached. With a link the event's entity is of type community
// and its url is the link; without one it is the account itself. An
// unknown account name is Invalid and nothing is written.
func (s *Store) PostNotice(ctx context.Context, n Notice) (int, error) {
	if !n.All && len(n.Accounts) == 0 {
		return 0, Errorf(Invalid, "account", "name at least one account, or all")
	}
	var accounts []Account
	err := s.tx(ctx, func(tx bun.Tx) error {
		now := micros(s.now())
		sel := tx.NewSelect().Model(&accounts).OrderExpr("id")
		if !n.All {
			sel.Where("name IN (?)", bun.In(n.Accounts))
		}
		if err := sel.Scan(ctx); err != nil {
			return err
		}
		if !n.All {
			if err := allNamed(accounts, n.Accounts); err != nil {
				return err
			}
		}
		for _, a := range accounts {
			ent := &Entity{Label: a.Name, Type: "account", URL: "/v4/account"}
			if n.Link != "" {
				ent = &Entity{Label: truncate(n.Message, 100), Type: "community", URL: n.Link}
			}
			e := notification(nil, "notice", n.Message, ent, now)
			e.AccountID = a.ID
			if err := insertEvent(ctx, tx, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return len(accounts), nil
}

// allNamed reports as Invalid the first name that no account has.
func allNamed(accounts []Account, names []string) error {
	found := map[string]bool{}
	for _, a := range accounts {
		found[a.Name] = true
	}
	for _, name := range names {
		if !found[name] {
			return Errorf(Invalid, "account", "no account is called %q", name)
		}
	}
	return nil
}

// notification builds an instantaneous event in the principal's account,
// caused by the principal, or by the system when p is nil (the caller then
// sets AccountID). ent.ID is an int64 or nil.
func notification(p *Principal, action, message string, ent *Entity, now int64) *Event {
	e := &Event{Action: action, Status: "notification", Message: &message, Created: now, Updated: now}
	if p != nil {
		e.AccountID, e.Username = p.AccountID, &p.Username
	}
	if ent != nil {
		e.EntityType, e.EntityLabel, e.EntityURL = &ent.Type, &ent.Label, &ent.URL
		if id, ok := ent.ID.(int64); ok {
			e.EntityID = &id
		}
	}
	return e
}

// truncate cuts s to at most n characters.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}
