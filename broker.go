package pulsarconn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/adapters/tcp"
	tlstransport "github.com/pulsarconn/pulsarconn/adapters/tls"
	"github.com/pulsarconn/pulsarconn/core"
	"github.com/pulsarconn/pulsarconn/ports"
	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// Version is this library's version, sent in CONNECT's client_version.
const Version = "0.1.0"

// Broker is a managed connection to one Pulsar broker: it connects in the
// background, reconnects with backoff, keeps the connection alive, matches
// answers to requests, and routes the broker's pushes to the registered
// producers and consumers. All methods are safe for concurrent use.
//
// The core state machine (package core) is driven under one mutex; each
// connection has a reader goroutine, and a writer goroutine that coalesces
// queued frames into as few writes as possible while there are any. See
// docs/architecture.md.
type Broker struct {
	addr      BrokerAddress
	logical   string // BrokerURL: the proxy target when proxied, else addr.URL
	transport ports.Transport
	clock     ports.Clock
	auth      ports.Authenticator
	registry  ports.Registry
	log       *slog.Logger
	failFast  bool

	ctx    context.Context // ends at Stop: cancels dials and authentication
	cancel context.CancelFunc
	wg     sync.WaitGroup // reader, writer, dial and auth goroutines

	mu   sync.Mutex
	core *core.Conn
	conn *connection // nil unless a connection is up
	// pub is conn, for PublishMessage's path without the lock
	// (connection.tryPublish); pubOK and pubMax are what conn was last
	// told of the core's answer to "may one publish, and how large?".
	pub      atomic.Pointer[connection]
	pubOK    bool
	pubMax   int
	dialing  map[uint64]context.CancelFunc
	timer    ports.Timer
	timerAt  time.Time
	stateCh  chan struct{} // closed and replaced at every state change
	waiters  sync.Pool     // of *waiter, for Request (see getWaiter)
	queue    []queued      // deliveries, logs: carried out outside mu
	spare    []queued      // the drainer's other batch buffer, kept between drains
	draining bool
	drained  *sync.Cond // signalled as the queue empties and at each batch
	// queueBytes and batchBytes estimate the memory held by the queue and
	// by the batch being drained; the reader stops reading while their sum
	// exceeds deliveryLimit (see waitDeliveryRoomLocked).
	queueBytes    int
	batchBytes    int
	deliveryLimit int
	stopped       bool
	notices       notices       // carries out a step's notices (flushLocked)
	freed         chan struct{} // closed when a request completes; nil when nobody waits
	stopOnce      sync.Once
	stopErr       error
	stopDone      chan struct{}
	addedToRg     bool

	writeLimit int // bytes per connection's write queue; <= 0: unbounded

	observer  Observer
	framesIn  atomic.Uint64
	bytesIn   atomic.Uint64
	published atomic.Uint64
	bytesOut  atomic.Uint64
}

// Start validates the URL and options and starts connecting in the
// background; it returns at once. Use WaitConnected to wait for the first
// connection. Stop releases everything Start started.
func Start(brokerURL string, opts ...Option) (*Broker, error) {
	addr, err := ParseURL(brokerURL)
	if err != nil {
		return nil, err
	}
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	if o.transport == nil {
		if addr.TLS {
			o.transport = tlstransport.New()
		} else {
			o.transport = tcp.New()
		}
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	cfg := core.Config{
		Address:           addr.HostPort,
		ClientVersion:     o.clientVersion,
		ProxyToBrokerURL:  o.proxyToBroker,
		ConnectTimeout:    o.connectTimeout,
		OperationTimeout:  o.operationTimeout,
		KeepAliveInterval: o.keepAlive,
		BackoffMin:        o.backoffMin,
		BackoffMax:        o.backoffMax,
		Rand:              o.rand,
		RejectLimit:       o.maxRejected,
		RejectWindow:      o.rejectWindow,
		MaxPending:        o.maxPending,
	}
	if o.auth != nil {
		cfg.AuthMethod = o.auth.Name()
	}
	logical := addr.URL
	if o.proxyToBroker != "" {
		target, err := ParseURL(o.proxyToBroker)
		if err != nil {
			return nil, fmt.Errorf("pulsarconn: proxy target: %w", err)
		}
		logical = target.URL
	}
	b := &Broker{
		addr:      addr,
		logical:   logical,
		observer:  o.observer,
		transport: o.transport,
		clock:     o.clock,
		auth:      o.auth,
		registry:  o.registry,
		log:       o.logger.With(slog.String("broker", addr.URL)),
		failFast:  o.failFast,
		core:      core.New(cfg),
		dialing:   make(map[uint64]context.CancelFunc),
		stateCh:   make(chan struct{}),
		stopDone:  make(chan struct{}),

		writeLimit:    o.writeQueueLimit,
		deliveryLimit: o.deliveryQueueLimit,
	}
	b.drained = sync.NewCond(&b.mu)
	b.notices.b = b
	b.ctx, b.cancel = context.WithCancel(context.Background())
	if b.registry != nil {
		if err := b.registry.Add(b); err != nil {
			b.cancel()
			return nil, fmt.Errorf("pulsarconn: start %s: %w", addr.URL, err)
		}
		b.addedToRg = true
	}
	b.do(func(now time.Time) { b.core.Start(now) })
	return b, nil
}

// BrokerURL returns the canonical URL of the broker this connection
// serves, e.g. "pulsar://host:6650": the URL it dials, or, through a proxy
// (WithProxyToBroker), the broker the proxy forwards to. It is the key
// under which the Broker is listed in its Registry.
func (b *Broker) BrokerURL() string { return b.logical }

// DialURL returns the canonical URL the Broker dials: BrokerURL, or the
// proxy's URL when proxied.
func (b *Broker) DialURL() string { return b.addr.URL }

// State returns the connection state.
func (b *Broker) State() State {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.core.State()
}

// WatchState returns the current state and a channel that is closed at the
// next change of state.
func (b *Broker) WatchState() (State, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.core.State(), b.stateCh
}

// WaitConnected waits until the Broker is connected, or ctx ends, or the
// Broker is stopped. A context error is wrapped together with the last
// connection error, if any.
func (b *Broker) WaitConnected(ctx context.Context) error {
	for {
		b.mu.Lock()
		st, ch, last := b.core.State(), b.stateCh, b.core.LastError()
		b.mu.Unlock()
		switch st {
		case StateConnected:
			return nil
		case StateClosing, StateClosed:
			return ErrClosed
		}
		select {
		case <-ch:
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("pulsarconn: not connected to %s (last error: %w): %w", b.addr.URL, last, ctx.Err())
			}
			return fmt.Errorf("pulsarconn: not connected to %s: %w", b.addr.URL, ctx.Err())
		}
	}
}

