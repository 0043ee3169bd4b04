package scope

import "testing"

func TestParse(t *testing.T) {
	tests := []struct {
		name, in, want string
		wantErr        bool
	}{
		{"star", "*", "*", false},
		{"star with spaces", "  * ", "*", false},
		{"one", "events:read_only", "events:read_only", false},
		{"comma and space", "tickets:read_write, events:read_only",
			"events:read_only tickets:read_write", false},
		{"read_write absorbs read_only", "linodes:read_only linodes:read_write linodes:read_only",
			"linodes:read_write", false},
		{"canonical order", "ips:read_only,account:read_write,linodes:read_only",
			"account:read_write linodes:read_only ips:read_only", false},
		{"empty", " , ", "", true},
		{"unknown area", "domains:read_only", "", true},
		{"unknown level", "events:write", "", true},
		{"no level", "events", "", true},
		{"area star", "events:*", "", true},
		{"star mixed", "* events:read_only", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("Parse(%q) = %q, %v; want %q, error %t", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestAllows(t *testing.T) {
	tests := []struct {
		have, need string
		want       bool
	}{
		{"*", "linodes:read_write", true},
		{"events:read_only", "events:read_only", true},
		{"events:read_only", "events:read_write", false},
		{"events:read_write", "events:read_only", true},
		{"events:read_only", "linodes:read_only", false},
		{"events:read_only linodes:read_write", "linodes:read_only", true},
		{"events:read_only,tickets:read_write", "tickets:read_write", true},
		{"events:read_only", "", true},
		{"", "events:read_only", false},
	}
	for _, tt := range tests {
		if got := Allows(tt.have, tt.need); got != tt.want {
			t.Errorf("Allows(%q, %q) = %t, want %t", tt.have, tt.need, got, tt.want)
		}
	}
}

func TestCovers(t *testing.T) {
	tests := []struct {
		have, other string
		want        bool
	}{
		{"*", "*", true},
		{"*", "events:read_only linodes:read_write", true},
		{"account:read_write events:read_write linodes:read_write ips:read_write tickets:read_write",
			"*", false},
		{"linodes:read_write events:read_only", "linodes:read_only", true},
		{"linodes:read_write events:read_only", "linodes:read_only events:read_only", true},
		{"linodes:read_write events:read_only", "events:read_write", false},
		{"linodes:read_only", "linodes:read_write", false},
		{"linodes:read_only", "account:read_only", false},
	}
	for _, tt := range tests {
		if got := Covers(tt.have, tt.other); got != tt.want {
			t.Errorf("Covers(%q, %q) = %t, want %t", tt.have, tt.other, got, tt.want)
		}
	}
}
