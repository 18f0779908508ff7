package core

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// State is the connection's lifecycle state.
type State int32

// The states, in lifecycle order. Any live state (Connecting, Handshaking,
// Connected) falls back to Disconnected when the connection is lost, and
// Disconnected moves to Connecting when the backoff delay has passed.
const (
	StateDisconnected State = iota
	StateConnecting
	StateHandshaking
	StateConnected
	StateClosing
	StateClosed
)

var stateNames = [...]string{"disconnected", "connecting", "handshaking", "connected", "closing", "closed"}

// String implements fmt.Stringer.
func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int32(s))
}

// Defaults, anchored on the official Java and Go clients.
const (
	DefaultConnectTimeout    = 10 * time.Second
	DefaultOperationTimeout  = 30 * time.Second
	DefaultKeepAliveInterval = 30 * time.Second
	DefaultBackoffMin        = 100 * time.Millisecond
	DefaultBackoffMax        = 60 * time.Second
)

// Config configures a Conn. Zero durations take the defaults above.
type Config struct {
	// Address is the "host:port" handed to the Transport.
	Address string
	// ClientVersion is CONNECT's client_version.
	ClientVersion string
	// ProtocolVersion is CONNECT's protocol_version (frame.ProtocolVersion
	// when 0).
	ProtocolVersion int32
	// ProxyToBrokerURL, when set, goes in CONNECT's proxy_to_broker_url:
	// the connection is to a proxy that should forward to that broker.
	// A proxy takes the broker's "host:port", without the URL's scheme.
	ProxyToBrokerURL string
	// AuthMethod is CONNECT's auth_method_name; when empty no
	// authentication data is sent and no AuthRequest is made for the
	// handshake.
	AuthMethod string

	ConnectTimeout    time.Duration
	OperationTimeout  time.Duration
	KeepAliveInterval time.Duration
	BackoffMin        time.Duration
	BackoffMax        time.Duration
	// Rand returns numbers in [0, 1) for backoff jitter; nil means no
	// jitter randomness (the midpoint of the jitter range).
	Rand func() float64
	// Backoff, when set, replaces the default backoff (BackoffMin,
	// BackoffMax and Rand are then unused).
	Backoff BackoffPolicy

	// RejectLimit and RejectWindow: more than RejectLimit answers of
	// TooManyRequests within RejectWindow drop the connection, which
	// reconnects after the backoff (a broker that keeps shedding load on
	// this connection gets a fresh one). RejectLimit <= 0: never.
	RejectLimit  int
	RejectWindow time.Duration
	// MaxPending bounds the requests in flight, counting the slots
	// Reserved by callers that wait for the connection: beyond it Request
	// and Reserve fail with ErrTooManyPending (the CLOSE_* requests the
	// Conn sends itself are not refused). 0: unbounded.
	MaxPending int
}

// Waiter is the caller waiting for a request's answer. The driver calls
// Done, exactly once per request, when it carries out a Completion.
type Waiter interface {
	Done(result *pulsarpb.BaseCommand, err error)
}

// Stats counts the irregular events a Conn has seen. Each is also logged.
type Stats struct {
	UnknownCommands   uint64 // command types not expected from a broker
	UnknownRequests   uint64 // answers for request ids not pending
	UnknownProducers  uint64 // pushes for producer ids not registered
	UnknownConsumers  uint64 // pushes for consumer ids not registered
	BadChecksums      uint64 // MESSAGE frames whose CRC32C did not match
	Reconnects        uint64 // handshakes completed after the first
	HandshakeFailures uint64 // connection attempts that did not reach Connected
}

// sent is a request in the FIFO of requests sent (Conn.reqs).
type sent struct {
	id uint64
	// at is when the request was sent; its deadline, at plus the
	// operation timeout, is computed for the front only (deadline): the
	// addition cost 2-3% of a request's instructions when every request
	// paid for it.
	at     time.Time
	waiter Waiter
	typ    pulsarpb.BaseCommand_Type
	// live: the request awaits its answer. An answered, timed out or
	// cancelled one stays in the FIFO, not live, until it reaches the
	// front.
	live bool
}

// deadline is when e times out.
func (c *Conn) deadline(e *sent) time.Time { return e.at.Add(c.cfg.OperationTimeout) }

// Conn is the sans-I/O state machine of one managed broker connection.
// It is not safe for concurrent use: the driver serialises every call.
// See the package documentation for the calling protocol.
type Conn struct {
	cfg     Config
	state   State
	gen     uint64 // generation of the current connection attempt
	backoff BackoffPolicy

	reconnectAt    time.Time // when to dial again (StateDisconnected)
	connectBy      time.Time // connect deadline (Connecting, Handshaking)
	lastReceived   time.Time
	silentFrom     time.Time // the lastReceived silentBy was computed from
	silentBy       time.Time // lastReceived + 2 keepalive intervals (silence)
	nextPing       time.Time
	everConnected  bool
	handlersLive   bool // handlers have not been told of the current loss
	lastErr        error
	serverVersion  string
	serverProtocol int32
	maxMessageSize int
	// up: the connection of the current generation is established and
	// not lost. Frames are taken only while it is, so that a frame read
	// from a lost connection is ignored in StateClosing too.
	up bool

	nextRequestID uint64
	// reqs[reqHead:] are the requests sent, in the order of their ids,
	// which go up by one from request to request: the request with id
	// sits at reqHead + (id - reqs[reqHead].id), found without a map
	// (the map's insert, lookup and delete were 5% of the instructions
	// of a round trip). The front is always a live request: forget
	// drops the entries that are not, and only from the front, so the
	// ids stay consecutive. The operation timeout is the same for every
	// request, so the front's deadline is the earliest. The front
	// advances by index: deleting it from the slice moved every entry
	// behind it, at every answer.
	reqs      []sent
	reqHead   int
	pending   int // live entries of reqs
	reserved  int // request slots Reserved (Config.MaxPending)
	producers map[uint64]Handler
	consumers map[uint64]Handler

	rd        Ready
	stats     Stats
	framesOut uint64

	// The TooManyRequests window (Config.RejectLimit).
	rejections []time.Time
	// The last ids NewProducerID and NewConsumerID handed out.
	lastProducer, lastConsumer uint64
	// stoppedConnected: the stop began on an established connection, so
	// its end is an EventClosed.
	stoppedConnected bool

	// At most one AuthRequest is in flight per connection (authBusy);
	// the challenges that arrive meanwhile are merged into one, the
	// latest (authNext, if hasNext), asked for when the answer comes.
	authBusy bool
	hasNext  bool
	authNext []byte

	// refusal is why the broker's refusal of the credentials ended the
	// Conn for good (see refused); nil unless it did.
	refusal error

	// secrets are the credentials the Conn has sent (see remember), the
	// latest maxSecrets, oldest first: the broker's text is redacted of
	// them before the Conn logs or returns it.
	secrets []string
}

