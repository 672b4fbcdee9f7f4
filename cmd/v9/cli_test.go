package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/velocity9/v9/node"
	clusterv1 "github.com/velocity9/v9/rpc/gen/v9/cluster/v1"
	componentv1 "github.com/velocity9/v9/rpc/gen/v9/component/v1"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// cliResult is what one in-process run of the CLI printed and returned.
type cliResult struct {
	args           []string
	stdout, stderr string
	code           int
}

func (r cliResult) String() string {
	return fmt.Sprintf("v9 %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// runCLI runs the v9 command tree in this process, built afresh for the call, within the
// CLI's own default --timeout (a deploy waits that long for its rollout; under -race and
// load, three nodes compiling the hello module can take over 30 s).
func runCLI(t *testing.T, args ...string) cliResult {
	t.Helper()
	return runCLIWithin(t, 2*time.Minute, args...)
}

// runCLIWithin is runCLI with a time limit of d.
func runCLIWithin(t *testing.T, d time.Duration, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := execute(ctx, args, &stdout, &stderr, false)
	return cliResult{args: args, stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// mustCLI runs the CLI and fails the test unless it exits 0.
func mustCLI(t *testing.T, args ...string) cliResult {
	t.Helper()
	r := runCLI(t, args...)
	if r.code != 0 {
		t.Fatalf("want success, got %s", r)
	}
	return r
}

// failCLI runs the CLI, wants a non-zero exit code (exitcode.go) and "error: ...<want>..." on stderr.
func failCLI(t *testing.T, want string, args ...string) cliResult {
	t.Helper()
	r := runCLI(t, args...)
	if r.code == 0 {
		t.Fatalf("want a failure, got %s", r)
	}
	if !strings.HasPrefix(r.stderr, "error: ") || !strings.Contains(r.stderr, want) {
		t.Fatalf("want stderr \"error: ...%s...\", got %s", want, r)
	}
	return r
}

// decode parses protojson output into m.
func decode(t *testing.T, r cliResult, m proto.Message) {
	t.Helper()
	if err := protojson.Unmarshal([]byte(r.stdout), m); err != nil {
		t.Fatalf("parse JSON of %s: %v", r, err)
	}
}

func getComponent(t *testing.T, addr, name string) *statev1.Component {
	t.Helper()
	var res componentv1.GetResponse
	decode(t, mustCLI(t, "--addr", addr, "--json", "component", "get", name, "--consistent"), &res)
	if res.GetComponent().GetName() != name {
		t.Fatalf("get %s returned %v", name, res.GetComponent())
	}
	return res.GetComponent()
}

// TestCLIComponents drives every component command against a real three-node cluster
// through a follower, which must forward the writes to the leader.
func TestCLIComponents(t *testing.T) {
	c := node.NewTestCluster(t, 3)
	addr := c.Follower(t).APIAddr()
	cli := func(args ...string) []string { return append([]string{"--addr", addr}, args...) }

	mustCLI(t, cli("component", "create", "alpha", "--runtime", "wasm", "--env", "GREETING=hi",
		"--memory", "64Mi", "--timeout", "5s", "--wasm-module", "alpha.wasm")...)
	var created componentv1.CreateResponse
	decode(t, mustCLI(t, cli("--json", "component", "create", "beta", "--runtime", "container",
		"--image", "docker.io/library/python:3.12-alpine", "--command", "python", "--command", "/app/main.py",
		"--min", "1", "--max", "2")...), &created)
	if b := created.GetComponent(); b.GetName() != "beta" || b.GetSpec().GetScaleMax() != 2 ||
		!slices.Equal(b.GetSpec().GetContainer().GetCommand(), []string{"python", "/app/main.py"}) {
		t.Fatalf("create beta returned %v", b)
	}
	failCLI(t, "exists", cli("component", "create", "alpha", "--runtime", "wasm")...)

	// list --json is one protojson object that any JSON parser reads.
	list := mustCLI(t, cli("--json", "component", "list", "--consistent")...)
	var plain struct {
		Components []struct {
			Name    string `json:"name"`
			Runtime string `json:"runtime"`
		} `json:"components"`
	}
	if err := json.Unmarshal([]byte(list.stdout), &plain); err != nil {
		t.Fatalf("list --json is not JSON: %v\n%s", err, list)
	}
	var names []string
	for _, comp := range plain.Components {
		names = append(names, comp.Name+":"+comp.Runtime)
	}
	slices.Sort(names)
	if want := []string{"alpha:RUNTIME_WASM", "beta:RUNTIME_CONTAINER"}; !slices.Equal(names, want) {
		t.Fatalf("list --json names %v, want %v\n%s", names, want, list)
	}
	var listRes componentv1.ListResponse
	decode(t, list, &listRes)
	if len(listRes.GetComponents()) != 2 {
		t.Fatalf("list --json: %d components, want 2", len(listRes.GetComponents()))
	}

	table := mustCLI(t, cli("component", "list", "--consistent")...)
	for _, want := range []string{"NAME", "RUNTIME", "DESIRED", "MIN/MAX", "alpha", "beta", "container", "running"} {
		if !strings.Contains(table.stdout, want) {
			t.Errorf("list table lacks %q:\n%s", want, table.stdout)
		}
	}

	// pause, resume
	if out := mustCLI(t, cli("component", "pause", "alpha")...).stdout; out != "component \"alpha\" paused\n" {
		t.Fatalf("pause said %q", out)
	}
	if d := getComponent(t, addr, "alpha").GetDesired(); d != statev1.DesiredState_DESIRED_STATE_PAUSED {
		t.Fatalf("after pause, desired = %v", d)
	}
	get := mustCLI(t, cli("--json", "component", "get", "alpha", "--consistent")...)
	if !strings.Contains(get.stdout, `"DESIRED_STATE_PAUSED"`) {
		t.Fatalf("get --json after pause:\n%s", get.stdout)
	}
	mustCLI(t, cli("component", "resume", "alpha")...)
	if d := getComponent(t, addr, "alpha").GetDesired(); d != statev1.DesiredState_DESIRED_STATE_RUNNING {
		t.Fatalf("after resume, desired = %v", d)
	}

	// update changes only the flags given; then scale within the new bounds.
	failCLI(t, "outside", cli("component", "scale", "alpha", "3")...)
	mustCLI(t, cli("component", "update", "alpha", "--max", "3")...)
	alpha := getComponent(t, addr, "alpha")
	s := alpha.GetSpec()
	if s.GetScaleMax() != 3 || s.GetScaleMin() != 1 || s.GetEnv()["GREETING"] != "hi" ||
		s.GetMemoryBytes() != 64<<20 || s.GetTimeoutMs() != 5000 || s.GetWasm().GetModule() != "alpha.wasm" {
		t.Fatalf("after update --max 3, spec = %v", s)
	}
	var scaled componentv1.ScaleResponse
	decode(t, mustCLI(t, cli("--json", "component", "scale", "alpha", "3")...), &scaled)
	if r := scaled.GetComponent().GetReplicas(); r != 3 {
		t.Fatalf("scale --json: replicas %d, want 3", r)
	}
	if r := getComponent(t, addr, "alpha").GetReplicas(); r != 3 {
		t.Fatalf("get after scale: replicas %d, want 3", r)
	}
	human := mustCLI(t, cli("component", "get", "alpha", "--consistent")...)
	for _, want := range []string{"alpha", "wasm", "64Mi", "5s", "GREETING=hi (user)", "3 (min 1 (user), max 3 (user))"} {
		if !strings.Contains(human.stdout, want) {
			t.Errorf("get lacks %q:\n%s", want, human.stdout)
		}
	}
	failCLI(t, "container components", cli("component", "update", "alpha", "--image", "x")...)

	// update goes through the same spec rules as a manifest (package spec), enforced by the
	// state machine: no flag bypasses a bound, and the spec is left as it was.
	failCLI(t, `limits.memory "1Mi" is outside 16Mi..64Gi`, cli("component", "update", "alpha", "--memory", "1Mi")...)
	failCLI(t, `limits.memory "65Gi" is outside 16Mi..64Gi`, cli("component", "update", "alpha", "--memory", "65Gi")...)
	failCLI(t, `limits.memory "1Ti" is outside`, cli("component", "update", "alpha", "--memory", "1Ti")...)
	failCLI(t, "above the limit of 15m", cli("component", "update", "alpha", "--timeout", "16m")...)
	failCLI(t, "above the limit of 10000", cli("component", "update", "alpha", "--concurrency", "10001")...)
	failCLI(t, "above the limit of 1000", cli("component", "update", "alpha", "--max", "1001")...)
	failCLI(t, `env key "v9_token" is reserved`, cli("component", "update", "alpha", "--env", "v9_token=x")...)
	failCLI(t, `env key "v9_token" is reserved`, cli("component", "create", "delta", "--runtime", "wasm", "--env", "v9_token=x")...)
	failCLI(t, "outside 16Mi..64Gi", cli("component", "create", "delta", "--runtime", "wasm", "--memory", "8Mi")...)
	if s := getComponent(t, addr, "alpha").GetSpec(); s.GetMemoryBytes() != 64<<20 || s.GetTimeoutMs() != 5000 || s.GetScaleMax() != 3 || len(s.GetEnv()) != 1 {
		t.Fatalf("refused updates changed the spec: %v", s)
	}
	mustCLI(t, cli("component", "update", "alpha", "--memory", "0", "--timeout", "0")...) // the node's defaults
	if s := getComponent(t, addr, "alpha").GetSpec(); s.GetMemoryBytes() != 0 || s.GetTimeoutMs() != 0 {
		t.Fatalf("update to the node's defaults: %v", s)
	}

	// delete
	if out := mustCLI(t, cli("component", "rm", "beta")...).stdout; out != "component \"beta\" deleted\n" {
		t.Fatalf("delete said %q", out)
	}
	failCLI(t, "not found", cli("component", "get", "beta", "--consistent")...)
	failCLI(t, "not found", cli("component", "delete", "beta")...)
	decode(t, mustCLI(t, cli("--json", "component", "list", "--consistent")...), &listRes)
	if len(listRes.GetComponents()) != 1 || listRes.GetComponents()[0].GetName() != "alpha" {
		t.Fatalf("after delete, list = %v", listRes.GetComponents())
	}

	// bad input is refused with a message for a person
	failCLI(t, "DNS label", cli("component", "create", "Bad_Name", "--runtime", "wasm")...)
	failCLI(t, "--runtime", cli("component", "create", "gamma")...)
}

// TestCLIEmptyList checks that an empty list still has its array in JSON ("components",
// "deployments") and says it is empty without --json.
func TestCLIEmptyList(t *testing.T) {
	c := node.NewTestCluster(t, 1)
	addr := c.Leader(t).APIAddr()
	r := mustCLI(t, "--addr", addr, "--json", "component", "list")
	var plain map[string]json.RawMessage
	if err := json.Unmarshal([]byte(r.stdout), &plain); err != nil || string(plain["components"]) != "[]" {
		t.Fatalf("empty list --json: %v\n%s", err, r)
	}
	if r := mustCLI(t, "--addr", addr, "component", "list"); !strings.Contains(r.stdout, "No components") {
		t.Fatalf("empty list: %s", r)
	}
	// The same for a component's deployments.
	mustCLI(t, "--addr", addr, "component", "create", "fresh", "--runtime", "wasm")
	r = mustCLI(t, "--addr", addr, "--json", "deployments", "list", "fresh")
	if err := json.Unmarshal([]byte(r.stdout), &plain); err != nil || string(plain["deployments"]) != "[]" {
		t.Fatalf("empty deployments --json: %v\n%s", err, r)
	}
	if r := mustCLI(t, "--addr", addr, "deployments", "list", "fresh"); !strings.Contains(r.stdout, "No deployments of fresh yet") {
		t.Fatalf("no deployments: %s", r)
	}
}

func TestCLICluster(t *testing.T) {
	c := node.NewTestCluster(t, 3)
	leader := c.Leader(t)
	f := c.Follower(t)

	var st clusterv1.StatusResponse
	decode(t, mustCLI(t, "--addr", f.APIAddr(), "--json", "cluster", "status"), &st)
	if st.GetNodeId() != f.ID() || len(st.GetMembers()) != 3 {
		t.Fatalf("status through %s: %v", f.ID(), &st)
	}
	human := mustCLI(t, "--addr", f.APIAddr(), "cluster", "status")
	if !strings.Contains(human.stdout, f.ID()) || !strings.Contains(human.stdout, "Leader:") {
		t.Fatalf("status:\n%s", human.stdout)
	}
	members := mustCLI(t, "--addr", f.APIAddr(), "cluster", "members")
	for _, n := range c.Nodes {
		if !strings.Contains(members.stdout, n.ID()) || !strings.Contains(members.stdout, n.RaftAddr()) {
			t.Fatalf("members lacks %s:\n%s", n.ID(), members.stdout)
		}
	}

	// leave: the follower removes itself; the leader's view drops it.
	r := mustCLI(t, "--addr", f.APIAddr(), "cluster", "leave")
	if !strings.Contains(r.stdout, f.ID()) {
		t.Fatalf("leave: %s", r)
	}
	node.Eventually(t, 10*time.Second, func() error {
		var st clusterv1.StatusResponse
		r := runCLI(t, "--addr", leader.APIAddr(), "--json", "cluster", "status")
		if r.code != 0 {
			return fmt.Errorf("%s", r)
		}
		if err := protojson.Unmarshal([]byte(r.stdout), &st); err != nil {
			return err
		}
		for _, m := range st.GetMembers() {
			if m.GetId() == f.ID() {
				return fmt.Errorf("%s still a member: %v", f.ID(), st.GetMembers())
			}
		}
		return nil
	})
	failCLI(t, "", "--addr", leader.APIAddr(), "cluster", "remove-peer", "no-such-node")
}

func TestCLIUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	r := failCLI(t, "cannot reach a v9 node at "+addr, "--addr", addr, "component", "list")
	if !strings.Contains(r.stderr, "hint: ") {
		t.Fatalf("no hint: %s", r)
	}
}

func TestCLIUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		want string
		args []string
	}{
		{"needs NAME", []string{"component", "get"}},
		{"unknown flag", []string{"component", "list", "--bogus"}},
		{"unknown command", []string{"component", "frobnicate"}},
		{"unknown command", []string{"frobnicate"}},
		{"--memory", []string{"component", "create", "x", "--runtime", "wasm", "--memory", "12MB"}},
		{"--timeout", []string{"component", "create", "x", "--runtime", "wasm", "--timeout", "soon"}},
		{"KEY=VALUE", []string{"component", "create", "x", "--runtime", "wasm", "--env", "NOVALUE"}},
		{"wasm components", []string{"component", "create", "x", "--runtime", "container", "--wasm-module", "a.wasm"}},
		{"--runtime", []string{"component", "create", "x", "--runtime", "java"}},
		{"--branch needs --github", []string{"component", "create", "x", "--runtime", "wasm", "--branch", "dev"}},
		{"replicas", []string{"component", "scale", "x", "many"}},
		{"nothing to update", []string{"component", "update", "x"}},
		{"--log-level", []string{"--log-level", "loud", "component", "list"}},
		{"data-dir", []string{"agent"}},
		{`--admins: "al ice"`, []string{"agent", "--data-dir", "/nonexistent", "--admins", "al ice"}},
		{`--github-allowed-users: "bob:x"`, []string{"agent", "--data-dir", "/nonexistent", "--github-allowed-users", "alice,bob:x"}},
		{"overlap", []string{"dev", "--api-port", "7900", "--raft-port", "7901"}},
	} {
		r := failCLI(t, tc.want, append([]string{"--addr", "127.0.0.1:1"}, tc.args...)...)
		if !strings.Contains(r.stderr, "--help") {
			t.Errorf("usage error without a pointer to --help: %s", r)
		}
	}
}

func TestCLINodes(t *testing.T) {
	c := node.NewTestCluster(t, 3)
	addr := c.Follower(t).APIAddr()
	var list clusterv1.NodesResponse
	node.Eventually(t, 10*time.Second, func() error {
		decode(t, mustCLI(t, "--addr", addr, "--json", "nodes", "list"), &list)
		if len(list.GetNodes()) != 3 || list.GetLeaderId() == "" {
			return fmt.Errorf("nodes: %v", &list)
		}
		for _, info := range list.GetNodes() {
			if info.GetLastHeartbeat() == nil || info.GetNode().GetStatus() != statev1.NodeStatus_NODE_STATUS_READY {
				return fmt.Errorf("node %v", info)
			}
		}
		return nil
	})
	target := c.Nodes[2].ID()
	mustCLI(t, "--addr", addr, "nodes", "drain", target)
	human := mustCLI(t, "--addr", addr, "nodes", "list")
	if !strings.Contains(human.stdout, "HEARTBEAT") || !regexp.MustCompile(target+`\s+draining`).MatchString(human.stdout) {
		t.Fatalf("nodes list after drain:\n%s", human.stdout)
	}
	mustCLI(t, "--addr", addr, "node", "drain", "--undo", target)
	if human := mustCLI(t, "--addr", addr, "nodes", "list"); !regexp.MustCompile(target + `\s+ready`).MatchString(human.stdout) {
		t.Fatalf("nodes list after undo:\n%s", human.stdout)
	}
	failCLI(t, "no node", "--addr", addr, "nodes", "drain", "nope")
}

// TestCLIOperatorSnapshot: save a cluster's state to a file, restore it into a new cluster
// through a follower (the CLI sends it to the leader), and read it back there.
func TestCLIOperatorSnapshot(t *testing.T) {
	old := node.NewTestCluster(t, 1)
	addr := old.Leader(t).APIAddr()
	mustCLI(t, "--addr", addr, "component", "create", "kept", "--runtime", "wasm", "--env", "K=v")
	file := filepath.Join(t.TempDir(), "backup.v9snap")
	if r := mustCLI(t, "--addr", addr, "operator", "snapshot", "save", file); !strings.Contains(r.stdout, "saved "+file) {
		t.Fatalf("save: %s", r)
	}

	c := node.NewTestCluster(t, 3)
	f := c.Follower(t)
	failCLI(t, "no such file", "--addr", f.APIAddr(), "operator", "snapshot", "restore", file+".missing")
	// A restore is refused as unavailable (nothing applied) while the new cluster elects a
	// leader; the CLI's hint says to retry, as a user would.
	var r cliResult
	deadline := time.Now().Add(30 * time.Second)
	for {
		r = runCLI(t, "--addr", f.APIAddr(), "operator", "snapshot", "restore", file)
		if r.code != exitUnavailable || time.Now().After(deadline) {
			break
		}
	}
	if r.code != 0 {
		t.Fatalf("want success, got %s", r)
	}
	if !strings.Contains(r.stdout, "restored 1 components") {
		t.Fatalf("restore: %s", r)
	}
	if got := getComponent(t, f.APIAddr(), "kept"); got.GetSpec().GetEnv()["K"] != "v" {
		t.Fatalf("restored component: %v", got)
	}
}
