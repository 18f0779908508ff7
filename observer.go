package pulsarconn

import (
	"time"

	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// Observer receives events from Brokers and Clients, for metrics and
// tracing. Observe is never called under a Broker's lock: a Broker's
// events are delivered in order with its pushes, on the goroutine that
// delivers them, so an Observer may call the Broker (Metrics, State,
// Send, RequestAsync), but, like a Handler, must not wait for an answer
// there; a Client's lookup events come from the goroutine that looked up.
// It must be fast and safe for concurrent use. Switch on the event's type; new event types may be added,
// so ignore the ones you do not know. See docs/observability.md for an
// export to Prometheus.
//
// Counters that change with every frame (frames and bytes in and out) are
// not events: read them, with the gauges, from Broker.Metrics and
// Client.Metrics.
type Observer interface {
	Observe(Event)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(Event)

// Observe calls f(e).
func (f ObserverFunc) Observe(e Event) { f(e) }

// Event is one of the event types below.
type Event interface{ event() }

// ConnectionOpened: a connection completed its handshake.
type ConnectionOpened struct {
	BrokerURL string
	// Reconnect is false for the Broker's first connection.
	Reconnect bool
}

// ConnectionClosed: a connection that had completed its handshake ended.
type ConnectionClosed struct {
	BrokerURL string
	// Err says why: it matches ErrDisconnected causes such as
	// ErrKeepaliveTimeout or ErrProtocol, ErrClosed at Stop, or
	// ErrAuthenticationError when the broker refused the credentials of
	// the live connection (the Broker then ends, closed).
	Err error
}

// HandshakeFailed: a connection attempt ended before CONNECTED — the dial
// failed, the broker refused the credentials (Err matches
// ErrAuthenticationError; the Broker then ends, closed, instead of
// retrying), the Authenticator failed (ErrAuthentication), or the connect
// timeout passed (ErrConnectTimeout).
type HandshakeFailed struct {
	BrokerURL string
	Err       error
}

// RequestCompleted: a request got its answer or failed. Besides Request and
// RequestAsync, it reports the answer to the CLOSE_PRODUCER or CLOSE_CONSUMER
// a Registration sends, from Close or when its context ends.
type RequestCompleted struct {
	BrokerURL string
	Type      pulsarpb.BaseCommand_Type
	Latency   time.Duration
	// Err is nil on success.
	Err error
}

// LookupRedirected: a Client's lookup was redirected.
type LookupRedirected struct {
	Topic    string
	From, To string
}

// LookupCompleted: a Client's lookup ended, at the owning broker or with
// an error.
type LookupCompleted struct {
	Topic     string
	BrokerURL string
	Redirects int
	Latency   time.Duration
	Err       error
}

func (ConnectionOpened) event() {}
func (ConnectionClosed) event() {}
func (HandshakeFailed) event()  {}
func (RequestCompleted) event() {}
func (LookupRedirected) event() {}
func (LookupCompleted) event()  {}

// Metrics are a Broker's gauges and counters, readable at any time.
type Metrics struct {
	State     State
	Pending   int // requests awaiting an answer
	Producers int // registered producers
	Consumers int // registered consumers

	FramesIn, FramesOut uint64
	BytesIn, BytesOut   uint64
	Reconnects          uint64
}

// WithObserver sets the Observer of a Broker, or of a Client and all its
// Brokers. Default: none. o must not be nil.
func WithObserver(o Observer) Option {
	return shared(func(opts *options) error {
		opts.observer = o
		return check(o != nil, "WithObserver", "nil Observer")
	})
}
