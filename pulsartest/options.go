package pulsartest

import (
	"time"

	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// DefaultServerVersion is the server_version the fake broker announces in
// CONNECTED and AUTH_CHALLENGE. A real broker sends "Pulsar Server" followed
// by its release.
const DefaultServerVersion = "Pulsar Server pulsartest"

// Option configures a Server; pass options to NewServer or NewTCP.
type Option func(*config)

type config struct {
	advertisedURL    string
	advertisedURLTLS string
	token            []byte
	hasToken         bool
	basic            []byte            // "user:password" of WithBasicAuth
	basicUsers       map[string]string // user → MD5-crypt hash, WithBasicAuthHtpasswd
	jwtKeys          []jwtKey          // WithTokenSecretKey, WithTokenPublicKey
	tlsAuth          bool              // WithTLSAuthentication
	lenientTokens    bool              // WithLenientTokens
	anonymousRole    string            // WithAnonymousRole
	hasAnonymous     bool
	authz            *authzConfig  // WithAuthorization and the grants; nil: off
	failoverDelay    time.Duration // WithActiveConsumerFailoverDelay
	challengeRounds  int
	maxMessageSize   int
	protocolVersion  int32
	serverVersion    string
	entryMetadata    bool
	ext              extConfig
	maxQueued        int           // WithMaxQueuedOutput; 0: the default
	handshakeTimeout time.Duration // WithHandshakeTimeout; < 0: none
	frameObserver    func(FrameRecord)
	// Delayed delivery: WithDelayedDelivery, WithDelayedDeliveryTick.
	noDelayedDelivery bool
	delayTickSet      bool
	delayTickValue    time.Duration
}

func defaultConfig() config {
	return config{
		maxMessageSize:   frame.DefaultMaxMessageSize,
		protocolVersion:  int32(pulsarpb.ProtocolVersion_v21),
		serverVersion:    DefaultServerVersion,
		handshakeTimeout: DefaultHandshakeTimeout,
		failoverDelay:    DefaultActiveConsumerFailoverDelay,
	}
}

// WithAdvertisedURL sets the service URL the server advertises: the value
// of URL and the brokerServiceUrl of every LOOKUP_RESPONSE. Default:
// "pulsar://" followed by the address of the first listener served.
func WithAdvertisedURL(u string) Option {
	return func(c *config) { c.advertisedURL = u }
}

// WithAdvertisedTLSURL sets the brokerServiceUrlTls of LOOKUP_RESPONSE.
// Default: none (the field is left out).
func WithAdvertisedTLSURL(u string) Option {
	return func(c *config) { c.advertisedURLTLS = u }
}

// WithToken turns token authentication on: a client presenting auth
// method "token" in CONNECT (and every AUTH_RESPONSE) must present exactly
// tok — or a token a key of WithTokenSecretKey or WithTokenPublicKey
// verifies — or the server answers ERROR{AuthenticationError} and closes
// the connection, as a real broker does. A client presenting no
// credentials, or a method no configured provider handles, is refused too,
// unless WithAnonymousRole gives it a role. The role of a client with tok
// is tok's "sub" claim if tok is a JSON Web Token, otherwise "token".
// Default: authentication off, any credentials accepted.
func WithToken(tok string) Option {
	return func(c *config) { c.token, c.hasToken = []byte(tok), true }
}

// WithBasicAuth accepts clients presenting auth method "basic" with
// auth_data "user:password", as a broker with the basic authentication
// provider does, with the role user; wrong credentials get ERROR
// AuthenticationError and a closed connection. Other methods are handled
// as WithToken describes. Default: no check.
func WithBasicAuth(user, password string) Option {
	return func(c *config) { c.basic = []byte(user + ":" + password) }
}

// WithAuthChallenge makes the handshake take rounds extra steps: after
// CONNECT the server sends AUTH_CHALLENGE rounds times, each answered by
// the client's AUTH_RESPONSE (checked against the token when WithToken is
// set), before CONNECTED. Default: 0 (CONNECT is answered at once).
func WithAuthChallenge(rounds int) Option {
	return func(c *config) { c.challengeRounds = max(rounds, 0) }
}

// WithMaxMessageSize sets the max_message_size announced in CONNECTED.
// Frames larger than n plus 10 KiB of padding close the connection.
// Default: 5 MiB (frame.DefaultMaxMessageSize), a broker's default.
func WithMaxMessageSize(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.maxMessageSize = n
		}
	}
}

// WithProtocolVersion sets the newest protocol version the server speaks;
// CONNECTED announces the smaller of it and the client's. Default: 21.
func WithProtocolVersion(v int32) Option {
	return func(c *config) { c.protocolVersion = v }
}

// WithServerVersion sets the server_version of CONNECTED and
// AUTH_CHALLENGE. Default: DefaultServerVersion.
func WithServerVersion(v string) Option {
	return func(c *config) { c.serverVersion = v }
}

