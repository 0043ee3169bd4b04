package main

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the flusher and the test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestLineBufferWritesEveryLineByClose(t *testing.T) {
	var out syncBuffer
	b := newLineBuffer(&out, time.Hour) // no periodic flush in this test
	for range 3 {
		if _, err := b.Write([]byte("level=INFO msg=request\n")); err != nil {
			t.Fatal(err)
		}
	}
	if got := out.String(); got != "" {
		t.Errorf("before Close: %q, want nothing written yet", got)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(out.String(), "msg=request\n"); got != 3 {
		t.Errorf("after Close: %d lines, want 3", got)
	}
}