// New returns a Conn in StateDisconnected. Call Start to begin.
func New(cfg Config) *Conn {
	if cfg.ProtocolVersion == 0 {
		cfg.ProtocolVersion = frame.ProtocolVersion
	}
	setDefault(&cfg.ConnectTimeout, DefaultConnectTimeout)
	setDefault(&cfg.OperationTimeout, DefaultOperationTimeout)
	setDefault(&cfg.KeepAliveInterval, DefaultKeepAliveInterval)
	setDefault(&cfg.BackoffMin, DefaultBackoffMin)
	setDefault(&cfg.BackoffMax, DefaultBackoffMax)
	return &Conn{
		cfg:            cfg,
		backoff:        cfg.backoffPolicy(),
		nextRequestID:  1,
		producers:      make(map[uint64]Handler),
		consumers:      make(map[uint64]Handler),
		maxMessageSize: frame.DefaultMaxMessageSize,
	}
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// Config returns the configuration with defaults filled in.
func (c *Conn) Config() Config { return c.cfg }

// State returns the current state.
func (c *Conn) State() State { return c.state }

// Stats returns the irregular-event counters.
func (c *Conn) Stats() Stats { return c.stats }

// FramesOut returns how many frames the Conn has written (published frames,
// which bypass it, are not counted).
func (c *Conn) FramesOut() uint64 { return c.framesOut }

// LastError returns why the last connection attempt or connection ended,
// or nil.
func (c *Conn) LastError() error { return c.lastErr }

// ServerVersion returns CONNECTED's server_version and protocol_version.
func (c *Conn) ServerVersion() (string, int32) { return c.serverVersion, c.serverProtocol }

// MaxMessageSize returns the broker's max message size (CONNECTED's, or
// the default until then).
func (c *Conn) MaxMessageSize() int { return c.maxMessageSize }

// MaxFrameSize returns the largest frame accepted in either direction: the
// max message size plus frame.Padding.
func (c *Conn) MaxFrameSize() int { return c.maxMessageSize + frame.Padding }

// Gen returns the generation of the current connection attempt.
func (c *Conn) Gen() uint64 { return c.gen }

// Ready returns what the inputs since the last Advance produced, with the
// next deadline computed afresh. Call Advance once it is carried out.
func (c *Conn) Ready() *Ready {
	c.rd.Deadline = c.nextDeadline()
	return &c.rd
}

// Advance forgets the Ready carried out.
func (c *Conn) Advance() { c.rd.reset() }

// OutputAlone returns Ready's Output and reports whether it is all there
// is to carry out since the last Advance: no dial, close,
// authentication, completion, delivery, state change, log or Latest
// frame. A driver whose step only sent requests, with others already
// pending, may then queue it and call AdvanceOutput without Ready: the
// next deadline has not moved (the oldest pending request is the same,
// and nothing else that sets a deadline changes when a request is sent).
func (c *Conn) OutputAlone() ([]byte, bool) { return c.rd.Output, c.rd.onlyOutput() }

// AdvanceOutput forgets Output, carried out alone (see OutputAlone).
func (c *Conn) AdvanceOutput() { c.rd.Output = c.rd.Output[:0] }

// nextDeadline returns the earliest of the timers the state keeps: the
// reconnect, the connect deadline, the keepalive's ping and expiry, and the
// front of the request deadline FIFO.
func (c *Conn) nextDeadline() time.Time {
	var next time.Time
	earliest := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	switch c.state {
	case StateDisconnected:
		earliest(c.reconnectAt)
	case StateConnecting, StateHandshaking:
		earliest(c.connectBy)
	case StateConnected, StateClosing:
		if c.state == StateConnected {
			earliest(c.nextPing)
			earliest(c.silence())
		}
		if e := c.front(); e != nil {
			earliest(c.deadline(e))
		}
	}
	return next
}

// front returns the oldest pending request, or nil.
func (c *Conn) front() *sent {
	if c.reqHead == len(c.reqs) {
		return nil
	}
	return &c.reqs[c.reqHead]
}

// lookup returns the pending request with id, or nil.
func (c *Conn) lookup(id uint64) *sent {
	e := c.front()
	if e == nil {
		return nil
	}
	i := id - e.id // wraps to a huge value for an id before the front
	if i >= uint64(len(c.reqs)-c.reqHead) {
		return nil
	}
	e = &c.reqs[c.reqHead+int(i)]
	if !e.live {
		return nil
	}
	return e
}

// forget takes e, a pending request, out of pending, and drops the
// entries at the front that are no longer pending.
func (c *Conn) forget(e *sent) {
	*e = sent{id: e.id}
	c.pending--
	for c.reqHead < len(c.reqs) && !c.reqs[c.reqHead].live {
		c.reqHead++
	}
	switch {
	case c.reqHead == len(c.reqs):
		c.reqs, c.reqHead = c.reqs[:0], 0
	case c.reqHead >= 64 && 2*c.reqHead >= len(c.reqs):
		// Move the rest down once the dropped front is the larger
		// part, so that each entry moves at most once on average.
		n := copy(c.reqs, c.reqs[c.reqHead:])
		clear(c.reqs[n:])
		c.reqs, c.reqHead = c.reqs[:n], 0
	}
}

// silence returns when the connection counts as lost if nothing more
// arrives: two keepalive intervals after the last frame received. It is
// computed once per lastReceived, not at every step.
func (c *Conn) silence() time.Time {
	if c.lastReceived != c.silentFrom || c.silentBy.IsZero() {
		c.silentFrom, c.silentBy = c.lastReceived, c.lastReceived.Add(2*c.cfg.KeepAliveInterval)
	}
	return c.silentBy
}

// ---------------------------------------------------------------------------
// Lifecycle inputs
// ---------------------------------------------------------------------------

// Start begins connecting: it asks for a dial at once.
func (c *Conn) Start(now time.Time) {
	if c.state != StateDisconnected || c.gen != 0 {
		return
	}
	c.dial(now)
}

func (c *Conn) dial(now time.Time) {
	c.gen++
	c.connectBy = now.Add(c.cfg.ConnectTimeout)
	c.setState(StateConnecting)
	c.rd.Dials = append(c.rd.Dials, Dial{Gen: c.gen, Address: c.cfg.Address, Deadline: c.connectBy})
}

// ConnUp reports that the dial of generation gen succeeded. A stale
// generation (the attempt was abandoned) is answered with a Close.
func (c *Conn) ConnUp(now time.Time, gen uint64) {
	if gen != c.gen || c.state != StateConnecting {
		why := ErrConnectTimeout
		if c.state >= StateClosing {
			why = ErrClosed // the attempt was abandoned by BeginClose or FinishClose
		}
		c.rd.Closes = append(c.rd.Closes, Close{Gen: gen, Err: why})
		return
	}
	c.setState(StateHandshaking)
	c.up = true
	c.lastReceived = now
	// The limit is the new broker's: the default until its CONNECTED
	// says otherwise, not what the previous connection's broker said.
	c.maxMessageSize = frame.DefaultMaxMessageSize
	c.rd.Output = c.rd.Output[:0]
	c.rd.clearLatest()
	c.authBusy, c.hasNext, c.authNext = false, false, nil
	if c.cfg.AuthMethod != "" {
		c.askAuth(AuthRequest{Gen: gen, Initial: true})
		return
	}
	c.writeConnect(nil)
}

// askAuth makes an AuthRequest, or, while one is in flight, keeps its
// challenge to ask for when that one is answered, in place of any kept
// before: a broker that sends challenges faster than the Authenticator
// answers gets one call at a time, and the answer to its latest.
func (c *Conn) askAuth(a AuthRequest) {
	if c.authBusy {
		c.hasNext, c.authNext = true, a.Challenge
		return
	}
	c.authBusy = true
	c.rd.Auths = append(c.rd.Auths, a)
}

// ConnFailed reports that the dial of generation gen failed, or that the
// established connection of generation gen broke (a read or write error,
// end of stream, or a malformed frame).
func (c *Conn) ConnFailed(now time.Time, gen uint64, err error) {
	if gen != c.gen {
		return
	}
	switch c.state {
	case StateConnecting, StateHandshaking, StateConnected:
		c.lost(now, err)
	case StateClosing:
		// Stopping: the CLOSE_* requests in flight fail; no reconnect.
		c.up = false
		c.lastErr = err
		c.rd.Closes = append(c.rd.Closes, Close{Gen: c.gen, Err: err})
		c.rd.Output = c.rd.Output[:0]
		c.rd.clearLatest()
		c.failAll(fmt.Errorf("%w: %w", ErrDisconnected, err), PushDisconnected)
	}
}

// AuthResult reports the Authenticator's answer to the AuthRequest of
// generation gen.
func (c *Conn) AuthResult(now time.Time, gen uint64, initial bool, data []byte, err error) {
	if gen != c.gen {
		return
	}
	c.authBusy = false
	next, hasNext := c.authNext, c.hasNext
	c.hasNext, c.authNext = false, nil
	if c.state != StateHandshaking && c.state != StateConnected {
		return
	}
	if err != nil {
		c.lost(now, fmt.Errorf("%w: %w", ErrAuthentication, err))
		return
	}
	if initial {
		c.writeConnect(data)
	} else {
		c.remember(data)
		c.writeLatest(latestAuthResponse, &pulsarpb.BaseCommand{
			Type: pulsarpb.BaseCommand_AUTH_RESPONSE.Enum(),
			AuthResponse: &pulsarpb.CommandAuthResponse{
				ClientVersion:   proto.String(c.cfg.ClientVersion),
				ProtocolVersion: proto.Int32(c.cfg.ProtocolVersion),
				Response: &pulsarpb.AuthData{
					AuthMethodName: proto.String(c.cfg.AuthMethod),
					AuthData:       data,
				},
			},
		})
	}
	if hasNext {
		c.askAuth(AuthRequest{Gen: gen, Challenge: next})
	}
}

func (c *Conn) writeConnect(authData []byte) {
	cmd := &pulsarpb.CommandConnect{
		ClientVersion:   proto.String(c.cfg.ClientVersion),
		ProtocolVersion: proto.Int32(c.cfg.ProtocolVersion),
		FeatureFlags: &pulsarpb.FeatureFlags{
			SupportsAuthRefresh:         proto.Bool(true),
			SupportsBrokerEntryMetadata: proto.Bool(true),
			SupportsPartialProducer:     proto.Bool(true),
		},
	}
	if c.cfg.AuthMethod != "" {
		cmd.AuthMethodName = proto.String(c.cfg.AuthMethod)
		cmd.AuthData = authData
		c.remember(authData)
	}
	if c.cfg.ProxyToBrokerURL != "" {
		cmd.ProxyToBrokerUrl = proto.String(c.cfg.ProxyToBrokerURL)
	}
	c.write(&pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_CONNECT.Enum(), Connect: cmd})
}

