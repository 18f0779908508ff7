package pulsarconn_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/adapters/memory"
	"github.com/pulsarconn/pulsarconn/adapters/tcp"
	"github.com/pulsarconn/pulsarconn/ports"
	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// env is a fake broker and the transport that reaches it.
type env struct {
	srv       *pulsartest.Server
	url       string
	transport ports.Transport
	network   *memory.Network // nil over TCP
}

// start starts a Broker on e with quick reconnection.
func (e env) start(t *testing.T, opts ...pulsarconn.Option) *pulsarconn.Broker {
	t.Helper()
	opts = append([]pulsarconn.Option{
		pulsarconn.WithTransport(e.transport),
		pulsarconn.WithBackoff(time.Millisecond, 20*time.Millisecond),
	}, opts...)
	b, err := pulsarconn.Start(e.url, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { b.Stop(context.Background()) })
	return b
}

// connected starts a Broker and waits for its connection.
func (e env) connected(t *testing.T, opts ...pulsarconn.Option) *pulsarconn.Broker {
	t.Helper()
	b := e.start(t, opts...)
	require.NoError(t, b.WaitConnected(testContext(t)))
	return b
}

func memoryEnv(t *testing.T, opts ...pulsartest.Option) env {
	network := memory.NewNetwork()
	l, err := network.Listen("broker-1:6650")
	require.NoError(t, err)
	srv := pulsartest.NewServer(append([]pulsartest.Option{pulsartest.WithAdvertisedURL("pulsar://broker-1:6650")}, opts...)...)
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return env{srv: srv, url: "pulsar://broker-1:6650", transport: network, network: network}
}

func tcpEnv(t *testing.T, opts ...pulsartest.Option) env {
	srv := pulsartest.NewTCP(t, opts...)
	return env{srv: srv, url: srv.URL(), transport: tcp.New()}
}

// forEachTransport runs test once over the in-memory network and once over
// TCP loopback, each against its own fake broker.
func forEachTransport(t *testing.T, test func(t *testing.T, e env), opts ...pulsartest.Option) {
	t.Run("memory", func(t *testing.T) { test(t, memoryEnv(t, opts...)) })
	t.Run("tcp", func(t *testing.T) { test(t, tcpEnv(t, opts...)) })
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// pushLog records pushes and lets a test wait for them.
type pushLog struct {
	mu     sync.Mutex
	pushes []pulsarconn.Push
	notify chan struct{}
}

func newPushLog() *pushLog { return &pushLog{notify: make(chan struct{}, 1)} }

func (l *pushLog) HandlePush(p pulsarconn.Push) {
	l.mu.Lock()
	l.pushes = append(l.pushes, p)
	l.mu.Unlock()
	select {
	case l.notify <- struct{}{}:
	default:
	}
}

// waitFor waits until n pushes of kind arrived and returns them.
func (l *pushLog) waitFor(t *testing.T, kind pulsarconn.PushKind, n int) []pulsarconn.Push {
	t.Helper()
	ctx := testContext(t)
	for {
		got := l.ofKind(kind)
		if len(got) >= n {
			return got
		}
		select {
		case <-l.notify:
		case <-ctx.Done():
			t.Fatalf("waiting for %d %v pushes: got %d", n, kind, len(got))
		}
	}
}

func (l *pushLog) ofKind(kind pulsarconn.PushKind) []pulsarconn.Push {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []pulsarconn.Push
	for _, p := range l.pushes {
		if p.Kind == kind {
			out = append(out, p)
		}
	}
	return out
}

func producerCmd(topic string, id uint64) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{
		Type:     pulsarpb.BaseCommand_PRODUCER.Enum(),
		Producer: &pulsarpb.CommandProducer{Topic: proto.String(topic), ProducerId: proto.Uint64(id)},
	}
}

func subscribeCmd(topic, sub string, id uint64) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_SUBSCRIBE.Enum(),
		Subscribe: &pulsarpb.CommandSubscribe{
			Topic: proto.String(topic), Subscription: proto.String(sub),
			SubType: pulsarpb.CommandSubscribe_Exclusive.Enum(), ConsumerId: proto.Uint64(id),
			InitialPosition: pulsarpb.CommandSubscribe_Earliest.Enum(),
		},
	}
}

func flowCmd(id uint64, permits uint32) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_FLOW.Enum(),
		Flow: &pulsarpb.CommandFlow{ConsumerId: proto.Uint64(id), MessagePermits: proto.Uint32(permits)}}
}

func sendFrame(t *testing.T, producerID, seq uint64, payload []byte) []byte {
	t.Helper()
	b, err := frame.AppendMessage(nil,
		&pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_SEND.Enum(),
			Send: &pulsarpb.CommandSend{ProducerId: proto.Uint64(producerID), SequenceId: proto.Uint64(seq)}},
		&pulsarpb.MessageMetadata{ProducerName: proto.String("p"), SequenceId: proto.Uint64(seq), PublishTime: proto.Uint64(1)},
		payload)
	require.NoError(t, err)
	return b
}

