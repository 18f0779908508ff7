package token_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/adapters/auth/internal/authtest"
	"github.com/pulsarconn/pulsarconn/adapters/auth/token"
	"github.com/pulsarconn/pulsarconn/internal/testenv"
	"github.com/pulsarconn/pulsarconn/ports"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// These tests run a pulsarconn.Broker with the token Authenticator against
// the fake broker on the in-memory network.

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

// TestBrokerTokenAndRefresh: CONNECT carries the token under the method
// "token", which the fake broker checks; a refresh challenge on the live
// connection is answered with the token and the connection stays up.
func TestBrokerTokenAndRefresh(t *testing.T) {
	b, srv := startBroker(t, token.New(secret), pulsartest.WithToken(secret))
	ctx := authtest.Context(t)
	require.NoError(t, b.WaitConnected(ctx))
	assert.Equal(t, "token", srv.LastConnect().GetAuthMethodName())
	assert.Equal(t, secret, string(srv.LastConnect().GetAuthData()))

	require.Equal(t, 1, srv.ChallengeAll())
	require.NoError(t, srv.WaitReceived(ctx, pulsarpb.BaseCommand_AUTH_RESPONSE, 1))
	assert.Equal(t, secret, string(srv.LastAuthResponse().GetResponse().GetAuthData()))
	assert.Equal(t, "token", srv.LastAuthResponse().GetResponse().GetAuthMethodName())
	// A round trip after the AUTH_RESPONSE: the connection is still up.
	_, err := b.LookupTopic(ctx, "persistent://public/default/t", false)
	require.NoError(t, err)
	assert.Equal(t, pulsarconn.StateConnected, b.State())
	assert.Equal(t, 1, srv.Received(pulsarpb.BaseCommand_CONNECT), "no reconnection")
}

// TestBrokerTokenFileRotation: the token file is rotated while connected;
// the broker's next refresh challenge gets the new token.
func TestBrokerTokenFileRotation(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "token", "first-token\n")
	// Without WithToken the fake broker accepts any credentials, so both
	// tokens are good; what is checked is which one is presented.
	b, srv := startBroker(t, token.FromFile(path))
	ctx := authtest.Context(t)
	require.NoError(t, b.WaitConnected(ctx))
	assert.Equal(t, "first-token", string(srv.LastConnect().GetAuthData()))

	require.NoError(t, os.WriteFile(filepath.Join(dir, "token"), []byte("second-token\n"), 0o600))
	require.Equal(t, 1, srv.ChallengeAll())
	require.NoError(t, srv.WaitReceived(ctx, pulsarpb.BaseCommand_AUTH_RESPONSE, 1))
	assert.Equal(t, "second-token", string(srv.LastAuthResponse().GetResponse().GetAuthData()))
	assert.Equal(t, pulsarconn.StateConnected, b.State())
}

// TestBrokerWrongToken: the broker refuses a wrong token; the refusal is
// final (the Broker closes instead of trying again), and the error it
// reports holds no token.
func TestBrokerWrongToken(t *testing.T) {
	const wrong = "wrong-but-still-secret-token"
	b, _ := startBroker(t, token.New(wrong), pulsartest.WithToken(secret))
	ctx := authtest.Context(t)
	err := b.WaitConnected(ctx)
	require.ErrorIs(t, err, pulsarconn.ErrAuthenticationError)
	assert.Equal(t, pulsarconn.StateClosed, b.State())
	authtest.NoSecretInErrors(t, wrong, err)
	authtest.NoSecretInErrors(t, secret, err)
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

// TestBrokerMissingTokenFile: a token file that cannot be read fails the
// handshake with ErrAuthentication, and the error names the file; once the
// file appears, the next attempt connects.
func TestBrokerMissingTokenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	a := failures{Authenticator: token.FromFile(path), errs: make(chan error, 100)}
	b, srv := startBroker(t, a, pulsartest.WithToken(secret))
	ctx := authtest.Context(t)
	// After the second failure the Broker has surely recorded the first.
	for range 2 {
		select {
		case err := <-a.errs:
			require.ErrorIs(t, err, fs.ErrNotExist)
		case <-ctx.Done():
			t.Fatal("Initial was not called")
		}
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	err := b.WaitConnected(done)
	require.ErrorIs(t, err, pulsarconn.ErrAuthentication)
	require.ErrorIs(t, err, fs.ErrNotExist)
	assert.Contains(t, err.Error(), path)

	// The file appears: the next attempt reads it and connects.
	writeFile(t, filepath.Dir(path), "token", secret)
	require.NoError(t, b.WaitConnected(ctx))
	assert.Equal(t, secret, string(srv.LastConnect().GetAuthData()))
}
