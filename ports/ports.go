// Package ports declares the interfaces through which the pulsarconn core
// and driver reach the outside world: the network (Transport), time (Clock),
// credentials (Authenticator) and the directory of live broker connections
// (Registry).
//
// Each port is small (four methods at most) and imports only the standard
// library, so an adapter can be written, and certified, without depending on
// the rest of pulsarconn. Adapters live under adapters/.
package ports

import (
	"context"
	"errors"
	"io"
	"time"
)

// Conn is one established byte stream to a broker. Every net.Conn satisfies
// it; the port names only what the driver uses so that it needs no import of
// package net.
//
// Contract: Read and Write may be called concurrently from one reader and one
// writer goroutine; Close unblocks both and may be called more than once;
// a deadline in the past makes pending and future calls fail with an error
// for which a Timeout() bool method, if present, reports true.
type Conn interface {
	io.ReadWriteCloser
	SetDeadline(t time.Time) error
}

// Transport opens connections to brokers.
//
// Contract: Dial returns a connected Conn or an error; it honours ctx (its
// deadline is the connect timeout) and returns promptly once ctx ends. The
// address is "host:port" as taken from a pulsar:// or pulsar+ssl:// URL; a
// TLS transport uses the host as the server name unless configured
// otherwise. Dial is safe for concurrent use.
type Transport interface {
	Dial(ctx context.Context, address string) (Conn, error)
}

// Timer is a pending call armed with Clock.AfterFunc.
type Timer interface {
	// Stop cancels the call; it reports false if the call already ran or
	// was already stopped.
	Stop() bool
}

// Clock tells time and arms timers. The driver never reads the wall clock
// except through this port, so a fake clock makes every timeout, keepalive
// and backoff deterministic in tests.
//
// Contract: Now is monotonic for a given clock; AfterFunc runs f once, in its
// own goroutine (or the goroutine that advances a fake clock), no earlier
// than d after the call. Both are safe for concurrent use.
type Clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) Timer
}

// Authenticator supplies the credentials a connection presents.
//
// Contract: Name is the auth_method_name sent in CONNECT (for example
// "token"); it is constant. Initial returns the auth_data for CONNECT.
// Challenge returns the answer to a broker's AUTH_CHALLENGE, which may come
// during the handshake (several rounds) or at any time on a live connection
// (credential refresh); challenge holds the broker's auth_data. Both may
// block (reading a file, calling a token endpoint) and must honour ctx,
// which ends with the connection or connection attempt the call is for.
// An error fails the handshake, or drops a live connection, and the
// driver backs off before trying again (a broker's refusal of the
// credentials, by contrast, is final). Implementations must be safe for
// concurrent use and must never put credentials in their error strings.
type Authenticator interface {
	Name() string
	Initial(ctx context.Context) ([]byte, error)
	Challenge(ctx context.Context, challenge []byte) ([]byte, error)
}

// Listing is what a Registry holds for one broker connection: where it goes
// and what is registered on it.
type Listing interface {
	// BrokerURL is the broker's service URL, e.g. "pulsar://host:6650".
	BrokerURL() string
	// Producers returns the ids of the registered producers, ascending.
	Producers() []uint64
	// Consumers returns the ids of the registered consumers, ascending.
	Consumers() []uint64
}

// ErrAlreadyRegistered is returned by Registry.Add when another Listing
// already holds the broker URL.
var ErrAlreadyRegistered = errors.New("ports: broker URL already registered")

// Registry is the directory of live broker connections, keyed by broker URL.
//
// Contract: Add stores l under l.BrokerURL() or fails with
// ErrAlreadyRegistered; Remove deletes l only if it is the one stored under
// its URL (so a stale Remove cannot evict a newer connection); Get finds a
// listing by URL; All returns every listing, ordered by URL. All methods are
// safe for concurrent use.
type Registry interface {
	Add(l Listing) error
	Remove(l Listing)
	Get(brokerURL string) (Listing, bool)
	All() []Listing
}
