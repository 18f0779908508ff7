package pulsartest

import (
	"context"
	"errors"
	"net"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// ErrServerClosed is returned by Serve and ServeConn once Close was called.
var ErrServerClosed = errors.New("pulsartest: server closed")

// ErrConnClosed is returned when writing to a connection that is closed or
// closing.
var ErrConnClosed = errors.New("pulsartest: connection closed")

// Server is a fake Pulsar broker. It keeps every topic in memory and speaks
// the binary protocol on each connection it serves. All its methods are
// safe for concurrent use.
type Server struct {
	cfg config

	// wg counts Serve and ServeConn calls and the goroutines they start;
	// Close waits for it. Add is only called under mu while !closed, so
	// every Add happens before Close starts waiting.
	wg sync.WaitGroup

	// mu is a pointer so that the brokers of a Cluster can share one.
	mu        *sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	firstAddr string
	conns     map[*Conn]struct{}
	// open holds every connection whose net.Conn is not closed yet,
	// including those detached from conns that are still writing what is
	// queued before closing, so that Close can cut them short. Guarded by
	// openMu, which is taken without mu or with it, never the reverse.
	openMu       sync.Mutex
	open         map[*Conn]struct{}
	nextConnID   uint64
	topics       map[string]*topic
	partitions   map[string]int
	received     map[pulsarpb.BaseCommand_Type]int
	handled      map[pulsarpb.BaseCommand_Type]int
	lastConnect  *pulsarpb.CommandConnect
	lastAuthResp *pulsarpb.CommandAuthResponse
	interceptors []*interceptor
	answerPings  bool
	neverConnect bool
	nextProducer uint64
	nextLedger   uint64
	// schemas is the schema registry: by topic (see schemaKey), the
	// schemas registered, version i at index i. Nil until the first.
	schemas map[string][]*pulsarpb.Schema
	// changed is closed and cleared on every observable change, when
	// someone waits (see waitFor).
	changed chan struct{}
	// x is the state of the cluster, fault and inspection hooks (ext.go).
	x serverExt
}

// NewServer returns a server configured by opts. It serves nothing until
// Start, Serve or ServeConn is called.
func NewServer(opts ...Option) *Server {
	s := &Server{
		cfg:         defaultConfig(),
		mu:          new(sync.Mutex),
		listeners:   make(map[net.Listener]struct{}),
		conns:       make(map[*Conn]struct{}),
		open:        make(map[*Conn]struct{}),
		topics:      make(map[string]*topic),
		partitions:  make(map[string]int),
		received:    make(map[pulsarpb.BaseCommand_Type]int),
		handled:     make(map[pulsarpb.BaseCommand_Type]int),
		answerPings: true,
		nextLedger:  1,
	}
	for _, o := range opts {
		o(&s.cfg)
	}
	s.x.init(s)
	return s
}

// TB is the part of testing.TB that NewTCP and StartCluster use: a
// *testing.T, *testing.B or *testing.F satisfies it. pulsartest takes this
// interface rather than testing.TB so that a program linking pulsartest
// (such as "pulsarconn serve") does not link the testing package.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// NewTCP starts a server on a TCP listener at 127.0.0.1 on a free port, and
// closes it when the test ends.
func NewTCP(t TB, opts ...Option) *Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pulsartest: listen: %v", err)
	}
	s := NewServer(opts...)
	if err := s.Start(l); err != nil {
		t.Fatalf("pulsartest: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// Start serves l in the background, as Serve does, and returns at once:
// when it returns, l is registered and URL reflects it. The accept loop
// ends when l fails or is closed; Close closes l and waits for it.
func (s *Server) Start(l net.Listener) error {
	if err := s.addListener(l); err != nil {
		return err
	}
	go func() { _ = s.acceptLoop(l) }()
	return nil
}

// Serve accepts connections on l and serves each until it closes. It blocks
// until l fails or is closed, and returns ErrServerClosed after Close, else
// the Accept error. Serve may be called for several listeners.
func (s *Server) Serve(l net.Listener) error {
	if err := s.addListener(l); err != nil {
		return err
	}
	return s.acceptLoop(l)
}

// addListener registers l and counts its accept loop in wg.
func (s *Server) addListener(l net.Listener) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		_ = l.Close()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	if s.firstAddr == "" {
		s.firstAddr = l.Addr().String()
	}
	s.wg.Add(1)
	return nil
}

func (s *Server) acceptLoop(l net.Listener) error {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()
	for {
		nc, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			return err
		}
		c, err := s.register(nc)
		if err != nil {
			return err
		}
		go func() {
			defer s.wg.Done()
			s.serve(c)
		}()
	}
}

// ServeConn serves one connection, already established, until it closes.
// It blocks; it returns ErrServerClosed after Close, else nil. Use it with
// net.Pipe or a transport without a listener.
func (s *Server) ServeConn(nc net.Conn) error {
	c, err := s.register(nc)
	if err != nil {
		return err
	}
	defer s.wg.Done()
	s.serve(c)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrServerClosed
	}
	return nil
}

