package auth

import (
	"context"
	"fmt"
	"sync"
	"time"

	"connectrpc.com/connect"
)

// TokenChanges tells when the tokens change (fsm.Store does: its tokens table, GitHub login
// bindings included). A stream a token opened is checked again on each change, so a token
// revoked, deleted (a sign-out) or refused by the lists ends the streams it holds.
type TokenChanges interface {
	// TokensIndex is the index of the tokens' last change.
	TokensIndex() uint64
	// WaitTokens returns once the tokens changed above min, with their index, or when ctx
	// ends, with ctx's error.
	WaitTokens(ctx context.Context, min uint64) (uint64, error)
}

// streamGuard keeps a token's stream authorized while it lasts: it checks the token again
// when the tokens change, before each message sent, and when the token expires; once the
// token no longer holds the procedure's role the stream's context is cancelled with the
// refusal as its cause, and the stream ends with it (Unauthenticated, PermissionDenied).
type streamGuard struct {
	a         *Authorizer
	procedure string
	need      Role
	secret    string
	expires   time.Time
	cancel    context.CancelCauseFunc

	mu      sync.Mutex
	checked uint64 // the tokens' index last checked
	refused error
}

// guardStream returns the context a stream authorized as p runs with, cancelled (cause: the
// refusal) once p's token no longer passes, and a stop to call when the stream ends. Streams
// of nodes, and every stream when the Authorizer has no TokenChanges, are left as they are
// (but an expiring token still ends its stream at expiry).
func (a *Authorizer) guardStream(ctx context.Context, procedure, secret string, p *Principal) (context.Context, *streamGuard, func()) {
	if p == nil || p.Token == "" || secret == "" || (a.Changes == nil && p.Expires.IsZero()) {
		return ctx, nil, func() {}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	// checked starts at 0: the first look at the tokens checks again what changed since
	// Authorize read them.
	g := &streamGuard{a: a, procedure: procedure, need: Procedures[procedure].Role, secret: secret, expires: p.Expires, cancel: cancel}
	done := make(chan struct{})
	go g.watch(ctx, done)
	return ctx, g, func() { cancel(nil); <-done }
}

// watch ends the stream when the token expires or, after a change of the tokens, no longer
// passes; it returns when ctx ends.
func (g *streamGuard) watch(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	var expiry <-chan time.Time
	if !g.expires.IsZero() {
		t := time.NewTimer(g.expires.Sub(g.a.now()))
		defer t.Stop()
		expiry = t.C
	}
	changed := make(chan struct{}, 1)
	if g.a.Changes != nil {
		go func() {
			idx := g.checkedIndex()
			for {
				var err error
				if idx, err = g.a.Changes.WaitTokens(ctx, idx); err != nil {
					return
				}
				select {
				case changed <- struct{}{}:
				default:
				}
			}
		}()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-expiry:
			g.refuse(connect.NewError(connect.CodeUnauthenticated,
				fmt.Errorf("the token of this stream expired at %s: %s", g.expires.UTC().Format(time.RFC3339), NoTokenHint+" with another token, or sign in again")))
			return
		case <-changed:
			if g.check(ctx) != nil {
				return
			}
		}
	}
}

func (g *streamGuard) checkedIndex() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.checked
}

// check checks the token again if the tokens changed since the last check (or it has
// expired), and returns the refusal that ended the stream, if any.
func (g *streamGuard) check(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.refused != nil {
		return g.refused
	}
	if !g.expires.IsZero() && !g.a.now().Before(g.expires) {
		g.refuseLocked(connect.NewError(connect.CodeUnauthenticated,
			fmt.Errorf("the token of this stream expired at %s: %s", g.expires.UTC().Format(time.RFC3339), NoTokenHint+" with another token, or sign in again")))
		return g.refused
	}
	if g.a.Changes == nil {
		return nil
	}
	idx := g.a.Changes.TokensIndex()
	if idx == g.checked {
		return nil
	}
	g.checked = idx
	p, err := g.a.tokenPrincipal(ctx, g.secret)
	if err == nil && p.Role < g.need {
		err = connect.NewError(connect.CodePermissionDenied,
			fmt.Errorf("%s needs the %s role; %s has the %s role now", g.procedure, g.need, p.Describe(), p.Role))
	}
	if err != nil {
		if ctx.Err() != nil { // the stream ended meanwhile: nothing to refuse
			return ctx.Err()
		}
		g.refuseLocked(err)
	}
	return g.refused
}

func (g *streamGuard) refuse(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.refused == nil {
		g.refuseLocked(err)
	}
}

func (g *streamGuard) refuseLocked(err error) {
	g.refused = err
	g.cancel(err)
}

// refusal is the error that ended the stream, nil if the guard did not end it.
func (g *streamGuard) refusal() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.refused
}

// guardedConn checks the stream's token before each message it sends, so that no message
// goes out after the change of the tokens that refused it.
type guardedConn struct {
	connect.StreamingHandlerConn
	ctx context.Context
	g   *streamGuard
}

func (c guardedConn) Send(msg any) error {
	if err := c.g.check(c.ctx); err != nil {
		if r := c.g.refusal(); r != nil {
			return r
		}
		return err
	}
	return c.StreamingHandlerConn.Send(msg)
}
