package auth

import (
	"context"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// fakeChanges is a tokens table's change index with a blocking wait.
type fakeChanges struct {
	mu      sync.Mutex
	idx     uint64
	changed chan struct{}
}

func newFakeChanges() *fakeChanges { return &fakeChanges{idx: 1, changed: make(chan struct{})} }

func (f *fakeChanges) TokensIndex() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.idx
}

func (f *fakeChanges) WaitTokens(ctx context.Context, min uint64) (uint64, error) {
	for {
		f.mu.Lock()
		idx, ch := f.idx, f.changed
		f.mu.Unlock()
		if idx > min {
			return idx, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return idx, ctx.Err()
		}
	}
}

// bump records a change of the tokens: change runs under the lock.
func (f *fakeChanges) bump(change func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change()
	f.idx++
	close(f.changed)
	f.changed = make(chan struct{})
}

// ended waits for the guarded context to end and returns its cause's code.
func ended(t *testing.T, ctx context.Context) connect.Code {
	t.Helper()
	select {
	case <-ctx.Done():
		return connect.CodeOf(context.Cause(ctx))
	case <-time.After(10 * time.Second):
		t.Fatal("the stream's context was not cancelled")
		return 0
	}
}

// TestStreamEndsWhenItsTokenIsRevoked: a stream a token opened is cancelled, with
// Unauthenticated as the cause, once the token is revoked; a message sent after the revoke
// is refused without reaching the client; a stream of a token that stays valid goes on.
func TestStreamEndsWhenItsTokenIsRevoked(t *testing.T) {
	secret, other := NewSecret(), NewSecret()
	k := &statev1.ApiToken{Id: "a1", Role: "viewer"}
	changes := newFakeChanges()
	a := &Authorizer{Tokens: fakeTokens{string(Hash(secret)): k, string(Hash(other)): {Id: "a2", Role: "viewer"}}, Changes: changes}

	open := func(s string) (context.Context, *streamGuard, func()) {
		ctx, err := a.Authorize(context.Background(), getProc, authHeader("Bearer "+s))
		if err != nil {
			t.Fatal(err)
		}
		ctx, g, stop := a.guardStream(ctx, getProc, s, FromContext(ctx))
		if g == nil {
			t.Fatal("a token's stream is not guarded")
		}
		return ctx, g, stop
	}
	ctx, g, stop := open(secret)
	defer stop()
	octx, _, ostop := open(other)
	defer ostop()
	changes.bump(func() {}) // a change that leaves both valid
	changes.bump(func() { k.RevokeTime = timestamppb.Now() })
	if err := (guardedConn{ctx: ctx, g: g}).Send(nil); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("a message sent after the revoke: %v, want Unauthenticated", err)
	}
	if code := ended(t, ctx); code != connect.CodeUnauthenticated {
		t.Fatalf("the revoked token's stream ended with %v, want Unauthenticated", code)
	}
	if octx.Err() != nil {
		t.Fatalf("the stream of a token still valid ended: %v", context.Cause(octx))
	}
}

// TestStreamEndsWhenItsTokenExpires: a stream of an expiring token ends at expiry, with
// Unauthenticated, with no change of the tokens.
func TestStreamEndsWhenItsTokenExpires(t *testing.T) {
	secret := NewSecret()
	k := &statev1.ApiToken{Id: "a1", Role: "viewer", ExpireTime: timestamppb.New(time.Now().Add(200 * time.Millisecond))}
	a := &Authorizer{Tokens: fakeTokens{string(Hash(secret)): k}}
	ctx, err := a.Authorize(context.Background(), getProc, authHeader("Bearer "+secret))
	if err != nil {
		t.Fatal(err)
	}
	ctx, g, stop := a.guardStream(ctx, getProc, secret, FromContext(ctx))
	defer stop()
	if g == nil {
		t.Fatal("an expiring token's stream is not guarded")
	}
	if code := ended(t, ctx); code != connect.CodeUnauthenticated {
		t.Fatalf("the expired token's stream ended with %v, want Unauthenticated", code)
	}
}
