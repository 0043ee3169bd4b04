package impl

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"apiv4/db"
	"apiv4/gen"
)

// streamBatch bounds the events one store read returns to a stream.
const streamBatch = 100

// StreamEvents follows the caller's events: it checks the filter and the
// resume position, then answers with an eventStream that writes frames
// until the client leaves, the server stops or the token stops being
// valid.
//
// NOTE: opening a stream, and each reconnect, spends one request of the
// token's rate budget like any request; the frames of an open stream spend
// none, as they are the answer to that one request. What one token holds
// at once is bounded instead by the stream limit (WithStreamLimit).
func (s *Server) StreamEvents(ctx context.Context,
	req gen.StreamEventsRequestObject) (gen.StreamEventsResponseObject, error) {
	p := principal(ctx)
	var raw string
	if req.Params.XFilter != nil {
		raw = *req.Params.XFilter
	}
	f, err := db.ParseEventFilter(raw)
	if err != nil {
		return nil, err
	}
	var from int64
	if req.Params.LastEventID != nil {
		from = *req.Params.LastEventID
	} else if from, err = s.store.EventRev(ctx, p.AccountID); err != nil {
		return nil, err
	}
	return &eventStream{s: s, ctx: ctx, p: p, filter: f, from: from}, nil
}

// eventStream is the 200 answer of streamEvents. The generated response
// type writes a whole body at once; a stream writes and flushes frame by
// frame, so it implements the response interface itself, with the
// Content-Type and Cache-Control the spec declares.
type eventStream struct {
	s      *Server
	ctx    context.Context
	p      *db.Principal
	filter *db.EventFilter
	from   int64

	checked time.Time // when the token was last found valid
}

// VisitStreamEventsResponse implements gen.StreamEventsResponseObject.
// A token holding its limit of streams is refused with 429 before
// anything is written; HEAD is answered as GET would be, and holds no
// stream.
func (st *eventStream) VisitStreamEventsResponse(w http.ResponseWriter) error {
	opts := st.s.opts
	h := w.Header()
	if !st.s.streams.acquire(st.p.TokenID) {
		st.s.metrics().RateLimitRefused(streamRoute)
		h.Set("Retry-After", strconv.Itoa(int(math.Ceil(opts.retry.Seconds()))))
		return errTooManyStreams
	}
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // ask proxies not to buffer
	if isHead(st.ctx) {
		st.s.streams.release(st.p.TokenID)
		w.WriteHeader(http.StatusOK)
		return nil // HEAD gets the headers of the stream, and no stream
	}
	// The slot is given back before the stream leaves the open count.
	m := st.s.metrics()
	m.streams.Inc()
	defer m.streams.Dec()
	defer st.s.streams.release(st.p.TokenID)
	w.WriteHeader(http.StatusOK)

	st.checked = time.Now()
	out := &frameWriter{w: w, rc: http.NewResponseController(w)}

	// Subscribe before the first read, so that no change falls between.
	wake, unsubscribe := st.s.store.Subscribe(st.p.AccountID)
	defer unsubscribe()
	if err := out.send(fmt.Sprintf("retry: %d\nid: %d\n\n", opts.retry.Milliseconds(), st.from)); err != nil {
		return nil // the client left
	}
	idle := time.NewTimer(opts.keepAlive)
	defer idle.Stop()
	pos := st.from
	for {
		events, next, err := st.s.store.EventChanges(st.ctx, st.p, pos, st.filter, streamBatch)
		if err != nil {
			if st.ctx.Err() == nil {
				st.s.log.WarnContext(st.ctx, "event stream read", "err", err)
			}
			return nil // the client reconnects with Last-Event-ID
		}
		for i := range events {
			if err := out.event(&events[i]); err != nil {
				return nil
			}
			m.streamFrames.Inc()
		}
		pos = next
		if len(events) > 0 {
			idle.Reset(opts.keepAlive)
		}
		if time.Since(st.checked) >= opts.keepAlive && !st.tokenValid() {
			return nil // a busy stream, whose keep-alives never come
		}
		if len(events) == streamBatch {
			continue // more are waiting
		}

		select {
		case <-st.ctx.Done():
			return nil
		case <-opts.stopping:
			return nil
		case <-wake:
		case <-idle.C:
			if !st.tokenValid() {
				return nil
			}
			if err := out.send(": keep-alive\n\n"); err != nil {
				return nil
			}
			idle.Reset(opts.keepAlive)
		}
	}
}

// tokenValid looks the stream's token up again and reports whether it is
// still neither revoked nor expired. A stream stops once its token is
// not: its client's reconnect is refused 401. Streams look at least
// every keep-alive interval, so a token stops its streams within about
// one interval, as it stops its next request at once. A failed look-up
// ends the stream too; its client reconnects and is authenticated anew.
func (st *eventStream) tokenValid() bool {
	_, err := st.s.store.GetToken(st.ctx, st.p, st.p.TokenID)
	if err != nil && db.ErrorCode(err) != db.NotFound && st.ctx.Err() == nil {
		st.s.log.WarnContext(st.ctx, "event stream token check", "err", err)
	}
	st.checked = time.Now()
	return err == nil
}

// errTooManyStreams refuses a stream beyond the token's limit.
var errTooManyStreams = &limitError{reason: "Too many event streams open for this token"}

// streamSlots counts the event streams each token holds open in this
// process and bounds them; a zero limit bounds nothing.
type streamSlots struct {
	limit int
	mu    sync.Mutex
	open  map[int64]int // by token id; tokens holding none are left out
}

func newStreamSlots(limit int) *streamSlots {
	return &streamSlots{limit: limit, open: map[int64]int{}}
}

// acquire takes one of token's slots, or reports false when it holds its
// limit already. Every true must be followed by one release.
func (s *streamSlots) acquire(token int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.limit > 0 && s.open[token] >= s.limit {
		return false
	}
	s.open[token]++
	return true
}

// release gives back one slot acquire took.
func (s *streamSlots) release(token int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open[token]--; s.open[token] <= 0 {
		delete(s.open, token)
	}
}

// frameWriter writes Server-Sent Events frames and flushes each at once.
type frameWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

// writeTimeout bounds one frame's write; it replaces the server's write
// timeout, which a long stream would outlive.
const writeTimeout = 30 * time.Second

func (f *frameWriter) send(frame string) error {
	_ = f.rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := f.w.Write([]byte(frame)); err != nil {
		return err
	}
	return f.rc.Flush()
}

// event writes one event as a frame whose id is its change position.
func (f *frameWriter) event(e *db.Event) error {
	data, err := json.Marshal(eventOut(e))
	if err != nil {
		return err
	}
	return f.send(fmt.Sprintf("id: %d\ndata: %s\n\n", e.Rev, data))
}

// WireEvent is an event as the API sends it.
type WireEvent = gen.Event

// EventWire returns the wire form of a stored event, as getEvent answers
// it; operator commands use it to write events as the API would.
func EventWire(e *db.Event) WireEvent { return eventOut(e) }