// Metrics returns the Broker's gauges and counters.
func (b *Broker) Metrics() Metrics {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.core.Stats()
	return Metrics{
		State:      b.core.State(),
		Pending:    b.core.Pending(),
		Producers:  len(b.core.Producers()),
		Consumers:  len(b.core.Consumers()),
		FramesIn:   b.framesIn.Load(),
		FramesOut:  b.core.FramesOut() + b.published.Load(),
		BytesIn:    b.bytesIn.Load(),
		BytesOut:   b.bytesOut.Load(),
		Reconnects: st.Reconnects,
	}
}

// Stats returns the irregular-event counters.
func (b *Broker) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.core.Stats()
}

// ServerVersion returns the broker's server_version and protocol_version
// from its CONNECTED.
func (b *Broker) ServerVersion() (string, int32) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.core.ServerVersion()
}

// MaxMessageSize returns the broker's max message size from CONNECTED (5
// MiB until then).
func (b *Broker) MaxMessageSize() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.core.MaxMessageSize()
}

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

// Request sends cmd, a request-bearing command, and waits for its answer.
// The request id is assigned here (any id already in cmd is overwritten).
// The wait ends at the answer, the operation timeout (ErrRequestTimeout),
// the connection's loss (ErrDisconnected), or the end of ctx. An ERROR
// answer, and the failure variants of the lookup, partitioned-metadata and
// ack answers, are returned as a *ServerError along with the answer.
//
// While disconnected, Request waits for the connection until ctx ends, or
// fails at once with ErrDisconnected under WithFailFast.
//
// At most WithMaxPendingRequests requests are in flight at once; beyond
// that Request waits for a slot until ctx ends (ErrTooManyPendingRequests).
// It also waits while the write queue is full (ErrQueueFull).
func (b *Broker) Request(ctx context.Context, cmd *pulsarpb.BaseCommand) (*pulsarpb.BaseCommand, error) {
	return b.request(ctx, 0, cmd)
}

// RequestOn is Request bound to one connection: conn is a value of
// Connection. If that connection is gone (the Broker reconnected, or is
// reconnecting), it fails at once with an error matching ErrDisconnected
// instead of using the next connection. A producer library creates its
// producer with RequestOn and publishes with PublishMessageOn on the same
// connection, so that a SEND can never reach a connection before its
// PRODUCER.
func (b *Broker) RequestOn(ctx context.Context, conn uint64, cmd *pulsarpb.BaseCommand) (*pulsarpb.BaseCommand, error) {
	if conn == 0 {
		return nil, b.connGone(conn)
	}
	return b.request(ctx, conn, cmd)
}

// Connection identifies the current established connection: a number that
// changes at every reconnection, or 0 while not connected. See RequestOn
// and PublishMessageOn.
func (b *Broker) Connection() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.core.State() != StateConnected {
		return 0
	}
	return b.core.Gen()
}

// errConnGone marks a call bound to a connection that is gone: whenUsable
// does not wait for the next one.
var errConnGone = errors.New("connection replaced")

func (b *Broker) connGone(conn uint64) error {
	return fmt.Errorf("%w: %w (connection %d)", ErrDisconnected, errConnGone, conn)
}

// onConnLocked reports, for a call bound to conn (0: any), whether conn is
// still the established connection.
func (b *Broker) onConnLocked(conn uint64) error {
	if conn != 0 && (b.core.State() != StateConnected || b.core.Gen() != conn) {
		return b.connGone(conn)
	}
	return nil
}

func (b *Broker) request(ctx context.Context, conn uint64, cmd *pulsarpb.BaseCommand) (*pulsarpb.BaseCommand, error) {
	w := b.getWaiter()
	var id uint64
	var start time.Time
	var slot slot
	err := b.whenUsable(ctx, func(now time.Time) (<-chan struct{}, error) {
		start = now
		var ch <-chan struct{}
		var err error
		id, ch, err = slot.requestLocked(b, now, conn, cmd, w)
		return ch, err
	})
	if err != nil {
		slot.give(b)
		b.putWaiter(w) // never handed to the core
		return nil, err
	}
	select {
	case r := <-w.ch:
		b.putWaiter(w)
		if b.observer != nil {
			b.observer.Observe(RequestCompleted{BrokerURL: b.logical, Type: cmd.GetType(), Latency: b.clock.Now().Sub(start), Err: r.err})
		}
		return r.cmd, r.err
	case <-ctx.Done():
		b.mu.Lock()
		pending := b.core.Cancel(id)
		b.signalFreedLocked()
		b.mu.Unlock()
		if !pending {
			// The answer won the race: the core completed the waiter,
			// under the lock, before Cancel.
			r := <-w.ch
			b.putWaiter(w)
			return r.cmd, r.err
		}
		b.putWaiter(w) // cancelled: the core will never complete it
		return nil, fmt.Errorf("pulsarconn: %v request %d: %w", cmd.GetType(), id, ctx.Err())
	}
}

