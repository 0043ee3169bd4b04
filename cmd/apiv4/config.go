package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"apiv4/db"
)

// config is the configuration of apiv4 serve, read from flags over
// APIV4_* environment variables over defaults.
type config struct {
	envErr error // the first APIV4_* value that did not parse

	Addr        string
	DatabaseURL string
	SimDuration time.Duration
	SimFailRate float64
	// SimUnavailableRate is the share of automatic backups the simulated
	// hypervisor leaves under maintenance.
	SimUnavailableRate float64
	Store              db.Config // address pools, reverse DNS domain, backup interval
	Workers            int
	LogLevel           string
	LogFormat          string
}

// defaultDatabase is the database used when neither --database nor
// APIV4_DATABASE_URL names one.
const defaultDatabase = "sqlite:apiv4.db"

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
	fs.StringVar(&c.DatabaseURL, "database", env("APIV4_DATABASE_URL", defaultDatabase),
		"database: postgres://… or sqlite:PATH (APIV4_DATABASE_URL)")
	fs.Func("sim-duration", "how long each simulated job takes, a Go duration (APIV4_SIM_DURATION, default 2s)",
		durationSetter(&c.SimDuration))
	fs.Func("sim-fail-rate", "share of simulated jobs that fail, 0 to 1 (APIV4_SIM_FAIL_RATE, default 0)",
		floatSetter(&c.SimFailRate))
	fs.Func("sim-backup-unavailable-rate", "share of automatic backups the simulation leaves "+
		"under maintenance, 0 to 1 (APIV4_SIM_BACKUP_UNAVAILABLE_RATE, default 0.1)",
		floatSetter(&c.SimUnavailableRate))
	c.Store = db.DefaultConfig()
	fs.Func("ipv4-pool", "network public IPv4 addresses come from (APIV4_IPV4_POOL, default "+
		c.Store.PublicIPv4.String()+")", prefixSetter(&c.Store.PublicIPv4))
	fs.Func("ipv4-private-pool", "network private IPv4 addresses come from "+
		"(APIV4_IPV4_PRIVATE_POOL, default "+c.Store.PrivateIPv4.String()+")",
		prefixSetter(&c.Store.PrivateIPv4))
	fs.Func("ipv6-pool", "network IPv6 SLAAC addresses come from (APIV4_IPV6_POOL, default "+
		c.Store.IPv6.String()+")", prefixSetter(&c.Store.IPv6))
	fs.StringVar(&c.Store.RDNSDomain, "rdns-domain", env("APIV4_RDNS_DOMAIN", c.Store.RDNSDomain),
		"domain of the default reverse DNS names, a-b-c-d.DOMAIN (APIV4_RDNS_DOMAIN)")
	fs.Func("backup-interval", "time between automatic backups of a Linode "+
		"(APIV4_BACKUP_INTERVAL, default 24h)", durationSetter(&c.Store.BackupInterval))
	fs.IntVar(&c.Workers, "workers", 8, "jobs this process runs at once")
	fs.StringVar(&c.LogLevel, "log-level", env("APIV4_LOG_LEVEL", "info"),
		"debug, info, warn or error (APIV4_LOG_LEVEL)")
	fs.StringVar(&c.LogFormat, "log-format", env("APIV4_LOG_FORMAT", "text"),
		"text or json (APIV4_LOG_FORMAT)")
	c.SimDuration = 2 * time.Second
	if v := getenv("APIV4_SIM_DURATION"); v != "" {
		if err := durationSetter(&c.SimDuration)(v); err != nil {
			c.envErr = fmt.Errorf("APIV4_SIM_DURATION: %w", err)
		}
	}
	if v := getenv("APIV4_SIM_FAIL_RATE"); v != "" && c.envErr == nil {
		if err := floatSetter(&c.SimFailRate)(v); err != nil {
			c.envErr = fmt.Errorf("APIV4_SIM_FAIL_RATE: %w", err)
		}
	}
	c.SimUnavailableRate = 0.1
	if v := getenv("APIV4_SIM_BACKUP_UNAVAILABLE_RATE"); v != "" {
		_ = floatSetter(&c.SimUnavailableRate)(v)
	}
	pools := map[string]*netip.Prefix{
		"APIV4_IPV4_POOL": &c.Store.PublicIPv4, "APIV4_IPV4_PRIVATE_POOL": &c.Store.PrivateIPv4,
		"APIV4_IPV6_POOL": &c.Store.IPv6,
	}
	for name, p := range pools {
		if v := getenv(name); v != "" {
			_ = prefixSetter(p)(v)
		}
	}
	if v := getenv("APIV4_BACKUP_INTERVAL"); v != "" {
		_ = durationSetter(&c.Store.BackupInterval)(v)
	}
}

func prefixSetter(p *netip.Prefix) func(string) error {
	return func(s string) error {
		v, err := netip.ParsePrefix(s)
		if err != nil {
			return fmt.Errorf("want a network such as 100.64.0.0/10")
		}
		*p = v
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
	if c.envErr != nil {
		return c.envErr
	}
	if c.Workers < 1 {
		return fmt.Errorf("--workers must be at least 1")
	}
	if err := c.Store.Validate(); err != nil {
		return err
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

// maskURL hides the password of a database URL, for logs. It works on the
// text, so that a URL Go cannot parse is masked all the same.
func maskURL(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	at := strings.LastIndex(rest, "@")
	if !ok || at < 0 {
		return raw
	}
	user, _, hasPassword := strings.Cut(rest[:at], ":")
	if !hasPassword {
		return raw
	}
	return scheme + "://" + user + ":xxxxx" + rest[at:]
}
