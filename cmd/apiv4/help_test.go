package main

import (
	"bytes"
	"context"
	"flag"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestEveryFlagNamesItsVariable runs apiv4 --help and every command's
// --help, and checks that each shows every flag the command declares,
// with the environment variable that also sets it and its default.
func TestEveryFlagNamesItsVariable(t *testing.T) {
	var help bytes.Buffer
	if err := run(context.Background(), []string{"--help"}, noEnv, &help, &help); err != nil {
		t.Fatal(err)
	}
	for _, c := range commands {
		t.Run(c.name, func(t *testing.T) {
			var sub bytes.Buffer
			args := append(strings.Fields(c.name), "--help")
			if err := run(context.Background(), args, noEnv, &sub, &sub); err != nil {
				t.Fatalf("%s --help: %v", c.name, err)
			}
			n := 0
			c.flags(noEnv).VisitAll(func(f *flag.Flag) {
				n++
				if !regexp.MustCompile(`\(APIV4_[A-Z0-9_]+[ ,;].*default `).MatchString(f.Usage) {
					t.Errorf("--%s names no APIV4_ variable and default: %q", f.Name, f.Usage)
				}
				shown := regexp.MustCompile(`(?m)^  -` + regexp.QuoteMeta(f.Name) + `[ \n]`)
				for name, out := range map[string]string{"apiv4 --help": help.String(),
					c.name + " --help": sub.String()} {
					if !shown.MatchString(out) || !strings.Contains(out, f.Usage) {
						t.Errorf("%s does not show --%s with its usage %q", name, f.Name, f.Usage)
					}
				}
			})
			if n == 0 {
				t.Errorf("%s declares no flag for its help", c.name)
			}
		})
	}
}

// TestHelpShowsNoSecret checks that help shows built-in defaults, not
// the values of the environment, which may hold a token.
func TestHelpShowsNoSecret(t *testing.T) {
	env := map[string]string{"APIV4_TOKEN": "s3cret-token", "APIV4_DATABASE_URL": "postgres://u:pw@db/x"}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"--help"}, func(k string) string { return env[k] },
		&out, &out); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"s3cret-token", "pw@db"} {
		if strings.Contains(out.String(), secret) {
			t.Errorf("help shows %q", secret)
		}
	}
}

func TestBadEnvironment(t *testing.T) {
	env := map[string]string{"APIV4_WORKERS": "many"}
	err := run(context.Background(), []string{"serve"}, func(k string) string { return env[k] },
		&bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "APIV4_WORKERS: want an integer") {
		t.Errorf("err = %v, want it to name APIV4_WORKERS", err)
	}
}

// TestStartupLogMasksSecrets checks that serve logs its effective
// configuration first, with the database password masked.
func TestStartupLogMasksSecrets(t *testing.T) {
	var logs bytes.Buffer
	args := []string{"serve", "--database", "postgres://app:s3cret@127.0.0.1:1/apiv4?connect_timeout=1",
		"--log-format", "json", "--workers", "3"}
	err := run(context.Background(), args, noEnv, &bytes.Buffer{}, &logs)
	if err == nil {
		t.Fatal("serve on an unreachable database: want an error")
	}
	first, _, _ := strings.Cut(logs.String(), "\n")
	for _, want := range []string{
		`"msg":"starting"`,
		`"database":"postgres://app:xxxxx@127.0.0.1:1/apiv4?connect_timeout=1"`,
		`"workers":3`, `"stream_keepalive":"15s"`, `"log_format":"json"`,
	} {
		if !strings.Contains(first, want) {
			t.Errorf("first log line lacks %s: %s", want, first)
		}
	}
	if strings.Contains(logs.String(), "s3cret") {
		t.Errorf("the log shows the password:\n%s", logs.String())
	}
}

// TestStartupTokenHintPastes checks that the command serve suggests for a
// token quotes the database URL as one shell word.
func TestStartupTokenHintPastes(t *testing.T) {
	dbURL := "sqlite:" + filepath.Join(t.TempDir(), "my apiv4.db")
	ctx, stop := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	served := make(chan error, 1)
	go func() {
		served <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--database", dbURL},
			noEnv, &bytes.Buffer{}, logs)
	}()
	waitListening(t, logs)
	stop()
	if err := <-served; err != nil {
		t.Fatalf("serve: %v", err)
	}
	want := "apiv4 token create --database '" + dbURL + "' --username YOU"
	if !strings.Contains(logs.String(), want) {
		t.Errorf("the log lacks %q:\n%s", want, logs.String())
	}
}