// ---------------------------------------------------------------------------

func TestStartRejectsBadURLs(t *testing.T) {
	for _, u := range []string{"http://h:6650", "pulsar://", "h:6650", "pulsar://h:0", "pulsar://h:99999", "pulsar://h/path"} {
		_, err := pulsarconn.Start(u)
		assert.ErrorIs(t, err, pulsarconn.ErrInvalidURL, u)
	}
	_, err := pulsarconn.Start("pulsar+ssl://h")
	assert.ErrorIs(t, err, pulsarconn.ErrInvalidURL, "pulsar+ssl without a TLS transport")
}

func TestConnectAndWatchState(t *testing.T) {
	forEachTransport(t, func(t *testing.T, e env) {
		b := e.start(t)
		require.NoError(t, b.WaitConnected(testContext(t)))
		st, changed := b.WatchState()
		assert.Equal(t, pulsarconn.StateConnected, st)
		version, protocol := b.ServerVersion()
		assert.Equal(t, pulsartest.DefaultServerVersion, version)
		assert.EqualValues(t, 21, protocol)
		connect := e.srv.LastConnect()
		require.NotNil(t, connect)
		assert.Contains(t, connect.GetClientVersion(), "pulsarconn")
		assert.True(t, connect.GetFeatureFlags().GetSupportsAuthRefresh())

		require.NoError(t, b.Stop(testContext(t)))
		select {
		case <-changed:
		default:
			t.Fatal("state change not signalled")
		}
		assert.Equal(t, pulsarconn.StateClosed, b.State())
	})
}

func TestLookupTopic(t *testing.T) {
	forEachTransport(t, func(t *testing.T, e env) {
		b := e.connected(t)
		ctx := testContext(t)
		for _, authoritative := range []bool{false, true} {
			res, err := b.LookupTopic(ctx, "persistent://public/default/t", authoritative)
			require.NoError(t, err)
			assert.Equal(t, e.srv.URL(), res.BrokerURL)
			assert.False(t, res.Redirect)
			assert.Equal(t, authoritative, res.Authoritative)
		}
		_, err := b.LookupTopic(ctx, "", false)
		var se *pulsarconn.ServerError
		require.ErrorAs(t, err, &se)
		assert.ErrorIs(t, err, pulsarconn.ErrInvalidTopicName)
	})
}

func TestPartitionedTopicMetadata(t *testing.T) {
	forEachTransport(t, func(t *testing.T, e env) {
		e.srv.SetPartitions("persistent://public/default/p4", 4)
		b := e.connected(t)
		ctx := testContext(t)
		n, err := b.PartitionedTopicMetadata(ctx, "persistent://public/default/p4")
		require.NoError(t, err)
		assert.Equal(t, 4, n)
		n, err = b.PartitionedTopicMetadata(ctx, "persistent://public/default/plain")
		require.NoError(t, err)
		assert.Equal(t, 0, n)
		_, err = b.PartitionedTopicMetadata(ctx, "")
		assert.ErrorIs(t, err, pulsarconn.ErrInvalidTopicName)
	})
}

func TestRequestAndSend(t *testing.T) {
	forEachTransport(t, func(t *testing.T, e env) {
		b := e.connected(t)
		ctx := testContext(t)
		resp, err := b.Request(ctx, producerCmd("persistent://public/default/t", 1))
		require.NoError(t, err)
		require.Equal(t, pulsarpb.BaseCommand_PRODUCER_SUCCESS, resp.GetType())
		assert.NotEmpty(t, resp.GetProducerSuccess().GetProducerName())

		_, err = b.Request(ctx, flowCmd(1, 1))
		assert.ErrorIs(t, err, pulsarconn.ErrNotRequest)

		// An ERROR answer comes back as a *ServerError.
		e.srv.Intercept(pulsarpb.BaseCommand_PRODUCER, func(c *pulsartest.Call) pulsartest.Action {
			c.ReplyError(pulsarpb.ServerError_ServiceNotReady, "try later")
			return pulsartest.Handled
		})
		_, err = b.Request(ctx, producerCmd("persistent://public/default/t", 2))
		assert.ErrorIs(t, err, pulsarconn.ErrServiceNotReady)
		assert.True(t, pulsarconn.IsRetryable(err))
		assert.Contains(t, err.Error(), "try later")

		require.NoError(t, b.Send(ctx, flowCmd(7, 3)))
		require.NoError(t, e.srv.WaitReceived(ctx, pulsarpb.BaseCommand_FLOW, 1))
	})
}

