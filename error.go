package parley

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
)

// Error codes. Each maps to one HTTP status in the transports; see API.md §1.
const (
	EINVALID      = "invalid_argument"       // 400
	EUNAUTHORIZED = "unauthorized"           // 401
	EFORBIDDEN    = "forbidden"              // 403
	ENOTFOUND     = "not_found"              // 404
	ECONFLICT     = "conflict"               // 409
	ETOOLARGE     = "too_large"              // 413
	EUNSUPPORTED  = "unsupported_media_type" // 415
	ERATELIMITED  = "rate_limited"           // 429
	EUNAVAILABLE  = "unavailable"            // 503
	EINTERNAL     = "internal"               // 500

	// More specific codes that share a status with a general one.
	EUSERNAMETAKEN      = "username_taken"      // 409
	EEMAILTAKEN         = "email_taken"         // 409
	EINVALIDCREDENTIALS = "invalid_credentials" // 401
	EBLOCKED            = "blocked"             // 403
	EQUOTA              = "quota_exceeded"      // 413: a user's storage quota is used up
)

// Error is the one error type the service layer returns to transports.
// Code is one of the constants above; Message is safe to show to the client.
// Any error that is not an *Error is an internal error and its text is never shown.
type Error struct {
	Code    string
	Message string
}

// Error implements the error interface.
func (e *Error) Error() string {
	return fmt.Sprintf("parley error: code=%s message=%s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code string, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of an application error, "" for nil,
// EUNAVAILABLE for a failure to reach a server in time (see Unreachable)
// and EINTERNAL for any other error.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	} else if Unreachable(err) {
		return EUNAVAILABLE
	}
	return EINTERNAL
}

// Unreachable reports whether err says that a server (the database, say)
// could not be reached or did not answer in time: a deadline passed, a
// network error, a connection cut in the middle of a message, or one the
// driver gave up on. Such a request may
// succeed if retried later; clients get 503 unavailable.
func Unreachable(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
}

// ErrorMessage returns the client-safe message of err: the message of an
// application error, or "internal error" for an EINTERNAL *Error and for
// anything else, so no internal detail ever reaches a client.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) && e.Code != EINTERNAL {
		return e.Message
	} else if !errors.As(err, &e) && Unreachable(err) {
		return "the service is temporarily unavailable; try again shortly"
	}
	return "internal error"
}
