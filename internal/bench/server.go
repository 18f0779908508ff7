package bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"sync"
	"sync/atomic"

	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// ServerConfig configures a Server.
type ServerConfig struct {
	// Partitions is the answer to every PARTITIONED_METADATA (default 0:
	// not partitioned).
	Partitions int
	// Sink makes the server a discard sink: after CONNECTED it reads
	// and drops everything, answering nothing, and counts the bytes
	// (Sunk, WaitSunk).
	Sink bool
	// MessageSize is the payload size of each MESSAGE streamed to a
	// consumer (default 1024).
	MessageSize int
}

// ioBufferSize is the size of each connection's read and write buffers.
const ioBufferSize = 64 << 10

// maxFrame bounds what the server accepts from a client.
const maxFrame = frame.DefaultMaxFrameSize

// Server is the lean benchmark broker on a loopback TCP listener. See the
// package documentation for what it answers and how.
type Server struct {
	cfg ServerConfig
	ln  net.Listener
	url string
	wg  sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool

	sunk    atomic.Int64
	target  atomic.Int64 // the smallest byte count a WaitSunk waits for
	waitMu  sync.Mutex
	waiters []sinkWaiter

	// Templates shared read-only; each connection patches copies.
	partitions template // PARTITIONED_METADATA_RESPONSE(request_id)
	receipt    template // SEND_RECEIPT(producer_id, sequence_id, entry_id)
	success    template // SUCCESS(request_id)
	pong       []byte
}

type sinkWaiter struct {
	target int64
	ch     chan struct{}
}

// NewServer starts a Server on 127.0.0.1 on a free port.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.MessageSize <= 0 {
		cfg.MessageSize = 1024
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: listen: %w", err)
	}
	s := &Server{cfg: cfg, ln: ln, url: "pulsar://" + ln.Addr().String(), conns: map[net.Conn]struct{}{}}
	s.target.Store(math.MaxInt64)
	s.partitions = mustTemplate(commandTemplate(1, &pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_PARTITIONED_METADATA_RESPONSE.Enum(),
		PartitionMetadataResponse: &pulsarpb.CommandPartitionedTopicMetadataResponse{
			Partitions: ptr(uint32(cfg.Partitions)),
			RequestId:  ptr(sentinel(0)),
			Response:   pulsarpb.CommandPartitionedTopicMetadataResponse_Success.Enum(),
		},
	}))
	s.receipt = mustTemplate(commandTemplate(3, &pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_SEND_RECEIPT.Enum(),
		SendReceipt: &pulsarpb.CommandSendReceipt{
			ProducerId: ptr(sentinel(0)),
			SequenceId: ptr(sentinel(1)),
			MessageId:  &pulsarpb.MessageIdData{LedgerId: ptr(uint64(1)), EntryId: ptr(sentinel(2))},
		},
	}))
	s.success = mustTemplate(commandTemplate(1, &pulsarpb.BaseCommand{
		Type:    pulsarpb.BaseCommand_SUCCESS.Enum(),
		Success: &pulsarpb.CommandSuccess{RequestId: ptr(sentinel(0))},
	}))
	s.pong, err = frame.AppendCommand(nil, &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_PONG.Enum(), Pong: &pulsarpb.CommandPong{}})
	if err != nil {
		panic(err)
	}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

func ptr[T any](v T) *T { return &v }

// URL returns the server's pulsar:// URL.
func (s *Server) URL() string { return s.url }

// Addr returns the server's host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server: it closes the listener and every connection and
// waits for their goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	err := s.ln.Close()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

// DropConnections closes every open connection, as a broker restart
// would; the listener stays open for the clients to reconnect.
func (s *Server) DropConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		_ = c.Close()
		delete(s.conns, c)
	}
}

// Conns returns the number of open connections.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Sunk returns how many bytes the sink has read after the CONNECT frames.
func (s *Server) Sunk() int64 { return s.sunk.Load() }

// WaitSunk waits until the sink has read at least n bytes in all, or ctx
// ends.
func (s *Server) WaitSunk(ctx context.Context, n int64) error {
	if s.sunk.Load() >= n {
		return nil
	}
	w := sinkWaiter{target: n, ch: make(chan struct{})}
	s.waitMu.Lock()
	s.waiters = append(s.waiters, w)
	s.resetTargetLocked()
	s.waitMu.Unlock()
	s.notify() // the count may have passed n meanwhile
	select {
	case <-w.ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("bench: sink has %d of %d bytes: %w", s.sunk.Load(), n, ctx.Err())
	}
}

func (s *Server) resetTargetLocked() {
	t := int64(math.MaxInt64)
	for _, w := range s.waiters {
		t = min(t, w.target)
	}
	s.target.Store(t)
}

// notify releases the waiters whose target is reached.
func (s *Server) notify() {
	s.waitMu.Lock()
	defer s.waitMu.Unlock()
	n := s.sunk.Load()
	keep := s.waiters[:0]
	for _, w := range s.waiters {
		if n >= w.target {
			close(w.ch)
		} else {
			keep = append(keep, w)
		}
	}
	s.waiters = keep
	s.resetTargetLocked()
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = nc.Close()
			return
		}
		s.conns[nc] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(nc)
	}
}

