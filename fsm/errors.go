package fsm

import (
	"errors"
	"fmt"
)

// Errors returned by Apply and the read queries. Callers test them with errors.Is.
var (
	// ErrNotFound: the named entity does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: an entity with that id or name exists.
	ErrAlreadyExists = errors.New("already exists")
	// ErrInvalid: the command breaks a rule of the state (bad name, bad spec, bad reference).
	ErrInvalid = errors.New("invalid")
	// ErrUnknownCommand: the command carries no operation this version knows.
	ErrUnknownCommand = errors.New("unknown command")
	// ErrDecode: the log entry is not a Command.
	ErrDecode = errors.New("cannot decode command")
	// ErrLoginBound: a sign-in would bind a GitHub login that is bound to another user id.
	ErrLoginBound = errors.New("GitHub login bound to another user id")
)

func notFound(kind, key string) error {
	return fmt.Errorf("%s %q: %w", kind, key, ErrNotFound)
}

func exists(kind, key string) error {
	return fmt.Errorf("%s %q: %w", kind, key, ErrAlreadyExists)
}

// invalidError reads as its message alone and matches ErrInvalid.
type invalidError struct{ msg string }

func (e *invalidError) Error() string        { return e.msg }
func (e *invalidError) Is(target error) bool { return target == ErrInvalid }

func invalid(format string, args ...any) error {
	return &invalidError{msg: fmt.Sprintf(format, args...)}
}

// boundError reads as its message alone and matches ErrLoginBound.
type boundError struct{ msg string }

func (e *boundError) Error() string        { return e.msg }
func (e *boundError) Is(target error) bool { return target == ErrLoginBound }
