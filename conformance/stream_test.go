package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"apiv4/db/dbtest"
	"apiv4/gen"
)

// streamDeadline bounds every wait for a frame. The issue asks for
// changes to reach a follower within a second; the deadline is generous so
// that a loaded machine does not fail the suite, and the latencies seen
// are logged.
const streamDeadline = 10 * time.Second

// A stream is an open streamEvents response being read by a goroutine.
type stream struct {
	tb      testing.TB
	opening frame
	frames  chan frame
	errs    chan error
	cancel  context.CancelFunc
	last    int64 // position of the last frame received
}

// openStream opens streamEvents on the target as token, with an optional
// X-Filter and Last-Event-ID (< 0: none), and reads its opening frame.
// The stream is closed when the test ends.
func openStream(tb testing.TB, base, token, filter string, lastID int64) *stream {
	tb.Helper()
	tr := newCheckedTransport(tb, base)
	ctx, cancel := context.WithCancel(following(context.Background()))
	tb.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/v4/account/events/stream", nil)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if filter != "" {
		req.Header.Set("X-Filter", filter)
	}
	if lastID >= 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(lastID, 10))
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-cache" {
		tb.Fatalf("got %d, Cache-Control %q; want 200 no-cache", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}

	s := &stream{tb: tb, frames: make(chan frame, 1000), errs: make(chan error, 1), cancel: cancel}
	r := newSSEReader(resp.Body)
	go func() {
		for {
			f, err := r.next()
			if err != nil {
				s.errs <- err
				return
			}
			s.frames <- f
		}
	}()
	s.opening = s.next(tb)
	if s.opening.Retry <= 0 || s.opening.ID < 0 || s.opening.Data != "" {
		tb.Fatalf("opening frame %+v: want retry, id and no data", s.opening)
	}
	s.last = s.opening.ID
	return s
}

// next returns the next frame, failing tb after streamDeadline.
func (s *stream) next(tb testing.TB) frame {
	tb.Helper()
	select {
	case f := <-s.frames:
		return f
	case err := <-s.errs:
		tb.Fatalf("the stream ended: %v", err)
	case <-time.After(streamDeadline):
		tb.Fatalf("no frame within %v", streamDeadline)
	}
	return frame{}
}

// nextEvent returns the next frame that carries an event, checked
// against the spec's Event schema, with its position, which must follow
// the previous one.
func (s *stream) nextEvent(tb testing.TB) (gen.Event, int64) {
	tb.Helper()
	for {
		f := s.next(tb)
		if f.Data == "" {
			continue // keep-alive
		}
		var raw any
		if err := json.Unmarshal([]byte(f.Data), &raw); err != nil {
			tb.Fatalf("frame data is not JSON: %v: %s", err, f.Data)
		}
		schema := mustSpec(tb).spec.Components.Schemas["Event"].Value
		if err := schema.VisitJSON(raw); err != nil {
			tb.Errorf("frame data violates the Event schema: %v\n%s", err, f.Data)
		}
		var e gen.Event
		if err := json.Unmarshal([]byte(f.Data), &e); err != nil {
			tb.Fatal(err)
		}
		if f.ID <= s.last {
			tb.Errorf("frame of event %d has position %d, not after %d", e.Id, f.ID, s.last)
		}
		s.last = f.ID
		return e, f.ID
	}
}

// until reads events until done returns true for one, and returns every
// event read, in order.
func (s *stream) until(tb testing.TB, what string, done func(gen.Event) bool) []gen.Event {
	tb.Helper()
	var got []gen.Event
	deadline := time.Now().Add(jobTimeout)
	for time.Now().Before(deadline) {
		e, _ := s.nextEvent(tb)
		got = append(got, e)
		if done(e) {
			return got
		}
	}
	tb.Fatalf("waited %v for %s; got %d events", jobTimeout, what, len(got))
	return nil
}

// entityFilter is the X-Filter of one Linode's events.
func entityFilter(tb testing.TB, id int) string {
	return filterJSON(tb, map[string]any{"entity.type": "linode", "entity.id": id})
}

