package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strconv"
	"time"
)

// config is the configuration of apiv4 serve, read from flags over
// APIV4_* environment variables over defaults.
type config struct {
	Addr        string
	DatabaseURL string
	SimDuration time.Duration
	SimFailRate float64
	Workers     int
	LogLevel    string
	LogFormat   string

	RateLimit      int           // requests per minute per token; 0: no limit
	AuthFailLimit  int           // unknown tokens per minute per address; 0: no limit
	RequestTimeout time.Duration // how long one request may take
	ReadTimeout    time.Duration // how long a client may take to send a request
	JobLease       time.Duration // how long a job claim holds without renewal
}

// flagSet returns an empty flag set that reports errors instead of exiting.
func flagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// flags binds the config to a flag set. Each default is the environment
// variable's value when it is set.
func (c *config) flags(fs *flag.FlagSet, getenv func(string) string) {
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	fs.StringVar(&c.Addr, "addr", env("APIV4_ADDR", "127.0.0.1:8080"),
		"address to listen on (APIV4_ADDR)")
	fs.StringVar(&c.DatabaseURL, "database", env("APIV4_DATABASE_URL", "sqlite:apiv4.db"),
		"database: postgres://… or sqlite:PATH (APIV4_DATABASE_URL)")
	fs.Func("sim-duration", "how long each simulated job takes, a Go duration (APIV4_SIM_DURATION, default 2s)",
		durationSetter(&c.SimDuration))
	fs.Func("sim-fail-rate", "share of simulated jobs that fail, 0 to 1 (APIV4_SIM_FAIL_RATE, default 0)",
		floatSetter(&c.SimFailRate))
	fs.IntVar(&c.Workers, "workers", 8, "jobs this process runs at once")
	fs.StringVar(&c.LogLevel, "log-level", env("APIV4_LOG_LEVEL", "info"),
		"debug, info, warn or error (APIV4_LOG_LEVEL)")
	fs.StringVar(&c.LogFormat, "log-format", env("APIV4_LOG_FORMAT", "text"),
		"text or json (APIV4_LOG_FORMAT)")
	fs.Func("rate-limit", "requests per minute a token may make, per process; 0 for no limit"+
		" (APIV4_RATE_LIMIT, default 6000)", countSetter(&c.RateLimit))
	fs.Func("auth-fail-limit", "requests per minute with an unknown token one address may make;"+
		" 0 for no limit (APIV4_AUTH_FAIL_LIMIT, default 600)", countSetter(&c.AuthFailLimit))
	fs.Func("request-timeout", "how long one request may take before it is answered 503"+
		" (APIV4_REQUEST_TIMEOUT, default 30s)", durationSetter(&c.RequestTimeout))
	fs.Func("read-timeout", "how long a client may take to send one request, headers and body"+
		" (APIV4_READ_TIMEOUT, default 30s)", durationSetter(&c.ReadTimeout))
	fs.Func("job-lease", "how long a job claimed by a process that died blocks its Linode"+
		" (APIV4_JOB_LEASE, default 15s)", durationSetter(&c.JobLease))

	c.SimDuration, c.RateLimit, c.AuthFailLimit = 2*time.Second, 6000, 600
	c.RequestTimeout, c.ReadTimeout, c.JobLease = 30*time.Second, 30*time.Second, 15*time.Second
	for name, set := range map[string]func(string) error{
		"APIV4_SIM_DURATION":    durationSetter(&c.SimDuration),
		"APIV4_SIM_FAIL_RATE":   floatSetter(&c.SimFailRate),
		"APIV4_RATE_LIMIT":      countSetter(&c.RateLimit),
		"APIV4_AUTH_FAIL_LIMIT": countSetter(&c.AuthFailLimit),
		"APIV4_REQUEST_TIMEOUT": durationSetter(&c.RequestTimeout),
		"APIV4_READ_TIMEOUT":    durationSetter(&c.ReadTimeout),
		"APIV4_JOB_LEASE":       durationSetter(&c.JobLease),
	} {
		if v := getenv(name); v != "" {
			_ = set(v)
		}
	}
}

func countSetter(n *int) func(string) error {
	return func(s string) error {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			return fmt.Errorf("want a whole number, 0 or more")
		}
		*n = v
		return nil
	}
}

func durationSetter(d *time.Duration) func(string) error {
	return func(s string) error {
		v, err := time.ParseDuration(s)
		if err != nil || v < 0 {
			return fmt.Errorf("want a non-negative Go duration such as 2s")
		}
		*d = v
		return nil
	}
}

func floatSetter(f *float64) func(string) error {
	return func(s string) error {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v < 0 || v > 1 {
			return fmt.Errorf("want a number from 0 to 1")
		}
		*f = v
		return nil
	}
}

// validate checks what flag parsing cannot.
func (c *config) validate() error {
	if c.Workers < 1 {
		return fmt.Errorf("--workers must be at least 1")
	}
	if c.RequestTimeout <= 0 || c.ReadTimeout <= 0 || c.JobLease <= 0 {
		return fmt.Errorf("--request-timeout, --read-timeout and --job-lease must be above 0")
	}
	if _, err := levelOf(c.LogLevel); err != nil {
		return err
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return fmt.Errorf("--log-format must be text or json")
	}
	return nil
}

func levelOf(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("--log-level must be debug, info, warn or error")
	}
	return l, nil
}

// logger builds the process's logger from the config.
func (c *config) logger(w io.Writer) *slog.Logger {
	level, _ := levelOf(c.LogLevel)
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// maskURL hides the password of a database URL, for logs.
func maskURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
