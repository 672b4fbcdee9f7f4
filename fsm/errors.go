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
	// ErrConflict: a conditional command's condition no longer holds (the entity changed
	// since the read it was decided from); decide again from a fresh read.
	ErrConflict = errors.New("changed since read")
)

func notFound(kind, key string) error {
	return fmt.Errorf("%s %q: %w", kind, key, ErrNotFound)
}

func exists(kind, key string) error {
	return fmt.Errorf("%s %q: %w", kind, key, ErrAlreadyExists)
}

// kindError reads as its message alone and matches its kind (ErrInvalid, ErrLoginBound,
// ErrConflict).
type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string        { return e.msg }
func (e *kindError) Is(target error) bool { return target == e.kind }

func invalid(format string, args ...any) error {
	return &kindError{msg: fmt.Sprintf(format, args...), kind: ErrInvalid}
}

func conflict(format string, args ...any) error {
	return &kindError{msg: fmt.Sprintf(format, args...), kind: ErrConflict}
}
