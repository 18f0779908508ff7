package pulsarconn

import (
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/pulsarconn/pulsarconn/adapters/clock"

	"github.com/pulsarconn/pulsarconn/ports"
)

// Default limits; see WithWriteQueueLimit, WithMaxPendingRequests and
// WithDeliveryQueueLimit.
const (
	// DefaultWriteQueueLimit is the default bound, in bytes, of a
	// connection's outgoing write queue. Larger is not faster: a writer
	// batch that grows to 16 MiB is allocated and faulted in afresh each
	// time, and publishing into the benchmark's sink ran its first second
	// at 0.03x-0.05x the raw loop with 16 MiB, 0.56x-1.26x with 1 MiB. A
	// larger frame (up to the broker's 5 MiB) goes into an empty queue.
	DefaultWriteQueueLimit = 1 << 20
	// DefaultMaxPendingRequests is the default bound on a Broker's
	// requests in flight, the Java client's maxLookupRequest.
	DefaultMaxPendingRequests = 50_000
	// DefaultDeliveryQueueLimit is the default bound, in bytes (estimated),
	// of the pushes read from the broker and not yet handled.
	DefaultDeliveryQueueLimit = 16 << 20
)

// Option configures a Broker. Each option's comment names the default it
// changes.
type Option func(*options)

type options struct {
	transport        ports.Transport
	clock            ports.Clock
	auth             ports.Authenticator
	registry         ports.Registry
	logger           *slog.Logger
	connectTimeout   time.Duration
	operationTimeout time.Duration
	keepAlive        time.Duration
	backoffMin       time.Duration
	backoffMax       time.Duration
	failFast         bool
	proxyToBroker    string
	clientVersion    string
	rand             func() float64

	observer Observer

	// Throttling of a connection the broker keeps rejecting.
	maxRejected  int
	rejectWindow time.Duration

	// Backpressure and limits.
	writeQueueLimit    int
	maxPending         int
	deliveryQueueLimit int

	// Client only.
	maxRedirects     int
	maxLookups       int
	maxQueuedLookups int
}

func defaultOptions() options {
	return options{
		clock:              clock.System{},
		clientVersion:      "pulsarconn-go/" + Version,
		rand:               rand.Float64,
		maxRejected:        50,
		rejectWindow:       30 * time.Second,
		writeQueueLimit:    DefaultWriteQueueLimit,
		maxPending:         DefaultMaxPendingRequests,
		deliveryQueueLimit: DefaultDeliveryQueueLimit,
		maxRedirects:       20,
		maxLookups:         5000,
		maxQueuedLookups:   50000,
	}
}

// WithTransport sets how connections are opened. Default: TCP
// (adapters/tcp) for pulsar:// URLs, and TLS with the system's trust roots
// and hostname verification (adapters/tls) for pulsar+ssl:// URLs; pass an
// adapters/tls Transport to set trust roots, client certificates or a
// server name.
func WithTransport(t ports.Transport) Option { return func(o *options) { o.transport = t } }

// WithClock sets the clock behind every timeout, keepalive and backoff.
// Default: the system clock.
func WithClock(c ports.Clock) Option { return func(o *options) { o.clock = c } }

// WithAuthenticator sets the credentials presented in CONNECT and in
// answers to AUTH_CHALLENGE. Default: none (no auth_method_name is sent).
func WithAuthenticator(a ports.Authenticator) Option { return func(o *options) { o.auth = a } }

// WithRegistry adds the Broker to r under its URL for as long as it runs
// (Start fails if the URL is taken). Default: no registry.
func WithRegistry(r ports.Registry) Option { return func(o *options) { o.registry = r } }

// WithLogger sets the structured logger. Default: logs are discarded.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithConnectTimeout bounds each dial plus handshake. Default: 10s.
func WithConnectTimeout(d time.Duration) Option { return func(o *options) { o.connectTimeout = d } }

// WithOperationTimeout bounds each request's wait for its answer, on top
// of the caller's context. Default: 30s.
func WithOperationTimeout(d time.Duration) Option {
	return func(o *options) { o.operationTimeout = d }
}

// WithKeepAlive sets the PING interval; a connection that receives nothing
// for two intervals is declared dead. Default: 30s.
func WithKeepAlive(d time.Duration) Option { return func(o *options) { o.keepAlive = d } }

// WithBackoff sets the reconnection delays: min doubling up to max, with
// jitter. Default: 100ms to 60s.
func WithBackoff(min, max time.Duration) Option {
	return func(o *options) { o.backoffMin, o.backoffMax = min, max }
}

