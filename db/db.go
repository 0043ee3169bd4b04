// Package db is apiv4's store: bun models, migrations and queries over
// PostgreSQL and SQLite, one transaction per exported method.
package db

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/driver/sqliteshim"
	"github.com/uptrace/bun/migrate"
)

//go:embed migrations
var migrations embed.FS

// TimeLayout is the only timestamp format on the wire: UTC, no zone, no fraction.
const TimeLayout = "2006-01-02T15:04:05"

// Store is the database of one apiv4 deployment. It is safe for concurrent
// use by many goroutines and by many processes sharing one PostgreSQL.
type Store struct {
	db     *bun.DB
	now    func() time.Time
	pg     bool
	tokens *tokenCache // Authenticate's, off unless an operator sets a TTL
	facts  *tokenCache // IdentifyToken's: what never changes about a token
	cfg    Config
	url    string // for the connection that listens for event changes
	feed   feed
	groups groups // the writes that share a commit (see groupWrite)
}

// Config holds the store's settings that live outside the database. Every
// process sharing a database should use the same.
type Config struct {
	PublicIPv4  netip.Prefix // public IPv4 addresses; the pool's first host is the gateway
	PrivateIPv4 netip.Prefix // private IPv4 addresses, given on request
	IPv6        netip.Prefix // SLAAC addresses; at most 64 bits long
	RDNSDomain  string       // default reverse DNS of public IPv4: a-b-c-d.<RDNSDomain>

	BackupInterval time.Duration // time between a Linode's automatic backups
}

// DefaultConfig is the Config a Store opens with.
func DefaultConfig() Config {
	return Config{
		PublicIPv4:     netip.MustParsePrefix("100.64.0.0/10"),
		PrivateIPv4:    netip.MustParsePrefix("192.168.128.0/17"),
		IPv6:           netip.MustParsePrefix("2001:db8::/64"),
		RDNSDomain:     "ip.apiv4.example",
		BackupInterval: 24 * time.Hour,
	}
}

// Validate reports what is wrong with c, if anything.
func (c Config) Validate() error {
	v4 := func(name string, p netip.Prefix) error {
		if !p.IsValid() || !p.Addr().Is4() || p.Bits() > 29 || p.Masked() != p {
			return fmt.Errorf("%s must be an IPv4 network of at least 8 addresses, "+
				"such as 100.64.0.0/10", name)
		}
		return nil
	}
	if err := v4("the public IPv4 pool", c.PublicIPv4); err != nil {
		return err
	}
	if err := v4("the private IPv4 pool", c.PrivateIPv4); err != nil {
		return err
	}
	if c.PublicIPv4.Overlaps(c.PrivateIPv4) {
		return fmt.Errorf("the public and private IPv4 pools overlap")
	}
	p := c.IPv6
	if !p.IsValid() || !p.Addr().Is6() || p.Addr().Is4In6() || p.Bits() > 64 || p.Masked() != p {
		return fmt.Errorf("the IPv6 pool must be an IPv6 network of /64 or larger, " +
			"such as 2001:db8::/64")
	}
	if !IsHostname(c.RDNSDomain) {
		return fmt.Errorf("the reverse DNS domain must be a host name, such as ip.example.net")
	}
	if c.BackupInterval <= 0 {
		return fmt.Errorf("the backup interval must be positive")
	}
	return nil
}

// SetConfig replaces the store's Config, which must be valid.
func (s *Store) SetConfig(c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	s.cfg = c
	return nil
}

