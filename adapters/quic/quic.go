// Package quic is an experimental ports.Transport that carries the Pulsar
// binary protocol over QUIC: each connection is one QUIC connection with
// exactly one bidirectional stream, opened by the client, on which Pulsar
// frames flow exactly as they would on a TCP connection.
//
// No Apache Pulsar broker speaks QUIC. This adapter is for use with the
// bridge of cmd/pulsarconn ("pulsarconn bridge", which accepts QUIC
// connections and forwards their bytes to a broker over TCP) and with
// pulsartest, which serves the fake broker over any net.Listener, including
// the one [Listen] returns. See docs/quic.md.
//
// Both sides negotiate the application protocol [ALPN] in the TLS handshake
// (QUIC always runs TLS 1.3); a peer that offers anything else fails the
// handshake. [Transport.Dial] opens the stream but, as QUIC streams are only
// announced to the peer by their first bytes, the listening side sees the
// connection once the client has written something — in Pulsar the client
// always speaks first, with CONNECT.
//
// The connections ([Conn]) are net.Conns: Close sends what was written and a
// FIN, after which the peer's Read returns io.EOF; the QUIC connection
// itself is closed once the peer has closed its end too, or after the
// linger time ([WithLinger]).
package quic

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	quicgo "github.com/quic-go/quic-go"

	"github.com/pulsarconn/pulsarconn/ports"
)

// ALPN is the application protocol both sides negotiate in the TLS
// handshake: the Pulsar binary protocol, framed as on TCP, on one
// bidirectional stream.
const ALPN = "pulsar-binary/1"

// Defaults of the options.
const (
	// DefaultHandshakeIdleTimeout bounds the QUIC handshake, besides the
	// context passed to Dial; on the listening side it also bounds the wait
	// for the client's stream after the handshake. It is quic-go's own
	// default.
	DefaultHandshakeIdleTimeout = 5 * time.Second

	// DefaultMaxIdleTimeout is how long a connection may go without
	// receiving anything before it is declared dead (the peers use the
	// smaller of their two values). It is quic-go's own default.
	DefaultMaxIdleTimeout = 30 * time.Second

	// DefaultKeepAlivePeriod is how often an otherwise idle connection sends
	// a QUIC PING. It is half of DefaultMaxIdleTimeout, so that a healthy
	// connection never idles out between two Pulsar PINGs (every 30 s).
	DefaultKeepAlivePeriod = 15 * time.Second

	// DefaultLinger is how long a closed Conn waits for the peer to close
	// its end before closing the QUIC connection anyway.
	DefaultLinger = 5 * time.Second
)

// config holds what the options set; the zero value means the defaults.
type config struct {
	handshakeIdleTimeout time.Duration // 0: default
	maxIdleTimeout       time.Duration // 0: default
	keepAlivePeriod      time.Duration // 0: default; negative: off
	linger               time.Duration // 0: default; negative: none
}

// Option configures a Transport or a listener made by Listen.
type Option func(*config)

// WithHandshakeIdleTimeout bounds the QUIC handshake; on the listening side
// it also bounds the wait for the client's first stream. Zero or negative
// restores the default. Default: DefaultHandshakeIdleTimeout (5 s).
func WithHandshakeIdleTimeout(d time.Duration) Option {
	return func(c *config) { c.handshakeIdleTimeout = max(d, 0) }
}

// WithMaxIdleTimeout sets how long a connection may receive nothing before
// it is closed. Zero or negative restores the default. Default:
// DefaultMaxIdleTimeout (30 s).
func WithMaxIdleTimeout(d time.Duration) Option {
	return func(c *config) { c.maxIdleTimeout = max(d, 0) }
}

// WithKeepAlivePeriod sets how often an idle connection sends a QUIC PING
// to keep itself alive; quic-go never sends them more often than half the
// idle timeout. Zero or negative turns keepalive off. Default:
// DefaultKeepAlivePeriod (15 s).
func WithKeepAlivePeriod(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			d = -1
		}
		c.keepAlivePeriod = d
	}
}

// WithLinger sets how long a closed Conn waits for the peer to close its end
// (so that everything written before Close is delivered) before closing the
// QUIC connection anyway. Zero or negative closes it at once, which may lose
// data still in flight. Default: DefaultLinger (5 s).
func WithLinger(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			d = -1
		}
		c.linger = d
	}
}

func newConfig(opts []Option) config {
	var c config
	for _, opt := range opts {
		opt(&c)
	}
	return c
}

// quicConfig is the quic-go configuration of one side. Only the client opens
// a stream, and only one: the limits say so to the peer.
func (c config) quicConfig(server bool) *quicgo.Config {
	qc := &quicgo.Config{
		HandshakeIdleTimeout:  orDefault(c.handshakeIdleTimeout, DefaultHandshakeIdleTimeout),
		MaxIdleTimeout:        orDefault(c.maxIdleTimeout, DefaultMaxIdleTimeout),
		KeepAlivePeriod:       max(orDefault(c.keepAlivePeriod, DefaultKeepAlivePeriod), 0),
		MaxIncomingStreams:    -1,
		MaxIncomingUniStreams: -1,
	}
	if server {
		qc.MaxIncomingStreams = 1
	}
	return qc
}

// lingerTime is the linger duration, 0 meaning none.
func (c config) lingerTime() time.Duration {
	return max(orDefault(c.linger, DefaultLinger), 0)
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// withALPN clones base (nil: an empty config) and sets the ALPN.
func withALPN(base *tls.Config) *tls.Config {
	var cfg *tls.Config
	if base == nil {
		cfg = &tls.Config{}
	} else {
		cfg = base.Clone()
	}
	cfg.NextProtos = []string{ALPN}
	return cfg
}

// Transport dials Pulsar connections over QUIC. A Transport is safe for
// concurrent use.
type Transport struct {
	tls *tls.Config
	cfg config
}

var _ ports.Transport = (*Transport)(nil)

// New returns a Transport that dials with a clone of tlsConfig (nil: an
// empty config, which verifies the server against the system roots). Its
// NextProtos is replaced by [ALPN], and an empty ServerName is set, per
// Dial, to the host of the dialled address. Verification is whatever
// tlsConfig says: on unless InsecureSkipVerify.
func New(tlsConfig *tls.Config, opts ...Option) *Transport {
	if tlsConfig != nil {
		tlsConfig = tlsConfig.Clone()
	}
	return &Transport{tls: tlsConfig, cfg: newConfig(opts)}
}

// Dial opens a QUIC connection to address ("host:port", resolved to a UDP
// address) and its one bidirectional stream. It honours ctx: its deadline
// bounds the handshake and cancelling it aborts the dial. The result is a
// *Conn. Errors name the address and wrap quic-go's error (or the context's).
func (t *Transport) Dial(ctx context.Context, address string) (ports.Conn, error) {
	c, err := t.DialConn(ctx, address)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// DialConn is Dial with the concrete result type, for callers who want a
// net.Conn.
func (t *Transport) DialConn(ctx context.Context, address string) (*Conn, error) {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("quic: dial %s: %w", address, err)
	}
	cfg := withALPN(t.tls)
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	qc, err := quicgo.DialAddr(ctx, address, cfg, t.cfg.quicConfig(false))
	if err != nil {
		return nil, fmt.Errorf("quic: dial %s: %w", address, err)
	}
	s, err := qc.OpenStreamSync(ctx)
	if err != nil {
		_ = qc.CloseWithError(0, "")
		return nil, fmt.Errorf("quic: dial %s: open stream: %w", address, err)
	}
	return newConn(qc, s, t.cfg.lingerTime(), nil), nil
}
