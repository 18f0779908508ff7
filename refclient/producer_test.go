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
	"github.com/pulsarconn/pulsarconn/adapters/memory"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

func msg(s string) Message { return Message{Payload: []byte(s)} }

// payloads returns the payloads stored on topic.
func payloads(srv *pulsartest.Server) []string {
	var out []string
	for _, p := range srv.Messages(topic) {
		out = append(out, string(p))
	}
	return out
}

// TestResendAfterLostReceipt: a message the broker stored but whose
// receipt was lost with the connection is sent again once the producer is
// re-created, and stored twice: Send returns the second copy's id.
func TestResendAfterLostReceipt(t *testing.T) {
	bubble(t, func(t *testing.T, e *env, ctx context.Context) {
		p := e.producer(t, ctx, ProducerOptions{})
		for i := range 2 {
			_, err := p.Send(ctx, msg(fmt.Sprint(i)))
			require.NoError(t, err)
		}
		// The broker stores message 2; its receipt goes nowhere.
		e.srv.Intercept(pulsarpb.BaseCommand_SEND, func(*pulsartest.Call) pulsartest.Action {
			e.network.SetHalfOpen(true)
			return pulsartest.Pass
		})
		result := make(chan MessageID, 1)
		require.NoError(t, p.SendAsync(ctx, msg("2"), func(id MessageID, err error) {
			assert.NoError(t, err)
			result <- id
		}))
		require.NoError(t, e.srv.WaitMessages(ctx, topic, 3))
		synctest.Wait()
		select {
		case <-result:
			t.Fatal("a receipt came through the half-open connection")
		default:
		}
		e.network.SetHalfOpen(false)
		e.network.DropAll()

		id := <-result
		assert.Equal(t, uint64(3), id.Entry, "the second copy's entry")
		assert.Equal(t, []string{"0", "1", "2", "2"}, payloads(e.srv))
		assert.Equal(t, ProducerStats{Created: 2, Resent: 1}, p.Stats())
		require.NoError(t, p.Close(ctx))
	})
}

// TestSendErrorRecreates: a SEND_ERROR (here: the broker did not store
// the message) makes the producer re-create itself and send again, in
// order, what is pending: not what was receipted meanwhile. The broker's
// TopicTerminatedError fails the message instead.
func TestSendErrorRecreates(t *testing.T) {
	bubble(t, func(t *testing.T, e *env, ctx context.Context) {
		p := e.producer(t, ctx, ProducerOptions{})
		// The broker refuses message 0 once 1 and 2 are on their way.
		release := make(chan struct{})
		e.srv.Intercept(pulsarpb.BaseCommand_SEND, func(c *pulsartest.Call) pulsartest.Action {
			<-release
			_ = c.ReplyError(pulsarpb.ServerError_PersistenceError, "injected")
			return pulsartest.Handled
		})
		done := make(chan error, 3)
		for i := range 3 {
			require.NoError(t, p.SendAsync(ctx, msg(fmt.Sprint(i)), func(_ MessageID, err error) { done <- err }))
		}
		synctest.Wait()
		close(release)
		for range 3 {
			require.NoError(t, <-done)
		}
		// 1 and 2 were stored and receipted before the PRODUCER's
		// answer: only 0 is sent again.
		assert.Equal(t, []string{"1", "2", "0"}, payloads(e.srv))
		assert.Equal(t, ProducerStats{Created: 2, Resent: 1}, p.Stats())

		e.srv.FailNext(pulsarpb.BaseCommand_SEND, 1, pulsarpb.ServerError_TopicTerminatedError)
		_, err := p.Send(ctx, msg("3"))
		assert.ErrorIs(t, err, pulsarconn.ErrTopicTerminated)
		require.NoError(t, p.Close(ctx))
	})
}

