package portal

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestDocsInBrowser opens /docs in headless Chromium and checks that the
// rendered page lists every operation of the spec, and that everything
// the page loaded came from the server itself. It is skipped when
// chromium is not installed, unless APIV4_REQUIRE_PORTAL=1 (CI sets it),
// which also requires the built portal rather than the plain page.
func TestDocsInBrowser(t *testing.T) {
	require := os.Getenv("APIV4_REQUIRE_PORTAL") == "1"
	browser, err := exec.LookPath("chromium")
	if err != nil {
		if require {
			t.Fatal("APIV4_REQUIRE_PORTAL=1 but chromium is not installed")
		}
		t.Skip("chromium is not installed (apt-get install chromium)")
	}
	p := mustPortal(t)
	if require && !p.Bundled() {
		t.Fatal("APIV4_REQUIRE_PORTAL=1 but the portal was not built (make assets)")
	}

	var mu sync.Mutex
	var requested []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requested = append(requested, r.URL.Path)
		mu.Unlock()
		p.ServeHTTP(w, r)
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run",
		"--disable-default-apps", "--disable-extensions",
		"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
		"--user-data-dir="+t.TempDir(),
		"--virtual-time-budget=20000", "--dump-dom", srv.URL+"/docs")
	start := time.Now()
	dom, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	t.Logf("chromium rendered /docs in %v (%d bytes of DOM, bundled portal: %t)",
		time.Since(start).Round(time.Millisecond), len(dom), p.Bundled())

	html := string(dom)
	for _, o := range p.Operations() {
		var found bool
		if p.Bundled() {
			// Swagger UI renders each operation's path and id in its
			// summary line.
			found = strings.Contains(html, `data-path="`+o.Path+`"`) &&
				strings.Contains(html, ">"+o.ID+"<")
		} else {
			found = strings.Contains(html, `<tr class="operation" id="`+o.ID+`">`)
		}
		if !found {
			t.Errorf("the rendered /docs lacks %s %s (%s)", o.Method, o.Path, o.ID)
		}
	}

	mu.Lock()
	defer mu.Unlock()
	if p.Bundled() {
		for _, want := range []string{"/docs", "/docs/assets/" + bundle, "/openapi.json"} {
			if !slices.Contains(requested, want) {
				t.Errorf("the page did not load %s from the server; it loaded %v", want, requested)
			}
		}
	}
}
