package pulsartest

import (
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// connState is where a connection is in its life; guarded by Server.mu.
type connState int

const (
	// stateAwaitConnect: nothing but CONNECT is allowed.
	stateAwaitConnect connState = iota
	// stateConnectSeen: CONNECT read and left unanswered (SetNeverConnect).
	stateConnectSeen
	// stateChallenging: AUTH_CHALLENGE sent during the handshake; only
	// AUTH_RESPONSE is allowed.
	stateChallenging
	// stateConnected: CONNECTED sent.
	stateConnected
	// stateClosed: detached from the server; everything is ignored.
	stateClosed
)

// Conn is one client connection of a Server, as seen by interceptors.
type Conn struct {
	srv *Server
	nc  net.Conn
	id  uint64

	// The write side: frames are appended to wbuf by any goroutine and
	// written, in order and coalesced, by writeLoop alone, which runs
	// while there is something to write (an idle connection has no
	// writer goroutine).
	wmu      sync.Mutex
	wbuf     []byte
	spare    []byte
	wother   int  // bytes of wbuf that are not dispatched MESSAGEs
	wclosing bool // write what is queued, then close
	wdone    bool // close now; drop what is queued
	writing  bool // a writeLoop runs

	// throttled is set when dispatch held messages back because the
	// queue was over half the limit; the writer, having written, then
	// dispatches again.
	throttled atomic.Bool

	// cut is set when DropAfterFrames cuts the connection: the reader
	// handles nothing it reads from then on.
	cut atomic.Bool

	// netDone is closed once the net.Conn is (see closeNet).
	netDone chan struct{}
	netOnce sync.Once

	// handshakeTimer closes the connection if its handshake is not
	// complete in time (WithHandshakeTimeout); nil when none. Set by
	// register.
	handshakeTimer Timer

	// Guarded by srv.mu.
	state            connState
	connect          *pulsarpb.CommandConnect
	authMethod       string
	role             string // the authenticated role (auth.go)
	clientProtocol   int32
	challengesLeft   int
	challengePending bool
	producers        map[uint64]*producer
	consumers        map[uint64]*consumer
	// closedProducers are the producer ids the server closed on this
	// connection (CLOSE_PRODUCER pushed) that have not attached again;
	// nil until the first.
	closedProducers map[uint64]struct{}
}

func newConn(s *Server, nc net.Conn, id uint64) *Conn {
	return &Conn{
		srv:       s,
		nc:        nc,
		netDone:   make(chan struct{}),
		id:        id,
		producers: make(map[uint64]*producer),
		consumers: make(map[uint64]*consumer),
	}
}

// ID numbers the connection, from 1 in the order the server accepted them.
func (c *Conn) ID() uint64 { return c.id }

// RemoteAddr is the client's address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// Connect returns the CONNECT the client sent on this connection, or nil
// before it did. Do not modify it.
func (c *Conn) Connect() *pulsarpb.CommandConnect {
	c.srv.mu.Lock()
	defer c.srv.mu.Unlock()
	return c.connect
}

// Send writes a simple frame carrying cmd to the client.
func (c *Conn) Send(cmd *pulsarpb.BaseCommand) error {
	return c.write(func(b []byte) ([]byte, error) { return frame.AppendCommand(b, cmd) })
}

// SendPayload writes a payload frame (cmd, a correct CRC32C, the raw
// MessageMetadata and the payload) to the client.
func (c *Conn) SendPayload(cmd *pulsarpb.BaseCommand, metadata, payload []byte) error {
	return c.write(func(b []byte) ([]byte, error) { return frame.AppendPayload(b, cmd, metadata, payload) })
}

// SendRaw writes b to the client as is, e.g. a malformed frame.
func (c *Conn) SendRaw(b []byte) error {
	return c.write(func(dst []byte) ([]byte, error) { return append(dst, b...), nil })
}

// Close closes the connection at once; what is queued is not written.
func (c *Conn) Close() error {
	c.srv.mu.Lock()
	c.srv.detachLocked(c)
	c.srv.mu.Unlock()
	c.hardClose()
	return nil
}

// write appends a frame to the write queue and wakes the writer.
func (c *Conn) write(appendFrame func([]byte) ([]byte, error)) error {
	return c.queue(appendFrame, false)
}

// queue appends a frame to the write queue and wakes the writer; message
// says whether it is a MESSAGE that dispatch sends (dispatch holds those
// back itself: see writable), else it counts against
// WithMaxQueuedOutput.
func (c *Conn) queue(appendFrame func([]byte) ([]byte, error), message bool) error {
	c.wmu.Lock()
	if c.wclosing || c.wdone {
		c.wmu.Unlock()
		return ErrConnClosed
	}
	if !message && c.wother >= c.srv.cfg.maxQueuedOutput() {
		// WithMaxQueuedOutput: the client does not read what it is
		// sent; it is disconnected rather than buffered for without
		// end. The writer stops and closes the connection, and the
		// reader, failing, detaches it.
		c.wmu.Unlock()
		c.abort()
		return ErrConnClosed
	}
	start := len(c.wbuf)
	b, err := appendFrame(c.wbuf)
	c.wbuf = b
	if err == nil {
		if !message {
			c.wother += len(b) - start
		}
		c.srv.x.sent(c, b[start:])
		c.startWriterLocked()
	}
	c.wmu.Unlock()
	return err
}

// startWriterLocked starts a writeLoop unless one runs; called with wmu
// held. The goroutine is counted in the server's wait group: a frame is
// queued only on a live connection, whose serve loop (counted too) has
// not ended, so the count is above zero.
func (c *Conn) startWriterLocked() {
	if c.writing {
		return
	}
	c.writing = true
	c.srv.wg.Add(1)
	go c.writeLoop()
}

// closeFlushGrace bounds how long a closing connection waits for its
// client to read what is queued (an ERROR, say) before it is closed.
const closeFlushGrace = 10 * time.Second

// closeAfterFlush writes what is queued (e.g. an ERROR) and then closes
// the connection. It never blocks, so it may be called with Server.mu held.
func (c *Conn) closeAfterFlush() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wdone || c.wclosing {
		return
	}
	c.wclosing = true
	// A client that does not read gets closeFlushGrace to take what is
	// queued; then the write fails and the connection is closed, so a
	// peer cannot hold a closing connection (and its writer) open.
	_ = c.nc.SetWriteDeadline(time.Now().Add(closeFlushGrace))
	c.startWriterLocked() // it writes what is queued, then closes
}

