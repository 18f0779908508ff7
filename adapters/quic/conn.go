package quic

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	quicgo "github.com/quic-go/quic-go"
)

// ErrPeerClosed is the cause wrapped by a Write that fails because the peer
// closed the QUIC connection.
var ErrPeerClosed = errors.New("quic: connection closed by peer")

// Conn is one Pulsar connection over QUIC: a net.Conn over the single
// bidirectional stream of a QUIC connection. All its methods are safe for
// concurrent use.
//
// Read returns io.EOF once the peer has closed its end and everything it
// wrote was read. Close makes pending and later calls fail with an error
// wrapping net.ErrClosed; it sends the data written so far and a FIN, then,
// in the background, discards what the peer still sends until the peer
// closes its end too (or the linger time passes) and closes the QUIC
// connection. Deadlines apply to the stream: an expired one fails calls
// with an error wrapping os.ErrDeadlineExceeded whose Timeout method
// reports true.
type Conn struct {
	qc     *quicgo.Conn
	s      *quicgo.Stream
	linger time.Duration // 0: none
	// release, if not nil, is called once the QUIC connection is closed:
	// the listener that accepted the Conn counts the ones still open.
	release func()

	// rmu and wmu admit one Read and one Write at a time, as the stream
	// expects (as the net package's own conns do); wmu also keeps Write
	// and the stream's Close apart, which quic-go requires.
	rmu, wmu sync.Mutex

	// mu orders Close with deadline changes, so no deadline set after Close
	// can revive a call that Close unblocked.
	mu     sync.Mutex
	closed atomic.Bool
	// peerDone is set once Read saw the peer's FIN.
	peerDone atomic.Bool
}

var _ net.Conn = (*Conn)(nil)

func newConn(qc *quicgo.Conn, s *quicgo.Stream, linger time.Duration, release func()) *Conn {
	return &Conn{qc: qc, s: s, linger: linger, release: release}
}

// aLongTimeAgo is a deadline that has always passed: it unblocks calls.
var aLongTimeAgo = time.Unix(1, 0)

// Read reads from the stream.
func (c *Conn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.closed.Load() {
		return 0, c.opError("read", net.ErrClosed)
	}
	n, err := c.s.Read(p)
	if err != nil {
		if errors.Is(err, io.EOF) {
			c.peerDone.Store(true)
		}
		err = c.mapError("read", err)
	}
	return n, err
}

// Write writes to the stream. It returns when p is queued for sending, or
// fails when the deadline passes, the Conn is closed, or the peer closes the
// connection.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed.Load() {
		return 0, c.opError("write", net.ErrClosed)
	}
	n, err := c.s.Write(p)
	if err != nil {
		err = c.mapError("write", err)
	}
	return n, err
}

// Close closes the Conn: see the type's comment. A second Close returns an
// error wrapping net.ErrClosed.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed.Load() {
		c.mu.Unlock()
		return c.opError("close", net.ErrClosed)
	}
	c.closed.Store(true)
	_ = c.s.SetDeadline(aLongTimeAgo) // unblock Read and Write in progress
	c.mu.Unlock()

	// The FIN follows what was written. Stream.Close fails only when the
	// connection is gone already, which is no failure of this Close.
	c.wmu.Lock()
	_ = c.s.Close()
	c.wmu.Unlock()

	if c.peerDone.Load() || c.linger == 0 {
		// The peer closed its end first, so it reads no more: nothing is
		// lost by closing the connection now.
		c.closeConnection()
		return nil
	}
	go c.lingerThenClose()
	return nil
}

// lingerThenClose keeps the connection open until the peer closes its end
// (its FIN, or its closing of the connection) or the linger time passes, so
// that what was written before Close is delivered: closing a QUIC
// connection discards the data the peer has not yet read. What the peer
// sends meanwhile is discarded, as nobody will read it.
func (c *Conn) lingerThenClose() {
	// Wait for a Read in progress to give up (Close made it time out); any
	// later Read sees closed and returns without touching the stream, so
	// from now on this goroutine is its only reader.
	c.rmu.Lock()
	//lint:ignore SA2001 an empty critical section is the barrier
	c.rmu.Unlock()
	_ = c.s.SetReadDeadline(time.Now().Add(c.linger))
	buf := make([]byte, 4096)
	for {
		if _, err := c.s.Read(buf); err != nil {
			break
		}
	}
	c.closeConnection()
}

// closeConnection closes the QUIC connection, which the peer sees as the
// end of the stream too, and releases it.
func (c *Conn) closeConnection() {
	_ = c.qc.CloseWithError(0, "")
	if c.release != nil {
		c.release()
	}
}

// LocalAddr returns the local UDP address.
func (c *Conn) LocalAddr() net.Addr { return c.qc.LocalAddr() }

// RemoteAddr returns the peer's UDP address.
func (c *Conn) RemoteAddr() net.Addr { return c.qc.RemoteAddr() }

// SetDeadline sets the read and write deadlines. It fails after Close.
func (c *Conn) SetDeadline(t time.Time) error {
	return c.setDeadline(t, c.s.SetDeadline)
}

// SetReadDeadline sets the deadline for pending and future Reads. It fails
// after Close.
func (c *Conn) SetReadDeadline(t time.Time) error {
	return c.setDeadline(t, c.s.SetReadDeadline)
}

// SetWriteDeadline sets the deadline for pending and future Writes. It
// fails after Close.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	return c.setDeadline(t, c.s.SetWriteDeadline)
}

func (c *Conn) setDeadline(t time.Time, set func(time.Time) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return c.opError("set deadline", net.ErrClosed)
	}
	return set(t)
}

// mapError turns a quic-go error into what a net.Conn returns: net.ErrClosed
// after Close, a bare io.EOF on Read once the peer closed (its FIN, or its
// closing of the connection without an error code), ErrPeerClosed on Write
// in the latter case, and a *net.OpError wrapping the cause otherwise.
func (c *Conn) mapError(op string, err error) error {
	if c.closed.Load() {
		return c.opError(op, net.ErrClosed)
	}
	if op == "read" && errors.Is(err, io.EOF) {
		return io.EOF
	}
	var appErr *quicgo.ApplicationError
	if errors.As(err, &appErr) && appErr.Remote && appErr.ErrorCode == 0 {
		if op == "read" {
			c.peerDone.Store(true)
			return io.EOF
		}
		err = ErrPeerClosed
	}
	return c.opError(op, err)
}

func (c *Conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "quic", Source: c.qc.LocalAddr(), Addr: c.qc.RemoteAddr(), Err: err}
}