// Drop ends the current connection (or connection attempt) with cause, as
// if it had broken: pending requests fail, handlers are told, and a
// reconnect is scheduled after the backoff. The driver uses it to reopen a
// connection the broker keeps rejecting. It does nothing unless a
// connection is live or being set up.
func (c *Conn) Drop(now time.Time, cause error) {
	switch c.state {
	case StateConnecting, StateHandshaking, StateConnected:
		c.lost(now, cause)
	}
}

// Tick handles every deadline that has passed by now: reconnection after
// backoff, the connect timeout, keepalive pings and expiry, and request
// timeouts.
func (c *Conn) Tick(now time.Time) {
	switch c.state {
	case StateDisconnected:
		if !c.reconnectAt.IsZero() && !now.Before(c.reconnectAt) {
			c.dial(now)
		}
	case StateConnecting, StateHandshaking:
		if !now.Before(c.connectBy) {
			c.lost(now, fmt.Errorf("%w after %v", ErrConnectTimeout, c.cfg.ConnectTimeout))
		}
	case StateConnected:
		if !now.Before(c.silence()) {
			c.lost(now, fmt.Errorf("%w: nothing received for %v", ErrKeepaliveTimeout, now.Sub(c.lastReceived)))
			return
		}
		if !now.Before(c.nextPing) {
			c.writeLatest(latestPing, &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_PING.Enum(), Ping: &pulsarpb.CommandPing{}})
			c.nextPing = now.Add(c.cfg.KeepAliveInterval)
		}
		c.expireRequests(now)
	case StateClosing:
		c.expireRequests(now)
	}
}

