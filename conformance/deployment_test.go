package conformance

import (
	"net"
	"strings"
	"testing"
)

// TestCheckDeployment checks the one request by which a run against a
// deployment fails at once on a wrong -base-url or -token.
func TestCheckDeployment(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() // nothing listens there once closed
	ln.Close()

	forEachTarget(t, func(t *testing.T, tg *target) {
		good := []namedToken{{"-token", tg.owner}}
		tests := []struct {
			name, baseURL string
			tokens        []namedToken
			want          string // "" for no error
		}{
			{"no scheme", strings.TrimPrefix(tg.url, "http://"), good, "must be an http or https URL"},
			{"with /v4", tg.url + "/v4", good, "must not end in /v4"},
			{"nothing listening", closed, good, "cannot reach -base-url " + closed},
			{"unknown token", tg.url, []namedToken{{"-token", tg.owner}, {"-token2", "nope"}},
				"-token2 was refused by " + tg.url},
			{"good", tg.url + "/", good, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := checkDeployment(tt.baseURL, tt.tokens)
				if tt.want == "" && err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				if tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
					t.Fatalf("got %v, want an error with %q", err, tt.want)
				}
			})
		}
	})
}
