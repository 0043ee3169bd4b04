package main

import "testing"

func TestPrintable(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain", "Linode web-1 · booted", "Linode web-1 · booted"},
		{"escape sequence", "\x1b[31mred\x1b[0m", `\x1b[31mred\x1b[0m`},
		{"carriage return and bell", "ok\rfake\a", `ok\x0dfake\x07`},
		{"newline and tab", "a\nb\tc", `a\x0ab\x09c`},
		{"delete", "a\x7fb", `a\x7fb`},
		{"C1 CSI", "a\u009b2Jb", `a\u009b2Jb`},
		{"bidi override", "abc\u202edcba", `abc\u202edcba`},
		{"not UTF-8", "a\xffb", `a\xffb`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := printable(tt.in); got != tt.want {
				t.Errorf("printable(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestShellQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"sqlite:apiv4.db", "sqlite:apiv4.db"},
		{"postgres://app:xxxxx@127.0.0.1:5432/apiv4?sslmode=disable&x=1",
			"'postgres://app:xxxxx@127.0.0.1:5432/apiv4?sslmode=disable&x=1'"},
		{"sqlite:/tmp/my db's.db", `'sqlite:/tmp/my db'\''s.db'`},
		{"", "''"},
	}
	for _, tt := range tests {
		if got := shellQuote(tt.in); got != tt.want {
			t.Errorf("shellQuote(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