// WithFailFast makes calls fail at once with ErrDisconnected while the
// Broker is not connected. Default: false — calls wait for the connection
// until their context ends.
func WithFailFast(on bool) Option { return func(o *options) { o.failFast = on } }

// WithProxyToBroker names the broker a Pulsar proxy should forward this
// connection to (CONNECT's proxy_to_broker_url); the Broker's URL is then
// the proxy's. Default: none.
func WithProxyToBroker(brokerURL string) Option {
	return func(o *options) { o.proxyToBroker = brokerURL }
}

// WithClientVersion sets CONNECT's client_version. Default:
// "pulsarconn-go/" + Version.
func WithClientVersion(v string) Option { return func(o *options) { o.clientVersion = v } }

// WithJitter sets the source of backoff jitter, a function returning
// numbers in [0, 1). Default: math/rand/v2's Float64.
func WithJitter(rand func() float64) Option { return func(o *options) { o.rand = rand } }

// WithRejectionLimit closes and reopens a connection on which the broker
// answered more than n requests with TooManyRequests within window, as the
// Java client does. Default: 50 in 30s; n <= 0 disables it.
func WithRejectionLimit(n int, window time.Duration) Option {
	return func(o *options) { o.maxRejected, o.rejectWindow = n, window }
}

// WithMaxLookupRedirects bounds how many Redirect answers a Client's lookup
// follows before failing with ErrTooManyRedirects. Default: 20.
func WithMaxLookupRedirects(n int) Option { return func(o *options) { o.maxRedirects = n } }

// WithLookupLimit bounds a Client's lookups: at most concurrent in flight,
// and at most queued more waiting for a slot; a lookup beyond that fails
// at once with ErrTooManyLookups. Default: 5000 and 50000, as the Java
// client's maxConcurrentLookupRequests and maxLookupRequest.
func WithLookupLimit(concurrent, queued int) Option {
	return func(o *options) { o.maxLookups, o.maxQueuedLookups = concurrent, queued }
}

// WithWriteQueueLimit bounds, in bytes, the frames a connection holds
// queued for writing (the batch being written, already taken from the
// queue, may hold as much again). When the queue is full,
// PublishMessage, Send and Request wait for the writer to make room until
// their context ends, then fail with an error matching ErrQueueFull and the
// context's error (under WithFailFast they fail at once). A frame larger
// than the limit is taken when the queue is empty, so it cannot wait
// forever. The commands the connection writes on its own (CONNECT, PING,
// PONG, AUTH_RESPONSE, CLOSE_PRODUCER and CLOSE_CONSUMER) never wait: they
// are small, and are queued even beyond the limit, so that a full queue
// never blocks anyone holding the Broker's lock; likewise Send and Request
// wait only while the queue is at or over the limit, so each may overshoot
// it by one command. Default: 1 MiB (DefaultWriteQueueLimit); n <= 0
// removes the limit.
func WithWriteQueueLimit(n int) Option { return func(o *options) { o.writeQueueLimit = n } }

// WithMaxPendingRequests bounds how many Request calls (and the calls
// built on it: LookupTopic, PartitionedTopicMetadata) a Broker has in
// flight at once, counting those still waiting for the connection. One more
// waits for a slot until its context ends, then fails with an error
// matching ErrTooManyPendingRequests and the context's error; under
// WithFailFast it fails at once. Each pending request costs a few hundred
// bytes. Default: 50,000 (DefaultMaxPendingRequests), the Java client's
// maxLookupRequest; n <= 0 removes the limit.
func WithMaxPendingRequests(n int) Option { return func(o *options) { o.maxPending = n } }

// WithDeliveryQueueLimit bounds, in bytes, the pushes read from the broker
// and not yet handled: payloads plus an estimate of each push's own size.
// Pushes are handed to Handlers one at a time, in order; when a Handler is
// slow and the queue reaches the limit, the connection stops reading from
// the socket until the Handler catches up, so the broker is held back by
// TCP flow control instead of the process's memory growing. While it waits
// nothing is read, keepalive answers included: a Handler stuck for two
// keepalive intervals costs the connection (ErrKeepaliveTimeout). Default:
// 16 MiB (DefaultDeliveryQueueLimit); n <= 0 removes the limit.
func WithDeliveryQueueLimit(n int) Option { return func(o *options) { o.deliveryQueueLimit = n } }
