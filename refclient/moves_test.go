package refclient

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/adapters/memory"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// TestFollowsTopicOffKilledBroker: the broker that owns the topic dies
// without a word (its connections and listener closed, no CLOSE_PRODUCER
// or CLOSE_CONSUMER, as kill -9) and its topics go to the other broker.
// The producer and the consumer, whose reconnections to the dead broker
// fail, look the topic up again and carry on there.
func TestFollowsTopicOffKilledBroker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		network := memory.NewNetwork()
		cl := pulsartest.NewCluster(2)
		t.Cleanup(func() { cl.Close() })
		for _, s := range cl.Brokers() {
			l, err := network.Listen(s.URL()[len("pulsar://"):])
			require.NoError(t, err)
			require.NoError(t, s.Start(l))
		}
		client, err := pulsarconn.NewClient("pulsar://broker-0:6650,broker-1:6650", pulsarconn.WithTransport(network))
		require.NoError(t, err)
		t.Cleanup(func() { client.Close(context.Background()) })
		ctx := testContext(t)

		c, err := NewConsumer(ctx, client, topic, "s", ConsumerOptions{})
		require.NoError(t, err)
		p, err := NewProducer(ctx, client, topic, ProducerOptions{})
		require.NoError(t, err)
		_, err = p.Send(ctx, msg("before"))
		require.NoError(t, err)
		m := receive(t, ctx, c)
		assert.Equal(t, "before", string(m.Payload))
		require.NoError(t, c.Ack(ctx, m))

		owner := cl.Owner(topic)
		require.NoError(t, cl.Broker(owner).Close())
		require.NoError(t, cl.RemoveBroker(owner))

		_, err = p.Send(ctx, msg("after"))
		require.NoError(t, err, "sent to the topic's new broker")
		m = receive(t, ctx, c)
		assert.Equal(t, "after", string(m.Payload))
		require.NoError(t, c.Ack(ctx, m))
		assert.Equal(t, 2, p.Stats().Created)
		assert.Equal(t, 2, c.Stats().Subscribed)
		require.NoError(t, p.Close(ctx))
		require.NoError(t, c.Close(ctx))
	})
}

// TestAckCrossingClose: an ACK that reaches the broker after it closed
// the consumer (a topic unload) is never answered, as a broker does; Ack
// gives it up when the consumer is told, and acknowledges again once it
// has subscribed again, instead of waiting for the operation timeout.
func TestAckCrossingClose(t *testing.T) {
	bubble(t, func(t *testing.T, e *env, ctx context.Context) {
		produce(t, ctx, e, 1)
		c := e.consumer(t, ctx, earliest)
		m := receive(t, ctx, c)

		ack := e.srv.Hold(pulsarpb.BaseCommand_ACK)
		resubscribe := e.srv.Hold(pulsarpb.BaseCommand_SUBSCRIBE)
		start := time.Now()
		acked := make(chan error, 1)
		go func() { acked <- c.Ack(ctx, m) }()
		<-ack.Arrived()
		require.Equal(t, 1, e.srv.Unload(topic))
		ack.Release() // for a consumer the broker no longer has: no answer
		<-resubscribe.Arrived()
		resubscribe.Release()

		require.NoError(t, <-acked)
		assert.Less(t, time.Since(start), time.Second, "the Ack did not wait for the operation timeout")
		assert.Equal(t, 2, c.Stats().Subscribed)
		require.NoError(t, c.Close(ctx))
	})
}
