package bounds

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Reject is what a Listener does with a connection over a bound before closing it: write a
// short refusal (an HTTP 429/503), or nothing. perAddr says which bound was hit: the
// client's own (true) or the node's (false). It runs on its own goroutine, a bounded number
// at once; it must return within a second or so.
type Reject func(c net.Conn, perAddr bool)

// Listener bounds the connections a net.Listener hands out: at most Max at once in all and
// MaxPerAddr from one client IP address (0: unbounded). A connection over either bound is
// given to Reject (if any) and closed; Accept goes on with the next one.
type Listener struct {
	net.Listener
	max, perAddr int
	reject       Reject

	mu     sync.Mutex
	open   int
	byAddr map[string]int

	refused   atomic.Uint64
	rejecting chan struct{} // bounds the goroutines writing refusals
}

// maxRejecting bounds the refusals written at once; past it, connections are just closed.
const maxRejecting = 64

// NewListener wraps ln.
func NewListener(ln net.Listener, max, perAddr int, reject Reject) *Listener {
	return &Listener{
		Listener: ln, max: max, perAddr: perAddr, reject: reject,
		byAddr: map[string]int{}, rejecting: make(chan struct{}, maxRejecting),
	}
}

// Accept returns the next connection within the bounds.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		addr := hostOf(c.RemoteAddr())
		l.mu.Lock()
		overNode := l.max > 0 && l.open >= l.max
		overAddr := l.perAddr > 0 && l.byAddr[addr] >= l.perAddr
		if !overNode && !overAddr {
			l.open++
			l.byAddr[addr]++
			l.mu.Unlock()
			return &countedConn{Conn: c, l: l, addr: addr}, nil
		}
		l.mu.Unlock()
		l.refused.Add(1)
		l.turnAway(c, overAddr)
	}
}

func (l *Listener) turnAway(c net.Conn, perAddr bool) {
	if l.reject == nil {
		c.Close()
		return
	}
	select {
	case l.rejecting <- struct{}{}:
	default:
		c.Close() // too many refusals being written already
		return
	}
	go func() {
		defer func() { <-l.rejecting }()
		_ = c.SetDeadline(time.Now().Add(time.Second))
		l.reject(c, perAddr)
		c.Close()
	}()
}

// Open returns the connections open now, in all and from addr's IP.
func (l *Listener) Open(addr string) (total, fromAddr int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open, l.byAddr[addr]
}

// Refused counts the connections turned away so far.
func (l *Listener) Refused() uint64 { return l.refused.Load() }

func (l *Listener) release(addr string) {
	l.mu.Lock()
	l.open--
	if l.byAddr[addr]--; l.byAddr[addr] <= 0 {
		delete(l.byAddr, addr)
	}
	l.mu.Unlock()
}

// hostOf is the IP of a remote address ("" when it has none, as for a pipe).
func hostOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	if a == nil {
		return ""
	}
	if h, _, err := net.SplitHostPort(a.String()); err == nil {
		return h
	}
	return a.String()
}

// countedConn gives its place back when closed (once, whoever closes it).
type countedConn struct {
	net.Conn
	l    *Listener
	addr string
	once sync.Once
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.addr) })
	return err
}
