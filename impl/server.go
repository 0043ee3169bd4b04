// Package impl implements the API that gen declares: the echo server, its
// middleware and one handler per operation of openapi.yaml.
package impl

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/labstack/echo/v4"
	oapimw "github.com/oapi-codegen/echo-middleware"

	"apiv4/db"
	"apiv4/gen"
)

// Waker is told when a job was queued; the job runner implements it.
type Waker interface{ Wake() }

// Server implements every operation of the spec over a Store.
type Server struct {
	store *db.Store
	jobs  Waker
	log   *slog.Logger
}

var _ gen.StrictServerInterface = (*Server)(nil)

// NewHandler returns the HTTP handler of the whole API: routing, request
// logging, auth, validation against openapi.yaml, then the operations.
func NewHandler(store *db.Store, jobs Waker, log *slog.Logger, opts ...Option) (http.Handler, error) {
	o := defaults
	for _, opt := range opts {
		opt(&o)
	}
	spec, err := gen.GetSpec()
	if err != nil {
		return nil, fmt.Errorf("impl: load spec: %w", err)
	}
	routes, err := routeScopes(spec)
	if err != nil {
		return nil, err
	}
	s := &Server{store: store, jobs: jobs, log: log}

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = handleError(log)
	e.Pre(canonicalPath)
	e.Use(answerHead, requestLog(log), recoverPanic(log), securityHeaders, deadline(o.requestTimeout))
	e.Use(limitAuthFailures(newLimiter(o.authFailRate)), s.authenticate(routes),
		limitTokens(newLimiter(o.tokenRate)), guardBody)
	e.Use(oapimw.OapiRequestValidatorWithOptions(spec, &oapimw.Options{
		SilenceServersWarning: true,
		Skipper:               func(c echo.Context) bool { return routes[routeKey(c)] == "" },
		Options: openapi3filter.Options{
			AuthenticationFunc: openapi3filter.NoopAuthenticationFunc,
		},
		ErrorHandler: func(c echo.Context, he *echo.HTTPError) error { return he.Internal },
	}))
	gen.RegisterHandlersWithBaseURL(e, gen.NewStrictHandler(s, nil), "/v4")

	e.GET("/healthz", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{}) })
	e.GET("/readyz", func(c echo.Context) error {
		if err := store.Ping(c.Request().Context()); err != nil {
			return &db.Error{Code: db.Unavailable, Reason: "Database unavailable"}
		}
		return c.JSON(http.StatusOK, map[string]string{})
	})
	return e, nil
}

// routeKey is how a matched route is named in the scope table.
func routeKey(c echo.Context) string { return c.Request().Method + " " + c.Path() }

// routeScopes reads the OAuth scope each operation needs from the spec,
// keyed by method and echo route path ("GET /v4/linode/instances/:linodeId").
func routeScopes(spec *openapi3.T) (map[string]string, error) {
	routes := map[string]string{}
	for path, item := range spec.Paths.Map() {
		echoPath := "/v4" + pathParam.ReplaceAllString(path, ":$1")
		for method, op := range item.Operations() {
			scope := ""
			if op.Security != nil {
				for _, req := range *op.Security {
					if scopes := req["oauth"]; len(scopes) > 0 {
						scope = scopes[0]
					}
				}
			}
			if scope == "" {
				return nil, fmt.Errorf("impl: %s %s declares no oauth scope", method, path)
			}
			routes[method+" "+echoPath] = scope
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
			if !requestIDPattern.MatchString(id) {
				b := make([]byte, 8)
				_, _ = rand.Read(b)
				id = hex.EncodeToString(b)
			}
			c.Response().Header().Set("X-Request-Id", id)

			err := next(c)
			if err != nil {
				c.Error(err)
			}
			log.InfoContext(c.Request().Context(), "request",
				"method", c.Request().Method, "route", c.Path(),
				"status", c.Response().Status, "duration_ms",
				float64(time.Since(start).Microseconds())/1000, "request_id", id)
			return nil
		}
	}
}

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

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

type principalKey struct{}

// principal returns the caller that authenticate put in the context.
func principal(ctx context.Context) *db.Principal {
	p, _ := ctx.Value(principalKey{}).(*db.Principal)
	return p
}

// authenticate resolves the bearer token of every request to a route of the
// spec, checks that its scopes cover the route's, and puts the principal
// in the request context. Other requests (404, 405, health) pass through.
func (s *Server) authenticate(routes map[string]string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			need := routes[routeKey(c)]
			if need == "" {
				return next(c)
			}
			h := c.Response().Header()
			h.Set("X-Accepted-OAuth-Scopes", need)
			scheme, secret, ok := strings.Cut(c.Request().Header.Get(echo.HeaderAuthorization), " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") {
				return &db.Error{Code: db.Unauthorized, Reason: "Invalid Token"}
			}
			ctx := c.Request().Context()
			p, err := s.store.Authenticate(ctx, strings.TrimSpace(secret))
			if err != nil {
				return err
			}
			h.Set("X-OAuth-Scopes", p.Scopes)
			if !allows(p.Scopes, need) {
				return &db.Error{Code: db.Unauthorized,
					Reason: "Your OAuth token is not authorized to use this endpoint."}
			}
			c.SetRequest(c.Request().WithContext(context.WithValue(ctx, principalKey{}, p)))
			return next(c)
		}
	}
}

// allows reports whether a token's scopes cover a needed scope: "*" covers
// all, and area:read_write covers area:read_only.
func allows(scopes, need string) bool {
	area, level, _ := strings.Cut(need, ":")
	for _, have := range strings.Fields(scopes) {
		hArea, hLevel, _ := strings.Cut(have, ":")
		if have == "*" || (hArea == area && (hLevel == level || hLevel == "read_write")) {
			return true
		}
	}
	return false
}