// Open connects to url, which is either "postgres://…" (or "postgresql://…")
// or "sqlite:PATH", and applies every pending migration, creating the
// SQLite file if needed; with RequireSchema it creates and migrates
// nothing. The caller closes the Store.
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	o := options{maxConns: DefaultMaxConns}
	for _, opt := range opts {
		opt(&o)
	}
	var bdb *bun.DB
	switch {
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		cfg, err := pgx.ParseConfig(url)
		if err != nil {
			return nil, fmt.Errorf("db: open postgres: %w", err)
		}
		// bun writes its arguments into the SQL text, so preparing its
		// statements would cost a round trip each and reuse nothing. The
		// hot statements are written with $n placeholders instead and ask
		// for a cached prepared statement (see Store.query).
		cfg.DefaultQueryExecMode = pgx.QueryExecModeExec
		sqldb := stdlib.OpenDB(*cfg)
		sqldb.SetMaxOpenConns(o.maxConns)
		sqldb.SetMaxIdleConns(o.maxConns)
		sqldb.SetConnMaxIdleTime(5 * time.Minute)
		bdb = bun.NewDB(sqldb, pgdialect.New())
	case strings.HasPrefix(url, "sqlite:"):
		path := strings.TrimPrefix(url, "sqlite:")
		if path == "" {
			return nil, fmt.Errorf("db: sqlite URL needs a path, as in sqlite:apiv4.db")
		}
		if _, err := os.Stat(path); o.requireSchema && errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: the file %s does not exist", ErrNoSchema, path)
		}
		dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
			"&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"
		sqldb, err := sql.Open(sqliteshim.ShimName, dsn)
		if err != nil {
			return nil, fmt.Errorf("db: open sqlite: %w", err)
		}
		// NOTE: one connection serialises every statement, which is what
		// SQLite does with writers anyway, and rules out SQLITE_BUSY inside
		// this process. Several processes on one file are not supported.
		sqldb.SetMaxOpenConns(1)
		bdb = bun.NewDB(sqldb, sqlitedialect.New())
	default:
		return nil, fmt.Errorf("db: unsupported database URL (want postgres://… or sqlite:PATH)")
	}

	s := &Store{db: bdb, now: time.Now, pg: bdb.Dialect().Name() == dialect.PG,
		tokens: newTokenCache(DefaultTokenCacheTTL, tokenCacheSize),
		facts:  newTokenCache(tokenFactsTTL, tokenCacheSize), cfg: DefaultConfig(), url: url}
	if err := bdb.PingContext(ctx); err != nil {
		bdb.Close()
		return nil, fmt.Errorf("db: connect: %w", err)
	}
	migrate := s.migrate
	if o.requireSchema {
		migrate = s.checkSchema
	}
	if err := migrate(ctx); err != nil {
		bdb.Close()
		return nil, err
	}
	return s, nil
}

// DefaultMaxConns is how many PostgreSQL connections a Store opens at most.
// Three processes and a test suite stay within PostgreSQL's default limit
// of 100.
const DefaultMaxConns = 16

// An Option changes how Open connects.
type Option func(*options)

type options struct {
	maxConns      int
	requireSchema bool
}

// WithMaxConns bounds the PostgreSQL connections of the Store to n, at
// least 2: migrating holds one connection for its lock while it runs
// statements on another, so one alone would wait for ever. SQLite always
// uses one.
func WithMaxConns(n int) Option { return func(o *options) { o.maxConns = max(2, n) } }

// RequireSchema makes Open refuse, with an error wrapping ErrNoSchema, a
// database that does not exist, has no apiv4 tables or misses a migration
// of this binary, instead of creating or migrating it. Commands that act
// on an existing deployment use it, so that a mistyped URL is an error
// rather than a new empty database.
func RequireSchema() Option { return func(o *options) { o.requireSchema = true } }

// ErrNoSchema is wrapped by Open's error, with RequireSchema, when the
// database is not one that apiv4 serve has created and migrated.
var ErrNoSchema = errors.New("db: no apiv4 schema")

// Close stops following event changes and releases the connections.
func (s *Store) Close() error {
	s.closeFeed()
	return s.db.Close()
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// IsPostgres reports whether the store runs on PostgreSQL.
func (s *Store) IsPostgres() bool { return s.pg }

// greatest is the dialect's two-argument maximum function.
func (s *Store) greatest() string {
	if s.IsPostgres() {
		return "GREATEST"
	}
	return "MAX"
}

// SetClock replaces the store's clock; tests use it to make time pass.
func (s *Store) SetClock(now func() time.Time) { s.now = now }

// migrate applies the migrations of the store's dialect. On PostgreSQL an
// advisory lock serialises processes that start together.
func (s *Store) migrate(ctx context.Context) error {
	dir := "migrations/sqlite"
	if s.IsPostgres() {
		dir = "migrations/postgres"
		conn, err := s.db.Conn(ctx)
		if err != nil {
			return fmt.Errorf("db: migrate: %w", err)
		}
		defer conn.Close()
		const key = 4_004_004 // any constant shared by every apiv4 process
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock(?)", key); err != nil {
			return fmt.Errorf("db: migrate lock: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(?)", key)
	}

	m, err := s.migrator(dir)
	if err != nil {
		return err
	}
	if err := m.Init(ctx); err != nil {
		return fmt.Errorf("db: migrate init: %w", err)
	}
	if _, err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("db: migrate: %w", err)
	}
	return nil
}

