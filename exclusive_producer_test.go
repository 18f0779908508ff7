package pulsarconn_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

func producerRequest(id uint64, mode pulsarpb.ProducerAccessMode) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_PRODUCER.Enum(), Producer: &pulsarpb.CommandProducer{
		Topic: proto.String("persistent://public/default/exclusive"), ProducerId: proto.Uint64(id), ProducerAccessMode: mode.Enum()}}
}

// TestWaitForExclusiveProducerTimesOut: a PRODUCER the broker queues for
// exclusive access (answered producer_ready=false) ends at the operation
// timeout, counted from the request, for Request and RequestAsync alike:
// done is called with ErrRequestTimeout and the request slots are free.
func TestWaitForExclusiveProducerTimesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := memoryEnv(t)
		const timeout = 30 * time.Second
		b := e.connected(t, pulsarconn.WithOperationTimeout(timeout), pulsarconn.WithMaxPendingRequests(2))
		ctx := testContext(t)
		_, err := b.Request(ctx, producerRequest(1, pulsarpb.ProducerAccessMode_Exclusive))
		require.NoError(t, err)

		start := time.Now()
		done := make(chan error, 1)
		require.NoError(t, b.RequestAsync(ctx, producerRequest(2, pulsarpb.ProducerAccessMode_WaitForExclusive),
			func(_ *pulsarpb.BaseCommand, err error) { done <- err }))
		returned := make(chan error, 1)
		go func() {
			_, err := b.Request(ctx, producerRequest(3, pulsarpb.ProducerAccessMode_WaitForExclusive))
			returned <- err
		}()
		synctest.Wait()
		require.Equal(t, 2, e.srv.Received(pulsarpb.BaseCommand_PRODUCER)-1, "both queued by the broker")
		assert.Equal(t, 2, b.Metrics().Pending, "both wait for their second answer")

		time.Sleep(timeout - time.Since(start) - time.Nanosecond)
		synctest.Wait()
		assert.Empty(t, done, "not before the operation timeout")
		assert.Empty(t, returned, "not before the operation timeout")

		time.Sleep(time.Nanosecond)
		synctest.Wait()
		require.Len(t, done, 1, "RequestAsync's done is called at the operation timeout")
		assert.ErrorIs(t, <-done, pulsarconn.ErrRequestTimeout)
		require.Len(t, returned, 1, "Request returns at the operation timeout")
		assert.ErrorIs(t, <-returned, pulsarconn.ErrRequestTimeout)
		assert.Zero(t, b.Metrics().Pending, "the request slots are free")

		// Both slots can be taken again at once.
		for id := uint64(4); id <= 5; id++ {
			require.NoError(t, b.RequestAsync(ctx, producerRequest(id, pulsarpb.ProducerAccessMode_WaitForExclusive),
				func(*pulsarpb.BaseCommand, error) {}))
		}
	})
}
