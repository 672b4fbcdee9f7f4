package deploy

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/velocity9/v9/spec"
)

// manifestKeys lists the dotted TOML keys of t (tables and their keys), from the struct tags.
func manifestKeys(prefix string, t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "" || name == "-" {
			continue
		}
		key := prefix + name
		keys = append(keys, key)
		if f.Type.Kind() == reflect.Struct {
			keys = append(keys, manifestKeys(key+".", f.Type)...)
		}
	}
	return keys
}

// TestManifestReference checks docs/v9toml.md against the manifest code: a row for every
// key of Manifest (found by reflection on its toml tags) and of keyTypes, the defaults and
// bounds the code applies written in their rows, and the example manifests parse.
func TestManifestReference(t *testing.T) {
	b, err := os.ReadFile("../docs/v9toml.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	rows := map[string]string{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z.]+)` \\|(.*)$").FindAllStringSubmatch(doc, -1) {
		rows[m[1]] = m[2]
	}
	keys := manifestKeys("", reflect.TypeOf(Manifest{}))
	if len(keys) < 10 {
		t.Fatalf("found only %d manifest keys by reflection: %v", len(keys), keys)
	}
	for _, k := range keys {
		if _, ok := rows[k]; !ok {
			t.Errorf("docs/v9toml.md: no row for key %q of the manifest", k)
		}
	}
	for k := range keyTypes {
		if _, ok := rows[k]; !ok {
			t.Errorf("docs/v9toml.md: no row for key %q (keyTypes)", k)
		}
	}
	for k := range rows {
		if _, ok := keyTypes[k]; !ok {
			t.Errorf("docs/v9toml.md documents key %q, which the manifest does not have", k)
		}
	}

	// Defaults and bounds, as the code has them.
	want := map[string][]string{
		"limits.memory":      {"`" + DefaultMemory + "`", "`" + spec.FormatMemory(spec.MinMemory) + "`", "`" + spec.FormatMemory(spec.MaxMemory) + "`"},
		"limits.timeout":     {"`" + DefaultTimeout + "`", "`" + shortDuration(spec.MaxTimeout) + "`"},
		"limits.concurrency": {"`" + strconv.Itoa(DefaultConcurrency) + "`", "`" + strconv.Itoa(spec.MaxConcurrency) + "`"},
		"scale.max":          {"`" + strconv.Itoa(spec.MaxScale) + "`"},
		"env":                {"`" + spec.ReservedEnvPrefix + "`"},
		"wasm.build":         {"`\"go\"`"},
		"runtime":            {"`\"" + RuntimeWasm + "\"`", "`\"" + RuntimeContainer + "\"`"},
		"rollout.canary":     {fmt.Sprintf("`\"%d%%\"`", spec.DefaultCanaryPercent)},
		"rollout.window":     {"`\"" + spec.DefaultCanaryWindow.String() + "\"`", "`" + shortDuration(spec.MaxCanaryWindow) + "`"},
	}
	for k, subs := range want {
		for _, s := range subs {
			if !strings.Contains(rows[k], s) {
				t.Errorf("docs/v9toml.md: the row of %s does not say %s", k, s)
			}
		}
	}
	lo, hi := spec.DefaultScale(false, false, 0, 0)
	if !strings.Contains(rows["scale.min"], "`"+strconv.Itoa(int(lo))+"`") || !strings.Contains(rows["scale.max"], "`"+strconv.Itoa(int(hi))+"`") {
		t.Errorf("docs/v9toml.md: scale defaults are %d and %d", lo, hi)
	}

	// Every TOML example parses.
	blocks := regexp.MustCompile("(?s)```toml\n(.*?)```").FindAllStringSubmatch(doc, -1)
	if len(blocks) < 2 {
		t.Fatalf("docs/v9toml.md: want the wasm and container examples, found %d toml blocks", len(blocks))
	}
	for _, blk := range blocks {
		if _, err := ParseManifest([]byte(blk[1])); err != nil {
			t.Errorf("docs/v9toml.md example does not parse: %v\n%s", err, blk[1])
		}
	}
}

// shortDuration prints 15m0s as 15m.
func shortDuration(d time.Duration) string {
	s := d.String()
	s = strings.TrimSuffix(s, "0s")
	return strings.TrimSuffix(s, "0m")
}

// TestExampleManifests parses the v9.toml of every example.
func TestExampleManifests(t *testing.T) {
	files, err := filepath.Glob("../examples/*/v9.toml")
	if err != nil || len(files) < 3 {
		t.Fatalf("want the examples' manifests, found %v (%v)", files, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseManifest(b); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}
