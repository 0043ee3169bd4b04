package db

import (
	"context"

	"github.com/uptrace/bun"
)

// Feedback is a message a user sent to the people who run the service.
type Feedback struct {
	bun.BaseModel `bun:"table:feedback,alias:f"`

	AccountID int64  `bun:"account_id"`
	ID        int64  `bun:"id,pk,autoincrement"`
	UserID    int64  `bun:"user_id"`
	TokenID   int64  `bun:"token_id"`
	Message   string `bun:"message"`
	Created   int64  `bun:"created"`

	Account  string `bun:"account,scanonly"`  // the account's name, read by ListFeedback
	Username string `bun:"username,scanonly"` // the sender's name, read by ListFeedback
}

// SendFeedback stores a message from the caller, with the account, user
// and token it came with.
func (s *Store) SendFeedback(ctx context.Context, p *Principal, message string) error {
	f := &Feedback{
		AccountID: p.AccountID, UserID: p.UserID, TokenID: p.TokenID, Message: message,
		Created: micros(s.now()),
	}
	return s.tx(ctx, func(tx bun.Tx) error {
		_, err := tx.NewInsert().Model(f).Returning("id").Exec(ctx)
		return err
	})
}

// ListFeedback returns every message with an id above afterID, oldest
// first, at most limit of them, each with its sender's account and user
// names.
func (s *Store) ListFeedback(ctx context.Context, afterID int64, limit int) ([]Feedback, error) {
	list := []Feedback{}
	err := s.db.NewSelect().Model(&list).
		ColumnExpr("f.*, a.name AS account, u.username AS username").
		Join("JOIN accounts AS a ON a.id = f.account_id").
		Join("JOIN users AS u ON u.account_id = f.account_id AND u.id = f.user_id").
		Where("f.id > ?", afterID).
		OrderExpr("f.id ASC").
		Limit(int64(limit)).
		Scan(ctx)
	return list, translate(err)
}
