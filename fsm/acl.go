package fsm

import (
	"context"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// AuditSize is how many audit entries the state keeps; older ones are dropped.
const AuditSize = 1000

// Roles a token may hold, lowest first. The fsm only checks that a token names one; what
// each may do is the auth package's business.
// validRoles are the roles a token may hold; "join" is a one-time join token (auth.JoinRole).
var validRoles = map[string]bool{"viewer": true, "developer": true, "admin": true, "join": true}

// ---- tokens ----

// TokensIndex is the index of the tokens' last change, GitHub login bindings included
// (auth.TokenChanges).
func (st *Store) TokensIndex() uint64 { return st.TableIndex(TableTokens) }

// WaitTokens returns once the tokens changed above min (auth.TokenChanges; WaitTables).
func (st *Store) WaitTokens(ctx context.Context, min uint64) (uint64, error) {
	return st.WaitTables(ctx, min, TableTokens)
}

func (t *tables) createAPIToken(now *timestamppb.Timestamp, op *statev1.CreateApiToken) error {
	k := op.GetToken()
	if err := t.checkNewToken(k); err != nil {
		return err
	}
	if err := t.checkBinding(op); err != nil {
		return err
	}
	t.putToken(now, k)
	t.bind(now, op)
	return nil
}

func (t *tables) checkNewToken(k *statev1.ApiToken) error {
	if k == nil || k.Id == "" {
		return invalid("token id is missing")
	}
	if len(k.Sha256) != 32 {
		return invalid("token hash must be 32 bytes of SHA-256")
	}
	if k.Role != "" && !validRoles[k.Role] {
		return invalid("token role %q is not viewer, developer, admin or join", k.Role)
	}
	if k.UserId != "" {
		if _, ok := t.users[k.UserId]; !ok {
			return notFound("user", k.UserId)
		}
	}
	if _, ok := t.tokens[k.Id]; ok {
		return exists("token", k.Id)
	}
	if _, ok := t.tokenByHash[string(k.Sha256)]; ok {
		return exists("token hash", "")
	}
	return nil
}

func (t *tables) putToken(now *timestamppb.Timestamp, k *statev1.ApiToken) {
	k = clone(k)
	k.CreateTime = now
	k.RevokeTime, k.LastUsedTime = nil, nil
	t.tokens[k.Id] = k
	t.tokenByHash[string(k.Sha256)] = k.Id
}

func (t *tables) deleteAPIToken(op *statev1.DeleteApiToken) error {
	k, ok := t.tokens[op.GetId()]
	if !ok {
		return notFound("token", op.GetId())
	}
	delete(t.tokenByHash, string(k.Sha256))
	delete(t.tokens, op.Id)
	return nil
}

func (t *tables) aclBootstrap(now *timestamppb.Timestamp, op *statev1.AclBootstrap) error {
	if t.aclBootstrapped {
		return exists("ACL bootstrap", "done")
	}
	k := op.GetToken()
	if err := t.checkNewToken(k); err != nil {
		return err
	}
	if k.Role != "admin" {
		return invalid("the bootstrap token must have the admin role")
	}
	t.putToken(now, k)
	t.aclBootstrapped = true
	return nil
}

func (t *tables) revokeAPIToken(now *timestamppb.Timestamp, op *statev1.RevokeApiToken) error {
	k, ok := t.tokens[op.GetId()]
	if !ok {
		return notFound("token", op.GetId())
	}
	if k.RevokeTime != nil && k.Role == "join" {
		// A join token is used by revoking it: the second use of one must fail.
		return exists("use of join token", k.Id)
	}
	if k.RevokeTime == nil {
		if now == nil {
			now = &timestamppb.Timestamp{}
		}
		k.RevokeTime = now
	}
	// A revoked session keeps no GitHub grant.
	k.GithubToken, k.GithubTokenKeyId, k.GithubTokenNonce = nil, "", nil
	return nil
}

// touchAPITokens records last-use times; unknown tokens (revoked and deleted meanwhile) are
// skipped, and a time never moves backwards.
func (t *tables) touchAPITokens(op *statev1.TouchApiTokens) error {
	for id, ts := range op.GetLastUsed() {
		k, ok := t.tokens[id]
		if !ok || ts == nil {
			continue
		}
		if k.LastUsedTime == nil || ts.AsTime().After(k.LastUsedTime.AsTime()) {
			k.LastUsedTime = clone(ts)
		}
	}
	return nil
}

// ---- audit ----

// audit records a successful write of an actor. The target is read from the command only,
// so every replica records the same entry.
func (t *tables) audit(index uint64, now *timestamppb.Timestamp, cmd *statev1.Command) {
	if cmd.GetActor() == "" {
		return
	}
	if now != nil {
		now = keep(t, now)
	}
	e := &statev1.AuditEntry{Index: index, Time: now, Actor: cmd.GetActor(), Op: commandOpName(cmd), Target: target(cmd)}
	if len(t.auditLog) >= 2*AuditSize {
		// Drop the entries past the last AuditSize-1 in one move every AuditSize writes,
		// not one move of the whole log at every write.
		n := copy(t.auditLog, t.auditLog[len(t.auditLog)-AuditSize+1:])
		clear(t.auditLog[n:])
		t.auditLog = t.auditLog[:n]
	}
	t.auditLog = append(t.auditLog, e)
}

// audits is the audit log the state holds: its last AuditSize entries, oldest first (the
// slice keeps up to twice as many between two trims).
func (t *tables) audits() []*statev1.AuditEntry {
	return t.auditLog[max(0, len(t.auditLog)-AuditSize):]
}

// opOneof is the Command's oneof of operations (looked up once: audit runs on every apply).
var opOneof = (&statev1.Command{}).ProtoReflect().Descriptor().Oneofs().ByName("op")

// opName is the name of the command's operation, e.g. "create_component".
func commandOpName(cmd *statev1.Command) string {
	m := cmd.ProtoReflect()
	f := m.WhichOneof(opOneof)
	if f == nil {
		return ""
	}
	return string(f.Name())
}

// target names what a command changes: the first of a name, id or component id it holds.
func target(cmd *statev1.Command) string {
	m := cmd.ProtoReflect()
	f := m.WhichOneof(opOneof)
	if f == nil || f.Kind() != protoreflect.MessageKind {
		return ""
	}
	return firstKey(m.Get(f).Message(), 2)
}

func firstKey(m protoreflect.Message, depth int) string {
	fields := m.Descriptor().Fields()
	for _, name := range []protoreflect.Name{"name", "component_id", "id", "node_id"} {
		if f := fields.ByName(name); f != nil && f.Kind() == protoreflect.StringKind {
			if s := m.Get(f).String(); s != "" {
				return s
			}
		}
	}
	if depth == 0 {
		return ""
	}
	for i := range fields.Len() {
		f := fields.Get(i)
		if f.Kind() == protoreflect.MessageKind && !f.IsList() && !f.IsMap() && m.Has(f) {
			if s := firstKey(m.Get(f).Message(), depth-1); s != "" {
				return s
			}
		}
	}
	return ""
}
