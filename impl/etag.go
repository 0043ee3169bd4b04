package impl

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"
)

// etagRoutes returns the GET routes whose operation documents a 304
// answer, keyed as routeKey keys them.
func etagRoutes(spec *openapi3.T) map[string]bool {
	routes := map[string]bool{}
	for path, item := range spec.Paths.Map() {
		if item.Get != nil && item.Get.Responses.Status(http.StatusNotModified) != nil {
			routes[http.MethodGet+" /v4"+pathParam.ReplaceAllString(path, ":$1")] = true
		}
	}
	return routes
}

// conditional answers a GET of the given routes with an ETag computed from
// the body it would send, and with 304 and no body when the client's
// If-None-Match holds that tag. It knows nothing of how the page is built,
// so it stays right whatever the handler does; the page is still computed,
// but nothing is sent or parsed again.
func conditional(routes map[string]bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if !routes[routeKey(c)] {
				return next(c)
			}
			res := c.Response()
			real := res.Writer
			buf := &bufferedWriter{ResponseWriter: real, status: http.StatusOK,
				body: bodies.Get().(*bytes.Buffer)}
			defer buf.release()
			res.Writer = buf
			err := next(c)
			res.Writer = real
			if err != nil || buf.status != http.StatusOK {
				// Pass on what was written, if anything; an error still
				// unwritten goes to the error handler as usual.
				if buf.wroteHeader {
					real.WriteHeader(buf.status)
				}
				if buf.body.Len() > 0 {
					_, _ = real.Write(buf.body.Bytes())
				}
				return err
			}

			sum := sha256.Sum256(buf.body.Bytes())
			tag := `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`
			h := real.Header()
			h.Set("ETag", tag)
			h.Set("Cache-Control", "private, no-cache")
			h.Add("Vary", "Authorization, X-Filter")
			if matches(c.Request().Header.Get("If-None-Match"), tag) {
				h.Del("Content-Type")
				h.Del("Content-Length")
				res.Status = http.StatusNotModified
				real.WriteHeader(http.StatusNotModified)
				return nil
			}
			real.WriteHeader(http.StatusOK)
			_, err = real.Write(buf.body.Bytes())
			return err
		}
	}
}

// matches reports whether an If-None-Match value names tag: a list of
// entity tags, compared weakly (a W/ prefix is ignored), or "*".
func matches(ifNoneMatch, tag string) bool {
	for _, t := range strings.Split(ifNoneMatch, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == tag || t == "*" {
			return true
		}
	}
	return false
}

// bufferedWriter keeps what a handler writes, so that the ETag can be
// computed before anything is sent.
type bufferedWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
	body        *bytes.Buffer
}

// bodies recycles the buffers of bufferedWriter: a page of events is
// about 15 kB, which a fresh buffer would grow to through a dozen copies.
var bodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// release returns the body's buffer to the pool, unless it grew huge.
func (b *bufferedWriter) release() {
	if b.body.Cap() <= 1<<20 {
		b.body.Reset()
		bodies.Put(b.body)
	}
	b.body = nil
}

func (b *bufferedWriter) WriteHeader(status int) {
	if !b.wroteHeader {
		b.status, b.wroteHeader = status, true
	}
}

func (b *bufferedWriter) Write(p []byte) (int, error) { return b.body.Write(p) }
