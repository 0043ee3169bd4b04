package conformance

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/linode/linodego"

	"apiv4/gen"
)

// operator runs an operator command of the apiv4 binary (apiv4 ticket
// reply, notice post, ...) on the target's database and returns what it
// printed. A deployment's database is not the suite's to touch: the test
// is skipped there.
func (tg *target) operator(t *testing.T, args ...string) string {
	t.Helper()
	if tg.databaseURL == "" {
		t.Skip("operator commands need the target's database (local targets only)")
	}
	binary, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, append(args, "--database", tg.databaseURL)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("apiv4 %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return string(out)
}

// ticketEvents returns the events about a ticket, newest first, as
// linodego lists them.
func ticketEvents(t *testing.T, c *linodego.Client, id int) []linodego.Event {
	t.Helper()
	f := filterJSON(t, map[string]any{"entity.type": "ticket", "entity.id": id})
	events, err := c.ListEvents(context.Background(), &linodego.ListOptions{Filter: f})
	if err != nil {
		t.Fatalf("ListEvents: %v", err)
	}
	return events
}

// TestTickets follows one support ticket from its opening to its close:
// the account's other user and linodego read it, support answers through
// apiv4 ticket reply, and every step reaches the events list.
func TestTickets(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg *target) {
		ctx := context.Background()
		a := tg.api(t, tg.owner)
		l := newIdleLinode(t, a, tg, false)
		summary := "SSH times out " + runID
		a.do("POST", "/support/tickets", map[string]any{"summary": " \t ", "description": "Help"}).
			wantError(t, http.StatusBadRequest, "summary must not be blank", "summary")
		var tk gen.Ticket
		a.must(http.StatusOK, "POST", "/support/tickets", map[string]any{
			"summary": summary, "description": "Since 09:00 UTC.", "linode_id": l.Id,
		}).decode(t, &tk)
		entity, _ := tk.Entity.Get()
		if tk.Status != "new" || tk.OpenedBy == "" || !tk.Closable || entity.Id != l.Id ||
			entity.Type != "linode" || entity.Url != fmt.Sprint("/v4/linode/instances/", l.Id) {
			t.Fatalf("opened ticket = %+v", tk)
		}

		// linodego v1.69.1 decodes no ticket times (opened, updated and
		// closed are tagged json:"-") and reads closable as "closeable".
		reader := tg.peer // another user of the account, when the target has one
		if reader == "" {
			reader = tg.owner
		}
		peer, _ := tg.linodego(t, reader)
		got, err := peer.GetTicket(ctx, tk.Id)
		if err != nil || got.Status != linodego.TicketNew || got.Summary != summary ||
			got.OpenedBy != tk.OpenedBy || got.Entity == nil || got.Entity.ID != l.Id {
			t.Fatalf("linodego GetTicket as the peer = %+v, %v", got, err)
		}
		list, err := peer.ListTickets(ctx, nil)
		listed := slices.ContainsFunc(list, func(x linodego.Ticket) bool { return x.ID == tk.Id })
		if err != nil || !listed {
			t.Fatalf("linodego ListTickets as the peer: %d tickets, %v; want ticket %d among them",
				len(list), err, tk.Id)
		}
		if tg.other != "" {
			other, _ := tg.linodego(t, tg.other)
			_, err := other.GetTicket(ctx, tk.Id)
			wantAPIError(t, err, http.StatusNotFound, "Not found")
		}

		out := tg.operator(t, "ticket", "reply", "--ticket", fmt.Sprint(tk.Id),
			"--message", "We are looking at the host.")
		if !strings.HasSuffix(out, fmt.Sprintf(" added to ticket %d\n", tk.Id)) {
			t.Errorf("apiv4 ticket reply printed %q", out)
		}
		a.must(http.StatusOK, "GET", fmt.Sprint("/support/tickets/", tk.Id), nil).decode(t, &tk)
		if tk.Status != "open" || value(tk.UpdatedBy) != "support" {
			t.Errorf("after support's reply: status %s, updated by %q; want open by support",
				tk.Status, value(tk.UpdatedBy))
		}
		events := ticketEvents(t, peer, tk.Id)
		if len(events) != 2 || events[0].Action != linodego.ActionTicketUpdate ||
			events[0].Message != "Your ticket has been updated by support." ||
			events[0].Username != "" || events[1].Action != linodego.ActionTicketCreate {
			t.Fatalf("events after support's reply = %+v", events)
		}

		a.do("POST", fmt.Sprint("/support/tickets/", tk.Id, "/replies"), map[string]any{"description": "\n"}).
			wantError(t, http.StatusBadRequest, "description must not be blank", "description")
		a.must(http.StatusOK, "POST", fmt.Sprint("/support/tickets/", tk.Id, "/replies"),
			map[string]any{"description": "Thanks, it works again."})
		var replies gen.TicketReplyPage
		a.must(http.StatusOK, "GET", fmt.Sprint("/support/tickets/", tk.Id, "/replies"), nil).
			decode(t, &replies)
		if replies.Results != 2 || len(replies.Data) != 2 {
			t.Fatalf("replies = %+v; want two", replies)
		}
		first, second := replies.Data[0], replies.Data[1]
		if !first.FromLinode || first.CreatedBy != "support" ||
			second.FromLinode || second.CreatedBy != "alice" {
			t.Errorf("replies = %+v; want support's, then alice's", replies)
		}

		closePath := fmt.Sprint("/support/tickets/", tk.Id, "/close")
		a.must(http.StatusOK, "POST", closePath, nil)
		a.do("POST", closePath, nil).wantError(t, http.StatusBadRequest, "Ticket is closed.", "")
		a.do("POST", fmt.Sprint("/support/tickets/", tk.Id, "/replies"),
			map[string]any{"description": "One more thing."}).
			wantError(t, http.StatusBadRequest, "Ticket is closed.", "")
		got, err = peer.GetTicket(ctx, tk.Id)
		if err != nil || got.Status != linodego.TicketClosed || got.UpdatedBy != "alice" {
			t.Errorf("closed ticket through linodego = %+v, %v", got, err)
		}
		var actions []string
		for _, e := range ticketEvents(t, peer, tk.Id) {
			actions = append(actions, string(e.Action)+" by "+e.Username)
		}
		want := []string{"ticket_update by alice", "ticket_update by alice", "ticket_update by ",
			"ticket_create by alice"}
		if !slices.Equal(actions, want) {
			t.Errorf("ticket events = %q, want %q", actions, want)
		}

		if tg.reader != "" {
			tg.api(t, tg.reader).do("GET", "/support/tickets", nil).wantError(t,
				http.StatusUnauthorized, "Your OAuth token is not authorized to use this endpoint.", "")
		}
	})
}