// TestSendAfterClose: Close waits for the receipts of what was sent; then
// Send and SendAsync fail with ErrClosed, and so does a second Close's
// caller's Send.
func TestSendAfterClose(t *testing.T) {
	bubble(t, func(t *testing.T, e *env, ctx context.Context) {
		p := e.producer(t, ctx, ProducerOptions{})
		receipted := 0
		for i := range 10 {
			require.NoError(t, p.SendAsync(ctx, msg(fmt.Sprint(i)), func(_ MessageID, err error) {
				assert.NoError(t, err)
				receipted++ // on the one delivering goroutine
			}))
		}
		require.NoError(t, p.Close(ctx))
		assert.Equal(t, 10, receipted, "Close waited for every receipt")
		assert.Len(t, e.srv.Messages(topic), 10)

		_, err := p.Send(ctx, msg("late"))
		assert.ErrorIs(t, err, ErrClosed)
		assert.EqualError(t, err, "refclient: closed")
		err = p.SendAsync(ctx, msg("late"), func(MessageID, error) { t.Error("done called for a refused message") })
		assert.ErrorIs(t, err, ErrClosed)
		assert.NoError(t, p.Close(ctx), "a second Close")
		synctest.Wait()
		assert.Equal(t, 1, e.srv.Received(pulsarpb.BaseCommand_CLOSE_PRODUCER))
		assert.Len(t, e.srv.Messages(topic), 10, "nothing sent after Close")
	})
}

// TestCloseGivesUpWithinContext: a receipt that never comes holds Close
// only until its context ends; the message then fails with ErrClosed.
func TestCloseGivesUpWithinContext(t *testing.T) {
	bubble(t, func(t *testing.T, e *env, ctx context.Context) {
		p := e.producer(t, ctx, ProducerOptions{})
		e.srv.Intercept(pulsarpb.BaseCommand_SEND, func(*pulsartest.Call) pulsartest.Action { return pulsartest.Drop })
		failed := make(chan error, 1)
		require.NoError(t, p.SendAsync(ctx, msg("lost"), func(_ MessageID, err error) { failed <- err }))
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		err := p.Close(cctx)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.ErrorIs(t, <-failed, ErrClosed)
	})
}

// TestProducerWindow: SendAsync waits while MaxPending messages are
// pending, until ctx ends.
func TestProducerWindow(t *testing.T) {
	bubble(t, func(t *testing.T, e *env, ctx context.Context) {
		p := e.producer(t, ctx, ProducerOptions{MaxPending: 2})
		release := make(chan struct{})
		stop := e.srv.InterceptEvery(pulsarpb.BaseCommand_SEND, func(*pulsartest.Call) pulsartest.Action {
			<-release
			return pulsartest.Pass
		})
		for i := range 2 {
			require.NoError(t, p.SendAsync(ctx, msg(fmt.Sprint(i)), func(MessageID, error) {}))
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		err := p.SendAsync(cctx, msg("2"), func(MessageID, error) {})
		assert.ErrorIs(t, err, context.DeadlineExceeded, "the window is full")
		stop()
		close(release)
		_, err = p.Send(ctx, msg("2"))
		require.NoError(t, err, "room again once the receipts came")
		require.NoError(t, p.Close(ctx))
	})
}

// TestProducerFollowsMovedTopic: when the topic moves to another broker of
// the cluster (CLOSE_PRODUCER naming it), the producer looks the topic up
// again, registers there and goes on; nothing pending is lost.
func TestProducerFollowsMovedTopic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		network := memory.NewNetwork()
		c := pulsartest.NewCluster(2)
		t.Cleanup(func() { c.Close() })
		for i, b := range c.Brokers() {
			l, err := network.Listen(fmt.Sprintf("broker-%d:6650", i))
			require.NoError(t, err)
			require.NoError(t, b.Start(l))
		}
		client, err := pulsarconn.NewClient(c.URL(), pulsarconn.WithTransport(network))
		require.NoError(t, err)
		t.Cleanup(func() { client.Close(context.Background()) })
		ctx := testContext(t)
		c.Assign(topic, 0)

		p, err := NewProducer(ctx, client, topic, ProducerOptions{})
		require.NoError(t, err)
		cons, err := NewConsumer(ctx, client, topic, "s", ConsumerOptions{})
		require.NoError(t, err)
		_, err = p.Send(ctx, msg("before"))
		require.NoError(t, err)

		assert.Equal(t, 2, c.Move(topic, 1))
		id, err := p.Send(ctx, msg("after"))
		require.NoError(t, err)
		assert.Equal(t, uint64(1), id.Entry)
		for _, want := range []string{"before", "after"} {
			m, err := cons.Receive(ctx)
			require.NoError(t, err)
			assert.Equal(t, want, string(m.Payload))
			require.NoError(t, cons.Ack(ctx, m))
		}
		ids, err := client.Producers("pulsar://broker-1:6650")
		require.NoError(t, err)
		assert.Len(t, ids, 1, "registered on the new owner")
		ids, err = client.Producers("pulsar://broker-0:6650")
		require.NoError(t, err)
		assert.Empty(t, ids, "and no more on the old one")
		assert.Equal(t, 2, p.Stats().Created)
		assert.Equal(t, 2, cons.Stats().Subscribed)
		require.NoError(t, p.Close(ctx))
		require.NoError(t, cons.Close(ctx))
	})
}

