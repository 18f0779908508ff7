// Package tlsauth is the Authenticator for Pulsar's TLS authentication:
// the client is identified by the certificate it presents in the TLS
// handshake, and CONNECT names the auth method "tls" with empty auth_data.
//
// A broker with AuthenticationProviderTls reads the identity from the TLS
// session, not from CONNECT: its role is the subject common name (CN) of
// the client certificate. The certificate must therefore be presented by
// the transport, and the Authenticator only tells the broker to look at
// it. An Authenticator holds the certificate so that one value configures
// both: pass it to pulsarconn.WithAuthenticator, and its Certificate to
// the TLS transport's WithClientCertificate (adapters/tls). A transport
// without the certificate — or a plain pulsar:// connection — does not
// fail silently: the broker refuses the CONNECT (pulsarconn reports
// ErrAuthenticationError), as it refuses a certificate it does not trust.
//
// The credentials do not expire on the client's side, so a broker's
// refresh challenge is answered with empty auth_data again. The String and
// GoString of an Authenticator name the certificate's subject, never its
// private key.
package tlsauth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/pulsarconn/pulsarconn/adapters/auth/internal/redact"
	"github.com/pulsarconn/pulsarconn/ports"
)

// MethodName is the auth_method_name of TLS authentication.
const MethodName = "tls"

// ErrCertificate is returned by New and FromFiles for a certificate that
// cannot authenticate a client: none given, no private key, a certificate
// that does not parse, or files that cannot be loaded.
var ErrCertificate = errors.New("tlsauth: unusable client certificate")

var _ ports.Authenticator = (*Authenticator)(nil)

// Authenticator presents the auth method "tls". It is immutable, and so
// safe for concurrent use.
//
// fmt prints it through String and GoString. Where fmt cannot call them
// (an Authenticator in an unexported field of a struct printed with %+v,
// or with a verb that makes fmt dump the value) it reaches only the
// certificate's holder, a function, which it prints as an address, so the
// private key is never printed.
type Authenticator struct {
	cert    func() tls.Certificate
	subject string // the leaf's subject, for String
}

// New returns an Authenticator for the client certificate cert (a chain
// and its private key, as tls.X509KeyPair makes it), or an error matching
// ErrCertificate if cert has no certificate, no private key, or a leaf
// that does not parse.
func New(cert tls.Certificate) (*Authenticator, error) {
	if len(cert.Certificate) == 0 {
		return nil, fmt.Errorf("%w: no certificate", ErrCertificate)
	}
	if cert.PrivateKey == nil {
		return nil, fmt.Errorf("%w: no private key", ErrCertificate)
	}
	leaf := cert.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrCertificate, err)
		}
	}
	return &Authenticator{
		cert:    func() tls.Certificate { return cert },
		subject: leaf.Subject.String(),
	}, nil
}

// FromFiles is New with the certificate chain and private key read from
// PEM files, as Pulsar's tlsCertFile and tlsKeyFile parameters give them.
// The files are read once, here. Errors name the files, never the key.
func FromFiles(certFile, keyFile string) (*Authenticator, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("%w: %s, %s: %w", ErrCertificate, certFile, keyFile, err)
	}
	return New(cert)
}

// Certificate returns the client certificate, for the TLS transport:
// tlstransport.WithClientCertificate(a.Certificate()).
func (a *Authenticator) Certificate() tls.Certificate { return a.cert() }

// Name returns "tls".
func (a *Authenticator) Name() string { return MethodName }

// Initial returns empty auth_data for CONNECT: the broker reads the
// identity from the TLS session.
func (a *Authenticator) Initial(ctx context.Context) ([]byte, error) {
	return empty(ctx)
}

// Challenge returns empty auth_data again, whatever the challenge.
func (a *Authenticator) Challenge(ctx context.Context, _ []byte) ([]byte, error) {
	return empty(ctx)
}

func empty(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return []byte{}, nil
}

// String describes the Authenticator by its certificate's subject, for
// logs: `tlsauth.Authenticator{subject: "CN=alice", key: [redacted]}`. It
// has a value receiver so that an Authenticator printed by value is
// described the same way.
func (a Authenticator) String() string {
	return fmt.Sprintf("tlsauth.Authenticator{subject: %q, key: %s}", a.subject, redact.Mark)
}

// GoString is String, so that %#v cannot print the private key either.
func (a Authenticator) GoString() string { return a.String() }
