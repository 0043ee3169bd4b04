package main

import (
	"context"
	"errors"
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

// openStore opens the database of a running deployment. Only apiv4 serve
// creates and migrates a database, so a mistyped --database is refused
// here, with its (masked) URL, rather than becoming a new empty one.
// The caller closes the Store.
func openStore(ctx context.Context, dbURL string) (*db.Store, error) {
	store, err := db.Open(ctx, dbURL, db.RequireSchema(), db.WithMaxConns(2))
	switch {
	case errors.Is(err, db.ErrNoSchema):
		return nil, fmt.Errorf("database %s: %w; check --database, or start "+
			"apiv4 serve --database %s first: only serve creates and migrates a database",
			maskURL(dbURL), err, shellQuote(maskURL(dbURL)))
	case err != nil:
		return nil, fmt.Errorf("database %s: %w", maskURL(dbURL), err)
	}
	return store, nil
}

// withStore opens the database at dbURL with openStore, runs fn on it and
// closes it.
func withStore(ctx context.Context, dbURL string, fn func(*db.Store) error) error {
	store, err := openStore(ctx, dbURL)
	if err != nil {
		return err
	}
	defer store.Close()
	return fn(store)
}

// databaseFlags returns the flag set of a command that acts on the
// database, with --database bound to c, and its envFlags for the rest.
func databaseFlags(name string, c *config, getenv func(string) string,
	stderr io.Writer) (*flag.FlagSet, envFlags) {
	fs := flagSet(name, stderr)
	e := envFlags{fs, getenv, &c.envErrs}
	c.databaseFlag(e)
	return fs, e
}

// parseFlags parses args and reports the environment variables that did
// not parse.
func parseFlags(fs *flag.FlagSet, args []string, envErrs *[]error) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	return errors.Join(*envErrs...)
}

// ticketReplyConfig is the configuration of apiv4 ticket reply.
type ticketReplyConfig struct {
	db            config // --database only
	Ticket        int
	Message, From string
}

// ticketReplyFlags binds the flags of apiv4 ticket reply.
func ticketReplyFlags(c *ticketReplyConfig, getenv func(string) string, stderr io.Writer) *flag.FlagSet {
	fs, e := databaseFlags("apiv4 ticket reply", &c.db, getenv, stderr)
	e.int(&c.Ticket, "ticket", "APIV4_TICKET", "", "the id of the ticket to answer (required)")
	e.string(&c.Message, "message", "APIV4_REPLY_MESSAGE", "", "the reply, 1 to 65000 characters (required)")
	e.string(&c.From, "from", "APIV4_REPLY_FROM", "support", "the name the reply is signed with")
	return fs
}

// ticketReply answers a support ticket as support.
func ticketReply(ctx context.Context, args []string, getenv func(string) string,
	stdout, stderr io.Writer) error {
	var c ticketReplyConfig
	if err := parseFlags(ticketReplyFlags(&c, getenv, stderr), args, &c.db.envErrs); err != nil {
		return err
	}
	if c.Ticket <= 0 {
		return fmt.Errorf("--ticket is required")
	}
	if err := checkText("--message", c.Message, 65000); err != nil {
		return err
	}
	if err := checkText("--from", c.From, 100); err != nil {
		return err
	}
	return withStore(ctx, c.db.DatabaseURL, func(s *db.Store) error {
		r, err := s.SupportReply(ctx, int64(c.Ticket), c.From, c.Message)
		if db.ErrorCode(err) == db.NotFound {
			return fmt.Errorf("no ticket %d in database %s", c.Ticket, maskURL(c.db.DatabaseURL))
		}
		if err != nil {
			return fmt.Errorf("ticket %d: %w", c.Ticket, err)
		}
		fmt.Fprintf(stdout, "reply %d added to ticket %d\n", r.ID, r.TicketID)
		return nil
	})
}

// noticeConfig is the configuration of apiv4 notice post.
type noticeConfig struct {
	db     config // --database only
	notice db.Notice
}

// noticeFlags binds the flags of apiv4 notice post.
func noticeFlags(c *noticeConfig, getenv func(string) string, stderr io.Writer) *flag.FlagSet {
	fs, e := databaseFlags("apiv4 notice post", &c.db, getenv, stderr)
	n := &c.notice
	e.string(&n.Message, "message", "APIV4_NOTICE_MESSAGE", "", "the notice, 1 to 1000 characters (required)")
	e.string(&n.Link, "link", "APIV4_NOTICE_LINK", "", "an http(s) URL where to read more")
	e.list(&n.Accounts, "account", "APIV4_NOTICE_ACCOUNTS", "an account to tell; repeat for several")
	e.bool(&n.All, "all", "APIV4_NOTICE_ALL", "tell every account")
	return fs
}

