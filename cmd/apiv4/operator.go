package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"apiv4/db"
)

// The operator commands: what the people who run apiv4 do to its accounts
// from a shell, straight on the database.

// storeFlag binds --database to fs, defaulting to APIV4_DATABASE_URL.
func storeFlag(fs *flag.FlagSet, getenv func(string) string) *string {
	def := getenv("APIV4_DATABASE_URL")
	if def == "" {
		def = defaultDatabase
	}
	return fs.String("database", def, "database: postgres://… or sqlite:PATH (APIV4_DATABASE_URL)")
}

// withStore opens the database at url, runs fn on it and closes it.
func withStore(ctx context.Context, url string, fn func(*db.Store) error) error {
	store, err := db.Open(ctx, url)
	if err != nil {
		return err
	}
	defer store.Close()
	return fn(store)
}

// ticketReply answers a support ticket as support.
func ticketReply(ctx context.Context, args []string, getenv func(string) string,
	stdout, stderr io.Writer) error {
	fs := flagSet("apiv4 ticket reply", stderr)
	database := storeFlag(fs, getenv)
	ticket := fs.Int64("ticket", 0, "the id of the ticket to answer (required)")
	message := fs.String("message", "", "the reply, 1 to 65000 characters (required)")
	from := fs.String("from", "support", "the name the reply is signed with")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *ticket <= 0 {
		return fmt.Errorf("--ticket is required")
	}
	if err := checkText("--message", *message, 65000); err != nil {
		return err
	}
	if err := checkText("--from", *from, 100); err != nil {
		return err
	}
	return withStore(ctx, *database, func(s *db.Store) error {
		r, err := s.SupportReply(ctx, *ticket, *from, *message)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "reply %d added to ticket %d\n", r.ID, r.TicketID)
		return nil
	})
}

// feedbackList prints the feedback users sent, oldest first.
func feedbackList(ctx context.Context, args []string, getenv func(string) string,
	stdout, stderr io.Writer) error {
	fs := flagSet("apiv4 feedback list", stderr)
	database := storeFlag(fs, getenv)
	after := fs.Int64("after", 0, "print only messages with an id above this one")
	limit := fs.Int("limit", 1000, "print at most this many messages")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *limit < 1 {
		return fmt.Errorf("--limit must be at least 1")
	}
	return withStore(ctx, *database, func(s *db.Store) error {
		list, err := s.ListFeedback(ctx, *after, *limit)
		if err != nil {
			return err
		}
		for _, f := range list {
			fmt.Fprintf(stdout, "#%d %s %s/%s\n", f.ID, db.FormatTime(f.Created), f.Account, f.Username)
			for _, line := range strings.Split(f.Message, "\n") {
				fmt.Fprintf(stdout, "    %s\n", line)
			}
		}
		return nil
	})
}

// checkText checks that a flag's text is 1 to max characters.
func checkText(flagName, s string, max int) error {
	if n := utf8.RuneCountInString(s); n == 0 || n > max {
		return fmt.Errorf("%s must be 1 to %d characters", flagName, max)
	}
	return nil
}
