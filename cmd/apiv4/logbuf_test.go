package main

import (
	"strings"
	"testing"
	"time"
)

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