func TestRequestContextCancelled(t *testing.T) {
	forEachTransport(t, func(t *testing.T, e env) {
		b := e.connected(t)
		held := e.srv.Hold(pulsarpb.BaseCommand_LOOKUP)
		ctx, cancel := context.WithCancel(testContext(t))
		errc := make(chan error, 1)
		go func() {
			_, err := b.LookupTopic(ctx, "persistent://public/default/t", false)
			errc <- err
		}()
		<-held.Arrived()
		cancel()
		err := <-errc
		assert.ErrorIs(t, err, context.Canceled)
		held.Release() // the late answer is counted, not delivered
		_, err = b.LookupTopic(testContext(t), "persistent://public/default/t", false)
		require.NoError(t, err)
		assert.EqualValues(t, 1, b.Stats().UnknownRequests)

		_, err = b.LookupTopic(ctx, "persistent://public/default/t", false)
		assert.ErrorIs(t, err, context.Canceled, "an ended context fails at once")
	})
}

func TestProducerReceiptsRouted(t *testing.T) {
	forEachTransport(t, func(t *testing.T, e env) {
		b := e.connected(t)
		ctx := testContext(t)
		logs := map[uint64]*pushLog{}
		for id := uint64(1); id <= 3; id++ {
			logs[id] = newPushLog()
			_, err := b.RegisterProducer(ctx, id, logs[id])
			require.NoError(t, err)
			_, err = b.Request(ctx, producerCmd("persistent://public/default/t", id))
			require.NoError(t, err)
		}
		const perProducer = 50
		for seq := uint64(0); seq < perProducer; seq++ {
			for id := uint64(1); id <= 3; id++ {
				require.NoError(t, b.PublishMessage(ctx, sendFrame(t, id, seq, []byte("hello"))))
			}
		}
		for id, l := range logs {
			got := l.waitFor(t, pulsarconn.PushReceipt, perProducer)
			for i, p := range got {
				assert.Equal(t, id, p.ID)
				assert.Equal(t, id, p.Command.GetSendReceipt().GetProducerId())
				assert.EqualValues(t, i, p.Command.GetSendReceipt().GetSequenceId(), "receipts in order")
			}
		}
		assert.Equal(t, []uint64{1, 2, 3}, b.Producers())

		// A SEND for an unregistered producer id is answered with
		// SEND_ERROR, which has no handler here: counted, not fatal.
		require.NoError(t, b.PublishMessage(ctx, sendFrame(t, 99, 0, []byte("x"))))
		_, err := b.LookupTopic(ctx, "persistent://public/default/t", false)
		require.NoError(t, err)
		assert.EqualValues(t, 1, b.Stats().UnknownProducers)
	})
}

func TestSendErrorRouted(t *testing.T) {
	forEachTransport(t, func(t *testing.T, e env) {
		b := e.connected(t)
		ctx := testContext(t)
		l := newPushLog()
		_, err := b.RegisterProducer(ctx, 5, l)
		require.NoError(t, err)
		// Not created on the broker: the broker answers SEND_ERROR.
		require.NoError(t, b.PublishMessage(ctx, sendFrame(t, 5, 0, []byte("x"))))
		got := l.waitFor(t, pulsarconn.PushSendError, 1)
		var se *pulsarconn.ServerError
		assert.ErrorAs(t, got[0].Err, &se)
	})
}

func TestPublishMessageLimits(t *testing.T) {
	forEachTransport(t, func(t *testing.T, e env) {
		b := e.connected(t)
		ctx := testContext(t)
		assert.Equal(t, 2048, b.MaxMessageSize())
		max := 2048 + frame.Padding
		l := newPushLog()
		_, err := b.RegisterProducer(ctx, 1, l)
		require.NoError(t, err)
		_, err = b.Request(ctx, producerCmd("persistent://public/default/t", 1))
		require.NoError(t, err)

		// Size the payload so the frame's total size is exactly the max.
		probe := sendFrame(t, 1, 0, nil)
		exact := sendFrame(t, 1, 0, make([]byte, max-(len(probe)-4)))
		require.Len(t, exact, max+4)
		require.NoError(t, b.PublishMessage(ctx, exact))
		l.waitFor(t, pulsarconn.PushReceipt, 1)

		over := sendFrame(t, 1, 1, make([]byte, max-(len(probe)-4)+1))
		assert.ErrorIs(t, b.PublishMessage(ctx, over), pulsarconn.ErrMessageTooLarge)
		assert.ErrorIs(t, b.PublishMessage(ctx, exact[:len(exact)-1]), pulsarconn.ErrProtocol, "truncated frame")
		assert.ErrorIs(t, b.PublishMessage(ctx, nil), pulsarconn.ErrProtocol)
	}, pulsartest.WithMaxMessageSize(2048))
}

