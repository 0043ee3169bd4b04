package impl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/labstack/echo/v4"
)

// TestInternalErrorsAreGeneric checks that a handler failing with an
// unexpected error, or panicking, is answered 500 with a generic reason in
// the error shape, and that the detail, which may name hosts, users or
// SQL, reaches the log once and the client never.
func TestInternalErrorsAreGeneric(t *testing.T) {
	const detail = "dial tcp 10.0.0.5:5432: password authentication failed for user apiv4"
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	e := echo.New()
	e.HTTPErrorHandler = handleError(log)
	e.Use(recoverPanic(log))
	e.GET("/failed", func(echo.Context) error {
		return fmt.Errorf("load linode: %w", errors.New(detail))
	})
	e.GET("/panicked", func(echo.Context) error { panic(detail) })

	for _, path := range []string{"/failed", "/panicked"} {
		t.Run(path, func(t *testing.T) {
			logs.Reset()
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			want := `{"errors":[{"reason":"An internal error occurred"}]}` + "\n"
			if rec.Code != http.StatusInternalServerError || rec.Body.String() != want ||
				rec.Header().Get("Content-Type") != "application/json" {
				t.Errorf("got %d %q %s, want 500 application/json %s", rec.Code,
					rec.Header().Get("Content-Type"), rec.Body, want)
			}
			if n := strings.Count(logs.String(), "password authentication failed"); n != 1 {
				t.Errorf("the detail is logged %d times, want once:\n%s", n, logs.String())
			}
		})
	}
}

// TestErrorBodyRetryable: a request the database rolled back as a whole
// (a deadlock, a serialization conflict) or that ran past its deadline is
// 503, which clients retry; another database failure stays a 500 that
// tells nothing of its cause.
func TestErrorBodyRetryable(t *testing.T) {
	for _, tt := range []struct {
		err    error
		status int
		reason string
	}{
		{fmt.Errorf("db: %w", &pgconn.PgError{Code: "40P01"}), http.StatusServiceUnavailable,
			"Service unavailable, try again shortly."},
		{fmt.Errorf("db: %w", &pgconn.PgError{Code: "40001"}), http.StatusServiceUnavailable,
			"Service unavailable, try again shortly."},
		{context.DeadlineExceeded, http.StatusServiceUnavailable, "Service unavailable, try again shortly."},
		{fmt.Errorf("db: %w", &pgconn.PgError{Code: "42P01", Message: "relation x"}),
			http.StatusInternalServerError, "An internal error occurred"},
	} {
		status, body := errorBody(tt.err)
		if status != tt.status || body.Reason != tt.reason || body.Field != "" {
			t.Errorf("errorBody(%v) = %d %+v, want %d %q", tt.err, status, body, tt.status, tt.reason)
		}
	}
}
