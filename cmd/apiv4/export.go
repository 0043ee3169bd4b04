package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"

	"apiv4/impl"
)

// exportConfig is the configuration of apiv4 export events.
type exportConfig struct {
	cfg      config
	Username string
	Output   string
	After    int
}

// exportFlags binds the flags of apiv4 export events.
func exportFlags(c *exportConfig, getenv func(string) string, stderr io.Writer) *flag.FlagSet {
	fs, e := databaseFlags("apiv4 export events", &c.cfg, getenv, stderr)
	e.string(&c.Username, "username", "APIV4_USERNAME", "",
		"the user whose account is exported, and whose seen and read marks are shown (required)")
	e.string(&c.Output, "output", "APIV4_EXPORT_OUTPUT", "-", "the file to write, - for stdout")
	e.count(&c.After, "after", "APIV4_EXPORT_AFTER", "0",
		"export only events changed after this stream position (to continue an export)")
	return fs
}

// exportBatch is how many events one store read returns.
const exportBatch = 1000

// exportEvents writes every event of a user's account as JSON Lines, each
// an Event as the API answers it plus its stream position, in the order of
// their last change, and reports progress on stderr. The last position
// written is printed on stderr, to continue from with --after.
func exportEvents(ctx context.Context, args []string, getenv func(string) string,
	stdout, stderr io.Writer) error {
	var c exportConfig
	fs := exportFlags(&c, getenv, stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if len(c.cfg.envErrs) > 0 {
		return errors.Join(c.cfg.envErrs...)
	}
	if c.Username == "" {
		return fmt.Errorf("--username is required")
	}

	store, err := openStore(ctx, c.cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer store.Close()
	p, err := store.UserPrincipal(ctx, c.Username)
	if err != nil {
		return fmt.Errorf("user %s: %w", c.Username, err)
	}
	total := 0 // how many changed after a position is not known beforehand
	if c.After == 0 {
		if total, err = store.CountEvents(ctx, p.AccountID); err != nil {
			return err
		}
	}

	out := stdout
	if c.Output != "-" {
		f, err := os.Create(c.Output)
		if err != nil {
			return err
		}
		defer f.Close()
		out = f
	}
	w := bufio.NewWriter(out)
	prog := newProgress(stderr, "exported events", total)
	pos := int64(c.After)
	for {
		events, next, err := store.EventChanges(ctx, p, pos, nil, exportBatch)
		if err != nil {
			return err
		}
		for i := range events {
			line := struct {
				Position int64 `json:"position"`
				impl.WireEvent
			}{events[i].Rev, impl.EventWire(&events[i])}
			b, err := json.Marshal(line)
			if err != nil {
				return err
			}
			w.Write(b)
			w.WriteByte('\n')
		}
		prog.add(len(events))
		pos = next
		if len(events) < exportBatch {
			break
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	prog.finish()
	fmt.Fprintln(stderr, "last position: "+strconv.FormatInt(pos, 10))
	return nil
}
