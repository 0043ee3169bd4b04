package db

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var placeholder = regexp.MustCompile(`\?(\d+)`)

// FuzzParseFilter parses the input as an X-Filter of both collections.
// A refusal must be Invalid about X-Filter; a filter must put no value
// of the input into its SQL text, only numbered placeholders that each
// name one argument (?0 and ?1 are the caller's seen mark and user id).
// Its seed corpus is in testdata/fuzz/FuzzParseFilter.
func FuzzParseFilter(f *testing.F) {
	f.Add(`{"+or":[{"id":1},{"+and":[{"status":"started"},{"seen":false}]}]}`)
	f.Fuzz(func(t *testing.T, raw string) {
		for _, fields := range []map[string]field{eventFields, linodeFields} {
			flt, err := parseFilter(raw, fields)
			if err != nil {
				var e *Error
				if !errors.As(err, &e) || e.Code != Invalid || e.Field != "X-Filter" {
					t.Fatalf("got %#v, want an Invalid error about X-Filter", err)
				}
				continue
			}
			if flt == nil {
				continue
			}
			used := make([]int, len(flt.args))
			for _, m := range placeholder.FindAllStringSubmatch(flt.where, -1) {
				n, _ := strconv.Atoi(m[1])
				if n < 2 {
					continue
				}
				if n-2 >= len(flt.args) {
					t.Fatalf("%s names ?%d of %d arguments", flt.where, n, len(flt.args))
				}
				used[n-2]++
			}
			for i, n := range used {
				if n != 1 {
					t.Fatalf("%s uses argument %d %d times, want once", flt.where, i+2, n)
				}
			}
			text := strings.ReplaceAll(flt.where, `ESCAPE '\'`, "")
			if strings.ContainsAny(text, `'";`) {
				t.Fatalf("the SQL text holds a quote or a semicolon: %s", flt.where)
			}
		}
	})
}
