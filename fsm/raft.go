package fsm

import (
	"fmt"
	"io"
	"sync/atomic"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// maxSnapshot bounds what Restore reads, so a corrupt snapshot cannot exhaust memory.
const maxSnapshot = 1 << 30

// Result is what FSM.Apply returns through raft's ApplyFuture.Response() for each command.
type Result struct {
	Index uint64
	Err   error // the domain error of a command that broke a rule
	// Component is the component the command created or changed, as it stood right after
	// the command applied (nil for other commands).
	Component *statev1.Component
}

// FSM adapts a Store to hashicorp/raft. The commands it decodes from the log belong to the
// store (Store.applyBatch owned).
type FSM struct {
	Store *Store

	answering atomic.Pointer[func() bool]
}

// AnswerWhile makes the FSM fill each result's Component only while answering() holds:
// while this node waits for an entry it proposed (replica.Replica.Waiting). Raft hands the
// results of entries a node did not propose to nobody, so a follower builds none, and
// copying the component is most of what building one costs. (Asking whether the node leads
// instead would leave the writers of entries that commit while leadership moves on without
// their component.) Until it is called, every result is filled.
func (f *FSM) AnswerWhile(answering func() bool) { f.answering.Store(&answering) }

func (f *FSM) answer() bool {
	a := f.answering.Load()
	return a == nil || (*a)()
}

var (
	_ raft.FSM         = (*FSM)(nil)
	_ raft.BatchingFSM = (*FSM)(nil)
)

// New returns an FSM over a fresh Store.
func New() *FSM { return &FSM{Store: NewStore()} }

// EncodeCommand serializes cmd for the Raft log.
func EncodeCommand(cmd *statev1.Command) ([]byte, error) {
	return proto.MarshalOptions{Deterministic: true}.Marshal(cmd)
}

// DecodeCommand parses a log entry.
func DecodeCommand(b []byte) (*statev1.Command, error) {
	var cmd statev1.Command
	if err := proto.Unmarshal(b, &cmd); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDecode, err)
	}
	return &cmd, nil
}

// Apply implements raft.FSM. It returns a *Result for a plain entry, and a []*Result, one
// per command in order, for a batch entry (EncodeBatch).
func (f *FSM) Apply(l *raft.Log) any {
	entries, out, batch := entriesOf(l)
	fill(out, f.Store.applyBatch(entries, true, f.answer()))
	return response(out, batch)
}

// ApplyBatch implements raft.BatchingFSM: the command entries Raft committed together are
// applied in one go (Store.ApplyBatch), each with the response Apply would give it, and wake
// the state's watchers once. Entries of other types (configuration changes) get a nil
// response and leave the store alone, as they do without batching.
func (f *FSM) ApplyBatch(logs []*raft.Log) []any {
	type span struct {
		from, to int
		batch    bool
	}
	spans := make([]span, len(logs))
	entries := make([]Entry, 0, len(logs))
	var results []*Result
	for i, l := range logs {
		if l.Type != raft.LogCommand {
			continue
		}
		es, out, batch := entriesOf(l)
		spans[i] = span{len(entries), len(entries) + len(es), batch}
		entries, results = append(entries, es...), append(results, out...)
	}
	fill(results, f.Store.applyBatch(entries, true, f.answer()))
	out := make([]any, len(logs))
	for i, l := range logs {
		if l.Type == raft.LogCommand {
			s := spans[i]
			out[i] = response(results[s.from:s.to:s.to], s.batch)
		}
	}
	return out
}

// Snapshot captures the state; Persist does the encoding and I/O.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	return &snapshot{state: f.Store.State()}, nil
}

// Restore replaces the whole state with the snapshot in r.
func (f *FSM) Restore(r io.ReadCloser) error {
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, maxSnapshot+1))
	if err != nil {
		return fmt.Errorf("read snapshot: %w", err)
	}
	if len(b) > maxSnapshot {
		return fmt.Errorf("snapshot larger than %d bytes", maxSnapshot)
	}
	s, err := DecodeSnapshot(b)
	if err != nil {
		return err
	}
	return f.Store.Restore(s)
}

// EncodeSnapshot serializes a state deterministically: the same state yields the same bytes.
func EncodeSnapshot(s *statev1.State) ([]byte, error) {
	return proto.MarshalOptions{Deterministic: true}.Marshal(s)
}

// DecodeSnapshot parses a snapshot.
func DecodeSnapshot(b []byte) (*statev1.State, error) {
	var s statev1.State
	if err := proto.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode snapshot: %w", err)
	}
	return &s, nil
}

type snapshot struct {
	state *statev1.State
}

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	b, err := EncodeSnapshot(s.state)
	if err == nil {
		_, err = sink.Write(b)
	}
	if err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s *snapshot) Release() {}
