package impl

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"apiv4/db"
)

// Limits on what one request may make the server read.
const (
	// MaxBodyBytes is the largest request body accepted; a larger one is
	// answered 413, whether its length was declared or it came chunked.
	MaxBodyBytes = 1 << 20
	// MaxJSONDepth bounds how deeply a body's arrays and objects nest.
	MaxJSONDepth = 32
)

// canonicalPath applies the one path rule of every route before routing:
// a trailing slash is dropped, percent-encoded octets are decoded (an
// encoded slash would change the path's segments, so it matches
// nothing), and HEAD is routed as GET. echo routes the request it was
// given, so the path and method are changed in place; answerHead then
// gives net/http its HEAD back.
func canonicalPath(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if strings.Contains(strings.ToLower(r.URL.RawPath), "%2f") {
			return echo.ErrNotFound
		}
		r.URL.RawPath = ""
		if len(r.URL.Path) > 1 && strings.HasSuffix(r.URL.Path, "/") {
			r.URL.Path = strings.TrimSuffix(r.URL.Path, "/")
		}
		if r.Method == http.MethodHead {
			r.Method = http.MethodGet
			c.Set(headKey, true)
		}
		return next(c)
	}
}

const headKey = "apiv4.head"

type headCtxKey struct{}

// isHead reports whether ctx is of a HEAD request answered as GET: an
// answer without end, the event stream, must end after its headers.
func isHead(ctx context.Context) bool { v, _ := ctx.Value(headCtxKey{}).(bool); return v }

// method is the request's method as the client sent it, for logs and
// metrics: a HEAD request is handled as a GET.
func method(c echo.Context) string {
	if head, _ := c.Get(headKey).(bool); head {
		return http.MethodHead
	}
	return c.Request().Method
}

// answerHead runs right after routing. For a HEAD request it hands the
// handlers a GET copy of the request and turns the request net/http holds
// back into a HEAD, so that net/http sends the GET's headers and drops
// its body.
func answerHead(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if head, _ := c.Get(headKey).(bool); head {
			r := c.Request()
			get := r.WithContext(context.WithValue(r.Context(), headCtxKey{}, true))
			r.Method = http.MethodHead
			c.SetRequest(get)
		}
		return next(c)
	}
}

// securityHeaders sets the headers that keep browsers from doing more with
// an answer than a client should: on every answer no sniffing and no
// framing, and on API answers no caching and no active content. Strict
// Transport Security is sent when the request came over TLS.
func securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		if strings.HasPrefix(c.Request().URL.Path, "/v4/") {
			h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
			h.Set("Cache-Control", "no-store")
		}
		if c.Request().TLS != nil {
			h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		}
		return next(c)
	}
}

// Cross-origin requests: apiv4 authenticates with bearer tokens only, never
// cookies, so any origin may call it from a browser, as the public API
// allows. Preflights are answered before authentication.
const (
	corsAllowHeaders  = "Authorization, Content-Type, X-Filter, If-None-Match, Last-Event-ID, X-Request-Id"
	corsExposeHeaders = "ETag, Retry-After, X-OAuth-Scopes, X-Accepted-OAuth-Scopes, X-RateLimit-Limit, " +
		"X-RateLimit-Remaining, X-RateLimit-Reset, X-Request-Id"
)

// answerOptions answers OPTIONS on every route with the methods it allows
// (HEAD wherever GET is), and cross-origin preflights with what a browser
// may send; other answers to a request with an Origin say that any origin
// may read them.
func answerOptions(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r, h := c.Request(), c.Response().Header()
		if r.Header.Get("Origin") != "" {
			h.Set("Access-Control-Allow-Origin", "*")
			h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		}
		allow, ok := c.Get(echo.ContextKeyHeaderAllow).(string)
		if r.Method != http.MethodOptions || !ok {
			return next(c)
		}
		allow = withHead(allow)
		h.Set(echo.HeaderAllow, allow)
		if r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", allow)
			h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
			h.Set("Access-Control-Max-Age", "86400")
		}
		return c.NoContent(http.StatusNoContent)
	}
}

// deadline gives every request at most d to be answered: past it, the
// database calls of the request fail, and the request is answered 503.
// The event stream lasts as long as its client and is not bound.
func deadline(d time.Duration) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if c.Path() == streamRoute {
				return next(c)
			}
			ctx, cancel := context.WithTimeout(c.Request().Context(), d)
			defer cancel()
			c.SetRequest(c.Request().WithContext(ctx))
			return next(c)
		}
	}
}

