package apiv4_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// testRef is a test named in a document as `package.TestName`, the
// package being its folder from the repository root, or apiv4 for the
// root itself.
var testRef = regexp.MustCompile("`((?:[a-z0-9]+/)*[a-z0-9]+)\\.((?:Test|Fuzz)[A-Za-z0-9_]*)`")

// TestOWASPNamesRealTests reads docs/owasp.md and checks that it walks
// the ten items of the OWASP API Security Top 10 (2023) in order, that
// each item names at least one test, and that every test it names is a
// function of that name in a test file of that package's folder.
func TestOWASPNamesRealTests(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("docs", "owasp.md"))
	if err != nil {
		t.Fatal(err)
	}
	sections := strings.Split(string(doc), "\n## ")[1:]
	if len(sections) != 10 {
		t.Fatalf("docs/owasp.md has %d sections, want one for each of the 10 items", len(sections))
	}
	funcs := map[string][]string{} // test functions by folder
	for i, section := range sections {
		want := fmt.Sprintf("API%d:2023 ", i+1)
		if !strings.HasPrefix(section, want) {
			heading, _, _ := strings.Cut(section, "\n")
			t.Errorf("section %d is %q, want it to start with %q", i+1, heading, want)
		}
		refs := testRef.FindAllStringSubmatch(section, -1)
		if len(refs) == 0 {
			t.Errorf("API%d names no test", i+1)
		}
		for _, ref := range refs {
			dir := ref[1]
			if dir == "apiv4" {
				dir = "."
			}
			if _, ok := funcs[dir]; !ok {
				funcs[dir] = testFuncs(t, dir)
			}
			if !slices.Contains(funcs[dir], ref[2]) {
				t.Errorf("API%d names %s.%s, which does not exist", i+1, ref[1], ref[2])
			}
		}
	}
}

// TestInvariantsNameRealTests checks that every test docs/invariants.md
// names, without its package, is a test function of some package.
func TestInvariantsNameRealTests(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("docs", "invariants.md"))
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	err = filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		hidden := path != "." && strings.HasPrefix(d.Name(), ".")
		if hidden || d.Name() == "node_modules" || d.Name() == "testdata" {
			return filepath.SkipDir
		}
		if files, _ := filepath.Glob(filepath.Join(path, "*_test.go")); len(files) > 0 {
			all = append(all, testFuncs(t, path)...)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	bare := regexp.MustCompile("`((?:Test|Fuzz)[A-Za-z0-9_]*)`")
	names := bare.FindAllStringSubmatch(string(doc), -1)
	if len(names) == 0 {
		t.Fatal("docs/invariants.md names no test")
	}
	for _, name := range names {
		if !slices.Contains(all, name[1]) {
			t.Errorf("docs/invariants.md names %s, which no package has", name[1])
		}
	}
}

// testFuncs returns the names of the top-level functions of the test
// files in dir.
func testFuncs(tb testing.TB, dir string) []string {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
	if err != nil || len(files) == 0 {
		tb.Errorf("%s: no test files (%v)", dir, err)
		return nil
	}
	var names []string
	for _, name := range files {
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.SkipObjectResolution)
		if err != nil {
			tb.Fatal(err)
		}
		for _, d := range f.Decls {
			if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv == nil {
				names = append(names, fn.Name.Name)
			}
		}
	}
	return names
}

// outbound names what makes a request to another host: the HTTP client
// of net/http and the dialers and resolvers of net.
var outbound = map[string][]string{
	"net/http": {"Get", "Head", "Post", "PostForm", "NewRequest", "NewRequestWithContext",
		"Client", "DefaultClient", "Transport", "DefaultTransport"},
	"net": {"Dial", "DialIP", "DialTCP", "DialTimeout", "DialUDP", "DialUnix", "Dialer",
		"LookupAddr", "LookupHost", "LookupIP", "LookupCNAME", "LookupMX", "LookupTXT",
		"ResolveIPAddr", "ResolveTCPAddr", "ResolveUDPAddr"},
}

// TestNoOutboundRequests checks that the packages the server is built of
// make no request to another host: no HTTP client, no dialer and no
// resolver is used outside their tests, and no package whose purpose is
// to reach out (a reverse proxy, mail, RPC) is imported. The database
// driver is the one connection the server opens.
func TestNoOutboundRequests(t *testing.T) {
	forbidden := []string{"net/http/httputil", "net/smtp", "net/rpc", "net/rpc/jsonrpc"}
	for _, dir := range []string{".", "impl", "db", "job", "scope", "portal"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range files {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			local := map[string]string{} // the name a file gives each watched import
			for _, imp := range f.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				if slices.Contains(forbidden, path) {
					t.Errorf("%s imports %s", name, path)
				}
				if _, ok := outbound[path]; ok {
					as := filepath.Base(path)
					if imp.Name != nil {
						as = imp.Name.Name
					}
					local[as] = path
				}
			}
			ast.Inspect(f, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if x, ok := sel.X.(*ast.Ident); ok && slices.Contains(outbound[local[x.Name]], sel.Sel.Name) {
					t.Errorf("%s uses %s.%s", name, local[x.Name], sel.Sel.Name)
				}
				return true
			})
		}
	}
}