// checkSchema returns an error wrapping ErrNoSchema unless every
// migration of the store's dialect has been applied.
func (s *Store) checkSchema(ctx context.Context) error {
	tables := "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'bun_migrations'"
	if s.IsPostgres() {
		tables = "SELECT count(*) FROM pg_catalog.pg_tables " +
			"WHERE tablename = 'bun_migrations' AND schemaname = ANY (current_schemas(false))"
	}
	var n int
	if err := s.db.QueryRowContext(ctx, tables).Scan(&n); err != nil {
		return fmt.Errorf("db: check schema: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("%w: the database has no apiv4 tables", ErrNoSchema)
	}
	pending, err := s.pendingMigrations(ctx)
	if err != nil {
		return err
	}
	if len(pending) > 0 {
		return fmt.Errorf("%w: %d migration(s) not applied, first %s_%s", ErrNoSchema, len(pending),
			pending[0].Name, pending[0].Comment)
	}
	return nil
}

// migrator returns a migrator of the migrations in dir.
func (s *Store) migrator(dir string) (*migrate.Migrator, error) {
	sub, err := fs.Sub(migrations, dir)
	if err != nil {
		return nil, fmt.Errorf("db: migrate: %w", err)
	}
	ms := migrate.NewMigrations()
	if err := ms.Discover(sub); err != nil {
		return nil, fmt.Errorf("db: migrate discover: %w", err)
	}
	return migrate.NewMigrator(s.db, ms), nil
}

// querier is a *sql.DB or a *sql.Tx: hand-written statements go to
// database/sql directly, since bun would write the arguments into the text.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// query runs one hand-written statement with $n placeholders. On
// PostgreSQL it is prepared once per connection and its plan reused; SQLite
// reads $n as the n-th argument. The caller closes the rows.
func (s *Store) query(ctx context.Context, q querier, query string,
	args ...any) (*sql.Rows, error) {
	return q.QueryContext(ctx, query, s.prepared(args)...)
}

// queryRow is query for a statement that returns one row: the rows come
// back on it, for the caller to scan and close, or, when there is none,
// the error missing (and no rows).
func (s *Store) queryRow(ctx context.Context, missing error, query string,
	args ...any) (*sql.Rows, error) {
	rows, err := s.query(ctx, s.db.DB, query, args...)
	if err != nil {
		return nil, translate(err)
	}
	if !rows.Next() {
		err := rows.Err()
		rows.Close()
		if err != nil {
			return nil, translate(err)
		}
		return nil, missing
	}
	return rows, nil
}

// prepared returns the arguments of a hand-written statement as the
// driver wants them: on PostgreSQL, led by the option that asks pgx to
// prepare the statement once per connection.
func (s *Store) prepared(args []any) []any {
	if s.pg {
		return append([]any{pgx.QueryExecModeCacheStatement}, args...)
	}
	return args
}

// tx runs fn in one transaction, committed when fn returns nil.
func (s *Store) tx(ctx context.Context, fn func(tx bun.Tx) error) error {
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error { return fn(tx) })
	return translate(err)
}

// translate turns driver errors into the store's vocabulary: no rows is not
// found, a broken connection is unavailable; other errors keep their cause.
func translate(err error) error {
	var e *Error
	switch {
	case err == nil, errors.As(err, &e):
		return err
	case errors.Is(err, sql.ErrNoRows):
		return ErrNotFound
	case isUnavailable(err):
		return &Error{Code: Unavailable, Reason: "Service unavailable, try again shortly."}
	case strings.HasPrefix(err.Error(), "db: "):
		return err
	}
	return fmt.Errorf("db: %w", err)
}

// micros is the storage form of a time: Unix microseconds.
func micros(t time.Time) int64 { return t.UnixMicro() }

// FormatTime formats a stored time (Unix microseconds) for the wire.
func FormatTime(us int64) string { return time.UnixMicro(us).UTC().Format(TimeLayout) }

// ptr returns a pointer to a copy of v.
func ptr[T any](v T) *T { return &v }