// noticePost posts a notice to some accounts, or all.
func noticePost(ctx context.Context, args []string, getenv func(string) string,
	stdout, stderr io.Writer) error {
	var c noticeConfig
	if err := parseFlags(noticeFlags(&c, getenv, stderr), args, &c.db.envErrs); err != nil {
		return err
	}
	n := c.notice
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
	return withStore(ctx, c.db.DatabaseURL, func(s *db.Store) error {
		count, err := s.PostNotice(ctx, n)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "notice posted to %d account(s)\n", count)
		return nil
	})
}

// maintenanceConfig is the configuration of apiv4 maintenance schedule.
type maintenanceConfig struct {
	db     config // --database only
	Linode int
	At     string
}

// maintenanceFlags binds the flags of apiv4 maintenance schedule.
func maintenanceFlags(c *maintenanceConfig, getenv func(string) string, stderr io.Writer) *flag.FlagSet {
	fs, e := databaseFlags("apiv4 maintenance schedule", &c.db, getenv, stderr)
	e.int(&c.Linode, "linode", "APIV4_LINODE", "", "the id of the Linode (required)")
	e.string(&c.At, "at", "APIV4_MAINTENANCE_AT", "",
		"when, in the future (required), as one of: a UTC time without zone such as "+
			"2026-12-10T04:00:00; an RFC 3339 time with its zone such as 2026-12-10T05:00:00+01:00 "+
			"or 2026-12-10T04:00:00Z; a delay from now as a Go duration such as 90m or 2h30m")
	return fs
}

// maintenanceSchedule schedules maintenance of one Linode.
func maintenanceSchedule(ctx context.Context, args []string, getenv func(string) string,
	stdout, stderr io.Writer) error {
	var c maintenanceConfig
	if err := parseFlags(maintenanceFlags(&c, getenv, stderr), args, &c.db.envErrs); err != nil {
		return err
	}
	if c.Linode <= 0 {
		return fmt.Errorf("--linode is required")
	}
	when, err := parseWhen(c.At, time.Now())
	if err != nil {
		return err
	}
	return withStore(ctx, c.db.DatabaseURL, func(s *db.Store) error {
		e, err := s.ScheduleMaintenance(ctx, int64(c.Linode), when)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "maintenance of Linode %d scheduled for %s UTC (event %d)\n",
			c.Linode, when.UTC().Format(db.TimeLayout), e.ID)
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
	return time.Time{}, fmt.Errorf("--at wants a UTC time such as 2026-12-10T04:00:00, " +
		"an RFC 3339 time such as 2026-12-10T05:00:00+01:00, or a delay such as 90m")
}

// feedbackConfig is the configuration of apiv4 feedback list.
type feedbackConfig struct {
	db           config // --database only
	After, Limit int
}

// feedbackFlags binds the flags of apiv4 feedback list.
func feedbackFlags(c *feedbackConfig, getenv func(string) string, stderr io.Writer) *flag.FlagSet {
	fs, e := databaseFlags("apiv4 feedback list", &c.db, getenv, stderr)
	e.count(&c.After, "after", "APIV4_FEEDBACK_AFTER", "0", "print only messages with an id above this one")
	e.int(&c.Limit, "limit", "APIV4_FEEDBACK_LIMIT", "1000", "print at most this many messages")
	return fs
}

// feedbackList prints the feedback users sent, oldest first. What users
// wrote is printed with its control characters escaped.
func feedbackList(ctx context.Context, args []string, getenv func(string) string,
	stdout, stderr io.Writer) error {
	var c feedbackConfig
	if err := parseFlags(feedbackFlags(&c, getenv, stderr), args, &c.db.envErrs); err != nil {
		return err
	}
	if c.Limit < 1 {
		return fmt.Errorf("--limit must be at least 1")
	}
	return withStore(ctx, c.db.DatabaseURL, func(s *db.Store) error {
		list, err := s.ListFeedback(ctx, int64(c.After), c.Limit)
		if err != nil {
			return err
		}
		for _, f := range list {
			fmt.Fprintf(stdout, "#%d %s %s/%s\n", f.ID, db.FormatTime(f.Created),
				printable(f.Account), printable(f.Username))
			for _, line := range strings.Split(f.Message, "\n") {
				fmt.Fprintf(stdout, "    %s\n", printable(line))
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
