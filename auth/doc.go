// Package auth owns identity and access on a v9 cluster: API tokens (secrets, hashes,
// accessor ids), the principal a request acts as, the table that gives every Connect
// procedure the role it needs and the interceptor that enforces it, the cluster CA and node
// certificates, and TLS configurations that reload certificates from disk.
//
// It decides who may do what; it never changes state itself (token writes go through the
// node's Raft Apply like every write) and never imports node. Secrets are never logged.
package auth
