package db_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"apiv4/db"
	"apiv4/db/dbtest"
)

// TestRequireSchema checks that RequireSchema opens only a database that
// apiv4 serve has migrated, and creates and migrates nothing itself.
func TestRequireSchema(t *testing.T) {
	ctx := context.Background()
	for kind, url := range dbtest.URLs(t) {
		t.Run(kind, func(t *testing.T) {
			// A fresh database: empty, or not even a file.
			_, err := db.Open(ctx, url, db.RequireSchema())
			if !errors.Is(err, db.ErrNoSchema) {
				t.Fatalf("fresh database: got %v, want ErrNoSchema", err)
			}
			if path, ok := strings.CutPrefix(url, "sqlite:"); ok {
				if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("the SQLite file was created: %v", err)
				}
			}
			if _, err := db.Open(ctx, url, db.RequireSchema()); !errors.Is(err, db.ErrNoSchema) {
				t.Errorf("still fresh: got %v, want ErrNoSchema (nothing migrated)", err)
			}

			// Migrated by a plain Open, as serve does.
			s, err := db.Open(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			migrated, err := db.Open(ctx, url, db.RequireSchema())
			if err != nil {
				t.Fatalf("migrated database: %v", err)
			}
			migrated.Close()

			if err := s.ForgetMigration(ctx, "20261206060001"); err != nil {
				t.Fatal(err)
			}
			_, err = db.Open(ctx, url, db.RequireSchema())
			if !errors.Is(err, db.ErrNoSchema) || !strings.Contains(err.Error(), "1 migration(s) not applied") {
				t.Errorf("a migration missing: got %v, want ErrNoSchema naming it", err)
			}
		})
	}
}

// TestRequireSchemaEmptySQLiteFile checks that an existing SQLite file
// without apiv4's tables is refused too.
func TestRequireSchemaEmptySQLiteFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := db.Open(context.Background(), "sqlite:"+path, db.RequireSchema())
	if !errors.Is(err, db.ErrNoSchema) || !strings.Contains(err.Error(), "no apiv4 tables") {
		t.Errorf("got %v, want ErrNoSchema: no apiv4 tables", err)
	}
}
