package pulsarconn

import (
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/pulsarconn/pulsarconn/adapters/clock"

	"github.com/pulsarconn/pulsarconn/ports"
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

	// Client only.
	maxRedirects     int
	maxLookups       int
	maxQueuedLookups int
}

func defaultOptions() options {
	return options{
		clock:            clock.System{},
		clientVersion:    "pulsarconn-go/" + Version,
		rand:             rand.Float64,
		maxRejected:      50,
		rejectWindow:     30 * time.Second,
		maxRedirects:     20,
		maxLookups:       5000,
		maxQueuedLookups: 50000,
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
