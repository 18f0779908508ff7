package engine

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/pulsarconn/pulsarconn/core"
	"github.com/pulsarconn/pulsarconn/ports"
	"github.com/pulsarconn/pulsarconn/proto/frame"
)

// connection is one established transport connection and its writer.
//
// Writes are queued by appending to pending under wmu. A writer goroutine
// runs only while there is something to write: the first frame queued on
// an empty, writer-less queue starts one, and it writes everything queued
// in one call, again and again, until it finds the queue empty and exits.
// Under load many frames go out per system call, no caller ever blocks on
// the network, and an idle connection holds no writer goroutine (its stack
// was a fifth of an idle Broker's memory).
//
// The queue is bounded in bytes (WithWriteQueueLimit) without ever
// blocking under a lock: tryEnqueue refuses a frame that does not fit and
// hands back a channel that the writer closes when it takes a batch, and
// the caller waits on it after releasing the engine's lock. The
// connection's own commands go through enqueue, which takes them whatever
// the fill: the core's Output (CONNECT, CLOSE_*: one per connection or
// registration) into the queue, and its Latest frames (PING, PONG,
// AUTH_RESPONSE) into one slot per kind, written after the queue, where a
// newer frame replaces one not yet taken by the writer. However many PINGs
// or challenges a broker that stops reading sends, it holds one PONG and
// one AUTH_RESPONSE waiting, besides those of the write in progress.
type connection struct {
	gen   uint64
	conn  ports.Conn
	limit int // bytes; <= 0: unbounded

	// queued counts the bytes in pending, waiting for the writer. It
	// changes only under wmu, and is read without it for the cheap "is
	// the queue full?" test of Send and Request. The write in progress is
	// not counted: while the writer sends one batch, callers fill the
	// next, so at most twice the limit is held.
	queued atomic.Int64

	wmu     sync.Mutex
	pending []byte
	latest  [len(core.Ready{}.Latest)][]byte // core.Ready.Latest's frames, written after pending
	spare   []byte
	closed  bool
	writing bool // a writer goroutine runs (or a write failed: no new writer starts)

	// gate is the publish gate, the one copy of "may a publish bypass the
	// engine's lock, and up to what frame size": the largest frame when
	// open, 0 when shut. It lets PublishMessage queue a frame without the
	// engine's lock (tryPublish). The engine sets it under its lock, at
	// every step whose core answer changed it, before it queues that
	// step's output: it is stored under wmu (read without it only to see
	// whether it changed), so a publish that saw it open has appended its
	// frame before whatever ends the connection's use (CLOSE_PRODUCER at
	// Stop, say), and none follows.
	gate atomic.Int64
	room chan struct{} // closed at the next completed write or at close; nil when nobody waits

	// fr reads the connection, in one goroutine at a time: its reader,
	// until it hands the reading over to another (keepReadingLocked).
	// busy, under the engine's lock, says that the reader is running
	// user code from the delivery queue, not reading; turn counts the
	// hand-overs.
	fr   *frame.Reader
	busy bool
	turn uint64

	// What the writer reports to: the engine's WaitGroup (every writer
	// started is waited for), its write-failure callback, and its count
	// of bytes written.
	wg      *sync.WaitGroup
	failed  func(gen uint64, err error)
	written *atomic.Uint64
	// writer is writeLoop as a func value, made once: "go c.writeLoop()"
	// allocated a closure at every start, once per request at one in
	// flight.
	writer func()
}

// minSpare is the largest write buffer kept for reuse when the queue is
// unbounded; a bounded queue keeps buffers up to its limit. Keeping them
// matters: a publisher that outruns the network fills a buffer of the
// limit's size at every batch, and growing a fresh one each time (copies,
// page faults, then madvise when it is freed) took half of the publish
// benchmark's CPU.
const minSpare = 1 << 20

// newConnection wraps c; writers it starts are counted in wg, report a
// failed write to failed (unless the connection was closed by us), and
// add what they wrote to written.
func newConnection(gen uint64, c ports.Conn, limit int, wg *sync.WaitGroup, failed func(gen uint64, err error), written *atomic.Uint64) *connection {
	conn := &connection{gen: gen, conn: c, limit: limit, wg: wg, failed: failed, written: written}
	conn.writer = conn.writeLoop
	return conn
}

// maxSpare is the largest write buffer the writer keeps: room for a full
// queue plus append's growth margin.
func (c *connection) maxSpare() int { return max(minSpare, 2*c.limit) }

// enqueue copies p into the write queue, whatever its fill, and each
// frame of latest (which may be nil) that is not empty into its slot, in
// place of the one there.
func (c *connection) enqueue(p []byte, latest *[len(core.Ready{}.Latest)][]byte) error {
	c.wmu.Lock()
	if c.closed {
		c.wmu.Unlock()
		return core.ErrDisconnected
	}
	c.pending = append(c.pending, p...)
	c.queued.Add(int64(len(p)))
	if latest != nil {
		for i, f := range latest {
			if len(f) > 0 {
				c.latest[i] = append(c.latest[i][:0], f...)
			}
		}
	}
	c.startWriterLocked()
	c.wmu.Unlock()
	return nil
}

// tryEnqueue copies p into the write queue if it fits within the limit,
// or if the queue is empty. Otherwise it queues nothing and returns a
// channel closed when room may have been made (a write completed, or the
// connection closed); the caller waits on it without holding any lock and
// tries again.
func (c *connection) tryEnqueue(p []byte) (<-chan struct{}, error) {
	c.wmu.Lock()
	if c.closed {
		c.wmu.Unlock()
		return nil, core.ErrDisconnected
	}
	return c.tryEnqueueLocked(p)
}

