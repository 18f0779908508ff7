package refclient

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/proto/command"
	"github.com/pulsarconn/pulsarconn/proto/message"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// earliest subscribes from the first message.
var earliest = ConsumerOptions{InitialPosition: pulsarpb.CommandSubscribe_Earliest}

// produce stores n messages "0".."n-1" on topic.
func produce(t *testing.T, ctx context.Context, e *env, n int) {
	t.Helper()
	p, err := NewProducer(ctx, e.client, topic, ProducerOptions{})
	require.NoError(t, err)
	for i := range n {
		_, err := p.Send(ctx, msg(fmt.Sprint(i)))
		require.NoError(t, err)
	}
	require.NoError(t, p.Close(ctx))
}

func receive(t *testing.T, ctx context.Context, c *Consumer) *Message {
	t.Helper()
	m, err := c.Receive(ctx)
	require.NoError(t, err)
	return m
}

// TestRedeliveryAfterDrop: a message received but not acknowledged when
// the connection is lost is received again, with the same id, after the
// consumer has subscribed again; what was queued and not yet received is
// dropped and comes again too.
func TestRedeliveryAfterDrop(t *testing.T) {
	bubble(t, func(t *testing.T, e *env, ctx context.Context) {
		produce(t, ctx, e, 3)
		c := e.consumer(t, ctx, earliest)
		first := receive(t, ctx, c)
		assert.Equal(t, "0", string(first.Payload))
		synctest.Wait() // 1 and 2 are queued

		e.network.DropAll()
		synctest.Wait() // the consumer knows: what it queued is dropped
		again := receive(t, ctx, c)
		assert.Equal(t, first.ID, again.ID)
		assert.Equal(t, "0", string(again.Payload))
		for _, want := range []string{"1", "2"} {
			m := receive(t, ctx, c)
			assert.Equal(t, want, string(m.Payload))
			require.NoError(t, c.Ack(ctx, m))
		}
		require.NoError(t, c.Ack(ctx, again))
		assert.Equal(t, ConsumerStats{Subscribed: 2, Dropped: 2}, c.Stats())
		st, _ := e.srv.Subscription(topic, "s")
		assert.Equal(t, int64(2), st.MarkDelete, "all three acknowledged")
		require.NoError(t, c.Close(ctx))
	})
}

// TestAckAcrossDrop: an Ack made while the consumer is lost waits for the
// re-subscription and is confirmed; the copy the broker sent again before
// it had the Ack is dropped, so Receive never returns an acknowledged
// message.
func TestAckAcrossDrop(t *testing.T) {
	bubble(t, func(t *testing.T, e *env, ctx context.Context) {
		produce(t, ctx, e, 2)
		c := e.consumer(t, ctx, earliest)
		first := receive(t, ctx, c)
		synctest.Wait()
		e.network.DropAll()
		synctest.Wait()
		require.NoError(t, c.Ack(ctx, first))
		m := receive(t, ctx, c)
		assert.Equal(t, "1", string(m.Payload), "0 is not received again")
		require.NoError(t, c.Ack(ctx, m))
		st, _ := e.srv.Subscription(topic, "s")
		assert.Equal(t, int64(1), st.MarkDelete)
		require.NoError(t, c.Close(ctx))
	})
}

// TestFlowRefill: the consumer grants the receiver queue's permits at
// subscription, then, as Receive takes messages, half the queue at a time.
func TestFlowRefill(t *testing.T) {
	bubble(t, func(t *testing.T, e *env, ctx context.Context) {
		produce(t, ctx, e, 30)
		opts := earliest
		opts.ReceiverQueueSize = 10
		c := e.consumer(t, ctx, opts)
		for i := range 30 {
			m := receive(t, ctx, c)
			assert.Equal(t, fmt.Sprint(i), string(m.Payload))
			require.NoError(t, c.Ack(ctx, m))
		}
		synctest.Wait()
		var permits []uint32
		for _, f := range e.srv.Frames() {
			if f.Type == pulsarpb.BaseCommand_FLOW {
				permits = append(permits, f.Command.GetFlow().GetMessagePermits())
			}
		}
		assert.Equal(t, []uint32{10, 5, 5, 5, 5, 5, 5}, permits)
		require.NoError(t, c.Close(ctx))
	})
}

// TestConsumerResubscribesAfterUnload: the broker closes the consumer
// (CLOSE_CONSUMER, a topic unload); it subscribes again and gets the
// unacknowledged messages again.
func TestConsumerResubscribesAfterUnload(t *testing.T) {
	bubble(t, func(t *testing.T, e *env, ctx context.Context) {
		produce(t, ctx, e, 2)
		c := e.consumer(t, ctx, earliest)
		m := receive(t, ctx, c)
		require.NoError(t, c.Ack(ctx, m))
		unacked := receive(t, ctx, c)
		assert.Equal(t, 1, e.srv.Unload(topic))
		again := receive(t, ctx, c)
		assert.Equal(t, unacked.ID, again.ID)
		require.NoError(t, c.Ack(ctx, again))
		assert.Equal(t, 2, c.Stats().Subscribed)
		require.NoError(t, c.Close(ctx))
	})
}

// TestReceiveAfterClose: Receive and Ack fail with ErrClosed once the
// consumer is closed; the broker got CLOSE_CONSUMER.
func TestReceiveAfterClose(t *testing.T) {
	bubble(t, func(t *testing.T, e *env, ctx context.Context) {
		produce(t, ctx, e, 1)
		c := e.consumer(t, ctx, earliest)
		m := receive(t, ctx, c)
		require.NoError(t, c.Close(ctx))
		_, err := c.Receive(ctx)
		assert.ErrorIs(t, err, ErrClosed)
		assert.ErrorIs(t, c.Ack(ctx, m), ErrClosed)
		synctest.Wait()
		assert.Equal(t, 1, e.srv.Received(pulsarpb.BaseCommand_CLOSE_CONSUMER))
	})
}