// TestCompressedMessages: a producer's compressed messages are received
// as sent.
func TestCompressedMessages(t *testing.T) {
	bubble(t, func(t *testing.T, e *env, ctx context.Context) {
		for _, c := range []pulsarpb.CompressionType{pulsarpb.CompressionType_ZLIB, pulsarpb.CompressionType_ZSTD, pulsarpb.CompressionType_SNAPPY} {
			p := e.producer(t, ctx, ProducerOptions{Compression: c})
			_, err := p.Send(ctx, Message{Payload: []byte(c.String() + " " + c.String()), Key: "k"})
			require.NoError(t, err)
			require.NoError(t, p.Close(ctx))
		}
		cons := e.consumer(t, ctx, earliest)
		for _, want := range []string{"ZLIB ZLIB", "ZSTD ZSTD", "SNAPPY SNAPPY"} {
			m := receive(t, ctx, cons)
			assert.Equal(t, want, string(m.Payload))
			assert.Equal(t, "k", m.Key)
		}
		require.NoError(t, cons.Close(ctx))
	})
}

// TestBrokerStopped: when the Broker the producer uses is stopped (its
// registration ends: PushEnded), the producer looks the topic up again,
// registers on the Client's new Broker and goes on.
func TestBrokerStopped(t *testing.T) {
	bubble(t, func(t *testing.T, e *env, ctx context.Context) {
		p := e.producer(t, ctx, ProducerOptions{})
		_, err := p.Send(ctx, msg("before"))
		require.NoError(t, err)
		old := e.client.Brokers()
		require.Len(t, old, 1)
		require.NoError(t, old[0].Stop(ctx))
		_, err = p.Send(ctx, msg("after"))
		require.NoError(t, err)
		assert.Equal(t, []string{"before", "after"}, payloads(e.srv))
		assert.Equal(t, 2, p.Stats().Created)
		assert.NotSame(t, old[0], e.client.Brokers()[0])
		require.NoError(t, p.Close(ctx))
	})
}

// TestClientClosed: once the Client is closed, the producer cannot be
// re-created: it ends, and Send fails with the Client's ErrClosed.
func TestClientClosed(t *testing.T) {
	bubble(t, func(t *testing.T, e *env, ctx context.Context) {
		p := e.producer(t, ctx, ProducerOptions{})
		require.NoError(t, e.client.Close(ctx))
		synctest.Wait()
		_, err := p.Send(ctx, msg("late"))
		assert.ErrorIs(t, err, pulsarconn.ErrClosed)
		assert.NoError(t, p.Close(ctx))
	})
}
