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
}

func defaultOptions() options {
	return options{keepAlive: 15 * time.Second, retry: 2 * time.Second}
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
