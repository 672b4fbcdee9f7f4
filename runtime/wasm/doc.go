// Package wasm is the runtime.Executor for "wasm" components: WASI preview1 command modules
// run with wazero that speak CGI the way WAGI does, so existing WAGI modules run unchanged.
//
// # What it owns
//
// One wazero Runtime per memory limit (a RuntimeConfig's memory limit applies to the whole
// runtime, so components with different limits get different runtimes, all sharing one
// compilation cache, on disk when Config.CacheDir is set). Each module is compiled once per
// artifact digest and memory limit and shared, reference-counted, by every instance started
// from it; the last Stop closes it. An Instance is not a running process: every request gets
// a fresh, anonymously named module instance with that request's stdin, stdout and
// environment, so no state survives from one request to the next. The environment reaches
// the guest through v9's own environ_get and environ_sizes_get (the WASI preview1 functions,
// built once per request in one pass instead of through wazero's per-variable ModuleConfig
// copies), and linear memories are recycled, zeroed, from one instance to the next through
// wazero's experimental allocator hook.
//
// Start refuses, with an error matching runtime.ErrBadArtifact, a module path that leaves the
// artifact, a missing file, a file that is not WebAssembly or does not compile (for example
// a memory minimum above the limit), and a module that imports anything but
// wasi_snapshot_preview1 functions or has no _start: such modules could not serve a request.
//
// # The request protocol (WAGI / CGI 1.1)
//
// The guest's _start runs once per request. It receives:
//
//   - args: [module], the module path as named in the manifest (for example "hello.wasm");
//   - stdin: the request body, at most Spec.MaxBody or else Config.MaxRequestBytes (more is
//     413), read as it arrives (never reserved ahead from Content-Length);
//   - environment: the component's env from the manifest, then per request
//     REQUEST_METHOD, SCRIPT_NAME, PATH_INFO, PATH_TRANSLATED, QUERY_STRING, SERVER_NAME,
//     SERVER_PORT, SERVER_PROTOCOL, SERVER_SOFTWARE ("v9"), GATEWAY_INTERFACE ("CGI/1.1"),
//     REMOTE_ADDR, REMOTE_HOST, AUTH_TYPE, REMOTE_USER, CONTENT_TYPE, CONTENT_LENGTH,
//     X_FULL_URL, X_RAW_PATH_INFO, X_MATCHED_ROUTE, and HTTP_<NAME> for each request header
//     (upper case, '-' → '_', values of repeated headers joined with ", "; HTTP_HOST is the
//     request's Host). The per-request variables win over a manifest variable of the same name.
//
// SCRIPT_NAME is the prefix the proxy routed on. The proxy passes the full original path in
// the request URL and names the prefix in the X-V9-Script-Name request header ("/hello" when
// routed by the first path segment, absent or "" when routed by Host). PATH_INFO is the URL
// path with that prefix stripped ("/hello/a/b" → "/a/b"; "/hello" → ""); a path that does not
// start with the prefix is passed whole. X_MATCHED_ROUTE is SCRIPT_NAME + "/..." as WAGI
// reports wildcard routes. Request headers named X-V9-* are v9's own and never reach the
// guest; nor do header names containing '_' (as nginx drops them), which could otherwise pose
// as another header's HTTP_* variable, nor "Proxy" (no HTTP_PROXY: httpoxy).
// X_FULL_URL is rebuilt from the request (scheme https when the connection is TLS or
// X-Forwarded-Proto says so). REMOTE_ADDR is the host part of Request.RemoteAddr, so a proxy
// that forwards a request should set RemoteAddr to the client's address.
//
// The guest's clocks are the host's, its random_get reads crypto/rand, and a sleep
// (poll_oneoff on a clock) ends early when the request's deadline passes.
//
// The guest answers on stdout with CGI header lines ("Name: value"), a blank line ("\n\n" or
// "\r\n\r\n") and the body, at most Config.MaxResponseBytes in all (more is 502). "Status:
// 404 Not Found" sets the status (200-599); "Location:" without Status redirects with 302;
// other headers pass through except hop-by-hop ones and Content-Length, which v9 sets. Output
// with no header block, a malformed header line or a bad Status is 502. Each line the guest
// writes to stderr goes to the component's log (Spec.Log, stream "stderr").
//
// # Failure mapping
//
// A guest that exits 0 has answered. A nonzero exit with a valid CGI response still returns
// that response; a nonzero exit without output is 500. A trap (unreachable, out-of-bounds
// access, stack overflow) is 500. A guest still running when the timeout (Spec.Timeout or
// Config.DefaultTimeout) expires is stopped (wazero's WithCloseOnContextDone) and answered
// 504. A guest that grows memory past its limit fails its memory.grow: Go and Rust guests then
// abort, which is 500. The reason for every 5xx goes to the component's log (a line starting
// with "v9: ") and to the executor's slog logger; response bodies stay short.
//
// # What it must never do
//
// Give a guest anything beyond WASI preview1: no host functions of its own, so no network.
// The artifact directory is the guest's whole filesystem, mounted read-only at "/" through an
// os.Root, so neither "..", absolute paths nor symbolic links reach outside it (wazero's own
// directory mount does not promise that). The module path in the manifest must name a file
// inside the artifact. No guest failure may crash or wedge the node: every instance runs
// under a deadline and a memory limit, and its output is bounded.
package wasm
