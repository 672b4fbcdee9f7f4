package fsm

import (
	"encoding/binary"
	"fmt"

	"github.com/hashicorp/raft"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// A batch entry is one Raft log entry that holds several commands, which the leader's writers
// committed together (group commit, package replica). Each command applies as if it were an
// entry of its own at the batch's index, in order, with its own result and audit entry; one
// that fails changes nothing and does not fail the others.
//
// Encoding: batchMark, then for each command the uvarint length of its EncodeCommand bytes
// and those bytes. A Command's encoding never starts with a zero byte (field number 0 is no
// field), so a batch and a plain entry are told apart by their first byte; entries written
// before batches existed decode as before. A node that predates batches cannot apply them:
// upgrade every node before a leader that writes them.

const batchMark = 0x00

// MaxBatch bounds the commands of one batch entry.
const MaxBatch = 256

// EncodeBatch frames commands already encoded with EncodeCommand as one log entry.
func EncodeBatch(cmds [][]byte) []byte {
	n := 1
	for _, c := range cmds {
		n += binary.MaxVarintLen64 + len(c)
	}
	b := make([]byte, 1, n)
	b[0] = batchMark
	for _, c := range cmds {
		b = binary.AppendUvarint(b, uint64(len(c)))
		b = append(b, c...)
	}
	return b
}

// isBatch reports whether a log entry is a batch entry.
func isBatch(b []byte) bool { return len(b) > 0 && b[0] == batchMark }

// decodeBatch splits a batch entry into its commands; one that does not decode comes back
// as nil with its error at the same position. A malformed frame fails the whole entry.
func decodeBatch(b []byte) ([]*statev1.Command, []error, error) {
	b = b[1:]
	var cmds []*statev1.Command
	var errs []error
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return nil, nil, fmt.Errorf("%w: malformed batch entry", ErrDecode)
		}
		if len(cmds) == MaxBatch {
			return nil, nil, fmt.Errorf("%w: batch entry of more than %d commands", ErrDecode, MaxBatch)
		}
		cmd, err := DecodeCommand(b[k : k+int(n)])
		cmds, errs = append(cmds, cmd), append(errs, err)
		b = b[k+int(n):]
	}
	if len(cmds) == 0 {
		return nil, nil, fmt.Errorf("%w: empty batch entry", ErrDecode)
	}
	return cmds, errs, nil
}

// BatchKey says whether cmd may share a batch entry with other commands, and the key no two
// commands of one batch may share. Commands of one entry share its index, so two commands
// that would each stamp the same object's index (two spec changes of one component, two
// deployments of one component) must not meet in one entry: each batchable kind names the
// one object it writes, and the rest always go alone. Pure: it reads only the command.
func BatchKey(cmd *statev1.Command) (string, bool) {
	switch op := cmd.GetOp().(type) {
	case *statev1.Command_CreateComponent:
		return "component/" + op.CreateComponent.GetComponent().GetName(), true
	case *statev1.Command_CreateLinkedComponent:
		return "component/" + op.CreateLinkedComponent.GetComponent().GetName(), true
	case *statev1.Command_UpdateComponentSpec:
		return "component/" + op.UpdateComponentSpec.GetName(), true
	case *statev1.Command_SetComponentDesired:
		return "component/" + op.SetComponentDesired.GetName(), true
	case *statev1.Command_ScaleComponent:
		return "component/" + op.ScaleComponent.GetName(), true
	case *statev1.Command_PutSecret:
		return "component/" + op.PutSecret.GetComponent(), true
	case *statev1.Command_DeleteSecret:
		return "component/" + op.DeleteSecret.GetComponent(), true
	case *statev1.Command_SetPlacementObserved:
		return "placement/" + op.SetPlacementObserved.GetId(), true
	}
	return "", false
}

// entriesOf decodes a command log entry, plain or batch, into store entries at its index and
// the results of those that did not decode (the others nil, for fill). What does not decode
// is applied as a no-op, so that the index advances all the same on every replica.
func entriesOf(l *raft.Log) (entries []Entry, out []*Result, batch bool) {
	if !isBatch(l.Data) {
		cmd, err := DecodeCommand(l.Data)
		if err != nil {
			return noop(l.Index), []*Result{{Index: l.Index, Err: err}}, false
		}
		return []Entry{{Index: l.Index, Cmd: cmd}}, make([]*Result, 1), false
	}
	cmds, errs, err := decodeBatch(l.Data)
	if err != nil {
		return noop(l.Index), []*Result{{Index: l.Index, Err: err}}, false
	}
	entries = make([]Entry, len(cmds))
	out = make([]*Result, len(cmds))
	for i, cmd := range cmds {
		if errs[i] != nil {
			cmd = &statev1.Command{IgnoreIfUnknown: true}
			out[i] = &Result{Index: l.Index, Err: errs[i]}
		}
		entries[i] = Entry{Index: l.Index, Cmd: cmd}
	}
	return entries, out, true
}

func noop(index uint64) []Entry {
	return []Entry{{Index: index, Cmd: &statev1.Command{IgnoreIfUnknown: true}}}
}

// response is what Apply answers for an entry: its *Result, or a batch's []*Result.
func response(out []*Result, batch bool) any {
	if batch {
		return out
	}
	return out[0]
}

// fill sets the results of out still nil from applied, in order.
func fill(out, applied []*Result) {
	for i, res := range applied {
		if out[i] == nil {
			out[i] = res
		}
	}
}
