package impl

import (
	"time"
)

// Option tunes the handler NewHandler builds.
type Option func(*options)

type options struct {
	metrics   *Metrics
	keepAlive time.Duration   // idle time before a stream sends a keep-alive
	retry     time.Duration   // reconnection delay a stream advises its clients
	stopping  <-chan struct{} // closed when the server stops: streams end
	streamCap int             // event streams one token may hold open; 0: no limit

	tokenRate      Rate
	authFailRate   Rate
	requestTimeout time.Duration
}

// The rate defaults are far above what linodego's flows and the
// conformance suite need, so that only runaway clients meet them.
func defaultOptions() options {
	return options{
		keepAlive:      15 * time.Second,
		retry:          2 * time.Second,
		streamCap:      DefaultStreamLimit,
		tokenRate:      Rate{Burst: 6000, Per: time.Minute},
		authFailRate:   Rate{Burst: 600, Per: time.Minute},
		requestTimeout: 30 * time.Second,
	}
}

// WithMetrics makes the handler record into m and serve it at /metrics.
// Without it, the handler keeps metrics of its own.
func WithMetrics(m *Metrics) Option { return func(o *options) { o.metrics = m } }

// WithStreams sets how event streams behave: after keepAlive without a
// frame they send a keep-alive comment, they advise clients to reconnect
// after retry, and they end when stopping is closed, so that a server can
// shut down while clients follow it. Zero durations keep the defaults
// (15s, 2s).
func WithStreams(keepAlive, retry time.Duration, stopping <-chan struct{}) Option {
	return func(o *options) {
		if keepAlive > 0 {
			o.keepAlive = keepAlive
		}
		if retry > 0 {
			o.retry = retry
		}
		o.stopping = stopping
	}
}

// DefaultStreamLimit is how many event streams one token may hold open
// at once in one process: far more than a person's tabs and terminals.
const DefaultStreamLimit = 10

// WithStreamLimit sets how many event streams one token may hold open at
// once in this process; past it, opening one more is answered 429 until
// one closes. 0 turns the limit off.
func WithStreamLimit(n int) Option { return func(o *options) { o.streamCap = n } }

// WithTokenRate sets the request budget of every token; a zero Burst
// turns the limit off.
func WithTokenRate(r Rate) Option { return func(o *options) { o.tokenRate = r } }

// WithAuthFailureRate sets how many requests with an unknown token one
// address may send; a zero Burst turns the limit off.
func WithAuthFailureRate(r Rate) Option { return func(o *options) { o.authFailRate = r } }

// WithRequestTimeout sets how long a request may take before it is
// answered 503. Event streams are not bound by it: they last as long as
// their client.
func WithRequestTimeout(d time.Duration) Option { return func(o *options) { o.requestTimeout = d } }
