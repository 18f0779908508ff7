package pulsarconn

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/pulsarconn/pulsarconn/adapters/clock"
	"github.com/pulsarconn/pulsarconn/core"
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

// BrokerOption configures a Broker: Start takes it. Each option's comment
// names the default it changes.
type BrokerOption interface{ applyBroker(*options) error }

// ClientOption configures a Client: NewClient takes it.
type ClientOption interface{ applyClient(*options) error }

// Option is an option that both Start and NewClient take; a Client passes
// its Options on to every Broker it starts. An option only one of them
// takes is a BrokerOption (WithProxyToBroker) or a ClientOption
// (WithMaxLookupRedirects, WithLookupLimit, WithConnectionMaxIdleTime), so
// that passing it to the other does not compile.
type Option interface {
	BrokerOption
	ClientOption
}

// ErrInvalidOption: Start or NewClient was given an option whose argument
// is out of its range. The error names the option, as in
// "pulsarconn: invalid option: WithRejectionLimit: window must be > 0 when
// n > 0, not 0s". An option checks its argument when it is made, and Start
// or NewClient returns the first option's error.
var ErrInvalidOption = errors.New("pulsarconn: invalid option")

// An option sets its field, and returns its argument's error (from check)
// if any.
type (
	shared     func(*options) error // an Option
	brokerOnly func(*options) error // a BrokerOption only
	clientOnly func(*options) error // a ClientOption only
)

func (f shared) applyBroker(o *options) error     { return f(o) }
func (f shared) applyClient(o *options) error     { return f(o) }
func (f brokerOnly) applyBroker(o *options) error { return f(o) }
func (f clientOnly) applyClient(o *options) error { return f(o) }

// check returns nil if ok, else the error of an option whose argument is
// out of range.
func check(ok bool, option, format string, args ...any) error {
	if ok {
		return nil
	}
	return fmt.Errorf("%w: %s: %s", ErrInvalidOption, option, fmt.Sprintf(format, args...))
}

// brokerOptions returns the defaults with opts applied and the Broker's
// backoff policy, or the first option's error.
func brokerOptions(opts []BrokerOption) (options, BackoffPolicy, error) {
	o := defaultOptions()
	for _, opt := range opts {
		if err := opt.applyBroker(&o); err != nil {
			return o, nil, err
		}
	}
	p, err := o.backoff()
	return o, p, err
}

// clientOptions returns the defaults with opts applied, or the first
// option's error, and the options among opts the Client passes on to its
// Brokers.
func clientOptions(opts []ClientOption) (options, []BrokerOption, error) {
	o := defaultOptions()
	var forward []BrokerOption
	for _, opt := range opts {
		if err := opt.applyClient(&o); err != nil {
			return o, nil, err
		}
		if b, ok := opt.(BrokerOption); ok {
			forward = append(forward, b)
		}
	}
	_, err := o.backoff() // a policy is made for each lookup; check one
	return o, forward, err
}

// backoff returns a new backoff policy: WithBackoffPolicy's, or the default
// (WithBackoff, WithJitter).
func (o *options) backoff() (BackoffPolicy, error) {
	if o.newBackoff == nil {
		return &core.Backoff{
			Min:  cmp.Or(o.backoffMin, core.DefaultBackoffMin),
			Max:  cmp.Or(o.backoffMax, core.DefaultBackoffMax),
			Rand: o.rand,
		}, nil
	}
	p := o.newBackoff()
	return p, check(p != nil, "WithBackoffPolicy", "the function returned a nil BackoffPolicy")
}

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
	newBackoff       func() BackoffPolicy
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
	maxIdle          time.Duration
}

func defaultOptions() options {
	return options{
		clock:              clock.System{},
		logger:             slog.New(slog.DiscardHandler),
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
		maxIdle:            180 * time.Second,
	}
}

// WithTransport sets how connections are opened. Default: TCP
// (adapters/tcp) for pulsar:// URLs, and TLS with the system's trust roots
// and hostname verification (adapters/tls) for pulsar+ssl:// URLs; pass an
// adapters/tls Transport to set trust roots, client certificates or a
// server name. t must not be nil.
func WithTransport(t ports.Transport) Option {
	err := check(t != nil, "WithTransport", "nil Transport")
	return shared(func(o *options) error { o.transport = t; return err })
}

// WithClock sets the clock behind every timeout, keepalive and backoff.
// The Broker calls it under its lock, so a Clock must not call the Broker
// (nor run an AfterFunc callback before AfterFunc returns). Default: the
// system clock. c must not be nil.
func WithClock(c ports.Clock) Option {
	err := check(c != nil, "WithClock", "nil Clock")
	return shared(func(o *options) error { o.clock = c; return err })
}