// RequestAsync is Request without the wait: it sends cmd and returns once
// the command is queued for writing, and done receives the answer, or the
// request's failure, exactly once. ctx bounds the wait for the connection,
// a request slot and room in the write queue, as for Request; once sent,
// the request ends with its answer, the operation timeout
// (WithOperationTimeout), the connection's loss or Stop. If RequestAsync
// returns an error, the command was not sent and done is never called.
//
// done runs outside the Broker's lock, on the goroutine that delivers
// pushes (often the connection's reader), in order with them (after the
// pushes the broker sent before the answer). Like a Handler it must not
// block: it may call Send, PublishMessage and RequestAsync, but not
// Request, Stop, or anything that waits for an answer, which only this
// goroutine can deliver.
//
// Unlike Request, RequestAsync does not wait for a request slot: with
// WithMaxPendingRequests requests in flight it fails at once with
// ErrTooManyPendingRequests (a done function that waited for a slot
// could wait for answers queued behind itself). It may still wait, until
// ctx ends, for the connection or for room in the write queue, which
// other goroutines provide.
//
// RequestAsync is the connection layer's own form of a request: a
// producer library keeps many in flight from one goroutine without a
// goroutine, channel or timer per request.
func (b *Broker) RequestAsync(ctx context.Context, cmd *pulsarpb.BaseCommand, done func(resp *pulsarpb.BaseCommand, err error)) error {
	if done == nil {
		return errors.New("pulsarconn: RequestAsync needs a done function")
	}
	w := asyncWaiters.Get().(*asyncWaiter)
	w.b, w.done, w.typ = b, done, cmd.GetType()
	var slot slot
	err := b.whenUsable(ctx, func(now time.Time) (<-chan struct{}, error) {
		w.start = now
		_, ch, err := slot.requestLocked(b, now, 0, cmd, w)
		if errors.Is(err, ErrTooManyPendingRequests) {
			err = fmt.Errorf("%w (RequestAsync does not wait for one)", err)
			return nil, errNoWait{err}
		}
		return ch, err
	})
	if err != nil {
		slot.give(b)
		w.release()
		return err
	}
	return nil
}

// asyncWaiter completes a RequestAsync: the core completes it under the
// lock (Done), which queues it behind the pushes to deliver; the drainer
// then calls it as a Handler (HandlePush), outside the lock.
type asyncWaiter struct {
	b     *Broker
	done  func(*pulsarpb.BaseCommand, error)
	typ   pulsarpb.BaseCommand_Type
	start time.Time
}

var asyncWaiters = sync.Pool{New: func() any { return new(asyncWaiter) }}

// Done implements core.Waiter; it runs under the Broker's lock.
func (w *asyncWaiter) Done(cmd *pulsarpb.BaseCommand, err error) {
	w.b.queueLocked(queued{handler: w, push: core.Push{Command: cmd, Err: err}})
}

// HandlePush hands the result to done.
func (w *asyncWaiter) HandlePush(p core.Push) {
	b, done, typ, start := w.b, w.done, w.typ, w.start
	w.release()
	if b.observer != nil {
		b.observer.Observe(RequestCompleted{BrokerURL: b.logical, Type: typ, Latency: b.clock.Now().Sub(start), Err: p.Err})
	}
	done(p.Command, p.Err)
}

func (w *asyncWaiter) release() {
	*w = asyncWaiter{}
	asyncWaiters.Put(w)
}

// slot is a request slot a caller holds while it waits (core.Conn.Reserve)
// — for the connection, or room in the write queue — so that the limit of
// WithMaxPendingRequests counts the callers waiting as well as the
// requests in flight.
type slot struct{ held bool }

// requestLocked gives back the slot held, if any, and tries the request;
// if the caller is to wait for the connection or room to write, it takes
// a slot for the wait, or reports ErrTooManyPendingRequests, with a channel
// closed when one may be free, when there is none.
func (s *slot) requestLocked(b *Broker, now time.Time, conn uint64, cmd *pulsarpb.BaseCommand, w core.Waiter) (uint64, <-chan struct{}, error) {
	if s.held {
		b.core.Unreserve()
		s.held = false
	}
	var id uint64
	err := b.onConnLocked(conn)
	var room <-chan struct{}
	if err == nil {
		room, err = b.writeRoomLocked()
	}
	if err == nil {
		id, err = b.core.Request(now, cmd, w)
	}
	if errors.Is(err, ErrTooManyPendingRequests) {
		return 0, b.freedLocked(), err
	}
	if b.failFast || errors.Is(err, errConnGone) || !errors.Is(err, ErrDisconnected) && !errors.Is(err, ErrQueueFull) {
		return id, room, err // no wait
	}
	if rerr := b.core.Reserve(cmd.GetType()); rerr != nil {
		return 0, b.freedLocked(), rerr
	}
	s.held = true
	return id, room, err
}

// give gives back the slot held, if any, when the caller gives up.
func (s *slot) give(b *Broker) {
	if s.held {
		b.mu.Lock()
		b.core.Unreserve()
		b.signalFreedLocked()
		b.mu.Unlock()
		s.held = false
	}
}

// freedLocked returns a channel closed when a request completes or is
// cancelled: a caller refused a request slot waits on it.
func (b *Broker) freedLocked() <-chan struct{} {
	if b.freed == nil {
		b.freed = make(chan struct{})
	}
	return b.freed
}

// signalFreedLocked wakes the callers waiting for a request slot.
func (b *Broker) signalFreedLocked() {
	if b.freed != nil {
		close(b.freed)
		b.freed = nil
	}
}

// errNoWait wraps an error whenUsable must return at once.
type errNoWait struct{ error }

func (e errNoWait) Unwrap() error { return e.error }

// writeRoomLocked reports ErrQueueFull, with a channel to wait on, when the
// connection's write queue is at or over its limit.
func (b *Broker) writeRoomLocked() (<-chan struct{}, error) {
	if b.conn == nil {
		return nil, nil // not connected: the core says so
	}
	room := b.conn.full()
	if room == nil {
		return nil, nil
	}
	return room, fmt.Errorf("%w: %d bytes queued, limit %d", ErrQueueFull, b.conn.queued.Load(), b.writeLimit)
}

// Send writes cmd, a command that expects no answer (FLOW, ACK without a
// request id, REDELIVER_UNACKNOWLEDGED_MESSAGES, ...). It returns once the
// command is queued for writing, waiting while the write queue is full
// (see WithWriteQueueLimit).
func (b *Broker) Send(ctx context.Context, cmd *pulsarpb.BaseCommand) error {
	return b.whenUsable(ctx, func(now time.Time) (<-chan struct{}, error) {
		if room, err := b.writeRoomLocked(); err != nil {
			return room, err
		}
		return nil, b.core.Send(now, cmd)
	})
}