func TestConsumerDeliveries(t *testing.T) {
	forEachTransport(t, func(t *testing.T, e env) {
		b := e.connected(t)
		ctx := testContext(t)
		const topic = "persistent://public/default/t"
		_, err := b.RegisterProducer(ctx, 1, newPushLog())
		require.NoError(t, err)
		_, err = b.Request(ctx, producerCmd(topic, 1))
		require.NoError(t, err)
		for seq := uint64(0); seq < 10; seq++ {
			require.NoError(t, b.PublishMessage(ctx, sendFrame(t, 1, seq, []byte{byte('a' + seq)})))
		}
		l := newPushLog()
		other := newPushLog()
		_, err = b.RegisterConsumer(ctx, 1, l)
		require.NoError(t, err)
		_, err = b.RegisterConsumer(ctx, 2, other)
		require.NoError(t, err)
		_, err = b.Request(ctx, subscribeCmd(topic, "s", 1))
		require.NoError(t, err)
		require.NoError(t, b.Send(ctx, flowCmd(1, 10)))
		got := l.waitFor(t, pulsarconn.PushMessage, 10)
		for i, p := range got {
			assert.Equal(t, []byte{byte('a' + i)}, p.Payload.Data)
			assert.True(t, p.Payload.ChecksumOK)
			md, err := p.Payload.DecodeMetadata()
			require.NoError(t, err)
			assert.EqualValues(t, i, md.GetSequenceId())
		}
		assert.Empty(t, other.ofKind(pulsarconn.PushMessage), "routed by consumer id")
		assert.Equal(t, []uint64{1, 2}, b.Consumers())
	})
}

func TestBrokerPushesRouted(t *testing.T) {
	forEachTransport(t, func(t *testing.T, e env) {
		b := e.connected(t)
		ctx := testContext(t)
		prod, cons := newPushLog(), newPushLog()
		_, err := b.RegisterProducer(ctx, 1, prod)
		require.NoError(t, err)
		_, err = b.Request(ctx, producerCmd("persistent://public/default/t", 1))
		require.NoError(t, err)
		_, err = b.RegisterConsumer(ctx, 1, cons)
		require.NoError(t, err)
		_, err = b.Request(ctx, subscribeCmd("persistent://public/default/t", "s", 1))
		require.NoError(t, err)

		require.True(t, e.srv.CloseProducer(1, "pulsar://b2:6650", "pulsar+ssl://b2:6651"))
		p := prod.waitFor(t, pulsarconn.PushClosed, 1)[0]
		assert.Equal(t, "pulsar://b2:6650", p.BrokerURL)
		assert.Equal(t, "pulsar+ssl://b2:6651", p.BrokerURLTLS)

		require.True(t, e.srv.ActiveConsumerChange(1, true))
		assert.True(t, cons.waitFor(t, pulsarconn.PushActiveConsumerChange, 1)[0].Command.GetActiveConsumerChange().GetIsActive())
		require.True(t, e.srv.ReachedEndOfTopic(1))
		cons.waitFor(t, pulsarconn.PushReachedEndOfTopic, 1)
		require.True(t, e.srv.TopicMigrated(pulsarpb.CommandTopicMigrated_Consumer, 1, "pulsar://c2:6650", ""))
		assert.Equal(t, "pulsar://c2:6650", cons.waitFor(t, pulsarconn.PushTopicMigrated, 1)[0].BrokerURL)
		require.True(t, e.srv.CloseConsumer(1, "", ""))
		assert.Empty(t, cons.waitFor(t, pulsarconn.PushClosed, 1)[0].BrokerURL)
		assert.Empty(t, prod.ofKind(pulsarconn.PushTopicMigrated))
	})
}

func TestRegistrationEndsWithContext(t *testing.T) {
	forEachTransport(t, func(t *testing.T, e env) {
		b := e.connected(t)
		ctx := testContext(t)
		pctx, cancelProducer := context.WithCancel(ctx)
		_, err := b.RegisterProducer(pctx, 1, newPushLog())
		require.NoError(t, err)
		_, err = b.RegisterProducer(ctx, 1, newPushLog())
		assert.ErrorIs(t, err, pulsarconn.ErrDuplicateID)

		cancelProducer()
		require.NoError(t, e.srv.WaitReceived(ctx, pulsarpb.BaseCommand_CLOSE_PRODUCER, 1))
		assert.Empty(t, b.Producers())

		reg, err := b.RegisterConsumer(ctx, 4, newPushLog())
		require.NoError(t, err)
		assert.Equal(t, uint64(4), reg.ID())
		require.NoError(t, reg.Close(ctx), "SUCCESS answers CLOSE_CONSUMER")
		assert.Equal(t, 1, e.srv.Received(pulsarpb.BaseCommand_CLOSE_CONSUMER))
		assert.Empty(t, b.Consumers())
		require.NoError(t, reg.Close(ctx), "a second Close is a no-op")
		assert.Equal(t, 1, e.srv.Received(pulsarpb.BaseCommand_CLOSE_CONSUMER))
	})
}