// WithAuthenticator sets the credentials presented in CONNECT and in
// answers to AUTH_CHALLENGE. Default: none (no auth_method_name is sent).
// a must not be nil.
//
// If the broker refuses the credentials (ERROR AuthenticationError in the
// handshake, or on a live connection one with request id -1, as at a
// refresh), the Broker does not reconnect: it ends in StateClosed, as if
// stopped, leaves its Registry, and every waiting, pending and later call
// fails with the refusal, an error matching both ErrAuthenticationError
// and ErrClosed, which IsRetryable reports false (Stop still returns
// nil). A Client starts a new Broker at the next lookup that needs one,
// which presents the credentials as they are then. If a fails to produce
// credentials (ErrAuthentication: a token file missing, a token endpoint
// down), the Broker retries after the backoff as for any connection
// failure.
func WithAuthenticator(a ports.Authenticator) Option {
	err := check(a != nil, "WithAuthenticator", "nil Authenticator")
	return shared(func(o *options) error { o.auth = a; return err })
}

// WithRegistry lists a Broker, or every Broker of a Client, in r under its
// URL for as long as it runs (Start fails if the URL is taken). Default:
// no registry for a Broker; a private one (NewRegistry) for a Client. r
// must not be nil.
func WithRegistry(r ports.Registry) Option {
	err := check(r != nil, "WithRegistry", "nil Registry")
	return shared(func(o *options) error { o.registry = r; return err })
}

// WithLogger sets the structured logger. Default: logs are discarded. l
// must not be nil.
func WithLogger(l *slog.Logger) Option {
	err := check(l != nil, "WithLogger", "nil Logger")
	return shared(func(o *options) error { o.logger = l; return err })
}

// WithConnectTimeout bounds each dial plus handshake; d must be > 0.
// Default: 10s.
func WithConnectTimeout(d time.Duration) Option {
	err := check(d > 0, "WithConnectTimeout", "timeout must be > 0, not %v", d)
	return shared(func(o *options) error { o.connectTimeout = d; return err })
}

// WithOperationTimeout bounds each request's wait for its answer, on top
// of the caller's context — for a PRODUCER queued for exclusive access, the
// whole wait until it is ready; d must be > 0. Default: 30s.
func WithOperationTimeout(d time.Duration) Option {
	err := check(d > 0, "WithOperationTimeout", "timeout must be > 0, not %v", d)
	return shared(func(o *options) error { o.operationTimeout = d; return err })
}

// WithKeepAlive sets the PING interval; a connection that receives nothing
// for two intervals is declared dead. d must be > 0. Default: 30s.
func WithKeepAlive(d time.Duration) Option {
	err := check(d > 0, "WithKeepAlive", "interval must be > 0, not %v", d)
	return shared(func(o *options) error { o.keepAlive = d; return err })
}

// WithBackoff sets the default backoff policy's delays between connection
// attempts (and a Client's lookup retries): min doubling up to max, with
// jitter; 0 < min <= max. Default: 100ms to 60s.
func WithBackoff(min, max time.Duration) Option {
	err := cmp.Or(check(min > 0, "WithBackoff", "min must be > 0, not %v", min),
		check(min <= max, "WithBackoff", "min %v must be <= max %v", min, max))
	return shared(func(o *options) error { o.backoffMin, o.backoffMax = min, max; return err })
}

// BackoffPolicy yields the delays between connection attempts: Next is
// asked for the delay before each reconnection, Reset after a successful
// handshake. See WithBackoffPolicy.
type BackoffPolicy = core.BackoffPolicy

// WithBackoffPolicy replaces the backoff policy (WithBackoff and WithJitter
// then have no effect). newPolicy is called for a new policy by Start, for
// the Broker's reconnections (the Broker calls the policy under its lock,
// so a policy must not call the Broker),
// by NewClient to check it, and by each Client lookup, which retries with
// its own; a policy therefore needs no locking of its own, but newPolicy
// must be safe to call from several goroutines, and must not return nil
// (Start and NewClient fail if it does). Default: min doubling up to max with equal jitter (each
// delay drawn from [d/2, d]), as WithBackoff and WithJitter set.
func WithBackoffPolicy(newPolicy func() BackoffPolicy) Option {
	err := check(newPolicy != nil, "WithBackoffPolicy", "nil function")
	return shared(func(o *options) error { o.newBackoff = newPolicy; return err })
}

// WithFailFast makes calls fail at once with ErrDisconnected while the
// Broker is not connected. Default: false — calls wait for the connection
// until their context ends.
func WithFailFast(on bool) Option {
	return shared(func(o *options) error { o.failFast = on; return nil })
}

// WithProxyToBroker names the broker a Pulsar proxy should forward this
// connection to (CONNECT's proxy_to_broker_url, which carries the URL's
// host:port, the form a proxy accepts); the Broker's URL is then
// the proxy's. brokerURL must be a valid broker URL. Default: none. A
// Client sets it on its own when the cluster says to use a proxy, so
// NewClient does not take it.
func WithProxyToBroker(brokerURL string) BrokerOption {
	_, err := ParseURL(brokerURL)
	err = check(err == nil, "WithProxyToBroker", "%v", err)
	return brokerOnly(func(o *options) error { o.proxyToBroker = brokerURL; return err })
}

// WithClientVersion sets CONNECT's client_version. Default:
// "pulsarconn-go/" + Version.
func WithClientVersion(v string) Option {
	return shared(func(o *options) error { o.clientVersion = v; return nil })
}