// PublishMessage queues an already-encoded frame (typically a SEND payload
// frame built with frame.AppendMessage) for writing, unchanged. It refuses,
// with ErrMessageTooLarge, a frame larger than the broker's max message
// size plus 10 KiB of frame padding, and with ErrProtocol a buffer whose
// total-size field does not match its length. The frame is copied; the
// caller may reuse it on return. Receipts come to the producer's Handler.
//
// While the connection's write queue has no room for the frame
// (WithWriteQueueLimit), PublishMessage waits for the writer to make some,
// outside the Broker's lock, until ctx ends; it then fails with an error
// matching both ErrQueueFull and ctx's error.
func (b *Broker) PublishMessage(ctx context.Context, encoded []byte) error {
	return b.publish(ctx, 0, encoded)
}

// PublishMessageOn is PublishMessage bound to one connection (a value of
// Connection): if that connection is gone it fails at once with an error
// matching ErrDisconnected, so that a SEND never reaches a newer
// connection on which its producer was not created yet. See RequestOn.
func (b *Broker) PublishMessageOn(ctx context.Context, conn uint64, encoded []byte) error {
	if conn == 0 {
		return b.connGone(conn)
	}
	return b.publish(ctx, conn, encoded)
}

func (b *Broker) publish(ctx context.Context, conn uint64, encoded []byte) error {
	if n, ok := frame.TotalSize(encoded); !ok || int(n) != len(encoded)-4 {
		return fmt.Errorf("%w: PublishMessage needs one whole encoded frame (%d bytes, total size field %d)", ErrProtocol, len(encoded), n)
	}
	// The common case needs neither the Broker's lock nor the core: an
	// established connection with room in its queue. Taking the lock
	// for every publish made the publisher and the reader, which takes
	// it for every batch of receipts, contend for it (BenchmarkReceipts
	// and BenchmarkPublishMessage gained 5-25% in A/B runs without it).
	if c := b.pub.Load(); c != nil && (conn == 0 || conn == c.gen) && ctx.Err() == nil {
		if _, err := c.tryPublish(encoded); err == nil {
			b.published.Add(1)
			return nil
		}
		// Full, closed or not publishable: the core answers, or the
		// caller waits, below.
	}
	return b.whenUsable(ctx, func(now time.Time) (<-chan struct{}, error) {
		if err := b.onConnLocked(conn); err != nil {
			return nil, err
		}
		if err := b.core.CheckPublish(len(encoded)); err != nil {
			return nil, err
		}
		room, err := b.conn.tryEnqueue(encoded)
		if err == ErrQueueFull {
			return room, fmt.Errorf("%w: %d bytes queued, limit %d, frame of %d", ErrQueueFull, b.conn.queued.Load(), b.writeLimit, len(encoded))
		}
		if err == nil {
			b.published.Add(1)
		}
		return nil, err
	})
}

// LookupResult is a broker's answer to a topic lookup.
type LookupResult struct {
	// BrokerURL and BrokerURLTLS are the broker to connect to (Connect)
	// or to ask again (Redirect).
	BrokerURL, BrokerURLTLS string
	// Redirect is true when the answer is Redirect: look up again at
	// BrokerURL, passing Authoritative.
	Redirect bool
	// Authoritative is the flag to send with the next lookup.
	Authoritative bool
	// ProxyThroughServiceURL means: keep connecting through the service
	// URL (a proxy) and name BrokerURL as the proxy target.
	ProxyThroughServiceURL bool
}

// LookupTopic asks the broker which broker serves topic (LOOKUP). Pass the
// Authoritative flag of a previous Redirect answer. A Failed answer is
// returned as a *ServerError.
func (b *Broker) LookupTopic(ctx context.Context, topic string, authoritative bool) (*LookupResult, error) {
	resp, err := b.Request(ctx, &pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_LOOKUP.Enum(),
		LookupTopic: &pulsarpb.CommandLookupTopic{
			Topic:         proto.String(topic),
			Authoritative: proto.Bool(authoritative),
		},
	})
	if err != nil {
		return nil, err
	}
	r := resp.GetLookupTopicResponse()
	if r == nil {
		return nil, fmt.Errorf("%w: LOOKUP answered with %v", ErrProtocol, resp.GetType())
	}
	return &LookupResult{
		BrokerURL:              r.GetBrokerServiceUrl(),
		BrokerURLTLS:           r.GetBrokerServiceUrlTls(),
		Redirect:               r.GetResponse() == pulsarpb.CommandLookupTopicResponse_Redirect,
		Authoritative:          r.GetAuthoritative(),
		ProxyThroughServiceURL: r.GetProxyThroughServiceUrl(),
	}, nil
}

// PartitionedTopicMetadata returns how many partitions topic has
// (PARTITIONED_METADATA); 0 means the topic is not partitioned.
func (b *Broker) PartitionedTopicMetadata(ctx context.Context, topic string) (int, error) {
	req := partitionsRequests.Get().(*partitionsRequest)
	req.topic = topic
	resp, err := b.Request(ctx, &req.cmd)
	req.topic = ""
	partitionsRequests.Put(req)
	if err != nil {
		return 0, err
	}
	r := resp.GetPartitionMetadataResponse()
	if r == nil {
		return 0, fmt.Errorf("%w: PARTITIONED_METADATA answered with %v", ErrProtocol, resp.GetType())
	}
	return int(r.GetPartitions()), nil
}

// partitionsRequest is a reusable PARTITIONED_METADATA command: the core
// encodes a request before Request returns and keeps no reference to it,
// so the command can serve again. Building one per call cost 5 of the 14
// allocations of a round trip.
type partitionsRequest struct {
	cmd   pulsarpb.BaseCommand
	pm    pulsarpb.CommandPartitionedTopicMetadata
	typ   pulsarpb.BaseCommand_Type
	topic string
	id    uint64
}

