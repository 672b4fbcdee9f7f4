// Package server holds v9's Connect service handlers. A handler validates its request,
// turns it into a replicated-state Command or a read of the fsm, and maps errors to Connect
// codes with messages fit for a user. It owns no state and never talks to Raft directly: the
// node behind it does, through the small interfaces declared here.
package server