func TestRegistryListing(t *testing.T) {
	forEachTransport(t, func(t *testing.T, e env) {
		reg := memory.NewRegistry()
		b := e.connected(t, pulsarconn.WithRegistry(reg))
		ctx := testContext(t)
		_, err := b.RegisterProducer(ctx, 3, newPushLog())
		require.NoError(t, err)
		_, err = b.RegisterConsumer(ctx, 8, newPushLog())
		require.NoError(t, err)

		ids, err := pulsarconn.ProducersAt(reg, e.url)
		require.NoError(t, err)
		assert.Equal(t, []uint64{3}, ids)
		ids, err = pulsarconn.ConsumersAt(reg, e.url)
		require.NoError(t, err)
		assert.Equal(t, []uint64{8}, ids)
		_, err = pulsarconn.ProducersAt(reg, "pulsar://elsewhere:6650")
		assert.ErrorIs(t, err, pulsarconn.ErrNotRegistered)
		_, err = pulsarconn.ProducersAt(reg, "http://x")
		assert.ErrorIs(t, err, pulsarconn.ErrInvalidURL)

		_, err = pulsarconn.Start(e.url, pulsarconn.WithTransport(e.transport), pulsarconn.WithRegistry(reg))
		assert.ErrorIs(t, err, ports.ErrAlreadyRegistered)

		require.NoError(t, b.Stop(ctx))
		_, ok := reg.Get(b.BrokerURL())
		assert.False(t, ok, "Stop removes the Broker from its registry")
	})
}

func TestRegistryCanonicalURL(t *testing.T) {
	e := memoryEnv(t)
	reg := memory.NewRegistry()
	b := e.start(t, pulsarconn.WithRegistry(reg))
	_, err := b.RegisterProducer(testContext(t), 3, newPushLog())
	require.NoError(t, err)
	ids, err := pulsarconn.ProducersAt(reg, "pulsar://broker-1") // the default port is filled in
	require.NoError(t, err)
	assert.Equal(t, []uint64{3}, ids)
	assert.Equal(t, "pulsar://broker-1:6650", b.BrokerURL())
}

func TestGracefulStop(t *testing.T) {
	forEachTransport(t, func(t *testing.T, e env) {
		b := e.connected(t)
		ctx := testContext(t)
		prod, cons := newPushLog(), newPushLog()
		_, err := b.RegisterProducer(ctx, 1, prod)
		require.NoError(t, err)
		_, err = b.RegisterConsumer(ctx, 2, cons)
		require.NoError(t, err)

		require.NoError(t, b.Stop(ctx))
		assert.Equal(t, 1, e.srv.Received(pulsarpb.BaseCommand_CLOSE_PRODUCER))
		assert.Equal(t, 1, e.srv.Received(pulsarpb.BaseCommand_CLOSE_CONSUMER))
		for _, l := range []*pushLog{prod, cons} {
			got := l.ofKind(pulsarconn.PushDisconnected)
			require.Len(t, got, 1, "told before Stop returns")
			assert.ErrorIs(t, got[0].Err, pulsarconn.ErrClosed)
		}
		assert.Equal(t, pulsarconn.StateClosed, b.State())
		_, err = b.LookupTopic(ctx, "t", false)
		assert.ErrorIs(t, err, pulsarconn.ErrClosed)
		_, err = b.RegisterProducer(ctx, 9, prod)
		assert.ErrorIs(t, err, pulsarconn.ErrClosed)
		assert.ErrorIs(t, b.WaitConnected(ctx), pulsarconn.ErrClosed)
		require.NoError(t, b.Stop(ctx), "Stop is idempotent")
	})
}

func TestStopGivesUpWhenBrokerDoesNotAnswer(t *testing.T) {
	e := memoryEnv(t)
	b := e.connected(t)
	ctx := testContext(t)
	_, err := b.RegisterProducer(ctx, 1, newPushLog())
	require.NoError(t, err)
	e.srv.Intercept(pulsarpb.BaseCommand_CLOSE_PRODUCER, func(*pulsartest.Call) pulsartest.Action { return pulsartest.Drop })
	stopCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- b.Stop(stopCtx) }()
	require.NoError(t, e.srv.WaitReceived(ctx, pulsarpb.BaseCommand_CLOSE_PRODUCER, 1))
	cancel()
	assert.ErrorIs(t, <-done, context.Canceled)
	assert.Equal(t, pulsarconn.StateClosed, b.State())
}

func TestDroppedConnectionFailsPendingAndReconnects(t *testing.T) {
	forEachTransport(t, func(t *testing.T, e env) {
		b := e.connected(t)
		ctx := testContext(t)
		l := newPushLog()
		_, err := b.RegisterProducer(ctx, 1, l)
		require.NoError(t, err)

		held := e.srv.Hold(pulsarpb.BaseCommand_LOOKUP)
		errc := make(chan error, 1)
		go func() {
			_, err := b.LookupTopic(ctx, "persistent://public/default/t", false)
			errc <- err
		}()
		<-held.Arrived()
		_, changed := b.WatchState()
		e.srv.DropConnections()
		err = <-errc
		assert.ErrorIs(t, err, pulsarconn.ErrDisconnected)
		assert.True(t, pulsarconn.IsRetryable(err))
		got := l.waitFor(t, pulsarconn.PushDisconnected, 1)
		assert.ErrorIs(t, got[0].Err, pulsarconn.ErrDisconnected)

		<-changed // connected → disconnected
		require.NoError(t, b.WaitConnected(ctx))
		require.NoError(t, e.srv.WaitConns(ctx, 1))
		_, err = b.LookupTopic(ctx, "persistent://public/default/t", false)
		require.NoError(t, err)
		assert.EqualValues(t, 1, b.Stats().Reconnects)
		assert.Len(t, l.ofKind(pulsarconn.PushDisconnected), 1, "told once")
		assert.Equal(t, []uint64{1}, b.Producers(), "registrations survive reconnection")
		held.Release()
	})
}