var partitionsRequests = sync.Pool{New: func() any {
	r := &partitionsRequest{typ: pulsarpb.BaseCommand_PARTITIONED_METADATA}
	r.cmd.Type = &r.typ
	r.cmd.PartitionMetadata = &r.pm
	r.pm.Topic = &r.topic
	r.pm.RequestId = &r.id
	return r
}}

// whenUsable runs try under the lock. While it fails with ErrDisconnected
// it waits for a change of state, and while it fails with ErrQueueFull for
// the channel try returned (room in the write queue), and tries again,
// until ctx ends (or fails at once under WithFailFast). The wait is never
// under the lock.
func (b *Broker) whenUsable(ctx context.Context, try func(now time.Time) (<-chan struct{}, error)) error {
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("pulsarconn: %w", err)
		}
		var ch <-chan struct{}
		var err error
		b.do(func(now time.Time) {
			ch, err = try(now)
			if ch == nil {
				ch = b.stateCh
			}
		})
		if err == nil || b.failFast {
			return err
		}
		var what string
		var final errNoWait
		switch {
		case errors.As(err, &final):
			return final.error
		case errors.Is(err, errConnGone):
			return err // bound to a connection that will not come back
		case errors.Is(err, ErrDisconnected):
			what = "the connection"
		case errors.Is(err, ErrQueueFull):
			what = "room in the write queue"
		case errors.Is(err, ErrTooManyPendingRequests):
			what = "a request slot"
		default:
			return err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%w (gave up waiting for %s: %w)", err, what, ctx.Err())
		}
	}
}

type result struct {
	cmd *pulsarpb.BaseCommand
	err error
}

// waiter is a core.Waiter that hands the result to one waiting caller.
type waiter struct{ ch chan result }

func newWaiter() *waiter { return &waiter{ch: make(chan result, 1)} }

// getWaiter takes one of the Broker's recycled waiters (Broker.waiters):
// a waiter goes back only once its one completion has been received or can
// no longer come, so a recycled channel is always empty. Saves two
// allocations per request. The pool is the Broker's, not the package's,
// so that a channel made inside a testing/synctest bubble never reaches a
// goroutine outside it (or in another bubble): the Go runtime aborts the
// program when that happens.
func (b *Broker) getWaiter() *waiter {
	if w, ok := b.waiters.Get().(*waiter); ok {
		return w
	}
	return newWaiter()
}

func (b *Broker) putWaiter(w *waiter) { b.waiters.Put(w) }

// Done implements core.Waiter; the core completes each request once, so
// the buffered send never blocks.
func (w *waiter) Done(cmd *pulsarpb.BaseCommand, err error) { w.ch <- result{cmd, err} }

// ---------------------------------------------------------------------------
// Registrations
// ---------------------------------------------------------------------------

// NewProducerID returns a producer id not handed out before by this Broker.
func (b *Broker) NewProducerID() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.core.NewProducerID()
}

// NewConsumerID returns a consumer id not handed out before by this Broker.
func (b *Broker) NewConsumerID() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.core.NewConsumerID()
}

// Registration is a producer or consumer registered on a Broker. It lasts
// until Close, the end of the context it was registered with, or the
// Broker's Stop; it survives reconnections (its Handler is told of each
// with a PushDisconnected, and its owner re-creates the broker-side
// producer or consumer under the same id).
type Registration struct {
	b        *Broker
	id       uint64
	producer bool
	stop     func() bool
	once     sync.Once
	err      error
}

// ID returns the producer or consumer id.
func (r *Registration) ID() uint64 { return r.id }

// Close removes the registration and, when connected, sends CLOSE_PRODUCER
// or CLOSE_CONSUMER and waits for the broker's answer within ctx. Later
// calls return the first call's result.
func (r *Registration) Close(ctx context.Context) error {
	r.stop()
	r.once.Do(func() { r.err = r.remove(ctx, true) })
	return r.err
}

func (r *Registration) remove(ctx context.Context, wait bool) error {
	var w *waiter
	var sent bool
	var start time.Time
	typ := pulsarpb.BaseCommand_CLOSE_CONSUMER
	if r.producer {
		typ = pulsarpb.BaseCommand_CLOSE_PRODUCER
	}
	b := r.b
	b.do(func(now time.Time) {
		var cw core.Waiter
		switch {
		case wait:
			w = newWaiter()
			cw = w
		case b.observer != nil:
			cw = &closeWaiter{b: b, typ: typ, start: now}
		}
		start = now
		if r.producer {
			sent = b.core.RemoveProducer(now, r.id, cw)
		} else {
			sent = b.core.RemoveConsumer(now, r.id, cw)
		}
	})
	if !sent || !wait {
		return nil
	}
	select {
	case res := <-w.ch:
		if b.observer != nil {
			b.observer.Observe(RequestCompleted{BrokerURL: b.logical, Type: typ, Latency: b.clock.Now().Sub(start), Err: res.err})
		}
		return res.err
	case <-ctx.Done():
		return fmt.Errorf("pulsarconn: close of %d: %w", r.id, ctx.Err())
	}
}

// closeWaiter reports the broker's answer to a CLOSE_PRODUCER or
// CLOSE_CONSUMER that no caller waits for (the registration's context
// ended) to the Observer, as a RequestCompleted delivered from the queue,
// outside the lock.
type closeWaiter struct {
	b     *Broker
	typ   pulsarpb.BaseCommand_Type
	start time.Time
}

// Done implements core.Waiter; it runs under the Broker's lock.
func (w *closeWaiter) Done(cmd *pulsarpb.BaseCommand, err error) {
	w.b.queueLocked(queued{handler: w, push: core.Push{Command: cmd, Err: err}})
}

// HandlePush hands the answer to the Observer.
func (w *closeWaiter) HandlePush(p core.Push) {
	w.b.observer.Observe(RequestCompleted{BrokerURL: w.b.logical, Type: w.typ, Latency: w.b.clock.Now().Sub(w.start), Err: p.Err})
}

// RegisterProducer routes the pushes for producer id (receipts, send
// errors, close and migrate notices, disconnection) to h. When ctx ends
// the registration is removed and CLOSE_PRODUCER is sent, as by Close.
// The id must not be registered already (ErrDuplicateID).
func (b *Broker) RegisterProducer(ctx context.Context, id uint64, h Handler) (*Registration, error) {
	return b.register(ctx, true, id, h)
}

