package db_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"apiv4/db"
)

func TestTicketConversation(t *testing.T) {
	eachStore(t, func(t *testing.T, s *db.Store) {
		ctx := context.Background()
		p := mustPrincipal(t, s, "acme", "alice")
		l := mustLinode(t, s, p)

		tk, err := s.OpenTicket(ctx, p, db.NewTicket{
			Summary: "SSH times out", Description: "Since 09:00.", LinodeID: &l.ID,
		})
		if err != nil {
			t.Fatal(err)
		}
		if tk.Status != "new" || tk.OpenedBy != "alice" || *tk.EntityType != "linode" ||
			*tk.EntityID != l.ID || *tk.EntityURL != fmt.Sprintf("/v4/linode/instances/%d", l.ID) {
			t.Fatalf("opened ticket = %+v", tk)
		}

		r1, err := s.SupportReply(ctx, tk.ID, "support", "Looking at the host.")
		if err != nil || !r1.FromSupport || r1.CreatedBy != "support" {
			t.Fatalf("support reply = %+v, %v", r1, err)
		}
		got, _ := s.GetTicket(ctx, p, tk.ID)
		if got.Status != "open" || str(got.UpdatedBy) != "support" {
			t.Fatalf("after support's reply: status %q, updated_by %q; want open by support",
				got.Status, str(got.UpdatedBy))
		}
		r2, err := s.ReplyToTicket(ctx, p, tk.ID, "Thanks.")
		if err != nil || r2.FromSupport || r2.CreatedBy != "alice" {
			t.Fatalf("user reply = %+v, %v", r2, err)
		}
		replies, err := s.ListTicketReplies(ctx, p, tk.ID, db.ListQuery{Page: 1, PageSize: 25})
		if err != nil || replies.Results != 2 || replies.Items[0].ID != r1.ID ||
			replies.Items[1].ID != r2.ID {
			t.Fatalf("replies = %+v, %v; want support's then alice's", replies, err)
		}

		if err := s.CloseTicket(ctx, p, tk.ID); err != nil {
			t.Fatal(err)
		}
		got, _ = s.GetTicket(ctx, p, tk.ID)
		if got.Status != "closed" || got.Closed == nil {
			t.Fatalf("closed ticket = %+v", got)
		}
		if err := s.CloseTicket(ctx, p, tk.ID); !errors.Is(err, db.ErrTicketClosed) {
			t.Errorf("close again: err = %v, want ErrTicketClosed", err)
		}
		if _, err := s.ReplyToTicket(ctx, p, tk.ID, "One more."); !errors.Is(err, db.ErrTicketClosed) {
			t.Errorf("reply to closed: err = %v, want ErrTicketClosed", err)
		}
		if _, err := s.SupportReply(ctx, tk.ID, "support", "x"); !errors.Is(err, db.ErrTicketClosed) {
			t.Errorf("support reply to closed: err = %v, want ErrTicketClosed", err)
		}

		// Every change reached the event feed, about the ticket.
		events := eventsAbout(t, s, p, "ticket", tk.ID)
		want := []struct{ action, user, message string }{
			{"ticket_create", "alice", fmt.Sprintf("Opened ticket %d: SSH times out", tk.ID)},
			{"ticket_update", "", "Your ticket has been updated by support."},
			{"ticket_update", "alice", fmt.Sprintf("Replied to ticket %d: SSH times out", tk.ID)},
			{"ticket_update", "alice", fmt.Sprintf("Closed ticket %d: SSH times out", tk.ID)},
		}
		if len(events) != len(want) {
			t.Fatalf("%d ticket events, want %d", len(events), len(want))
		}
		for i, w := range want {
			e := events[i]
			if e.Action != w.action || str(e.Username) != w.user || str(e.Message) != w.message ||
				e.Status != "notification" || str(e.EntityLabel) != "SSH times out" ||
				str(e.EntityURL) != fmt.Sprintf("/v4/support/tickets/%d", tk.ID) {
				t.Errorf("event %d = %s by %q %q (%s); want %s by %q %q", i, e.Action,
					str(e.Username), str(e.Message), e.Status, w.action, w.user, w.message)
			}
		}
	})
}

