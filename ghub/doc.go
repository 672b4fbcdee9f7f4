// Package ghub is v9's GitHub side: the client configuration and token, linking a component
// to a repository (branch check, webhook creation, one Raft entry for the whole outcome),
// webhook intake and HMAC verification, polling for repositories linked without a webhook,
// builds from commit tarballs into artifacts, and commit statuses.
//
// It reads the replicated state through State and writes only through Cluster.Apply (the
// Raft leader); builds, polling and linking act only while the node leads. The node wires
// it (node/github.go); ghub never imports node, and never trusts a webhook delivery before
// its signature checks out against the secret of a linked repository. Of a verified delivery
// it decodes only ping and push; any other event is answered 202 ignored once it is JSON.
// Refusals anyone can provoke (bad signature, no linked repository) are logged rate-limited,
// never once per delivery. It does not parse
// manifests or archives itself: that is package deploy's.
package ghub
