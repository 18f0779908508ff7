package pulsarconn

import (
	"sync"
	"sync/atomic"

	"github.com/pulsarconn/pulsarconn/ports"
)

// connection is one established transport connection and its writer.
//
// Writes are queued by appending to pending under wmu and signalling the
// writer goroutine, which swaps pending with its spare buffer and writes
// everything queued in one call: under load many frames go out per system
// call, and no caller ever blocks on the network.
type connection struct {
	gen  uint64
	conn ports.Conn

	wmu     sync.Mutex
	pending []byte
	spare   []byte
	closed  bool
	signal  chan struct{} // capacity 1: "pending is not empty, or closed"
}

// maxSpare is the largest write buffer kept for reuse.
const maxSpare = 1 << 20

func newConnection(gen uint64, c ports.Conn) *connection {
	return &connection{gen: gen, conn: c, signal: make(chan struct{}, 1)}
}

// enqueue copies p into the write queue.
func (c *connection) enqueue(p []byte) error {
	c.wmu.Lock()
	if c.closed {
		c.wmu.Unlock()
		return ErrDisconnected
	}
	c.pending = append(c.pending, p...)
	c.wmu.Unlock()
	c.wake()
	return nil
}

func (c *connection) wake() {
	select {
	case c.signal <- struct{}{}:
	default:
	}
}

// close stops the writer and closes the transport connection, which also
// ends the reader. Safe to call more than once.
func (c *connection) close() {
	c.wmu.Lock()
	already := c.closed
	c.closed = true
	c.wmu.Unlock()
	if !already {
		c.wake()
		// Close can take a while on some transports (TLS sends an
		// alert), but never blocks indefinitely on ours; calling it
		// here keeps the reader's end prompt and ordered.
		_ = c.conn.Close()
	}
}

// writeLoop writes queued bytes until the connection is closed or a write
// fails; failed is told of a failure on a connection not closed by us.
func (c *connection) writeLoop(wg *sync.WaitGroup, failed func(gen uint64, err error), written *atomic.Uint64) {
	defer wg.Done()
	for range c.signal {
		c.wmu.Lock()
		buf := c.pending
		c.pending = c.spare[:0]
		closed := c.closed
		c.wmu.Unlock()
		if closed {
			return
		}
		if len(buf) > 0 {
			n, err := c.conn.Write(buf)
			written.Add(uint64(n))
			if err != nil {
				c.wmu.Lock()
				closedByUs := c.closed
				c.wmu.Unlock()
				if !closedByUs {
					failed(c.gen, err)
				}
				return
			}
		}
		// pending now uses the old spare, so buf is the free one. A
		// buffer grown by a burst is not kept beyond maxSpare.
		c.wmu.Lock()
		if cap(buf) <= maxSpare {
			c.spare = buf[:0]
		} else {
			c.spare = nil
		}
		c.wmu.Unlock()
	}
}