// serverConn is one client connection.
type serverConn struct {
	s  *Server
	nc net.Conn
	br *bufio.Reader

	// wmu serialises the reader's answers and the consumers' streams on
	// bw.
	wmu sync.Mutex
	bw  *bufio.Writer

	partitions, receipt, success template // this connection's copies

	mu        sync.Mutex
	consumers map[uint64]*streamConsumer
	streams   sync.WaitGroup
}

func (s *Server) serve(nc net.Conn) {
	defer s.wg.Done()
	c := &serverConn{
		s: s, nc: nc,
		br:         bufio.NewReaderSize(nc, ioBufferSize),
		bw:         bufio.NewWriterSize(nc, ioBufferSize),
		partitions: s.partitions.clone(),
		receipt:    s.receipt.clone(),
		success:    s.success.clone(),
		consumers:  map[uint64]*streamConsumer{},
	}
	defer func() {
		c.mu.Lock()
		for _, sc := range c.consumers {
			sc.stop()
		}
		c.mu.Unlock()
		_ = nc.Close()
		c.streams.Wait()
		s.mu.Lock()
		delete(s.conns, nc)
		s.mu.Unlock()
	}()
	_ = c.loop()
}

func (t template) clone() template {
	return template{buf: append([]byte(nil), t.buf...), slots: t.slots, lens: t.lens}
}

// loop reads frames until the connection ends. Answers go to bw, which is
// flushed only before a read that would block: under load one write
// carries the answers to many requests.
func (c *serverConn) loop() error {
	var hdr [4]byte
	body := make([]byte, 4096)
	for {
		if err := c.flushBefore(len(hdr)); err != nil {
			return err
		}
		if _, err := io.ReadFull(c.br, hdr[:]); err != nil {
			return err
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n < 4 || n > maxFrame {
			return fmt.Errorf("bench: frame size %d", n)
		}
		if int(n) > cap(body) {
			body = make([]byte, n)
		}
		body = body[:n]
		if err := c.flushBefore(len(body)); err != nil {
			return err
		}
		if _, err := io.ReadFull(c.br, body); err != nil {
			return err
		}
		if err := c.handle(body); err != nil {
			return err
		}
		if c.s.cfg.Sink {
			return c.sink()
		}
	}
}

// flushBefore flushes the answers written so far unless the next n bytes
// are already buffered, i.e. before a read that may wait for the client.
func (c *serverConn) flushBefore(n int) error {
	if c.br.Buffered() >= n {
		return nil
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.bw.Flush()
}

// sink reads and discards everything, counting the bytes.
func (c *serverConn) sink() error {
	if err := c.bw.Flush(); err != nil { // CONNECTED
		return err
	}
	buf := make([]byte, ioBufferSize)
	for {
		n, err := c.br.Read(buf)
		if n > 0 {
			if c.s.sunk.Add(int64(n)) >= c.s.target.Load() {
				c.s.notify()
			}
		}
		if err != nil {
			return err
		}
	}
}

var errBadFrame = errors.New("bench: malformed frame")

// handle answers one frame. The hot commands are decoded by scanning
// varints; the rare ones with frame.Parse.
func (c *serverConn) handle(body []byte) error {
	cmd, ok := splitFrame(body)
	if !ok {
		return errBadFrame
	}
	typ, sub, ok := peekCommand(cmd)
	if !ok {
		return errBadFrame
	}
	switch typ {
	case pulsarpb.BaseCommand_PARTITIONED_METADATA:
		id, _ := varintField(sub, 2) // request_id
		return c.write(c.partitions.short(id))
	case pulsarpb.BaseCommand_SEND:
		var producer, seq uint64
		scan(sub, func(n, typ int, v uint64, _ []byte) bool {
			switch {
			case n == 1 && typ == 0:
				producer = v
			case n == 2 && typ == 0:
				seq = v
			}
			return true
		})
		return c.write(c.receipt.short(producer, seq, seq))
	case pulsarpb.BaseCommand_FLOW:
		id, _ := varintField(sub, 1)
		permits, _ := varintField(sub, 2)
		c.flow(id, permits)
		return nil
	case pulsarpb.BaseCommand_PING:
		return c.write(c.s.pong)
	case pulsarpb.BaseCommand_PONG, pulsarpb.BaseCommand_ACK:
		return nil // ACKs without a request id need no answer
	}
	f, err := frame.Parse(body)
	if err != nil {
		return err
	}
	return c.handleRare(f.Command)
}

// handleRare answers the commands that come once per connection,
// producer or consumer.
func (c *serverConn) handleRare(cmd *pulsarpb.BaseCommand) error {
	var answer *pulsarpb.BaseCommand
	switch cmd.GetType() {
	case pulsarpb.BaseCommand_CONNECT:
		v := min(cmd.GetConnect().GetProtocolVersion(), frame.ProtocolVersion)
		answer = &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_CONNECTED.Enum(), Connected: &pulsarpb.CommandConnected{
			ServerVersion:   ptr("pulsarconn-bench"),
			ProtocolVersion: ptr(v),
			MaxMessageSize:  ptr(int32(frame.DefaultMaxMessageSize)),
		}}
	case pulsarpb.BaseCommand_LOOKUP:
		answer = &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_LOOKUP_RESPONSE.Enum(), LookupTopicResponse: &pulsarpb.CommandLookupTopicResponse{
			BrokerServiceUrl: ptr(c.s.url),
			Response:         pulsarpb.CommandLookupTopicResponse_Connect.Enum(),
			RequestId:        ptr(cmd.GetLookupTopic().GetRequestId()),
			Authoritative:    ptr(true),
		}}
	case pulsarpb.BaseCommand_PRODUCER:
		p := cmd.GetProducer()
		name := p.GetProducerName()
		if name == "" {
			name = fmt.Sprintf("bench-%d", p.GetProducerId())
		}
		answer = &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_PRODUCER_SUCCESS.Enum(), ProducerSuccess: &pulsarpb.CommandProducerSuccess{
			RequestId:      ptr(p.GetRequestId()),
			ProducerName:   ptr(name),
			LastSequenceId: ptr(int64(-1)),
			ProducerReady:  ptr(true),
		}}
	case pulsarpb.BaseCommand_SUBSCRIBE:
		if err := c.subscribe(cmd.GetSubscribe().GetConsumerId()); err != nil {
			return err
		}
		return c.write(c.success.short(cmd.GetSubscribe().GetRequestId()))
	case pulsarpb.BaseCommand_CLOSE_CONSUMER:
		c.unsubscribe(cmd.GetCloseConsumer().GetConsumerId())
		return c.write(c.success.short(cmd.GetCloseConsumer().GetRequestId()))
	case pulsarpb.BaseCommand_CLOSE_PRODUCER:
		return c.write(c.success.short(cmd.GetCloseProducer().GetRequestId()))
	default:
		id, ok := frame.RequestID(cmd)
		if !ok {
			return nil // a command this server ignores
		}
		answer = &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_ERROR.Enum(), Error: &pulsarpb.CommandError{
			RequestId: ptr(id),
			Error:     pulsarpb.ServerError_NotAllowedError.Enum(),
			Message:   ptr(fmt.Sprintf("the benchmark server does not serve %v", cmd.GetType())),
		}}
	}
	buf, err := frame.AppendCommand(nil, answer)
	if err != nil {
		return err
	}
	return c.write(buf)
}

