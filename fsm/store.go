package fsm

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"

	"google.golang.org/protobuf/proto"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// Store is the in-memory replicated state. Apply changes it; the read methods return copies.
// It needs no Raft: the Raft adapter (FSM) and the tests drive it directly.
type Store struct {
	mu      sync.RWMutex
	s       *tables
	changed chan struct{} // closed and replaced whenever index moves
	takers  atomic.Uint64 // callers of Changed since changed was made

	tableIdx [numTables]uint64    // index of each table's last change
	waiters  map[*waiter]struct{} // blocking queries (WaitTables, WaitForIndex)
	woken    atomic.Uint64        // watchers woken so far (Wakeups)
}

// tables is the state proper. Only Apply and Restore write it, under Store.mu.
type tables struct {
	index       uint64
	components  map[string]*statev1.Component // by id
	byName      map[string]string             // component name -> id
	deployments map[string]*statev1.Deployment
	nodes       map[string]*statev1.Node
	placements  map[string]*statev1.Placement
	users       map[string]*statev1.User
	tokens      map[string]*statev1.ApiToken
	tokenByHash map[string]string                 // sha256 of the secret -> token id
	links       map[string]*statev1.GithubLink    // by component id
	secrets     map[string]*statev1.Secret        // by secretKey(component id, name)
	bindings    map[string]*statev1.GithubBinding // by lower-case GitHub login

	aclBootstrapped bool
	auditLog        []*statev1.AuditEntry // oldest first; the state's are the last AuditSize (audits)

	// owned is set while the commands being applied belong to the store (the FSM decoded
	// them from the log): it may keep their parts instead of copies. Not replicated state.
	owned bool

	// touched remembers which components writes touched lately, for readers that derive
	// structures incrementally (View.TouchedSince). Not part of the replicated state.
	touched touches
	epoch   uint64 // moves when Restore replaces the tables
}

func newTables() *tables {
	return &tables{
		components:  map[string]*statev1.Component{},
		byName:      map[string]string{},
		deployments: map[string]*statev1.Deployment{},
		nodes:       map[string]*statev1.Node{},
		placements:  map[string]*statev1.Placement{},
		users:       map[string]*statev1.User{},
		tokens:      map[string]*statev1.ApiToken{},
		tokenByHash: map[string]string{},
		links:       map[string]*statev1.GithubLink{},
		secrets:     map[string]*statev1.Secret{},
		bindings:    map[string]*statev1.GithubBinding{},
	}
}

// NewStore returns an empty store at index 0.
func NewStore() *Store {
	return &Store{s: newTables(), changed: make(chan struct{}), waiters: map[*waiter]struct{}{}}
}

// Apply applies cmd as the Raft log entry at index. A command that breaks a rule changes
// nothing and returns the reason; the index still advances, on every replica alike.
func (st *Store) Apply(index uint64, cmd *statev1.Command) error {
	return st.ApplyResult(index, cmd).Err
}

// ApplyResult is Apply, also returning what the command wrote as it stood right after this
// entry applied (Result.Component). Writers answer from it rather than from a later read,
// which a concurrent write may already have changed.
func (st *Store) ApplyResult(index uint64, cmd *statev1.Command) *Result {
	st.mu.Lock()
	defer st.mu.Unlock()
	res := st.applyLocked(index, cmd, true)
	st.wakeLocked()
	st.closeChangedLocked()
	return res
}

// Entry is one log entry for ApplyBatch: a command at its Raft index.
type Entry struct {
	Index uint64
	Cmd   *statev1.Command
}

// ApplyBatch applies entries in order, exactly as ApplyResult would one by one, under one
// lock, and wakes the watchers once at the end: a burst of writes committed together
// costs the loops that watch the state one wake-up, not one per entry.
func (st *Store) ApplyBatch(entries []Entry) []*Result {
	return st.applyBatch(entries, false, true)
}

