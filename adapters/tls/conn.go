package tls

import (
	ctls "crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"time"
)

// conn is the client side of a TLS connection, as Dial returns it. Every
// method but those below is the embedded *ctls.Conn's, ConnectionState
// included.
//
// Write deadlines are kept here rather than on the socket: a crypto/tls
// Write that times out part-way through a record leaves the stream corrupt
// for good, whereas ports.Conn requires a connection to work again once a
// deadline is lifted. So each Write hands a copy of its bytes to a
// goroutine that writes whole records with no socket deadline, and returns
// when that is done or when the deadline passes, whichever is first; a
// timed-out write still completes later, in order. Read deadlines are the
// socket's: crypto/tls recovers from a read timeout.
type conn struct {
	*ctls.Conn

	wmu sync.Mutex // serialises Writes

	mu       sync.Mutex
	deadline time.Time     // write deadline
	changed  chan struct{} // closed and replaced when deadline changes
	closed   chan struct{} // closed by Close
	pending  chan struct{} // closed when the last background write ends
	once     sync.Once
}

// newConn wraps a client connection whose handshake is complete.
func newConn(c *ctls.Conn) *conn {
	done := make(chan struct{})
	close(done)
	return &conn{Conn: c, changed: make(chan struct{}), closed: make(chan struct{}), pending: done}
}

// Read reads from the TLS connection. Errors pass through unchanged (so
// io.EOF and timeouts keep their identity) except a broker's rejection of
// the client certificate, which also wraps ErrClientCertificateRequired.
func (c *conn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err != nil && rejectsClientCertificate(err) {
		err = fmt.Errorf("tls: read: %w: %w", ErrClientCertificateRequired, err)
	}
	return n, err
}

// Write writes b as TLS records, honouring the write deadline (see conn).
func (c *conn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	// Wait for a write that timed out earlier, so records stay in order.
	if err := c.await(func() <-chan struct{} { return c.pending }); err != nil {
		return 0, err
	}
	done := make(chan struct{})
	var (
		n   int
		err error
	)
	buf := slices.Clone(b)
	c.mu.Lock()
	c.pending = done
	c.mu.Unlock()
	go func() {
		defer close(done)
		n, err = c.Conn.Write(buf)
	}()
	if werr := c.await(func() <-chan struct{} { return done }); werr != nil {
		return 0, werr
	}
	return n, err
}

// await waits until the channel that ch returns is closed, the write
// deadline passes or the connection is closed; it returns nil only in the
// first case. A deadline already past wins over a closed channel, as for a
// net.Conn.
func (c *conn) await(ch func() <-chan struct{}) error {
	for {
		c.mu.Lock()
		deadline, changed, wait := c.deadline, c.changed, ch()
		c.mu.Unlock()
		var (
			expired <-chan time.Time
			timer   *time.Timer
		)
		if !deadline.IsZero() {
			d := time.Until(deadline)
			if d <= 0 {
				return c.opError(os.ErrDeadlineExceeded)
			}
			timer = time.NewTimer(d)
			expired = timer.C
		}
		var err error
		select {
		case <-wait:
		case <-c.closed:
			err = c.opError(net.ErrClosed)
		case <-expired:
			err = c.opError(os.ErrDeadlineExceeded)
		case <-changed:
			err = errDeadlineChanged
		}
		if timer != nil {
			timer.Stop()
		}
		if err != errDeadlineChanged {
			return err
		}
	}
}

// errDeadlineChanged makes await look at the new write deadline.
var errDeadlineChanged = errors.New("deadline changed")

// opError is err as the net package reports a failed write.
func (c *conn) opError(err error) error {
	return &net.OpError{Op: "write", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// SetDeadline sets the read and write deadlines.
func (c *conn) SetDeadline(t time.Time) error {
	if err := c.Conn.SetReadDeadline(t); err != nil {
		return err
	}
	c.setWriteDeadline(t)
	return nil
}

// SetWriteDeadline sets the write deadline; it applies to pending Writes.
func (c *conn) SetWriteDeadline(t time.Time) error {
	select {
	case <-c.closed:
		return c.opError(net.ErrClosed)
	default:
	}
	c.setWriteDeadline(t)
	return nil
}

// setWriteDeadline records t and wakes the Write waiting on the old one.
func (c *conn) setWriteDeadline(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	close(c.changed)
	c.changed = make(chan struct{})
}

// Close closes the connection, ending pending Reads and Writes. Later calls
// return crypto/tls's error for a closed connection.
func (c *conn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}
