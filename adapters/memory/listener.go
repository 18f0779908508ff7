package memory

import (
	"net"
	"sync"
)

// listener accepts the connections dialed to its address.
type listener struct {
	network *Network
	addr    Addr

	mu      sync.Mutex
	backlog []*conn       // dialed, not yet accepted; unbounded like a generous TCP backlog
	closed  bool          // Close was called
	arrived chan struct{} // closed when a connection arrives or the listener closes
}

var _ net.Listener = (*listener)(nil)

// Accept waits for and returns the next connection dialed to the listener.
// After Close it fails with an error wrapping net.ErrClosed.
func (l *listener) Accept() (net.Conn, error) {
	l.mu.Lock()
	for {
		if l.closed {
			l.mu.Unlock()
			return nil, &net.OpError{Op: "accept", Net: "memory", Addr: l.addr, Err: net.ErrClosed}
		}
		if len(l.backlog) > 0 {
			c := l.backlog[0]
			l.backlog[0] = nil
			l.backlog = l.backlog[1:]
			l.mu.Unlock()
			return c, nil
		}
		if l.arrived == nil {
			l.arrived = make(chan struct{})
		}
		arrived := l.arrived
		l.mu.Unlock()
		<-arrived
		l.mu.Lock()
	}
}

// enqueue offers a dialed connection; it reports false if l is closed.
func (l *listener) enqueue(c *conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.backlog = append(l.backlog, c)
	l.wake()
	return true
}

// wake releases every goroutine blocked in Accept. Called with l.mu held.
func (l *listener) wake() {
	if l.arrived != nil {
		close(l.arrived)
		l.arrived = nil
	}
}

// Close stops the listener: Accept fails, the address is free to Listen on
// again, and connections dialed but not yet accepted are reset. Closing
// again returns an error wrapping net.ErrClosed.
func (l *listener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return &net.OpError{Op: "close", Net: "memory", Addr: l.addr, Err: net.ErrClosed}
	}
	l.closed = true
	backlog := l.backlog
	l.backlog = nil
	l.wake()
	l.mu.Unlock()

	l.network.unlisten(l)
	for _, c := range backlog {
		l.network.drop(c.pair)
	}
	return nil
}

// Addr returns the address the listener was claimed with (with the port
// filled in when Listen was given port 0).
func (l *listener) Addr() net.Addr { return l.addr }
