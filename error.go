package parley

import (
	"errors"
	"fmt"
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

// ErrorCode returns the code of an application error, "" for nil and
// EINTERNAL for any other error.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
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
	}
	return "internal error"
}
