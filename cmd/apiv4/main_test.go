package main

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestTokenCreatePrintsOnlyTheToken(t *testing.T) {
	dbURL := "sqlite:" + filepath.Join(t.TempDir(), "t.db")
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
	}
	var cfg config
	fs := flagSet("test", &bytes.Buffer{})
	cfg.flags(fs, func(k string) string { return env[k] })
	if err := fs.Parse([]string{"--addr", "127.0.0.1:7777"}); err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:7777" || cfg.DatabaseURL != "sqlite:x.db" ||
		cfg.SimDuration.String() != "150ms" || cfg.LogLevel != "debug" {
		t.Errorf("config = %+v; want the flag over the environment over defaults", cfg)
	}
}

func TestMaskURL(t *testing.T) {
	got := maskURL("postgres://app:s3cret@db:5432/apiv4")
	if strings.Contains(got, "s3cret") || !strings.Contains(got, "app:xxxxx@") {
		t.Errorf("maskURL = %q", got)
	}
}