// applyBatch is ApplyBatch. owned says the commands belong to the store from now on (the FSM
// decoded them: nobody else holds them), so it keeps their parts without copying them;
// answer says someone reads the results' Component (a follower's Raft hands them to nobody).
func (st *Store) applyBatch(entries []Entry, owned, answer bool) []*Result {
	out := make([]*Result, len(entries))
	st.mu.Lock()
	defer st.mu.Unlock()
	st.s.owned = owned
	for i, e := range entries {
		out[i] = st.applyLocked(e.Index, e.Cmd, answer)
	}
	st.s.owned = false
	st.wakeLocked()
	st.closeChangedLocked()
	return out
}

// applyLocked applies one command and records the tables it changed; the caller wakes the
// watchers. answer: fill the result's Component.
func (st *Store) applyLocked(index uint64, cmd *statev1.Command, answer bool) *Result {
	res := &Result{Index: index, Err: apply(st.s, index, cmd)}
	if res.Err == nil && answer {
		res.Component = st.s.written(cmd)
	}
	if index > st.s.index {
		st.s.index = index
	}
	if res.Err == nil { // a refused command changes nothing
		st.markLocked(tablesOf(cmd), index)
		st.s.noteTouched(index, cmd)
	}
	return res
}

func (st *Store) closeChangedLocked() {
	close(st.changed)
	st.changed = make(chan struct{})
	st.woken.Add(st.takers.Swap(0))
}

// written returns a copy of the component cmd created or changed, or nil for commands of
// other entities and for deletes.
func (t *tables) written(cmd *statev1.Command) *statev1.Component {
	var name string
	switch op := cmd.Op.(type) {
	case *statev1.Command_CreateComponent:
		name = op.CreateComponent.GetComponent().GetName()
	case *statev1.Command_CreateLinkedComponent:
		name = op.CreateLinkedComponent.GetComponent().GetName()
	case *statev1.Command_UpdateComponentSpec:
		name = op.UpdateComponentSpec.GetName()
	case *statev1.Command_SetComponentDesired:
		name = op.SetComponentDesired.GetName()
	case *statev1.Command_ScaleComponent:
		name = op.ScaleComponent.GetName()
	default:
		return nil
	}
	c, err := t.component(name)
	if err != nil {
		return nil
	}
	return clone(c)
}

// Index is the Raft index of the last applied entry.
func (st *Store) Index() uint64 {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.s.index
}

// WaitForIndex blocks until the store has applied index min or ctx ends. It returns the
// index reached, which may be below min when ctx ended first (as a blocking query does).
// It is woken once, when min is reached, not at every write before.
func (st *Store) WaitForIndex(ctx context.Context, min uint64) (uint64, error) {
	return st.wait(ctx, &waiter{min: min})
}

// Changed returns a channel closed at the next change of any table, with the index it was
// taken at. Watchers loop: read state, then wait on the channel. Every write wakes every
// such watcher: loops that read a few tables wait with WaitTables instead.
func (st *Store) Changed() (<-chan struct{}, uint64) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	st.takers.Add(1)
	return st.changed, st.s.index
}

// State returns a deep copy of the whole state, lists sorted by id. GitHub link secrets are
// included: callers that serve it outside the cluster must strip them.
func (st *Store) State() *statev1.State {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.s.export()
}

// Restore replaces the whole state with s.
func (st *Store) Restore(s *statev1.State) error {
	t, err := importState(s)
	if err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	t.epoch = st.s.epoch + 1
	t.touched.floor = t.index // what changed before the snapshot is not known
	st.s = t
	st.markLocked(allTables, t.index)
	st.wakeLocked()
	st.closeChangedLocked()
	return nil
}

func (t *tables) export() *statev1.State { return t.exportWith(clone[proto.Message]) }

// exportWith lists every table sorted by id, each object passed through cp.
func (t *tables) exportWith(cp func(proto.Message) proto.Message) *statev1.State {
	out := &statev1.State{Index: t.index}
	out.Components = exportTable(t.components, cp)
	out.Deployments = exportTable(t.deployments, cp)
	out.Nodes = exportTable(t.nodes, cp)
	out.Placements = exportTable(t.placements, cp)
	out.Users = exportTable(t.users, cp)
	out.ApiTokens = exportTable(t.tokens, cp)
	out.GithubLinks = exportTable(t.links, cp)
	out.Secrets = exportTable(t.secrets, cp)
	out.GithubBindings = exportTable(t.bindings, cp)
	out.AclBootstrapped = t.aclBootstrapped
	for _, e := range t.audits() {
		out.Audit = append(out.Audit, cp(e).(*statev1.AuditEntry))
	}
	return out
}

