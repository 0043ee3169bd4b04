package impl

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

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