// TestNotices posts a notice to one account with apiv4 notice post: every
// user of that account finds it in the events list, with its link, and
// the other account does not.
func TestNotices(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg *target) {
		ctx := context.Background()
		message := "New on the blog " + runID + randomHex(2)
		link := "https://blog.example.com/" + randomHex(4)
		out := tg.operator(t, "notice", "post", "--message", message, "--link", link,
			"--account", "acme")
		if out != "notice posted to 1 account(s)\n" {
			t.Errorf("apiv4 notice post printed %q", out)
		}
		notices := func(token string) []linodego.Event {
			c, _ := tg.linodego(t, token)
			events, err := c.ListEvents(ctx, &linodego.ListOptions{Filter: `{"action":"notice"}`})
			if err != nil {
				t.Fatalf("ListEvents: %v", err)
			}
			var mine []linodego.Event
			for _, e := range events {
				if e.Message == message {
					mine = append(mine, e)
				}
			}
			return mine
		}
		for name, token := range map[string]string{"owner": tg.owner, "peer": tg.peer,
			"reader": tg.reader} {
			if token == "" {
				continue // the deployment gave no token for this user
			}
			got := notices(token)
			if len(got) != 1 || got[0].Status != linodego.EventNotification || got[0].Username != "" ||
				got[0].Entity == nil || got[0].Entity.Type != "community" || got[0].Entity.URL != link {
				t.Errorf("%s sees %+v; want the notice once, with its link", name, got)
			}
		}
		if got := notices(tg.other); tg.other != "" && len(got) != 0 {
			t.Errorf("the other account sees the notice %d times, want none", len(got))
		}
	})
}

