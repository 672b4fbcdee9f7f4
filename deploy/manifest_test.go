package deploy

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"

	statev1 "github.com/velocity9/v9/rpc/gen/v9/state/v1"
)

const wasmHead = "name = \"hello\"\nruntime = \"wasm\"\n[wasm]\nmodule = \"hello.wasm\"\n"
const containerHead = "name = \"web\"\nruntime = \"container\"\n[container]\nimage = \"docker.io/library/python:3.12-alpine\"\n"

func TestParseManifestFull(t *testing.T) {
	data := `# the design's example
name = "hello"
runtime = "container"
[wasm]
module = "hello.wasm"
[container]
image = "docker.io/library/python:3.12-alpine"
command = ["python", "/app/main.py"]
archive = "image.tar"
[scale]
min = 1
max = 5
exclusive = false
[limits]
memory = "256Mi"
body = "1Mi"
timeout = "1m30s"
concurrency = 20
[env]
GREETING = "hi"
_under = ""
[health]
path = "/healthz"
[rollout]
canary = "25%"
window = "5s"
`
	m, err := ParseManifest([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	want := &Manifest{
		Name:      "hello",
		Runtime:   "container",
		Wasm:      ManifestWasm{Module: "hello.wasm"},
		Container: ManifestContainer{Image: "docker.io/library/python:3.12-alpine", Command: []string{"python", "/app/main.py"}, Archive: "image.tar"},
		Scale:     ManifestScale{Min: 1, Max: 5},
		Limits:    ManifestLimits{Memory: "256Mi", Body: "1Mi", Timeout: "1m30s", Concurrency: 20},
		Env:       map[string]string{"GREETING": "hi", "_under": ""},
		Health:    ManifestHealth{Path: "/healthz"},
		Rollout:   ManifestRollout{Canary: "25%", Window: "5s"},
	}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("got %+v\nwant %+v", m, want)
	}
	if got := m.RuntimeEnum(); got != statev1.Runtime_RUNTIME_CONTAINER {
		t.Fatalf("runtime enum %v", got)
	}
	spec := m.Spec()
	if spec.ScaleMin != 1 || spec.ScaleMax != 5 || spec.Exclusive || spec.Concurrency != 20 ||
		spec.MemoryBytes != 256<<20 || spec.TimeoutMs != 90_000 || spec.Wasm != nil ||
		spec.Container.GetImage() != want.Container.Image ||
		!reflect.DeepEqual(spec.Container.GetCommand(), want.Container.Command) ||
		!reflect.DeepEqual(spec.Env, want.Env) {
		t.Fatalf("spec %v", spec)
	}
	// The spec owns its maps and slices.
	spec.Env["GREETING"] = "changed"
	spec.Container.Command[0] = "changed"
	if m.Env["GREETING"] != "hi" || m.Container.Command[0] != "python" {
		t.Fatal("Spec shares memory with the manifest")
	}
}

func TestParseManifestDefaults(t *testing.T) {
	tests := []struct {
		name string
		data string
		want ManifestScale
	}{
		{"none", wasmHead, ManifestScale{Min: 1, Max: 1}},
		{"wasm min 0", wasmHead + "[scale]\nmin = 0\n", ManifestScale{Min: 0, Max: 1}},
		{"min only raises max", wasmHead + "[scale]\nmin = 3\n", ManifestScale{Min: 3, Max: 3}},
		{"max only", wasmHead + "[scale]\nmax = 4\n", ManifestScale{Min: 1, Max: 4}},
		{"exclusive", wasmHead + "[scale]\nexclusive = true\n", ManifestScale{Min: 1, Max: 1, Exclusive: true}},
		{"inline table", "scale = { min = 2, max = 7 }\n" + wasmHead, ManifestScale{Min: 2, Max: 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseManifest([]byte(tt.data))
			if err != nil {
				t.Fatal(err)
			}
			if m.Scale != tt.want {
				t.Fatalf("scale %+v, want %+v", m.Scale, tt.want)
			}
			if m.Limits != (ManifestLimits{Memory: "128Mi", Body: "10Mi", Timeout: "30s", Concurrency: 50}) {
				t.Fatalf("limits %+v", m.Limits)
			}
			spec := m.Spec()
			if spec.MemoryBytes != 128<<20 || spec.TimeoutMs != 30_000 || spec.Concurrency != 50 ||
				spec.Wasm.GetModule() != "hello.wasm" || spec.Container != nil || spec.Env != nil {
				t.Fatalf("spec %v", spec)
			}
			if m.RuntimeEnum() != statev1.Runtime_RUNTIME_WASM {
				t.Fatal("runtime enum")
			}
		})
	}
}

func TestParseManifestAccepts(t *testing.T) {
	for name, data := range map[string]string{
		"build go":              "name = \"a\"\nruntime = \"wasm\"\n[wasm]\nbuild = \"go\"\n",
		"63-char name":          "name = \"" + strings.Repeat("a", 63) + "\"\nruntime = \"wasm\"\n[wasm]\nbuild = \"go\"\n",
		"digits and dashes":     "name = \"0-a-9\"\nruntime = \"wasm\"\n[wasm]\nbuild = \"go\"\n",
		"memory bytes int":      wasmHead + "[limits]\nmemory = 16777216\n",
		"memory bytes string":   wasmHead + "[limits]\nmemory = \"16777216\"\n",
		"memory Ki":             wasmHead + "[limits]\nmemory = \"16384Ki\"\n",
		"memory 64Gi":           wasmHead + "[limits]\nmemory = \"64Gi\"\n",
		"timeout 15m":           wasmHead + "[limits]\ntimeout = \"15m\"\n",
		"timeout 0: the node's": wasmHead + "[limits]\ntimeout = \"0s\"\n",
		"memory 0: the node's":  wasmHead + "[limits]\nmemory = \"0\"\n",
		"memory Ti":             wasmHead + "[limits]\nmemory = \"0Ti\"\n",
		"concurrency 0":         wasmHead + "[limits]\nconcurrency = 0\n",
		"container no cmd":      containerHead,
		"scale max 1000":        wasmHead + "[scale]\nmax = 1000\n",
		"other table ignored":   wasmHead + "[container]\nimage = \"\"\n",
		"dotted keys":           "name = \"a\"\nruntime = \"wasm\"\nwasm.build = \"go\"\nenv.A = \"1\"\n",
		"byte order mark, CRLF": "\ufeffname = \"a\"\r\nruntime = \"wasm\"\r\n[wasm]\r\nbuild = \"go\"\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			m, err := ParseManifest([]byte(data))
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestParseManifestErrors(t *testing.T) {
	tests := []struct {
		name string
		data string
		want string // the whole error message
	}{
		{"unknown key", wasmHead + "[scale]\nmaxx = 3\n", `v9.toml: unknown key "scale.maxx" (line 6)`},
		{"unknown top key", "nam = \"x\"\n" + strings.TrimPrefix(wasmHead, "name = \"hello\"\n"),
			`v9.toml: unknown key "nam" (line 1); name is missing`},
		{"unknown table", wasmHead + "[sclae]\nmax = 3\n", `v9.toml: unknown key "sclae" (line 5)`},
		{"syntax", "name = \"hello\nruntime = \"wasm\"\n", `v9.toml: invalid TOML: basic strings cannot have new lines (line 1)`},
		{"duplicate key", "name = \"b\"\n" + wasmHead, `v9.toml: invalid TOML at name: key name is already defined (line 2)`},
		{"wrong type", wasmHead + "[scale]\nmin = \"1\"\n", `v9.toml: scale.min must be an integer (line 6)`},
		{"wrong type table", "name = \"a\"\nruntime = \"wasm\"\nwasm = 3\n", `v9.toml: wasm must be a table (line 3)`},
		{"env not string", wasmHead + "[env]\nA = 1\n", `v9.toml: env.A must be a string (line 6)`},
		{"command not strings", containerHead + "command = [1]\n", `v9.toml: container.command must be an array of strings (line 5)`},
		{"empty", "", `v9.toml: name is missing; runtime is missing (want "wasm" or "container")`},
		{"missing name", "runtime = \"wasm\"\n[wasm]\nbuild = \"go\"\n", `v9.toml: name is missing`},
		{"upper-case name", "name = \"Hello\"\nruntime = \"wasm\"\n[wasm]\nbuild = \"go\"\n",
			`v9.toml: name "Hello" is not a DNS label (1 to 63 characters a-z, 0-9 and '-', not starting or ending with '-') (line 1)`},
		{"name leading dash", "name = \"-a\"\nruntime = \"wasm\"\n[wasm]\nbuild = \"go\"\n", `name "-a" is not a DNS label`},
		{"name trailing dash", "name = \"a-\"\nruntime = \"wasm\"\n[wasm]\nbuild = \"go\"\n", `name "a-" is not a DNS label`},
		{"name too long", "name = \"" + strings.Repeat("a", 64) + "\"\nruntime = \"wasm\"\n[wasm]\nbuild = \"go\"\n", `is not a DNS label`},
		{"name dot", "name = \"a.b\"\nruntime = \"wasm\"\n[wasm]\nbuild = \"go\"\n", `name "a.b" is not a DNS label`},
		{"missing runtime", "name = \"a\"\n", `v9.toml: runtime is missing (want "wasm" or "container")`},
		{"unknown runtime", "name = \"a\"\nruntime = \"java\"\n", `v9.toml: runtime "java" is unknown (want "wasm" or "container") (line 2)`},
		{"wasm nothing", "name = \"a\"\nruntime = \"wasm\"\n", `v9.toml: runtime "wasm" needs wasm.module (a prebuilt module in the repository) or wasm.build = "go"`},
		{"wasm empty table", "name = \"a\"\nruntime = \"wasm\"\n[wasm]\n", `needs wasm.module (a prebuilt module in the repository) or wasm.build = "go" (line 3)`},
		{"wasm both", wasmHead + "build = \"go\"\n", `v9.toml: wasm.module and wasm.build are exclusive: name a prebuilt module or build one (line 5)`},
		{"wasm build rust", "name = \"a\"\nruntime = \"wasm\"\n[wasm]\nbuild = \"rust\"\n", `v9.toml: wasm.build "rust" is not supported (only "go") (line 4)`},
		{"wasm module abs", "name = \"a\"\nruntime = \"wasm\"\n[wasm]\nmodule = \"/etc/x.wasm\"\n", `wasm.module "/etc/x.wasm" must be a relative path inside the repository (line 4)`},
		{"wasm module dotdot", "name = \"a\"\nruntime = \"wasm\"\n[wasm]\nmodule = \"../x.wasm\"\n", `wasm.module "../x.wasm" must be a relative path inside the repository`},
		{"container no image", "name = \"a\"\nruntime = \"container\"\n[container]\ncommand = [\"x\"]\n", `v9.toml: runtime "container" needs container.image (line 3)`},
		{"container bad image", "name = \"a\"\nruntime = \"container\"\n[container]\nimage = \"a b\"\n", `container.image "a b" is not an image reference (line 4)`},
		{"container archive escapes", containerHead + "archive = \"../image.tar\"\n", `container.archive "../image.tar" must be a relative path inside the repository (line 5)`},
		{"min > max", wasmHead + "[scale]\nmin = 3\nmax = 2\n", `v9.toml: scale.min 3 is greater than scale.max 2 (line 6)`},
		{"min negative", wasmHead + "[scale]\nmin = -1\n", `v9.toml: scale.min -1 is negative (line 6)`},
		{"max 0", wasmHead + "[scale]\nmin = 0\nmax = 0\n", `v9.toml: scale.max 0 is below 1 (line 7)`},
		{"max too big", wasmHead + "[scale]\nmax = 1001\n", `v9.toml: scale.max 1001 is above the limit of 1000 (line 6)`},
		{"max huge", wasmHead + "[scale]\nmax = 9223372036854775807\n", `scale.max 2147483647 is above the limit of 1000`},
		{"exclusive max 2", wasmHead + "[scale]\nmax = 2\nexclusive = true\n", `v9.toml: scale.exclusive needs scale.max = 1 (it is 2) (line 7)`},
		{"memory unit", wasmHead + "[limits]\nmemory = \"128MB\"\n", `v9.toml: limits.memory "128MB" is not a size: want bytes or a whole number with Ki, Mi, Gi or Ti, like "128Mi" (line 6)`},
		{"memory fraction", wasmHead + "[limits]\nmemory = \"1.5Gi\"\n", `limits.memory "1.5Gi" is not a size`},
		{"memory negative", wasmHead + "[limits]\nmemory = -5\n", `limits.memory "-5" is not a size`},
		{"memory overflow", wasmHead + "[limits]\nmemory = \"99999999999999999999Gi\"\n", `is not a size`},
		{"memory small", wasmHead + "[limits]\nmemory = \"8Mi\"\n", `v9.toml: limits.memory "8Mi" is outside 16Mi..64Gi (line 6)`},
		{"memory big", wasmHead + "[limits]\nmemory = \"65Gi\"\n", `limits.memory "65Gi" is outside 16Mi..64Gi`},
		{"memory bool", wasmHead + "[limits]\nmemory = true\n", `v9.toml: limits.memory must be a size like "128Mi" or a number of bytes (line 6)`},
		{"timeout unit", wasmHead + "[limits]\ntimeout = \"30\"\n", `v9.toml: limits.timeout "30" is not a duration like "30s" or "1m30s" (line 6)`},
		{"timeout int", wasmHead + "[limits]\ntimeout = 30\n", `v9.toml: limits.timeout must be a duration string like "30s" (line 6)`},
		{"timeout negative", wasmHead + "[limits]\ntimeout = \"-1s\"\n", `limits.timeout "-1s" is negative`},
		{"timeout tiny", wasmHead + "[limits]\ntimeout = \"10us\"\n", `limits.timeout "10us" is below 1ms`},
		{"timeout long", wasmHead + "[limits]\ntimeout = \"16m\"\n", `v9.toml: limits.timeout "16m0s" is above the limit of 15m (line 6)`},
		{"concurrency negative", wasmHead + "[limits]\nconcurrency = -1\n", `v9.toml: limits.concurrency -1 is negative (line 6)`},
		{"concurrency big", wasmHead + "[limits]\nconcurrency = 10001\n", `limits.concurrency 10001 is above the limit of 10000`},
		{"env bad name", wasmHead + "[env]\n\"1A\" = \"x\"\n", `v9.toml: env key "1A" is not a variable name ([A-Za-z_][A-Za-z0-9_]*) (line 6)`},
		{"env dash", wasmHead + "[env]\n\"A-B\" = \"x\"\n", `env key "A-B" is not a variable name`},
		{"env empty", wasmHead + "[env]\n\"\" = \"x\"\n", `env key "" is not a variable name`},
		{"env reserved", wasmHead + "[env]\nV9_NODE = \"x\"\n", `v9.toml: env key "V9_NODE" is reserved: names starting with V9_ belong to v9 (line 6)`},
		{"env reserved lower", wasmHead + "[env]\nv9_x = \"x\"\n", `env key "v9_x" is reserved`},
		{"env NUL", wasmHead + "[env]\nA = \"a\\u0000b\"\n", `env.A contains a NUL byte (line 6)`},
		{"several", "name = \"A\"\nruntime = \"wasm\"\n[wasm]\nbuild = \"go\"\n[scale]\nmax = 0\n[limits]\ntimeout = \"x\"\n",
			`v9.toml: name "A" is not a DNS label (1 to 63 characters a-z, 0-9 and '-', not starting or ending with '-') (line 1); scale.max 0 is below 1 (line 6); limits.timeout "x" is not a duration like "30s" or "1m30s" (line 8)`},
		{"too large", wasmHead + "#" + strings.Repeat("x", MaxManifestSize) + "\n", `v9.toml: the file is larger than 1048576 bytes`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseManifest([]byte(tt.data))
			if err == nil {
				t.Fatalf("parsed %+v, want error %q", m, tt.want)
			}
			if m != nil {
				t.Fatal("manifest returned with an error")
			}
			if !errors.Is(err, ErrBadManifest) {
				t.Fatalf("%v does not match ErrBadManifest", err)
			}
			if strings.HasPrefix(tt.want, "v9.toml: ") {
				if err.Error() != tt.want {
					t.Fatalf("error\n got %s\nwant %s", err, tt.want)
				}
			} else if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestManifestErrorProblems(t *testing.T) {
	_, err := ParseManifest([]byte(wasmHead + "[scale]\nmaxx = 3\n"))
	var me *ManifestError
	if !errors.As(err, &me) {
		t.Fatalf("%T is not a *ManifestError", err)
	}
	want := []Problem{{Key: "scale.maxx", Line: 6, Msg: `unknown key "scale.maxx"`}}
	if !reflect.DeepEqual(me.Problems, want) {
		t.Fatalf("problems %+v", me.Problems)
	}
}

func TestCheckFiles(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	write := func(name string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("hello.wasm")
	write("sub/image.tar")
	if err := os.WriteFile(filepath.Join(outside, "secret.wasm"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink("hello.wasm", filepath.Join(dir, "inside.wasm")))
	must(os.Symlink(filepath.Join(outside, "secret.wasm"), filepath.Join(dir, "abs.wasm")))
	must(os.Symlink("../"+filepath.Base(outside)+"/secret.wasm", filepath.Join(dir, "rel.wasm")))
	must(os.Mkdir(filepath.Join(dir, "adir.wasm"), 0o755))

	wasm := func(module string) *Manifest {
		return &Manifest{Name: "a", Runtime: RuntimeWasm, Wasm: ManifestWasm{Module: module}}
	}
	tests := []struct {
		m    *Manifest
		want string // "" for success
	}{
		{wasm("hello.wasm"), ""},
		{wasm("inside.wasm"), ""},
		{&Manifest{Runtime: RuntimeWasm, Wasm: ManifestWasm{Build: "go"}}, ""},
		{&Manifest{Runtime: RuntimeContainer, Container: ManifestContainer{Image: "x", Archive: "sub/image.tar"}}, ""},
		{&Manifest{Runtime: RuntimeContainer, Container: ManifestContainer{Image: "x"}}, ""},
		{wasm("missing.wasm"), `v9.toml: wasm.module "missing.wasm" not found in the repository`},
		{wasm("abs.wasm"), `v9.toml: wasm.module "abs.wasm" cannot be read inside the repository`},
		{wasm("rel.wasm"), `v9.toml: wasm.module "rel.wasm" cannot be read inside the repository`},
		{wasm("../" + filepath.Base(outside) + "/secret.wasm"), `must be a relative path inside the repository`},
		{wasm(filepath.Join(outside, "secret.wasm")), `must be a relative path inside the repository`},
		{wasm("adir.wasm"), `v9.toml: wasm.module "adir.wasm" is a directory, not a file`},
		{&Manifest{Runtime: RuntimeContainer, Container: ManifestContainer{Image: "x", Archive: "image.tar"}},
			`v9.toml: container.archive "image.tar" not found in the repository`},
	}
	for _, tt := range tests {
		err := CheckFiles(tt.m, dir)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%+v: %v", tt.m, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%+v: error %v, want %q", tt.m, err, tt.want)
		case tt.want != "" && !errors.Is(err, ErrBadManifest):
			t.Errorf("%v does not match ErrBadManifest", err)
		}
	}
}

func TestLoadManifest(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadManifest(dir); !errors.Is(err, ErrNoManifest) {
		t.Fatalf("empty dir: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ManifestFile), []byte(wasmHead), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadManifest(dir); err == nil || err.Error() != `v9.toml: wasm.module "hello.wasm" not found in the repository` {
		t.Fatalf("no module: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hello.wasm"), []byte("\x00asm"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := LoadManifest(dir)
	if err != nil || m.Name != "hello" {
		t.Fatalf("%+v, %v", m, err)
	}
}

func FuzzParseManifest(f *testing.F) {
	for _, s := range []string{
		"", wasmHead, containerHead,
		wasmHead + "[scale]\nmin = 0\nmax = 5\nexclusive = false\n[limits]\nmemory = \"64Mi\"\ntimeout = \"2s\"\nconcurrency = 3\n[env]\nA = \"b\"\n",
		containerHead + "command = [\"a\", \"b\"]\narchive = \"x/y.tar\"\nscale = { min = 2 }\n",
		"name = \"a\"\nruntime = \"wasm\"\nwasm.build = \"go\"\nlimits.memory = 16777216\n",
		wasmHead + "[scale]\nmaxx = 3\n",
		"[[wasm]]\nmodule = 1\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			if m != nil || !errors.Is(err, ErrBadManifest) {
				t.Fatalf("error %v with manifest %v", err, m)
			}
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("parsed manifest fails validation: %v", err)
		}
		spec := m.Spec()
		if spec.ScaleMax == 0 || spec.ScaleMin > spec.ScaleMax || spec.MemoryBytes == 0 || spec.TimeoutMs == 0 {
			t.Fatalf("spec out of range: %v", spec)
		}
		// What ParseManifest returns, written back as TOML, parses to the same manifest.
		out, err := toml.Marshal(m)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		again, err := ParseManifest(out)
		if err != nil {
			t.Fatalf("re-parse %q: %v", out, err)
		}
		if len(m.Env) == 0 {
			m.Env = nil
		}
		if len(m.Container.Command) == 0 {
			m.Container.Command = nil
		}
		if len(again.Env) == 0 {
			again.Env = nil
		}
		if len(again.Container.Command) == 0 {
			again.Container.Command = nil
		}
		if !reflect.DeepEqual(m, again) {
			t.Fatalf("round trip\n got %+v\nwant %+v\ntoml %s", again, m, out)
		}
	})
}

func TestManifestRollout(t *testing.T) {
	base := "name = \"h\"\nruntime = \"wasm\"\n[wasm]\nmodule = \"h.wasm\"\n"
	m, err := ParseManifest([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if r := m.Spec().GetRollout(); r.GetCanaryPercent() != 10 || r.GetWindowMs() != 30000 || m.Spec().GetHealthPath() != "" {
		t.Fatalf("defaults: %v health %q", r, m.Spec().GetHealthPath())
	}
	m, err = ParseManifest([]byte(base + "[rollout]\ncanary = \"0%\"\nwindow = \"2s\"\n[health]\npath = \"/ready\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r := m.Spec().GetRollout(); r.GetCanaryPercent() != 0 || r.GetWindowMs() != 2000 || m.Spec().GetHealthPath() != "/ready" {
		t.Fatalf("set: %v health %q", r, m.Spec().GetHealthPath())
	}
	for _, bad := range []string{
		"[rollout]\ncanary = \"150%\"\n", "[rollout]\ncanary = \"ten\"\n", "[rollout]\nwindow = \"2h\"\n",
		"[rollout]\nwindow = \"soon\"\n", "[health]\npath = \"ready\"\n",
	} {
		if _, err := ParseManifest([]byte(base + bad)); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}