// TestCorruptMessageIsAskedAgain: a message whose checksum does not match
// is not returned; the consumer asks for it again and receives it intact.
func TestCorruptMessageIsAskedAgain(t *testing.T) {
	bubble(t, func(t *testing.T, e *env, ctx context.Context) {
		produce(t, ctx, e, 1)
		e.srv.CorruptNextMessageChecksum()
		c := e.consumer(t, ctx, earliest)
		m := receive(t, ctx, c)
		assert.Equal(t, "0", string(m.Payload))
		require.NoError(t, c.Ack(ctx, m))
		assert.Equal(t, 1, c.Stats().Corrupt)
		assert.Equal(t, 1, e.srv.Received(pulsarpb.BaseCommand_REDELIVER_UNACKNOWLEDGED_MESSAGES))
		require.NoError(t, c.Close(ctx))
	})
}

// publishBatch stores msgs on topic as one batch, compressed with c, as
// another client's producer would.
func publishBatch(t *testing.T, ctx context.Context, e *env, c pulsarpb.CompressionType, msgs []message.Message) {
	t.Helper()
	b, err := e.client.LookupTopic(ctx, topic)
	require.NoError(t, err)
	id := b.NewProducerID()
	receipt := make(chan struct{}, 1)
	reg, err := b.RegisterProducer(context.Background(), id, pulsarconn.HandlerFunc(func(p pulsarconn.Push) {
		if p.Kind == pulsarconn.PushReceipt {
			receipt <- struct{}{}
		}
	}))
	require.NoError(t, err)
	defer reg.Close(ctx)
	_, err = reg.Create(ctx, command.Producer(topic, id))
	require.NoError(t, err)
	enc := message.Encoder{ProducerName: "other", Compression: c}
	f, err := enc.AppendBatch(nil, id, msgs)
	require.NoError(t, err)
	require.NoError(t, reg.Publish(ctx, f))
	<-receipt
}

// TestBatchedAndCompressed: a batch (here compressed with LZ4) is received
// as its messages, each with its key and properties and its place in the
// batch; the broker is told of the batch once all its messages are
// acknowledged, and a message acknowledged before a redelivery of the
// batch is not received again.
func TestBatchedAndCompressed(t *testing.T) {
	bubble(t, func(t *testing.T, e *env, ctx context.Context) {
		publishBatch(t, ctx, e, pulsarpb.CompressionType_LZ4, []message.Message{
			{Payload: []byte("a"), Key: "k", SequenceID: 0},
			{Payload: []byte("b"), Properties: map[string]string{"p": "v"}, SequenceID: 1},
			{Payload: []byte("c"), SequenceID: 2},
		})
		c := e.consumer(t, ctx, earliest)
		var got []*Message
		for range 3 {
			got = append(got, receive(t, ctx, c))
		}
		for i, m := range got {
			assert.Equal(t, string(rune('a'+i)), string(m.Payload))
			assert.Equal(t, int32(i), m.ID.BatchIndex)
			assert.Equal(t, int32(3), m.ID.BatchSize)
			assert.Equal(t, "other", m.ProducerName)
			assert.Equal(t, uint64(i), m.SequenceID)
		}
		assert.Equal(t, "k", got[0].Key)
		assert.Equal(t, map[string]string{"p": "v"}, got[1].Properties)

		require.NoError(t, c.Ack(ctx, got[0]))
		require.NoError(t, c.Ack(ctx, got[1]))
		synctest.Wait()
		assert.Zero(t, e.srv.Received(pulsarpb.BaseCommand_ACK), "the batch is not done yet")
		e.network.DropAll() // the whole batch comes again
		synctest.Wait()
		again := receive(t, ctx, c)
		assert.Equal(t, "c", string(again.Payload), "a and b were acknowledged")
		assert.Equal(t, got[2].ID, again.ID)
		require.NoError(t, c.Ack(ctx, again))
		assert.Equal(t, 1, e.srv.Received(pulsarpb.BaseCommand_ACK))
		st, _ := e.srv.Subscription(topic, "s")
		assert.Equal(t, int64(0), st.MarkDelete, "the entry is acknowledged")
		require.NoError(t, c.Close(ctx))
	})
}

// TestMessageFields: what a producer sets (key, properties, event time,
// its name and sequence id) is what the consumer receives.
func TestMessageFields(t *testing.T) {
	bubble(t, func(t *testing.T, e *env, ctx context.Context) {
		p := e.producer(t, ctx, ProducerOptions{Name: "orders-svc"})
		assert.Equal(t, "orders-svc", p.Name())
		event := time.UnixMilli(1_700_000_000_123)
		sent := Message{Payload: []byte("x"), Key: "k1", Properties: map[string]string{"a": "1", "b": "2"}, EventTime: event}
		id, err := p.Send(ctx, sent)
		require.NoError(t, err)
		require.NoError(t, p.Close(ctx))

		c := e.consumer(t, ctx, earliest)
		m := receive(t, ctx, c)
		assert.Equal(t, id, m.ID)
		assert.Equal(t, "x", string(m.Payload))
		assert.Equal(t, "k1", m.Key)
		assert.Equal(t, sent.Properties, m.Properties)
		assert.True(t, event.Equal(m.EventTime), "event time %v", m.EventTime)
		assert.Equal(t, "orders-svc", m.ProducerName)
		assert.Equal(t, uint64(0), m.SequenceID)
		assert.False(t, m.PublishTime.IsZero())
		require.NoError(t, c.Close(ctx))
	})
}
