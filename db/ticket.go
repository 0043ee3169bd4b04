package db

import (
	"cmp"
	"context"
	"fmt"

	"github.com/uptrace/bun"
)

// Ticket is a support ticket: a conversation between an account and
// support. Status is new until support first replies, then open, and
// closed once closed.
type Ticket struct {
	bun.BaseModel `bun:"table:tickets,alias:tk"`

	AccountID   int64   `bun:"account_id"`
	ID          int64   `bun:"id,pk,autoincrement"`
	Summary     string  `bun:"summary"`
	Description string  `bun:"description"`
	Status      string  `bun:"status"`
	EntityType  *string `bun:"entity_type"`
	EntityID    *int64  `bun:"entity_id"`
	EntityLabel *string `bun:"entity_label"`
	EntityURL   *string `bun:"entity_url"`
	OpenedBy    string  `bun:"opened_by"`
	Opened      int64   `bun:"opened"`
	Updated     int64   `bun:"updated"`
	UpdatedBy   *string `bun:"updated_by"`
	Closed      *int64  `bun:"closed"`
}

// TicketReply is one message of a ticket's conversation after the first.
type TicketReply struct {
	bun.BaseModel `bun:"table:ticket_replies,alias:r"`

	AccountID   int64  `bun:"account_id"`
	ID          int64  `bun:"id,pk,autoincrement"`
	TicketID    int64  `bun:"ticket_id"`
	Description string `bun:"description"`
	CreatedBy   string `bun:"created_by"`
	FromSupport bool   `bun:"from_support"`
	Created     int64  `bun:"created"`
}

// ErrTicketClosed refuses a reply to, or the closing of, a closed ticket.
var ErrTicketClosed = &Error{Code: Invalid, Reason: "Ticket is closed."}

// ticketFields are the X-Filter keys of the tickets list.
var ticketFields = map[string]field{
	"id":      {kind: kindInt, column: "tk.id", orderBy: true},
	"status":  {kind: kindString, column: "tk.status"},
	"summary": {kind: kindString, column: "tk.summary"},
	"opened":  {kind: kindTime, column: "tk.opened", orderBy: true},
	"updated": {kind: kindTime, column: "tk.updated", orderBy: true},
}

// ListTickets returns one page of the account's tickets: those not closed
// first, newest first within each group, unless the filter orders
// otherwise. A bad filter is Invalid.
func (s *Store) ListTickets(ctx context.Context, p *Principal,
	q ListQuery) (*Page[Ticket], error) {
	f, err := parseFilter(q.Filter, ticketFields)
	if err != nil {
		return nil, err
	}
	where := func(sel *bun.SelectQuery) *bun.SelectQuery {
		return filterWhere(sel.Where("tk.account_id = ?", p.AccountID), f)
	}
	def := "CASE WHEN tk.status = 'closed' THEN 1 ELSE 0 END, tk.id DESC"
	return listPage[Ticket](ctx, s.db, q, where, orderOf(f, ticketFields, "tk.id", def))
}

// GetTicket returns one of the account's tickets, or ErrNotFound.
func (s *Store) GetTicket(ctx context.Context, p *Principal, id int64) (*Ticket, error) {
	var t Ticket
	err := s.db.NewSelect().Model(&t).Where("tk.account_id = ? AND tk.id = ?", p.AccountID, id).
		Scan(ctx)
	if err != nil {
		return nil, translate(err)
	}
	return &t, nil
}

// updateOpenTicket applies set to a ticket that is not closed, in one
// conditional UPDATE so that a reply and a close cannot cross, and returns
// the changed row. A closed ticket is ErrTicketClosed, an unknown one
// ErrNotFound. An accountID of 0 finds the ticket whatever its account,
// as support does.
func updateOpenTicket(ctx context.Context, tx bun.Tx, accountID, id int64,
	set func(*bun.UpdateQuery)) (*Ticket, error) {
	q := tx.NewUpdate().Model((*Ticket)(nil)).Where("tk.id = ? AND tk.status <> 'closed'", id)
	if accountID != 0 {
		q.Where("tk.account_id = ?", accountID)
	}
	set(q)
	var rows []Ticket
	if _, err := q.Returning("*").Exec(ctx, &rows); err != nil {
		return nil, err
	}
	if len(rows) > 0 {
		return &rows[0], nil
	}
	exists := tx.NewSelect().Model((*Ticket)(nil)).Where("tk.id = ?", id)
	if accountID != 0 {
		exists.Where("tk.account_id = ?", accountID)
	}
	if ok, err := exists.Exists(ctx); err != nil || !ok {
		return nil, cmp.Or(err, error(ErrNotFound))
	}
	return nil, ErrTicketClosed
}

// NewTicket is what a user asks support, already checked against the spec.
type NewTicket struct {
	Summary     string
	Description string
	LinodeID    *int64 // the Linode the ticket is about, if any
}

