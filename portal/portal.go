// Package portal publishes the contract and a browsable reference built
// from it: /openapi.yaml, /openapi.json and /docs.
//
// /docs is Swagger UI when its bundle was built into assets/ (make
// assets copies it there from the npm package pinned in
// package-lock.json); without it, /docs is a plain HTML page that lists
// every operation of the spec. Either way nothing is loaded from another
// host.
package portal

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"

	"gopkg.in/yaml.v3"
)

//go:embed assets
var assets embed.FS

// bundle is the file whose presence in assets/ means the portal was built.
const bundle = "swagger-ui-bundle.js"

// Operation is one operation of the spec, as the portal lists it.
type Operation struct {
	Method, Path, ID, Summary, Tag string
	Deprecated                     bool
}

// Portal serves one spec. It is immutable and safe for concurrent use.
type Portal struct {
	yaml, json []byte
	title      string
	version    string
	ops        []Operation
	page       []byte
	bundled    bool
	files      http.Handler
}

// New parses spec (OpenAPI YAML) and renders the portal's pages. It fails
// when the spec is not one YAML document.
func New(spec []byte) (*Portal, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(spec, &doc); err != nil {
		return nil, fmt.Errorf("portal: parse spec: %w", err)
	}
	var js bytes.Buffer
	if err := toJSON(&js, &doc); err != nil {
		return nil, err
	}
	root := doc.Content[0]
	p := &Portal{yaml: spec, json: js.Bytes(), ops: operations(root)}
	if info := child(root, "info"); info != nil {
		p.title = scalar(child(info, "title"))
		p.version = scalar(child(info, "version"))
	}

	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		return nil, err
	}
	_, err = fs.Stat(sub, bundle)
	p.bundled = err == nil
	p.files = http.StripPrefix("/docs/assets/", http.FileServerFS(sub))

	tmpl := plainPage
	if p.bundled {
		tmpl = swaggerPage
	}
	var page bytes.Buffer
	if err := tmpl.Execute(&page, p); err != nil {
		return nil, fmt.Errorf("portal: render: %w", err)
	}
	p.page = page.Bytes()
	return p, nil
}

// Bundled reports whether /docs is the built portal rather than the plain
// page.
func (p *Portal) Bundled() bool { return p.bundled }

// Operations returns every operation of the spec, in the spec's order.
func (p *Portal) Operations() []Operation { return p.ops }

// Title returns the spec's info.title.
func (p *Portal) Title() string { return p.title }

// Version returns the spec's info.version.
func (p *Portal) Version() string { return p.version }

// ServeHTTP answers GET and HEAD of /openapi.yaml, /openapi.json, /docs and
// /docs/assets/…, and 404 for anything else.
func (p *Portal) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch path := r.URL.Path; {
	case path == "/openapi.yaml":
		p.write(w, "application/yaml", p.yaml)
	case path == "/openapi.json":
		p.write(w, "application/json", p.json)
	case path == "/docs":
		p.write(w, "text/html; charset=utf-8", p.page)
	case path == "/docs/":
		// The pages' relative URLs resolve from /docs only.
		http.Redirect(w, r, "../docs", http.StatusMovedPermanently)
	case strings.HasPrefix(path, "/docs/assets/") && p.bundled:
		p.files.ServeHTTP(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (p *Portal) write(w http.ResponseWriter, contentType string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(body)
}

// methods are the operation keys of an OpenAPI path item.
var methods = map[string]bool{
	"get": true, "put": true, "post": true, "delete": true,
	"options": true, "head": true, "patch": true, "trace": true,
}

// operations lists the operations of a spec's paths, in order.
func operations(root *yaml.Node) []Operation {
	var ops []Operation
	paths := child(root, "paths")
	if paths == nil || paths.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(paths.Content); i += 2 {
		path, item := paths.Content[i].Value, paths.Content[i+1]
		for j := 0; j+1 < len(item.Content); j += 2 {
			method, op := item.Content[j].Value, item.Content[j+1]
			if !methods[method] {
				continue
			}
			o := Operation{
				Method: strings.ToUpper(method), Path: path,
				ID: scalar(child(op, "operationId")), Summary: scalar(child(op, "summary")),
				Deprecated: scalar(child(op, "deprecated")) == "true",
			}
			if tags := child(op, "tags"); tags != nil && len(tags.Content) > 0 {
				o.Tag = tags.Content[0].Value
			}
			ops = append(ops, o)
		}
	}
	return ops
}

func scalar(n *yaml.Node) string {
	if n == nil || n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

// The pages use relative URLs, so that the portal also works behind a
// path prefix.
var (
	plainPage = template.Must(template.New("plain").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} {{.Version}} API reference</title>
<style>
body { font: 15px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; }
table { border-collapse: collapse; width: 100%; }
td, th { text-align: left; padding: .3rem .6rem; border-bottom: 1px solid #ddd; }
code { font-size: 14px; }
.method { font-weight: bold; }
</style>
</head>
<body>
<h1>{{.Title}} {{.Version}}</h1>
<p>The contract: <a href="openapi.yaml">openapi.yaml</a> ·
<a href="openapi.json">openapi.json</a>. Every path is under <code>/v4</code>.
This is the plain reference; the interactive one appears here when the
server was built with <code>make assets</code>.</p>
<table id="operations">
<thead><tr><th>Method</th><th>Path</th><th>Operation</th><th>Summary</th><th>Tag</th></tr></thead>
<tbody>
{{- range .Operations}}
<tr class="operation" id="{{.ID}}"><td class="method">{{.Method}}</td><td><code>{{.Path}}</code></td>
<td><code>{{.ID}}</code></td><td>{{.Summary}}{{if .Deprecated}} (deprecated){{end}}</td><td>{{.Tag}}</td></tr>
{{- end}}
</tbody>
</table>
</body>
</html>
`))

	swaggerPage = template.Must(template.New("swagger").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} {{.Version}} API reference</title>
<link rel="stylesheet" href="docs/assets/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<noscript><p>The reference needs JavaScript; the contract itself is
<a href="openapi.yaml">openapi.yaml</a>.</p></noscript>
<script src="docs/assets/swagger-ui-bundle.js"></script>
<script>
SwaggerUIBundle({
  url: "openapi.json",
  dom_id: "#swagger-ui",
  validatorUrl: null,
  displayOperationId: true,
  deepLinking: true,
});
</script>
</body>
</html>
`))
)