func TestTicketsBelongToTheirAccount(t *testing.T) {
	eachStore(t, func(t *testing.T, s *db.Store) {
		ctx := context.Background()
		p := mustPrincipal(t, s, "acme", "alice")
		other := mustPrincipal(t, s, "other", "bob")
		theirs := mustLinode(t, s, other)

		about := db.NewTicket{Summary: "x", Description: "y", LinodeID: &theirs.ID}
		_, err := s.OpenTicket(ctx, p, about)
		var e *db.Error
		if !errors.As(err, &e) || e.Field != "linode_id" || e.Reason != "linode_id is not valid" {
			t.Fatalf("ticket about another account's Linode: err = %v", err)
		}
		tk, err := s.OpenTicket(ctx, p, db.NewTicket{Summary: "x", Description: "y"})
		if err != nil || tk.EntityType != nil {
			t.Fatalf("ticket without a Linode = %+v, %v", tk, err)
		}
		for name, err := range map[string]error{
			"get":   func() error { _, err := s.GetTicket(ctx, other, tk.ID); return err }(),
			"reply": func() error { _, err := s.ReplyToTicket(ctx, other, tk.ID, "hi"); return err }(),
			"list replies": func() error {
				_, err := s.ListTicketReplies(ctx, other, tk.ID, db.ListQuery{Page: 1, PageSize: 25})
				return err
			}(),
			"close": s.CloseTicket(ctx, other, tk.ID),
			"support reply": func() error {
				_, err := s.SupportReply(ctx, tk.ID+1000, "s", "x")
				return err
			}(),
		} {
			if !errors.Is(err, db.ErrNotFound) {
				t.Errorf("%s: err = %v, want ErrNotFound", name, err)
			}
		}
		page, err := s.ListTickets(ctx, other, db.ListQuery{Page: 1, PageSize: 25})
		if err != nil || page.Results != 0 || len(page.Items) != 0 || page.Pages != 1 {
			t.Fatalf("other account's tickets = %+v, %v; want an empty page", page, err)
		}
		if tk, _ := s.GetTicket(ctx, p, tk.ID); tk.Status != "new" {
			t.Errorf("status after the other account's tries = %q, want new", tk.Status)
		}
	})
}

func TestListTickets(t *testing.T) {
	eachStore(t, func(t *testing.T, s *db.Store) {
		ctx := context.Background()
		p := mustPrincipal(t, s, "acme", "alice")
		var ids []int64
		for i := range 4 {
			tk, err := s.OpenTicket(ctx, p, db.NewTicket{Summary: fmt.Sprintf("t%d", i), Description: "d"})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, tk.ID)
		}
		// The newest is closed: it goes after the others.
		if err := s.CloseTicket(ctx, p, ids[3]); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name, filter string
			want         []int64
		}{
			{"default", "", []int64{ids[2], ids[1], ids[0], ids[3]}},
			{"closed", `{"status": "closed"}`, []int64{ids[3]}},
			{"summary", `{"summary": {"+contains": "1"}}`, []int64{ids[1]}},
			{"by id", `{"+order_by": "id"}`, ids},
			{"by opened desc", `{"+order_by": "opened", "+order": "desc"}`,
				[]int64{ids[3], ids[2], ids[1], ids[0]}},
		}
		for _, tt := range tests {
			page, err := s.ListTickets(ctx, p, db.ListQuery{Page: 1, PageSize: 25, Filter: tt.filter})
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			var got []int64
			for _, tk := range page.Items {
				got = append(got, tk.ID)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) || page.Results != len(tt.want) {
				t.Errorf("%s: ids %v (results %d), want %v", tt.name, got, page.Results, tt.want)
			}
		}
		q := db.ListQuery{Page: 1, PageSize: 25, Filter: `{"opened_by": "x"}`}
		_, err := s.ListTickets(ctx, p, q)
		var e *db.Error
		if !errors.As(err, &e) || e.Reason != "Cannot filter on opened_by" {
			t.Errorf("bad key: err = %v", err)
		}
		page, err := s.ListTickets(ctx, p, db.ListQuery{Page: 2, PageSize: 25})
		if err != nil || page.Results != 4 || len(page.Items) != 0 || page.Page != 2 {
			t.Errorf("page past the end = %+v, %v", page, err)
		}
	})
}
