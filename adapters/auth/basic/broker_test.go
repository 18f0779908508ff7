package basic_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/adapters/auth/basic"
	"github.com/pulsarconn/pulsarconn/internal/testenv"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// TestBasicAgainstBroker connects with basic credentials to a fake broker
// that checks them, and is refused with the wrong password.
func TestBasicAgainstBroker(t *testing.T) {
	e := testenv.Memory(t, pulsartest.WithBasicAuth("alice", "pw"))
	ctx := testenv.Context(t)

	good, err := basic.New("alice", "pw")
	require.NoError(t, err)
	b, err := pulsarconn.Start(e.URL, pulsarconn.WithTransport(e.Network), pulsarconn.WithAuthenticator(good))
	require.NoError(t, err)
	defer b.Stop(context.Background())
	require.NoError(t, b.WaitConnected(ctx))
	assert.Equal(t, "basic", e.Server.LastConnect().GetAuthMethodName())

	bad, err := basic.New("alice", "guess")
	require.NoError(t, err)
	b2, err := pulsarconn.Start(e.URL, pulsarconn.WithTransport(e.Network), pulsarconn.WithAuthenticator(bad),
		pulsarconn.WithBackoff(time.Second, time.Second))
	require.NoError(t, err)
	defer b2.Stop(context.Background())
	for {
		st, changed := b2.WatchState()
		if st == pulsarconn.StateClosed { // a refusal of the credentials is final
			break
		}
		<-changed
	}
	done, cancel2 := context.WithCancel(ctx)
	cancel2()
	err = b2.WaitConnected(done)
	assert.ErrorIs(t, err, pulsarconn.ErrAuthenticationError)
	assert.NotContains(t, err.Error(), "guess")
}
