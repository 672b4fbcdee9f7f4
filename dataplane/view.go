package dataplane

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/google/renameio/v2"
	"google.golang.org/protobuf/proto"

	"github.com/velocity9/v9/fsm"
	"github.com/velocity9/v9/internal/tick"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// The routing view is what this node last knew, from its caught-up replica, of the state it
// serves from: components (with their secrets, sealed as in the state), the deployments
// they run or still have placed, the nodes and the placements. It is persisted in the data
// dir so that a restarted node serves what it served before at once, with or without a
// quorum: its replica is empty, or as old as its last Raft snapshot, until a leader replays
// the log to it (static stability across restarts, issue 11 part 4).
//
// Until the replica has caught up (it has applied the view's index, or the index of a
// leader's heartbeat answer), the data plane reads the view instead of the replica; then it
// switches to the replica for good. A node with no view answers 503 "starting" for the
// components it does not know, never 404, until it has caught up.
//
// The file: viewMagic, the format version (uint32), the payload's length (uint64) and its
// CRC-32C (uint32), all big-endian, then the payload, a statev1.State. It is written to a
// temporary file, synced and renamed over the old one; a file that fails any check is
// ignored (with a log line), never trusted.

const (
	viewMagic   = "v9-routing-view\n"
	viewVersion = 1
	viewHeader  = len(viewMagic) + 4 + 8 + 4
	// viewMaxSize bounds what a load reads: a bigger file is not one this code wrote.
	viewMaxSize = 256 << 20
	// viewEvery is the least time between two writes of the view.
	viewEvery = time.Second
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// encodeView frames a state as a view file.
func encodeView(s *statev1.State) ([]byte, error) {
	payload, err := proto.MarshalOptions{Deterministic: true}.Marshal(s)
	if err != nil {
		return nil, err
	}
	return frameView(payload), nil
}

// frameView puts the header in front of an encoded statev1.State.
func frameView(payload []byte) []byte {
	return frameHeaded(append(make([]byte, viewHeader, viewHeader+len(payload)), payload...))
}

// frameHeaded fills in the header of b, a view file whose first viewHeader bytes were left
// for it in front of the payload (the encoder builds its payload so: no copy of it to frame).
func frameHeaded(b []byte) []byte {
	payload := b[viewHeader:]
	h := append(b[:0], viewMagic...)
	h = binary.BigEndian.AppendUint32(h, viewVersion)
	h = binary.BigEndian.AppendUint64(h, uint64(len(payload)))
	binary.BigEndian.AppendUint32(h, crc32.Checksum(payload, crcTable))
	return b
}

// decodeView checks a view file and returns its state, loaded into a store of its own.
func decodeView(b []byte) (*fsm.Store, error) {
	if len(b) < viewHeader || string(b[:len(viewMagic)]) != viewMagic {
		return nil, errors.New("not a routing view")
	}
	h := b[len(viewMagic):]
	if v := binary.BigEndian.Uint32(h); v != viewVersion {
		return nil, fmt.Errorf("routing view format %d, this node reads %d", v, viewVersion)
	}
	n := binary.BigEndian.Uint64(h[4:])
	sum := binary.BigEndian.Uint32(h[12:])
	payload := b[viewHeader:]
	if uint64(len(payload)) != n {
		return nil, fmt.Errorf("routing view truncated: %d of %d bytes", len(payload), n)
	}
	if crc32.Checksum(payload, crcTable) != sum {
		return nil, errors.New("routing view checksum mismatch")
	}
	var s statev1.State
	if err := proto.Unmarshal(payload, &s); err != nil {
		return nil, fmt.Errorf("routing view: %w", err)
	}
	if s.Index == 0 {
		return nil, errors.New("routing view without an index")
	}
	st := fsm.NewStore()
	if err := st.Restore(&s); err != nil {
		return nil, fmt.Errorf("routing view: %w", err)
	}
	return st, nil
}

// loadView reads the view file at path; nil when there is none or it fails a check.
func loadView(path string, log interface{ Warn(string, ...any) }) *fsm.Store {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		log.Warn("routing view ignored", "path", path, "err", err)
		return nil
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, viewMaxSize+1))
	if err != nil {
		log.Warn("routing view ignored", "path", path, "err", err)
		return nil
	}
	if len(b) > viewMaxSize {
		log.Warn("routing view ignored", "path", path, "err", "too large")
		return nil
	}
	st, err := decodeView(b)
	if err != nil {
		log.Warn("routing view ignored", "path", path, "err", err)
		return nil
	}
	return st
}

