package pulsartest

import (
	"encoding/binary"
	"errors"
	"net"
	"sync"
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
	// written, in order and coalesced, by writeLoop alone.
	wmu      sync.Mutex
	wbuf     []byte
	spare    []byte
	wclosing bool // write what is queued, then close
	wdone    bool // close now; drop what is queued
	wsig     chan struct{}
	done     chan struct{}

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
		id:        id,
		wsig:      make(chan struct{}, 1),
		done:      make(chan struct{}),
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
	c.wmu.Lock()
	if c.wclosing || c.wdone {
		c.wmu.Unlock()
		return ErrConnClosed
	}
	start := len(c.wbuf)
	b, err := appendFrame(c.wbuf)
	c.wbuf = b
	if err == nil {
		c.srv.x.sent(c, b[start:])
	}
	c.wmu.Unlock()
	if err != nil {
		return err
	}
	c.wake()
	return nil
}

func (c *Conn) wake() {
	select {
	case c.wsig <- struct{}{}:
	default:
	}
}

// closeAfterFlush writes what is queued (e.g. an ERROR) and then closes
// the connection. It never blocks, so it may be called with Server.mu held.
func (c *Conn) closeAfterFlush() {
	c.wmu.Lock()
	c.wclosing = true
	c.wmu.Unlock()
	c.wake()
}

// abort makes the writer stop and close the connection without writing
// what is queued. It never blocks, so it may be called with Server.mu held.
func (c *Conn) abort() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wdone {
		return
	}
	c.wdone = true
	close(c.done)
	// Unblock a Write in progress (a peer that does not read).
	_ = c.nc.SetWriteDeadline(time.Unix(1, 0))
}

// hardClose aborts and closes the net.Conn, for callers without locks:
// Close on some connections (TLS) may block for a while.
func (c *Conn) hardClose() {
	c.abort()
	_ = c.nc.Close()
}

// writeLoop is the connection's only writer: it writes everything queued
// in one Write call, so frames never interleave and bursts are coalesced.
func (c *Conn) writeLoop() {
	defer c.nc.Close()
	for {
		select {
		case <-c.done:
			return
		case <-c.wsig:
		}
		c.wmu.Lock()
		if c.wdone {
			c.wmu.Unlock()
			return
		}
		buf := c.wbuf
		c.wbuf = c.spare[:0]
		closing := c.wclosing
		c.wmu.Unlock()
		if len(buf) > 0 {
			if _, err := c.nc.Write(buf); err != nil {
				c.abort()
				return
			}
		}
		c.wmu.Lock()
		c.spare = buf[:0]
		c.wmu.Unlock()
		if closing {
			return
		}
	}
}

// serve reads frames from c until it fails, then detaches c.
func (s *Server) serve(c *Conn) {
	r := frame.NewReader(c.nc, s.cfg.maxMessageSize+frame.Padding)
	for {
		// Wait for traffic with a shallow stack (frame.Reader.Fill): an
		// idle connection's goroutine then shrinks to 4 KiB.
		if r.Fill() != nil {
			break
		}
		body, err := r.NextBody()
		if err != nil {
			break
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
		s.receive(c, f)
	}
	s.mu.Lock()
	s.detachLocked(c)
	s.mu.Unlock()
	c.hardClose()
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
