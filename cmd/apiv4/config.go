package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"apiv4/db"
	"apiv4/impl"
)

// config is the configuration of apiv4 serve, read from flags over
// APIV4_* environment variables over defaults.
type config struct {
	Addr        string
	DatabaseURL string
	SimDuration time.Duration
	SimFailRate float64
	// SimUnavailableRate is the share of automatic backups the simulated
	// hypervisor leaves under maintenance.
	SimUnavailableRate float64
	Store              db.Config // address pools, reverse DNS domain, backup interval
	Workers            int
	DBMaxConns         int
	StreamKeepAlive    time.Duration
	EventRetention     time.Duration // 0 keeps events forever
	TokenCacheTTL      time.Duration // 0 looks every token up on every request
	LogLevel           string
	LogFormat          string

	RateLimit      int           // requests per minute per token; 0: no limit
	AuthFailLimit  int           // unknown tokens per minute per address; 0: no limit
	StreamLimit    int           // event streams one token holds open at once; 0: no limit
	RequestTimeout time.Duration // how long one request may take
	ReadTimeout    time.Duration // how long a client may take to send a request
	JobLease       time.Duration // how long a job claim holds without renewal

	envErrs []error // environment variables that did not parse
}

// defaultDatabase is the database used when neither --database nor
// APIV4_DATABASE_URL names one: a file beside the working directory.
const defaultDatabase = "sqlite:apiv4.db"

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

// define binds one flag; an empty def leaves *p at its zero value.
func (e envFlags) define(name, env, def, usage string, set func(string) error) {
	if def != "" {
		if err := set(def); err != nil {
			panic(fmt.Sprintf("bad default for --%s: %v", name, err))
		}
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

// count binds a whole number, 0 or more.
func (e envFlags) count(p *int, name, env, def, usage string) {
	e.define(name, env, def, usage, func(s string) error {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return fmt.Errorf("want a whole number, 0 or more")
		}
		*p = n
		return nil
	})
}

// bool binds a flag that is true when given alone, as in --all.
func (e envFlags) bool(p *bool, name, env, usage string) {
	set := func(s string) error {
		v, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("want true or false")
		}
		*p = v
		return nil
	}
	if v := e.getenv(env); v != "" {
		if err := set(v); err != nil {
			*e.errs = append(*e.errs, fmt.Errorf("%s: %w", env, err))
		}
	}
	e.fs.BoolFunc(name, fmt.Sprintf("%s (%s, default false)", usage, env), set)
}

// list binds a flag given once per value. Its environment variable holds
// the values separated by spaces; the command line, if it gives any,
// replaces them.
func (e envFlags) list(p *[]string, name, env, usage string) {
	fromEnv := false
	if v := e.getenv(env); v != "" {
		*p, fromEnv = strings.Fields(v), true
	}
	e.fs.Func(name, fmt.Sprintf("%s (%s, space-separated; default none)", usage, env), func(s string) error {
		if fromEnv {
			*p, fromEnv = nil, false
		}
		*p = append(*p, s)
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
	e.define("sim-backup-unavailable-rate", "APIV4_SIM_BACKUP_UNAVAILABLE_RATE", "0.1",
		"share of automatic backups the simulation leaves under maintenance, 0 to 1",
		floatSetter(&c.SimUnavailableRate))
	c.Store = db.DefaultConfig()
	e.define("ipv4-pool", "APIV4_IPV4_POOL", c.Store.PublicIPv4.String(),
		"network public IPv4 addresses come from", prefixSetter(&c.Store.PublicIPv4))
	e.define("ipv4-private-pool", "APIV4_IPV4_PRIVATE_POOL", c.Store.PrivateIPv4.String(),
		"network private IPv4 addresses come from", prefixSetter(&c.Store.PrivateIPv4))
	e.define("ipv6-pool", "APIV4_IPV6_POOL", c.Store.IPv6.String(),
		"network IPv6 SLAAC addresses come from", prefixSetter(&c.Store.IPv6))
	e.string(&c.Store.RDNSDomain, "rdns-domain", "APIV4_RDNS_DOMAIN", c.Store.RDNSDomain,
		"domain of the default reverse DNS names, a-b-c-d.DOMAIN")
	e.duration(&c.Store.BackupInterval, "backup-interval", "APIV4_BACKUP_INTERVAL", "24h",
		"time between automatic backups of a Linode")
	e.int(&c.Workers, "workers", "APIV4_WORKERS", "8", "jobs this process runs at once")
	e.int(&c.DBMaxConns, "db-max-conns", "APIV4_DB_MAX_CONNS", fmt.Sprint(db.DefaultMaxConns),
		"PostgreSQL connections this process opens at most")
	e.duration(&c.StreamKeepAlive, "stream-keepalive", "APIV4_STREAM_KEEPALIVE", "15s",
		"idle time after which an event stream sends a keep-alive comment; streams also look "+
			"their token up again this often, and end once it is revoked or expired")
	e.duration(&c.EventRetention, "event-retention", "APIV4_EVENT_RETENTION", "90d",
		"how long events are kept, e.g. 90d or 2160h; 0 keeps them forever")
	e.duration(&c.TokenCacheTTL, "token-cache-ttl", "APIV4_TOKEN_CACHE_TTL", "0",
		"how long this process trusts a token it looked up; off (0) by default so that "+
			"a revoked token stops at once in every process; opt in only if a revoked token "+
			"may keep working that long")
	e.count(&c.RateLimit, "rate-limit", "APIV4_RATE_LIMIT", "6000",
		"requests per minute a token may make, per process; 0 for no limit")
	e.count(&c.AuthFailLimit, "auth-fail-limit", "APIV4_AUTH_FAIL_LIMIT", "600",
		"requests per minute with an unknown token one address may make; 0 for no limit")
	e.count(&c.StreamLimit, "stream-limit", "APIV4_STREAM_LIMIT", fmt.Sprint(impl.DefaultStreamLimit),
		"event streams a token may hold open at once, per process; 0 for no limit")
	e.duration(&c.RequestTimeout, "request-timeout", "APIV4_REQUEST_TIMEOUT", "30s",
		"how long one request may take before it is answered 503")
	e.duration(&c.ReadTimeout, "read-timeout", "APIV4_READ_TIMEOUT", "30s",
		"how long a client may take to send one request, headers and body")
	e.duration(&c.JobLease, "job-lease", "APIV4_JOB_LEASE", "15s",
		"how long a job claimed by a process that died blocks its Linode")
	c.logFlags(e)
}

// databaseFlag binds --database alone, for the operator commands.
func (c *config) databaseFlag(e envFlags) {
	e.string(&c.DatabaseURL, "database", "APIV4_DATABASE_URL", defaultDatabase,
		"database: postgres://… or sqlite:PATH")
}

// logFlags binds --log-level and --log-format.
func (c *config) logFlags(e envFlags) {
	e.string(&c.LogLevel, "log-level", "APIV4_LOG_LEVEL", "info", "debug, info, warn or error")
	e.string(&c.LogFormat, "log-format", "APIV4_LOG_FORMAT", "text", "text or json")
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
	if c.RequestTimeout <= 0 || c.ReadTimeout <= 0 || c.JobLease <= 0 {
		return fmt.Errorf("--request-timeout, --read-timeout and --job-lease must be above 0")
	}
	if err := c.validateLog(); err != nil {
		return err
	}
	return c.Store.Validate()
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
