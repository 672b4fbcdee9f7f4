// Package bounds puts limits on a node's doors, so that one abusive client never takes a
// node down: a listener that counts open connections in all and per client address and
// turns away those over either bound (listener.go), the timeouts and header bound of an
// HTTP server with a deadline on reading each request body (server.go).
//
// It owns no policy of its own beyond the defaults (sized for a 2-core node, see Defaults):
// callers pass the bounds in. It never logs per connection: refusals are counted
// (Refused), never written out one by one.
package bounds
