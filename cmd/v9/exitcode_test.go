package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/velocity9/v9/node"
	aclv1 "github.com/velocity9/v9/rpc/gen/v9/acl/v1"
)

// TestCLIJSONErrors runs failing commands through the CLI against a one-node cluster and
// wants, under --json, one JSON object {"error": {...}} on stderr with the class's code and
// the class's exit status; and the same exit status without --json.
func TestCLIJSONErrors(t *testing.T) {
	c := node.NewTestCluster(t, 1)
	addr := c.Nodes[0].APIAddr()

	var viewer aclv1.CreateTokenResponse
	decode(t, mustCLI(t, "--addr", addr, "--json", "token", "create", "--name", "ro", "--role", "viewer"), &viewer)

	badManifest := t.TempDir()
	if err := os.WriteFile(filepath.Join(badManifest, "v9.toml"), []byte("name = \"x\"\nruntime = \"wasm\"\nbogus = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name string
		args []string
		code string
		exit int
	}{
		{"usage", []string{"component", "get"}, "usage", exitUsage},
		{"unknown flag", []string{"component", "list", "--bogus"}, "usage", exitUsage},
		{"not found", []string{"component", "get", "nosuch"}, "not_found", exitNotFound},
		{"invalid", []string{"component", "create", "Bad_Name", "--runtime", "wasm"}, "invalid_argument", exitInvalidArgument},
		{"bad manifest", []string{"deploy", badManifest}, "invalid_argument", exitInvalidArgument},
		{"unauthenticated", []string{"--token", "v9s_wrong", "component", "list"}, "unauthenticated", exitUnauthenticated},
		{"permission", []string{"--token", viewer.GetSecret(), "component", "create", "x", "--runtime", "wasm"}, "permission_denied", exitPermission},
		{"exists", []string{"acl", "bootstrap"}, "failed_precondition", exitPrecondition},
		{"unreachable", []string{"--addr", "127.0.0.1:1", "component", "list"}, "unavailable", exitUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--addr", addr}, tc.args...)
			plain := runCLI(t, args...)
			if plain.code != tc.exit || !strings.HasPrefix(plain.stderr, "error: ") {
				t.Fatalf("want exit %d and a plain error, got %s", tc.exit, plain)
			}
			r := runCLI(t, append(args, "--json")...)
			if r.code != tc.exit {
				t.Fatalf("want exit %d, got %s", tc.exit, r)
			}
			var got jsonError
			if err := json.Unmarshal([]byte(r.stderr), &got); err != nil {
				t.Fatalf("stderr is not one JSON object: %v\n%s", err, r)
			}
			if got.Error.Code != tc.code || got.Error.Exit != tc.exit || got.Error.Message == "" {
				t.Fatalf("want code %q exit %d, got %+v", tc.code, tc.exit, got.Error)
			}
			if r.stdout != "" {
				t.Fatalf("a failure printed on stdout: %s", r)
			}
		})
	}
}

// TestExitCodesDocumented wants every exit status and code word of exitcode.go in the table
// of docs/cli-scripting.md, and no other.
func TestExitCodesDocumented(t *testing.T) {
	b, err := os.ReadFile("../../docs/cli-scripting.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `(\\d+)` \\| `([a-z_]+)` \\|")
	documented := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(string(b), -1) {
		documented[m[2]] = m[1]
	}
	want := map[string]string{"usage": strconv.Itoa(exitUsage), "error": strconv.Itoa(exitError)}
	for _, c := range exitClasses {
		want[c.code] = strconv.Itoa(c.exit)
	}
	for code, exit := range want {
		if documented[code] != exit {
			t.Errorf("docs/cli-scripting.md: want a row | `%s` | `%s` |, have exit %q", exit, code, documented[code])
		}
	}
	for code := range documented {
		if _, ok := want[code]; !ok {
			t.Errorf("docs/cli-scripting.md documents code %q, which the CLI never prints", code)
		}
	}
}
