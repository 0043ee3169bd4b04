package impl

import (
	"strings"
	"testing"
)

// TestSaneRequestID holds the check of a client's X-Request-Id to its
// rule: 1 to 64 letters, digits, '.', '_' or '-'.
func TestSaneRequestID(t *testing.T) {
	tests := []struct {
		name, id string
		want     bool
	}{
		{"empty", "", false},
		{"one letter", "a", true},
		{"every kind", "Trace.42_x-Y", true},
		{"64 characters", strings.Repeat("a", 64), true},
		{"65 characters", strings.Repeat("a", 65), false},
		{"space", "a b", false},
		{"slash", "a/b", false},
		{"newline", "a\n", false},
		{"non-ASCII", "é", false},
		{"colon", "a:b", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := saneRequestID(tt.id); got != tt.want {
				t.Errorf("saneRequestID(%q) = %v, want %v", tt.id, got, tt.want)
			}
		})
	}
}
