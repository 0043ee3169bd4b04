// Package dbtest gives tests a fresh, empty database of each kind and drops
// it when the test ends.
package dbtest

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"github.com/ory/dockertest/v3"
	"github.com/ory/dockertest/v3/docker"
)

// LocalPostgres is the server tried when neither Docker nor
// TEST_DATABASE_URL provides one.
const LocalPostgres = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

var (
	serverOnce sync.Once
	serverURL  string
	serverErr  error
)

// PostgresServer returns the URL of a PostgreSQL server for tests: a
// container started with dockertest when a Docker engine answers, else
// TEST_DATABASE_URL, else LocalPostgres. It fails the test when none of them
// answers.
func PostgresServer(tb testing.TB) string {
	tb.Helper()
	u, err := FindPostgresServer()
	if err != nil {
		tb.Fatalf("no PostgreSQL for tests: %v", err)
	}
	return u
}

// FindPostgresServer is PostgresServer for code without a testing.TB, such
// as TestMain. It looks for the server once per process.
func FindPostgresServer() (string, error) {
	serverOnce.Do(func() { serverURL, serverErr = findServer() })
	return serverURL, serverErr
}

func findServer() (string, error) {
	if u, err := dockerPostgres(); err == nil {
		return u, nil
	}
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u, ping(u)
	}
	return LocalPostgres, ping(LocalPostgres)
}

// dockerPostgres starts a throwaway PostgreSQL 15 container. The container
// removes itself after ten minutes even if the tests are killed.
func dockerPostgres() (string, error) {
	pool, err := dockertest.NewPool("")
	if err != nil {
		return "", err
	}
	if err := pool.Client.Ping(); err != nil {
		return "", err // no Docker engine: the normal case on CI machines
	}
	res, err := pool.RunWithOptions(&dockertest.RunOptions{
		Repository: "postgres", Tag: "15",
		Env: []string{"POSTGRES_PASSWORD=apiv4", "POSTGRES_USER=apiv4", "POSTGRES_DB=apiv4"},
	}, func(hc *docker.HostConfig) {
		hc.AutoRemove = true
		hc.RestartPolicy = docker.RestartPolicy{Name: "no"}
	})
	if err != nil {
		return "", err
	}
	_ = res.Expire(600)
	u := "postgres://apiv4:apiv4@" + res.GetHostPort("5432/tcp") + "/apiv4?sslmode=disable"
	pool.MaxWait = 60 * time.Second
	if err := pool.Retry(func() error { return ping(u) }); err != nil {
		_ = pool.Purge(res)
		return "", err
	}
	return u, nil
}

func ping(u string) error {
	db, err := sql.Open("pgx", u)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return db.PingContext(ctx)
}

// PostgresURL creates a fresh database on the test server and returns its
// URL; the database is dropped when the test ends.
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	u, drop, err := CreatePostgres(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := drop(); err != nil {
			tb.Error(err)
		}
	})
	return u
}

// CreatePostgres is PostgresURL for code without a testing.TB, such as
// TestMain: it creates a fresh database on the test server and returns its
// URL and a function that drops it. The caller must call drop.
func CreatePostgres(ctx context.Context) (dbURL string, drop func() error, err error) {
	server, err := FindPostgresServer()
	if err != nil {
		return "", nil, fmt.Errorf("no PostgreSQL for tests: %w", err)
	}
	u, err := url.Parse(server)
	if err != nil {
		return "", nil, fmt.Errorf("test server URL: %w", err)
	}
	name := fmt.Sprintf("apiv4_test_%d_%d_%d", os.Getpid(), time.Now().UnixNano(), nameSeq.Add(1))

	admin, err := sql.Open("pgx", server)
	if err != nil {
		return "", nil, err
	}
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close()
		return "", nil, fmt.Errorf("create test database: %w", err)
	}
	drop = func() error {
		defer admin.Close()
		const stmt = "DROP DATABASE IF EXISTS %s WITH (FORCE)"
		_, err := admin.ExecContext(context.Background(), fmt.Sprintf(stmt, name))
		if err != nil {
			return fmt.Errorf("drop test database: %w", err)
		}
		return nil
	}
	u.Path = "/" + name
	return u.String(), drop, nil
}

// nameSeq tells apart the databases one process creates at once.
var nameSeq atomic.Int64

// SQLiteURL returns the URL of a fresh SQLite file in the test's temporary
// directory.
func SQLiteURL(tb testing.TB) string {
	tb.Helper()
	return "sqlite:" + filepath.Join(tb.TempDir(), "apiv4.db")
}

// URLs returns one fresh database URL of each kind, keyed by kind, for
// tests that run the same checks on both.
func URLs(tb testing.TB) map[string]string {
	tb.Helper()
	return map[string]string{"postgres": PostgresURL(tb), "sqlite": SQLiteURL(tb)}
}
