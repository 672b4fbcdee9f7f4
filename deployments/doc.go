// Package deployments answers a node's deployment procedures: uploads (store the bundle,
// check its manifest, create or update the component, commit and activate a deployment),
// the history of a component's deployments, watching one roll out, rollback and build logs.
//
// It writes only through the Writer it is given (the node's path to the leader) and reads
// this node's fsm replica; it never imports node and never touches Raft itself.
package deployments
