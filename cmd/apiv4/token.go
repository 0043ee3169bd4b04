package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"
)

// createToken creates the account and user if needed and prints a new
// token, and only the token, on stdout. The database must be one that
// apiv4 serve has created and migrated.
func createToken(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var cfg config
	var username, account, scopes string
	var expiry time.Duration
	fs := tokenFlags(&cfg, &username, &account, &scopes, &expiry, getenv, stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if len(cfg.envErrs) > 0 {
		return errors.Join(cfg.envErrs...)
	}
	if username == "" {
		return fmt.Errorf("--username is required")
	}
	if account == "" {
		account = username
	}

	store, err := openStore(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer store.Close()
	u, err := store.EnsureUser(ctx, account, username)
	if err != nil {
		return err
	}
	var until *time.Time
	if expiry > 0 {
		t := time.Now().Add(expiry)
		until = &t
	}
	secret, err := store.CreateToken(ctx, u, "cli", scopes, until)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, secret)
	return nil
}

// tokenFlags binds the flags of apiv4 token create.
func tokenFlags(cfg *config, username, account, scopes *string, expiry *time.Duration,
	getenv func(string) string, stderr io.Writer) *flag.FlagSet {
	fs, e := databaseFlags("apiv4 token create", cfg, getenv, stderr)
	e.string(username, "username", "APIV4_USERNAME", "", "the user the token acts as (required)")
	e.string(account, "account", "APIV4_ACCOUNT", "",
		"the user's account, created if needed (default: the username)")
	e.string(scopes, "scopes", "APIV4_SCOPES", "*",
		"space-separated scopes such as 'events:read_only linodes:read_write', or *")
	e.duration(expiry, "expiry", "APIV4_TOKEN_EXPIRY", "0s",
		"how long the token is valid; 0 means until revoked")
	return fs
}
