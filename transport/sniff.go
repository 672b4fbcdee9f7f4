package transport

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// tlsHandshakeByte starts every TLS connection (a handshake record); no HTTP request does.
const tlsHandshakeByte = 0x16

// sniffTimeout bounds how long a new connection may stay silent before its first byte.
const sniffTimeout = 10 * time.Second

// SniffListener serves plain and TLS connections on one port: the API port answers users
// in plain HTTP (or TLS) and other nodes in mutual TLS. It reads the first byte of each
// connection, off the Accept path, and hands TLS connections out wrapped in tls.Server.
type SniffListener struct {
	ln    net.Listener
	cfg   *tls.Config
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

// NewSniffListener serves ln's connections, TLS ones through cfg.
func NewSniffListener(ln net.Listener, cfg *tls.Config) *SniffListener {
	l := &SniffListener{ln: ln, cfg: cfg, conns: make(chan net.Conn), done: make(chan struct{})}
	go l.loop()
	return l
}

func (l *SniffListener) loop() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			l.once.Do(func() { close(l.done) })
			return
		}
		go l.classify(c)
	}
}

func (l *SniffListener) classify(c net.Conn) {
	var b [1]byte
	_ = c.SetReadDeadline(time.Now().Add(sniffTimeout))
	if _, err := io.ReadFull(c, b[:]); err != nil {
		c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	var out net.Conn = &peekedConn{Conn: c, first: b[0], has: true}
	if b[0] == tlsHandshakeByte {
		out = tls.Server(out, l.cfg)
	}
	select {
	case l.conns <- out:
	case <-l.done:
		out.Close()
	}
}

// Accept returns the next connection, TLS ones already wrapped.
func (l *SniffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close closes the listener.
func (l *SniffListener) Close() error {
	err := l.ln.Close()
	l.once.Do(func() { close(l.done) })
	return err
}

// Addr is the listener's address.
func (l *SniffListener) Addr() net.Addr { return l.ln.Addr() }

// peekedConn gives back the byte the listener read first.
type peekedConn struct {
	net.Conn
	first byte
	has   bool
}

func (c *peekedConn) Read(p []byte) (int, error) {
	if c.has && len(p) > 0 {
		p[0] = c.first
		c.has = false
		return 1, nil
	}
	return c.Conn.Read(p)
}
