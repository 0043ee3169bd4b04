package impl

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"apiv4/db"
	"apiv4/db/dbtest"
	"apiv4/gen"
	"apiv4/scope"
)

var update = flag.Bool("update", false,
	"rewrite testdata/scope_matrix.txt from the server's answers")

type noWaker struct{}

func (noWaker) Wake() {}

// newTestServer serves the API on a fresh SQLite database until the test ends.
func newTestServer(tb testing.TB) (*httptest.Server, *db.Store) {
	tb.Helper()
	store, err := db.Open(context.Background(), dbtest.SQLiteURL(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	h, err := NewHandler(store, noWaker{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		tb.Fatal(err)
	}
	ts := httptest.NewServer(h)
	tb.Cleanup(ts.Close)
	return ts, store
}

// operation is one operation of the spec and a request that reaches it:
// ids in the path name nothing, and bodies are {}, so that no request of
// the matrix changes anything.
type operation struct {
	id, method, path, need string
}

func specOperations(tb testing.TB) []operation {
	tb.Helper()
	spec, err := gen.GetSpec()
	if err != nil {
		tb.Fatal(err)
	}
	var ops []operation
	for path, item := range spec.Paths.Map() {
		for method, op := range item.Operations() {
			need := ""
			for _, req := range *op.Security {
				if s := req["oauth"]; len(s) > 0 {
					need = s[0]
				}
			}
			url := "/v4" + pathParam.ReplaceAllStringFunc(path, func(p string) string {
				param := item.Parameters.GetByInAndName("path", strings.Trim(p, "{}"))
				if param == nil {
					param = op.Parameters.GetByInAndName("path", strings.Trim(p, "{}"))
				}
				if param != nil && param.Schema.Value.Type.Is("integer") {
					return "999999"
				}
				return "192.0.2.254"
			})
			// The embedded spec capitalises operation ids; show them as written.
			id := strings.ToLower(op.OperationID[:1]) + op.OperationID[1:]
			ops = append(ops, operation{id, method, url, need})
		}
	}
	slices.SortFunc(ops, func(a, b operation) int { return strings.Compare(a.id, b.id) })
	return ops
}

// matrixScopes are the token scopes of the matrix's columns: everything,
// then each area at each level alone.
func matrixScopes() []string {
	list := []string{scope.All}
	for _, area := range scope.Areas {
		list = append(list, area+":"+scope.ReadOnly, area+":"+scope.ReadWrite)
	}
	return list
}

// TestScopeMatrix calls every operation of the spec with a token holding
// exactly each scope level, and checks each answer: 401 with the scope
// reason where the token falls short, anything else where it does not,
// and the scope headers on both. The grid of answers must match
// testdata/scope_matrix.txt, which a reviewer reads to see who may do what.
func TestScopeMatrix(t *testing.T) {
	ts, store := newTestServer(t)
	ctx := context.Background()
	u, err := store.EnsureUser(ctx, "acme", "alice")
	if err != nil {
		t.Fatal(err)
	}
	columns := matrixScopes()
	secrets := make([]string, len(columns))
	for i, sc := range columns {
		if secrets[i], err = store.CreateToken(ctx, u, sc, sc, nil); err != nil {
			t.Fatal(err)
		}
	}

	var grid strings.Builder
	grid.WriteString("# Who may call what: Y = allowed, " +
		". = 401 \"Your OAuth token is not authorized\".\n")
	for i, sc := range columns {
		fmt.Fprintf(&grid, "# column %2d: token with scopes %s\n", i+1, sc)
	}
	for _, op := range specOperations(t) {
		fmt.Fprintf(&grid, "%-22s %-19s", op.id, cmpOr(op.need, "(any token)"))
		for i, sc := range columns {
			allowed := call(t, ts, op, sc, secrets[i])
			if want := scope.Allows(sc, op.need); allowed != want {
				t.Errorf("%s with %s: allowed %t, but the rule says %t", op.id, sc, allowed, want)
			}
			fmt.Fprintf(&grid, " %2s", map[bool]string{true: "Y", false: "."}[allowed])
		}
		grid.WriteString("\n")
	}

	golden := filepath.Join("testdata", "scope_matrix.txt")
	if *update {
		err := os.MkdirAll("testdata", 0o755)
		if err == nil {
			err = os.WriteFile(golden, []byte(grid.String()), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./impl -run ScopeMatrix -update to write it)", err)
	}
	if grid.String() != string(want) {
		t.Errorf("the scope matrix changed; review it with -update and git diff:\n%s", grid.String())
	}
}

// call sends one operation's request with a token and reports whether the
// token got past the scope check, failing the test on a malformed answer.
func call(t *testing.T, ts *httptest.Server, op operation, scopes, secret string) bool {
	t.Helper()
	var body io.Reader
	if op.method == http.MethodPost || op.method == http.MethodPut {
		body = strings.NewReader("{}")
	}
	req, _ := http.NewRequest(op.method, ts.URL+op.path, body)
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()

	if got := resp.Header.Get("X-OAuth-Scopes"); got != scopes {
		t.Errorf("%s with %s: X-OAuth-Scopes = %q", op.id, scopes, got)
	}
	accepted, ok := resp.Header["X-Accepted-Oauth-Scopes"]
	if op.need == "" && ok || op.need != "" && (len(accepted) != 1 || accepted[0] != op.need) {
		t.Errorf("%s: X-Accepted-OAuth-Scopes = %q, want %q", op.id, accepted, op.need)
	}
	if resp.StatusCode != http.StatusUnauthorized {
		return true
	}
	var out struct{ Errors []struct{ Reason string } }
	_ = json.NewDecoder(resp.Body).Decode(&out)
	want := "Your OAuth token is not authorized to use this endpoint."
	if len(out.Errors) != 1 || out.Errors[0].Reason != want {
		t.Errorf("%s with %s: 401 body %+v, want the scope reason", op.id, scopes, out)
	}
	return false
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