// register adds nc as a live connection and counts its serve loop in wg
// (the caller calls wg.Done for it).
func (s *Server) register(nc net.Conn) (*Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		_ = nc.Close()
		return nil, ErrServerClosed
	}
	s.nextConnID++
	c := newConn(s, nc, s.nextConnID)
	s.conns[c] = struct{}{}
	s.openMu.Lock()
	s.open[c] = struct{}{}
	s.openMu.Unlock()
	if d := s.cfg.handshakeTimeout; d > 0 {
		c.handshakeTimer = s.x.clock.AfterFunc(d, func() { s.handshakeExpired(c) })
	}
	s.wg.Add(1) // the serve loop; writers count themselves
	s.changedLocked()
	return c, nil
}

// Close stops the server: it closes every listener and connection and waits
// for every goroutine the server started, and for Serve and ServeConn to
// return. Close is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	s.closed = true
	s.x.closeLocked()
	ls := make([]net.Listener, 0, len(s.listeners))
	for l := range s.listeners {
		ls = append(ls, l)
	}
	cs := s.detachAllLocked()
	s.mu.Unlock()
	for _, l := range ls {
		_ = l.Close()
	}
	for _, c := range cs {
		c.hardClose()
	}
	// Connections closed earlier (a protocol violation, say) may still be
	// writing what was queued to a client that does not read.
	s.openMu.Lock()
	flushing := make([]*Conn, 0, len(s.open))
	for c := range s.open {
		flushing = append(flushing, c)
	}
	s.openMu.Unlock()
	for _, c := range flushing {
		c.hardClose()
	}
	s.wg.Wait()
	return nil
}

// URL returns the service URL clients should use: the advertised URL when
// one was set, else "pulsar://" and the address of the first listener
// served, else "" when none was.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.urlLocked()
}

// DropConnections closes every client connection at once, without a
// goodbye; the listeners stay open, so clients can reconnect.
func (s *Server) DropConnections() {
	s.mu.Lock()
	cs := s.detachAllLocked()
	s.mu.Unlock()
	for _, c := range cs {
		c.hardClose()
	}
}

// detachAllLocked detaches every connection and returns them for the
// caller to close once mu is released.
func (s *Server) detachAllLocked() []*Conn {
	cs := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		cs = append(cs, c)
	}
	for _, c := range cs {
		s.detachLocked(c)
		c.abort()
	}
	return cs
}

// Conns reports how many client connections are live.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// WaitConns blocks until exactly n client connections are live, or ctx
// ends. Tests use it instead of sleeping, e.g. to see a client reconnect.
func (s *Server) WaitConns(ctx context.Context, n int) error {
	return s.waitFor(ctx, func() bool { return len(s.conns) == n })
}

// Received reports how many commands of type t the server has read, on all
// connections, including those intercepted or ignored.
func (s *Server) Received(t pulsarpb.BaseCommand_Type) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.received[t]
}

// WaitReceived blocks until the server has read and handled at least n
// commands of type t (a command taken by an interceptor or a Hold counts
// once the interceptor returned or the Hold took it), or ctx ends. So after
// WaitReceived(ctx, ACK, 2) the effects of both ACKs are visible.
func (s *Server) WaitReceived(ctx context.Context, t pulsarpb.BaseCommand_Type, n int) error {
	return s.waitFor(ctx, func() bool { return s.handled[t] >= n })
}

// LastConnect returns a copy of the last CONNECT read, or nil.
func (s *Server) LastConnect() *pulsarpb.CommandConnect {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastConnect == nil {
		return nil
	}
	return proto.CloneOf(s.lastConnect)
}

// LastAuthResponse returns a copy of the last AUTH_RESPONSE read, or nil.
func (s *Server) LastAuthResponse() *pulsarpb.CommandAuthResponse {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastAuthResp == nil {
		return nil
	}
	return proto.CloneOf(s.lastAuthResp)
}

// SetAnswerPings sets whether PING is answered with PONG (the default).
// With false the server reads and counts PINGs and stays silent, so a
// client's keepalive sees a dead broker.
func (s *Server) SetAnswerPings(answer bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answerPings = answer
}

// SetNeverConnect sets whether the server leaves CONNECT unanswered: with
// true it records CONNECT and never sends CONNECTED, AUTH_CHALLENGE or
// ERROR, so a client's connect timeout fires. Default false.
func (s *Server) SetNeverConnect(never bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.neverConnect = never
}

// SetPartitions sets the partition count PARTITIONED_METADATA reports for
// topic (0, the default, means not partitioned). Topic names are normalised
// as a broker does: "t" is "persistent://public/default/t".
func (s *Server) SetPartitions(topicName string, n int) {
	name, _, ok := parseTopic(topicName)
	if !ok {
		name = topicName
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if n <= 0 {
		delete(s.partitions, name)
		return
	}
	s.partitions[name] = n
}

// waitFor blocks until cond, called with mu held, is true, or ctx ends.
func (s *Server) waitFor(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		if cond() {
			s.mu.Unlock()
			return nil
		}
		if s.changed == nil {
			s.changed = make(chan struct{})
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// changedLocked wakes the waiters of waitFor.
func (s *Server) changedLocked() {
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
	s.x.peersChangedLocked(s)
}
