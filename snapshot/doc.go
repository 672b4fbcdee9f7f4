// Package snapshot owns the format of an operator snapshot (`v9 operator snapshot save` and
// `restore`, modelled on Nomad's and Consul's): a gzipped tar holding a manifest, the whole
// replicated state as fsm encodes it, and every artifact the state's deployments reference,
// by digest. Write produces one; Read checks one, hands each artifact to its caller and
// returns the state.
//
// It reads and writes streams only: it never touches Raft, the disk or the network, and
// Read trusts nothing in an archive (sizes are bounded, names and digests checked, every
// referenced artifact must be present).
package snapshot
