package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"apiv4/db"
)

// createToken creates the account and user if needed and prints a new
// token, and only the token, on stdout.
func createToken(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var cfg config
	fs := flagSet("apiv4 token create", stderr)
	cfg.flags(fs, getenv)
	username := fs.String("username", "", "the user the token acts as (required)")
	account := fs.String("account", "", "the user's account, created if needed (default: the username)")
	scopes := fs.String("scopes", "*", "space-separated scopes such as 'events:read_only linodes:read_write', or *")
	expiry := fs.Duration("expiry", 0, "how long the token is valid (default: until revoked)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *username == "" {
		return fmt.Errorf("--username is required")
	}
	if *expiry < 0 {
		return fmt.Errorf("--expiry must be positive")
	}
	if *account == "" {
		*account = *username
	}

	store, err := db.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer store.Close()
	u, err := store.EnsureUser(ctx, *account, *username)
	if err != nil {
		return err
	}
	var until *time.Time
	if *expiry > 0 {
		t := time.Now().Add(*expiry)
		until = &t
	}
	secret, err := store.CreateToken(ctx, u, "cli", *scopes, until)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, secret)
	return nil
}
