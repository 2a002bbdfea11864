package notify

import (
	"errors"
	"fmt"
)

// Code classifies an error for the adapters, which map each code to a status
// in one table (handler.status). Codes double as the "code" of error events.
type Code string

// The error codes. An error without a Code is internal: adapters log it and
// show only CodeInternal.
const (
	CodeInvalid      Code = "BAD_REQUEST"
	CodeUnauthorized Code = "UNAUTHORIZED"
	CodeForbidden    Code = "FORBIDDEN"
	CodeConflict     Code = "CONFLICT"
	CodeRateLimited  Code = "RATE_LIMITED"
	CodeInternal     Code = "INTERNAL"
	// CodeUnregistered: the connection asking has no record any more (a
	// delivery to it was answered 410 Gone, and its record was removed), so
	// no event can reach it: it is closed, and its client reconnects.
	CodeUnregistered Code = "NOT_REGISTERED"
)

// Error is an error meant for the caller: its Message is safe to show.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Errorf returns an *Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns err's Code, or CodeInternal for an error that has none.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// ErrorMessage returns err's message if it is meant for the caller, and a
// generic one otherwise, so internal details never reach a client.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