// OpenTicket opens a ticket with status new and writes its ticket_create
// event. A LinodeID that is not one of the account's Linodes is Invalid.
func (s *Store) OpenTicket(ctx context.Context, p *Principal, in NewTicket) (*Ticket, error) {
	now := micros(s.now())
	t := &Ticket{
		AccountID: p.AccountID, Summary: in.Summary, Description: in.Description, Status: "new",
		OpenedBy: p.Username, Opened: now, Updated: now,
	}
	err := s.tx(ctx, func(tx bun.Tx) error {
		if in.LinodeID != nil {
			var l Linode
			err := tx.NewSelect().Model(&l).
				Where("l.account_id = ? AND l.id = ? AND NOT l.deleted", p.AccountID, *in.LinodeID).
				Scan(ctx)
			if translate(err) == ErrNotFound {
				return Errorf(Invalid, "linode_id", "linode_id is not valid")
			} else if err != nil {
				return err
			}
			typ, url := "linode", fmt.Sprintf("/v4/linode/instances/%d", l.ID)
			t.EntityType, t.EntityID, t.EntityLabel, t.EntityURL = &typ, &l.ID, &l.Label, &url
		}
		if _, err := tx.NewInsert().Model(t).Returning("id").Exec(ctx); err != nil {
			return err
		}
		msg := fmt.Sprintf("Opened ticket %d: %s", t.ID, t.Summary)
		return insertEvent(ctx, tx, ticketEvent(p, t, "ticket_create", msg, now))
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// ListTicketReplies returns one page of a ticket's replies, oldest first,
// or ErrNotFound when the account has no such ticket.
func (s *Store) ListTicketReplies(ctx context.Context, p *Principal, ticketID int64,
	q ListQuery) (*Page[TicketReply], error) {
	if _, err := s.GetTicket(ctx, p, ticketID); err != nil {
		return nil, err
	}
	where := func(sel *bun.SelectQuery) *bun.SelectQuery {
		return sel.Where("r.account_id = ? AND r.ticket_id = ?", p.AccountID, ticketID)
	}
	return listPage[TicketReply](ctx, s.db, q, where, "r.id ASC")
}

// ReplyToTicket adds the caller's reply to a ticket and writes a
// ticket_update event. A closed ticket is ErrTicketClosed, an unknown one
// ErrNotFound.
func (s *Store) ReplyToTicket(ctx context.Context, p *Principal, ticketID int64,
	text string) (*TicketReply, error) {
	var r *TicketReply
	err := s.tx(ctx, func(tx bun.Tx) error {
		t, reply, err := s.addReply(ctx, tx, p.AccountID, ticketID, p.Username, text, false)
		if err != nil {
			return err
		}
		r = reply
		msg := fmt.Sprintf("Replied to ticket %d: %s", t.ID, t.Summary)
		return insertEvent(ctx, tx, ticketEvent(p, t, "ticket_update", msg, r.Created))
	})
	return r, err
}

// SupportReply adds support's reply, signed by agent, to the ticket with
// that id in whichever account it is, moves a new ticket to open, and
// writes a ticket_update event with no username, which every user of the
// account sees. A closed ticket is ErrTicketClosed, an unknown one
// ErrNotFound.
func (s *Store) SupportReply(ctx context.Context, ticketID int64, agent,
	text string) (*TicketReply, error) {
	var r *TicketReply
	err := s.tx(ctx, func(tx bun.Tx) error {
		t, reply, err := s.addReply(ctx, tx, 0, ticketID, agent, text, true)
		if err != nil {
			return err
		}
		r = reply
		e := ticketEvent(nil, t, "ticket_update", "Your ticket has been updated by support.",
			r.Created)
		e.AccountID = t.AccountID
		return insertEvent(ctx, tx, e)
	})
	return r, err
}

// addReply marks a ticket that is not closed updated by author (support's
// first reply also opens a new ticket) and stores the reply.
func (s *Store) addReply(ctx context.Context, tx bun.Tx, accountID, ticketID int64, author,
	text string, fromSupport bool) (*Ticket, *TicketReply, error) {
	now := micros(s.now())
	t, err := updateOpenTicket(ctx, tx, accountID, ticketID, func(q *bun.UpdateQuery) {
		q.Set("updated = ?, updated_by = ?", now, author)
		if fromSupport {
			q.Set("status = 'open'")
		}
	})
	if err != nil {
		return nil, nil, err
	}
	r := &TicketReply{
		AccountID: t.AccountID, TicketID: t.ID, Description: text, CreatedBy: author,
		FromSupport: fromSupport, Created: now,
	}
	_, err = tx.NewInsert().Model(r).Returning("id").Exec(ctx)
	return t, r, err
}

// CloseTicket closes one of the account's tickets and writes a
// ticket_update event. A closed ticket is ErrTicketClosed, an unknown one
// ErrNotFound.
func (s *Store) CloseTicket(ctx context.Context, p *Principal, id int64) error {
	return s.tx(ctx, func(tx bun.Tx) error {
		now := micros(s.now())
		t, err := updateOpenTicket(ctx, tx, p.AccountID, id, func(q *bun.UpdateQuery) {
			q.Set("status = 'closed', closed = ?, updated = ?, updated_by = ?", now, now, p.Username)
		})
		if err != nil {
			return err
		}
		msg := fmt.Sprintf("Closed ticket %d: %s", t.ID, t.Summary)
		return insertEvent(ctx, tx, ticketEvent(p, t, "ticket_update", msg, now))
	})
}

// ticketEvent builds the notification about a change to a ticket.
func ticketEvent(p *Principal, t *Ticket, action, message string, now int64) *Event {
	return notification(p, action, message, &Entity{
		ID: t.ID, Label: t.Summary, Type: "ticket", URL: fmt.Sprintf("/v4/support/tickets/%d", t.ID),
	}, now)
}