// WithJitter sets the source of the default backoff policy's jitter, a
// function returning numbers in [0, 1); rand must not be nil. Default:
// math/rand/v2's Float64.
func WithJitter(rand func() float64) Option {
	err := check(rand != nil, "WithJitter", "nil function")
	return shared(func(o *options) error { o.rand = rand; return err })
}

// WithRejectionLimit closes and reopens a connection on which the broker
// answered more than n requests with TooManyRequests within window, as the
// Java client does; n = 0 disables it, and when n > 0, window must be > 0.
// Default: 50 in 30s.
func WithRejectionLimit(n int, window time.Duration) Option {
	err := cmp.Or(check(n >= 0, "WithRejectionLimit", "n must be >= 0, not %d", n),
		check(n == 0 || window > 0, "WithRejectionLimit", "window must be > 0 when n > 0, not %v", window))
	return shared(func(o *options) error { o.maxRejected, o.rejectWindow = n, window; return err })
}

// WithMaxLookupRedirects bounds how many Redirect answers a Client's lookup
// follows before failing with ErrTooManyRedirects; n must be >= 0.
// Default: 20.
func WithMaxLookupRedirects(n int) ClientOption {
	err := check(n >= 0, "WithMaxLookupRedirects", "n must be >= 0, not %d", n)
	return clientOnly(func(o *options) error { o.maxRedirects = n; return err })
}

// WithLookupLimit bounds a Client's lookups: at most concurrent (> 0) in
// flight, and at most queued (>= 0) more waiting for a slot; a lookup
// beyond that fails at once with ErrTooManyLookups. Default: 5000 and
// 50000, as the Java client's maxConcurrentLookupRequests and
// maxLookupRequest.
func WithLookupLimit(concurrent, queued int) ClientOption {
	err := cmp.Or(check(concurrent > 0, "WithLookupLimit", "concurrent must be > 0, not %d", concurrent),
		check(queued >= 0, "WithLookupLimit", "queued must be >= 0, not %d", queued))
	return clientOnly(func(o *options) error { o.maxLookups, o.maxQueuedLookups = concurrent, queued; return err })
}

// WithConnectionMaxIdleTime makes a Client stop and remove a Broker it
// keeps (a service host's, or one LookupTopic returned) that has had no
// producer or consumer registered and no request in flight for d, as the
// Pulsar clients' connection max idle time does: calls on that Broker then
// fail with ErrClosed, and the next lookup starts a new one. The time runs
// on the Client's clock (WithClock). d = 0 keeps them until Close; d must
// not be negative. Default: 3 minutes.
func WithConnectionMaxIdleTime(d time.Duration) ClientOption {
	err := check(d >= 0, "WithConnectionMaxIdleTime", "d must be >= 0, not %v", d)
	return clientOnly(func(o *options) error { o.maxIdle = d; return err })
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
// never blocks anyone holding the Broker's lock; they are bounded
// otherwise (one CONNECT per connection, one close per registration, and
// at most one PING, one PONG and one AUTH_RESPONSE waiting, a newer one
// replacing the older). Likewise Send and Request wait only while the
// queue is at or over the limit, so each may overshoot it by one command.
// Default: 1 MiB (DefaultWriteQueueLimit); n = 0 removes the limit; n
// must not be negative.
func WithWriteQueueLimit(n int) Option {
	err := check(n >= 0, "WithWriteQueueLimit", "n must be >= 0, not %d", n)
	return shared(func(o *options) error { o.writeQueueLimit = n; return err })
}

// WithMaxPendingRequests bounds how many Request calls (and the calls
// built on it: LookupTopic, PartitionedTopicMetadata) a Broker has in
// flight at once, counting those still waiting for the connection. One more
// waits for a slot until its context ends, then fails with an error
// matching ErrTooManyPendingRequests and the context's error; under
// WithFailFast it fails at once. Each pending request costs a few hundred
// bytes. Default: 50,000 (DefaultMaxPendingRequests), the Java client's
// maxLookupRequest; n = 0 removes the limit; n must not be negative.
func WithMaxPendingRequests(n int) Option {
	err := check(n >= 0, "WithMaxPendingRequests", "n must be >= 0, not %d", n)
	return shared(func(o *options) error { o.maxPending = n; return err })
}

// WithDeliveryQueueLimit bounds, in bytes, the pushes read from the broker
// and not yet handled: payloads plus an estimate of each push's own size.
// Pushes are handed to Handlers one at a time, in order; when a Handler is
// slow and the queue reaches the limit, the connection stops reading from
// the socket until the Handler catches up, so the broker is held back by
// TCP flow control instead of the process's memory growing. While it waits
// nothing is read, keepalive answers included: a Handler stuck for two
// keepalive intervals costs the connection (ErrKeepaliveTimeout). Default:
// 16 MiB (DefaultDeliveryQueueLimit); n = 0 removes the limit; n must not
// be negative.
func WithDeliveryQueueLimit(n int) Option {
	err := check(n >= 0, "WithDeliveryQueueLimit", "n must be >= 0, not %d", n)
	return shared(func(o *options) error { o.deliveryQueueLimit = n; return err })
}
