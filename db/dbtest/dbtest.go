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
	serverOnce.Do(func() { serverURL, serverErr = findServer() })
	if serverErr != nil {
		tb.Fatalf("no PostgreSQL for tests: %v", serverErr)
	}
	return serverURL
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
	server := PostgresServer(tb)
	name := fmt.Sprintf("apiv4_test_%d_%d", os.Getpid(), time.Now().UnixNano())

	admin, err := sql.Open("pgx", server)
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close()
		tb.Fatalf("create test database: %v", err)
	}
	tb.Cleanup(func() {
		defer admin.Close()
		_, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		if err != nil {
			tb.Errorf("drop test database: %v", err)
		}
	})

	u, err := url.Parse(server)
	if err != nil {
		tb.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

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
