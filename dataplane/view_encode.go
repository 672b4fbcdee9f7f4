package dataplane

import (
	"cmp"
	"slices"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/velocity9/v9/fsm"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// viewEncoder encodes the routing view (viewOf's content) keeping each component's part of
// the encoding, so that persisting the view under a stream of writes costs what changed
// since the last time (fsm's View.TouchedSince), not the size of the state, and holds the
// store's read lock only to encode the changed components. The payload is still a
// statev1.State: each component's rows (the component, its deployments that are active or
// placed, its placements and secrets) follow each other, and protobuf gathers repeated
// fields wherever they appear, so decodeView reads it as it reads viewOf's.
type viewEncoder struct {
	store        *fsm.Store
	epoch, index uint64
	parts        map[string][]byte // component id -> its rows, encoded
	ids          []string          // parts' keys, sorted: kept as parts change, not sorted again each time
}

// State's fields, for the encoding by hand.
var viewFields = func() map[string]protowire.Number {
	fs := (&statev1.State{}).ProtoReflect().Descriptor().Fields()
	out := map[string]protowire.Number{}
	for _, name := range []protoreflect.Name{"index", "components", "deployments", "nodes", "placements", "secrets"} {
		out[string(name)] = fs.ByName(name).Number()
	}
	return out
}()

var (
	viewSize = proto.MarshalOptions{Deterministic: true}
	// viewMarshal reuses the sizes viewSize just computed (the message cannot change in
	// between: it is read under the store's read lock), instead of computing them again.
	viewMarshal = proto.MarshalOptions{Deterministic: true, UseCachedSize: true}
)

func appendField(b []byte, field string, m proto.Message) ([]byte, error) {
	b = protowire.AppendTag(b, viewFields[field], protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(viewSize.Size(m)))
	return viewMarshal.MarshalAppend(b, m)
}

// encode returns the view file of st's current state and the index it was taken at.
func (e *viewEncoder) encode(st *fsm.Store) ([]byte, uint64, error) {
	var (
		nodes []byte
		idx   uint64
		err   error
	)
	st.View(func(v fsm.View) {
		dirty := map[string]bool{}
		if e.parts == nil || e.store != st || e.epoch != v.Epoch() || !v.TouchedSince(e.index, func(id string) { dirty[id] = true }) {
			e.parts, e.ids = map[string][]byte{}, nil
			v.Components(func(c *statev1.Component) { dirty[c.Id] = true })
		}
		var added []string
		var removed bool
		if added, removed, err = e.encodeParts(v, dirty); err != nil {
			e.parts, e.ids = nil, nil
			return
		}
		e.sortIDs(added, removed)
		var ns []*statev1.Node
		v.Nodes(func(n *statev1.Node) { ns = append(ns, n) })
		slices.SortFunc(ns, func(a, b *statev1.Node) int { return cmp.Compare(a.Id, b.Id) })
		for _, n := range ns {
			if nodes, err = appendField(nodes, "nodes", n); err != nil {
				return
			}
		}
		idx = v.Index()
		e.store, e.epoch, e.index = st, v.Epoch(), idx
	})
	if err != nil {
		return nil, 0, err
	}
	// Outside the lock: the parts are this encoder's own bytes.
	size := len(nodes) + 16
	for _, p := range e.parts {
		size += len(p)
	}
	payload := make([]byte, viewHeader, viewHeader+size) // the header is filled in last
	payload = protowire.AppendTag(payload, viewFields["index"], protowire.VarintType)
	payload = protowire.AppendVarint(payload, idx)
	payload = append(payload, nodes...)
	for _, id := range e.ids {
		payload = append(payload, e.parts[id]...)
	}
	return frameHeaded(payload), idx, nil
}

// sortIDs brings ids up to date with parts, given the ids encodeParts added and whether it
// removed any: the new ones sorted and merged in, the gone ones dropped.
func (e *viewEncoder) sortIDs(added []string, removed bool) {
	if removed {
		e.ids = slices.DeleteFunc(e.ids, func(id string) bool { _, ok := e.parts[id]; return !ok })
	}
	if len(added) == 0 {
		return
	}
	slices.Sort(added)
	merged := make([]string, 0, len(e.ids)+len(added))
	i, j := 0, 0
	for i < len(e.ids) && j < len(added) {
		if e.ids[i] < added[j] {
			merged, i = append(merged, e.ids[i]), i+1
		} else {
			merged, j = append(merged, added[j]), j+1
		}
	}
	e.ids = append(append(merged, e.ids[i:]...), added[j:]...)
}

// encodeParts encodes again the rows of the components in dirty (dropping those gone). It
// returns the ids that had no part before, and whether it dropped any.
func (e *viewEncoder) encodeParts(v fsm.View, dirty map[string]bool) (added []string, removed bool, err error) {
	type rows struct {
		c           *statev1.Component
		deployments []*statev1.Deployment
		placements  []*statev1.Placement
		secrets     []*statev1.Secret
	}
	of := map[string]*rows{}
	for id := range dirty {
		if c := v.Component(id); c != nil {
			of[id] = &rows{c: c}
			if _, ok := e.parts[id]; !ok {
				added = append(added, id)
			}
		} else if _, ok := e.parts[id]; ok {
			delete(e.parts, id)
			removed = true
		}
	}
	if len(of) == 0 {
		return added, removed, nil
	}
	placed := map[string]bool{} // deployments of these components still placed
	v.Placements(func(p *statev1.Placement) {
		if r := of[p.ComponentId]; r != nil {
			r.placements = append(r.placements, p)
			placed[p.DeploymentId] = true
		}
	})
	v.Deployments(func(d *statev1.Deployment) {
		if r := of[d.ComponentId]; r != nil && (placed[d.Id] || r.c.ActiveDeploymentId == d.Id) {
			r.deployments = append(r.deployments, d)
		}
	})
	v.Secrets(func(s *statev1.Secret) {
		if r := of[s.ComponentId]; r != nil {
			r.secrets = append(r.secrets, s)
		}
	})
	for id, r := range of {
		slices.SortFunc(r.deployments, func(a, b *statev1.Deployment) int { return cmp.Compare(a.Id, b.Id) })
		slices.SortFunc(r.placements, func(a, b *statev1.Placement) int { return cmp.Compare(a.Id, b.Id) })
		slices.SortFunc(r.secrets, func(a, b *statev1.Secret) int { return cmp.Compare(a.Name, b.Name) })
		b, err := appendField(nil, "components", r.c)
		for _, d := range r.deployments {
			if err == nil {
				b, err = appendField(b, "deployments", d)
			}
		}
		for _, p := range r.placements {
			if err == nil {
				b, err = appendField(b, "placements", p)
			}
		}
		for _, s := range r.secrets {
			if err == nil {
				b, err = appendField(b, "secrets", s)
			}
		}
		if err != nil {
			return nil, false, err
		}
		e.parts[id] = b
	}
	return added, removed, nil
}
