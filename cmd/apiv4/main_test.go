package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"apiv4/db"
	"apiv4/db/dbtest"
)

// migratedSQLite returns the URL of a fresh SQLite file migrated as
// apiv4 serve migrates it, for the commands that need an existing
// deployment.
func migratedSQLite(t *testing.T) string {
	t.Helper()
	dbURL := dbtest.SQLiteURL(t)
	s, err := db.Open(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	return dbURL
}

func TestTokenCreatePrintsOnlyTheToken(t *testing.T) {
	dbURL := migratedSQLite(t)
	var out, errOut bytes.Buffer
	args := []string{"token", "create", "--database", dbURL, "--username", "alice", "--account", "acme"}
	if err := run(context.Background(), args, noEnv, &out, &errOut); err != nil {
		t.Fatalf("run: %v (stderr %s)", err, errOut.String())
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}\n$`).MatchString(out.String()) {
		t.Errorf("stdout = %q, want one 64-hex-digit token and a newline", out.String())
	}
}

func TestBadInvocations(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"no command", nil, nil, "no command given"},
		{"unknown command", []string{"frobnicate"}, nil, `unknown command "frobnicate"`},
		{"token without create", []string{"token"}, nil, "usage: apiv4 token create"},
		{"token without username", []string{"token", "create"}, nil, "--username is required"},
		{"bad log level", []string{"serve", "--log-level", "loud"}, nil, "--log-level must be"},
		{"bad sim duration", []string{"serve", "--sim-duration", "soon"}, nil, "non-negative Go duration"},
		{"bad database", []string{"serve"}, map[string]string{"APIV4_DATABASE_URL": "mysql://x"},
			"unsupported database URL"},
		{"bad environment duration", []string{"serve"}, map[string]string{"APIV4_SIM_DURATION": "5"},
			"APIV4_SIM_DURATION"},
		{"bad environment rate", []string{"serve"}, map[string]string{"APIV4_SIM_FAIL_RATE": "50%"},
			"APIV4_SIM_FAIL_RATE"},
		{"negative expiry", []string{"token", "create", "--username", "a", "--expiry", "-1h"}, nil,
			"non-negative Go duration"},
		{"bad pool", []string{"serve", "--ipv4-pool", "10.0.0.0"}, nil, "want a network"},
		{"pool too small", []string{"serve", "--ipv4-pool", "10.0.0.0/30"}, nil,
			"at least 8 addresses"},
		{"overlapping pools", []string{"serve", "--ipv4-pool", "192.168.0.0/16"}, nil,
			"pools overlap"},
		{"IPv4 as IPv6 pool", []string{"serve"}, map[string]string{"APIV4_IPV6_POOL": "10.0.0.0/8"},
			"IPv6 pool must be"},
		{"bad rdns domain", []string{"serve", "--rdns-domain", "localhost"}, nil,
			"reverse DNS domain must be"},
		{"conformance without scheme", []string{"conformance", "--base-url", "127.0.0.1:8080",
			"--token", "x"}, nil, `--base-url "127.0.0.1:8080" must be an http or https URL`},
		{"bad unavailable rate", []string{"serve", "--sim-backup-unavailable-rate", "2"}, nil,
			"from 0 to 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string { return tt.env[k] }
			var out, errOut bytes.Buffer
			err := run(context.Background(), tt.args, getenv, &out, &errOut)
			if err == nil || !strings.Contains(err.Error()+errOut.String(), tt.want) {
				t.Fatalf("err = %v, stderr %q; want it to mention %q", err, errOut.String(), tt.want)
			}
		})
	}
}

func TestConfigFromEnvironment(t *testing.T) {
	env := map[string]string{
		"APIV4_ADDR": "127.0.0.1:9999", "APIV4_DATABASE_URL": "sqlite:x.db",
		"APIV4_SIM_DURATION": "150ms", "APIV4_LOG_LEVEL": "debug",
		"APIV4_IPV4_POOL": "203.0.113.0/24", "APIV4_IPV6_POOL": "2001:db8:1::/64",
		"APIV4_RDNS_DOMAIN": "rdns.example.net", "APIV4_BACKUP_INTERVAL": "1h",
		"APIV4_SIM_BACKUP_UNAVAILABLE_RATE": "0.5",
	}
	var cfg config
	fs := flagSet("test", &bytes.Buffer{})
	cfg.flags(fs, func(k string) string { return env[k] })
	err := fs.Parse([]string{"--addr", "127.0.0.1:7777", "--ipv4-private-pool", "10.8.0.0/16"})
	if err != nil {
		t.Fatal(err)
	}
	st := cfg.Store
	if st.PublicIPv4.String() != "203.0.113.0/24" || st.PrivateIPv4.String() != "10.8.0.0/16" ||
		st.IPv6.String() != "2001:db8:1::/64" || st.RDNSDomain != "rdns.example.net" ||
		st.BackupInterval != time.Hour || cfg.SimUnavailableRate != 0.5 {
		t.Errorf("store config = %+v, unavailable rate %v", st, cfg.SimUnavailableRate)
	}
	if err := cfg.validate(); err != nil {
		t.Errorf("validate: %v", err)
	}
	if cfg.Addr != "127.0.0.1:7777" || cfg.DatabaseURL != "sqlite:x.db" ||
		cfg.SimDuration.String() != "150ms" || cfg.LogLevel != "debug" {
		t.Errorf("config = %+v; want the flag over the environment over defaults", cfg)
	}
}

func TestMaskURL(t *testing.T) {
	for _, raw := range []string{
		"postgres://app:s3cret@db:5432/apiv4",
		"postgres://app:s3#cret@db:5432/apiv4",
		"postgres://app:s3 c/r%et@db@host:5432/apiv4",
	} {
		got := maskURL(raw)
		if strings.Contains(got, "s3") || !strings.Contains(got, "app:xxxxx@") {
			t.Errorf("maskURL(%q) = %q", raw, got)
		}
	}
	if got := maskURL("sqlite:apiv4.db"); got != "sqlite:apiv4.db" {
		t.Errorf("maskURL(sqlite) = %q", got)
	}
}
