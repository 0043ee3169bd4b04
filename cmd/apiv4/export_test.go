package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"apiv4/db"
)

func TestExportEvents(t *testing.T) {
	ctx := context.Background()
	dbURL := "sqlite:" + filepath.Join(t.TempDir(), "t.db")
	store, err := db.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u, err := store.EnsureUser(ctx, "acme", "alice")
	if err != nil {
		t.Fatal(err)
	}
	p := &db.Principal{AccountID: u.AccountID, UserID: u.ID, Username: "alice", Scopes: "*"}
	for range 3 {
		if _, err := store.CreateLinode(ctx, p, db.NewLinode{Region: "us-east", Type: "g6-nanode-1"}); err != nil {
			t.Fatal(err)
		}
	}
	store.Close()

	tests := []struct {
		name          string
		after         string
		wantPositions []int64
		wantProgress  string
	}{
		{"everything", "0", []int64{1, 2, 3}, "exported events: 3 of 3 (100%)"},
		{"after a position", "2", []int64{3}, "exported events: 1, "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			args := []string{"export", "events", "--database", dbURL, "--username", "alice", "--after", tt.after}
			if err := run(ctx, args, noEnv, &out, &errOut); err != nil {
				t.Fatalf("export: %v\n%s", err, errOut.String())
			}
			var got []int64
			for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
				var e struct {
					Position int64  `json:"position"`
					Action   string `json:"action"`
					Status   string `json:"status"`
				}
				if err := json.Unmarshal([]byte(line), &e); err != nil {
					t.Fatalf("line %q: %v", line, err)
				}
				if e.Action != "linode_create" || e.Status != "scheduled" {
					t.Errorf("got %s %s, want linode_create scheduled", e.Action, e.Status)
				}
				got = append(got, e.Position)
			}
			if len(got) != len(tt.wantPositions) || got[0] != tt.wantPositions[0] {
				t.Errorf("got positions %v, want %v", got, tt.wantPositions)
			}
			if !strings.Contains(errOut.String(), tt.wantProgress) ||
				!strings.Contains(errOut.String(), "last position: 3") {
				t.Errorf("stderr = %q, want progress %q and the last position", errOut.String(), tt.wantProgress)
			}
		})
	}

	err = run(ctx, []string{"export", "events", "--database", dbURL, "--username", "nobody"},
		noEnv, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "user nobody: Not found") {
		t.Errorf("unknown user: err = %v", err)
	}

	var errOut bytes.Buffer
	err = run(ctx, []string{"export", "events", "--database", dbURL, "--username", "alice", "--after", "-5"},
		noEnv, &bytes.Buffer{}, &errOut)
	if err == nil || !strings.Contains(errOut.String(), "want a whole number, 0 or more") {
		t.Errorf("--after -5: err = %v, stderr %q; want it refused", err, errOut.String())
	}
}
