package basic_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/adapters/auth/basic"
	"github.com/pulsarconn/pulsarconn/adapters/memory"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// TestBasicAgainstBroker connects with basic credentials to a fake broker
// that checks them, and is refused with the wrong password.
func TestBasicAgainstBroker(t *testing.T) {
	network := memory.NewNetwork()
	l, err := network.Listen("broker:6650")
	require.NoError(t, err)
	srv := pulsartest.NewServer(pulsartest.WithAdvertisedURL("pulsar://broker:6650"), pulsartest.WithBasicAuth("alice", "pw"))
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	good, err := basic.New("alice", "pw")
	require.NoError(t, err)
	b, err := pulsarconn.Start("pulsar://broker:6650", pulsarconn.WithTransport(network), pulsarconn.WithAuthenticator(good))
	require.NoError(t, err)
	defer b.Stop(context.Background())
	require.NoError(t, b.WaitConnected(ctx))
	assert.Equal(t, "basic", srv.LastConnect().GetAuthMethodName())

	bad, err := basic.New("alice", "guess")
	require.NoError(t, err)
	b2, err := pulsarconn.Start("pulsar://broker:6650", pulsarconn.WithTransport(network), pulsarconn.WithAuthenticator(bad),
		pulsarconn.WithBackoff(time.Second, time.Second))
	require.NoError(t, err)
	defer b2.Stop(context.Background())
	for {
		st, changed := b2.WatchState()
		if st == pulsarconn.StateDisconnected {
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
