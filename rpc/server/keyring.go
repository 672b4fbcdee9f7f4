package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"time"

	"github.com/velocity9/v9/auth"
	"github.com/velocity9/v9/keyring"
)

// Paths of the keyring's administration on the API port (plain HTTP handlers: admin token;
// the pull and forget calls between nodes need a node certificate).
const (
	KeyringPath       = "/v9/keyring"
	KeyringRotatePath = KeyringPath + "/rotate"
	KeyringKeyPath    = KeyringPath + "/keys/" // + id (DELETE)
	keyringPullPath   = KeyringPath + "/pull"  // ?from=ADDR, node to node
	keyringForgetPath = KeyringPath + "/forget/"
)

// KeyringBackend is what keyring administration needs of a node.
type KeyringBackend interface {
	Keyring() *keyring.Cluster
	// KeyUses counts, per root key id, the sealed values of the replicated state (component
	// secrets, webhook secrets, stored GitHub tokens) it sealed, after catching up with the
	// leader.
	KeyUses(ctx context.Context) (map[string]int, error)
	// CallNode calls path on another node's API port (addr) with this node's certificate.
	CallNode(ctx context.Context, addr, method, path string) error
	APIAddr() string
}

// KeyInfo describes a root key (never its material).
type KeyInfo struct {
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	Active  bool      `json:"active"`
	Uses    int       `json:"uses"`
}

// KeyringAnswer answers list, rotate and remove.
type KeyringAnswer struct {
	Active      string    `json:"active"`
	Keys        []KeyInfo `json:"keys"`
	Unreachable []string  `json:"unreachable,omitempty"`
	// Missing counts, per key id, the sealed values whose key no node holds (after a
	// restore into a new cluster without the old keyring): they cannot be opened.
	Missing map[string]int `json:"missing,omitempty"`
}

// KeyringHandler serves the keyring's administration.
func KeyringHandler(b KeyringBackend, authz *auth.Authorizer) http.Handler {
	mux := http.NewServeMux()
	admin := func(h http.HandlerFunc) http.Handler { return authz.RequireHTTP(auth.RoleAdmin, h) }
	nodeOnly := func(h http.HandlerFunc) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if auth.PeerNode(r.Context()) == "" {
				http.Error(w, "for the nodes of the cluster only: needs a node certificate", http.StatusForbidden)
				return
			}
			h(w, r)
		})
	}
	answer := func(w http.ResponseWriter, r *http.Request, unreachable []string) {
		a, err := keyringAnswer(r.Context(), b)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		a.Unreachable = unreachable
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(a)
	}
	mux.Handle("GET "+KeyringPath, admin(func(w http.ResponseWriter, r *http.Request) { answer(w, r, nil) }))
	mux.Handle("POST "+KeyringRotatePath, admin(func(w http.ResponseWriter, r *http.Request) {
		_, missed, err := b.Keyring().Rotate(r.Context(), func(ctx context.Context, addr string) error {
			return b.CallNode(ctx, addr, http.MethodPost, keyringPullPath+"?from="+url.QueryEscape(b.APIAddr()))
		})
		if err != nil {
			http.Error(w, "rotate: "+err.Error(), http.StatusInternalServerError)
			return
		}
		answer(w, r, missed)
	}))
	mux.Handle("DELETE "+KeyringKeyPath+"{id}", admin(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if err := removeKey(r.Context(), b, id); err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		var missed []string
		for _, addr := range b.Keyring().Peers.OtherAPIs() {
			if err := b.CallNode(r.Context(), addr, http.MethodPost, keyringForgetPath+url.PathEscape(id)); err != nil {
				missed = append(missed, addr)
			}
		}
		answer(w, r, missed)
	}))
	mux.Handle("POST "+keyringPullPath, nodeOnly(func(w http.ResponseWriter, r *http.Request) {
		if err := b.Keyring().Pull(r.Context(), r.URL.Query().Get("from")); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
		}
	}))
	mux.Handle("POST "+keyringForgetPath+"{id}", nodeOnly(func(w http.ResponseWriter, r *http.Request) {
		if err := removeKey(r.Context(), b, r.PathValue("id")); err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
		}
	}))
	return mux
}

// removeKey forgets a root key on this node unless it is active or still seals something.
func removeKey(ctx context.Context, b KeyringBackend, id string) error {
	uses, err := b.KeyUses(ctx)
	if err != nil {
		return err
	}
	if n := uses[id]; n > 0 {
		return fmt.Errorf("key %s still seals %d value(s): write them again (v9 secret set) so the active key seals them, then remove it", id, n)
	}
	if err := b.Keyring().Keys.Remove(id); err != nil {
		if errors.Is(err, keyring.ErrActive) {
			return fmt.Errorf("key %s is the active key: rotate first", id)
		}
		return err
	}
	return nil
}

func keyringAnswer(ctx context.Context, b KeyringBackend) (*KeyringAnswer, error) {
	uses, err := b.KeyUses(ctx)
	if err != nil {
		return nil, err
	}
	keys, active := b.Keyring().Keys.Keys()
	a := &KeyringAnswer{Active: active, Missing: b.Keyring().Missing(ctx, uses)}
	for _, k := range keys {
		a.Keys = append(a.Keys, KeyInfo{ID: k.ID, Created: k.Created, Active: k.ID == active, Uses: uses[k.ID]})
	}
	sort.Slice(a.Keys, func(i, j int) bool { return a.Keys[i].Created.Before(a.Keys[j].Created) })
	return a, nil
}
