package tls

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
)

// Sentinels for the causes of a failed Dial. A handshake error wraps one of
// them and crypto/tls's error, so errors.As still finds the
// x509.UnknownAuthorityError, x509.HostnameError, ... underneath.
var (
	// ErrUnknownAuthority: the broker's certificate does not chain to a
	// trusted root (see WithRootCAs, WithRootCAFile).
	ErrUnknownAuthority = errors.New("tls: certificate signed by unknown authority")
	// ErrHostnameMismatch: the broker's certificate is valid but not for
	// the server name dialled (see WithServerName).
	ErrHostnameMismatch = errors.New("tls: certificate is not valid for the server name")
	// ErrCertificateExpired: a certificate in the broker's chain has
	// expired or is not yet valid.
	ErrCertificateExpired = errors.New("tls: certificate has expired or is not yet valid")
	// ErrClientCertificateRequired: the broker requires a client
	// certificate and none was given, or it rejected the one given (see
	// WithClientCertificate).
	ErrClientCertificateRequired = errors.New("tls: broker requires an acceptable client certificate")
	// ErrHandshake: the handshake failed for another reason (no common
	// protocol version or cipher suite, a malformed message, a peer that
	// is not speaking TLS).
	ErrHandshake = errors.New("tls: handshake failed")
	// ErrRootCAFile: the file given to WithRootCAFile could not be read or
	// holds no PEM certificate.
	ErrRootCAFile = errors.New("tls: cannot load root CA file")
	// ErrInsecureConfig: the config given to WithConfig turns certificate
	// verification off (InsecureSkipVerify) and sets neither
	// VerifyPeerCertificate nor VerifyConnection to verify in its place.
	ErrInsecureConfig = errors.New("tls: WithConfig's InsecureSkipVerify needs VerifyPeerCertificate or VerifyConnection; use WithInsecureSkipVerify to turn verification off")
)

// classify wraps a handshake error with the sentinel for its cause. An
// error caused by ctx ending is only wrapped, with no sentinel: it says
// nothing about the broker's TLS setup. withheld reports that the broker
// asked for a client certificate and none was sent.
func classify(ctx context.Context, err error, withheld bool) error {
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return fmt.Errorf("handshake: %w", err)
	}
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
	)
	sentinel := ErrHandshake
	switch {
	case errors.As(err, &unknown):
		sentinel = ErrUnknownAuthority
	case errors.As(err, &hostname):
		sentinel = ErrHostnameMismatch
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		sentinel = ErrCertificateExpired
	case rejectsClientCertificate(err), withheld && isRemoteAlert(err, "tls: handshake failure"):
		sentinel = ErrClientCertificateRequired
	}
	return fmt.Errorf("handshake: %w: %w", sentinel, err)
}

// rejectsClientCertificate reports whether err is the broker's alert
// refusing the client certificate. crypto/tls reports a received alert as a
// *net.OpError with Op "remote error" around an unexported alert type, so
// the alert is recognised by its text: "certificate required" (TLS 1.3,
// none given) or "bad certificate" (a certificate the broker does not
// trust). Under TLS 1.2 a missing certificate draws only a generic
// "handshake failure"; Dial recognises it by having sent none.
func rejectsClientCertificate(err error) bool {
	return isRemoteAlert(err, "tls: certificate required") || isRemoteAlert(err, "tls: bad certificate")
}

// isRemoteAlert reports whether err is the peer's alert with the given text.
func isRemoteAlert(err error, alert string) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error" && op.Err != nil && op.Err.Error() == alert
}
