package bounds

import (
	"net"
	"strconv"
)

// tlsHandshakeByte starts every TLS connection; no HTTP request does.
const tlsHandshakeByte = 0x16

// RejectHTTP answers a plain HTTP/1 client over a bound with 429 (its own address holds too
// many connections) or 503 (the node does), both with Retry-After, having read what the
// client sent first so that closing does not reset the connection under the answer. A TLS
// or HTTP/2 client is just closed: it sees a connection error and retries.
func RejectHTTP(retryAfterSeconds int) Reject {
	return func(c net.Conn, perAddr bool) {
		buf := make([]byte, 4<<10)
		n, _ := c.Read(buf)
		if n == 0 || buf[0] == tlsHandshakeByte || string(buf[:min(n, 3)]) == "PRI" {
			return
		}
		status, msg := "503 Service Unavailable", "v9: this node has too many open connections; retry later\n"
		if perAddr {
			status, msg = "429 Too Many Requests", "v9: too many open connections from your address; retry later\n"
		}
		_, _ = c.Write([]byte("HTTP/1.1 " + status + "\r\nRetry-After: " + strconv.Itoa(retryAfterSeconds) +
			"\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: " +
			strconv.Itoa(len(msg)) + "\r\n\r\n" + msg))
		if tc, ok := c.(interface{ CloseWrite() error }); ok {
			_ = tc.CloseWrite()
		}
	}
}
