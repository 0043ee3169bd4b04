package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"apiv4/db"
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

	EventRetention time.Duration // 0 keeps events forever
	TokenCacheTTL  time.Duration // 0 looks every token up on every request
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
	fs.Func("event-retention", "how long events are kept, e.g. 90d or 2160h; 0 keeps them "+
		"forever (APIV4_EVENT_RETENTION, default 90d)", durationSetter(&c.EventRetention))
	fs.Func("token-cache-ttl", "how long a token looked up is trusted before it is looked up "+
		"again; a revoked token works that long (APIV4_TOKEN_CACHE_TTL, default 5s)",
		durationSetter(&c.TokenCacheTTL))
	c.SimDuration = 2 * time.Second
	c.EventRetention = 90 * 24 * time.Hour
	c.TokenCacheTTL = db.DefaultTokenCacheTTL
	for name, d := range map[string]*time.Duration{"APIV4_SIM_DURATION": &c.SimDuration,
		"APIV4_EVENT_RETENTION": &c.EventRetention, "APIV4_TOKEN_CACHE_TTL": &c.TokenCacheTTL} {
		if v := getenv(name); v != "" {
			_ = durationSetter(d)(v)
		}
	}
	if v := getenv("APIV4_SIM_FAIL_RATE"); v != "" {
		_ = floatSetter(&c.SimFailRate)(v)
	}
}

// durationSetter parses a non-negative Go duration, or a whole number of
// days such as 90d.
func durationSetter(d *time.Duration) func(string) error {
	return func(s string) error {
		v, err := time.ParseDuration(s)
		if days, ok := strings.CutSuffix(s, "d"); ok {
			var n int64
			n, err = strconv.ParseInt(days, 10, 32)
			v = time.Duration(n) * 24 * time.Hour
		}
		if err != nil || v < 0 {
			return fmt.Errorf("want a non-negative Go duration such as 2s, or days such as 90d")
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
