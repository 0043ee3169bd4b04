package db

import (
	"context"
)

// UserPrincipal returns the principal of the user called username, with
// every scope, for operator commands that act as a user without a token.
// An unknown user is NotFound.
func (s *Store) UserPrincipal(ctx context.Context, username string) (*Principal, error) {
	var u User
	if err := s.db.NewSelect().Model(&u).Where("username = ?", username).Scan(ctx); err != nil {
		return nil, translate(err)
	}
	return &Principal{AccountID: u.AccountID, UserID: u.ID, Username: u.Username, Scopes: "*"}, nil
}

// CountEvents returns how many events the account holds.
func (s *Store) CountEvents(ctx context.Context, accountID int64) (int, error) {
	n, err := s.db.NewSelect().Model((*Event)(nil)).Where("e.account_id = ?", accountID).Count(ctx)
	return int(n), translate(err)
}
