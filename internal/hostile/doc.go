// Package hostile is the hostile-input suite of issue 14: one case per bound a node puts on
// its doors (connections per node and per address, header and body deadlines, header and
// body size, message size, per-component queues, rate-limited logs) and the catalogue's
// other hostile inputs (malformed JSON and protobuf, out-of-range fields, invalid names,
// path traversal in bundles, bad tokens), each checking the clear status, that the node
// still answers other clients within a bound, and that no state was lost. Floods measure
// memory and file descriptors against a budget. It holds only tests; the product never
// imports it.
//
// `go test ./internal/hostile` runs the small CI version (< 60 s); `make hostile` runs the
// full 2,000-connection flood (-hostile.flood=2000). With -hostile.proxy=HOST:PORT and
// -hostile.pid=PID, TestFloodExternal floods a real `v9 agent` and reports its peak RSS.
package hostile