// abort makes the writer stop, without writing what is queued, and close
// the connection; with no writer running, the caller closes it (see
// hardClose). It never blocks, so it may be called with Server.mu held.
func (c *Conn) abort() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wdone {
		return
	}
	c.wdone = true
	// Unblock a Write in progress (a peer that does not read).
	_ = c.nc.SetWriteDeadline(time.Unix(1, 0))
}

// hardClose aborts and closes the net.Conn, for callers without locks:
// Close on some connections (TLS) may block for a while.
func (c *Conn) hardClose() {
	c.abort()
	c.closeNet()
}

// closeNet closes the net.Conn and forgets it in the server's set of open
// connections.
func (c *Conn) closeNet() {
	_ = c.nc.Close()
	c.srv.openMu.Lock()
	delete(c.srv.open, c)
	c.srv.openMu.Unlock()
	c.netOnce.Do(func() { close(c.netDone) })
}

// writeLoop is the connection's only writer: it writes everything queued
// in one Write call, so frames never interleave and bursts are coalesced,
// until nothing is queued; then it ends (and closes the connection if it
// was closing or aborted).
func (c *Conn) writeLoop() {
	defer c.srv.wg.Done()
	for {
		c.wmu.Lock()
		buf := c.wbuf
		if c.wdone || len(buf) == 0 {
			end := c.wdone || c.wclosing
			c.writing = false
			c.wmu.Unlock()
			if end {
				c.closeNet()
			}
			return
		}
		c.wbuf = c.spare[:0]
		c.spare = nil
		c.wother = 0
		closing := c.wclosing
		c.wmu.Unlock()
		if _, err := c.nc.Write(buf); err != nil {
			c.abort()
			c.wmu.Lock()
			c.writing = false
			c.wmu.Unlock()
			c.closeNet()
			return
		}
		if c.throttled.CompareAndSwap(true, false) {
			c.srv.redispatch(c)
		}
		c.wmu.Lock()
		if cap(buf) <= maxSpare {
			c.spare = buf[:0] // a burst's large buffer is not kept
		}
		if closing {
			c.writing = false
			c.wmu.Unlock()
			c.closeNet()
			return
		}
		c.wmu.Unlock()
	}
}

