package impl

import (
	"strings"

	"github.com/labstack/echo/v4"

	"apiv4"
	"apiv4/portal"
)

// registerPortal serves the spec as written and the docs portal built
// from it: /openapi.yaml, /openapi.json, /docs and its assets.
func registerPortal(e *echo.Echo) error {
	p, err := portal.New(apiv4.Spec)
	if err != nil {
		return err
	}
	serve := echo.WrapHandler(p)
	// canonicalPath has routed /docs/ as /docs, but the page's relative
	// links resolve from /docs only: the portal redirects /docs/ there.
	h := func(c echo.Context) error {
		r := c.Request()
		if path, _, _ := strings.Cut(r.RequestURI, "?"); r.URL.Path == "/docs" &&
			strings.HasSuffix(path, "/docs/") {
			r.URL.Path = "/docs/"
		}
		return serve(c)
	}
	for _, path := range []string{"/openapi.yaml", "/openapi.json", "/docs", "/docs/", "/docs/assets/*"} {
		e.GET(path, h)
		e.HEAD(path, h)
	}
	return nil
}

// metrics returns the metrics the server records into.
func (s *Server) metrics() *Metrics { return s.opts.metrics }
