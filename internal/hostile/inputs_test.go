package hostile

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/velocity9/v9/node"
	componentv1 "github.com/velocity9/v9/rpc/gen/v9/component/v1"
	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

// input is one hostile request to the API and the status it must get.
type input struct {
	name        string
	procedure   string // e.g. "ComponentService/Create"
	contentType string // "application/json" or "application/proto"
	body        []byte
	token       string // "" sends node.TestToken; "-" sends none
	want        int
}

// call sends one request to the API the way a Connect unary client does.
func (e *env) call(t *testing.T, in input) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", e.api+"/v9.component.v1."+in.procedure, bytes.NewReader(in.body))
	req.Header.Set("Content-Type", in.contentType)
	switch in.token {
	case "":
		req.Header.Set("Authorization", "Bearer "+node.TestToken)
	case "-":
	default:
		req.Header.Set("Authorization", in.token)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", in.name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	return resp.StatusCode, string(b)
}

// wasmSpec is a valid spec for JSON inputs to build on.
const wasmSpec = `"scaleMax":1,"wasm":{"module":"m.wasm"}`

func createJSON(name, spec string) []byte {
	return []byte(fmt.Sprintf(`{"name":%q,"runtime":"RUNTIME_WASM","spec":{%s}}`, name, spec))
}

func updateJSON(spec string) []byte {
	return []byte(fmt.Sprintf(`{"name":"victim","spec":{%s}}`, spec))
}

