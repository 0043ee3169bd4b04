package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestConformanceAgainstAServer runs apiv4 conformance, as a user would
// in their CI, against a server this test starts, and checks that the
// suite passes and prints its coverage table.
func TestConformanceAgainstAServer(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole conformance suite")
	}
	dbURL := migratedSQLite(t) // as serve would; token create migrates nothing
	var tok bytes.Buffer
	args := []string{"token", "create", "--database", dbURL, "--username", "ci"}
	if err := run(context.Background(), args, noEnv, &tok, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}

	ctx, stop := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	served := make(chan error, 1)
	go func() {
		served <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--database", dbURL,
			"--sim-duration", "300ms", "--stream-keepalive", "1s"}, noEnv, &bytes.Buffer{}, logs)
	}()
	defer func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	addr := waitListening(t, logs)

	var out, errOut bytes.Buffer
	args = []string{"conformance", "--base-url", "http://" + addr,
		"--token", strings.TrimSpace(tok.String()), "--source", "../.."}
	if err := run(context.Background(), args, noEnv, &out, &errOut); err != nil {
		t.Fatalf("apiv4 conformance: %v\n%s\n%s", err, errOut.String(), out.String())
	}
	table := out.String()
	if !strings.Contains(table, "Responses seen per documented operation and status:") ||
		!strings.Contains(table, "streamEvents") || strings.Contains(table, "MISSING") {
		t.Errorf("want a coverage table with every pair seen, got:\n%s", table)
	}
}

var listening = regexp.MustCompile(`msg=listening addr=(\S+)`)

func waitListening(t *testing.T, logs *syncBuffer) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := listening.FindStringSubmatch(logs.String()); m != nil {
			return m[1]
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the server did not listen:\n%s", logs.String())
	return ""
}

// syncBuffer is a bytes.Buffer safe for one writer and other readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
