package pulsarconn_test

import (
	"errors"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/contracttest"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"

	"github.com/pulsarconn/pulsarconn"
)

// TestPublishNeverFollowsStop: publishers keep publishing (without the
// Broker's lock, on the fast path) while Stop runs; every publish either
// reaches the broker before the CLOSE_PRODUCER or fails with ErrClosed,
// never lands after it.
func TestPublishNeverFollowsStop(t *testing.T) {
	forEachTransport(t, func(t *testing.T, e env) {
		b := e.connected(t)
		ctx := testContext(t)
		_, err := b.RegisterProducer(ctx, 1, contracttest.NewPushLog())
		require.NoError(t, err)
		_, err = b.Request(ctx, &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_PRODUCER.Enum(), Producer: &pulsarpb.CommandProducer{
			Topic: proto.String("persistent://public/default/t"), ProducerId: proto.Uint64(1)}})
		require.NoError(t, err)

		msg := sendFrame(t, 0, 100)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					if err := b.PublishMessage(ctx, msg); err != nil {
						errs[i] = err
						return
					}
				}
			}()
		}
		require.NoError(t, e.srv.WaitReceived(ctx, pulsarpb.BaseCommand_SEND, 100))
		require.NoError(t, b.Stop(ctx))
		wg.Wait()
		for _, err := range errs {
			assert.ErrorIs(t, err, pulsarconn.ErrClosed)
		}
		closed := false
		sends := 0
		for _, f := range e.srv.Frames() {
			if f.Dir != pulsartest.In {
				continue
			}
			switch f.Type {
			case pulsarpb.BaseCommand_CLOSE_PRODUCER:
				closed = true
			case pulsarpb.BaseCommand_SEND:
				sends++
				require.False(t, closed, "a SEND after CLOSE_PRODUCER (the %dth SEND)", sends)
			}
		}
		assert.True(t, closed)
		assert.GreaterOrEqual(t, sends, 100)
	})
}

// TestPublishFastPathChecks: a frame over the broker's limit, or a
// publish bound to a replaced connection, gets the core's answer, not
// the fast path's.
func TestPublishFastPathChecks(t *testing.T) { synctest.Test(t, testPublishFastPathChecks) }

func testPublishFastPathChecks(t *testing.T) {
	e := memoryEnv(t, pulsartest.WithMaxMessageSize(1024))
	b := e.connected(t)
	ctx := testContext(t)
	err := b.PublishMessage(ctx, sendFrame(t, 0, 1024+10*1024))
	assert.ErrorIs(t, err, pulsarconn.ErrMessageTooLarge)
	conn := b.Connection()
	require.NoError(t, b.PublishMessageOn(ctx, conn, sendFrame(t, 0, 10)))
	err = b.PublishMessageOn(ctx, conn+1, sendFrame(t, 0, 10))
	assert.ErrorIs(t, err, pulsarconn.ErrDisconnected)
	assert.False(t, errors.Is(err, pulsarconn.ErrMessageTooLarge))
}

// TestPublishChecksThePayload: the broker's max message size bounds a
// message's payload, not its frame: against a 1,024-byte limit, payloads
// of 2,000 and 9,000 bytes (whose frames fit in the limit's 10 KiB of
// padding) are refused before anything is written; 1,024 bytes pass.
func TestPublishChecksThePayload(t *testing.T) { synctest.Test(t, testPublishChecksThePayload) }

func testPublishChecksThePayload(t *testing.T) {
	e := memoryEnv(t, pulsartest.WithMaxMessageSize(1024))
	b := e.connected(t)
	ctx := testContext(t)
	conn := b.Connection()
	for _, size := range []int{1025, 2000, 9000} {
		err := b.PublishMessage(ctx, sendFrame(t, 0, size))
		assert.ErrorIs(t, err, pulsarconn.ErrMessageTooLarge, "payload of %d bytes", size)
		err = b.PublishMessageOn(ctx, conn, sendFrame(t, 0, size))
		assert.ErrorIs(t, err, pulsarconn.ErrMessageTooLarge, "payload of %d bytes", size)
	}
	require.NoError(t, b.PublishMessage(ctx, sendFrame(t, 1, 1024)))
	require.NoError(t, e.srv.WaitReceived(ctx, pulsarpb.BaseCommand_SEND, 1))
	synctest.Wait()
	sends := 0
	for _, f := range e.srv.Frames() {
		if f.Dir == pulsartest.In && f.Type == pulsarpb.BaseCommand_SEND {
			sends++
		}
	}
	assert.Equal(t, 1, sends, "only the 1,024-byte payload reaches the broker")
	assert.Equal(t, conn, b.Connection(), "the connection survives")
}
