package main

import (
	"errors"
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
	Addr            string
	DatabaseURL     string
	SimDuration     time.Duration
	SimFailRate     float64
	Workers         int
	StreamKeepAlive time.Duration
	LogLevel        string
	LogFormat       string

	envErrs []error // environment variables that did not parse
}

// flagSet returns an empty flag set that reports errors instead of exiting.
func flagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// envFlags defines flags whose default is taken from an environment
// variable when it is set, and whose usage names that variable.
type envFlags struct {
	fs     *flag.FlagSet
	getenv func(string) string
	errs   *[]error
}

func (e envFlags) define(name, env, def, usage string, set func(string) error) {
	if err := set(def); err != nil {
		panic(fmt.Sprintf("bad default for --%s: %v", name, err))
	}
	if v := e.getenv(env); v != "" {
		if err := set(v); err != nil {
			*e.errs = append(*e.errs, fmt.Errorf("%s: %w", env, err))
		}
	}
	e.fs.Func(name, fmt.Sprintf("%s (%s, default %s)", usage, env, defaultText(def)), set)
}

func defaultText(def string) string {
	if def == "" {
		return "none"
	}
	return def
}

func (e envFlags) string(p *string, name, env, def, usage string) {
	e.define(name, env, def, usage, func(s string) error { *p = s; return nil })
}

func (e envFlags) duration(p *time.Duration, name, env, def, usage string) {
	e.define(name, env, def, usage, durationSetter(p))
}

func (e envFlags) int(p *int, name, env, def, usage string) {
	e.define(name, env, def, usage, func(s string) error {
		n, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("want an integer")
		}
		*p = n
		return nil
	})
}

// flags binds the whole serve configuration to a flag set.
func (c *config) flags(fs *flag.FlagSet, getenv func(string) string) {
	e := envFlags{fs, getenv, &c.envErrs}
	e.string(&c.Addr, "addr", "APIV4_ADDR", "127.0.0.1:8080", "address to listen on")
	c.databaseFlag(e)
	e.duration(&c.SimDuration, "sim-duration", "APIV4_SIM_DURATION", "2s",
		"how long each simulated job takes, a Go duration")
	e.define("sim-fail-rate", "APIV4_SIM_FAIL_RATE", "0", "share of simulated jobs that fail, 0 to 1",
		floatSetter(&c.SimFailRate))
	e.int(&c.Workers, "workers", "APIV4_WORKERS", "8", "jobs this process runs at once")
	e.duration(&c.StreamKeepAlive, "stream-keepalive", "APIV4_STREAM_KEEPALIVE", "15s",
		"idle time after which an event stream sends a keep-alive comment")
	c.logFlags(e)
}

// databaseFlag binds --database alone, for the operator commands.
func (c *config) databaseFlag(e envFlags) {
	e.string(&c.DatabaseURL, "database", "APIV4_DATABASE_URL", "sqlite:apiv4.db",
		"database: postgres://… or sqlite:PATH")
}

// logFlags binds --log-level and --log-format.
func (c *config) logFlags(e envFlags) {
	e.string(&c.LogLevel, "log-level", "APIV4_LOG_LEVEL", "info", "debug, info, warn or error")
	e.string(&c.LogFormat, "log-format", "APIV4_LOG_FORMAT", "text", "text or json")
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
	return c.validateLog()
}

// validateLog checks the environment and the log flags.
func (c *config) validateLog() error {
	if len(c.envErrs) > 0 {
		return errors.Join(c.envErrs...)
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