// TestEventStream follows one Linode's events while it is changed and
// booted, and checks that every change comes, at once, in order.
func TestEventStream(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg *target) {
		a := tg.api(t, tg.owner)
		l := newIdleLinode(t, a, tg, false)
		s := openStream(t, tg.url, tg.owner, entityFilter(t, l.Id), -1)

		sent := time.Now()
		u := updateLinode(t, a, l.Id, "streamed")
		e, _ := s.nextEvent(t)
		t.Logf("%s: an update reached the stream %v after it was sent", tg.name, time.Since(sent))
		if e.Id != u || e.Action != "linode_update" || e.Status != "notification" {
			t.Fatalf("got event %d %s %s, want the update %d as a notification", e.Id, e.Action, e.Status, u)
		}

		a.must(http.StatusOK, "POST", fmt.Sprintf("/linode/instances/%d/boot", l.Id), nil)
		got := s.until(t, "the boot to finish", func(e gen.Event) bool { return e.Status == "finished" })
		rank := map[gen.EventStatus]int{"scheduled": 0, "started": 1, "finished": 2}
		for i, e := range got {
			if e.Action != "linode_boot" {
				t.Errorf("got a %s event, want only the boot's", e.Action)
			}
			if i > 0 && (rank[e.Status] < rank[got[i-1].Status] ||
				value(e.PercentComplete) < value(got[i-1].PercentComplete)) {
				t.Errorf("the boot went from %s %d%% to %s %d%%", got[i-1].Status,
					value(got[i-1].PercentComplete), e.Status, value(e.PercentComplete))
			}
		}
		last := got[len(got)-1]
		if value(last.PercentComplete) != 100 {
			t.Errorf("the finished boot shows %d%%, want 100", value(last.PercentComplete))
		}
		var now gen.Event
		a.must(http.StatusOK, "GET", fmt.Sprint("/account/events/", last.Id), nil).decode(t, &now)
		if !jsonEqual(t, now, last) {
			t.Errorf("the last frame differs from getEvent:\nframe %+v\nget   %+v", last, now)
		}
	})
}

// TestEventStreamResume drops a stream, changes the Linode meanwhile,
// and checks that resuming from the last position delivers every event
// created or changed since, once, in its current state.
func TestEventStreamResume(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg *target) {
		a := tg.api(t, tg.owner)
		l := newIdleLinode(t, a, tg, false)
		filter := entityFilter(t, l.Id)
		s := openStream(t, tg.url, tg.owner, filter, -1)
		opened := s.opening.ID
		first := updateLinode(t, a, l.Id, "before")
		if e, _ := s.nextEvent(t); e.Id != first {
			t.Fatalf("got event %d, want %d", e.Id, first)
		}
		resumeAt := s.last
		s.cancel()

		// While no one follows: two updates and a whole boot.
		updateLinode(t, a, l.Id, "away-1")
		updateLinode(t, a, l.Id, "away-2")
		a.must(http.StatusOK, "POST", fmt.Sprintf("/linode/instances/%d/boot", l.Id), nil)
		waitIdle(t, a, l.Id)
		tests := []struct {
			name  string
			from  int64
			after int // the last event the stream had delivered before from
		}{
			{"from the last frame", resumeAt, first},
			{"from the opening position", opened, first - 1},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				want := map[int]gen.Event{}
				f := map[string]any{"id": map[string]any{"+gt": tt.after}}
				for _, e := range linodeEvents(t, a, l.Id, f) {
					want[e.Id] = e
				}
				r := openStream(t, tg.url, tg.owner, filter, tt.from)
				if r.opening.ID != tt.from {
					t.Errorf("opening position %d, want the one asked for, %d", r.opening.ID, tt.from)
				}
				got := map[int]gen.Event{}
				for range len(want) {
					e, _ := r.nextEvent(t)
					if _, dup := got[e.Id]; dup {
						t.Errorf("event %d came twice", e.Id)
					}
					got[e.Id] = e
				}
				for id, w := range want {
					if g, ok := got[id]; !ok || !jsonEqual(t, g, w) {
						t.Errorf("event %d: got %+v, want it as now: %+v", id, g, w)
					}
				}
				// Nothing more is waiting: a new change comes next.
				u := updateLinode(t, a, l.Id, "after-"+tt.name)
				if e, _ := r.nextEvent(t); e.Id != u {
					t.Errorf("got event %d after the replay, want the new update %d", e.Id, u)
				}
			})
		}
	})
}

// TestEventStreamRefusals checks a stream's refusals: a bad resume
// position and a bad filter, before anything is streamed.
func TestEventStreamRefusals(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg *target) {
		a := tg.api(t, tg.owner)
		a.do("GET", "/account/events/stream", nil, "Last-Event-ID", "yesterday").
			wantError(t, http.StatusBadRequest, `Last-Event-ID is not valid`, "Last-Event-ID")
		a.do("GET", "/account/events/stream", nil, "X-Filter", `{"message":"x"}`).
			wantError(t, http.StatusBadRequest, "Cannot filter on message", "X-Filter")
	})
}