func importState(s *statev1.State) (*tables, error) {
	t := newTables()
	t.index = s.GetIndex()
	for _, c := range s.GetComponents() {
		if c.GetId() == "" || c.GetName() == "" {
			return nil, invalid("snapshot holds a component without id or name")
		}
		if _, dup := t.byName[c.Name]; dup {
			return nil, invalid("snapshot holds component name %q twice", c.Name)
		}
		if _, dup := t.components[c.Id]; dup {
			return nil, invalid("snapshot holds component id %q twice", c.Id)
		}
		t.components[c.Id] = clone(c)
		t.byName[c.Name] = c.Id
	}
	if err := load(t.deployments, s.GetDeployments(), (*statev1.Deployment).GetId, "deployment"); err != nil {
		return nil, err
	}
	if err := load(t.nodes, s.GetNodes(), (*statev1.Node).GetId, "node"); err != nil {
		return nil, err
	}
	if err := load(t.placements, s.GetPlacements(), (*statev1.Placement).GetId, "placement"); err != nil {
		return nil, err
	}
	if err := load(t.users, s.GetUsers(), (*statev1.User).GetId, "user"); err != nil {
		return nil, err
	}
	if err := load(t.tokens, s.GetApiTokens(), (*statev1.ApiToken).GetId, "token"); err != nil {
		return nil, err
	}
	for id, k := range t.tokens {
		if len(k.Sha256) != 32 {
			return nil, invalid("snapshot holds token %q without a hash", id)
		}
		if _, dup := t.tokenByHash[string(k.Sha256)]; dup {
			return nil, invalid("snapshot holds a token hash twice")
		}
		t.tokenByHash[string(k.Sha256)] = id
	}
	t.aclBootstrapped = s.GetAclBootstrapped()
	for _, e := range s.GetAudit() {
		t.auditLog = append(t.auditLog, clone(e))
	}
	if len(t.auditLog) > AuditSize {
		t.auditLog = t.auditLog[len(t.auditLog)-AuditSize:]
	}
	if err := load(t.links, s.GetGithubLinks(), (*statev1.GithubLink).GetComponentId, "github link"); err != nil {
		return nil, err
	}
	if err := load(t.bindings, s.GetGithubBindings(), func(b *statev1.GithubBinding) string {
		if b.GetGithubUserId() <= 0 || b.GetLogin() != bindingKey(b.GetLogin()) {
			return "" // refused as a binding without id
		}
		return b.GetLogin()
	}, "GitHub login binding"); err != nil {
		return nil, err
	}
	if err := load(t.secrets, s.GetSecrets(), func(s *statev1.Secret) string {
		if s.GetComponentId() == "" || s.GetName() == "" {
			return ""
		}
		return secretKey(s.GetComponentId(), s.GetName())
	}, "secret"); err != nil {
		return nil, err
	}
	return t, nil
}

// load fills a table from a snapshot list, refusing empty and duplicate keys.
func load[T proto.Message](m map[string]T, items []T, key func(T) string, kind string) error {
	for _, it := range items {
		k := key(it)
		if k == "" {
			return invalid("snapshot holds a %s without id", kind)
		}
		if _, dup := m[k]; dup {
			return invalid("snapshot holds %s %q twice", kind, k)
		}
		m[k] = clone(it)
	}
	return nil
}

func clone[T proto.Message](m T) T {
	return proto.Clone(m).(T)
}

// keep returns what the state may keep of a command's part m: m itself when the store owns
// the command (tables.owned), else a copy, so that the state never shares memory with a
// caller's command.
func keep[T proto.Message](t *tables, m T) T {
	if t.owned {
		return m
	}
	return clone(m)
}

// exportTable lists m's objects sorted by key, each passed through cp.
func exportTable[V proto.Message](m map[string]V, cp func(proto.Message) proto.Message) []V {
	var out []V // nil when empty, as before
	for _, k := range sortedKeys(m) {
		out = append(out, cp(m[k]).(V))
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