// WithBrokerEntryMetadata makes MESSAGE frames carry broker entry metadata
// (magic 0x0e02: broker_timestamp and index) to connections whose CONNECT
// announced supports_broker_entry_metadata, as a broker with the entry
// metadata interceptors configured does. Default: off, as on a broker
// without interceptors.
func WithBrokerEntryMetadata() Option {
	return func(c *config) { c.entryMetadata = true }
}

// maxQueuedOutput is the limit on a connection's queued output: the one
// WithMaxQueuedOutput set, else DefaultMaxQueuedOutput.
func (c *config) maxQueuedOutput() int {
	if c.maxQueued > 0 {
		return c.maxQueued
	}
	return DefaultMaxQueuedOutput
}

// dispatchPause is the queued output over which messages are not
// dispatched to a connection: half WithMaxQueuedOutput.
func (c *config) dispatchPause() int {
	return c.maxQueuedOutput() / 2
}

// DefaultMaxQueuedOutput is the default of WithMaxQueuedOutput: 1 MiB of
// answers, some 15,000 LOOKUP_RESPONSEs, waiting for a client to read
// them (on top of what the sockets buffer).
const DefaultMaxQueuedOutput = 1 << 20

// WithMaxQueuedOutput bounds the output queued for a connection and not
// yet written to it, so that a client that stops reading (or asks faster
// than it reads) cannot make the server's memory grow without end:
//
//   - answers and other frames (all but the MESSAGEs of dispatch): one
//     queued when n bytes of them or more are waiting closes the
//     connection instead, as if the client were gone. One frame always
//     fits, whatever its size.
//   - MESSAGEs: dispatch sends none to a connection while n/2 bytes or
//     more are queued, and goes on as the client reads, so a slow
//     consumer with many permits is held back (as a broker holds back a
//     channel that is not writable), not disconnected. One message always
//     goes out when the queue is empty, whatever its size.
//
// Default: DefaultMaxQueuedOutput.
func WithMaxQueuedOutput(n int) Option {
	return func(c *config) { c.maxQueued = max(n, 0) }
}

// DefaultHandshakeTimeout is how long a connection may take to complete
// its handshake (CONNECT answered by CONNECTED, through any
// AUTH_CHALLENGE rounds) before the server closes it: a broker's
// keepAliveIntervalSeconds (30 s), after which its keep-alive task closes
// a connection whose handshake is not complete.
const DefaultHandshakeTimeout = 30 * time.Second

// WithHandshakeTimeout sets how long, on the server's clock (WithClock),
// a connection may take from being accepted to completing its handshake
// before the server closes it; d <= 0 waits for ever. A connection whose
// CONNECT the server leaves unanswered on purpose (SetNeverConnect) is not
// closed. Default: DefaultHandshakeTimeout.
func WithHandshakeTimeout(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			d = -1
		}
		c.handshakeTimeout = d
	}
}

// WithFrameObserver calls fn with every frame the server reads or queues
// to send, as it is logged (see Frames), with its command decoded, for a
// live frame log such as "pulsarconn serve --verbose". fn is called in
// the order the frames are logged, one call at a time, with the log's
// lock held: it must be quick and must not call the server. It is called
// even when WithRecordLimit(0) turns the log off. Default: none.
func WithFrameObserver(fn func(FrameRecord)) Option {
	return func(c *config) { c.frameObserver = fn }
}

// DefaultDelayedDeliveryTick is the default of WithDelayedDeliveryTick: a
// broker's delayedDeliveryTickTimeMillis, 1 s.
const DefaultDelayedDeliveryTick = time.Second

// delayTick is the tick of delayed delivery.
func (c *config) delayTick() time.Duration {
	if c.delayTickSet {
		return c.delayTickValue
	}
	return DefaultDelayedDeliveryTick
}

// WithDelayedDelivery turns delayed delivery on or off, as a broker's
// delayedDeliveryEnabled. On, a message (or batch) whose MessageMetadata
// has deliver_at_time (a client's deliverAt or deliverAfter) is held back
// on Shared and Key_Shared subscriptions until that time, on the server's
// clock (WithClock): up to a tick early (see WithDelayedDeliveryTick),
// and released by a timer at the earliest such time, as a broker does.
// Exclusive and Failover subscriptions get such messages at once, as on
// a broker. Held messages count in the backlog and show in
// SubscriptionState.Delayed; a message acknowledged, redelivered or sought
// past follows the usual rules once it is out. Default: on, as on a
// standalone broker.
func WithDelayedDelivery(on bool) Option {
	return func(c *config) { c.noDelayedDelivery = !on }
}

// WithDelayedDeliveryTick sets the tick of delayed delivery, as a
// broker's delayedDeliveryTickTimeMillis: a held message is let out once
// its deliver_at_time is at most a tick ahead (when anything dispatches),
// and the timer that lets held messages out runs at most once per tick.
// d <= 0 makes delivery strict: never before deliver_at_time. Default:
// DefaultDelayedDeliveryTick.
func WithDelayedDeliveryTick(d time.Duration) Option {
	return func(c *config) { c.delayTickSet, c.delayTickValue = true, max(d, 0) }
}
