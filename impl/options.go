package impl

import "time"

// Option tunes the protections of the handler NewHandler returns.
type Option func(*options)

type options struct {
	tokenRate      Rate
	authFailRate   Rate
	requestTimeout time.Duration
}

// The defaults are far above what linodego's flows and the conformance
// suite need, so that only runaway clients meet them.
var defaults = options{
	tokenRate:      Rate{Burst: 6000, Per: time.Minute},
	authFailRate:   Rate{Burst: 600, Per: time.Minute},
	requestTimeout: 30 * time.Second,
}

// WithTokenRate sets the request budget of every token; a zero Burst
// turns the limit off.
func WithTokenRate(r Rate) Option { return func(o *options) { o.tokenRate = r } }

// WithAuthFailureRate sets how many requests with an unknown token one
// address may send; a zero Burst turns the limit off.
func WithAuthFailureRate(r Rate) Option { return func(o *options) { o.authFailRate = r } }

// WithRequestTimeout sets how long a request may take before it is
// answered 503.
func WithRequestTimeout(d time.Duration) Option { return func(o *options) { o.requestTimeout = d } }
