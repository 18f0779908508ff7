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
}

func defaultConfig() config {
	return config{
		maxMessageSize:  frame.DefaultMaxMessageSize,
		protocolVersion: int32(pulsarpb.ProtocolVersion_v21),
		serverVersion:   DefaultServerVersion,
		failoverDelay:   DefaultActiveConsumerFailoverDelay,
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
