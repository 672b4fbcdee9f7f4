// Package keyring owns the cluster keyring: the AES-256-GCM root keys that seal component
// secrets (and other secrets of the replicated state) before their commands enter Raft.
//
// Each node keeps the keys it holds in one file of its data dir (0600). Keys move between
// nodes only over mTLS (InternalService.Keys, node certificates only); they must never be
// written to the Raft log, a snapshot or a log line. The package does no networking itself:
// Cluster (seal and open secrets, make the first key on the leader, fetch keys a node lacks)
// reaches the other nodes only through the Peers interface that node implements.
package keyring
