//go:build !race

package node

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDataPlaneConsoleSessionNeverReachesComponent: a browser signed in to the console
// sends its session cookie to the proxy's port too (cookies ignore ports), and a client may
// send its v9 token: through a node's proxy, a component's environment holds neither, while
// the component's own cookie arrives.
func TestDataPlaneConsoleSessionNeverReachesComponent(t *testing.T) {
	bin, err := buildExample("../examples/wasm-guests/cgi")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cgi.wasm"), bin, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "v9.toml"), []byte("name = \"cgi\"\nruntime = \"wasm\"\n[wasm]\nmodule = \"cgi.wasm\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := NewTestCluster(t, 1)
	mustUpload(t, c.Nodes[0], dir)
	var env string
	Eventually(t, 60*time.Second, func() error {
		req, _ := http.NewRequest("GET", "http://"+c.Nodes[0].ProxyAddr()+"/cgi/env", nil)
		req.Header.Set("Cookie", "theme=dark; v9_session=v9s_victim_session; __Host-v9_session=v9s_victim_host")
		req.Header.Set("Authorization", "Bearer v9s_victim_token")
		resp, err := plainHTTP.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return fmt.Errorf("GET /cgi/env: %d %q", resp.StatusCode, b)
		}
		env = string(b)
		return nil
	})
	if strings.Contains(env, "victim") {
		t.Fatalf("the component saw v9's credentials:\n%s", env)
	}
	if !strings.Contains(env, "HTTP_COOKIE=theme=dark\n") {
		t.Fatalf("the component's own cookie did not arrive:\n%s", env)
	}
}
