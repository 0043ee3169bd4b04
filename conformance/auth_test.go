package conformance

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// readerScopes are the scopes of a target's reader token.
const readerScopes = "events:read_only linodes:read_only"

// TestAuth sends every operation of the spec bad credentials, and a token
// with read-only scopes, and checks who is let in. Path ids name nothing,
// so that no request changes anything.
func TestAuth(t *testing.T) {
	spec := mustSpec(t).spec
	forEachTarget(t, func(t *testing.T, tg *target) {
		credentials := []struct{ name, header string }{
			{"no token", ""},
			{"unknown token", "Bearer " + strings.Repeat("0", 64)},
			{"empty token", "Bearer "},
			{"not a bearer", "Basic YWxpY2U6c2VjcmV0"},
		}
		for _, o := range specOps(spec) {
			path := o.path
			for _, p := range params(o) {
				if p.In == "path" {
					path = strings.ReplaceAll(path, "{"+p.Name+"}", fmt.Sprint(unknownID))
				}
			}
			path = strings.TrimPrefix(path, "/")
			need := oauthScope(spec, o)

			t.Run(operationID(o.op), func(t *testing.T) {
				a := tg.api(t, "")
				for _, c := range credentials {
					var header []string
					if c.header != "" {
						header = []string{"Authorization", c.header}
					}
					r := a.do(o.method, "/"+path, nil, header...)
					got := r.errs(t)
					if r.Status != http.StatusUnauthorized || len(got) != 1 ||
						got[0] != (apiError{Reason: "Invalid Token"}) {
						t.Errorf("%s: got %d %s, want 401 Invalid Token", c.name, r.Status, r.Body)
					}
				}

				if tg.reader == "" {
					t.Skip("no read-only token (-token-read-only)")
				}
				r := a.as(tg.reader).do(o.method, "/"+path, nil)
				switch {
				case need == "":
					t.Errorf("the operation names no oauth scope")
				case !scopesAllow(readerScopes, need):
					r.wantError(t, http.StatusUnauthorized,
						"Your OAuth token is not authorized to use this endpoint.", "")
				case r.Status == http.StatusUnauthorized:
					t.Errorf("scopes %q were refused %s: %s", readerScopes, need, r.Body)
				}
			})
		}
	})
}

// oauthScope returns the OAuth scope an operation needs, as its security
// requirements (or the spec's) name it.
func oauthScope(spec *openapi3.T, o specOp) string {
	reqs := o.op.Security
	if reqs == nil {
		reqs = &spec.Security
	}
	for _, req := range *reqs {
		if scopes := req["oauth"]; len(scopes) > 0 {
			return scopes[0]
		}
	}
	return ""
}

// scopesAllow reports whether a token's scopes grant a needed one: "*"
// grants every scope, and area:read_write grants area:read_only.
func scopesAllow(scopes, need string) bool {
	area, _, _ := strings.Cut(need, ":")
	for _, have := range strings.Fields(scopes) {
		if have == "*" || have == need || have == area+":read_write" {
			return true
		}
	}
	return false
}
