// Package tls provides the TLS ports.Transport: [Transport] dials brokers
// over TCP and runs a crypto/tls handshake on top (pulsar+ssl:// URLs).
//
// Certificate verification is on unless [WithInsecureSkipVerify] turns it
// off. A [WithConfig] base with InsecureSkipVerify set is accepted only if
// it also sets VerifyPeerCertificate or VerifyConnection, which then verify
// the broker instead (certificate pinning); otherwise Dial refuses it with
// [ErrInsecureConfig]. TLS 1.2 is the lowest version ever negotiated, and
// the server name checked against the broker's certificate is the host of
// the dialled address unless [WithServerName] or [WithConfig] say
// otherwise. Like the tcp adapter, connections have TCP_NODELAY and TCP
// keepalive on.
//
// Handshake failures wrap a sentinel that names the cause
// ([ErrUnknownAuthority], [ErrHostnameMismatch], [ErrCertificateExpired],
// [ErrClientCertificateRequired], or [ErrHandshake] for any other) as well
// as crypto/tls's own error, so both errors.Is and errors.As work.
package tls

import (
	"context"
	ctls "crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/pulsarconn/pulsarconn/ports"
)

// DefaultKeepAlive is the TCP keepalive period used unless WithKeepAlive
// says otherwise. It matches the Pulsar clients' 30 s keepalive interval.
const DefaultKeepAlive = 30 * time.Second

// minVersion is the lowest TLS version a Transport negotiates: TLS 1.0 and
// 1.1 are deprecated (RFC 8996) and every supported Pulsar broker speaks 1.2.
const minVersion = ctls.VersionTLS12

// Transport dials TLS connections to brokers. The zero value is ready to
// use and behaves like New(): system roots, verification on, server name
// from the address. A Transport is safe for concurrent use and must not be
// modified after first use.
type Transport struct {
	base         *ctls.Config // nil: an empty config
	rootCAs      *x509.CertPool
	certificates []ctls.Certificate
	serverName   string
	insecure     bool
	keepAlive    time.Duration // 0: DefaultKeepAlive; negative: off
	// err is a configuration error recorded by an option (an unreadable
	// root CA file); Dial returns it, since New cannot.
	err error
}

var _ ports.Transport = (*Transport)(nil)

// Option configures a Transport.
type Option func(*Transport)

// WithConfig makes cfg the base of every connection's TLS configuration.
// It is cloned, so later changes to cfg have no effect. The other options
// override the matching fields of cfg whatever their order, and MinVersion
// is raised to TLS 1.2 if it is lower. Default: an empty ctls.Config.
//
// A cfg with InsecureSkipVerify set must also set VerifyPeerCertificate or
// VerifyConnection: with either, the transport leaves the broker's
// certificate to them (to pin a certificate or a key, say); with neither,
// every Dial fails with ErrInsecureConfig before connecting, as
// verification would be off with nothing in its place. To turn
// verification off, say so with WithInsecureSkipVerify.
func WithConfig(cfg *ctls.Config) Option {
	return func(t *Transport) {
		if cfg != nil {
			cfg = cfg.Clone()
		}
		t.base = cfg
	}
}

// WithRootCAs sets the certificate authorities that broker certificates
// must chain to. It replaces any pool set by WithRootCAs or WithRootCAFile
// before it. Default: the base config's RootCAs, or the system roots.
func WithRootCAs(pool *x509.CertPool) Option {
	return func(t *Transport) { t.rootCAs = pool }
}

// WithRootCAFile is WithRootCAs with a pool read from the PEM file at path
// (Pulsar's tlsTrustCertsFilePath). The file is read when the option is
// applied, in New; if it cannot be read or holds no certificate, every Dial
// fails with an error wrapping ErrRootCAFile. Default: as WithRootCAs.
func WithRootCAFile(path string) Option {
	return func(t *Transport) {
		pem, err := os.ReadFile(path)
		if err != nil {
			t.err = fmt.Errorf("%w: %w", ErrRootCAFile, err)
			return
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			t.err = fmt.Errorf("%w: %s: no PEM certificate found", ErrRootCAFile, path)
			return
		}
		t.rootCAs = pool
	}
}

// WithClientCertificate adds a certificate (with its private key) that the
// transport presents when the broker asks for one, for mutual TLS; for
// Pulsar's TLS authentication CONNECT must also name the method "tls"
// (adapters/auth/tlsauth, whose Certificate this takes). Repeat it to
// offer several; crypto/tls picks the first that the broker accepts.
// Default: none (with WithConfig, the base config's Certificates).
func WithClientCertificate(cert ctls.Certificate) Option {
	return func(t *Transport) { t.certificates = append(t.certificates, cert) }
}

// WithServerName sets the name that broker certificates are verified
// against and that is sent as SNI, for brokers reached through an address
// their certificate does not name (a proxy, a raw IP). Default: the base
// config's ServerName if set, else the host part of the dialled address.
func WithServerName(name string) Option {
	return func(t *Transport) { t.serverName = name }
}

// WithInsecureSkipVerify turns certificate verification off: any broker
// certificate is accepted, whoever signed it and whatever name it holds.
// It is for tests and diagnosis only, as it leaves connections open to a
// man in the middle (Pulsar's tlsAllowInsecureConnection). It is the only
// option that turns verification off with nothing in its place (see
// WithConfig). Default: verification on.
func WithInsecureSkipVerify() Option {
	return func(t *Transport) { t.insecure = true }
}

