package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// watchConfig is the configuration of apiv4 watch.
type watchConfig struct {
	URL, Token, Format, Filter string
	log                        config // log flags only
}

// watchFlags binds the flags of apiv4 watch.
func watchFlags(c *watchConfig, getenv func(string) string, stderr io.Writer) *flag.FlagSet {
	fs := flagSet("apiv4 watch", stderr)
	e := envFlags{fs, getenv, &c.log.envErrs}
	e.string(&c.URL, "url", "APIV4_URL", "http://127.0.0.1:8080", "the server's base URL, with or without /v4")
	e.string(&c.Token, "token", "APIV4_TOKEN", "", "a token with events:read_only (required)")
	e.string(&c.Format, "format", "APIV4_WATCH_FORMAT", "plain",
		"i3bar (the i3bar JSON protocol) or plain (one line per change, for i3blocks)")
	e.string(&c.Filter, "filter", "APIV4_WATCH_FILTER", "", "an X-Filter the events must match")
	c.log.logFlags(e)
	return fs
}

// watch follows the event stream of a token and prints, on every change,
// how many events are unseen and which is the latest, until ctx ends.
// It reconnects after a dropped connection, resuming from the last
// position it got, so it misses no event. Diagnostics go to stderr.
func watch(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var c watchConfig
	fs := watchFlags(&c, getenv, stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := c.log.validateLog(); err != nil {
		return err
	}
	switch {
	case c.Token == "":
		return fmt.Errorf("--token is required")
	case c.Format != "plain" && c.Format != "i3bar":
		return fmt.Errorf("--format must be i3bar or plain")
	}
	// Both http://host and http://host/v4 name the server.
	trimmed := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(c.URL, "/"), "/v4"), "/")
	base, err := url.Parse(trimmed)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return fmt.Errorf("--url must be an http or https URL such as http://127.0.0.1:8080")
	}
	w := &watcher{
		cfg: c, base: base.String() + "/v4", log: c.log.logger(stderr), out: stdout,
		hc: &http.Client{}, pos: -1, retry: 2 * time.Second,
	}
	if c.Format == "i3bar" {
		fmt.Fprint(stdout, "{\"version\":1}\n[\n")
	}
	return w.run(ctx)
}

// watcher is the state of apiv4 watch.
type watcher struct {
	cfg   watchConfig
	base  string
	log   *slog.Logger
	out   io.Writer
	hc    *http.Client
	pos   int64         // position of the last frame, -1 before the first
	retry time.Duration // reconnection delay the server advised
	shown string        // the last status printed
	lines int
}

// watchEvent is what watch reads of an event.
type watchEvent struct {
	ID     int    `json:"id"`
	Action string `json:"action"`
	Status string `json:"status"`
	Seen   bool   `json:"seen"`
	Entity *struct {
		Label string `json:"label"`
	} `json:"entity"`
}

// errFatal marks an answer that retrying cannot change, such as a bad token.
var errFatal = errors.New("fatal")

func (w *watcher) run(ctx context.Context) error {
	failures := 0
	for {
		err := w.follow(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errFatal) {
			return err
		}
		failures++
		delay := min(w.retry<<min(failures-1, 4), 30*time.Second)
		if err == nil {
			failures, delay = 0, w.retry // the server ended the stream
		}
		w.log.WarnContext(ctx, "stream dropped", "err", err, "retry_in", delay.String(),
			"resume_from", w.pos)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
	}
}

// follow connects once and prints until the stream ends.
func (w *watcher) follow(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", w.base+"/account/events/stream", nil)
	if err != nil {
		return err
	}
	w.auth(req)
	if w.cfg.Filter != "" {
		req.Header.Set("X-Filter", w.cfg.Filter) // only matching events wake the status
	}
	if w.pos >= 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(w.pos, 10))
	}
	resp, err := w.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := answerError(resp); err != nil {
		return err
	}
	w.log.InfoContext(ctx, "connected", "resume_from", w.pos)

	frames := make(chan sseFrame, 64)
	readErr := make(chan error, 1)
	go func() { readErr <- readFrames(ctx, resp.Body, frames) }()

	// The counts are read after the stream is open, so that every change
	// after them comes as a frame.
	if err := w.refresh(ctx); err != nil {
		return err
	}
	for {
		select {
		case err := <-readErr:
			return err
		case f := <-frames:
			w.apply(ctx, f)
			// Take every frame already here, then refresh once.
			for more := true; more; {
				select {
				case f := <-frames:
					w.apply(ctx, f)
				default:
					more = false
				}
			}
			if err := w.refresh(ctx); err != nil {
				return err
			}
		}
	}
}

