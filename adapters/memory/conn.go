package memory

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// conn is one endpoint of a connection on a Network.
type conn struct {
	network       *Network
	pair          *pair
	local, remote Addr
	in, out       *pipe // in: the peer writes, we read; out: we write, the peer reads

	readDeadline, writeDeadline deadline

	closeOnce sync.Once
}

var _ net.Conn = (*conn)(nil)

// Read reads bytes the peer wrote. It returns io.EOF once the peer has
// closed and every byte it wrote has been read, unless the close was lost
// to a half-open network (Network.SetHalfOpen).
func (c *conn) Read(b []byte) (int, error) {
	p := c.in
	p.mu.Lock()
	for {
		switch {
		case p.readerClosed:
			p.mu.Unlock()
			return 0, c.opError("read", net.ErrClosed)
		case p.reset:
			p.mu.Unlock()
			return 0, c.opError("read", ErrReset)
		case c.readDeadline.expired():
			p.mu.Unlock()
			return 0, c.opError("read", os.ErrDeadlineExceeded)
		case len(b) == 0:
			p.mu.Unlock()
			return 0, nil
		}
		avail, due := p.readable()
		if avail > 0 {
			n, _ := p.buf.Read(b[:min(len(b), avail)])
			p.read += int64(n)
			p.wakeWriters()
			p.mu.Unlock()
			return n, nil
		}
		if p.writerClosed && !p.finLost && p.buf.Len() == 0 {
			p.mu.Unlock()
			return 0, io.EOF
		}
		more := p.readerChan()
		p.mu.Unlock()

		var delivery <-chan time.Time
		var timer *time.Timer
		if !due.IsZero() {
			timer = time.NewTimer(time.Until(due))
			delivery = timer.C
		}
		select {
		case <-more:
		case <-c.readDeadline.wait():
		case <-delivery:
		}
		if timer != nil {
			timer.Stop()
		}
		p.mu.Lock()
	}
}

// Write queues b for the peer. It returns once every byte is buffered,
// blocking only while the direction holds BufferSize unread bytes. On a
// half-open network (Network.SetHalfOpen) it discards b and succeeds.
func (c *conn) Write(b []byte) (int, error) {
	p := c.out
	var n int
	p.mu.Lock()
	for {
		switch {
		case p.writerClosed:
			p.mu.Unlock()
			return n, c.opError("write", net.ErrClosed)
		case p.reset:
			p.mu.Unlock()
			return n, c.opError("write", ErrReset)
		case c.writeDeadline.expired():
			p.mu.Unlock()
			return n, c.opError("write", os.ErrDeadlineExceeded)
		case c.network.swallowing():
			// Accepted, never delivered; not even a peer that closed
			// can say so, its RST being lost too.
			p.mu.Unlock()
			return len(b), nil
		case p.readerClosed:
			p.mu.Unlock()
			return n, c.opError("write", syscall.EPIPE)
		case n == len(b):
			p.mu.Unlock()
			return n, nil
		}
		if space := BufferSize - p.buf.Len(); space > 0 {
			k := min(space, len(b)-n)
			var at time.Time
			if d := c.network.delay(); d > 0 {
				at = time.Now().Add(d)
			}
			p.push(b[n:n+k], at)
			n += k
			p.wakeReaders()
			continue
		}
		more := p.writerChan()
		p.mu.Unlock()
		select {
		case <-more:
		case <-c.writeDeadline.wait():
		}
		p.mu.Lock()
	}
}

// Close closes this endpoint: its pending and later Reads and Writes fail
// with net.ErrClosed, the peer reads what was already written and then
// io.EOF, and the peer's Writes fail with syscall.EPIPE. On a half-open
// network the peer is not told (see Network.SetHalfOpen). Closing again
// returns net.ErrClosed.
func (c *conn) Close() error {
	closed := false
	c.closeOnce.Do(func() {
		closed = true
		c.in.mu.Lock()
		c.in.readerClosed = true
		c.in.discard()
		c.in.wakeReaders()
		c.in.wakeWriters()
		c.in.mu.Unlock()

		c.out.mu.Lock()
		c.out.writerClosed = true
		c.out.finLost = c.network.swallowing()
		c.out.wakeReaders()
		c.out.wakeWriters()
		c.out.mu.Unlock()

		c.readDeadline.stop()
		c.writeDeadline.stop()
		c.network.endClosed(c.pair)
	})
	if !closed {
		return c.opError("close", net.ErrClosed)
	}
	return nil
}

// reset drops the connection under this endpoint without closing it:
// Reads and Writes fail with ErrReset until Close.
func (c *conn) reset() {
	for _, p := range [...]*pipe{c.in, c.out} {
		p.mu.Lock()
		p.reset = true
		p.discard()
		p.wakeReaders()
		p.wakeWriters()
		p.mu.Unlock()
	}
}

// LocalAddr returns this endpoint's address.
func (c *conn) LocalAddr() net.Addr { return c.local }

// RemoteAddr returns the peer's address.
func (c *conn) RemoteAddr() net.Addr { return c.remote }

// SetDeadline sets both the read and the write deadline.
func (c *conn) SetDeadline(t time.Time) error {
	c.readDeadline.set(t)
	c.writeDeadline.set(t)
	return nil
}

// SetReadDeadline sets the deadline for pending and future Reads.
func (c *conn) SetReadDeadline(t time.Time) error {
	c.readDeadline.set(t)
	return nil
}

// SetWriteDeadline sets the deadline for pending and future Writes.
func (c *conn) SetWriteDeadline(t time.Time) error {
	c.writeDeadline.set(t)
	return nil
}

func (c *conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "memory", Source: c.local, Addr: c.remote, Err: err}
}