// writable reports whether messages may be dispatched to c: its queued
// output is under half WithMaxQueuedOutput (or nothing is queued). When
// it is not, c is marked throttled, and the writer, which runs while
// anything is queued, dispatches again once it has written. So a
// consumer that reads slowly, with many permits, is held back as a
// broker holds back a channel that is not writable, not disconnected.
func (c *Conn) writable() bool {
	c.wmu.Lock()
	queued := len(c.wbuf)
	c.wmu.Unlock()
	if queued == 0 || queued < c.srv.cfg.dispatchPause() {
		return true
	}
	c.throttled.Store(true)
	return false
}

// redispatch dispatches to the consumers of c, after its writer drained
// a queue that held dispatch back.
func (s *Server) redispatch(c *Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.state == stateClosed {
		return
	}
	for _, cons := range c.consumers {
		s.dispatchLocked(cons.sub)
	}
}

// maxSpare is the largest write buffer a connection keeps for reuse.
const maxSpare = 64 << 10

// serve reads frames from c until it fails, then detaches c.
func (s *Server) serve(c *Conn) {
	if c.handshakeTimer != nil {
		defer c.handshakeTimer.Stop()
	}
	r := frame.NewReader(c.nc, s.cfg.maxMessageSize+frame.Padding)
	for {
		// Wait for traffic with a shallow stack (frame.Reader.Fill): an
		// idle connection's goroutine then shrinks to 4 KiB.
		if r.Fill() != nil {
			break
		}
		body, err := r.NextBody()
		if err != nil || c.cut.Load() {
			break // a frame read after a DropAfterFrames cut is dropped
		}
		f, err := frame.Parse(body)
		if err != nil {
			if t, ok := unknownType(body); ok && errors.Is(err, frame.ErrMalformed) {
				// A command type this schema does not know: count it and
				// carry on, as a broker ignores what it cannot use.
				s.mu.Lock()
				s.received[t]++
				s.handled[t]++
				s.changedLocked()
				s.mu.Unlock()
				continue
			}
			break // garbage: close this connection only
		}
		s.receive(c, f, body)
		if c.cut.Load() {
			break
		}
	}
	s.mu.Lock()
	s.detachLocked(c)
	s.mu.Unlock()
	if c.cut.Load() {
		// DropAfterFrames: what was queued up to the cut is written, then
		// the writer closes the connection.
		c.closeAfterFlush()
		return
	}
	c.hardClose()
}

// handshakeExpired closes c if its handshake is not complete once
// WithHandshakeTimeout has passed, as a broker's keep-alive task closes a
// connection whose handshake did not complete within its interval.
func (s *Server) handshakeExpired(c *Conn) {
	s.mu.Lock()
	expired := c.state == stateAwaitConnect || c.state == stateChallenging
	if expired {
		s.detachLocked(c)
	}
	s.mu.Unlock()
	if expired {
		c.hardClose()
	}
}

// unknownType reports the type number of a well-formed command whose type
// is not in BaseCommand_Type (protobuf keeps an unknown value of a closed
// enum out of the field, so Parse sees no type).
func unknownType(body []byte) (pulsarpb.BaseCommand_Type, bool) {
	if len(body) < 4 {
		return 0, false
	}
	n := binary.BigEndian.Uint32(body)
	if uint64(n) > uint64(len(body)-4) {
		return 0, false
	}
	b := body[4 : 4+n]
	for len(b) > 0 {
		num, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return 0, false
		}
		b = b[l:]
		if num == 1 && typ == protowire.VarintType {
			v, l := protowire.ConsumeVarint(b)
			if l < 0 {
				return 0, false
			}
			if _, known := pulsarpb.BaseCommand_Type_name[int32(v)]; known {
				return 0, false
			}
			return pulsarpb.BaseCommand_Type(int32(v)), true
		}
		l = protowire.ConsumeFieldValue(num, typ, b)
		if l < 0 {
			return 0, false
		}
		b = b[l:]
	}
	return 0, false
}

// detachLocked forgets c: it leaves the server's connections, and its
// producers and consumers are removed (their unacked messages go back to
// their subscriptions). The caller closes c.
func (s *Server) detachLocked(c *Conn) {
	if c.state == stateClosed {
		return
	}
	c.state = stateClosed
	delete(s.conns, c)
	for _, p := range c.producers {
		s.removeProducerLocked(p)
	}
	for _, cons := range c.consumers {
		s.removeConsumerLocked(cons)
	}
	s.changedLocked()
}

// failLocked closes c after a protocol violation; what is queued is still
// written.
func (s *Server) failLocked(c *Conn) {
	s.detachLocked(c)
	c.closeAfterFlush()
}
