package main

import (
	"encoding/json"
	"errors"
	"io"

	"connectrpc.com/connect"

	"github.com/velocity9/v9/deploy"
)

// Exit codes of the CLI, one per class of error, so that scripts can tell "not found" from
// "cannot reach the cluster" without reading the message. docs/cli-scripting.md lists them;
// TestExitCodesDocumented keeps that table in step with exitClasses.
const (
	exitOK              = 0
	exitError           = 1 // anything not classed below (a failed deployment, a local file error, internal)
	exitUsage           = 2 // the command was called wrongly (unknown flag, missing argument)
	exitInvalidArgument = 3
	exitUnauthenticated = 4
	exitPermission      = 5
	exitNotFound        = 6
	exitAlreadyExists   = 7
	exitPrecondition    = 8
	exitUnavailable     = 9
	exitExhausted       = 10
	exitUnimplemented   = 11
)

// exitClass is one class of error: the code word printed with --json and the exit status.
type exitClass struct {
	code string
	exit int
}

// exitClasses maps Connect codes to the CLI's classes; codes not listed are exitError.
var exitClasses = map[connect.Code]exitClass{
	connect.CodeInvalidArgument:    {"invalid_argument", exitInvalidArgument},
	connect.CodeOutOfRange:         {"invalid_argument", exitInvalidArgument},
	connect.CodeUnauthenticated:    {"unauthenticated", exitUnauthenticated},
	connect.CodePermissionDenied:   {"permission_denied", exitPermission},
	connect.CodeNotFound:           {"not_found", exitNotFound},
	connect.CodeAlreadyExists:      {"already_exists", exitAlreadyExists},
	connect.CodeFailedPrecondition: {"failed_precondition", exitPrecondition},
	connect.CodeAborted:            {"failed_precondition", exitPrecondition},
	connect.CodeUnavailable:        {"unavailable", exitUnavailable},
	connect.CodeDeadlineExceeded:   {"unavailable", exitUnavailable},
	connect.CodeResourceExhausted:  {"resource_exhausted", exitExhausted},
	connect.CodeUnimplemented:      {"unimplemented", exitUnimplemented},
}

// classify returns the class of err: usage errors first, then the Connect code of the first
// Connect error in its chain, else the generic class.
func classify(err error) exitClass {
	var ue usageError
	if errors.As(err, &ue) || isCobraUsage(err) {
		return exitClass{"usage", exitUsage}
	}
	if errors.Is(err, deploy.ErrBadManifest) { // checked here before any call
		return exitClasses[connect.CodeInvalidArgument]
	}
	var ce *connect.Error
	if errors.As(err, &ce) {
		if c, ok := exitClasses[ce.Code()]; ok {
			return c
		}
	}
	return exitClass{"error", exitError}
}

// jsonError is what --json prints on stderr for a failed command.
type jsonError struct {
	Error jsonErrorBody `json:"error"`
}

type jsonErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Hint    string `json:"hint,omitempty"`
	Exit    int    `json:"exit"`
}

// printJSONError writes err as one JSON object: {"error": {"code", "message", "hint", "exit"}}.
func printJSONError(w io.Writer, err error, addr string) {
	msg, hint := describeError(err, addr)
	c := classify(err)
	b, _ := json.Marshal(jsonError{jsonErrorBody{Code: c.code, Message: msg, Hint: hint, Exit: c.exit}})
	w.Write(append(b, '\n'))
}
