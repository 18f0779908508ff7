package refclient

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/adapters/memory"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

const topic = "persistent://public/default/t"

// env is a fake broker on an in-memory network and a Client for it, all
// closed when the test ends.
type env struct {
	network *memory.Network
	srv     *pulsartest.Server
	client  *pulsarconn.Client
}

func newEnv(t *testing.T, opts ...pulsarconn.ClientOption) *env {
	t.Helper()
	network := memory.NewNetwork()
	l, err := network.Listen("broker:6650")
	require.NoError(t, err)
	srv := pulsartest.NewServer(pulsartest.WithAdvertisedURL("pulsar://broker:6650"))
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	client, err := pulsarconn.NewClient("pulsar://broker:6650", append([]pulsarconn.ClientOption{pulsarconn.WithTransport(network)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { client.Close(context.Background()) })
	return &env{network: network, srv: srv, client: client}
}

// testContext bounds a test: in a synctest bubble, a deadlock becomes a
// failure at this deadline rather than a hang.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestNoLossAcrossDrops: 2,000 messages with up to 200 pending while
// every connection is reset (memory.Network.DropAll) five times
// mid-stream. See workload.run for what is checked.
func TestNoLossAcrossDrops(t *testing.T) {
	bubble(t, func(t *testing.T, e *env, ctx context.Context) {
		drops := 0
		w := workload{total: 2000, window: 200, queue: 100, inject: func(i int) {
			if i%400 == 200 {
				e.network.DropAll()
				drops++
			}
		}}
		out := w.run(t, ctx, e.client, e.srv, topic)
		t.Logf("%d drops: %v", drops, out)
		require.Equal(t, 1+drops, out.producer.Created, "re-created once per drop")
		require.Equal(t, 1+drops, out.consumer.Subscribed, "re-subscribed once per drop")
		require.Positive(t, out.producer.Resent, "messages pending at a drop were sent again")
	})
}

// bubble runs f in a synctest bubble, with a fresh env and a test
// context.
func bubble(t *testing.T, f func(t *testing.T, e *env, ctx context.Context)) {
	synctest.Test(t, func(t *testing.T) { f(t, newEnv(t), testContext(t)) })
}

// producer creates a producer on topic.
func (e *env) producer(t *testing.T, ctx context.Context, opts ProducerOptions) *Producer {
	t.Helper()
	p, err := NewProducer(ctx, e.client, topic, opts)
	require.NoError(t, err)
	return p
}

// consumer subscribes to topic as subscription "s".
func (e *env) consumer(t *testing.T, ctx context.Context, opts ConsumerOptions) *Consumer {
	t.Helper()
	c, err := NewConsumer(ctx, e.client, topic, "s", opts)
	require.NoError(t, err)
	return c
}