// TestScheduledMaintenance schedules maintenance of a Linode two seconds
// ahead with apiv4 maintenance schedule: its event is scheduled until
// then, the Linode takes actions meanwhile, and linodego waits for the
// event to finish, after which the Linode runs on another host.
func TestScheduledMaintenance(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg *target) {
		a := tg.api(t, tg.owner)
		l := newIdleLinode(t, a, tg, false)
		minStart := time.Now().Add(-clockSkew)
		// Six seconds leave time to act before it starts, even on a loaded machine.
		tg.operator(t, "maintenance", "schedule", "--linode", fmt.Sprint(l.Id), "--at", "6s")

		events := linodeEvents(t, a, l.Id, map[string]any{"action": "linode_migrate"})
		if len(events) != 1 || !strings.HasPrefix(value(events[0].Message), "Scheduled maintenance") {
			t.Fatalf("maintenance events = %+v", events)
		}
		if events[0].Status != "scheduled" && events[0].Status != "started" &&
			events[0].Status != "finished" {
			t.Errorf("maintenance event status = %s", events[0].Status)
		}
		// Scheduled maintenance does not make the Linode busy.
		a.must(http.StatusOK, "POST", fmt.Sprint("/linode/instances/", l.Id, "/password"),
			map[string]any{"root_pass": testPassword})

		c, _ := tg.linodego(t, tg.owner)
		ev := waitForEventFinished(t, c, l.Id, linodego.ActionLinodeMigrate, minStart)
		if ev.ID != events[0].Id || ev.Status != linodego.EventFinished {
			t.Fatalf("WaitForEventFinished = %+v, want event %d finished", ev, events[0].Id)
		}
		// It says when it was due: some six seconds after it was scheduled,
		// and so before it finished.
		if nb := ev.NotBefore; nb == nil || nb.Before(minStart.Add(5*time.Second)) ||
			nb.After(time.Now().Add(clockSkew)) {
			t.Errorf("not_before = %v, want about six seconds after %v", nb, minStart)
		}
		if nb, err := events[0].NotBefore.Get(); err != nil || nb == "" {
			t.Errorf("the scheduled event's not_before = %q, %v; want its time", nb, err)
		}
		after := waitIdle(t, a, l.Id)
		if after.HostUuid == l.HostUuid || after.Status != "offline" {
			t.Errorf("after maintenance: host %s (was %s), status %s; want a new host, offline",
				after.HostUuid, l.HostUuid, after.Status)
		}
	})
}

// TestFeedback sends feedback with a token of narrow scopes, which any
// valid token may, and finds it in apiv4 feedback list.
func TestFeedback(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg *target) {
		token, user := tg.reader, "carol"
		if token == "" {
			token, user = tg.owner, "alice"
		}
		a := tg.api(t, token)
		message := "Please add more regions " + runID + randomHex(2)
		r := a.must(http.StatusOK, "POST", "/feedback", map[string]any{"message": message})
		if strings.TrimSpace(string(r.Body)) != "{}" {
			t.Errorf("got body %s, want {}", r.Body)
		}
		if r.Header.Get("X-Accepted-OAuth-Scopes") != "" {
			t.Errorf("X-Accepted-OAuth-Scopes = %q, want none", r.Header.Get("X-Accepted-OAuth-Scopes"))
		}
		a.do("POST", "/feedback", map[string]any{"message": strings.Repeat("x", 5001)}).
			wantError(t, http.StatusBadRequest, "message: maximum string length is 5000", "message")
		// Line breaks and tabs are text; an escape sequence is not.
		a.must(http.StatusOK, "POST", "/feedback", map[string]any{"message": "two\r\nlines\tand a tab"})
		a.do("POST", "/feedback", map[string]any{"message": "\x1b]0;pwned\x07"}).
			wantError(t, http.StatusBadRequest, controlReason, "message")

		out := tg.operator(t, "feedback", "list")
		i := strings.Index(out, "    "+message+"\n")
		if i < 0 {
			t.Fatalf("apiv4 feedback list does not show the message:\n%s", out)
		}
		header := out[strings.LastIndex(out[:i-1], "\n")+1 : i]
		if !strings.HasSuffix(header, " acme/"+user+"\n") {
			t.Errorf("the message is headed %q, want it from acme/%s", header, user)
		}
	})
}
