package server

import (
	"context"
	"errors"

	"connectrpc.com/connect"

	"github.com/velocity9/v9/fsm"
	secretv1 "github.com/velocity9/v9/rpc/gen/v9/secret/v1"
	"github.com/velocity9/v9/rpc/gen/v9/secret/v1/secretv1connect"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// MaxSecretBytes bounds one secret value.
const MaxSecretBytes = 64 << 10

// SecretBackend is what SecretService needs from a node.
type SecretBackend interface {
	Writer
	Reader
	// SealSecret encrypts a component secret with the cluster keyring (creating the first
	// root key if the cluster has none), bound to the component id and name.
	SealSecret(ctx context.Context, componentID, name string, value []byte) (keyID string, nonce, ciphertext []byte, err error)
}

// Secrets implements SecretService. Values go in sealed and never come out.
type Secrets struct {
	B SecretBackend
}

var _ secretv1connect.SecretServiceHandler = (*Secrets)(nil)

func (s *Secrets) Set(ctx context.Context, req *connect.Request[secretv1.SetRequest]) (*connect.Response[secretv1.SetResponse], error) {
	if err := fsm.ValidSecretName(req.Msg.Name); err != nil {
		return nil, toConnect(err)
	}
	if len(req.Msg.Value) > MaxSecretBytes {
		return nil, invalidArg(errors.New("a secret value is at most 64 KiB"))
	}
	// The value is sealed for the component's id, so this node must know the component as
	// the cluster does (a node that is behind would answer "not found"); the write names
	// the id, so a name deleted and created again meanwhile is refused, not given the secret.
	if err := s.B.ConsistentBarrier(ctx); err != nil {
		return nil, toConnect(err)
	}
	c, err := s.B.Store().Component(req.Msg.Component)
	if err != nil {
		return nil, toConnect(err)
	}
	keyID, nonce, ct, err := s.B.SealSecret(ctx, c.Id, req.Msg.Name, req.Msg.Value)
	if err != nil {
		return nil, connect.NewError(connect.CodeUnavailable, err)
	}
	idx, err := s.B.Apply(ctx, &statev1.Command{Op: &statev1.Command_PutSecret{PutSecret: &statev1.PutSecret{
		Component: req.Msg.Component, ComponentId: c.Id, Name: req.Msg.Name, KeyId: keyID, Nonce: nonce, Ciphertext: ct,
	}}})
	if err != nil {
		return nil, toConnect(err)
	}
	_, _ = s.B.Store().WaitForIndex(ctx, idx)
	return connect.NewResponse(&secretv1.SetResponse{Index: idx}), nil
}

func (s *Secrets) List(ctx context.Context, req *connect.Request[secretv1.ListRequest]) (*connect.Response[secretv1.ListResponse], error) {
	if err := s.B.ConsistentBarrier(ctx); err != nil {
		return nil, toConnect(err)
	}
	c, err := s.B.Store().Component(req.Msg.Component)
	if err != nil {
		return nil, toConnect(err)
	}
	resp := &secretv1.ListResponse{}
	for _, sec := range s.B.Store().Secrets(c.Id) {
		resp.Secrets = append(resp.Secrets, &secretv1.SecretInfo{Name: sec.Name, UpdateTime: sec.UpdateTime})
	}
	return connect.NewResponse(resp), nil
}

func (s *Secrets) Delete(ctx context.Context, req *connect.Request[secretv1.DeleteRequest]) (*connect.Response[secretv1.DeleteResponse], error) {
	idx, err := s.B.Apply(ctx, &statev1.Command{Op: &statev1.Command_DeleteSecret{DeleteSecret: &statev1.DeleteSecret{
		Component: req.Msg.Component, Name: req.Msg.Name,
	}}})
	if err != nil {
		return nil, toConnect(err)
	}
	_, _ = s.B.Store().WaitForIndex(ctx, idx)
	return connect.NewResponse(&secretv1.DeleteResponse{Index: idx}), nil
}