func (c *serverConn) write(p []byte) error {
	c.wmu.Lock()
	_, err := c.bw.Write(p)
	c.wmu.Unlock()
	return err
}

// streamConsumer streams MESSAGE frames to one consumer as FLOW permits
// allow.
type streamConsumer struct {
	c       *serverConn
	message template // MESSAGE(entry_id) with its payload
	cond    *sync.Cond
	permits uint64
	stopped bool
}

// streamBatch is the most MESSAGE frames written per flush.
const streamBatch = 256

func (c *serverConn) subscribe(id uint64) error {
	payload := make([]byte, c.s.cfg.MessageSize)
	for i := range payload {
		payload[i] = byte('a' + i%26)
	}
	md := &pulsarpb.MessageMetadata{ProducerName: ptr("bench"), SequenceId: ptr(uint64(0)), PublishTime: ptr(uint64(1))}
	msg, err := newTemplate(1, func(dst []byte) ([]byte, error) {
		return frame.AppendMessage(dst, &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_MESSAGE.Enum(), Message: &pulsarpb.CommandMessage{
			ConsumerId: ptr(id),
			MessageId:  &pulsarpb.MessageIdData{LedgerId: ptr(uint64(1)), EntryId: ptr(sentinel(0))},
		}}, md, payload)
	})
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, dup := c.consumers[id]; dup {
		return nil
	}
	sc := &streamConsumer{c: c, message: msg, cond: sync.NewCond(&c.mu)}
	c.consumers[id] = sc
	c.streams.Add(1)
	go sc.run()
	return nil
}

func (c *serverConn) unsubscribe(id uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if sc, ok := c.consumers[id]; ok {
		sc.stop()
		delete(c.consumers, id)
	}
}

func (c *serverConn) flow(id, permits uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if sc, ok := c.consumers[id]; ok {
		sc.permits += permits
		sc.cond.Signal()
	}
}

// stop ends the stream; called with c.mu held.
func (sc *streamConsumer) stop() {
	sc.stopped = true
	sc.cond.Signal()
}

func (sc *streamConsumer) run() {
	defer sc.c.streams.Done()
	var entry uint64
	for {
		sc.c.mu.Lock()
		for sc.permits == 0 && !sc.stopped {
			sc.cond.Wait()
		}
		if sc.stopped {
			sc.c.mu.Unlock()
			return
		}
		k := min(sc.permits, streamBatch)
		sc.permits -= k
		sc.c.mu.Unlock()
		sc.c.wmu.Lock()
		var err error
		for range k {
			if _, err = sc.c.bw.Write(sc.message.short(entry)); err != nil {
				break
			}
			entry++
		}
		if err == nil {
			err = sc.c.bw.Flush()
		}
		sc.c.wmu.Unlock()
		if err != nil {
			return
		}
	}
}