// ViewIndex reads the view file at path and returns the replica index it was taken at.
// Operators and tests use it to see how fresh a node's persisted routing view is.
func ViewIndex(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	st, err := decodeView(b)
	if err != nil {
		return 0, err
	}
	return st.Index(), nil
}

// viewOf takes the routing view out of the replica: components and their secrets, the
// deployments that are active or still placed, the nodes and the placements; not users,
// tokens, links or the audit log, which routing does not need.
func viewOf(st *fsm.Store) ([]byte, uint64, error) {
	var (
		b   []byte
		idx uint64
		err error
	)
	st.ViewState(func(s *statev1.State) {
		idx = s.Index
		keep := map[string]bool{}
		for _, c := range s.Components {
			keep[c.ActiveDeploymentId] = true
		}
		for _, p := range s.Placements {
			keep[p.DeploymentId] = true
		}
		v := &statev1.State{Index: s.Index, Components: s.Components, Nodes: s.Nodes, Placements: s.Placements, Secrets: s.Secrets}
		for _, d := range s.Deployments {
			if keep[d.Id] {
				v.Deployments = append(v.Deployments, d)
			}
		}
		b, err = encodeView(v)
	})
	return b, idx, err
}

// writeFileAtomic replaces path with b through a synced temporary file and a rename
// (renameio), then syncs the directory so the rename itself survives a crash: a crash
// leaves the old file or the new one, never a mix.
func writeFileAtomic(path string, b []byte) error {
	if err := renameio.WriteFile(path, b, 0o644); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// source is where the data plane reads the state: the persisted view until the replica has
// caught up, the replica after.
type source struct {
	live *fsm.Store
	once sync.Once
	mu   sync.Mutex
	cur  *fsm.Store
	view *fsm.Store // nil: none loaded, or switched to the replica
	// known: the data plane has a view of the state (a loaded one, or the caught-up
	// replica); until then an unknown component is "starting", not "not found".
	known bool
}

// store returns the store to read now.
func (s *source) store() *fsm.Store {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

func (s *source) hasView() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.known
}

// onReplica reports whether reads go to the caught-up replica.
func (s *source) onReplica() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.known && s.cur == s.live
}

// caughtUp switches reads to the replica for good, and wakes every loop waiting on the
// view so that it reads the replica from now on.
func (dp *DataPlane) caughtUp(why string) {
	s := &dp.src
	s.once.Do(func() {
		s.mu.Lock()
		view := s.view
		s.cur, s.view, s.known = s.live, nil, true
		s.mu.Unlock()
		if view != nil {
			dp.log.Info("replica caught up: serving from it, no longer from the routing view", "why", why, "index", s.live.Index())
			// Wake the loops blocked on the view: a restore wakes every waiter. The same
			// state at a higher index, so that a reader that still holds the view reads
			// what it read before, never an empty table.
			st := view.State()
			st.Index++
			_ = view.Restore(st)
		}
		dp.router.rebuild()
		dp.rec.poke()
	})
}

// viewLoop switches to the replica once it has applied the view's index, and from then on
// persists the view at most once every viewEvery when the routes' tables change.
func (dp *DataPlane) viewLoop(ctx context.Context) {
	dp.src.mu.Lock()
	view := dp.src.view
	dp.src.mu.Unlock()
	if view != nil {
		if got, _ := dp.cfg.Store.WaitForIndex(ctx, view.Index()); got < view.Index() {
			return
		}
		dp.caughtUp("replica reached the view's index")
	}
	if dp.cfg.ViewPath == "" {
		return
	}
	var written uint64
	var enc viewEncoder
	for {
		idx := dp.cfg.Store.TableIndex(viewTables...)
		if dp.src.onReplica() && idx != written {
			b, at, err := enc.encode(dp.cfg.Store)
			if err == nil {
				err = writeFileAtomic(dp.cfg.ViewPath, b)
			}
			if err != nil {
				dp.log.Warn("persist routing view", "err", err)
			} else {
				written = idx
				dp.log.Debug("persisted routing view", "index", at, "bytes", len(b))
			}
		}
		if !tick.Sleep(ctx, viewEvery) {
			return
		}
		if _, err := dp.cfg.Store.WaitTables(ctx, written, viewTables...); err != nil {
			return
		}
	}
}

// viewTables are the tables the view holds (secrets move the components table).
var viewTables = []fsm.Table{fsm.TableComponents, fsm.TableDeployments, fsm.TableNodes, fsm.TablePlacements}
