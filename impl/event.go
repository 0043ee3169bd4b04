package impl

import (
	"context"
	"math"

	"github.com/oapi-codegen/nullable"

	"apiv4/db"
	"apiv4/gen"
)

// ListEvents returns a page of the caller's events, newest first.
func (s *Server) ListEvents(ctx context.Context,
	req gen.ListEventsRequestObject) (gen.ListEventsResponseObject, error) {
	q := listQuery(req.Params.Page, req.Params.PageSize, req.Params.XFilter)
	page, err := s.store.ListEvents(ctx, principal(ctx), q)
	if err != nil {
		return nil, err
	}
	return eventPageJSON{encodeEventPage(page)}, nil
}

// GetEvent returns one event of the caller's account.
func (s *Server) GetEvent(ctx context.Context, req gen.GetEventRequestObject) (gen.GetEventResponseObject, error) {
	e, err := s.store.GetEvent(ctx, principal(ctx), int64(req.EventId))
	if err != nil {
		return nil, err
	}
	return eventJSON{encodeEvent(e)}, nil
}

// MarkEventSeen marks the event and every earlier one seen for the caller.
func (s *Server) MarkEventSeen(ctx context.Context,
	req gen.MarkEventSeenRequestObject) (gen.MarkEventSeenResponseObject, error) {
	if err := s.store.MarkEventSeen(ctx, principal(ctx), int64(req.EventId)); err != nil {
		return nil, err
	}
	return gen.MarkEventSeen200JSONResponse{}, nil
}

// MarkEventRead marks one event read for the caller.
func (s *Server) MarkEventRead(ctx context.Context,
	req gen.MarkEventReadRequestObject) (gen.MarkEventReadResponseObject, error) {
	if err := s.store.MarkEventRead(ctx, principal(ctx), int64(req.EventId)); err != nil {
		return nil, err
	}
	return gen.MarkEventRead200JSONResponse{}, nil
}

// listQuery applies the spec's defaults to the paging parameters, which the
// validator has already bounded.
func listQuery(page, pageSize *int, filter *string) db.ListQuery {
	q := db.ListQuery{Page: 1, PageSize: 100}
	if page != nil {
		q.Page = *page
	}
	if pageSize != nil {
		q.PageSize = *pageSize
	}
	// Past this page the offset overflows; every such page is past the end.
	q.Page = min(q.Page, math.MaxInt64/q.PageSize)
	if filter != nil {
		q.Filter = *filter
	}
	return q
}

// eventOut is the wire form of a stored event in gen's types, for the
// stream and export; the list and getEvent write the same JSON straight
// (appendEvent), which eventjson_test checks byte for byte against it.
func eventOut(e *db.Event) gen.Event {
	out := gen.Event{
		Id: int(e.ID), Action: gen.EventAction(e.Action), Status: gen.EventStatus(e.Status),
		Created: db.FormatTime(e.Created), Seen: e.Seen, Read: e.Read,
		Username: nullableOf(e.Username), Message: nullableOf(e.Message),
		PercentComplete: nullableOf(e.PercentComplete), TimeRemaining: nullableOf(e.TimeRemaining),
		Duration: nullableOf(e.Duration), Rate: nullable.NewNullNullable[string](),
		Entity:          nullable.NewNullNullable[gen.EventEntity](),
		SecondaryEntity: nullable.NewNullNullable[gen.EventSecondaryEntity](),
	}
	if e.EntityType != nil {
		ent := gen.EventEntity{Type: gen.EventEntityType(*e.EntityType), Id: nullableOf(intPtr(e.EntityID))}
		if e.EntityLabel != nil {
			ent.Label = *e.EntityLabel
		}
		if e.EntityURL != nil {
			ent.Url = *e.EntityURL
		}
		out.Entity = nullable.NewNullableWithValue(ent)
	}
	out.NotBefore, out.StartTime, out.CompleteTime = nullTime(e.NotBefore), nullTime(e.StartTime()),
		nullTime(e.CompleteTime())
	if sec := e.Secondary(); sec != nil {
		ent := gen.EventSecondaryEntity{Label: sec.Label, Type: sec.Type, Url: sec.URL}
		switch id := sec.ID.(type) {
		case int64:
			_ = ent.Id.FromEventSecondaryEntityId0(int(id))
		case string:
			_ = ent.Id.FromEventSecondaryEntityId1(id)
		}
		out.SecondaryEntity = nullable.NewNullableWithValue(ent)
	}
	return out
}

// nullTime turns a stored time into its wire form, and nil into JSON null.
func nullTime(us *int64) nullable.Nullable[string] {
	if us == nil {
		return nullable.NewNullNullable[string]()
	}
	return nullable.NewNullableWithValue(db.FormatTime(*us))
}

// nullableOf turns a nil pointer into JSON null and any other into its value.
func nullableOf[T any](p *T) nullable.Nullable[T] {
	if p == nil {
		return nullable.NewNullNullable[T]()
	}
	return nullable.NewNullableWithValue(*p)
}

func intPtr(p *int64) *int {
	if p == nil {
		return nil
	}
	n := int(*p)
	return &n
}
