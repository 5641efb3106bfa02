// Package apperr holds the errors Halo shows to API clients: a stable code
// (GraphQL extensions.code) and a message safe to show. Anything else that
// reaches the API edge is reported as INTERNAL with its detail only logged.
package apperr

import (
	"errors"
	"fmt"
)

// Code is a stable, documented error code.
type Code string

// The codes clients can rely on.
const (
	BadUserInput    Code = "BAD_USER_INPUT"
	Unauthenticated Code = "UNAUTHENTICATED"
	Forbidden       Code = "FORBIDDEN"
	NotFound        Code = "NOT_FOUND"
	Conflict        Code = "CONFLICT"
	RateLimited     Code = "RATE_LIMITED"
	Internal        Code = "INTERNAL"
	// Suppressed: an identifier of an erased person; nothing was stored.
	Suppressed Code = "SUPPRESSED"
)

// Error is a client-facing error.
type Error struct {
	Code    Code
	Message string
	// Field optionally names the input field at fault, e.g. "identifiers[1].value".
	Field string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s", e.Field, e.Message)
	}
	return e.Message
}

// Invalid returns a BAD_USER_INPUT error about field.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Code: BadUserInput, Field: field, Message: fmt.Sprintf(format, args...)}
}

// New returns an error with code and message.
func New(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// As returns the client-facing error inside err, if any.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// CodeOf returns err's code, INTERNAL if it carries none.
func CodeOf(err error) Code {
	if e, ok := As(err); ok {
		return e.Code
	}
	return Internal
}