// RegisterConsumer routes the pushes for consumer id (messages, active
// consumer changes, end of topic, close and migrate notices,
// disconnection) to h. When ctx ends the registration is removed and
// CLOSE_CONSUMER is sent, as by Close.
func (b *Broker) RegisterConsumer(ctx context.Context, id uint64, h Handler) (*Registration, error) {
	return b.register(ctx, false, id, h)
}

func (b *Broker) register(ctx context.Context, producer bool, id uint64, h Handler) (*Registration, error) {
	if h == nil {
		return nil, errors.New("pulsarconn: nil Handler")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("pulsarconn: register %d: %w", id, err)
	}
	var err error
	b.do(func(time.Time) {
		if producer {
			err = b.core.AddProducer(id, h)
		} else {
			err = b.core.AddConsumer(id, h)
		}
	})
	if err != nil {
		return nil, err
	}
	r := &Registration{b: b, id: id, producer: producer}
	r.stop = context.AfterFunc(ctx, func() {
		r.once.Do(func() { r.err = r.remove(context.Background(), false) })
	})
	return r, nil
}

// Producers returns the ids of the registered producers, ascending.
func (b *Broker) Producers() []uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.core.Producers()
}

// Consumers returns the ids of the registered consumers, ascending.
func (b *Broker) Consumers() []uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.core.Consumers()
}

var _ ports.Listing = (*Broker)(nil)

// ---------------------------------------------------------------------------
// Stop
// ---------------------------------------------------------------------------

// Stop closes the Broker gracefully: it sends CLOSE_PRODUCER and
// CLOSE_CONSUMER for every registration and waits for their answers while
// ctx allows, then fails whatever is still pending with ErrClosed, tells
// every Handler (PushDisconnected with ErrClosed), closes the connection,
// removes the Broker from its Registry, and waits for every goroutine it
// started. It returns ctx's error if ctx ended before the broker answered
// the closes (an answer that refuses a close is only logged), or while a
// Handler or the Observer had not returned: Stop does not wait past ctx
// for user code, and what is abandoned then — the deliveries queued behind
// that call, and the goroutines that run them — finishes when it returns.
// The Broker is stopped either way. Later calls wait for the first and
// return its result.
func (b *Broker) Stop(ctx context.Context) error {
	b.stopOnce.Do(func() {
		defer close(b.stopDone)
		b.stopErr = b.stop(ctx)
	})
	<-b.stopDone
	return b.stopErr
}

func (b *Broker) stop(ctx context.Context) error {
	var waiters []*waiter
	b.doDetached(func(now time.Time) {
		b.core.BeginClose(now, func(uint64) core.Waiter {
			w := newWaiter()
			waiters = append(waiters, w)
			return w
		})
	})
	var errs []error
wait:
	for _, w := range waiters {
		select {
		case r := <-w.ch:
			// A refused or failed close changes nothing: the
			// registration is gone either way. It is logged, not
			// returned.
			if r.err != nil {
				b.log.Warn("close during stop failed", slog.Any("error", r.err))
			}
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("pulsarconn: stop: closing producers and consumers: %w", ctx.Err()))
			break wait
		}
	}
	b.doDetached(func(now time.Time) {
		b.core.FinishClose(now)
		b.stopped = true
		if b.timer != nil {
			b.timer.Stop()
			b.timer = nil
		}
	})
	b.cancel()
	if b.addedToRg {
		b.registry.Remove(b)
	}
	// The last deliveries (PushDisconnected to every Handler, the
	// Observer's ConnectionClosed) and the Broker's goroutines end on
	// their own; a Handler that blocks holds them up, but not Stop past
	// ctx.
	finished := make(chan struct{})
	go func() {
		b.mu.Lock()
		for b.draining || len(b.queue) > 0 {
			b.drained.Wait()
		}
		b.mu.Unlock()
		b.wg.Wait()
		close(finished)
	}()
	select {
	case <-finished:
	case <-ctx.Done():
		select {
		case <-finished:
		default:
			errs = append(errs, fmt.Errorf("pulsarconn: stop: a Handler or Observer has not returned: %w", ctx.Err()))
		}
	}
	return errors.Join(errs...)
}

// ---------------------------------------------------------------------------
// Driving the core
// ---------------------------------------------------------------------------

// do runs f on the core under the lock, carries out the step's results,
// and then delivers queued pushes outside the lock.
func (b *Broker) do(f func(now time.Time)) {
	if b.step(f) {
		b.drain()
	}
}

// doDetached is do for Stop: the deliveries the step queues run on a
// goroutine of their own, never on the caller's, so that a Handler that
// blocks cannot hold Stop past its context.
func (b *Broker) doDetached(f func(now time.Time)) {
	if b.step(f) {
		b.drainDetached()
	}
}

// step runs f on the core under the lock and carries out the step's
// results; it reports whether the caller must drain the queue.
func (b *Broker) step(f func(now time.Time)) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clock.Now()
	f(now)
	return b.flushLocked(now)
}

// drainDetached drains the queue on a goroutine of its own, counted in wg.
func (b *Broker) drainDetached() {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.drain()
	}()
}

// flushLocked carries out a step's results: output to the writer, the
// effects that must happen under the lock, the queueing of the rest, and
// the timer. It reports whether the caller must drain the queue.
func (b *Broker) flushLocked(now time.Time) bool {
	rd := b.core.Ready()
	for _, d := range rd.Dials {
		b.startDial(d.Gen, d.Address)
	}
	for _, c := range rd.Closes {
		b.closeGen(c.Gen)
	}
	for _, a := range rd.Auths {
		b.startAuth(a.Gen, a.Initial, a.Challenge)
	}
	if len(rd.Completions) > 0 {
		b.signalFreedLocked()
	}
	b.notices.rd = rd
	rd.Walk(&b.notices)
	b.notices.rd = nil
	// The timer is armed before the output is queued: once a peer can
	// see a request, its deadline is already set (tests that advance a
	// fake clock on seeing a frame rely on this order).
	b.armTimer(now, rd.Deadline)
	// Before the step's output is queued: a publish on the path without
	// the lock must not follow what ends the connection's use.
	b.updatePublishableLocked()
	if len(rd.Output) > 0 && b.conn != nil {
		// An error means the writer already failed; its goroutine
		// reports that to the core.
		_ = b.conn.enqueue(rd.Output)
	}
	b.core.Advance()
	if len(b.queue) > 0 && !b.draining {
		b.draining = true
		return true
	}
	return false
}