func (c *Conn) expireRequests(now time.Time) {
	for {
		e := c.front()
		if e == nil || now.Before(c.deadline(e)) {
			return
		}
		p := *e
		c.forget(e)
		c.complete(p.waiter, nil, fmt.Errorf("%w: %v (request id %d) after %v", ErrRequestTimeout, p.typ, p.id, c.cfg.OperationTimeout))
	}
}

// lost ends the current connection attempt or connection: pending
// requests fail once, handlers are told, and a reconnect is scheduled.
func (c *Conn) lost(now time.Time, cause error) {
	c.up = false
	c.lastErr = cause
	if c.state != StateConnected {
		c.stats.HandshakeFailures++
	}
	c.rd.Closes = append(c.rd.Closes, Close{Gen: c.gen, Err: cause})
	c.rd.Output = c.rd.Output[:0]
	c.rd.clearLatest()
	c.log(slog.LevelWarn, "connection lost", slog.String("address", c.cfg.Address), slog.Any("error", cause))
	c.failAll(fmt.Errorf("%w: %w", ErrDisconnected, cause), PushDisconnected)
	c.reconnectAt = now.Add(c.backoff.Next())
	c.setState(StateDisconnected)
}

// refused ends the Conn for good, as FinishClose does, because the broker
// refused its credentials (cause): reconnecting with the same ones would be
// refused again, and a wrong credential must not be retried forever. Every
// pending request and every later call fails with an error matching both
// ErrClosed and cause (so ErrAuthenticationError), every handler is told
// with it, and the connection is closed. An Authenticator's own failure
// (ErrAuthentication) is not a refusal: it is retried after the backoff.
func (c *Conn) refused(cause error) {
	c.up = false
	c.lastErr = cause
	c.refusal = fmt.Errorf("%w, not reconnecting: %w", ErrClosed, cause)
	if c.state != StateConnected {
		c.stats.HandshakeFailures++
	}
	c.rd.Closes = append(c.rd.Closes, Close{Gen: c.gen, Err: cause})
	c.rd.Output = c.rd.Output[:0]
	c.rd.clearLatest()
	c.log(slog.LevelError, "the broker refused the credentials; not reconnecting", slog.String("address", c.cfg.Address), slog.Any("error", cause))
	c.handlersLive = true // every handler learns of the end, as at a stop
	c.failAll(c.refusal, PushEnded)
	clear(c.producers)
	clear(c.consumers)
	c.setState(StateClosed)
}

// Final returns why the Conn ended for good, nil unless it is closing or
// closed: ErrClosed after a stop, or the broker's refusal of the
// credentials (an error matching both ErrClosed and
// ErrAuthenticationError).
func (c *Conn) Final() error {
	switch {
	case c.state < StateClosing:
		return nil
	case c.refusal != nil:
		return c.refusal
	}
	return ErrClosed
}

// failAll fails every pending request with err and tells every handler,
// once per connection, that the connection is gone (kind
// PushDisconnected) or that the Conn has ended for good (PushEnded).
func (c *Conn) failAll(err error, kind PushKind) {
	// Oldest first, by id: forget may move the entries.
	if e := c.front(); e != nil {
		for id := e.id; id < c.nextRequestID; id++ {
			e := c.lookup(id)
			if e == nil || plantedBug && e.typ == pulsarpb.BaseCommand_PRODUCER {
				continue // the simulation's planted bug: see plantedbug_on.go
			}
			p := *e
			c.forget(e)
			c.complete(p.waiter, nil, err)
		}
	}
	if !c.handlersLive {
		return
	}
	c.handlersLive = false
	for _, id := range sortedKeys(c.producers) {
		c.deliver(c.producers[id], Push{Kind: kind, ID: id, Err: err})
	}
	for _, id := range sortedKeys(c.consumers) {
		c.deliver(c.consumers[id], Push{Kind: kind, ID: id, Err: err})
	}
}

// BeginClose starts a graceful stop: no new requests or registrations are
// taken and no reconnect happens. When connected, it sends CLOSE_PRODUCER
// and CLOSE_CONSUMER for every registration as requests completed through
// closer (which may be nil) and returns how many it sent; the driver waits
// for those, then calls FinishClose.
func (c *Conn) BeginClose(now time.Time, closer func(id uint64) Waiter) int {
	if c.state >= StateClosing {
		return 0
	}
	connected := c.state == StateConnected
	c.setState(StateClosing)
	if !connected {
		return 0
	}
	n := 0
	for _, id := range sortedKeys(c.producers) {
		var w Waiter
		if closer != nil {
			w = closer(id)
		}
		c.sendClose(now, true, id, w)
		n++
	}
	for _, id := range sortedKeys(c.consumers) {
		var w Waiter
		if closer != nil {
			w = closer(id)
		}
		c.sendClose(now, false, id, w)
		n++
	}
	return n
}

// FinishClose ends the connection for good: everything pending fails with
// ErrClosed, every handler is told, and the connection is closed.
func (c *Conn) FinishClose(now time.Time) {
	if c.state == StateClosed {
		return
	}
	c.handlersLive = true // every handler learns of the final stop
	c.failAll(ErrClosed, PushEnded)
	clear(c.producers)
	clear(c.consumers)
	c.rd.Closes = append(c.rd.Closes, Close{Gen: c.gen, Err: ErrClosed})
	c.up = false
	c.rd.Output = c.rd.Output[:0]
	c.rd.clearLatest()
	c.setState(StateClosed)
}

// setState moves to s and reports the change with what it means for an
// observer of the connection's life: an established connection opened or
// closed, or an attempt that failed.
func (c *Conn) setState(s State) {
	from := c.state
	if from == s {
		return
	}
	c.state = s
	ch := StateChange{Seq: c.rd.next(), From: from, To: s}
	switch {
	case s == StateConnected:
		ch.Event, ch.Reconnect = EventOpened, c.stats.Reconnects > 0
	case from == StateConnected && (s == StateDisconnected || c.refusal != nil):
		ch.Event, ch.Cause = EventClosed, c.lastErr
	case from == StateConnected && s == StateClosing:
		c.stoppedConnected = true // reported when closed
	case s == StateClosed && c.stoppedConnected:
		ch.Event, ch.Cause = EventClosed, ErrClosed
	case (from == StateConnecting || from == StateHandshaking) && (s == StateDisconnected || c.refusal != nil):
		ch.Event, ch.Cause = EventHandshakeFailed, c.lastErr
	}
	c.rd.States = append(c.rd.States, ch)
}