// TestEventStreamKeepAlive checks that an idle stream sends keep-alive
// comments; the local servers send one after a second of silence.
func TestEventStreamKeepAlive(t *testing.T) {
	if !local() {
		t.Skip("a deployment's keep-alive interval is its own")
	}
	forEachTarget(t, func(t *testing.T, tg *target) {
		s := openStream(t, tg.url, tg.owner, entityFilter(t, unknownID), -1)
		if f := s.next(t); f.Comment != "keep-alive" || f.Data != "" {
			t.Errorf("got frame %+v, want a keep-alive comment", f)
		}
	})
}

// TestEventStreamAcrossProcesses follows the stream through one server
// process while changes are made through another on the same PostgreSQL
// database, and logs how long each took to arrive.
func TestEventStreamAcrossProcesses(t *testing.T) {
	if !local() {
		t.Skip("needs two server processes of its own")
	}
	databaseURL := migrated(t, dbtest.PostgresURL(t))
	token, err := createToken(databaseURL, "alice", "acme", "*")
	if err != nil {
		t.Fatal(err)
	}
	apis, tg := startProcesses(t, databaseURL, token, 2)
	writer, follower := apis[0], apis[1]
	l := newIdleLinode(t, writer, tg, false)
	s := openStream(t, follower.base[:len(follower.base)-len("/v4")], token, entityFilter(t, l.Id), -1)

	var took []time.Duration
	for i := range 10 {
		sent := time.Now()
		writer.must(http.StatusOK, "PUT", fmt.Sprint("/linode/instances/", l.Id),
			map[string]any{"tags": []string{fmt.Sprint("p", i)}})
		e, _ := s.nextEvent(t)
		took = append(took, time.Since(sent))
		if e.Action != "linode_update" {
			t.Errorf("got %s, want linode_update", e.Action)
		}
	}
	slices.Sort(took)
	t.Logf("write through one process to frame from another: min %v, median %v, max %v (%d writes)",
		took[0], took[len(took)/2], took[len(took)-1], len(took))
}

// jsonEqual reports whether two values encode to the same JSON.
func jsonEqual(t *testing.T, a, b any) bool {
	t.Helper()
	return string(mustJSON(t, a)) == string(mustJSON(t, b))
}

// ended waits for the server to end the stream, reading past the frames
// still coming, and fails tb when it has not ended after streamDeadline,
// or a minute on a deployment, whose keep-alive interval (15 s by
// default) the suite does not know. meanwhile, when not nil, is called
// about five times a second while the stream is open, to keep it busy.
func (s *stream) ended(tb testing.TB, meanwhile func()) {
	tb.Helper()
	wait := streamDeadline
	if !local() {
		wait = time.Minute
	}
	deadline := time.After(wait)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-s.frames:
		case <-s.errs:
			return
		case <-tick.C:
			if meanwhile != nil {
				meanwhile()
			}
		case <-deadline:
			tb.Fatalf("the stream was still open after %v", wait)
		}
	}
}

// TestEventStreamStopsWithToken checks that a stream ends by itself once
// its token is revoked or expires, also while frames keep it too busy for
// keep-alives, and that its client's reconnect is then refused, as the
// token's next request would be.
func TestEventStreamStopsWithToken(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg *target) {
		a := tg.api(t, tg.owner)
		busy := newIdleLinode(t, a, tg, false)
		tests := []struct {
			name      string
			expiresIn time.Duration // 0 never expires
			revoke    bool
			busy      bool // the Linode changes five times a second meanwhile
		}{
			{"revoked", 0, true, false},
			{"expired", 3 * time.Second, false, false},
			{"revoked while busy", 0, true, true},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				a := a.in(t)
				body := map[string]any{"label": "streamer", "scopes": "events:read_only"}
				if tt.expiresIn > 0 {
					body["expiry"] = time.Now().Add(tt.expiresIn).UTC().Format(time.RFC3339)
				}
				var tok gen.Token
				a.must(http.StatusOK, "POST", "/profile/tokens", body).decode(t, &tok)
				filter, meanwhile := entityFilter(t, unknownID), func() {}
				if tt.busy {
					filter = entityFilter(t, busy.Id)
					meanwhile = func() {
						a.must(http.StatusOK, "PUT", fmt.Sprint("/linode/instances/", busy.Id),
							map[string]any{"tags": []string{randomHex(4)}})
					}
				}
				s := openStream(t, tg.url, tok.Token, filter, -1)
				if tt.revoke {
					a.must(http.StatusOK, "DELETE", fmt.Sprint("/profile/tokens/", tok.Id), nil)
				}
				s.ended(t, meanwhile)
				a.as(tok.Token).do("GET", "/account/events/stream", nil).
					wantError(t, http.StatusUnauthorized, "Invalid Token", "")
			})
		}
	})
}