// tryEnqueueLocked is tryEnqueue with wmu held; it releases it.
func (c *connection) tryEnqueueLocked(p []byte) (<-chan struct{}, error) {
	if q := c.queued.Load(); c.limit > 0 && q > 0 && q+int64(len(p)) > int64(c.limit) {
		ch := c.roomLocked()
		c.wmu.Unlock()
		return ch, ErrQueueFull
	}
	c.pending = append(c.pending, p...)
	c.queued.Add(int64(len(p)))
	c.startWriterLocked()
	c.wmu.Unlock()
	return nil, nil
}

// ErrQueueFull: the connection's write queue stayed full until the
// caller's context ended. Retryable.
var ErrQueueFull = errors.New("pulsarconn: write queue full")

// errNotPublishable sends PublishMessage the slow way, under the engine's
// lock, where the core gives the precise answer (or waits).
var errNotPublishable = errors.New("publish under the lock")

// tryPublish queues an encoded frame of a publish, whose message payload
// takes payload bytes, as tryEnqueue does, if the connection takes
// publishes and the frame and payload are within the broker's limits, and,
// for a registration's Publish, bound (its created connection) is still
// this connection; otherwise it returns errNotPublishable.
func (c *connection) tryPublish(p []byte, payload int, bound *atomic.Uint64) (<-chan struct{}, error) {
	c.wmu.Lock()
	if g := c.gate.Load(); c.closed || g == 0 || int64(len(p)-4) > g || int64(payload) > g-frame.Padding ||
		bound != nil && bound.Load() != c.gen {
		c.wmu.Unlock()
		return nil, errNotPublishable
	}
	return c.tryEnqueueLocked(p)
}

// setGate opens the publish gate up to frames of maxFrame bytes, or shuts
// it (0). It takes wmu only when the gate changes: one atomic load per
// step otherwise.
func (c *connection) setGate(maxFrame int) {
	if c.gate.Load() == int64(maxFrame) {
		return
	}
	c.wmu.Lock()
	c.gate.Store(int64(maxFrame))
	c.wmu.Unlock()
}

// full reports whether the queue is at or over its limit; if so it returns
// a channel closed when room may have been made. The common answer, "not
// full", costs one atomic load.
func (c *connection) full() <-chan struct{} {
	if c.limit <= 0 || c.queued.Load() < int64(c.limit) {
		return nil
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed || c.queued.Load() < int64(c.limit) {
		return nil
	}
	return c.roomLocked()
}

// roomLocked returns the channel closed at the next completed write.
func (c *connection) roomLocked() chan struct{} {
	if c.room == nil {
		c.room = make(chan struct{})
	}
	return c.room
}

// startWriterLocked starts a writer goroutine unless one runs.
func (c *connection) startWriterLocked() {
	if c.writing {
		return
	}
	c.writing = true
	c.wg.Add(1)
	go c.writer()
}

// close stops the writer and closes the transport connection, which also
// ends the reader. Safe to call more than once.
func (c *connection) close() {
	c.wmu.Lock()
	already := c.closed
	c.closed = true
	if c.room != nil {
		close(c.room)
		c.room = nil
	}
	c.wmu.Unlock()
	if !already {
		// A running writer stops after its current write. Close can
		// take a while on some transports (TLS sends an alert), but
		// never blocks indefinitely on ours; calling it here keeps the
		// reader's end prompt and ordered.
		_ = c.conn.Close()
	}
}

// writeLoop writes queued bytes until the queue is empty, the connection
// is closed, or a write fails; failed is told of a failure on a connection
// not closed by us.
func (c *connection) writeLoop() {
	defer c.wg.Done()
	for {
		// Let the goroutines that are about to queue something run
		// first, so one write carries many of their frames: with many
		// requests in flight this turns a system call per request into
		// one per batch.
		runtime.Gosched()
		c.wmu.Lock()
		buf := c.pending
		queued := len(buf)
		for i, f := range c.latest {
			buf = append(buf, f...)
			c.latest[i] = f[:0]
		}
		if len(buf) == 0 || c.closed {
			c.writing = false
			c.wmu.Unlock()
			return
		}
		c.pending = c.spare[:0]
		c.spare = nil
		// The batch leaves the queue: callers waiting for room may
		// fill the next one while this one is written.
		c.queued.Add(-int64(queued))
		if c.room != nil {
			close(c.room)
			c.room = nil
		}
		c.wmu.Unlock()
		n, err := c.conn.Write(buf)
		c.written.Add(uint64(n))
		c.wmu.Lock()
		if err != nil {
			// writing stays set: nothing more is written on a
			// connection whose write failed.
			closedByUs := c.closed
			c.wmu.Unlock()
			if !closedByUs {
				c.failed(c.gen, err)
			}
			return
		}
		// pending now uses the old spare, so buf is the free one,
		// kept for the next batch unless a burst grew it beyond
		// maxSpare; trim, called at every keepalive tick, drops a
		// large one once the connection idles, so an idle connection
		// does not hold a burst's memory.
		if cap(buf) <= c.maxSpare() {
			c.spare = buf[:0]
		}
		c.wmu.Unlock()
	}
}

// trim releases write buffers over minSpare while nothing is queued.
func (c *connection) trim() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if cap(c.spare) > minSpare {
		c.spare = nil
	}
	if len(c.pending) == 0 && cap(c.pending) > minSpare {
		c.pending = nil
	}
}