// ---------------------------------------------------------------------------
// API inputs
// ---------------------------------------------------------------------------

// usable returns nil when the connection takes requests, else why not.
func (c *Conn) usable() error {
	switch c.state {
	case StateConnected:
		return nil
	case StateClosing, StateClosed:
		return c.Final()
	}
	if c.lastErr != nil {
		return fmt.Errorf("%w: %w", ErrDisconnected, c.lastErr)
	}
	return ErrDisconnected
}

// Request assigns the next request id to cmd, writes it, and tracks it
// until its answer, the operation timeout, or the connection's loss; w is
// completed exactly once in every case. It fails at once, without
// completing w, when the connection is not connected or cmd carries no
// request id.
func (c *Conn) Request(now time.Time, cmd *pulsarpb.BaseCommand, w Waiter) (uint64, error) {
	if err := c.usable(); err != nil {
		return 0, err
	}
	if err := c.slotFree(cmd.GetType()); err != nil {
		return 0, err
	}
	return c.request(now, cmd, w)
}

// slotFree reports ErrTooManyPending when MaxPending requests are in
// flight or reserved.
func (c *Conn) slotFree(typ pulsarpb.BaseCommand_Type) error {
	if c.cfg.MaxPending > 0 && c.pending+c.reserved >= c.cfg.MaxPending {
		return fmt.Errorf("%w: %v: %d requests in flight", ErrTooManyPending, typ, c.cfg.MaxPending)
	}
	return nil
}

// Reserve takes a request slot for a caller about to wait (for the
// connection, or room to write) before it calls Request; it fails with
// ErrTooManyPending when none is free. The caller gives it back with
// Unreserve before its Request, or when it gives up.
func (c *Conn) Reserve(typ pulsarpb.BaseCommand_Type) error {
	if err := c.slotFree(typ); err != nil {
		return err
	}
	c.reserved++
	return nil
}

// Unreserve gives back a slot taken with Reserve.
func (c *Conn) Unreserve() { c.reserved-- }

func (c *Conn) request(now time.Time, cmd *pulsarpb.BaseCommand, w Waiter) (uint64, error) {
	id := c.nextRequestID
	if !frame.SetRequestID(cmd, id) {
		return 0, fmt.Errorf("%w: %v", ErrNotRequest, cmd.GetType())
	}
	if err := c.write(cmd); err != nil {
		return 0, err
	}
	c.track(now, id, cmd.GetType(), w)
	return id, nil
}

// RequestPartitions is Request for a PARTITIONED_METADATA request for
// topic, which it writes with frame.AppendPartitionedMetadata instead of
// encoding a BaseCommand: the same bytes, for a sixth of the
// instructions, on the request sent most.
func (c *Conn) RequestPartitions(now time.Time, topic string, w Waiter) (uint64, error) {
	const typ = pulsarpb.BaseCommand_PARTITIONED_METADATA
	if err := c.usable(); err != nil {
		return 0, err
	}
	if err := c.slotFree(typ); err != nil {
		return 0, err
	}
	id := c.nextRequestID
	c.rd.Output = frame.AppendPartitionedMetadata(c.rd.Output, topic, id)
	c.framesOut++
	c.track(now, id, typ, w)
	return id, nil
}

// track makes id, just written, the newest pending request.
func (c *Conn) track(now time.Time, id uint64, typ pulsarpb.BaseCommand_Type, w Waiter) {
	c.nextRequestID++
	c.reqs = append(c.reqs, sent{id: id, at: now, waiter: w, typ: typ, live: true})
	c.pending++
}

// Cancel forgets request id without completing it (its caller gave up).
// It reports whether the request was still pending.
func (c *Conn) Cancel(id uint64) bool {
	e := c.lookup(id)
	if e == nil {
		return false
	}
	c.forget(e)
	return true
}

// Pending returns the number of requests awaiting an answer.
func (c *Conn) Pending() int { return c.pending }

// InUse reports whether anything uses the connection: a request awaiting
// an answer or a slot Reserved for one, or a registered producer or
// consumer.
func (c *Conn) InUse() bool {
	return c.pending+c.reserved+len(c.producers)+len(c.consumers) > 0
}

// NewProducerID returns a producer id not handed out before by this Conn.
func (c *Conn) NewProducerID() uint64 {
	c.lastProducer++
	return c.lastProducer
}

// NewConsumerID returns a consumer id not handed out before by this Conn.
func (c *Conn) NewConsumerID() uint64 {
	c.lastConsumer++
	return c.lastConsumer
}

// Send writes cmd, which expects no answer.
func (c *Conn) Send(now time.Time, cmd *pulsarpb.BaseCommand) error {
	if err := c.usable(); err != nil {
		return err
	}
	return c.write(cmd)
}

// CheckPublish reports whether an encoded frame of n bytes (total-size
// field included) may be published now.
func (c *Conn) CheckPublish(n int) error {
	if err := c.usable(); err != nil {
		return err
	}
	if n-4 > c.MaxFrameSize() {
		return fmt.Errorf("%w: frame of %d bytes exceeds the broker's limit of %d (max message size %d + %d padding)",
			ErrMessageTooLarge, n-4, c.MaxFrameSize(), c.maxMessageSize, frame.Padding)
	}
	return nil
}

// CheckPayload reports whether a message whose payload (the bytes after
// its metadata, compressed if it is) takes n bytes may be published: the
// broker's max message size bounds the payload, as the Pulsar clients
// check it before sending; CheckPublish bounds the whole frame.
func (c *Conn) CheckPayload(n int) error {
	if n > c.maxMessageSize {
		return fmt.Errorf("%w: payload of %d bytes exceeds the broker's max message size of %d",
			ErrMessageTooLarge, n, c.maxMessageSize)
	}
	return nil
}

// AddProducer registers h for the pushes addressed to producer id.
func (c *Conn) AddProducer(id uint64, h Handler) error {
	return c.add(c.producers, "producer", id, h)
}