// notices carries out a step's notices, in order, under the lock:
// completions at once, the rest queued for drain.
type notices struct {
	b  *Broker
	rd *core.Ready
}

func (n *notices) Complete(i int) {
	c := &n.rd.Completions[i]
	c.Waiter.Done(c.Result, c.Err)
}

func (n *notices) Deliver(i int) {
	d := &n.rd.Deliveries[i]
	n.b.queueLocked(queued{handler: d.Handler, push: d.Push})
}

func (n *notices) Log(i int) {
	l := &n.rd.Logs[i]
	n.b.queueLocked(queued{level: l.Level, msg: l.Msg, attrs: l.Attrs})
}

// State wakes the watchers of the state and queues the Observer's event
// the core says the change makes.
func (n *notices) State(i int) {
	b, sc := n.b, &n.rd.States[i]
	close(b.stateCh)
	b.stateCh = make(chan struct{})
	if b.observer == nil {
		return
	}
	var ev Event
	switch sc.Event {
	case core.EventOpened:
		ev = ConnectionOpened{BrokerURL: b.logical, Reconnect: sc.Reconnect}
	case core.EventClosed:
		ev = ConnectionClosed{BrokerURL: b.logical, Err: sc.Cause}
	case core.EventHandshakeFailed:
		ev = HandshakeFailed{BrokerURL: b.logical, Err: sc.Cause}
	default:
		return
	}
	b.queueLocked(queued{event: ev})
}

// updatePublishableLocked tells the connection whether publishes may
// bypass the lock, when that changed.
func (b *Broker) updatePublishableLocked() {
	if b.conn == nil {
		return
	}
	ok := b.core.CheckPublish(0) == nil && b.core.Gen() == b.conn.gen
	max := b.core.MaxFrameSize()
	if ok != b.pubOK || max != b.pubMax {
		b.pubOK, b.pubMax = ok, max
		b.conn.setPublishable(ok, max)
	}
}

// queued is a push to deliver (handler set) or a log record to write,
// waiting for drain: what it needs of a core.Effect, which is twice as
// large and was copied twice per answer.
type queued struct {
	handler core.Handler
	push    core.Push
	event   Event // for the Observer, when not nil
	level   slog.Level
	msg     string
	attrs   []slog.Attr
}

// queueLocked queues a delivery or a log for drain.
func (b *Broker) queueLocked(q queued) {
	b.queue = append(b.queue, q)
	b.queueBytes += q.cost()
}

// effectOverhead estimates what a queued item holds besides its payload:
// the item itself and the decoded command it carries.
const effectOverhead = 512

// cost estimates the memory a queued item holds: the payload of a MESSAGE
// (which aliases the whole frame read for it) plus a fixed cost.
func (q *queued) cost() int {
	n := effectOverhead
	if p := q.push.Payload; p != nil {
		n += len(p.BrokerEntryMetadata) + len(p.Metadata) + len(p.Data)
	}
	return n
}

// drain carries out queued deliveries and logs, in order, outside the
// lock. One goroutine drains at a time, so a Handler sees its pushes in
// order and may call the Broker (its own calls' pushes are queued behind).
func (b *Broker) drain() {
	b.mu.Lock()
	// The queue and this batch swap buffers at every round, and both are
	// kept for the next drain: making a new one each time grew it again
	// from nothing, which was 7% of the receipts benchmark's CPU.
	batch := b.spare
	b.spare = nil
	for {
		b.batchBytes = 0
		if len(b.queue) == 0 {
			b.draining = false
			b.queueBytes = 0
			if cap(batch) <= maxKeptBatch {
				b.spare = batch[:0]
			}
			b.drained.Broadcast()
			b.mu.Unlock()
			return
		}
		batch, b.queue = b.queue, batch[:0]
		b.batchBytes, b.queueBytes = b.queueBytes, 0
		// A reader held back by the delivery limit may go on.
		b.drained.Broadcast()
		b.mu.Unlock()
		for i := range batch {
			q := &batch[i]
			switch {
			case q.handler != nil:
				q.handler.HandlePush(q.push)
			case q.event != nil:
				b.observer.Observe(q.event)
			default:
				b.log.LogAttrs(context.Background(), q.level, q.msg, q.attrs...)
			}
			*q = queued{}
		}
		b.mu.Lock()
	}
}

// maxKeptBatch is the largest delivery batch buffer kept between drains,
// in effects (a few hundred KB): enough for the read batches of a busy
// connection, not for a rare burst.
const maxKeptBatch = 1024

func (b *Broker) armTimer(now, next time.Time) {
	if next.Equal(b.timerAt) || b.stopped {
		return
	}
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	b.timerAt = next
	if next.IsZero() {
		return
	}
	b.timer = b.clock.AfterFunc(next.Sub(now), b.onTimer)
}

func (b *Broker) onTimer() {
	b.do(func(now time.Time) {
		if b.stopped {
			return
		}
		b.timerAt = time.Time{} // this timer is spent: arm the next one
		b.timer = nil
		b.core.Tick(now)
		if b.conn != nil {
			b.conn.trim()
		}
	})
}

func (b *Broker) startDial(gen uint64, address string) {
	ctx, cancel := context.WithCancel(b.ctx)
	b.dialing[gen] = cancel
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		// The dialling goroutine goes on as the connection's reader
		// rather than starting one: one goroutine per connection
		// instead of two whose stacks come and go. The dial is a call
		// of its own so that its frame is gone while the reader waits.
		if c := b.dial(ctx, cancel, gen, address); c != nil {
			b.readLoop(c)
		}
	}()
}

