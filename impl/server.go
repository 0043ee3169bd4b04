// Package impl implements the API that gen declares: the echo server, its
// middleware and one handler per operation of openapi.yaml.
package impl

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"

	"apiv4/db"
	"apiv4/gen"
	"apiv4/scope"
)

// Waker is told when a job was queued; the job runner implements it.
type Waker interface{ Wake() }

// Server implements every operation of the spec over a Store.
type Server struct {
	store *db.Store
	jobs  Waker
	log   *slog.Logger
	opts  options

	streams *streamSlots // the event streams each token holds open
}

var _ gen.StrictServerInterface = (*Server)(nil)

// NewHandler returns the HTTP handler of the whole API: routing, request
// logging, auth, rate limits, the door checks of the body, validation
// against openapi.yaml, then the operations; beside them the spec and docs
// portal, /metrics, /healthz and /readyz.
func NewHandler(store *db.Store, jobs Waker, log *slog.Logger, opts ...Option) (http.Handler, error) {
	spec, err := gen.GetSpec()
	if err != nil {
		return nil, fmt.Errorf("impl: load spec: %w", err)
	}
	routes, err := routeScopes(spec)
	if err != nil {
		return nil, err
	}
	// authenticate checks every token and its scope, read from the spec
	// above; the validator need not run the noop check again.
	for _, item := range spec.Paths.Map() {
		for _, op := range item.Operations() {
			op.Security = &openapi3.SecurityRequirements{}
		}
	}
	s := &Server{store: store, jobs: jobs, log: log, opts: defaultOptions()}
	for _, o := range opts {
		o(&s.opts)
	}
	if s.opts.metrics == nil {
		s.opts.metrics = NewMetrics(store, log)
	}
	s.streams = newStreamSlots(s.opts.streamCap)

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = handleError(log)
	m := s.opts.metrics
	e.Pre(m.observe, betaAlias, canonicalPath)
	e.Use(answerHead, requestLog(log), recoverPanic(log), securityHeaders, answerOptions,
		deadline(s.opts.requestTimeout))
	e.Use(s.authenticate(routes, newAuthGate(s.opts.authFailRate, m)),
		limitTokens(newLimiter(s.opts.tokenRate), m), guardBody)
	e.Use(validate(spec))
	e.Use(conditional(etagRoutes(spec)))
	gen.RegisterHandlersWithBaseURL(e, gen.NewStrictHandler(s, nil), "/v4")

	e.GET("/healthz", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{}) })
	e.GET("/readyz", func(c echo.Context) error {
		if err := store.Ready(c.Request().Context()); err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]string{})
	})
	e.GET("/metrics", echo.WrapHandler(s.opts.metrics.Handler()))
	if err := registerPortal(e); err != nil {
		return nil, err
	}
	return e, nil
}

// routeKey is how a matched route is named in the scope table.
func routeKey(c echo.Context) string { return c.Request().Method + " " + c.Path() }

// routeScopes reads the OAuth scope each operation needs from the spec,
// keyed by method and echo route path ("GET /v4/linode/instances/:linodeId").
// Every operation must declare an oauth requirement; an empty scope list
// (POST /feedback) opens it to any valid token and maps to "".
func routeScopes(spec *openapi3.T) (map[string]string, error) {
	routes := map[string]string{}
	for path, item := range spec.Paths.Map() {
		echoPath := "/v4" + pathParam.ReplaceAllString(path, ":$1")
		for method, op := range item.Operations() {
			need, declared := "", false
			if op.Security != nil {
				for _, req := range *op.Security {
					if scopes, ok := req["oauth"]; ok {
						declared = true
						if len(scopes) > 0 {
							need = scopes[0]
						}
					}
				}
			}
			if !declared {
				return nil, fmt.Errorf("impl: %s %s declares no oauth scope", method, path)
			}
			if canon, err := scope.Parse(need); need != "" && (err != nil || canon != need) {
				return nil, fmt.Errorf("impl: %s %s declares scope %q, which is not one scope",
					method, path, need)
			}
			routes[method+" "+echoPath] = need
		}
	}
	return routes, nil
}

var pathParam = regexp.MustCompile(`\{([^}]+)\}`)