// AddConsumer registers h for the pushes addressed to consumer id.
func (c *Conn) AddConsumer(id uint64, h Handler) error {
	return c.add(c.consumers, "consumer", id, h)
}

func (c *Conn) add(m map[uint64]Handler, kind string, id uint64, h Handler) error {
	if c.state >= StateClosing {
		return c.Final()
	}
	if _, ok := m[id]; ok {
		return fmt.Errorf("%w: %s %d", ErrDuplicateID, kind, id)
	}
	m[id] = h
	if c.state == StateConnected {
		c.handlersLive = true
	}
	return nil
}

// RemoveProducer unregisters producer id. When connected it sends
// CLOSE_PRODUCER as a request completed through w (which may be nil) and
// reports true; otherwise nothing is sent, w is not used, and it reports
// false. It also reports false when id was not registered.
func (c *Conn) RemoveProducer(now time.Time, id uint64, w Waiter) bool {
	return c.remove(now, true, id, w)
}

// RemoveConsumer is RemoveProducer for a consumer, with CLOSE_CONSUMER.
func (c *Conn) RemoveConsumer(now time.Time, id uint64, w Waiter) bool {
	return c.remove(now, false, id, w)
}

func (c *Conn) remove(now time.Time, producer bool, id uint64, w Waiter) bool {
	m := c.consumers
	if producer {
		m = c.producers
	}
	if _, ok := m[id]; !ok {
		return false
	}
	delete(m, id)
	if c.state != StateConnected {
		return false
	}
	return c.sendClose(now, producer, id, w)
}

func (c *Conn) sendClose(now time.Time, producer bool, id uint64, w Waiter) bool {
	cmd := &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_CLOSE_CONSUMER.Enum(),
		CloseConsumer: &pulsarpb.CommandCloseConsumer{ConsumerId: proto.Uint64(id)}}
	if producer {
		cmd = &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_CLOSE_PRODUCER.Enum(),
			CloseProducer: &pulsarpb.CommandCloseProducer{ProducerId: proto.Uint64(id)}}
	}
	if w == nil {
		w = discard{}
	}
	_, err := c.request(now, cmd, w)
	return err == nil
}

// discard is the Waiter of a request nobody waits for.
type discard struct{}

func (discard) Done(*pulsarpb.BaseCommand, error) {}

// Producers returns the registered producer ids, ascending.
func (c *Conn) Producers() []uint64 { return sortedKeys(c.producers) }

// Consumers returns the registered consumer ids, ascending.
func (c *Conn) Consumers() []uint64 { return sortedKeys(c.consumers) }

// ---------------------------------------------------------------------------
// Frames from the broker
// ---------------------------------------------------------------------------

// HandleFrame processes one frame received on generation gen.
func (c *Conn) HandleFrame(now time.Time, gen uint64, f *frame.Frame) {
	if gen != c.gen || !c.up {
		return
	}
	switch c.state {
	case StateHandshaking, StateConnected, StateClosing:
	default:
		return
	}
	c.lastReceived = now
	cmd := f.Command
	t := cmd.GetType()

	if c.state == StateHandshaking {
		c.handshakeFrame(now, cmd)
		return
	}
	switch t {
	case pulsarpb.BaseCommand_PING:
		c.writeLatest(latestPong, pongCmd)
	case pulsarpb.BaseCommand_PONG:
		// lastReceived is all a PONG is for.
	case pulsarpb.BaseCommand_AUTH_CHALLENGE:
		c.askAuth(AuthRequest{Gen: gen, Challenge: cmd.GetAuthChallenge().GetChallenge().GetAuthData()})
	case pulsarpb.BaseCommand_SEND_RECEIPT:
		id := cmd.GetSendReceipt().GetProducerId()
		c.toProducer(id, Push{Kind: PushReceipt, ID: id, Command: cmd, frame: f})
	case pulsarpb.BaseCommand_SEND_ERROR:
		se := cmd.GetSendError()
		if se == nil {
			se = &pulsarpb.CommandSendError{} // a SEND_ERROR without its body: no message to redact
		}
		c.toProducer(se.GetProducerId(), Push{Kind: PushSendError, ID: se.GetProducerId(), Command: cmd,
			Err: c.serverError(se.GetError(), &se.Message)})
	case pulsarpb.BaseCommand_CLOSE_PRODUCER:
		cp := cmd.GetCloseProducer()
		c.toProducer(cp.GetProducerId(), Push{Kind: PushClosed, ID: cp.GetProducerId(), Command: cmd,
			BrokerURL: cp.GetAssignedBrokerServiceUrl(), BrokerURLTLS: cp.GetAssignedBrokerServiceUrlTls()})
	case pulsarpb.BaseCommand_MESSAGE:
		id := cmd.GetMessage().GetConsumerId()
		if f.Payload == nil {
			c.protocolViolation("MESSAGE without a payload", slog.Uint64("consumer_id", id))
			return
		}
		if !f.Payload.ChecksumOK {
			c.stats.BadChecksums++
			c.log(slog.LevelWarn, "MESSAGE checksum mismatch", slog.Uint64("consumer_id", id))
		}
		c.toConsumer(id, Push{Kind: PushMessage, ID: id, Command: cmd, Payload: f.Payload, frame: f})
	case pulsarpb.BaseCommand_CLOSE_CONSUMER:
		cc := cmd.GetCloseConsumer()
		c.toConsumer(cc.GetConsumerId(), Push{Kind: PushClosed, ID: cc.GetConsumerId(), Command: cmd,
			BrokerURL: cc.GetAssignedBrokerServiceUrl(), BrokerURLTLS: cc.GetAssignedBrokerServiceUrlTls()})
	case pulsarpb.BaseCommand_ACTIVE_CONSUMER_CHANGE:
		id := cmd.GetActiveConsumerChange().GetConsumerId()
		c.toConsumer(id, Push{Kind: PushActiveConsumerChange, ID: id, Command: cmd})
	case pulsarpb.BaseCommand_REACHED_END_OF_TOPIC:
		id := cmd.GetReachedEndOfTopic().GetConsumerId()
		c.toConsumer(id, Push{Kind: PushReachedEndOfTopic, ID: id, Command: cmd})
	case pulsarpb.BaseCommand_TOPIC_MIGRATED:
		tm := cmd.GetTopicMigrated()
		p := Push{Kind: PushTopicMigrated, ID: tm.GetResourceId(), Command: cmd,
			BrokerURL: tm.GetBrokerServiceUrl(), BrokerURLTLS: tm.GetBrokerServiceUrlTls()}
		if tm.GetResourceType() == pulsarpb.CommandTopicMigrated_Producer {
			c.toProducer(p.ID, p)
		} else {
			c.toConsumer(p.ID, p)
		}
	case pulsarpb.BaseCommand_SUCCESS,
		pulsarpb.BaseCommand_ERROR,
		pulsarpb.BaseCommand_PRODUCER_SUCCESS,
		pulsarpb.BaseCommand_LOOKUP_RESPONSE,
		pulsarpb.BaseCommand_PARTITIONED_METADATA_RESPONSE,
		pulsarpb.BaseCommand_GET_LAST_MESSAGE_ID_RESPONSE,
		pulsarpb.BaseCommand_ACK_RESPONSE,
		pulsarpb.BaseCommand_GET_TOPICS_OF_NAMESPACE_RESPONSE,
		pulsarpb.BaseCommand_GET_SCHEMA_RESPONSE,
		pulsarpb.BaseCommand_GET_OR_CREATE_SCHEMA_RESPONSE:
		c.response(now, cmd)
	default:
		c.stats.UnknownCommands++
		c.log(slog.LevelWarn, "ignoring unexpected command", slog.String("type", t.String()))
	}
}

