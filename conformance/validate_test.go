package conformance

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"apiv4/gen"
)

// loadSpec parses openapi.yaml, as embedded in gen, and builds the router
// that maps a request to its operation. Both are read-only and shared.
var loadSpec = sync.OnceValues(func() (*specRouter, error) {
	spec, err := gen.GetSpec()
	if err != nil {
		return nil, fmt.Errorf("load spec: %w", err)
	}
	router, err := gorillamux.NewRouter(spec)
	if err != nil {
		return nil, fmt.Errorf("spec router: %w", err)
	}
	return &specRouter{spec: spec, router: router}, nil
})

// specRouter is the spec with the router that finds its operations.
type specRouter struct {
	spec   *openapi3.T
	router routers.Router
}

// mustSpec returns the spec, failing tb if it cannot be loaded.
func mustSpec(tb testing.TB) *specRouter {
	tb.Helper()
	s, err := loadSpec()
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// An exchange is one request and the response it got, as a
// checkedTransport saw them.
type exchange struct {
	Op     string // operationId, or "" when no operation matches
	Method string
	Path   string
	Status int
	Body   []byte
}

// checkedTransport is the http.RoundTripper of every client of the suite.
// It checks each response against the spec (status documented, headers
// and body valid, errors in the Linode shape with Content-Type exactly
// application/json), fails its test on a violation, counts the response
// for coverage and keeps the exchange for the test to look at.
type checkedTransport struct {
	tb      testing.TB
	next    http.RoundTripper
	prefix  string // the path of the base URL, stripped before routing
	stray   bool   // the responses are made up: leave them out of coverage
	offSpec bool   // requests match no operation on purpose: they must get 404, not counted

	mu   sync.Mutex
	seen []exchange
}

// transport is shared by all clients so that connections are reused.
var transport = &http.Transport{MaxIdleConnsPerHost: 64}

// newCheckedTransport returns the transport of a client of baseURL that
// fails tb.
func newCheckedTransport(tb testing.TB, baseURL string) *checkedTransport {
	u, err := url.Parse(baseURL)
	if err != nil {
		tb.Fatalf("base URL: %v", err)
	}
	return &checkedTransport{tb: tb, next: transport, prefix: strings.TrimSuffix(u.Path, "/")}
}

// RoundTrip implements http.RoundTripper.
func (c *checkedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	var body []byte
	switch {
	case !isEventStream(resp) || req.Method == http.MethodHead: // HEAD of a stream has no body
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	case req.Context().Value(followKey{}) != nil:
		// The caller follows the stream and checks each frame; what is
		// checked here is the status and the headers.
	default:
		// A stream never ends: check its opening frame, then hang up.
		body, err = openingFrame(resp.Body)
		resp.Body.Close()
	}
	if err != nil {
		return nil, err
	}
	if body != nil {
		resp.Body = io.NopCloser(bytes.NewReader(body))
	}

	op, problems := c.check(req, resp, body)
	for _, p := range problems {
		c.tb.Errorf("%s %s → %d: %s\nbody: %s", req.Method, req.URL.Path, resp.StatusCode, p, body)
	}
	if op != "" && !c.stray && !c.offSpec {
		recordCoverage(op, resp.StatusCode)
	}
	if _, ok := anyOperation[resp.StatusCode]; ok && !c.stray && len(problems) == 0 {
		recordCoverage(anyOperationKey, resp.StatusCode)
	}
	c.mu.Lock()
	c.seen = append(c.seen, exchange{op, req.Method, req.URL.Path, resp.StatusCode, body})
	c.mu.Unlock()
	return resp, nil
}

// exchanges returns the exchanges seen so far.
func (c *checkedTransport) exchanges() []exchange {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]exchange(nil), c.seen...)
}

// check returns the operation the request matched and what is wrong
// with the response.
func (c *checkedTransport) check(req *http.Request, resp *http.Response,
	body []byte) (string, []string) {
	s, err := loadSpec()
	if err != nil {
		return "", []string{err.Error()}
	}
	routed := canonicalRequest(req, c.prefix)
	opts := &openapi3filter.Options{
		AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
		IncludeResponseStatus: true,
		MultiError:            true,
		ExcludeResponseBody:   req.Method == http.MethodHead,
	}
	route, params, err := s.router.FindRoute(routed)
	switch {
	case c.offSpec && resp.StatusCode == http.StatusNotFound,
		errors.Is(err, routers.ErrMethodNotAllowed) && resp.StatusCode == http.StatusMethodNotAllowed:
		route = s.anyPathRoute(routed, resp.StatusCode)
	case err != nil:
		return "", []string{"the request matches no operation of the spec: " + err.Error()}
	case route.Operation.Responses.Status(resp.StatusCode) == nil:
		if r := s.anyOperationRoute(route, resp.StatusCode); r != nil {
			route = r
		}
	}

	var problems []string
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: routed, PathParams: params, Route: route, Options: opts,
		},
		Status: resp.StatusCode, Header: resp.Header,
		Body: io.NopCloser(bytes.NewReader(body)), Options: opts,
	}
	if err := openapi3filter.ValidateResponse(req.Context(), in); err != nil {
		problems = append(problems, "response violates the spec: "+err.Error())
	}
	if resp.StatusCode >= 400 {
		problems = append(problems, checkErrorShape(resp.Header, body, req.Method == http.MethodHead)...)
	}
	return operationID(route.Operation), problems
}