// dial connects generation gen to address and hands the connection to
// the core; it returns nil if the dial failed or is no longer wanted.
func (b *Broker) dial(ctx context.Context, cancel context.CancelFunc, gen uint64, address string) *connection {
	c, err := b.transport.Dial(ctx, address)
	cancel() // the context is the dial's only
	b.mu.Lock()
	delete(b.dialing, gen)
	current := gen == b.core.Gen() && b.core.State() == core.StateConnecting && !b.stopped
	if err != nil || !current {
		if err == nil {
			c.Close()
			err = errors.New("abandoned")
		}
		b.mu.Unlock()
		b.do(func(now time.Time) {
			b.core.ConnFailed(now, gen, fmt.Errorf("pulsarconn: dial %s: %w", address, err))
		})
		return nil
	}
	conn := newConnection(gen, c, b.writeLimit, &b.wg, b.writeFailed, &b.bytesOut)
	b.conn = conn
	b.pub.Store(conn)
	b.pubOK = false
	now := b.clock.Now()
	b.core.ConnUp(now, gen)
	drain := b.flushLocked(now)
	b.mu.Unlock()
	if drain {
		// Not on this goroutine, which must go on to read: a Handler
		// that waited for an answer would hold up the handshake.
		b.drainDetached()
	}
	return conn
}

// closeGen closes the connection (or cancels the dial) of generation gen.
func (b *Broker) closeGen(gen uint64) {
	if cancel, ok := b.dialing[gen]; ok {
		cancel()
	}
	if b.conn != nil && b.conn.gen == gen {
		b.conn.close()
		b.conn = nil
		b.pub.Store(nil)
		b.drained.Broadcast() // its reader may be held back by the delivery limit
	}
}

func (b *Broker) startAuth(gen uint64, initial bool, challenge []byte) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		var data []byte
		var err error
		switch {
		case b.auth == nil:
			// The broker challenged a connection that presented no
			// credentials: answer with none rather than leave it
			// hanging.
		case initial:
			data, err = b.auth.Initial(b.ctx)
		default:
			data, err = b.auth.Challenge(b.ctx, challenge)
		}
		b.do(func(now time.Time) { b.core.AuthResult(now, gen, initial, data, err) })
	}()
}

// maxReadBatch bounds how many frames the reader hands to the core under
// one acquisition of the lock.
const maxReadBatch = 64

// readLoop reads c until it fails or is closed.
func (b *Broker) readLoop(c *connection) {
	b.mu.Lock()
	max := b.core.MaxFrameSize()
	b.mu.Unlock()
	fr := frame.NewReader(c.conn, max)
	// The batch grows with the load, up to maxReadBatch; an idle
	// connection's holds one frame. (A batch made at full size here would
	// sit on the reader's stack and keep it from shrinking.)
	var batch []*frame.Frame
	for {
		// Wait for traffic here, at the top of the goroutine's stack
		// (see Reader.Fill).
		batch = batch[:0]
		err := fr.Fill()
		if err == nil {
			batch, err = b.readBatch(fr, batch)
		}
		if len(batch) > 0 {
			fr.SetMaxFrameSize(b.handleBatch(c, batch))
		}
		if err != nil {
			b.readFailed(c, err)
			return
		}
	}
}

// readBatch reads the frame the read blocks for, then every whole frame
// the same read already brought: under load, one lock and one flush serve
// many frames instead of one each. It stops after a CONNECTED, which may
// change the frame limit. Kept apart from readLoop so that the frame the
// reader goroutine blocks in is small (with Reader.Fill): an idle
// connection's reader stack then shrinks to 4 KiB at the next collections
// instead of staying at 8.
func (b *Broker) readBatch(fr *frame.Reader, batch []*frame.Frame) ([]*frame.Frame, error) {
	for {
		body, err := fr.NextBody()
		if err != nil {
			return batch, err
		}
		b.framesIn.Add(1)
		b.bytesIn.Add(uint64(len(body)) + 4)
		f, err := frame.Parse(body)
		if err != nil {
			return batch, err
		}
		batch = append(batch, f)
		if len(batch) == maxReadBatch || f.Command.GetType() == pulsarpb.BaseCommand_CONNECTED || !fr.Ready() {
			return batch, nil
		}
	}
}

// handleBatch hands the frames read on c to the core under one lock, then
// delivers; it returns the frame size limit to read on with.
func (b *Broker) handleBatch(c *connection, batch []*frame.Frame) int {
	b.mu.Lock()
	now := b.clock.Now()
	for i, f := range batch {
		b.core.HandleFrame(now, c.gen, f)
		batch[i] = nil
	}
	max := b.core.MaxFrameSize()
	drain := b.flushLocked(now)
	if !drain {
		b.waitDeliveryRoomLocked(c)
	}
	b.mu.Unlock()
	if drain {
		b.drain()
	}
	return max
}

// readFailed tells the core that reading c failed with err.
func (b *Broker) readFailed(c *connection, err error) {
	if errors.Is(err, frame.ErrMalformed) || errors.Is(err, frame.ErrFrameTooLarge) {
		err = fmt.Errorf("%w: %w", ErrProtocol, err)
	} else {
		err = fmt.Errorf("pulsarconn: read: %w", err)
	}
	b.do(func(now time.Time) { b.core.ConnFailed(now, c.gen, err) })
}

// waitDeliveryRoomLocked holds the reader of c back while the pushes read
// and not yet handled exceed the delivery limit and another goroutine is
// draining them (a reader that drains itself reads nothing meanwhile
// anyway). Not reading makes the socket's buffers fill and TCP flow
// control stop the broker, so a slow Handler costs at most the limit plus
// one frame, not memory without bound. The wait ends as the drainer takes
// its next batch or finishes, or when c is closed.
func (b *Broker) waitDeliveryRoomLocked(c *connection) {
	for b.deliveryLimit > 0 && b.draining && b.queueBytes+b.batchBytes > b.deliveryLimit && b.conn == c {
		b.drained.Wait()
	}
}

func (b *Broker) writeFailed(gen uint64, err error) {
	b.do(func(now time.Time) { b.core.ConnFailed(now, gen, fmt.Errorf("pulsarconn: write: %w", err)) })
}
