// Package scope parses, prints and compares the OAuth scope lists that
// tokens carry, in the Linode form "area:level" or "*".
package scope

import (
	"fmt"
	"slices"
	"strings"
)

// All is the scope list that grants read_write on every area.
const All = "*"

// The two levels of access to an area. ReadWrite includes ReadOnly.
const (
	ReadOnly  = "read_only"
	ReadWrite = "read_write"
)

// Areas are the parts of the API a scope can name, in the order a
// canonical list prints them.
var Areas = []string{"account", "events", "linodes", "ips", "tickets"}

// Parse checks a scope list and returns it in canonical form. Scopes are
// separated by spaces, commas or both. The canonical form is "*" when the
// list holds "*", else one scope per area in the order of Areas, joined
// by single spaces, where read_write on an area absorbs read_only. An
// empty list, an unknown area or level, or "*" mixed with other scopes is
// an error that says which scope is at fault.
func Parse(list string) (string, error) {
	fields := strings.FieldsFunc(list, isSep)
	if len(fields) == 0 {
		return "", fmt.Errorf("no scopes given")
	}
	levels := map[string]string{}
	for _, f := range fields {
		if f == All {
			if len(fields) > 1 {
				return "", fmt.Errorf("* grants every scope and cannot be combined with others")
			}
			return All, nil
		}
		area, level, ok := strings.Cut(f, ":")
		if !ok || !slices.Contains(Areas, area) {
			return "", fmt.Errorf("unknown scope %q: the areas are %s", f, strings.Join(Areas, ", "))
		}
		if level != ReadOnly && level != ReadWrite {
			return "", fmt.Errorf("unknown scope %q: the levels are read_only and read_write", f)
		}
		if levels[area] != ReadWrite {
			levels[area] = level
		}
	}
	out := make([]string, 0, len(levels))
	for _, area := range Areas {
		if level, ok := levels[area]; ok {
			out = append(out, area+":"+level)
		}
	}
	return strings.Join(out, " "), nil
}

// Allows reports whether a token's scope list covers one needed scope:
// "*" covers every scope, area:read_write covers area:read_only, and an
// empty need (an operation open to any valid token) is always covered.
func Allows(list, need string) bool {
	if need == "" {
		return true
	}
	area, level, _ := strings.Cut(need, ":")
	for _, have := range strings.FieldsFunc(list, isSep) {
		hArea, hLevel, _ := strings.Cut(have, ":")
		if have == All || (hArea == area && (hLevel == level || hLevel == ReadWrite)) {
			return true
		}
	}
	return false
}

// Covers reports whether a token's scope list grants at least everything
// another list grants, as a token must to create a token with that list.
func Covers(list, other string) bool {
	mine := strings.FieldsFunc(list, isSep)
	for _, need := range strings.FieldsFunc(other, isSep) {
		if need == All && !slices.Contains(mine, All) || !Allows(list, need) {
			return false
		}
	}
	return true
}

func isSep(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }
