package impl

import (
	"context"
	"strings"

	"github.com/oapi-codegen/nullable"

	"apiv4/db"
	"apiv4/gen"
)

// ListTickets returns a page of the account's tickets, open ones first.
func (s *Server) ListTickets(ctx context.Context,
	req gen.ListTicketsRequestObject) (gen.ListTicketsResponseObject, error) {
	q := listQuery(req.Params.Page, req.Params.PageSize, req.Params.XFilter)
	page, err := s.store.ListTickets(ctx, principal(ctx), q)
	if err != nil {
		return nil, err
	}
	out := gen.ListTickets200JSONResponse{
		Data: make([]gen.Ticket, len(page.Items)), Page: page.Page, Pages: page.Pages,
		Results: page.Results,
	}
	for i := range page.Items {
		out.Data[i] = ticketOut(&page.Items[i])
	}
	return out, nil
}

// CreateTicket opens a ticket, optionally about one of the account's Linodes.
func (s *Server) CreateTicket(ctx context.Context,
	req gen.CreateTicketRequestObject) (gen.CreateTicketResponseObject, error) {
	if err := notBlank("summary", req.Body.Summary); err != nil {
		return nil, err
	}
	if err := notBlank("description", req.Body.Description); err != nil {
		return nil, err
	}
	in := db.NewTicket{Summary: req.Body.Summary, Description: req.Body.Description}
	if req.Body.LinodeId != nil {
		id := int64(*req.Body.LinodeId)
		in.LinodeID = &id
	}
	t, err := s.store.OpenTicket(ctx, principal(ctx), in)
	if err != nil {
		return nil, err
	}
	return gen.CreateTicket200JSONResponse(ticketOut(t)), nil
}

// GetTicket returns one of the account's tickets.
func (s *Server) GetTicket(ctx context.Context,
	req gen.GetTicketRequestObject) (gen.GetTicketResponseObject, error) {
	t, err := s.store.GetTicket(ctx, principal(ctx), int64(req.TicketId))
	if err != nil {
		return nil, err
	}
	return gen.GetTicket200JSONResponse(ticketOut(t)), nil
}

// ListTicketReplies returns a page of a ticket's replies, oldest first.
func (s *Server) ListTicketReplies(ctx context.Context,
	req gen.ListTicketRepliesRequestObject) (gen.ListTicketRepliesResponseObject, error) {
	q := listQuery(req.Params.Page, req.Params.PageSize, nil)
	page, err := s.store.ListTicketReplies(ctx, principal(ctx), int64(req.TicketId), q)
	if err != nil {
		return nil, err
	}
	out := gen.ListTicketReplies200JSONResponse{
		Data: make([]gen.TicketReply, len(page.Items)), Page: page.Page, Pages: page.Pages,
		Results: page.Results,
	}
	for i := range page.Items {
		out.Data[i] = replyOut(&page.Items[i])
	}
	return out, nil
}

// CreateTicketReply adds the caller's reply to a ticket that is not closed.
func (s *Server) CreateTicketReply(ctx context.Context,
	req gen.CreateTicketReplyRequestObject) (gen.CreateTicketReplyResponseObject, error) {
	if err := notBlank("description", req.Body.Description); err != nil {
		return nil, err
	}
	r, err := s.store.ReplyToTicket(ctx, principal(ctx), int64(req.TicketId), req.Body.Description)
	if err != nil {
		return nil, err
	}
	return gen.CreateTicketReply200JSONResponse(replyOut(r)), nil
}

// CloseTicket closes a ticket that is not closed yet.
func (s *Server) CloseTicket(ctx context.Context,
	req gen.CloseTicketRequestObject) (gen.CloseTicketResponseObject, error) {
	if err := s.store.CloseTicket(ctx, principal(ctx), int64(req.TicketId)); err != nil {
		return nil, err
	}
	return gen.CloseTicket200JSONResponse{}, nil
}

// ticketOut is the wire form of a stored ticket. NOTE: apiv4 takes no
// attachments and stores no e-mail addresses, so attachments is always
// empty and gravatar_id always "".
func ticketOut(t *db.Ticket) gen.Ticket {
	out := gen.Ticket{
		Id: int(t.ID), Summary: t.Summary, Description: t.Description,
		Status: gen.TicketStatus(t.Status), Attachments: []string{}, Closable: t.Status != "closed",
		Closed: nullable.NewNullNullable[gen.Datetime](), GravatarId: "",
		Opened: db.FormatTime(t.Opened), OpenedBy: t.OpenedBy, Updated: db.FormatTime(t.Updated),
		UpdatedBy: nullableOf(t.UpdatedBy), Entity: nullable.NewNullNullable[gen.TicketEntity](),
	}
	if t.Closed != nil {
		out.Closed = nullable.NewNullableWithValue(db.FormatTime(*t.Closed))
	}
	if t.EntityType != nil && t.EntityID != nil {
		out.Entity = nullable.NewNullableWithValue(gen.TicketEntity{
			Id: int(*t.EntityID), Label: deref(t.EntityLabel), Type: *t.EntityType,
			Url: deref(t.EntityURL),
		})
	}
	return out
}

// replyOut is the wire form of a stored reply.
func replyOut(r *db.TicketReply) gen.TicketReply {
	return gen.TicketReply{
		Id: int(r.ID), Created: db.FormatTime(r.Created), CreatedBy: r.CreatedBy,
		Description: r.Description, FromLinode: r.FromSupport, GravatarId: "",
	}
}

// notBlank refuses text that is only white space.
func notBlank(field, text string) error {
	if strings.TrimSpace(text) == "" {
		return db.Errorf(db.Invalid, field, "%s must not be blank", field)
	}
	return nil
}
