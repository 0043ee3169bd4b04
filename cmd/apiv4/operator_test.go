package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"apiv4/db"
	"apiv4/db/dbtest"
)

// operatorFixture is a database with one user, alice of acme, and her
// principal, for the operator commands to act on.
func operatorFixture(t *testing.T) (string, *db.Store, *db.Principal) {
	t.Helper()
	url := dbtest.SQLiteURL(t)
	ctx := context.Background()
	s, err := db.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	u, err := s.EnsureUser(ctx, "acme", "alice")
	if err != nil {
		t.Fatal(err)
	}
	secret, err := s.CreateToken(ctx, u, "t", "*", nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Authenticate(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	return url, s, p
}

// runOK runs the command and returns its stdout, failing on an error.
func runOK(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := run(context.Background(), args, noEnv, &out, &errOut); err != nil {
		t.Fatalf("%s: %v (stderr %s)", strings.Join(args, " "), err, errOut.String())
	}
	return out.String()
}

func lastEvent(t *testing.T, s *db.Store, p *db.Principal) db.Event {
	t.Helper()
	page, err := s.ListEvents(context.Background(), p, db.ListQuery{Page: 1, PageSize: 25})
	if err != nil || len(page.Events) == 0 {
		t.Fatalf("events: %+v, %v", page, err)
	}
	return page.Events[0]
}

func TestTicketReply(t *testing.T) {
	url, s, p := operatorFixture(t)
	ctx := context.Background()
	tk, err := s.OpenTicket(ctx, p, db.NewTicket{Summary: "Help", Description: "Please."})
	if err != nil {
		t.Fatal(err)
	}
	out := runOK(t, "ticket", "reply", "--database", url, "--ticket", fmt.Sprint(tk.ID),
		"--message", "On it.", "--from", "Sam at support")
	tail := fmt.Sprintf(" added to ticket %d\n", tk.ID)
	if !strings.HasPrefix(out, "reply ") || !strings.HasSuffix(out, tail) {
		t.Errorf("stdout = %q", out)
	}
	replies, err := s.ListTicketReplies(ctx, p, tk.ID, db.ListQuery{Page: 1, PageSize: 25})
	if err != nil || len(replies.Items) != 1 || replies.Items[0].CreatedBy != "Sam at support" ||
		!replies.Items[0].FromSupport || replies.Items[0].Description != "On it." {
		t.Fatalf("replies = %+v, %v", replies, err)
	}
	e := lastEvent(t, s, p)
	if e.Action != "ticket_update" || *e.Message != "Your ticket has been updated by support." {
		t.Errorf("event = %s %q", e.Action, *e.Message)
	}
}

func TestNoticePost(t *testing.T) {
	url, s, p := operatorFixture(t)
	out := runOK(t, "notice", "post", "--database", url, "--message", "New post on the blog",
		"--link", "https://blog.example.com/new", "--account", "acme")
	if out != "notice posted to 1 account(s)\n" {
		t.Errorf("stdout = %q", out)
	}
	e := lastEvent(t, s, p)
	if e.Action != "notice" || e.Status != "notification" ||
		*e.EntityURL != "https://blog.example.com/new" {
		t.Errorf("event = %+v", e)
	}
	if out := runOK(t, "notice", "post", "--database", url, "--message", "x", "--all"); out !=
		"notice posted to 1 account(s)\n" {
		t.Errorf("--all: stdout = %q", out)
	}
}

func TestMaintenanceSchedule(t *testing.T) {
	url, s, p := operatorFixture(t)
	img := "linode/debian12"
	l, err := s.CreateLinode(context.Background(), p, db.NewLinode{
		Label: "web1", Region: "us-east", Type: "g6-nanode-1", Image: &img, Booted: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	out := runOK(t, "maintenance", "schedule", "--database", url, "--linode", fmt.Sprint(l.ID),
		"--at", at.Format(time.RFC3339))
	want := fmt.Sprintf("maintenance of Linode %d scheduled for %s UTC",
		l.ID, at.Format(db.TimeLayout))
	if !strings.HasPrefix(out, want) {
		t.Errorf("stdout = %q, want it to start %q", out, want)
	}
	e := lastEvent(t, s, p)
	if e.Action != "linode_migrate" || e.Status != "scheduled" || *e.EntityID != l.ID {
		t.Errorf("event = %+v", e)
	}
}

func TestFeedbackList(t *testing.T) {
	url, s, p := operatorFixture(t)
	if err := s.SendFeedback(context.Background(), p, "Great API.\nMore regions?"); err != nil {
		t.Fatal(err)
	}
	out := runOK(t, "feedback", "list", "--database", url)
	lines := strings.Split(out, "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "#1 ") ||
		!strings.HasSuffix(lines[0], " acme/alice") ||
		lines[1] != "    Great API." || lines[2] != "    More regions?" {
		t.Errorf("stdout = %q", out)
	}
}

func TestOperatorMistakes(t *testing.T) {
	url, _, _ := operatorFixture(t)
	dbArgs := []string{"--database", url}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown verb", []string{"ticket", "open"}, `unknown command "ticket"`},
		{"no ticket", []string{"ticket", "reply", "--message", "x"}, "--ticket is required"},
		{"empty reply", []string{"ticket", "reply", "--ticket", "1"}, "--message must be"},
		{"unknown ticket", []string{"ticket", "reply", "--ticket", "42", "--message", "x"},
			"no ticket 42 in database " + url},
		{"no audience", []string{"notice", "post", "--message", "x"}, "--account NAME"},
		{"both audiences", []string{"notice", "post", "--message", "x", "--all",
			"--account", "acme"}, "--account NAME"},
		{"bad link", []string{"notice", "post", "--message", "x", "--all",
			"--link", "javascript:alert(1)"}, "--link must be"},
		{"unknown account", []string{"notice", "post", "--message", "x", "--account", "nosuch"},
			`no account is called "nosuch"`},
		{"bad time", []string{"maintenance", "schedule", "--linode", "1", "--at", "soon"},
			"--at wants"},
		{"past time", []string{"maintenance", "schedule", "--linode", "1",
			"--at", "2020-01-01T00:00:00"}, "must be in the future"},
		{"bad scopes", []string{"token", "create", "--username", "alice",
			"--account", "acme", "--scopes", "events:write"}, "unknown scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			args := tt.args
			if len(args) > 2 {
				args = append(append(args[:2:2], dbArgs...), args[2:]...)
			}
			err := run(context.Background(), args, noEnv, &out, &errOut)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v (stderr %q); want it to mention %q", err, errOut.String(), tt.want)
			}
		})
	}
}

// TestOperatorCommandsNeedAnExistingDatabase checks that every command but
// serve refuses a database that apiv4 serve has not created and migrated,
// names it, and leaves it as it was: a mistyped --database must not
// become a new empty deployment.
func TestOperatorCommandsNeedAnExistingDatabase(t *testing.T) {
	commands := [][]string{
		{"ticket", "reply", "--ticket", "1", "--message", "x"},
		{"notice", "post", "--message", "x", "--all"},
		{"maintenance", "schedule", "--linode", "1", "--at", "90m"},
		{"feedback", "list"},
		{"token", "create", "--username", "alice"},
		{"export", "events", "--username", "alice"},
	}
	empty := filepath.Join(t.TempDir(), "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	databases := []struct{ name, path, want string }{
		{"missing file", filepath.Join(t.TempDir(), "typo.db"), "does not exist"},
		{"no apiv4 tables", empty, "has no apiv4 tables"},
	}
	for _, d := range databases {
		for _, args := range commands {
			t.Run(d.name+"/"+strings.Join(args[:2], " "), func(t *testing.T) {
				dbURL := "sqlite:" + d.path
				var out, errOut bytes.Buffer
				args := append(args[:2:2], append([]string{"--database", dbURL}, args[2:]...)...)
				err := run(context.Background(), args, noEnv, &out, &errOut)
				if err == nil || !strings.Contains(err.Error(), "database "+dbURL+": ") ||
					!strings.Contains(err.Error(), d.want) ||
					!strings.Contains(err.Error(), "start apiv4 serve --database "+dbURL+" first") {
					t.Fatalf("err = %v; want it to name %s, say it %s and suggest apiv4 serve",
						err, dbURL, d.want)
				}
				if out.Len() > 0 {
					t.Errorf("stdout = %q, want nothing", out.String())
				}
				// The empty file may gain SQLite's header, but no table:
				// the next command meets the same refusal.
				if _, err := os.Stat(d.path); d.path != empty && !errors.Is(err, os.ErrNotExist) {
					t.Errorf("the missing file was created: %v", err)
				}
			})
		}
	}
}

// TestFeedbackListEscapesControls checks that what a user wrote cannot
// drive the operator's terminal: control characters and escape sequences
// are shown as visible escapes, line breaks still start indented lines.
func TestFeedbackListEscapesControls(t *testing.T) {
	url, s, p := operatorFixture(t)
	msg := "Hi\x1b[2J\x1b]0;pwned\x07 there\rX\nline two\u202e\u009b"
	if err := s.SendFeedback(context.Background(), p, msg); err != nil {
		t.Fatal(err)
	}
	out := runOK(t, "feedback", "list", "--database", url)
	_, body, _ := strings.Cut(out, "\n")
	want := `    Hi\x1b[2J\x1b]0;pwned\x07 there\x0dX` + "\n" + `    line two\u202e\u009b` + "\n"
	if body != want {
		t.Errorf("got %q, want %q", body, want)
	}
}
