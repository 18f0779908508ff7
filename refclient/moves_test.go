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
		cl, client := twoBrokers(t)
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

// TestCreateFollowsTopicWhenBrokerDiesFirst: the producer is being
// re-created (a SEND_ERROR) but its PRODUCER is not yet written (every
// request slot is taken) when its broker dies without a word. The
// PRODUCER must not wait for a connection that will not come back: the
// producer looks the topic up again and carries on at its new broker.
func TestCreateFollowsTopicWhenBrokerDiesFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl, client := twoBrokers(t, pulsarconn.WithMaxPendingRequests(1))
		ctx := testContext(t)

		p, err := NewProducer(ctx, client, topic, ProducerOptions{})
		require.NoError(t, err)
		_, err = p.Send(ctx, msg("before"))
		require.NoError(t, err)

		owner := cl.Owner(topic)
		srv := cl.Broker(owner)
		b, err := client.LookupTopic(ctx, topic)
		require.NoError(t, err)
		// The one request slot taken by a LOOKUP the broker holds.
		lookup := srv.Hold(pulsarpb.BaseCommand_LOOKUP)
		looked := make(chan error, 1)
		go func() { _, err := b.LookupTopic(ctx, topic, false); looked <- err }()
		<-lookup.Arrived()
		// The next SEND fails: the producer is re-created, and its
		// PRODUCER waits for the slot.
		sendErr := srv.FailNext(pulsarpb.BaseCommand_SEND, 1, pulsarpb.ServerError_PersistenceError)
		sent := make(chan error, 1)
		go func() { _, err := p.Send(ctx, msg("after")); sent <- err }()
		require.NoError(t, sendErr.Wait(ctx, 1))
		synctest.Wait()

		require.NoError(t, srv.Close())
		require.NoError(t, cl.RemoveBroker(owner))
		require.Error(t, <-looked, "the held LOOKUP failed with its connection")
		require.NoError(t, <-sent, "sent to the topic's new broker")
		assert.Equal(t, 2, p.Stats().Created)
		require.NoError(t, p.Close(ctx))
	})
}

// TestAckFollowsConsumerWhenBrokerDiesFirst: an Ack whose ACK waits for
// room in the write queue (the broker stopped reading) when its broker
// dies without a word must not wait for that connection to come back:
// it is sent again once the consumer has subscribed at the topic's new
// broker.
func TestAckFollowsConsumerWhenBrokerDiesFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl, client := twoBrokers(t, pulsarconn.WithWriteQueueLimit(1))
		ctx := testContext(t)

		c, err := NewConsumer(ctx, client, topic, "s", ConsumerOptions{})
		require.NoError(t, err)
		p, err := NewProducer(ctx, client, topic, ProducerOptions{})
		require.NoError(t, err)
		_, err = p.Send(ctx, msg("before"))
		require.NoError(t, err)
		m := receive(t, ctx, c)

		// The broker stops reading at the next SEND: the SENDs that
		// follow fill the connection and the write queue.
		owner := cl.Owner(topic)
		srv := cl.Broker(owner)
		b, err := client.LookupTopic(ctx, topic)
		require.NoError(t, err)
		release := make(chan struct{})
		srv.Intercept(pulsarpb.BaseCommand_SEND, func(*pulsartest.Call) pulsartest.Action { <-release; return pulsartest.Drop })
		big := make([]byte, 1<<20)
		go func() {
			for range 12 {
				_ = p.SendAsync(ctx, Message{Payload: big}, func(MessageID, error) {})
			}
		}()
		synctest.Wait()
		acked := make(chan error, 1)
		go func() { acked <- c.Ack(ctx, m) }()
		synctest.Wait()

		closed := make(chan error, 1)
		go func() { closed <- srv.Close() }()
		for b.State() == pulsarconn.StateConnected {
			_, changed := b.WatchState()
			<-changed
		}
		close(release)
		require.NoError(t, <-closed)
		require.NoError(t, cl.RemoveBroker(owner))
		require.NoError(t, <-acked, "acknowledged at the topic's new broker")
		assert.Equal(t, 2, c.Stats().Subscribed)
		require.NoError(t, c.Close(ctx))
		require.NoError(t, p.Close(ctx))
	})
}

// twoBrokers serves a cluster of two pulsartest brokers on an in-memory
// network (broker-0:6650 and broker-1:6650) and returns it with a Client
// of both, made with opts (the network's transport added), both closed
// when the test ends. Call it inside a synctest bubble.
func twoBrokers(t *testing.T, opts ...pulsarconn.ClientOption) (*pulsartest.Cluster, *pulsarconn.Client) {
	t.Helper()
	network := memory.NewNetwork()
	cl := pulsartest.NewCluster(2)
	t.Cleanup(func() { cl.Close() })
	for _, s := range cl.Brokers() {
		l, err := network.Listen(s.URL()[len("pulsar://"):])
		require.NoError(t, err)
		require.NoError(t, s.Start(l))
	}
	client, err := pulsarconn.NewClient("pulsar://broker-0:6650,broker-1:6650", append(opts, pulsarconn.WithTransport(network))...)
	require.NoError(t, err)
	t.Cleanup(func() { client.Close(context.Background()) })
	return cl, client
}
