package pulsarconn_test

import (
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// TestCallsBoundToAConnection: RequestOn and PublishMessageOn refuse a
// connection that was replaced, at once and retryably, so a SEND cannot
// reach a new connection before its producer is created there (found by
// the chaos scenario: a publish racing a reconnect landed on the new
// connection first).
func TestCallsBoundToAConnection(t *testing.T) { synctest.Test(t, testCallsBoundToAConnection) }

func testCallsBoundToAConnection(t *testing.T) {
	e := memoryEnv(t)
	b := e.connected(t)
	ctx := testContext(t)
	first := b.Connection()
	require.NotZero(t, first)

	producer := func() *pulsarpb.BaseCommand {
		return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_PRODUCER.Enum(),
			Producer: &pulsarpb.CommandProducer{Topic: proto.String("persistent://public/default/t"), ProducerId: proto.Uint64(1)}}
	}
	_, err := b.RequestOn(ctx, first, producer())
	require.NoError(t, err)
	require.NoError(t, b.PublishMessageOn(ctx, first, sendFrame(t, 0, 16)))
	require.NoError(t, e.srv.WaitReceived(ctx, pulsarpb.BaseCommand_SEND, 1))

	_, changed := b.WatchState()
	e.srv.DropConnections()
	<-changed
	require.NoError(t, b.WaitConnected(ctx))
	second := b.Connection()
	assert.NotEqual(t, first, second)

	err = b.PublishMessageOn(ctx, first, sendFrame(t, 1, 16))
	assert.ErrorIs(t, err, pulsarconn.ErrDisconnected)
	assert.True(t, pulsarconn.IsRetryable(err))
	_, err = b.RequestOn(ctx, first, producer())
	assert.ErrorIs(t, err, pulsarconn.ErrDisconnected)
	assert.Equal(t, 1, e.srv.Received(pulsarpb.BaseCommand_SEND), "nothing was sent on the new connection")

	_, err = b.RequestOn(ctx, second, producer())
	require.NoError(t, err)
	require.NoError(t, b.PublishMessageOn(ctx, second, sendFrame(t, 1, 16)))
	require.NoError(t, e.srv.WaitReceived(ctx, pulsarpb.BaseCommand_SEND, 2))
	assert.ErrorIs(t, b.PublishMessageOn(ctx, 0, sendFrame(t, 2, 16)), pulsarconn.ErrDisconnected, "0 names no connection")
}
