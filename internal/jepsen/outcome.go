package jepsen

import (
	"errors"
	"net"
	"strings"

	"connectrpc.com/connect"
)

// The phrases of v9's write errors (docs/architecture.md, "Writes"): an error saying
// phraseMaybe may or may not have been applied; one saying phraseNot certainly was not.
const (
	phraseMaybe = "may or may not have been applied"
	phraseNot   = "was not applied"
)

// Outcome is how the history records one answer.
type Outcome struct {
	Output Output
	// Drop: the operation certainly had no effect (a write that was not applied, a read that
	// failed), so it is left out of the history.
	Drop bool
	// Unclassified: a write failed with an error from the server that says neither
	// phraseMaybe nor phraseNot; it is recorded as Unknown, and the test fails, since the
	// caller cannot tell what happened.
	Unclassified bool
}

// Classify reads the answer to an operation of kind k. v is the value the answer carried
// when err is nil ("" for a component that had none).
func Classify(k Kind, v string, err error) Outcome {
	if err == nil {
		return Outcome{Output: Output{Result: OK, Value: v}}
	}
	code := connect.CodeOf(err)
	if connect.IsWireError(err) {
		switch {
		case code == connect.CodeNotFound:
			return Outcome{Output: Output{Result: NotFound}}
		case code == connect.CodeAlreadyExists:
			return Outcome{Output: Output{Result: Exists}}
		case k == Read:
			return Outcome{Drop: true}
		}
		msg := err.Error()
		switch {
		case strings.Contains(msg, phraseMaybe):
			return Outcome{Output: Output{Result: Unknown}}
		case strings.Contains(msg, phraseNot):
			return Outcome{Drop: true}
		}
		return Outcome{Output: Output{Result: Unknown}, Unclassified: true}
	}
	// The client's own failure: a refused connection sent nothing; anything else (its
	// deadline, a connection lost mid-call) leaves a write in doubt.
	if k == Read || isDialError(err) {
		return Outcome{Drop: true}
	}
	return Outcome{Output: Output{Result: Unknown}}
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