func (c *Conn) handshakeFrame(now time.Time, cmd *pulsarpb.BaseCommand) {
	switch cmd.GetType() {
	case pulsarpb.BaseCommand_CONNECTED:
		cd := cmd.GetConnected()
		c.serverVersion = c.redact(cd.GetServerVersion())
		c.serverProtocol = cd.GetProtocolVersion()
		if n := int(cd.GetMaxMessageSize()); n > 0 {
			c.maxMessageSize = n
		}
		if c.everConnected {
			c.stats.Reconnects++
		}
		c.everConnected = true
		c.lastErr = nil
		c.backoff.Reset()
		c.nextPing = now.Add(c.cfg.KeepAliveInterval)
		c.handlersLive = len(c.producers)+len(c.consumers) > 0
		c.setState(StateConnected)
		c.log(slog.LevelInfo, "connected", slog.String("address", c.cfg.Address),
			slog.String("server_version", c.serverVersion), slog.Int("protocol_version", int(c.serverProtocol)),
			slog.Int("max_message_size", c.maxMessageSize))
	case pulsarpb.BaseCommand_AUTH_CHALLENGE:
		c.askAuth(AuthRequest{Gen: c.gen, Challenge: cmd.GetAuthChallenge().GetChallenge().GetAuthData()})
	case pulsarpb.BaseCommand_ERROR:
		e := cmd.GetError()
		if e == nil {
			e = &pulsarpb.CommandError{}
		}
		err := fmt.Errorf("handshake refused: %w", c.serverError(e.GetError(), &e.Message))
		if e.GetError() == pulsarpb.ServerError_AuthenticationError {
			c.refused(err)
			return
		}
		c.lost(now, err)
	case pulsarpb.BaseCommand_PING:
		c.writeLatest(latestPong, pongCmd)
	case pulsarpb.BaseCommand_PONG:
	default:
		c.lost(now, fmt.Errorf("%w: %v before CONNECTED", ErrProtocol, cmd.GetType()))
	}
}

// response completes the pending request an answer belongs to.
func (c *Conn) response(now time.Time, cmd *pulsarpb.BaseCommand) {
	id, ok := frame.RequestID(cmd)
	p := c.lookup(id)
	found := p != nil
	if e := cmd.GetError(); !found && id == math.MaxUint64 && c.state == StateConnected && e.GetError() == pulsarpb.ServerError_AuthenticationError {
		// An ERROR with request id -1, the one a broker sends before it
		// closes a live connection whose credentials (a refresh's, or
		// expired ones) it refuses. A late answer to a request that timed
		// out or was cancelled, with an id of its own, is not a refusal.
		c.refused(fmt.Errorf("credentials refused: %w", c.serverError(e.GetError(), &e.Message)))
		return
	}
	if !ok || !found {
		c.stats.UnknownRequests++
		c.log(slog.LevelWarn, "ignoring answer to an unknown request", slog.String("type", cmd.GetType().String()), slog.Uint64("request_id", id))
		return
	}
	if ps := cmd.GetProducerSuccess(); ps != nil && !ps.GetProducerReady() &&
		cmd.GetType() == pulsarpb.BaseCommand_PRODUCER_SUCCESS && p.typ == pulsarpb.BaseCommand_PRODUCER {
		// The producer waits for exclusive access: a second
		// PRODUCER_SUCCESS will follow with the same id. The request
		// stays pending, its operation timeout running: the timeout,
		// counted from the request, bounds the whole wait, as Request
		// and RequestAsync promise. Only a PRODUCER waits so: any other
		// request a "not ready" answers (a broker bug) is completed.
		return
	}
	w := p.waiter
	c.forget(p)
	err := c.answerError(cmd)
	c.complete(w, cmd, err)
	if errors.Is(err, ErrTooManyRequests) {
		c.rejected(now)
	}
}

// rejected counts a TooManyRequests answer in the window; more than
// RejectLimit within RejectWindow drops the connection.
func (c *Conn) rejected(now time.Time) {
	if c.cfg.RejectLimit <= 0 {
		return
	}
	keep := c.rejections[:0]
	for _, t := range c.rejections {
		if now.Sub(t) < c.cfg.RejectWindow {
			keep = append(keep, t)
		}
	}
	c.rejections = append(keep, now)
	if len(c.rejections) > c.cfg.RejectLimit {
		c.rejections = c.rejections[:0]
		c.Drop(now, fmt.Errorf("%w: more than %d TooManyRequests answers within %v", ErrTooManyRequests, c.cfg.RejectLimit, c.cfg.RejectWindow))
	}
}