// canonicalRequest returns the request as the server routes it: the path
// without the base URL's, decoded, without a trailing slash, and HEAD as
// GET (see the spec's "Requests").
func canonicalRequest(req *http.Request, prefix string) *http.Request {
	routed := req.Clone(req.Context())
	routed.URL.Path = strings.TrimPrefix(req.URL.Path, prefix)
	if len(routed.URL.Path) > 1 {
		routed.URL.Path = strings.TrimSuffix(routed.URL.Path, "/")
	}
	routed.URL.RawPath = ""
	if req.Method == http.MethodHead {
		routed.Method = http.MethodGet
	}
	return routed
}

// anyOperation names the response components of the answers that any
// operation may give besides those it lists (the spec's "Answers any
// operation may give").
var anyOperation = map[int]string{
	http.StatusMethodNotAllowed:      "MethodNotAllowed",
	http.StatusRequestEntityTooLarge: "PayloadTooLarge",
	http.StatusUnsupportedMediaType:  "UnsupportedMediaType",
	http.StatusTooManyRequests:       "TooManyRequests",
	http.StatusServiceUnavailable:    "ServiceUnavailable",
}

// anyOperationKey is the name coverage counts the answers of anyOperation
// under, whatever operation (or none, for a 405) gave them.
const anyOperationKey = "(any operation)"

// anyOperationRoute returns the route with an operation that documents
// only the component response any operation may answer status with, or
// nil when status is not such an answer. Coverage counts it under the
// route's operation.
func (s *specRouter) anyOperationRoute(route *routers.Route, status int) *routers.Route {
	name, ok := anyOperation[status]
	ref := s.spec.Components.Responses[name]
	if !ok || ref == nil {
		return nil
	}
	op := *route.Operation
	op.Responses = openapi3.NewResponses(openapi3.WithStatus(status, ref))
	r := *route
	r.Operation = &op
	return &r
}

// anyPathRoute returns a route for a request that matches no operation,
// whose answer must be the spec's NotFound (or MethodNotAllowed).
func (s *specRouter) anyPathRoute(req *http.Request, status int) *routers.Route {
	name := map[int]string{http.StatusNotFound: "NotFound"}[status]
	if name == "" {
		name = anyOperation[status]
	}
	op := openapi3.NewOperation()
	op.Responses = openapi3.NewResponses(openapi3.WithStatus(status, s.spec.Components.Responses[name]))
	return &routers.Route{Spec: s.spec, Path: req.URL.Path, Method: req.Method, Operation: op}
}

// operationID returns an operation's id as openapi.yaml spells it. The
// spec embedded in gen has the ids renamed to Go names by oapi-codegen
// (ShutdownLinodeInstance for shutdownLinodeInstance); our spec spells
// every id in lower camel case, so lowering the first letter restores it.
func operationID(op *openapi3.Operation) string {
	id := op.OperationID
	if id == "" {
		return ""
	}
	return strings.ToLower(id[:1]) + id[1:]
}

// checkErrorShape checks what linodego needs of a non-2xx response:
// Content-Type exactly application/json and a non-empty errors array
// whose entries all have a reason. The answer to HEAD has no body.
func checkErrorShape(h http.Header, body []byte, head bool) []string {
	var problems []string
	if got := h.Get("Content-Type"); got != "application/json" {
		problems = append(problems, fmt.Sprintf("Content-Type = %q, want exactly application/json", got))
	}
	if head {
		return problems
	}
	var e apiErrors
	if err := json.Unmarshal(body, &e); err != nil {
		return append(problems, "error body is not JSON: "+err.Error())
	}
	if len(e.Errors) == 0 {
		problems = append(problems, "error body has no errors")
	}
	for i, entry := range e.Errors {
		if entry.Reason == "" {
			problems = append(problems, fmt.Sprintf("errors[%d] has no reason", i))
		}
	}
	return problems
}

// apiErrors is the body of every non-2xx response.
type apiErrors struct {
	Errors []apiError `json:"errors"`
}

// apiError is one entry of it; Field is empty when absent.
type apiError struct {
	Reason string `json:"reason"`
	Field  string `json:"field,omitempty"`
}

// TestCheckedTransport checks that the transport of every client finds
// what is wrong with made-up responses, and passes a good one.
func TestCheckedTransport(t *testing.T) {
	linode := `{"id":1}` // lacks most required fields
	notFound := `{"errors":[{"reason":"Not found"}]}`
	tests := []struct {
		name, path, contentType, body string
		status                        int
		wantProblem                   bool
	}{
		{"good error", "/v4/linode/instances/1", "application/json", notFound, 404, false},
		{"Linode without its fields", "/v4/linode/instances/1", "application/json", linode, 200, true},
		{"charset in the error type", "/v4/linode/instances/1", "application/json; charset=utf-8",
			notFound, 404, true},
		{"no errors", "/v4/linode/instances/1", "application/json", `{"errors":[]}`, 404, true},
		{"not JSON", "/v4/linode/instances/1", "text/html", "<h1>oops</h1>", 502, true},
		{"undocumented status", "/v4/linode/instances/1", "application/json", notFound, 409, true},
		{"unknown operation", "/v4/linode/volumes", "application/json", notFound, 404, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", tt.contentType)
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			tb := &capturingTB{TB: t}
			tr := newCheckedTransport(tb, srv.URL)
			tr.stray = true
			resp, err := (&http.Client{Transport: tr}).Get(srv.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := len(tb.errors) > 0; got != tt.wantProblem {
				t.Errorf("got problems %q, want some: %t", tb.errors, tt.wantProblem)
			}
		})
	}
}

// capturingTB keeps the errors reported to it instead of failing.
type capturingTB struct {
	testing.TB
	mu     sync.Mutex
	errors []string
}

func (c *capturingTB) Helper() {}

func (c *capturingTB) Errorf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.errors = append(c.errors, fmt.Sprintf(format, args...))
}