func TestCallsWhileDisconnected(t *testing.T) {
	e := memoryEnv(t)
	e.network.RefuseDials(true)
	ctx := testContext(t)

	fast := e.start(t, pulsarconn.WithFailFast(true))
	_, err := fast.LookupTopic(ctx, "t", false)
	assert.ErrorIs(t, err, pulsarconn.ErrDisconnected, "fail-fast fails at once")

	waiting := e.start(t)
	short, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		_, err := waiting.LookupTopic(short, "persistent://public/default/t", false)
		errc <- err
	}()
	cancel()
	err = <-errc
	assert.ErrorIs(t, err, context.Canceled)

	// A waiting call completes once the broker becomes reachable.
	go func() {
		_, err := waiting.LookupTopic(ctx, "persistent://public/default/t", false)
		errc <- err
	}()
	e.network.RefuseDials(false)
	require.NoError(t, <-errc)
}

func TestDialRefusedOverTCP(t *testing.T) {
	e := tcpEnv(t)
	url := e.url
	require.NoError(t, e.srv.Close()) // nothing listens there now
	b, err := pulsarconn.Start(url, pulsarconn.WithFailFast(true), pulsarconn.WithBackoff(time.Millisecond, 5*time.Millisecond))
	require.NoError(t, err)
	defer b.Stop(context.Background())
	ctx, cancel := context.WithCancel(testContext(t))
	waitState(t, b, pulsarconn.StateDisconnected) // after the refused dial
	cancel()
	err = b.WaitConnected(ctx)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Contains(t, err.Error(), "dial")
}

func TestMalformedFramesFromBroker(t *testing.T) {
	cases := []struct {
		name string
		raw  []byte
		want error
	}{
		{"length over the max", []byte{0xff, 0xff, 0xff, 0xff}, pulsarconn.ErrFrameTooLarge},
		{"length under 4", []byte{0, 0, 0, 2, 0, 0}, pulsarconn.ErrProtocol},
		{"command size beyond the frame", []byte{0, 0, 0, 8, 0, 0, 0, 200, 8, 18, 0, 0}, pulsarconn.ErrProtocol},
		{"not protobuf", []byte{0, 0, 0, 8, 0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff}, pulsarconn.ErrProtocol},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := memoryEnv(t)
			b := e.connected(t)
			ctx := testContext(t)
			l := newPushLog()
			_, err := b.RegisterConsumer(ctx, 1, l)
			require.NoError(t, err)
			e.srv.SendRaw(tc.raw)
			got := l.waitFor(t, pulsarconn.PushDisconnected, 1)
			assert.ErrorIs(t, got[0].Err, tc.want)
			require.NoError(t, b.WaitConnected(ctx), "reconnects after a protocol error")
		})
	}
}

func TestTruncatedFrameThenDrop(t *testing.T) {
	e := memoryEnv(t)
	b := e.connected(t)
	ctx := testContext(t)
	l := newPushLog()
	_, err := b.RegisterConsumer(ctx, 1, l)
	require.NoError(t, err)
	e.srv.SendRaw([]byte{0, 0, 0, 100, 0, 0}) // promises 100 bytes, sends 2
	e.srv.DropConnections()
	got := l.waitFor(t, pulsarconn.PushDisconnected, 1)
	assert.ErrorIs(t, got[0].Err, pulsarconn.ErrDisconnected)
	require.NoError(t, b.WaitConnected(ctx))
}

