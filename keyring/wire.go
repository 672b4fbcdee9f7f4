package keyring

import (
	"google.golang.org/protobuf/types/known/timestamppb"

	clusterv1 "github.com/velocity9/v9/rpc/gen/v9/cluster/v1"
)

// Proto is s as InternalService.Keys answers it. A removed key travels as a RootKey with
// its id and no key material (a tombstone).
func (s Set) Proto() *clusterv1.KeysResponse {
	r := &clusterv1.KeysResponse{ActiveId: s.Active}
	for _, k := range s.Keys {
		r.Keys = append(r.Keys, &clusterv1.RootKey{Id: k.ID, Key: k.Key, CreateTime: timestamppb.New(k.Created)})
	}
	for _, id := range s.Removed {
		r.Keys = append(r.Keys, &clusterv1.RootKey{Id: id})
	}
	return r
}

// SetFromProto reads an InternalService.Keys answer (see Proto).
func SetFromProto(r *clusterv1.KeysResponse) Set {
	s := Set{Active: r.GetActiveId()}
	for _, k := range r.GetKeys() {
		if len(k.GetKey()) == 0 {
			s.Removed = append(s.Removed, k.GetId())
			continue
		}
		s.Keys = append(s.Keys, Key{ID: k.GetId(), Key: k.GetKey(), Created: k.GetCreateTime().AsTime()})
	}
	return s
}
