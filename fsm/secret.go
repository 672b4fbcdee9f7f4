package fsm

import (
	"sort"

	"google.golang.org/protobuf/types/known/timestamppb"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
	"github.com/velocity9/v9/spec"
)

// Secrets are stored sealed: the node that took the request encrypted them with the cluster
// keyring before the command entered Raft. The state machine only checks their shape and
// never sees a key or a plaintext value.

func secretKey(componentID, name string) string { return componentID + "/" + name }

// ValidSecretName reports whether name can be an environment variable: a letter or '_',
// then letters, digits or '_', at most 128 bytes, and not in v9's reserved prefix (a secret
// must never shadow what v9 sets in the environment).
func ValidSecretName(name string) error {
	if name == "" || len(name) > 128 {
		return invalid("secret name must be 1..128 characters")
	}
	if spec.Reserved(name) {
		return invalid("secret name %q is reserved: names starting with %s belong to v9", name, spec.ReservedEnvPrefix)
	}
	for i, r := range name {
		ok := r == '_' || (r >= 'A' && r <= 'Z') || (r >= 'a' && r <= 'z') || (i > 0 && r >= '0' && r <= '9')
		if !ok {
			return invalid("secret name %q must be an environment variable name ([A-Za-z_][A-Za-z0-9_]*)", name)
		}
	}
	return nil
}

func (t *tables) putSecret(index uint64, now *timestamppb.Timestamp, op *statev1.PutSecret) error {
	c, err := t.component(op.GetComponent())
	if err != nil {
		return err
	}
	if id := op.GetComponentId(); id != "" && id != c.Id {
		return conflict("component %s was deleted and created again since the secret %s was sealed for it: set the secret again", op.GetComponent(), op.GetName())
	}
	if err := ValidSecretName(op.GetName()); err != nil {
		return err
	}
	if op.GetKeyId() == "" || len(op.GetNonce()) == 0 || len(op.GetCiphertext()) == 0 {
		return invalid("secret %q is not sealed (key id, nonce and ciphertext are required)", op.GetName())
	}
	t.secrets[secretKey(c.Id, op.Name)] = &statev1.Secret{
		ComponentId: c.Id, Name: op.Name, KeyId: op.KeyId,
		Nonce: clone(op).Nonce, Ciphertext: clone(op).Ciphertext,
		UpdateTime: now, ModifyIndex: index,
	}
	defer remember(c)(index)
	c.SecretsIndex = index
	c.SpecIndex = index // its instances are replaced with the new environment
	return nil
}

func (t *tables) deleteSecret(index uint64, op *statev1.DeleteSecret) error {
	c, err := t.component(op.GetComponent())
	if err != nil {
		return err
	}
	k := secretKey(c.Id, op.GetName())
	if _, ok := t.secrets[k]; !ok {
		return notFound("secret", op.GetComponent()+" "+op.GetName())
	}
	delete(t.secrets, k)
	defer remember(c)(index)
	c.SecretsIndex = index
	c.SpecIndex = index // its instances are replaced with the new environment
	return nil
}

// Secrets returns copies of a component's sealed secrets, sorted by name. Only the data
// plane (to decrypt them at instance start) and the secret listing (names only) call it.
func (st *Store) Secrets(componentID string) []*statev1.Secret {
	st.mu.RLock()
	defer st.mu.RUnlock()
	var out []*statev1.Secret
	for _, s := range st.s.secrets {
		if s.ComponentId == componentID {
			out = append(out, clone(s))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// KeyUses counts what each root key seals in the state: secrets, GitHub link secrets and
// the GitHub grants kept with tokens, by key id.
func (st *Store) KeyUses() map[string]int {
	st.mu.RLock()
	defer st.mu.RUnlock()
	uses := map[string]int{}
	for _, s := range st.s.secrets {
		uses[s.KeyId]++
	}
	for _, l := range st.s.links {
		if l.SecretKeyId != "" {
			uses[l.SecretKeyId]++
		}
	}
	for _, k := range st.s.tokens {
		if k.GithubTokenKeyId != "" {
			uses[k.GithubTokenKeyId]++
		}
	}
	return uses
}