func TestIrregularFramesAreCounted(t *testing.T) {
	e := memoryEnv(t)
	b := e.connected(t)
	ctx := testContext(t)
	l := newPushLog()
	_, err := b.RegisterConsumer(ctx, 1, l)
	require.NoError(t, err)

	// An answer to a request id never sent.
	e.srv.Push(&pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_SUCCESS.Enum(),
		Success: &pulsarpb.CommandSuccess{RequestId: proto.Uint64(424242)}})
	// A command type from the future (field 1 = 99).
	e.srv.SendRaw([]byte{0, 0, 0, 6, 0, 0, 0, 2, 0x08, 99})
	// A MESSAGE whose checksum is wrong, for consumer 1.
	msg, err := frame.AppendMessage(nil, &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_MESSAGE.Enum(),
		Message: &pulsarpb.CommandMessage{ConsumerId: proto.Uint64(1), MessageId: &pulsarpb.MessageIdData{LedgerId: proto.Uint64(1), EntryId: proto.Uint64(1)}}},
		&pulsarpb.MessageMetadata{ProducerName: proto.String("p"), SequenceId: proto.Uint64(0), PublishTime: proto.Uint64(1)}, []byte("payload"))
	require.NoError(t, err)
	msg[len(msg)-1] ^= 0xff
	e.srv.SendRaw(msg)
	// A MESSAGE for a consumer nobody registered.
	e.srv.Push(&pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_REACHED_END_OF_TOPIC.Enum(),
		ReachedEndOfTopic: &pulsarpb.CommandReachedEndOfTopic{ConsumerId: proto.Uint64(77)}})

	got := l.waitFor(t, pulsarconn.PushMessage, 1)
	assert.False(t, got[0].Payload.ChecksumOK)
	_, err = b.LookupTopic(ctx, "persistent://public/default/t", false) // a round trip orders the pushes before it
	require.NoError(t, err)
	st := b.Stats()
	assert.EqualValues(t, 1, st.UnknownRequests)
	assert.EqualValues(t, 1, st.UnknownCommands)
	assert.EqualValues(t, 1, st.BadChecksums)
	assert.EqualValues(t, 1, st.UnknownConsumers)
	assert.Equal(t, pulsarconn.StateConnected, b.State(), "none of these drops the connection")
	assert.Empty(t, l.ofKind(pulsarconn.PushDisconnected))
}

// fakeClockEnv is a memory env whose Broker runs on a fake clock.
func fakeClockBroker(t *testing.T, e env, opts ...pulsarconn.Option) (*pulsarconn.Broker, *memory.Clock) {
	t.Helper()
	clk := memory.NewClock(time.Unix(1_700_000_000, 0))
	b := e.start(t, append([]pulsarconn.Option{pulsarconn.WithClock(clk)}, opts...)...)
	return b, clk
}

func TestKeepaliveExpiryAgainstSilentBroker(t *testing.T) {
	forEachTransport(t, func(t *testing.T, e env) {
		b, clk := fakeClockBroker(t, e, pulsarconn.WithKeepAlive(30*time.Second))
		ctx := testContext(t)
		require.NoError(t, b.WaitConnected(ctx))
		e.srv.SetAnswerPings(false)

		clk.Advance(30 * time.Second)
		require.NoError(t, e.srv.WaitReceived(ctx, pulsarpb.BaseCommand_PING, 1), "a PING after one interval")
		assert.Equal(t, pulsarconn.StateConnected, b.State())

		st, changed := b.WatchState()
		require.Equal(t, pulsarconn.StateConnected, st)
		clk.Advance(30 * time.Second)
		<-changed
		assert.Equal(t, pulsarconn.StateDisconnected, b.State())
		wctx, cancel := context.WithCancel(ctx)
		cancel()
		assert.ErrorIs(t, b.WaitConnected(wctx), pulsarconn.ErrKeepaliveTimeout, "the last error is kept")
	})
}

func TestKeepaliveAnsweredStaysConnected(t *testing.T) {
	e := memoryEnv(t)
	b, clk := fakeClockBroker(t, e, pulsarconn.WithKeepAlive(30*time.Second))
	ctx := testContext(t)
	require.NoError(t, b.WaitConnected(ctx))
	for i := 1; i <= 5; i++ {
		clk.Advance(30 * time.Second)
		require.NoError(t, e.srv.WaitReceived(ctx, pulsarpb.BaseCommand_PING, i))
		// A round trip makes sure the PONG was read before time moves on.
		_, err := b.LookupTopic(ctx, "persistent://public/default/t", false)
		require.NoError(t, err)
	}
	assert.Equal(t, pulsarconn.StateConnected, b.State())
}

func TestBrokerNeverAnswersConnect(t *testing.T) {
	e := memoryEnv(t)
	e.srv.SetNeverConnect(true)
	b, clk := fakeClockBroker(t, e, pulsarconn.WithConnectTimeout(10*time.Second))
	ctx := testContext(t)
	require.NoError(t, e.srv.WaitReceived(ctx, pulsarpb.BaseCommand_CONNECT, 1))
	st, changed := b.WatchState()
	require.Equal(t, pulsarconn.StateHandshaking, st)
	clk.Advance(10 * time.Second)
	<-changed
	wctx, cancel := context.WithCancel(ctx)
	cancel()
	assert.ErrorIs(t, b.WaitConnected(wctx), pulsarconn.ErrConnectTimeout)

	e.srv.SetNeverConnect(false)
	clk.Advance(time.Second) // past the backoff: dial again
	require.NoError(t, b.WaitConnected(ctx))
}

