package db

import (
	"context"
	"fmt"
)

// Ready reports whether the store can serve: the database answers and
// every migration this binary knows has been applied. It returns an
// Unavailable *Error that says which is wrong.
func (s *Store) Ready(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return &Error{Code: Unavailable, Reason: "Database unavailable"}
	}
	dir := "migrations/sqlite"
	if s.IsPostgres() {
		dir = "migrations/postgres"
	}
	m, err := s.migrator(dir)
	if err != nil {
		return err
	}
	ms, err := m.MigrationsWithStatus(ctx)
	if err != nil {
		return translate(fmt.Errorf("migration status: %w", err))
	}
	if pending := ms.Unapplied(); len(pending) > 0 {
		return &Error{Code: Unavailable,
			Reason: fmt.Sprintf("Database migrations pending: %d, first %s_%s", len(pending),
				pending[0].Name, pending[0].Comment)}
	}
	return nil
}

// ForgetMigration marks the applied migration with the given id (the
// number its file name starts with) as not applied, without undoing it;
// tests use it to see the store unready.
func (s *Store) ForgetMigration(ctx context.Context, name string) error {
	_, err := s.db.NewDelete().Table("bun_migrations").Where("name = ?", name).Exec(ctx)
	return translate(err)
}