// WithKeepAlive sets the TCP keepalive period: the idle time before the
// first probe and the interval between probes. Zero or negative turns
// keepalive off. Default: DefaultKeepAlive (30 s).
func WithKeepAlive(period time.Duration) Option {
	return func(t *Transport) {
		if period <= 0 {
			period = -1
		}
		t.keepAlive = period
	}
}

// New returns a Transport with the given options applied in order.
func New(opts ...Option) *Transport {
	t := &Transport{}
	for _, opt := range opts {
		opt(t)
	}
	return t
}

// Dial connects to address ("host:port") over TCP and completes the TLS
// handshake. It honours ctx: its deadline bounds the connect and the
// handshake together, and cancelling it aborts either; the error then
// wraps ctx.Err().
//
// The returned Conn also has crypto/tls's ConnectionState method. Its Read
// errors, like Dial's, wrap ErrClientCertificateRequired when the broker
// rejects the client certificate: under TLS 1.3 the broker checks it only
// after the client has finished its half of the handshake, so the
// rejection arrives on the first Read instead of failing Dial.
func (t *Transport) Dial(ctx context.Context, address string) (ports.Conn, error) {
	if t.err != nil {
		return nil, fmt.Errorf("tls: dial %s: %w", address, t.err)
	}
	cfg, err := t.config(address)
	if err != nil {
		return nil, fmt.Errorf("tls: dial %s: %w", address, err)
	}
	raw, err := t.dialer().DialContext(ctx, "tcp", address)
	if err != nil {
		return nil, fmt.Errorf("tls: dial %s: %w", address, err)
	}
	if tc, ok := raw.(*net.TCPConn); ok {
		// Go turns TCP_NODELAY on by default; say so explicitly, because the
		// driver's latency depends on it.
		if err := tc.SetNoDelay(true); err != nil {
			_ = raw.Close()
			return nil, fmt.Errorf("tls: dial %s: set TCP_NODELAY: %w", address, err)
		}
	}
	// Under TLS 1.2 crypto/tls answers a missing client certificate with a
	// bare handshake_failure alert; noting whether the broker asked for one
	// and none was sent tells that case apart from the others.
	var withheld atomic.Bool
	getCert := cfg.GetClientCertificate
	if getCert == nil || len(t.certificates) > 0 {
		getCert = chooseCertificate(cfg.Certificates)
	}
	cfg.GetClientCertificate = func(cri *ctls.CertificateRequestInfo) (*ctls.Certificate, error) {
		cert, err := getCert(cri)
		withheld.Store(err == nil && (cert == nil || len(cert.Certificate) == 0))
		return cert, err
	}
	c := ctls.Client(raw, cfg)
	if err := c.HandshakeContext(ctx); err != nil {
		_ = raw.Close()
		return nil, fmt.Errorf("tls: dial %s: %w", address, classify(ctx, err, withheld.Load()))
	}
	return newConn(c), nil
}

// chooseCertificate does what crypto/tls does with Config.Certificates when
// GetClientCertificate is nil: it sends the first certificate the broker's
// request accepts, or none.
func chooseCertificate(certs []ctls.Certificate) func(*ctls.CertificateRequestInfo) (*ctls.Certificate, error) {
	return func(cri *ctls.CertificateRequestInfo) (*ctls.Certificate, error) {
		for i := range certs {
			if cri.SupportsCertificate(&certs[i]) == nil {
				return &certs[i], nil
			}
		}
		return new(ctls.Certificate), nil
	}
}

// config builds the ctls.Config for one Dial to address.
func (t *Transport) config(address string) (*ctls.Config, error) {
	var cfg *ctls.Config
	if t.base != nil {
		cfg = t.base.Clone()
	} else {
		cfg = &ctls.Config{}
	}
	if cfg.InsecureSkipVerify && !t.insecure && cfg.VerifyPeerCertificate == nil && cfg.VerifyConnection == nil {
		return nil, ErrInsecureConfig
	}
	if t.rootCAs != nil {
		cfg.RootCAs = t.rootCAs
	}
	if len(t.certificates) > 0 {
		cfg.Certificates = append([]ctls.Certificate(nil), t.certificates...)
	}
	if t.insecure {
		cfg.InsecureSkipVerify = true
	}
	switch {
	case t.serverName != "":
		cfg.ServerName = t.serverName
	case cfg.ServerName == "":
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return nil, err
		}
		cfg.ServerName = host
	}
	cfg.MinVersion = max(cfg.MinVersion, minVersion)
	if cfg.MaxVersion != 0 && cfg.MaxVersion < cfg.MinVersion {
		return nil, fmt.Errorf("%w: MaxVersion %s is below the TLS 1.2 minimum",
			ErrHandshake, ctls.VersionName(cfg.MaxVersion))
	}
	return cfg, nil
}

// dialer builds the net.Dialer for one Dial.
func (t *Transport) dialer() *net.Dialer {
	d := &net.Dialer{}
	switch period := t.keepAlive; {
	case period < 0:
		d.KeepAlive = -1
	default:
		if period == 0 {
			period = DefaultKeepAlive
		}
		d.KeepAliveConfig = net.KeepAliveConfig{Enable: true, Idle: period, Interval: period}
	}
	return d
}