func TestRequestTimeout(t *testing.T) {
	forEachTransport(t, func(t *testing.T, e env) {
		b, clk := fakeClockBroker(t, e, pulsarconn.WithOperationTimeout(5*time.Second))
		ctx := testContext(t)
		require.NoError(t, b.WaitConnected(ctx))
		e.srv.Intercept(pulsarpb.BaseCommand_LOOKUP, func(*pulsartest.Call) pulsartest.Action { return pulsartest.Drop })
		errc := make(chan error, 1)
		go func() {
			_, err := b.LookupTopic(ctx, "persistent://public/default/t", false)
			errc <- err
		}()
		require.NoError(t, e.srv.WaitReceived(ctx, pulsarpb.BaseCommand_LOOKUP, 1))
		clk.Advance(5 * time.Second)
		err := <-errc
		assert.ErrorIs(t, err, pulsarconn.ErrRequestTimeout)
		assert.True(t, pulsarconn.IsRetryable(err))
		_, err = b.LookupTopic(ctx, "persistent://public/default/t", false)
		require.NoError(t, err, "the connection stays usable")
	})
}

func TestTokenAuthentication(t *testing.T) {
	forEachTransport(t, func(t *testing.T, e env) {
		b := e.connected(t, pulsarconn.WithAuthenticator(staticToken("s3cret")))
		assert.Equal(t, "token", e.srv.LastConnect().GetAuthMethodName())
		assert.Equal(t, pulsarconn.StateConnected, b.State())

		bad := e.start(t, pulsarconn.WithAuthenticator(staticToken("wrong")), pulsarconn.WithFailFast(true))
		ctx, cancel := context.WithCancel(testContext(t))
		waitState(t, bad, pulsarconn.StateDisconnected)
		cancel()
		err := bad.WaitConnected(ctx)
		assert.ErrorIs(t, err, pulsarconn.ErrAuthenticationError)
		assert.NotContains(t, err.Error(), "wrong", "credentials stay out of errors")
	}, pulsartest.WithToken("s3cret"))
}

func TestAuthChallengeAnswered(t *testing.T) {
	e := memoryEnv(t, pulsartest.WithToken("s3cret"), pulsartest.WithAuthChallenge(2))
	auth := &countingToken{token: "s3cret"}
	b := e.connected(t, pulsarconn.WithAuthenticator(auth))
	assert.Equal(t, 2, auth.challenges(), "two rounds during the handshake")

	e.srv.ChallengeAll() // a refresh on the live connection
	ctx := testContext(t)
	require.NoError(t, e.srv.WaitReceived(ctx, pulsarpb.BaseCommand_AUTH_RESPONSE, 3))
	assert.Equal(t, "s3cret", string(e.srv.LastAuthResponse().GetResponse().GetAuthData()))
	assert.Equal(t, 3, auth.challenges())
	assert.Equal(t, pulsarconn.StateConnected, b.State())
}

func TestAuthenticatorFailureBacksOff(t *testing.T) {
	e := memoryEnv(t)
	clk := memory.NewClock(time.Unix(1_700_000_000, 0))
	auth := &countingToken{err: errors.New("token file unreadable")}
	b := e.start(t, pulsarconn.WithClock(clk), pulsarconn.WithAuthenticator(auth), pulsarconn.WithBackoff(time.Second, 10*time.Second))
	ctx := testContext(t)
	waitState(t, b, pulsarconn.StateDisconnected)
	wctx, cancel := context.WithCancel(ctx)
	cancel()
	assert.ErrorIs(t, b.WaitConnected(wctx), pulsarconn.ErrAuthentication)
	assert.Equal(t, 1, auth.initials())
	assert.Equal(t, 0, e.srv.Received(pulsarpb.BaseCommand_CONNECT), "no CONNECT without credentials")
	// No tight loop: nothing happens until the backoff delay passes.
	clk.Advance(400 * time.Millisecond)
	assert.Equal(t, 1, auth.initials())
}

// waitState waits until b is in state want.
func waitState(t *testing.T, b *pulsarconn.Broker, want pulsarconn.State) {
	t.Helper()
	ctx := testContext(t)
	for {
		st, changed := b.WatchState()
		if st == want {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("state is %v, waiting for %v", st, want)
		}
	}
}

type staticToken string

func (staticToken) Name() string                                        { return "token" }
func (s staticToken) Initial(context.Context) ([]byte, error)           { return []byte(s), nil }
func (s staticToken) Challenge(context.Context, []byte) ([]byte, error) { return []byte(s), nil }

type countingToken struct {
	mu              sync.Mutex
	token           string
	err             error
	nInit, nChallng int
}

func (*countingToken) Name() string { return "token" }

func (c *countingToken) Initial(context.Context) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nInit++
	return []byte(c.token), c.err
}

func (c *countingToken) Challenge(context.Context, []byte) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nChallng++
	return []byte(c.token), c.err
}

func (c *countingToken) initials() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nInit
}

func (c *countingToken) challenges() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nChallng
}
