package impl

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"apiv4/db"
)

// checkBody reads the body of every request to a route of the spec and
// refuses, before anything else looks at it: a Content-Type other than
// JSON (415), a body over the limit, chunked or not (413), a body that is
// not exactly one JSON value (400), and text holding a NUL character,
// which neither database can store (400). It hands the handlers the body
// it read and a plain "application/json" Content-Type.
func checkBody(routes map[string]string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			if routes[routeKey(c)] == "" || req.Body == nil || req.Body == http.NoBody {
				return next(c)
			}
			body, err := io.ReadAll(req.Body)
			var tooLarge *echo.HTTPError
			if errors.As(err, &tooLarge) && tooLarge.Code == http.StatusRequestEntityTooLarge {
				return tooLarge
			}
			if err != nil {
				return &db.Error{Code: db.Invalid, Reason: "Request body could not be read"}
			}
			req.Body = io.NopCloser(bytes.NewReader(body))
			if len(bytes.TrimSpace(body)) == 0 {
				req.ContentLength = 0
				return next(c)
			}

			mediaType, _, err := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType))
			if err != nil || !strings.EqualFold(mediaType, echo.MIMEApplicationJSON) {
				return echo.ErrUnsupportedMediaType
			}
			req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
			if !jsonValid(body) {
				return &db.Error{Code: db.Invalid, Reason: "Request body is not valid JSON"}
			}
			if bytes.Contains(bytes.ToLower(body), []byte(`\u0000`)) {
				return &db.Error{Code: db.Invalid, Reason: "Text must not contain NUL characters"}
			}
			return next(c)
		}
	}
}

// maxJSONDepth bounds how deeply a request body may nest; the spec's
// deepest body needs three levels.
const maxJSONDepth = 32

// jsonValid reports whether body is exactly one JSON value, with nothing
// after it but white space, nested at most maxJSONDepth deep.
func jsonValid(body []byte) bool {
	if !json.Valid(body) {
		return false
	}
	depth, inString, escaped := 0, false, false
	for _, b := range body {
		switch {
		case escaped:
			escaped = false
		case inString && b == '\\':
			escaped = true
		case b == '"':
			inString = !inString
		case inString:
		case b == '{' || b == '[':
			if depth++; depth > maxJSONDepth {
				return false
			}
		case b == '}' || b == ']':
			depth--
		}
	}
	return true
}