// answerError returns the error an answer carries, or nil. The answer's
// message is redacted (serverError), in the answer too.
func (c *Conn) answerError(cmd *pulsarpb.BaseCommand) error {
	switch cmd.GetType() {
	case pulsarpb.BaseCommand_ERROR:
		e := cmd.GetError()
		return c.serverError(e.GetError(), &e.Message)
	case pulsarpb.BaseCommand_LOOKUP_RESPONSE:
		r := cmd.GetLookupTopicResponse()
		if r.GetResponse() == pulsarpb.CommandLookupTopicResponse_Failed {
			return c.serverError(r.GetError(), &r.Message)
		}
		// The broker URLs go on into errors and logs, and are dialled: a
		// credential in them is redacted (and the URL then fails to parse).
		c.redactField(&r.BrokerServiceUrl)
		c.redactField(&r.BrokerServiceUrlTls)
	case pulsarpb.BaseCommand_PARTITIONED_METADATA_RESPONSE:
		r := cmd.GetPartitionMetadataResponse()
		if r.GetResponse() == pulsarpb.CommandPartitionedTopicMetadataResponse_Failed {
			return c.serverError(r.GetError(), &r.Message)
		}
	case pulsarpb.BaseCommand_ACK_RESPONSE:
		if r := cmd.GetAckResponse(); r.Error != nil {
			return c.serverError(r.GetError(), &r.Message)
		}
	case pulsarpb.BaseCommand_GET_SCHEMA_RESPONSE:
		if r := cmd.GetGetSchemaResponse(); r.ErrorCode != nil {
			return c.serverError(r.GetErrorCode(), &r.ErrorMessage)
		}
	case pulsarpb.BaseCommand_GET_OR_CREATE_SCHEMA_RESPONSE:
		if r := cmd.GetGetOrCreateSchemaResponse(); r.ErrorCode != nil {
			return c.serverError(r.GetErrorCode(), &r.ErrorMessage)
		}
	}
	return nil
}

// serverError is the ServerError of a broker's answer whose message field
// is *msg. A broker may repeat in it the credentials it was sent (say, a
// token it refuses): the message is redacted of them, in the answer too,
// before anyone sees either.
func (c *Conn) serverError(code pulsarpb.ServerError, msg **string) error {
	c.redactField(msg)
	var m string
	if *msg != nil {
		m = **msg
	}
	return &ServerError{Code: code, Message: m}
}

// redactField redacts *field in place, if set.
func (c *Conn) redactField(field **string) {
	if *field != nil {
		if r := c.redact(**field); r != **field {
			*field = &r
		}
	}
}

// Redacted stands in for a credential the Conn sent wherever the broker's
// text (an error message, its server version) repeats it.
const Redacted = "[redacted]"

// maxSecrets bounds the credentials remembered for redaction: a refresh
// answered with a new token replaces the oldest.
const maxSecrets = 8

// remember keeps the auth_data of a CONNECT or AUTH_RESPONSE the Conn
// writes, and for the method "basic" ("user:password") the password
// alone, for redact.
func (c *Conn) remember(data []byte) {
	c.addSecret(string(data))
	if c.cfg.AuthMethod == "basic" {
		if _, password, ok := strings.Cut(string(data), ":"); ok {
			c.addSecret(password)
		}
	}
}

func (c *Conn) addSecret(s string) {
	if s == "" || slices.Contains(c.secrets, s) {
		return
	}
	if len(c.secrets) == maxSecrets {
		c.secrets = slices.Delete(c.secrets, 0, 1)
	}
	c.secrets = append(c.secrets, s)
}

// redact returns s with each credential the Conn sent replaced by
// Redacted, the longest first, so that one containing another is not left
// half shown.
func (c *Conn) redact(s string) string {
	if len(c.secrets) == 0 || s == "" {
		return s
	}
	longest := slices.SortedStableFunc(slices.Values(c.secrets), func(a, b string) int { return len(b) - len(a) })
	for _, secret := range longest {
		s = strings.ReplaceAll(s, secret, Redacted)
	}
	return s
}

func (c *Conn) toProducer(id uint64, p Push) {
	h, ok := c.producers[id]
	if !ok {
		c.stats.UnknownProducers++
		c.log(slog.LevelWarn, "ignoring push for an unknown producer", slog.String("kind", p.Kind.String()), slog.Uint64("producer_id", id))
		return
	}
	c.deliver(h, p)
}

func (c *Conn) toConsumer(id uint64, p Push) {
	h, ok := c.consumers[id]
	if !ok {
		c.stats.UnknownConsumers++
		c.log(slog.LevelWarn, "ignoring push for an unknown consumer", slog.String("kind", p.Kind.String()), slog.Uint64("consumer_id", id))
		return
	}
	c.deliver(h, p)
}

func (c *Conn) protocolViolation(what string, attrs ...slog.Attr) {
	c.stats.UnknownCommands++
	c.log(slog.LevelWarn, "protocol violation: "+what, attrs...)
}

// ---------------------------------------------------------------------------
// Outputs
// ---------------------------------------------------------------------------

func (c *Conn) write(cmd *pulsarpb.BaseCommand) error {
	out, err := frame.AppendCommand(c.rd.Output, cmd)
	c.rd.Output = out
	if err != nil {
		return err
	}
	c.framesOut++
	return nil
}

// pongCmd is every PONG the Conn writes.
var pongCmd = &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_PONG.Enum(), Pong: &pulsarpb.CommandPong{}}

// writeLatest puts cmd in Ready.Latest's slot k, replacing what this step
// put there before: only the latest of its kind is written.
func (c *Conn) writeLatest(k int, cmd *pulsarpb.BaseCommand) {
	out, err := frame.AppendCommand(c.rd.Latest[k][:0], cmd)
	if err != nil {
		out = out[:0] // a frame too large to encode is not written, as by write
	}
	if len(c.rd.Latest[k]) == 0 && len(out) > 0 {
		c.framesOut++
	}
	c.rd.Latest[k] = out
}

func (c *Conn) complete(w Waiter, result *pulsarpb.BaseCommand, err error) {
	c.rd.Completions = append(c.rd.Completions, Completion{Seq: c.rd.next(), Waiter: w, Result: result, Err: err})
}

func (c *Conn) deliver(h Handler, p Push) {
	c.rd.Deliveries = append(c.rd.Deliveries, Delivery{Seq: c.rd.next(), Handler: h, Push: p})
}

func (c *Conn) log(level slog.Level, msg string, attrs ...slog.Attr) {
	c.rd.Logs = append(c.rd.Logs, Log{Seq: c.rd.next(), Level: level, Msg: msg, Attrs: attrs})
}

func sortedKeys[V any](m map[uint64]V) []uint64 {
	keys := make([]uint64, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