// apply takes a frame's position and retry advice.
func (w *watcher) apply(ctx context.Context, f sseFrame) {
	if f.retry > 0 {
		w.retry = time.Duration(f.retry) * time.Millisecond
	}
	if f.id >= 0 {
		w.pos = f.id
	}
	if f.data != "" {
		var e watchEvent
		if err := json.Unmarshal([]byte(f.data), &e); err == nil {
			w.log.DebugContext(ctx, "event", "position", f.id, "event_id", e.ID,
				"action", e.Action, "status", e.Status)
		}
	}
}

// refresh reads the unseen count and the latest event from the list, and
// prints the status when it changed.
func (w *watcher) refresh(ctx context.Context) error {
	unseen := `{"seen":false}`
	if w.cfg.Filter != "" {
		unseen = `{"+and":[` + w.cfg.Filter + `,{"seen":false}]}`
	}
	var counted, latest struct {
		Data    []watchEvent `json:"data"`
		Results int          `json:"results"`
	}
	if err := w.get(ctx, unseen, &counted); err != nil {
		return err
	}
	if err := w.get(ctx, w.cfg.Filter, &latest); err != nil {
		return err
	}
	var e *watchEvent
	if len(latest.Data) > 0 {
		e = &latest.Data[0]
	}
	w.show(counted.Results, e)
	return nil
}

// get reads the first page (25 events, newest first) of the events list.
func (w *watcher) get(ctx context.Context, filter string, v any) error {
	req, err := http.NewRequestWithContext(ctx, "GET", w.base+"/account/events?page_size=25", nil)
	if err != nil {
		return err
	}
	w.auth(req)
	if filter != "" {
		req.Header.Set("X-Filter", filter)
	}
	resp, err := w.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := answerError(resp); err != nil {
		return err
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func (w *watcher) auth(req *http.Request) {
	req.Header.Set("Authorization", "Bearer "+w.cfg.Token)
	req.Header.Set("User-Agent", "apiv4-watch")
}

// show prints the status if it differs from the last one printed. The
// event's text, which users chose, is printed with control characters
// escaped, in either format.
func (w *watcher) show(unseen int, latest *watchEvent) {
	text := fmt.Sprintf("%d unseen", unseen)
	color := ""
	if latest != nil {
		label := ""
		if latest.Entity != nil {
			label = " " + latest.Entity.Label
		}
		text += printable(fmt.Sprintf(" · %s %s%s #%d", latest.Action, latest.Status, label, latest.ID))
		switch latest.Status {
		case "failed":
			color = "#ff5555"
		case "scheduled", "started":
			color = "#f1fa8c"
		}
	}
	if text == w.shown {
		return
	}
	w.shown = text
	if w.cfg.Format == "plain" {
		fmt.Fprintln(w.out, text)
		return
	}
	block := map[string]any{"name": "apiv4", "full_text": "apiv4: " + text, "short_text": strconv.Itoa(unseen)}
	if color != "" {
		block["color"] = color
	}
	if unseen > 0 {
		block["urgent"] = latest != nil && latest.Status == "failed"
	}
	b, _ := json.Marshal([]any{block})
	if w.lines > 0 {
		fmt.Fprint(w.out, ",")
	}
	w.lines++
	fmt.Fprintf(w.out, "%s\n", b)
}

// answerError turns a non-200 answer into an error; 400, 401 and 404 are
// fatal: retrying cannot change them.
func answerError(resp *http.Response) error {
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	var body struct {
		Errors []struct{ Reason, Field string } `json:"errors"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&body)
	reason := http.StatusText(resp.StatusCode)
	if len(body.Errors) > 0 {
		reason = printable(body.Errors[0].Reason)
	}
	err := fmt.Errorf("%s %s: %d %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, reason)
	switch resp.StatusCode {
	case http.StatusNotFound:
		return fmt.Errorf("%w: %w: is --url the server's base URL, such as http://127.0.0.1:8080?",
			errFatal, err)
	case http.StatusUnauthorized, http.StatusBadRequest:
		return fmt.Errorf("%w: %w", errFatal, err)
	}
	return err
}

// sseFrame is one Server-Sent Events frame; id is -1 when absent.
type sseFrame struct {
	id    int64
	retry int
	data  string
}

// readFrames sends the frames of an event stream until it ends or ctx is
// done.
func readFrames(ctx context.Context, r io.Reader, out chan<- sseFrame) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	f := sseFrame{id: -1}
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if f.id >= 0 || f.retry > 0 || f.data != "" {
				select {
				case out <- f:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			f = sseFrame{id: -1}
			continue
		}
		name, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch name {
		case "id":
			if n, err := strconv.ParseInt(value, 10, 64); err == nil {
				f.id = n
			}
		case "retry":
			f.retry, _ = strconv.Atoi(value)
		case "data":
			f.data += value
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return io.ErrUnexpectedEOF
}
