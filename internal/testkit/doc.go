// Package testkit is what the tests of several packages share to drive real clusters:
// Eventually (a condition re-checked on events, not on a tight poll), a slog handler that
// writes to the test's log, a buffer safe to read while another goroutine writes it, and an
// HTTP client that carries a token. Product code never
// imports it.
package testkit
