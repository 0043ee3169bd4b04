package db

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"apiv4/scope"
)

// tokenFields are the X-Filter keys of the tokens list.
var tokenFields = map[string]field{
	"id":      {kind: kindInt, column: "t.id", orderBy: true},
	"label":   {kind: kindString, column: "t.label", orderBy: true},
	"created": {kind: kindTime, column: "t.created", orderBy: true},
}

// liveToken is the condition on alias t that keeps the caller's own tokens
// that are neither revoked nor expired at now (Unix microseconds).
const liveToken = "t.account_id = ? AND t.user_id = ? AND NOT t.revoked AND " +
	"(t.expiry IS NULL OR t.expiry > ?)"

func (s *Store) liveArgs(p *Principal) []any {
	return []any{p.AccountID, p.UserID, micros(s.now())}
}

// ListTokens returns one page of the caller's live tokens, oldest first
// unless the filter orders otherwise. A bad filter is Invalid.
func (s *Store) ListTokens(ctx context.Context, p *Principal, q ListQuery) (*Page[Token], error) {
	f, err := parseFilter(q.Filter, tokenFields)
	if err != nil {
		return nil, err
	}
	where := func(sel *bun.SelectQuery) *bun.SelectQuery {
		return filterWhere(sel.Where(liveToken, s.liveArgs(p)...), f)
	}
	return listPage[Token](ctx, s.db, q, where, orderOf(f, tokenFields, "t.id", "t.id ASC"))
}

// GetToken returns one of the caller's live tokens, or ErrNotFound.
func (s *Store) GetToken(ctx context.Context, p *Principal, id int64) (*Token, error) {
	var t Token
	err := s.db.NewSelect().Model(&t).Where(liveToken, s.liveArgs(p)...).Where("t.id = ?", id).
		Scan(ctx)
	if err != nil {
		return nil, translate(err)
	}
	return &t, nil
}

// updateToken applies set to one of the caller's live tokens in one
// conditional UPDATE, so that two requests cannot both act on it, and
// returns the changed row, or ErrNotFound.
func (s *Store) updateToken(ctx context.Context, tx bun.Tx, p *Principal, id int64,
	set func(*bun.UpdateQuery)) (*Token, error) {
	q := tx.NewUpdate().Model((*Token)(nil)).Where(liveToken, s.liveArgs(p)...).
		Where("t.id = ?", id)
	set(q)
	var rows []Token
	if _, err := q.Returning("*").Exec(ctx, &rows); err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, ErrNotFound
	}
	return &rows[0], nil
}

// IssueToken creates a token for the caller and writes its token_create
// event, and returns the token and its secret. Empty scopes copy the
// caller's. Scopes that do not parse, or grant more than the caller's
// token has, are Invalid (field "scopes"); an expiry that is not in the
// future is Invalid (field "expiry").
func (s *Store) IssueToken(ctx context.Context, p *Principal, label, scopes string,
	expiry *time.Time) (*Token, string, error) {
	canon := p.Scopes
	if scopes != "" {
		var err error
		if canon, err = parseScopes(scopes); err != nil {
			return nil, "", err
		}
	}
	if !scope.Covers(p.Scopes, canon) {
		return nil, "", Errorf(Invalid, "scopes",
			"Scopes may not exceed those of the token making the request.")
	}
	now := s.now()
	if expiry != nil && !expiry.After(now) {
		return nil, "", Errorf(Invalid, "expiry", "expiry must be in the future")
	}
	t, secret, err := newToken(p.AccountID, p.UserID, label, canon, expiry, now)
	if err != nil {
		return nil, "", err
	}
	err = s.tx(ctx, func(tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(t).Returning("id").Exec(ctx); err != nil {
			return err
		}
		return insertEvent(ctx, tx, tokenEvent(p, t, "token_create", "Created token %s", micros(now)))
	})
	if err != nil {
		return nil, "", err
	}
	return t, secret, nil
}

// RenameToken changes the label of one of the caller's live tokens and
// writes a token_update event, or returns ErrNotFound.
func (s *Store) RenameToken(ctx context.Context, p *Principal, id int64,
	label string) (*Token, error) {
	var t *Token
	err := s.tx(ctx, func(tx bun.Tx) error {
		var err error
		t, err = s.updateToken(ctx, tx, p, id, func(q *bun.UpdateQuery) { q.Set("label = ?", label) })
		if err != nil {
			return err
		}
		e := tokenEvent(p, t, "token_update", "Renamed token %s", micros(s.now()))
		return insertEvent(ctx, tx, e)
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// RevokeToken revokes one of the caller's live tokens, which may be the
// calling one, and writes a token_delete event, or returns ErrNotFound.
// Every process checks each request's token in the database (the events
// list within its own statement), so the token is refused from its next
// request on.
func (s *Store) RevokeToken(ctx context.Context, p *Principal, id int64) error {
	return s.tx(ctx, func(tx bun.Tx) error {
		t, err := s.updateToken(ctx, tx, p, id, func(q *bun.UpdateQuery) { q.Set("revoked = ?", true) })
		if err != nil {
			return err
		}
		e := tokenEvent(p, t, "token_delete", "Revoked token %s", micros(s.now()))
		return insertEvent(ctx, tx, e)
	})
}

// tokenEvent builds the notification about a token the principal changed.
func tokenEvent(p *Principal, t *Token, action, message string, now int64) *Event {
	return notification(p, action, fmt.Sprintf(message, t.Label), &Entity{
		ID: t.ID, Label: t.Label, Type: "token", URL: fmt.Sprintf("/v4/profile/tokens/%d", t.ID),
	}, now)
}

// parseScopes is scope.Parse with the store's error vocabulary.
func parseScopes(list string) (string, error) {
	canon, err := scope.Parse(list)
	if err != nil {
		return "", Errorf(Invalid, "scopes", "%s", err.Error())
	}
	return canon, nil
}
