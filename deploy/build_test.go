package deploy

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBuildGo(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles a wasm module")
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module hello\n\ngo 1.22\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() { println(\"hi\") }\n"), 0o644)
	m := &Manifest{Name: "hello", Runtime: RuntimeWasm, Wasm: ManifestWasm{Build: "go"}}
	var log bytes.Buffer
	opts := BuildOptions{Env: os.Environ()}
	mod, err := Build(context.Background(), dir, m, opts, &log)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, log.String())
	}
	b, err := os.ReadFile(filepath.Join(dir, mod))
	if err != nil || !bytes.HasPrefix(b, []byte("\x00asm")) {
		t.Fatalf("module %s: %d bytes, %v", mod, len(b), err)
	}

	os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() { undefinedThing() }\n"), 0o644)
	log.Reset()
	if _, err := Build(context.Background(), dir, m, opts, &log); !errors.Is(err, ErrBuild) || !strings.Contains(log.String(), "undefinedThing") {
		t.Fatalf("compile error: %v\n%s", err, log.String())
	}

	prebuilt := &Manifest{Name: "hello", Runtime: RuntimeWasm, Wasm: ManifestWasm{Module: "x.wasm"}}
	if mod, err := Build(context.Background(), dir, prebuilt, opts, &log); err != nil || mod != "x.wasm" {
		t.Fatalf("prebuilt: %q %v", mod, err)
	}
}
