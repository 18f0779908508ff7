package oauth2_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/adapters/auth/internal/authtest"
	"github.com/pulsarconn/pulsarconn/adapters/auth/oauth2"
	"github.com/pulsarconn/pulsarconn/internal/testenv"
	"github.com/pulsarconn/pulsarconn/ports"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// These tests run a pulsarconn.Broker with the OAuth2 Authenticator against
// the fake broker on the in-memory network, with the token endpoint on
// httptest.

// startBroker starts a fake broker with opts and a Broker that
// authenticates to it with a.
func startBroker(t *testing.T, a ports.Authenticator, opts ...pulsartest.Option) (*pulsarconn.Broker, *pulsartest.Server) {
	t.Helper()
	e := testenv.Memory(t, opts...)
	b, err := pulsarconn.Start(e.URL,
		pulsarconn.WithTransport(e.Network),
		pulsarconn.WithAuthenticator(a),
		pulsarconn.WithBackoff(time.Millisecond, 20*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(func() { b.Stop(context.Background()) })
	return b, e.Server
}

// TestBrokerOAuth2Refresh: the access token from the token endpoint goes
// in CONNECT under the method "token" and is checked by the fake broker.
// When the token has expired, the broker's refresh challenge is answered
// with a newly fetched token (the endpoint issues the same string, which
// the fake broker accepts; the request count shows it was fetched), and
// the connection stays up.
func TestBrokerOAuth2Refresh(t *testing.T) {
	const issued = "eyJhbGciOiJSUzI1NiJ9.issued.by-the-idp"
	p := newIDP(t)
	p.set(func(p *idp) { p.fixed = issued })
	clk := newClock()
	b, srv := startBroker(t, newAuth(t, p, clk), pulsartest.WithToken(issued))
	ctx := authtest.Context(t)
	require.NoError(t, b.WaitConnected(ctx))
	assert.Equal(t, "token", srv.LastConnect().GetAuthMethodName())
	assert.Equal(t, issued, string(srv.LastConnect().GetAuthData()))
	assert.Equal(t, 1, p.requests())

	clk.Advance(101 * time.Second) // past expires_in
	require.Equal(t, 1, srv.ChallengeAll())
	require.NoError(t, srv.WaitReceived(ctx, pulsarpb.BaseCommand_AUTH_RESPONSE, 1))
	assert.Equal(t, "token", srv.LastAuthResponse().GetResponse().GetAuthMethodName())
	assert.Equal(t, issued, string(srv.LastAuthResponse().GetResponse().GetAuthData()))
	assert.Equal(t, 2, p.requests(), "the refresh fetched a new token")

	// A round trip after the AUTH_RESPONSE: the connection is still up.
	_, err := b.LookupTopic(ctx, "persistent://public/default/t", false)
	require.NoError(t, err)
	assert.Equal(t, pulsarconn.StateConnected, b.State())
	assert.Equal(t, 1, srv.Received(pulsarpb.BaseCommand_CONNECT), "no reconnection")
}

// TestBrokerOAuth2FreshToken: distinct tokens, to see which one the
// refresh presents. The fake broker runs without a token check here.
func TestBrokerOAuth2FreshToken(t *testing.T) {
	p := newIDP(t)
	clk := newClock()
	b, srv := startBroker(t, newAuth(t, p, clk))
	ctx := authtest.Context(t)
	require.NoError(t, b.WaitConnected(ctx))
	assert.Equal(t, "access-1", string(srv.LastConnect().GetAuthData()))

	// Before the refresh point the cached token answers the challenge.
	require.Equal(t, 1, srv.ChallengeAll())
	require.NoError(t, srv.WaitReceived(ctx, pulsarpb.BaseCommand_AUTH_RESPONSE, 1))
	assert.Equal(t, "access-1", string(srv.LastAuthResponse().GetResponse().GetAuthData()))

	clk.Advance(90 * time.Second) // the refresh point of a 100 s token
	require.Equal(t, 1, srv.ChallengeAll())
	require.NoError(t, srv.WaitReceived(ctx, pulsarpb.BaseCommand_AUTH_RESPONSE, 2))
	assert.Equal(t, "access-2", string(srv.LastAuthResponse().GetResponse().GetAuthData()))
	assert.Equal(t, pulsarconn.StateConnected, b.State())
}

// failures wraps an Authenticator and reports each error its Initial
// returns, so that a test can wait for failed handshakes instead of
// polling.
type failures struct {
	ports.Authenticator
	errs chan error
}

func (f failures) Initial(ctx context.Context) ([]byte, error) {
	b, err := f.Authenticator.Initial(ctx)
	if err != nil {
		f.errs <- err
	}
	return b, err
}

// TestBrokerTokenEndpointDown: while the token endpoint refuses, the
// Broker cannot connect and says why, without the client secret; when it
// recovers, the next attempt connects.
func TestBrokerTokenEndpointDown(t *testing.T) {
	p := newIDP(t)
	p.set(func(p *idp) { p.failWith = http.StatusServiceUnavailable })
	a := failures{Authenticator: newAuth(t, p, newClock()), errs: make(chan error, 100)}
	b, srv := startBroker(t, a)
	ctx := authtest.Context(t)
	// After the second failure the Broker has surely recorded the first.
	for range 2 {
		select {
		case err := <-a.errs:
			require.ErrorIs(t, err, oauth2.ErrTokenFetch)
		case <-ctx.Done():
			t.Fatal("Initial was not called")
		}
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	err := b.WaitConnected(done)
	require.ErrorIs(t, err, pulsarconn.ErrAuthentication)
	require.ErrorIs(t, err, oauth2.ErrTokenFetch)
	var te *oauth2.TokenError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, http.StatusServiceUnavailable, te.StatusCode)
	authtest.NoSecretInErrors(t, clientSecret, err)
	assert.Equal(t, 0, srv.Received(pulsarpb.BaseCommand_CONNECT), "no CONNECT without a token")

	p.set(func(p *idp) { p.failWith = 0 })
	require.NoError(t, b.WaitConnected(ctx))
}