// Errors of the request body, before it reaches the validator: the
// statuses echo names, and 400s in the one vocabulary of db.Error.
var (
	errBodyTooLarge   = echo.ErrStatusRequestEntityTooLarge
	errMediaType      = echo.ErrUnsupportedMediaType
	errBodyUnreadable = &db.Error{Code: db.Invalid, Reason: "Request body could not be read"}
	errBodyNotJSON    = &db.Error{Code: db.Invalid, Reason: "Request body is not valid JSON"}
	errBodyTooDeep    = &db.Error{Code: db.Invalid, Reason: "Request body is nested too deeply"}
	errBodyTrailing   = &db.Error{Code: db.Invalid, Reason: "Request body must be one JSON value"}
	errBodyDuplicate  = &db.Error{Code: db.Invalid, Reason: "Request body must not repeat a key in an object"}
)

// errControl refuses text with a control character, naming the field.
func errControl(field string) error {
	return &db.Error{Code: db.Invalid, Field: field,
		Reason: "Text must not contain control characters other than tab and line breaks"}
}

// guardBody reads the whole request body, at most MaxBodyBytes of it, and
// lets only one well-formed JSON value of bounded depth and without NUL
// escapes through, with the Content-Type set to exactly application/json.
// Anything else is refused before any handler sees it:
// 413 for too large (declared or chunked), 415 for a Content-Type other
// than JSON (the media type in any case), 400 for the rest. An empty body passes as
// no body: operations whose body is optional take it so.
func guardBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.Body == nil || r.Body == http.NoBody {
			return next(c)
		}
		// A body announced far over the limit is refused unread; one a
		// little over is read up to the limit first, so that the client
		// can finish sending and read the answer on a live connection.
		if r.ContentLength > 2*MaxBodyBytes {
			return errBodyTooLarge
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
		if err != nil {
			return errBodyUnreadable
		}
		if len(body) > MaxBodyBytes {
			return errBodyTooLarge
		}

		r.Body, r.ContentLength, r.TransferEncoding = http.NoBody, 0, nil
		if len(body) == 0 {
			return next(c)
		}
		if !isJSON(r.Header.Get(echo.HeaderContentType)) {
			return errMediaType
		}
		if err := checkJSON(body); err != nil {
			return err
		}
		r.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		return next(c)
	}
}

// isJSON reports whether a Content-Type names JSON in UTF-8: the media
// type application/json in any case, with no charset or charset utf-8.
func isJSON(contentType string) bool {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != echo.MIMEApplicationJSON {
		return false
	}
	cs, ok := params["charset"]
	return !ok || strings.EqualFold(cs, "utf-8")
}

// checkJSON reports whether body is exactly one JSON value nested at most
// MaxJSONDepth deep, whose objects repeat no key (decoders differ on which
// one wins) and whose strings hold no control character but tab, line
// feed and carriage return: neither database stores NUL, and escape
// sequences would reach the terminals of whoever reads the text later.
// Numbers are kept as text, so no value is lost here.
func checkJSON(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var stack []*jsonFrame
	valueDone := func() {
		if n := len(stack); n > 0 {
			stack[n-1].wantKey = stack[n-1].keys != nil
			stack[n-1].index++
		}
	}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return errBodyNotJSON
		}
		var top *jsonFrame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch tok := tok.(type) {
		case json.Delim:
			switch tok {
			case '{', '[':
				if len(stack) == MaxJSONDepth {
					return errBodyTooDeep
				}
				f := &jsonFrame{}
				if tok == '{' {
					f.keys, f.wantKey = map[string]bool{}, true
				}
				stack = append(stack, f)
			default:
				stack = stack[:len(stack)-1]
				valueDone()
			}
		case string:
			if top != nil && top.keys != nil && top.wantKey {
				if top.keys[tok] {
					return errBodyDuplicate
				}
				if hasControl(tok) {
					return errControl("")
				}
				top.keys[tok], top.wantKey, top.key = true, false, tok
				continue
			}
			if hasControl(tok) {
				return errControl(fieldOf(stack))
			}
			valueDone()
		default:
			valueDone()
		}
		if len(stack) == 0 {
			break
		}
	}
	if _, err := dec.Token(); err != io.EOF {
		return errBodyTrailing
	}
	return nil
}

// jsonFrame is an object or array checkJSON is in. An object's frame
// knows its keys and whether a key comes next.
type jsonFrame struct {
	keys    map[string]bool // nil for an array
	wantKey bool
	key     string // an object's key whose value is being read
	index   int    // how many values were read
}

// fieldOf names the value being read in stack as errors name fields:
// keys and array indexes joined with dots.
func fieldOf(stack []*jsonFrame) string {
	parts := make([]string, 0, len(stack))
	for _, f := range stack {
		if f.keys != nil {
			parts = append(parts, f.key)
		} else {
			parts = append(parts, strconv.Itoa(f.index))
		}
	}
	return strings.Join(parts, ".")
}

// hasControl reports whether s holds a C0 or C1 control character or DEL,
// tab, line feed and carriage return aside.
func hasControl(s string) bool {
	for _, r := range s {
		if (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || (r >= 0x7f && r <= 0x9f) {
			return true
		}
	}
	return false
}
