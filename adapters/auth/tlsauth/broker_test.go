package tlsauth_test

import (
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/adapters/auth/internal/authtest"
	"github.com/pulsarconn/pulsarconn/adapters/auth/tlsauth"
	tlstransport "github.com/pulsarconn/pulsarconn/adapters/tls"
	"github.com/pulsarconn/pulsarconn/internal/testenv"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// These tests run a pulsarconn.Broker with the TLS Authenticator over the
// TLS transport against the fake broker with TLS authentication, on a
// loopback TLS listener that asks for a client certificate and verifies
// any it is given, as a Pulsar broker's TLS port does.

// serveTLS starts a fake broker with TLS authentication behind a TLS
// listener whose client certificates must chain to pki's CA, and returns
// it with its pulsar+ssl:// URL.
func serveTLS(t *testing.T, pki *testenv.PKI) (*pulsartest.Server, string) {
	t.Helper()
	cfg := pki.ServerConfig()
	cfg.ClientAuth = tls.VerifyClientCertIfGiven
	cfg.ClientCAs = pki.Roots()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := pulsartest.NewServer(pulsartest.WithTLSAuthentication())
	require.NoError(t, srv.Start(tls.NewListener(l, cfg)))
	t.Cleanup(func() { _ = srv.Close() })
	return srv, "pulsar+ssl://" + l.Addr().String()
}

// handshakes records the Broker's failed handshakes on a channel, so that
// a test waits for a refusal instead of polling.
type handshakes chan pulsarconn.HandshakeFailed

func (h handshakes) Observe(ev pulsarconn.Event) {
	if f, ok := ev.(pulsarconn.HandshakeFailed); ok {
		select {
		case h <- f:
		default:
		}
	}
}

// start starts a Broker for url with a and transport, stopped when the
// test ends, and returns it with its failed handshakes.
func start(t *testing.T, url string, a *tlsauth.Authenticator, transport *tlstransport.Transport) (*pulsarconn.Broker, handshakes) {
	t.Helper()
	failed := make(handshakes, 16)
	b, err := pulsarconn.Start(url,
		pulsarconn.WithAuthenticator(a),
		pulsarconn.WithTransport(transport),
		pulsarconn.WithObserver(failed),
		pulsarconn.WithBackoff(time.Millisecond, 20*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Stop(context.Background()) })
	return b, failed
}

// TestBrokerClientCertificate: with the Authenticator's certificate in the
// transport, CONNECT names the method "tls" with empty auth_data and the
// broker's role is the certificate's common name.
func TestBrokerClientCertificate(t *testing.T) {
	pki := testenv.NewPKI(t)
	srv, url := serveTLS(t, pki)
	a, err := tlsauth.New(pki.CA.Issue(t, testenv.Leaf{CommonName: "alice", Client: true}))
	require.NoError(t, err)

	b, _ := start(t, url, a, tlstransport.New(
		tlstransport.WithRootCAs(pki.Roots()),
		tlstransport.WithClientCertificate(a.Certificate())))
	ctx := authtest.Context(t)
	require.NoError(t, b.WaitConnected(ctx))
	assert.Equal(t, "tls", srv.LastConnect().GetAuthMethodName())
	assert.Empty(t, srv.LastConnect().GetAuthData())
	assert.Equal(t, []string{"alice"}, srv.Roles(), "the role is the certificate's CN")
	_, err = b.LookupTopic(ctx, "persistent://public/default/t", false)
	require.NoError(t, err)
}

// TestBrokerNoClientCertificate: a transport that does not present the
// certificate makes the broker refuse the CONNECT. So does a certificate
// of a CA the broker does not trust: the transport presents only a
// certificate of a CA the broker's request lists, so it sends none.
func TestBrokerNoClientCertificate(t *testing.T) {
	pki := testenv.NewPKI(t)
	srv, url := serveTLS(t, pki)
	a, err := tlsauth.New(pki.CA.Issue(t, testenv.Leaf{CommonName: "alice", Client: true}))
	require.NoError(t, err)

	t.Run("transport without the certificate", func(t *testing.T) {
		b, failed := start(t, url, a, tlstransport.New(tlstransport.WithRootCAs(pki.Roots())))
		refused(t, b, failed)
		assert.Equal(t, "tls", srv.LastConnect().GetAuthMethodName())
		assert.Empty(t, srv.Roles())
	})
	t.Run("certificate of another CA", func(t *testing.T) {
		rogue, err := tlsauth.New(testenv.NewAuthority(t, "other CA").Issue(t, testenv.Leaf{CommonName: "alice", Client: true}))
		require.NoError(t, err)
		b, failed := start(t, url, rogue, tlstransport.New(
			tlstransport.WithRootCAs(pki.Roots()),
			tlstransport.WithClientCertificate(rogue.Certificate())))
		refused(t, b, failed)
		assert.Empty(t, srv.Roles())
	})
}

// refused waits for the handshake failure reported to the Observer and
// checks that the broker refused the credentials.
func refused(t *testing.T, b *pulsarconn.Broker, failed <-chan pulsarconn.HandshakeFailed) {
	t.Helper()
	select {
	case f := <-failed:
		require.ErrorIs(t, f.Err, pulsarconn.ErrAuthenticationError)
		t.Log(f.Err)
	case <-authtest.Context(t).Done():
		t.Fatal("no handshake failure")
	}
	assert.NotEqual(t, pulsarconn.StateConnected, b.State())
}
