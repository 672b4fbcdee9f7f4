package server

import (
	"context"
	"errors"

	"connectrpc.com/connect"

	"github.com/velocity9/v9/fsm"
)

// toConnect maps an error to a Connect error. Errors that already are Connect errors (from a
// forwarded call, or from the node) pass through untouched.
func toConnect(err error) error {
	if err == nil {
		return nil
	}
	var ce *connect.Error
	switch {
	case errors.As(err, &ce):
		return err
	case errors.Is(err, fsm.ErrNotFound):
		return connect.NewError(connect.CodeNotFound, err)
	case errors.Is(err, fsm.ErrAlreadyExists):
		return connect.NewError(connect.CodeAlreadyExists, err)
	case errors.Is(err, fsm.ErrLoginBound):
		return connect.NewError(connect.CodePermissionDenied, err)
	case errors.Is(err, fsm.ErrInvalid):
		return connect.NewError(connect.CodeInvalidArgument, err)
	case errors.Is(err, fsm.ErrConflict):
		return connect.NewError(connect.CodeAborted, err)
	case errors.Is(err, fsm.ErrUnknownCommand), errors.Is(err, fsm.ErrDecode):
		return connect.NewError(connect.CodeFailedPrecondition, errors.New("the leader does not know this command: upgrade the cluster's nodes"))
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, err)
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, err)
	}
	return connect.NewError(connect.CodeInternal, err)
}

// respond answers resp, or err as a Connect error (toConnect): a handler that only passes
// its backend's answer on ends with return respond(s.B.Call(...)).
func respond[T any](resp *T, err error) (*connect.Response[T], error) {
	if err != nil {
		return nil, toConnect(err)
	}
	return connect.NewResponse(resp), nil
}

func invalidArg(err error) error {
	return connect.NewError(connect.CodeInvalidArgument, err)
}
