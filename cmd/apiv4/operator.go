package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"
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

// noticePost posts a notice to some accounts, or all.
func noticePost(ctx context.Context, args []string, getenv func(string) string,
	stdout, stderr io.Writer) error {
	fs := flagSet("apiv4 notice post", stderr)
	database := storeFlag(fs, getenv)
	var n db.Notice
	fs.StringVar(&n.Message, "message", "", "the notice, 1 to 1000 characters (required)")
	fs.StringVar(&n.Link, "link", "", "an http(s) URL where to read more")
	fs.Func("account", "an account to tell; repeat for several", func(name string) error {
		n.Accounts = append(n.Accounts, name)
		return nil
	})
	fs.BoolVar(&n.All, "all", false, "tell every account")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := checkText("--message", n.Message, 1000); err != nil {
		return err
	}
	if n.All == (len(n.Accounts) > 0) {
		return fmt.Errorf("give either --account NAME (one or more) or --all")
	}
	if n.Link != "" {
		u, err := url.Parse(n.Link)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("--link must be an absolute http or https URL")
		}
	}
	return withStore(ctx, *database, func(s *db.Store) error {
		count, err := s.PostNotice(ctx, n)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "notice posted to %d account(s)\n", count)
		return nil
	})
}

// maintenanceSchedule schedules maintenance of one Linode.
func maintenanceSchedule(ctx context.Context, args []string, getenv func(string) string,
	stdout, stderr io.Writer) error {
	fs := flagSet("apiv4 maintenance schedule", stderr)
	database := storeFlag(fs, getenv)
	linode := fs.Int64("linode", 0, "the id of the Linode (required)")
	at := fs.String("at", "",
		"when: 2026-12-10T04:00:00 (UTC), RFC 3339, or a delay such as 90m (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *linode <= 0 {
		return fmt.Errorf("--linode is required")
	}
	when, err := parseWhen(*at, time.Now())
	if err != nil {
		return err
	}
	return withStore(ctx, *database, func(s *db.Store) error {
		e, err := s.ScheduleMaintenance(ctx, *linode, when)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "maintenance of Linode %d scheduled for %s UTC (event %d)\n",
			*linode, when.UTC().Format(db.TimeLayout), e.ID)
		return nil
	})
}

// parseWhen reads --at: a UTC time without zone, an RFC 3339 time, or a
// Go duration counted from now.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(db.TimeLayout, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(d), nil
	}
	return time.Time{},
		fmt.Errorf("--at wants a time such as 2026-12-10T04:00:00 or a delay such as 90m")
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