func createProto(t *testing.T, name string, spec *statev1.ComponentSpec) []byte {
	b, err := proto.Marshal(&componentv1.CreateRequest{Name: name, Runtime: statev1.Runtime_RUNTIME_WASM, Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// apiInputs is the catalogue of hostile API requests: every one is refused with a clear
// status, and none may change the state.
func apiInputs(t *testing.T) []input {
	const (
		create = "ComponentService/Create"
		update = "ComponentService/UpdateSpec"
		list   = "ComponentService/List"
		js     = "application/json"
		pb     = "application/proto"
	)
	junk := make([]byte, 4096)
	_, _ = rand.Read(junk)
	ins := []input{
		// Malformed JSON.
		{"json truncated", create, js, []byte(`{"name":"x"`), "", 400},
		{"json array", create, js, []byte(`[]`), "", 400},
		{"json string", create, js, []byte(`"component"`), "", 400},
		{"json number for a string", create, js, []byte(`{"name":5}`), "", 400},
		{"json string for an object", create, js, []byte(`{"name":"ok","spec":"x"}`), "", 400},
		{"json deep nesting", create, js, []byte(strings.Repeat("[", 100000)), "", 400},
		{"json not utf-8", create, js, []byte("{\"name\":\"\xff\xfe\"}"), "", 400},
		{"json empty body", create, js, nil, "", 400},
		{"json unknown enum", create, js, []byte(`{"name":"x","runtime":"RUNTIME_FOO"}`), "", 400},
		// Names.
		{"name empty", create, js, createJSON("", wasmSpec), "", 400},
		{"name uppercase", create, js, createJSON("Hello", wasmSpec), "", 400},
		{"name with a dot", create, js, createJSON("a.b", wasmSpec), "", 400},
		{"name path traversal", create, js, createJSON("../etc", wasmSpec), "", 400},
		{"name slash", create, js, createJSON("a/b", wasmSpec), "", 400},
		{"name 64 characters", create, js, createJSON(strings.Repeat("a", 64), wasmSpec), "", 400},
		{"name 1 MiB", create, js, createJSON(strings.Repeat("a", 1<<20), wasmSpec), "", 400},
		{"name with NUL", create, js, createJSON("a\x00b", wasmSpec), "", 400},
		{"name unicode", create, js, createJSON("héllo", wasmSpec), "", 400},
		{"name with space", create, js, createJSON("a b", wasmSpec), "", 400},
		{"name leading hyphen", create, js, createJSON("-a", wasmSpec), "", 400},
		// Limits out of range (the API must refuse what the manifest refuses).
		{"memory 1 byte", create, js, createJSON("m1", wasmSpec+`,"memoryBytes":"1"`), "", 400},
		{"memory 2^64-1", create, js, createJSON("m2", wasmSpec+`,"memoryBytes":"18446744073709551615"`), "", 400},
		{"memory 2^64 overflows", create, js, createJSON("m3", wasmSpec+`,"memoryBytes":"18446744073709551616"`), "", 400},
		{"memory negative", create, js, createJSON("m4", wasmSpec+`,"memoryBytes":"-1"`), "", 400},
		{"timeout 49 days", create, js, createJSON("t1", wasmSpec+`,"timeoutMs":4233600000`), "", 400},
		{"timeout 2^32 overflows", create, js, createJSON("t2", wasmSpec+`,"timeoutMs":4294967296`), "", 400},
		{"concurrency 2^32-1", create, js, createJSON("c1", wasmSpec+`,"concurrency":4294967295`), "", 400},
		{"concurrency negative", create, js, createJSON("c2", wasmSpec+`,"concurrency":-1`), "", 400},
		{"body 2 GiB", create, js, createJSON("b1", wasmSpec+`,"bodyBytes":"2147483648"`), "", 400},
		{"scale.min 1001", create, js, createJSON("s1", `"scaleMin":1001,"wasm":{"module":"m.wasm"}`), "", 400},
		{"scale.max 1001", create, js, createJSON("s2", `"scaleMax":1001,"wasm":{"module":"m.wasm"}`), "", 400},
		{"scale.min over max", create, js, createJSON("s3", `"scaleMin":5,"scaleMax":2,"wasm":{"module":"m.wasm"}`), "", 400},
		{"exclusive with 3 replicas", create, js, createJSON("s4", `"scaleMax":3,"exclusive":true,"wasm":{"module":"m.wasm"}`), "", 400},
		{"env reserved", create, js, createJSON("e1", wasmSpec+`,"env":{"V9_NODE":"x"}`), "", 400},
		{"env reserved lower case", create, js, createJSON("e2", wasmSpec+`,"env":{"v9_node":"x"}`), "", 400},
		{"env name starts with a digit", create, js, createJSON("e3", wasmSpec+`,"env":{"1A":"x"}`), "", 400},
		{"env name with =", create, js, createJSON("e4", wasmSpec+`,"env":{"A=B":"x"}`), "", 400},
		{"env value with NUL", create, js, createJSON("e5", wasmSpec+`,"env":{"A":"x\u0000y"}`), "", 400},
		{"wasm build not go", create, js, createJSON("w1", `"scaleMax":1,"wasm":{"build":"rust"}`), "", 400},
		// The same limits through UpdateSpec.
		{"update memory 1 byte", update, js, updateJSON(wasmSpec + `,"concurrency":2,"memoryBytes":"1"`), "", 400},
		{"update memory 2^64-1", update, js, updateJSON(wasmSpec + `,"concurrency":2,"memoryBytes":"18446744073709551615"`), "", 400},
		{"update timeout 49 days", update, js, updateJSON(wasmSpec + `,"concurrency":2,"timeoutMs":4233600000`), "", 400},
		{"update concurrency 2^32-1", update, js, updateJSON(wasmSpec + `,"concurrency":4294967295`), "", 400},
		{"update body 2 GiB", update, js, updateJSON(wasmSpec + `,"concurrency":2,"bodyBytes":"2147483648"`), "", 400},
		// Malformed protobuf.
		{"proto random bytes", create, pb, junk, "", 400},
		{"proto truncated varint", create, pb, []byte{0x18, 0x80}, "", 400},
		{"proto length past the end", create, pb, []byte{0x0a, 0xff, 0x01, 'a'}, "", 400},
		{"proto bad wire type", create, pb, []byte{0x0f}, "", 400},
		{"proto invalid name", create, pb, createProto(t, "../x", &statev1.ComponentSpec{ScaleMax: 1, Wasm: &statev1.WasmSpec{Module: "m.wasm"}}), "", 400},
		{"proto memory 2^64-1", create, pb, createProto(t, "p1", &statev1.ComponentSpec{ScaleMax: 1, MemoryBytes: 1<<64 - 1, Wasm: &statev1.WasmSpec{Module: "m.wasm"}}), "", 400},
		// Oversize messages: refused before they are buffered.
		{"proto 5 MiB message", create, pb, createProto(t, "big", &statev1.ComponentSpec{Env: map[string]string{"A": strings.Repeat("x", 5<<20)}}), "", 429},
		{"json 5 MiB message", create, js, createJSON("big", `"env":{"A":"`+strings.Repeat("x", 5<<20)+`"}`), "", 429},
		// Tokens.
		{"no token", list, js, []byte(`{}`), "-", 401},
		{"empty bearer", list, js, []byte(`{}`), "Bearer ", 401},
		{"garbage token", list, js, []byte(`{}`), "Bearer garbage", 401},
		{"well-formed wrong secret", list, js, []byte(`{}`), "Bearer v9s_" + strings.Repeat("0", 40), 401},
		{"100 KiB token", list, js, []byte(`{}`), "Bearer v9s_" + strings.Repeat("a", 100<<10), 431},
		{"basic auth", list, js, []byte(`{}`), "Basic dXNlcjpwYXNz", 401},
		{"write with an unknown token", create, js, createJSON("nope", wasmSpec), "Bearer v9s_" + strings.Repeat("1", 40), 401},
	}
	return ins
}

// TestHostileAPIInputs sends the catalogue of hostile API requests: each gets its clear
// status, and the node keeps answering with its state intact.
func TestHostileAPIInputs(t *testing.T) {
	e := newEnv(t)
	ins := apiInputs(t)
	for _, in := range ins {
		code, body := e.call(t, in)
		if code != in.want {
			t.Errorf("%s: status %d, want %d (%.200s)", in.name, code, in.want, body)
		}
	}
	e.healthy(t, fmt.Sprintf("%d API inputs", len(ins)))
}
