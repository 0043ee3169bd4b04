package db

import (
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// Code classifies an Error; impl maps each code to one HTTP status.
type Code string

// The error vocabulary of apiv4. Every error a request can meet is one of these.
const (
	Invalid      Code = "invalid"      // bad input, or an action the resource's state forbids
	NotFound     Code = "not_found"    // no such resource in the caller's account
	Busy         Code = "busy"         // the Linode has a job scheduled or in progress
	Unauthorized Code = "unauthorized" // missing, unknown, expired or revoked token
	Forbidden    Code = "forbidden"    // the token lacks the scope the operation needs
	Unavailable  Code = "unavailable"  // the database cannot be reached right now
	Internal     Code = "internal"     // a bug or an unexpected fault; details are logged only
)

// Error is an error a client is meant to read: a code, the request field at
// fault (empty when the error is not about one field) and a reason in the
// words of the Linode API.
type Error struct {
	Code   Code
	Field  string
	Reason string
}

// Error returns the reason, prefixed with the field when there is one.
func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s", e.Field, e.Reason)
	}
	return e.Reason
}

// Errorf returns an *Error with the given code and field and a formatted reason.
func Errorf(code Code, field, format string, args ...any) *Error {
	return &Error{Code: code, Field: field, Reason: fmt.Sprintf(format, args...)}
}

// ErrNotFound is the one not-found error: it names no id, so that probing
// another account's ids learns nothing.
var ErrNotFound = &Error{Code: NotFound, Reason: "Not found"}

// ErrBusy is returned for any action but boot on a Linode with a job
// scheduled or in progress. linodego retries on exactly this reason.
var ErrBusy = &Error{Code: Busy, Reason: "Linode busy."}

// ErrorCode returns the Code of err: the code of the *Error it wraps, or
// Internal for any other non-nil error.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// isUnavailable reports whether err means the database cannot be reached,
// as opposed to a fault in a statement.
func isUnavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 08 is connection exceptions, 53 insufficient resources (too
		// many clients, out of memory or disk), 57P0x an operator shutdown.
		return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "53") ||
			strings.HasPrefix(pgErr.Code, "57P0")
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connErr) || errors.As(err, &netErr) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
}

// retryAttempts bounds how many times retry runs a transaction.
const retryAttempts = 3

// retry runs fn, a transaction that changes nothing outside the database,
// again when PostgreSQL rolled it back as a whole to break a deadlock or
// a serialization conflict, so that a client never hears of either.
func retry(fn func() error) error {
	for attempt := 1; ; attempt++ {
		err := fn()
		if attempt == retryAttempts || !Conflict(err) {
			return err
		}
	}
}

// Conflict reports whether err is PostgreSQL's rollback of a whole
// transaction to break a deadlock or a serialization conflict: nothing
// changed, and the same request may succeed when sent again.
func Conflict(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001")
}
