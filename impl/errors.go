package impl

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"reflect"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/labstack/echo/v4"

	"apiv4/db"
)

// statusOf maps each code of the error vocabulary to its HTTP status. The
// Linode API answers a busy Linode and a bad request alike with 400, and a
// token without the needed scope with 401.
var statusOf = map[db.Code]int{
	db.Invalid:      http.StatusBadRequest,
	db.Busy:         http.StatusBadRequest,
	db.NotFound:     http.StatusNotFound,
	db.Unauthorized: http.StatusUnauthorized,
	db.Forbidden:    http.StatusForbidden,
	db.Unavailable:  http.StatusServiceUnavailable,
	db.Internal:     http.StatusInternalServerError,
}

// httpReasons are our words for the errors echo itself raises; echo's own
// messages are never sent, as they may quote the request.
var httpReasons = map[int]string{
	http.StatusBadRequest:            "Request is not valid",
	http.StatusNotFound:              "Not found",
	http.StatusMethodNotAllowed:      "Method Not Allowed",
	http.StatusRequestEntityTooLarge: "Request body is too large",
	http.StatusUnsupportedMediaType:  "Content-Type must be application/json",
	http.StatusTooManyRequests:       "Too many requests",
	http.StatusServiceUnavailable:    "Service unavailable, try again shortly.",
}

// limitError is a 429 whose reason says which limit was met; the caller
// sets Retry-After.
type limitError struct{ reason string }

func (e *limitError) Error() string { return e.reason }

type apiError struct {
	Reason string `json:"reason"`
	Field  string `json:"field,omitempty"`
}

// handleError writes every error of the server, whatever raised it, as
// {"errors":[{"reason":…,"field":…}]} with Content-Type application/json.
// Internal errors are logged here, once, and answered with a generic reason.
func handleError(log *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		status, body := errorBody(err)
		if status == http.StatusInternalServerError {
			log.ErrorContext(c.Request().Context(), "internal error",
				"err", err, "method", method(c), "route", c.Path())
		}
		h := c.Response().Header()
		h.Set(echo.HeaderContentType, "application/json")
		if status == http.StatusServiceUnavailable && h.Get("Retry-After") == "" {
			h.Set("Retry-After", "1")
		}
		if status == http.StatusMethodNotAllowed {
			h.Set(echo.HeaderAllow, withHead(h.Get(echo.HeaderAllow)))
		}
		c.Response().WriteHeader(status)
		if method(c) != http.MethodHead {
			_ = json.NewEncoder(c.Response()).Encode(map[string][]apiError{"errors": {body}})
		}
	}
}

// errorBody picks the status and the one error entry for err.
func errorBody(err error) (int, apiError) {
	var de *db.Error
	if errors.As(err, &de) {
		if de.Code == db.Internal {
			return http.StatusInternalServerError, apiError{Reason: "An internal error occurred"}
		}
		return statusOf[de.Code], apiError{Reason: de.Reason, Field: de.Field}
	}
	var le *limitError
	if errors.As(err, &le) {
		return http.StatusTooManyRequests, apiError{Reason: le.reason}
	}
	// A request past its deadline, or whose client left, changed nothing
	// that was not committed; the client may try again. So may one whose
	// transaction PostgreSQL rolled back to break a deadlock.
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || db.Conflict(err) {
		return http.StatusServiceUnavailable, apiError{Reason: httpReasons[http.StatusServiceUnavailable]}
	}
	var re *openapi3filter.RequestError
	if errors.As(err, &re) {
		return http.StatusBadRequest, requestErrorBody(re)
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		if he.Code == http.StatusBadRequest {
			return he.Code, bindErrorBody(he)
		}
		if reason, ok := httpReasons[he.Code]; ok {
			return he.Code, apiError{Reason: reason}
		}
		if he.Code >= 400 && he.Code < 500 {
			return he.Code, apiError{Reason: strings.ToLower(http.StatusText(he.Code))}
		}
	}
	return http.StatusInternalServerError, apiError{Reason: "An internal error occurred"}
}

// bindErrorBody explains a 400 raised while the generated code bound the
// request to Go types, after the spec validator had let it through: a
// number with a fraction for an integer field, or a malformed parameter.
func bindErrorBody(he *echo.HTTPError) apiError {
	var typeErr *json.UnmarshalTypeError
	if errors.As(he.Internal, &typeErr) && typeErr.Field != "" {
		return apiError{Reason: typeErr.Field + " must be " + goTypeName(typeErr.Type.Kind()),
			Field: typeErr.Field}
	}
	var syntaxErr *json.SyntaxError
	if errors.As(he.Internal, &syntaxErr) {
		return apiError{Reason: "Request body is not valid JSON"}
	}
	// NOTE: the generated binder reports a bad parameter only in words:
	// "Invalid format for parameter <name>: …". The name is all we keep.
	msg, _ := he.Message.(string)
	if rest, ok := strings.CutPrefix(msg, "Invalid format for parameter "); ok {
		if name, _, ok := strings.Cut(rest, ":"); ok && !strings.ContainsAny(name, " \t") {
			return apiError{Reason: name + " is not valid", Field: name}
		}
	}
	return apiError{Reason: httpReasons[http.StatusBadRequest]}
}

func goTypeName(k reflect.Kind) string {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "a list"
	}
	return "an object"
}

// requestErrorBody names the field at fault in a spec violation and says
// what is wrong in the schema's words, without quoting the value sent.
func requestErrorBody(re *openapi3filter.RequestError) apiError {
	field := ""
	if re.Parameter != nil {
		field = re.Parameter.Name
	}
	var se *openapi3.SchemaError
	if errors.As(re.Err, &se) {
		if ptr := se.JSONPointer(); field == "" && len(ptr) > 0 {
			field = strings.Join(ptr, ".")
		}
		reason := se.Reason
		switch {
		case se.SchemaField == "pattern":
			reason = "is not in the allowed format" // never quote the pattern or the value
		case strings.Contains(reason, "json.Number"):
			reason = "number is out of range" // 1e400: no float64 holds it
		}
		if field != "" {
			reason = field + ": " + reason
		}
		return apiError{Reason: reason, Field: field}
	}
	switch {
	case errors.Is(re.Err, openapi3filter.ErrInvalidRequired) && field != "":
		return apiError{Reason: field + " is required", Field: field}
	case errors.Is(re.Err, openapi3filter.ErrInvalidRequired):
		return apiError{Reason: "A request body is required"}
	case re.RequestBody != nil:
		return apiError{Reason: "Request body is not valid JSON"}
	case field != "":
		return apiError{Reason: field + " is not valid", Field: field}
	}
	return apiError{Reason: "Request is not valid"}
}

// withHead adds HEAD to an Allow list that has GET, as HEAD is served
// wherever GET is.
func withHead(allow string) string {
	methods := strings.Split(allow, ", ")
	if slices.Contains(methods, http.MethodGet) && !slices.Contains(methods, http.MethodHead) {
		methods = append(methods, http.MethodHead)
		slices.Sort(methods)
	}
	return strings.Join(methods, ", ")
}
