package db

import (
	"context"
	"fmt"

	"github.com/uptrace/bun/migrate"
)

// Ready reports whether the store can serve: the database answers and
// every migration this binary knows has been applied. It returns an
// Unavailable *Error that says which is wrong.
func (s *Store) Ready(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return &Error{Code: Unavailable, Reason: "Database unavailable"}
	}
	pending, err := s.pendingMigrations(ctx)
	if err != nil {
		return err
	}
	if len(pending) > 0 {
		return &Error{Code: Unavailable,
			Reason: fmt.Sprintf("Database migrations pending: %d, first %s_%s", len(pending),
				pending[0].Name, pending[0].Comment)}
	}
	return nil
}

// pendingMigrations returns the migrations of this binary that the
// database has not applied, oldest first.
func (s *Store) pendingMigrations(ctx context.Context) (migrate.MigrationSlice, error) {
	dir := "migrations/sqlite"
	if s.IsPostgres() {
		dir = "migrations/postgres"
	}
	m, err := s.migrator(dir)
	if err != nil {
		return nil, err
	}
	ms, err := m.MigrationsWithStatus(ctx)
	if err != nil {
		return nil, translate(fmt.Errorf("migration status: %w", err))
	}
	return ms.Unapplied(), nil
}

// ForgetMigration marks the applied migration with the given id (the
// number its file name starts with) as not applied, without undoing it;
// tests use it to see the store unready.
func (s *Store) ForgetMigration(ctx context.Context, name string) error {
	_, err := s.db.NewDelete().Table("bun_migrations").Where("name = ?", name).Exec(ctx)
	return translate(err)
}