// requestLog logs one line per finished request and gives every request an
// id, taken from X-Request-Id when the client sent a sane one.
func requestLog(log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			id := c.Request().Header.Get("X-Request-Id")
			if !saneRequestID(id) {
				var b [8]byte
				_, _ = rand.Read(b[:])
				id = hex.EncodeToString(b[:])
			}
			c.Response().Header().Set("X-Request-Id", id)

			err := next(c)
			if err != nil {
				c.Error(err)
			}
			// LogAttrs: the most polled routes log a line per request,
			// and typed attributes spare converting each value.
			log.LogAttrs(c.Request().Context(), slog.LevelInfo, "request",
				slog.String("method", method(c)), slog.String("route", c.Path()),
				slog.Int("status", c.Response().Status), slog.Float64("duration_ms",
					float64(time.Since(start).Microseconds())/1000), slog.String("request_id", id))
			return nil
		}
	}
}

// saneRequestID reports whether a client's X-Request-Id may stand for the
// request: 1 to 64 letters, digits, '.', '_' or '-'.
func saneRequestID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for _, c := range []byte(id) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

// recoverPanic turns a panic in a handler into a logged internal error.
func recoverPanic(log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) (err error) {
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("panic: %v", r)
				}
			}()
			return next(c)
		}
	}
}

// tokenCheckedByHandler are the routes whose store statement checks that
// the token is not revoked, in the same round trip as the data: the most
// polled one, and the settings update, which writes an event in one
// statement. Their token's other facts may come from the process's cache
// (db.Store.IdentifyToken); every other route asks the database.
var tokenCheckedByHandler = map[string]bool{
	"GET /v4/account/events":             true,
	"PUT /v4/linode/instances/:linodeId": true,
}

// invalidToken reports whether err is the answer to an unknown, expired or
// revoked token.
func invalidToken(err error) bool {
	var de *db.Error
	return errors.As(err, &de) && de.Code == db.Unauthorized && de.Reason == "Invalid Token"
}

type principalKey struct{}

// principal returns the caller that authenticate put in the context.
func principal(ctx context.Context) *db.Principal {
	p, _ := ctx.Value(principalKey{}).(*db.Principal)
	return p
}

// authenticate resolves the bearer token of every request to a route of the
// spec, checks that its scopes cover the route's, and puts the principal
// in the request context. Other requests (404, 405, health) pass through.
// Every answer says which scopes the route accepts (X-Accepted-OAuth-Scopes,
// left out for routes open to any token) and which the token has
// (X-OAuth-Scopes, "unknown" when the token is not valid).
func (s *Server) authenticate(routes map[string]string, gate *authGate) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			key := routeKey(c)
			need, ok := routes[key]
			if !ok {
				return next(c)
			}
			h := c.Response().Header()
			if need != "" {
				h.Set("X-Accepted-OAuth-Scopes", need)
			}
			h.Set("X-OAuth-Scopes", "unknown")
			scheme, secret, ok := strings.Cut(c.Request().Header.Get(echo.HeaderAuthorization), " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") {
				return &db.Error{Code: db.Unauthorized, Reason: "Invalid Token"}
			}
			secret = strings.TrimSpace(secret)
			if !gate.admit(c, secret) {
				return tooManyRequests
			}
			ctx := c.Request().Context()
			lookup := s.store.Authenticate
			checked := tokenCheckedByHandler[key]
			if checked {
				lookup = s.store.IdentifyToken
			}
			p, err := lookup(ctx, secret)
			gate.judged(c, secret, err)
			if err != nil {
				return err
			}
			h.Set("X-OAuth-Scopes", p.Scopes)
			if !scope.Allows(p.Scopes, need) {
				err = &db.Error{Code: db.Unauthorized,
					Reason: "Your OAuth token is not authorized to use this endpoint."}
			} else {
				c.SetRequest(c.Request().WithContext(context.WithValue(ctx, principalKey{}, p)))
				err = next(c)
			}
			if checked && err != nil && !invalidToken(err) {
				// Refused before the handler's statement checked the token
				// (a scope it lacks, a bad filter or body): a revoked token
				// hears only that it is.
				if _, authErr := s.store.Authenticate(ctx, secret); invalidToken(authErr) {
					err = authErr
				}
			}
			if invalidToken(err) { // revoked, as the handler's statement found
				h.Set("X-OAuth-Scopes", "unknown")
				gate.judged(c, secret, err)
			}
			return err
		}
	}
}

// betaAlias serves /v4beta as /v4: clients of the public API switch to
// its beta version by name (linodego's SetAPIVersion("v4beta")), and
// apiv4 has one version of each operation.
func betaAlias(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if rest, ok := strings.CutPrefix(r.URL.Path, "/v4beta/"); ok {
			r.URL.Path = "/v4/" + rest
			if r.URL.RawPath != "" {
				r.URL.RawPath = "/v4/" + strings.TrimPrefix(r.URL.RawPath, "/v4beta/")
			}
		}
		return next(c)
	}
}
