package quic_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/adapters/quic"
	"github.com/pulsarconn/pulsarconn/internal/testenv"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// The fake broker served over a QUIC listener, and a Broker dialling it
// over the QUIC transport: the whole stack, one stream per connection.
func TestBrokerOverQUIC(t *testing.T) {
	pki := testenv.NewPKI(t)
	l, err := quic.Listen("127.0.0.1:0", pki.ServerConfig())
	require.NoError(t, err)
	srv := pulsartest.NewServer()
	require.NoError(t, srv.Start(l))
	t.Cleanup(func() { srv.Close() })
	srv.SetPartitions("persistent://public/default/q", 3)
	ctx := testenv.Context(t)

	b, err := pulsarconn.Start(srv.URL(),
		pulsarconn.WithTransport(quic.New(pki.ClientConfig())),
		pulsarconn.WithBackoff(time.Millisecond, 20*time.Millisecond))
	require.NoError(t, err)
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			b.Stop(context.Background())
		}
	})
	require.NoError(t, b.WaitConnected(ctx))
	version, protocol := b.ServerVersion()
	assert.NotEmpty(t, version)
	assert.Positive(t, protocol)

	res, err := b.LookupTopic(ctx, "persistent://public/default/q", false)
	require.NoError(t, err)
	assert.Equal(t, srv.URL(), res.BrokerURL)
	n, err := b.PartitionedTopicMetadata(ctx, "persistent://public/default/q")
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	require.NoError(t, srv.WaitConns(ctx, 1))

	require.NoError(t, b.Stop(ctx))
	stopped = true
	assert.Equal(t, pulsarconn.StateClosed, b.State())
	// The broker sees the connection end.
	require.NoError(t, srv.WaitConns(ctx, 0))
}
