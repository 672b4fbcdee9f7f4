// Package examples holds v9's example components (each in its own directory, with its own
// README) and embeds the one `v9 dev` deploys on a new cluster, hello-wasm, so that an
// installed binary can deploy it without the repository. It only carries files; it never
// builds or deploys anything itself.
package examples

import "embed"

// HelloWasm is the source of examples/hello-wasm: main.go and v9.toml under
// "hello-wasm/".
//
//go:embed hello-wasm/main.go hello-wasm/v9.toml
var HelloWasm embed.FS
