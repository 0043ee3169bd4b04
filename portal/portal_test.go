package portal

import (
	"encoding/json"
	"html/template"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"apiv4"
)

// mustPortal returns the portal of the real spec.
func mustPortal(tb testing.TB) *Portal {
	tb.Helper()
	p, err := New(apiv4.Spec)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

func get(tb testing.TB, h http.Handler, path string) *http.Response {
	tb.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Result()
}

func body(tb testing.TB, r *http.Response) string {
	tb.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

func TestSpecDocuments(t *testing.T) {
	p := mustPortal(t)
	tests := []struct {
		path, contentType string
	}{
		{"/openapi.yaml", "application/yaml"},
		{"/openapi.json", "application/json"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			r := get(t, p, tt.path)
			if r.StatusCode != http.StatusOK || r.Header.Get("Content-Type") != tt.contentType {
				t.Fatalf("got %d %q, want 200 %q", r.StatusCode, r.Header.Get("Content-Type"), tt.contentType)
			}
		})
	}

	if got := body(t, get(t, p, "/openapi.yaml")); got != string(apiv4.Spec) {
		t.Errorf("/openapi.yaml differs from openapi.yaml")
	}

	// The JSON form holds the same document as the YAML.
	var fromYAML, want, got any
	if err := yaml.Unmarshal(apiv4.Spec, &fromYAML); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(fromYAML)
	if err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal(b, &want)
	if err := json.Unmarshal([]byte(body(t, get(t, p, "/openapi.json"))), &got); err != nil {
		t.Fatalf("/openapi.json is not JSON: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("/openapi.json does not hold the document of openapi.yaml")
	}
}

func TestJSONKeepsOrder(t *testing.T) {
	p, err := New([]byte("openapi: 3.0.3\nzeta: 1\nalpha: [true, null, 'x', 2.5]\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := body(t, get(t, p, "/openapi.json"))
	if want := `{"openapi":"3.0.3","zeta":1,"alpha":[true,null,"x",2.5]}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestOperations(t *testing.T) {
	ops := mustPortal(t).Operations()
	if len(ops) == 0 {
		t.Fatal("no operations")
	}
	first := ops[0]
	if first.Method != "GET" || first.Path != "/account/events" || first.ID != "listEvents" ||
		first.Summary != "List events" || first.Tag != "Events" {
		t.Errorf("first operation = %+v, want GET /account/events listEvents", first)
	}
	for _, o := range ops {
		if o.ID == "" || o.Summary == "" {
			t.Errorf("%s %s has no operationId or summary", o.Method, o.Path)
		}
	}
}

// TestPlainPage checks the page /docs shows when the portal was not
// built: every operation, by method, path, id and summary.
func TestPlainPage(t *testing.T) {
	p := mustPortal(t)
	p.bundled = false
	var page strings.Builder
	if err := plainPage.Execute(&page, p); err != nil {
		t.Fatal(err)
	}
	html := page.String()
	for _, o := range p.Operations() {
		row := `<tr class="operation" id="` + o.ID + `"><td class="method">` + o.Method +
			`</td><td><code>` + o.Path + `</code></td>`
		if !strings.Contains(html, row) || !strings.Contains(html, template.HTMLEscapeString(o.Summary)) {
			t.Errorf("the plain page lacks %s %s (%s)", o.Method, o.Path, o.ID)
		}
	}
}

func TestDocsRoutes(t *testing.T) {
	p := mustPortal(t)
	tests := []struct {
		path   string
		status int
	}{
		{"/docs", http.StatusOK},
		{"/docs/", http.StatusMovedPermanently},
		{"/docs/assets/nothing.js", http.StatusNotFound},
		{"/elsewhere", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if got := get(t, p, tt.path).StatusCode; got != tt.status {
				t.Errorf("got %d, want %d", got, tt.status)
			}
		})
	}
	if p.Bundled() {
		r := get(t, p, "/docs/assets/"+bundle)
		if r.StatusCode != http.StatusOK || !strings.Contains(r.Header.Get("Content-Type"), "javascript") {
			t.Errorf("bundle: got %d %q, want 200 JavaScript", r.StatusCode, r.Header.Get("Content-Type"))
		}
	}
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/docs", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /docs: got %d, want 405", rec.Code)
	}
}
