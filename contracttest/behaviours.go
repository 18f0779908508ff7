package contracttest

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/core"
	"github.com/pulsarconn/pulsarconn/internal/testenv"
	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

const topic = "persistent://public/default/contract"

// behaviours is the suite, in the order Run runs it.
var behaviours = []behaviour{
	{name: "Handshake", test: testHandshake},
	{name: "HandshakeWithToken", test: testHandshakeWithToken, opts: []pulsartest.Option{pulsartest.WithToken("s3cret")}},
	{name: "LookupAndPartitionedMetadata", test: testLookupAndPartitions},
	{name: "ConcurrentRequests", test: testConcurrentRequests},
	{name: "RequestAndSend", test: testRequestAndSend},
	{name: "RequestAsync", test: testRequestAsync},
	{name: "RequestAsyncFailures", test: testRequestAsyncFailures},
	{name: "MaxMessageSize", test: testMaxMessageSize, opts: []pulsartest.Option{pulsartest.WithMaxMessageSize(256 << 10)}},
	{name: "ReceiptsAndSendErrorsRouted", test: testReceiptsRouted},
	{name: "DeliveriesAfterFlow", test: testDeliveries},
	{name: "ReleasedPushesIntact", test: testReleasedPushes},
	{name: "BrokerPushes", test: testBrokerPushes},
	{name: "RegistrationLifetime", test: testRegistrationLifetime},
	{name: "ServerDropsConnection", test: testServerDrops},
	{name: "KeepaliveExpiry", test: testKeepaliveExpiry},
	{name: "RequestTimeout", test: testRequestTimeout},
	{name: "ConnectTimeout", test: testConnectTimeout},
	{name: "ContextCancellation", test: testContextCancellation},
	{name: "SharedContextsCancellation", test: testSharedContextsCancellation},
	{name: "ContextDeadline", test: testContextDeadline},
	{name: "GracefulStop", test: testGracefulStop},
	{name: "MalformedFrames", test: testMalformedFrames},
	{name: "IrregularFramesCounted", test: testIrregularFrames},
	{name: "DialRefused", test: testDialRefused},
	{name: "Latency", test: testLatency},
	{name: "HalfOpen", test: testHalfOpen},
}

func testHandshake(t *testing.T, e *env) {
	b := e.start(t)
	require.NoError(t, b.WaitConnected(testContext(t)))
	assert.Equal(t, pulsarconn.StateConnected, b.State())
	version, protocol := b.ServerVersion()
	assert.Equal(t, pulsartest.DefaultServerVersion, version)
	assert.EqualValues(t, frame.ProtocolVersion, protocol)
	connect := e.srv.LastConnect()
	require.NotNil(t, connect)
	assert.Contains(t, connect.GetClientVersion(), "pulsarconn")
	assert.EqualValues(t, frame.ProtocolVersion, connect.GetProtocolVersion())
	assert.True(t, connect.GetFeatureFlags().GetSupportsAuthRefresh())
	assert.Empty(t, connect.GetAuthMethodName(), "no credentials without an Authenticator")
}

func testHandshakeWithToken(t *testing.T, e *env) {
	b := e.connected(t, pulsarconn.WithAuthenticator(staticToken("s3cret")))
	assert.Equal(t, "token", e.srv.LastConnect().GetAuthMethodName())
	assert.Equal(t, "s3cret", string(e.srv.LastConnect().GetAuthData()))
	assert.Equal(t, pulsarconn.StateConnected, b.State())

	bad := e.start(t, pulsarconn.WithAuthenticator(staticToken("wrong")))
	ctx := testContext(t)
	l := NewPushLog()
	_, err := bad.RegisterProducer(ctx, 1, l)
	if err != nil { // the refusal came first (the handshake runs meanwhile)
		require.ErrorIs(t, err, pulsarconn.ErrAuthenticationError)
	}
	// A refusal of the credentials is final: the Broker is closed.
	testenv.WaitState(t, bad, pulsarconn.StateClosed)
	err = bad.WaitConnected(ctx)
	assert.ErrorIs(t, err, pulsarconn.ErrAuthenticationError)
	assert.False(t, pulsarconn.IsRetryable(err))
	assert.NotContains(t, err.Error(), "wrong", "credentials stay out of errors")
}

func testLookupAndPartitions(t *testing.T, e *env) {
	e.srv.SetPartitions(topic+"-p", 4)
	b := e.connected(t)
	ctx := testContext(t)
	for _, authoritative := range []bool{false, true} {
		res, err := b.LookupTopic(ctx, topic, authoritative)
		require.NoError(t, err)
		assert.Equal(t, e.url, res.BrokerURL)
		assert.False(t, res.Redirect)
		assert.True(t, res.Authoritative, "a broker's Connect answer is authoritative, whatever the request said")
	}
	n, err := b.PartitionedTopicMetadata(ctx, topic+"-p")
	require.NoError(t, err)
	assert.Equal(t, 4, n)
	n, err = b.PartitionedTopicMetadata(ctx, topic)
	require.NoError(t, err)
	assert.Equal(t, 0, n)
	_, err = b.LookupTopic(ctx, "", false)
	var se *pulsarconn.ServerError
	require.ErrorAs(t, err, &se)
	assert.ErrorIs(t, err, pulsarconn.ErrInvalidTopicName)
	_, err = b.PartitionedTopicMetadata(ctx, "")
	assert.ErrorIs(t, err, pulsarconn.ErrInvalidTopicName)
}

// testConcurrentRequests has 1,000 requests in flight on one connection,
// each for its own topic, and checks each caller gets its own answer.
func testConcurrentRequests(t *testing.T, e *env) {
	const n = 1000
	for i := range n {
		e.srv.SetPartitions(fmt.Sprintf("%s-%d", topic, i), i%17+1)
	}
	b := e.connected(t)
	ctx := testContext(t)
	var wg sync.WaitGroup
	got := make([]int, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = b.PartitionedTopicMetadata(ctx, fmt.Sprintf("%s-%d", topic, i))
		}()
	}
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i], "request %d", i)
		require.Equal(t, i%17+1, got[i], "request %d got another's answer", i)
	}
	assert.Equal(t, n, e.srv.Received(pulsarpb.BaseCommand_PARTITIONED_METADATA))
	assert.Zero(t, b.Stats().UnknownRequests)
}

func testRequestAndSend(t *testing.T, e *env) {
	b := e.connected(t)
	ctx := testContext(t)
	resp, err := b.Request(ctx, producerCmd(topic, 1))
	require.NoError(t, err)
	require.Equal(t, pulsarpb.BaseCommand_PRODUCER_SUCCESS, resp.GetType())
	assert.NotEmpty(t, resp.GetProducerSuccess().GetProducerName())

	_, err = b.Request(ctx, flowCmd(1, 1))
	assert.ErrorIs(t, err, pulsarconn.ErrNotRequest)

	e.srv.Intercept(pulsarpb.BaseCommand_PRODUCER, func(c *pulsartest.Call) pulsartest.Action {
		c.ReplyError(pulsarpb.ServerError_ServiceNotReady, "try later")
		return pulsartest.Handled
	})
	_, err = b.Request(ctx, producerCmd(topic, 2))
	assert.ErrorIs(t, err, pulsarconn.ErrServiceNotReady)
	assert.True(t, pulsarconn.IsRetryable(err))
	assert.Contains(t, err.Error(), "try later")

	require.NoError(t, b.Send(ctx, flowCmd(7, 3)))
	require.NoError(t, e.srv.WaitReceived(ctx, pulsarpb.BaseCommand_FLOW, 1))
}

// asyncResult is what a RequestAsync's done function received.
type asyncResult struct {
	resp *pulsarpb.BaseCommand
	err  error
}

// partitionsCmd is a PARTITIONED_METADATA request for topic.
func partitionsCmd(topic string) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{
		Type:              pulsarpb.BaseCommand_PARTITIONED_METADATA.Enum(),
		PartitionMetadata: &pulsarpb.CommandPartitionedTopicMetadata{Topic: proto.String(topic)},
	}
}

// testRequestAsync keeps 1,000 RequestAsync calls in flight from one
// goroutine, as many as WithMaxPendingRequests allows: each done gets its
// own answer, exactly once, and gives its slot back (RequestAsyncLent's
// too, read while done runs); a refused
// request is an error to done, a command that is no request is refused
// at once; done runs after the pushes the broker sent before the answer,
// and may call the Broker; with every slot taken, RequestAsync fails at
// once instead of waiting.
func testRequestAsync(t *testing.T, e *env) {
	const n = 1000
	for i := range n {
		e.srv.SetPartitions(fmt.Sprintf("%s-%d", topic, i), i%17+1)
	}
	// Every slot is taken at once: the calls after the first n need the
	// slots their done functions gave back.
	b := e.connected(t, pulsarconn.WithMaxPendingRequests(n))
	ctx := testContext(t)
	results := make([]chan asyncResult, n)
	for i := range n {
		results[i] = make(chan asyncResult, 2)
		require.NoError(t, b.RequestAsync(ctx, partitionsCmd(fmt.Sprintf("%s-%d", topic, i)), func(resp *pulsarpb.BaseCommand, err error) {
			results[i] <- asyncResult{resp, err}
		}))
	}
	for i := range n {
		r := <-results[i]
		require.NoError(t, r.err, "request %d", i)
		require.EqualValues(t, i%17+1, r.resp.GetPartitionMetadataResponse().GetPartitions(), "request %d got another's answer", i)
	}
	assert.Equal(t, n, e.srv.Received(pulsarpb.BaseCommand_PARTITIONED_METADATA))
	for i := range n {
		assert.Empty(t, results[i], "request %d: done called once", i)
	}

	// RequestAsyncLent: each done reads its own answer, which the
	// connection may reuse once done returns.
	counts := make([]chan uint32, n)
	for i := range n {
		counts[i] = make(chan uint32, 2)
		require.NoError(t, b.RequestAsyncLent(ctx, partitionsCmd(fmt.Sprintf("%s-%d", topic, i)), func(resp *pulsarpb.BaseCommand, err error) {
			assert.NoError(t, err, "lent request %d", i)
			counts[i] <- resp.GetPartitionMetadataResponse().GetPartitions()
		}))
	}
	for i := range n {
		require.EqualValues(t, i%17+1, <-counts[i], "lent request %d got another's answer", i)
		assert.Empty(t, counts[i], "lent request %d: done called once", i)
	}

	refused := make(chan asyncResult, 1)
	require.NoError(t, b.RequestAsync(ctx, partitionsCmd(""), func(resp *pulsarpb.BaseCommand, err error) { refused <- asyncResult{resp, err} }))
	r := <-refused
	var se *pulsarconn.ServerError
	require.ErrorAs(t, r.err, &se)
	assert.ErrorIs(t, r.err, pulsarconn.ErrInvalidTopicName)

	err := b.RequestAsync(ctx, flowCmd(1, 1), func(*pulsarpb.BaseCommand, error) { t.Error("done called for a command never sent") })
	assert.ErrorIs(t, err, pulsarconn.ErrNotRequest)
	assert.Error(t, b.RequestAsync(ctx, partitionsCmd(topic), nil), "done is required")

	// A push sent before the answer is handled before done runs; done
	// calls the Broker.
	prod := NewPushLog()
	_, err = b.RegisterProducer(ctx, 1, prod)
	require.NoError(t, err)
	_, err = b.Request(ctx, producerCmd(topic, 1))
	require.NoError(t, err)
	held := e.srv.Hold(pulsarpb.BaseCommand_LOOKUP)
	ordered := make(chan error, 1)
	lookup := &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_LOOKUP.Enum(), LookupTopic: &pulsarpb.CommandLookupTopic{Topic: proto.String(topic)}}
	require.NoError(t, b.RequestAsync(ctx, lookup, func(resp *pulsarpb.BaseCommand, err error) {
		if err == nil && len(prod.OfKind(pulsarconn.PushClosed)) != 1 {
			err = fmt.Errorf("done ran before the push the broker sent first")
		}
		if err == nil {
			err = b.Send(ctx, flowCmd(7, 1))
		}
		ordered <- err
	}))
	<-held.Arrived()
	require.True(t, e.srv.CloseProducer(1, "", ""))
	held.Release()
	require.NoError(t, <-ordered)
	require.NoError(t, e.srv.WaitReceived(ctx, pulsarpb.BaseCommand_FLOW, 1))

	// With every slot taken, RequestAsync fails at once rather than wait
	// (a done function must never wait); the slot comes back with done.
	one := e.connected(t, pulsarconn.WithMaxPendingRequests(1))
	held = e.srv.Hold(pulsarpb.BaseCommand_PARTITIONED_METADATA)
	first := make(chan asyncResult, 1)
	require.NoError(t, one.RequestAsync(ctx, partitionsCmd(topic), func(resp *pulsarpb.BaseCommand, err error) { first <- asyncResult{resp, err} }))
	<-held.Arrived()
	err = one.RequestAsync(ctx, partitionsCmd(topic), func(*pulsarpb.BaseCommand, error) { t.Error("done called for a request never sent") })
	assert.ErrorIs(t, err, pulsarconn.ErrTooManyPendingRequests)
	held.Release()
	require.NoError(t, (<-first).err)
	again := make(chan asyncResult, 1)
	require.NoError(t, one.RequestAsync(ctx, partitionsCmd(topic), func(resp *pulsarpb.BaseCommand, err error) { again <- asyncResult{resp, err} }))
	require.NoError(t, (<-again).err)
}

// testRequestAsyncFailures: a request in flight when the connection drops
// ends with ErrDisconnected, one in flight at Stop with ErrClosed, each
// told exactly once and before Stop returns.
func testRequestAsyncFailures(t *testing.T, e *env) {
	b := e.connected(t)
	ctx := testContext(t)
	held := e.srv.Hold(pulsarpb.BaseCommand_PARTITIONED_METADATA)
	dropped := make(chan asyncResult, 2)
	require.NoError(t, b.RequestAsync(ctx, partitionsCmd(topic), func(resp *pulsarpb.BaseCommand, err error) { dropped <- asyncResult{resp, err} }))
	<-held.Arrived()
	e.srv.DropConnections()
	r := <-dropped
	assert.ErrorIs(t, r.err, pulsarconn.ErrDisconnected)
	assert.True(t, pulsarconn.IsRetryable(r.err))
	held.Release()

	require.NoError(t, b.WaitConnected(ctx))
	held = e.srv.Hold(pulsarpb.BaseCommand_PARTITIONED_METADATA)
	stopped := make(chan asyncResult, 2)
	require.NoError(t, b.RequestAsync(ctx, partitionsCmd(topic), func(resp *pulsarpb.BaseCommand, err error) { stopped <- asyncResult{resp, err} }))
	<-held.Arrived()
	require.NoError(t, b.Stop(ctx))
	held.Release()
	require.Len(t, stopped, 1, "told before Stop returns")
	assert.ErrorIs(t, (<-stopped).err, pulsarconn.ErrClosed)
	assert.Empty(t, dropped, "told once")
	err := b.RequestAsync(ctx, partitionsCmd(topic), func(*pulsarpb.BaseCommand, error) { t.Error("done called after Stop") })
	assert.ErrorIs(t, err, pulsarconn.ErrClosed)
}

// testMaxMessageSize publishes a message whose payload is exactly the
// broker's max message size, and is refused one byte more, before
// writing: the clients' check, on the payload (the frame may be up to the
// frame padding larger).
func testMaxMessageSize(t *testing.T, e *env) {
	b := e.connected(t)
	ctx := testContext(t)
	const maxMessage = 256 << 10
	assert.Equal(t, maxMessage, b.MaxMessageSize())
	l := NewPushLog()
	_, err := b.RegisterProducer(ctx, 1, l)
	require.NoError(t, err)
	_, err = b.Request(ctx, producerCmd(topic, 1))
	require.NoError(t, err)

	exact := sendFrame(t, 1, 0, make([]byte, maxMessage))
	require.NoError(t, b.PublishMessage(ctx, exact))
	r := l.WaitFor(testContext(t), t, pulsarconn.PushReceipt, 1)[0]
	assert.Zero(t, r.Command.GetSendReceipt().GetSequenceId())
	stored := e.srv.Messages(topic)
	require.Len(t, stored, 1)
	assert.Len(t, stored[0], maxMessage, "the whole payload arrived")

	over := sendFrame(t, 1, 1, make([]byte, maxMessage+1))
	assert.ErrorIs(t, b.PublishMessage(ctx, over), pulsarconn.ErrMessageTooLarge)
	assert.ErrorIs(t, b.PublishMessage(ctx, exact[:len(exact)-1]), pulsarconn.ErrProtocol, "a truncated frame")
	assert.Equal(t, pulsarconn.StateConnected, b.State())
}

func testReceiptsRouted(t *testing.T, e *env) {
	b := e.connected(t)
	ctx := testContext(t)
	const producers, perProducer = 8, 40
	logs := map[uint64]*PushLog{}
	for id := uint64(1); id <= producers; id++ {
		logs[id] = NewPushLog()
		_, err := b.RegisterProducer(ctx, id, logs[id])
		require.NoError(t, err)
		_, err = b.Request(ctx, producerCmd(fmt.Sprintf("%s-%d", topic, id), id))
		require.NoError(t, err)
	}
	for seq := uint64(0); seq < perProducer; seq++ {
		for id := uint64(1); id <= producers; id++ {
			require.NoError(t, b.PublishMessage(ctx, sendFrame(t, id, seq, []byte("hello"))))
		}
	}
	for id, l := range logs {
		got := l.WaitFor(testContext(t), t, pulsarconn.PushReceipt, perProducer)
		require.Len(t, got, perProducer, "producer %d", id)
		for i, p := range got {
			assert.Equal(t, id, p.ID)
			assert.Equal(t, id, p.Command.GetSendReceipt().GetProducerId())
			assert.EqualValues(t, i, p.Command.GetSendReceipt().GetSequenceId(), "receipts in order")
		}
		assert.Empty(t, l.OfKind(pulsarconn.PushSendError))
	}

	// A producer registered here but never created on the broker: its
	// SEND is answered with SEND_ERROR, routed to it alone.
	failing := NewPushLog()
	_, err := b.RegisterProducer(ctx, 99, failing)
	require.NoError(t, err)
	require.NoError(t, b.PublishMessage(ctx, sendFrame(t, 99, 0, []byte("x"))))
	got := failing.WaitFor(testContext(t), t, pulsarconn.PushSendError, 1)
	var se *pulsarconn.ServerError
	assert.ErrorAs(t, got[0].Err, &se)
	for _, l := range logs {
		assert.Empty(t, l.OfKind(pulsarconn.PushSendError))
	}
}

func testDeliveries(t *testing.T, e *env) {
	b := e.connected(t)
	ctx := testContext(t)
	_, err := b.RegisterProducer(ctx, 1, NewPushLog())
	require.NoError(t, err)
	_, err = b.Request(ctx, producerCmd(topic, 1))
	require.NoError(t, err)
	for seq := uint64(0); seq < 10; seq++ {
		require.NoError(t, b.PublishMessage(ctx, sendFrame(t, 1, seq, []byte{byte('a' + seq)})))
	}
	require.NoError(t, e.srv.WaitMessages(ctx, topic, 10))
	l, other := NewPushLog(), NewPushLog()
	_, err = b.RegisterConsumer(ctx, 1, l)
	require.NoError(t, err)
	_, err = b.RegisterConsumer(ctx, 2, other)
	require.NoError(t, err)
	_, err = b.Request(ctx, subscribeCmd(topic, "s", 1))
	require.NoError(t, err)
	assert.Empty(t, l.OfKind(pulsarconn.PushMessage), "nothing before FLOW")
	require.NoError(t, b.Send(ctx, flowCmd(1, 4)))
	l.WaitFor(testContext(t), t, pulsarconn.PushMessage, 4)
	require.NoError(t, b.Send(ctx, flowCmd(1, 6)))
	got := l.WaitFor(testContext(t), t, pulsarconn.PushMessage, 10)
	for i, p := range got {
		assert.Equal(t, []byte{byte('a' + i)}, p.Payload.Data)
		assert.True(t, p.Payload.ChecksumOK)
		md, err := p.Payload.DecodeMetadata()
		require.NoError(t, err)
		assert.EqualValues(t, i, md.GetSequenceId())
	}
	assert.Empty(t, other.OfKind(pulsarconn.PushMessage), "routed by consumer id")
}

// releasingHandler takes what it checks of each receipt (the sequence
// id) or message (the sequence id and a copy of the data), in order,
// then releases the push (Push.Release), so that the next one reuses its
// memory. full is closed once want are taken.
type releasingHandler struct {
	mu   sync.Mutex
	seqs []uint64
	data [][]byte
	want int
	full chan struct{}
}

func newReleasingHandler(want int) *releasingHandler {
	return &releasingHandler{want: want, full: make(chan struct{})}
}

func (h *releasingHandler) HandlePush(p pulsarconn.Push) {
	var seq uint64
	var data []byte
	switch p.Kind {
	case pulsarconn.PushReceipt:
		seq = p.Command.GetSendReceipt().GetSequenceId()
	case pulsarconn.PushMessage:
		md, err := p.Payload.DecodeMetadata()
		if err != nil || !p.Payload.ChecksumOK {
			seq = 1 << 63 // fails the comparison
		} else {
			seq = md.GetSequenceId()
		}
		data = bytes.Clone(p.Payload.Data)
	default:
		return
	}
	p.Release()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seqs = append(h.seqs, seq)
	h.data = append(h.data, data)
	if len(h.seqs) == h.want {
		close(h.full)
	}
}

// wait waits until h has taken all it wants.
func (h *releasingHandler) wait(ctx context.Context, t *testing.T) {
	t.Helper()
	select {
	case <-h.full:
	case <-ctx.Done():
		h.mu.Lock()
		defer h.mu.Unlock()
		t.Fatalf("%d of %d pushes: %v", len(h.seqs), h.want, ctx.Err())
	}
}

// testReleasedPushes: receipts and messages of varying sizes, each
// released by its Handler as soon as it is read, all arrive whole and in
// order: none is reused while still held.
func testReleasedPushes(t *testing.T, e *env) {
	const n = 300
	payload := func(seq int) []byte { return bytes.Repeat([]byte{byte(seq)}, 1+seq*37%3000) }
	b := e.connected(t)
	ctx := testContext(t)
	receipts := newReleasingHandler(n)
	_, err := b.RegisterProducer(ctx, 1, receipts)
	require.NoError(t, err)
	_, err = b.Request(ctx, producerCmd(topic, 1))
	require.NoError(t, err)
	for seq := range n {
		require.NoError(t, b.PublishMessage(ctx, sendFrame(t, 1, uint64(seq), payload(seq))))
	}
	receipts.wait(ctx, t) // every message stored
	messages := newReleasingHandler(n)
	_, err = b.RegisterConsumer(ctx, 1, messages)
	require.NoError(t, err)
	_, err = b.Request(ctx, subscribeCmd(topic, "s", 1))
	require.NoError(t, err)
	require.NoError(t, b.Send(ctx, flowCmd(1, n)))
	messages.wait(ctx, t)
	for seq := range n {
		assert.EqualValues(t, seq, receipts.seqs[seq], "receipt %d", seq)
		assert.EqualValues(t, seq, messages.seqs[seq], "message %d", seq)
		assert.Equal(t, payload(seq), messages.data[seq], "message %d", seq)
	}
}

func testBrokerPushes(t *testing.T, e *env) {
	b := e.connected(t)
	ctx := testContext(t)
	prod, cons := NewPushLog(), NewPushLog()
	_, err := b.RegisterProducer(ctx, 1, prod)
	require.NoError(t, err)
	_, err = b.Request(ctx, producerCmd(topic, 1))
	require.NoError(t, err)
	_, err = b.RegisterConsumer(ctx, 1, cons)
	require.NoError(t, err)
	_, err = b.Request(ctx, subscribeCmd(topic, "s", 1))
	require.NoError(t, err)

	require.True(t, e.srv.CloseProducer(1, "pulsar://b2:6650", "pulsar+ssl://b2:6651"))
	p := prod.WaitFor(testContext(t), t, pulsarconn.PushClosed, 1)[0]
	assert.Equal(t, "pulsar://b2:6650", p.BrokerURL)
	assert.Equal(t, "pulsar+ssl://b2:6651", p.BrokerURLTLS)

	require.True(t, e.srv.ActiveConsumerChange(1, true))
	assert.True(t, cons.WaitFor(testContext(t), t, pulsarconn.PushActiveConsumerChange, 1)[0].Command.GetActiveConsumerChange().GetIsActive())
	require.True(t, e.srv.ReachedEndOfTopic(1))
	cons.WaitFor(testContext(t), t, pulsarconn.PushReachedEndOfTopic, 1)
	require.True(t, e.srv.TopicMigrated(pulsarpb.CommandTopicMigrated_Consumer, 1, "pulsar://c2:6650", "pulsar+ssl://c2:6651"))
	m := cons.WaitFor(testContext(t), t, pulsarconn.PushTopicMigrated, 1)[0]
	assert.Equal(t, "pulsar://c2:6650", m.BrokerURL)
	assert.Equal(t, "pulsar+ssl://c2:6651", m.BrokerURLTLS)
	require.True(t, e.srv.CloseConsumer(1, "", ""))
	assert.Empty(t, cons.WaitFor(testContext(t), t, pulsarconn.PushClosed, 1)[0].BrokerURL)
	assert.Empty(t, prod.OfKind(pulsarconn.PushTopicMigrated), "a consumer's push is not a producer's")
	assert.Equal(t, pulsarconn.StateConnected, b.State())
}

func testRegistrationLifetime(t *testing.T, e *env) {
	b := e.connected(t)
	ctx := testContext(t)
	pctx, cancelProducer := context.WithCancel(ctx)
	pl := NewPushLog()
	preg, err := b.RegisterProducer(pctx, 1, pl)
	require.NoError(t, err)
	_, err = b.RegisterProducer(ctx, 1, NewPushLog())
	assert.ErrorIs(t, err, pulsarconn.ErrDuplicateID)
	assert.Equal(t, []uint64{1}, b.Producers())

	cancelProducer() // the owner went away
	require.NoError(t, e.srv.WaitReceived(ctx, pulsarpb.BaseCommand_CLOSE_PRODUCER, 1))
	assert.Empty(t, b.Producers())
	<-preg.Done()
	assert.ErrorIs(t, preg.Err(), context.Canceled)
	assert.ErrorIs(t, pl.WaitFor(ctx, t, pulsarconn.PushEnded, 1)[0].Err, context.Canceled, "its Handler is told")

	cl := NewPushLog()
	reg, err := b.RegisterConsumer(ctx, 4, cl)
	require.NoError(t, err)
	assert.Equal(t, []uint64{4}, b.Consumers())
	require.NoError(t, reg.Close(ctx), "SUCCESS answers CLOSE_CONSUMER")
	assert.Equal(t, 1, e.srv.Received(pulsarpb.BaseCommand_CLOSE_CONSUMER))
	assert.Empty(t, b.Consumers())
	require.NoError(t, reg.Close(ctx), "a second Close is a no-op")
	assert.Equal(t, 1, e.srv.Received(pulsarpb.BaseCommand_CLOSE_CONSUMER))
	assert.ErrorIs(t, reg.Err(), pulsarconn.ErrClosed)
	assert.Len(t, cl.WaitFor(ctx, t, pulsarconn.PushEnded, 1), 1, "told once")
}

// testServerDrops: the broker drops the connection with a request in
// flight. The request fails once, each handler is told once, and the
// Broker reconnects: connected → disconnected → connected. (On a fake
// clock, so that the reconnection waits for the behaviour.)
func testServerDrops(t *testing.T, e *env) {
	b, clk := e.startOnFakeClock(t)
	ctx := testContext(t)
	require.NoError(t, b.WaitConnected(ctx))
	l := NewPushLog()
	_, err := b.RegisterProducer(ctx, 1, l)
	require.NoError(t, err)

	held := e.srv.Hold(pulsarpb.BaseCommand_LOOKUP)
	errc := make(chan error, 1)
	go func() {
		_, err := b.LookupTopic(ctx, topic, false)
		errc <- err
	}()
	<-held.Arrived()
	st, changed := b.WatchState()
	require.Equal(t, pulsarconn.StateConnected, st)
	e.srv.DropConnections()
	err = <-errc
	assert.ErrorIs(t, err, pulsarconn.ErrDisconnected)
	assert.True(t, pulsarconn.IsRetryable(err))
	got := l.WaitFor(testContext(t), t, pulsarconn.PushDisconnected, 1)
	assert.ErrorIs(t, got[0].Err, pulsarconn.ErrDisconnected)

	<-changed
	assert.Equal(t, pulsarconn.StateDisconnected, b.State(), "left connected")
	clk.Advance(backoffMax)
	require.NoError(t, b.WaitConnected(ctx))
	_, err = b.LookupTopic(ctx, topic, false)
	require.NoError(t, err)
	assert.EqualValues(t, 1, b.Stats().Reconnects)
	assert.Len(t, l.OfKind(pulsarconn.PushDisconnected), 1, "told once")
	assert.Equal(t, []uint64{1}, b.Producers(), "registrations survive reconnection")
	held.Release()
}

// testKeepaliveExpiry: a broker that stops answering PING is declared dead
// after two keepalive intervals of silence (the default interval, on a
// fake clock).
func testKeepaliveExpiry(t *testing.T, e *env) {
	b, clk, ctx, l := e.connectedConsumer(t)
	e.srv.SetAnswerPings(false)
	clk.Advance(core.DefaultKeepAliveInterval)
	require.NoError(t, e.srv.WaitReceived(ctx, pulsarpb.BaseCommand_PING, 1), "it pings after one interval")
	assert.Equal(t, pulsarconn.StateConnected, b.State(), "and waits for the answer")
	clk.Advance(core.DefaultKeepAliveInterval)
	got := l.WaitFor(ctx, t, pulsarconn.PushDisconnected, 1)
	assert.ErrorIs(t, got[0].Err, pulsarconn.ErrKeepaliveTimeout)
	e.srv.SetAnswerPings(true)
	clk.Advance(backoffMax)
	require.NoError(t, b.WaitConnected(ctx))
}

// testRequestTimeout: a request the broker never answers fails at the
// operation timeout (the default, on a fake clock).
func testRequestTimeout(t *testing.T, e *env) {
	b, clk := e.startOnFakeClock(t)
	ctx := testContext(t)
	require.NoError(t, b.WaitConnected(ctx))
	e.srv.Intercept(pulsarpb.BaseCommand_LOOKUP, func(*pulsartest.Call) pulsartest.Action { return pulsartest.Drop })
	errc := make(chan error, 1)
	go func() { _, err := b.LookupTopic(ctx, topic, false); errc <- err }()
	require.NoError(t, e.srv.WaitReceived(ctx, pulsarpb.BaseCommand_LOOKUP, 1))
	clk.Advance(core.DefaultOperationTimeout)
	err := <-errc
	assert.ErrorIs(t, err, pulsarconn.ErrRequestTimeout)
	assert.True(t, pulsarconn.IsRetryable(err))
	_, err = b.LookupTopic(ctx, topic, false)
	require.NoError(t, err, "the connection stays usable")
}

// testConnectTimeout: a broker that never answers CONNECT fails the
// handshake at the connect timeout (the default, on a fake clock).
func testConnectTimeout(t *testing.T, e *env) {
	e.srv.SetNeverConnect(true)
	b, clk := e.startOnFakeClock(t)
	ctx := testContext(t)
	require.NoError(t, e.srv.WaitReceived(ctx, pulsarpb.BaseCommand_CONNECT, 1))
	assert.Equal(t, pulsarconn.StateHandshaking, b.State())
	clk.Advance(core.DefaultConnectTimeout)
	testenv.WaitState(t, b, pulsarconn.StateDisconnected)
	wctx, cancel := context.WithCancel(ctx)
	cancel()
	assert.ErrorIs(t, b.WaitConnected(wctx), pulsarconn.ErrConnectTimeout)
	e.srv.SetNeverConnect(false)
	clk.Advance(backoffMax)
	require.NoError(t, b.WaitConnected(ctx), "connects once the broker answers")
}

// testContextCancellation: every call returns promptly with the context's
// error once its context is cancelled, whether it was waiting for an
// answer or for the connection.
func testContextCancellation(t *testing.T, e *env) {
	b := e.connected(t)
	ctx := testContext(t)
	done, cancel := context.WithCancel(ctx)
	cancel()
	calls := map[string]func(context.Context) error{
		"LookupTopic": func(c context.Context) error { _, err := b.LookupTopic(c, topic, false); return err },
		"PartitionedTopicMetadata": func(c context.Context) error {
			_, err := b.PartitionedTopicMetadata(c, topic)
			return err
		},
		"Request":          func(c context.Context) error { _, err := b.Request(c, producerCmd(topic, 50)); return err },
		"Send":             func(c context.Context) error { return b.Send(c, flowCmd(1, 1)) },
		"PublishMessage":   func(c context.Context) error { return b.PublishMessage(c, sendFrame(t, 1, 0, nil)) },
		"RegisterProducer": func(c context.Context) error { _, err := b.RegisterProducer(c, 60, NewPushLog()); return err },
		"RegisterConsumer": func(c context.Context) error { _, err := b.RegisterConsumer(c, 60, NewPushLog()); return err },
	}
	for name, call := range calls {
		assert.ErrorIs(t, call(done), context.Canceled, "%s with an ended context", name)
	}

	// Cancelled while waiting for an answer: the late answer is
	// counted, not delivered.
	held := e.srv.Hold(pulsarpb.BaseCommand_LOOKUP)
	c2, cancel2 := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { _, err := b.LookupTopic(c2, topic, false); errc <- err }()
	<-held.Arrived()
	cancel2()
	assert.ErrorIs(t, <-errc, context.Canceled)
	held.Release()
	_, err := b.LookupTopic(ctx, topic, false)
	require.NoError(t, err)
	assert.EqualValues(t, 1, b.Stats().UnknownRequests)

	// Cancelled while closing a registration.
	reg, err := b.RegisterProducer(ctx, 70, NewPushLog())
	require.NoError(t, err)
	heldClose := e.srv.Hold(pulsarpb.BaseCommand_CLOSE_PRODUCER)
	c3, cancel3 := context.WithCancel(ctx)
	go func() { errc <- reg.Close(c3) }()
	<-heldClose.Arrived()
	cancel3()
	assert.ErrorIs(t, <-errc, context.Canceled)
	heldClose.Release()

	// Cancelled while waiting for a connection.
	e.faults.RefuseDials(true)
	e.srv.DropConnections()
	testenv.WaitState(t, b, pulsarconn.StateDisconnected)
	c4, cancel4 := context.WithCancel(ctx)
	go func() { errc <- b.WaitConnected(c4) }()
	go func() { _, err := b.LookupTopic(c4, topic, false); errc <- err }()
	cancel4()
	assert.ErrorIs(t, <-errc, context.Canceled)
	assert.ErrorIs(t, <-errc, context.Canceled)
	e.faults.RefuseDials(false)
	require.NoError(t, b.WaitConnected(ctx))
}

// testSharedContextsCancellation: callers that use their context again
// and again, several at once, each return its error once it ends while
// the broker holds their requests, and the slots those requests held are
// free again. More contexts are in use than the engine watches at once
// (the rest are waited on as a lone request's are).
func testSharedContextsCancellation(t *testing.T, e *env) {
	const contexts, callers, slots = 6, 3, 6 * 3
	b := e.connected(t, pulsarconn.WithMaxPendingRequests(slots))
	ctx := testContext(t)
	ctxs := make([]context.Context, contexts)
	cancels := make([]context.CancelFunc, contexts)
	for i := range ctxs {
		ctxs[i], cancels[i] = context.WithCancel(ctx)
		defer cancels[i]()
		for range 2 { // answered: the context is used again
			_, err := b.PartitionedTopicMetadata(ctxs[i], topic)
			require.NoError(t, err)
		}
	}
	stop := e.srv.InterceptEvery(pulsarpb.BaseCommand_PARTITIONED_METADATA, func(*pulsartest.Call) pulsartest.Action { return pulsartest.Drop })
	errcs := make([]chan error, contexts)
	for i := range ctxs {
		errcs[i] = make(chan error, callers)
		for range callers {
			go func() { _, err := b.PartitionedTopicMetadata(ctxs[i], topic); errcs[i] <- err }()
		}
	}
	require.NoError(t, e.srv.WaitReceived(ctx, pulsarpb.BaseCommand_PARTITIONED_METADATA, 2*contexts+slots))
	for i := range ctxs {
		cancels[i]()
		for range callers {
			assert.ErrorIs(t, <-errcs[i], context.Canceled, "context %d", i)
		}
		for j := i + 1; j < contexts; j++ {
			assert.Empty(t, errcs[j], "context %d ended with context %d", j, i)
		}
	}
	stop()

	// Every slot is free: as many RequestAsync calls, which do not wait
	// for a slot, are all sent and answered.
	answers := make(chan error, slots)
	for range slots {
		require.NoError(t, b.RequestAsync(ctx, partitionsCmd(topic), func(_ *pulsarpb.BaseCommand, err error) { answers <- err }))
	}
	for range slots {
		require.NoError(t, <-answers)
	}
	_, err := b.PartitionedTopicMetadata(ctxs[0], topic)
	assert.ErrorIs(t, err, context.Canceled, "an ended context is refused")
}

// testContextDeadline: a context deadline bounds a request the broker
// never answers, and a Stop whose broker never answers the closes.
func testContextDeadline(t *testing.T, e *env) {
	b := e.connected(t)
	ctx := testContext(t)
	e.srv.Intercept(pulsarpb.BaseCommand_PARTITIONED_METADATA, func(*pulsartest.Call) pulsartest.Action { return pulsartest.Drop })
	dctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err := b.PartitionedTopicMetadata(dctx, topic)
	assert.ErrorIs(t, err, context.DeadlineExceeded)

	_, err = b.RegisterProducer(ctx, 1, NewPushLog())
	require.NoError(t, err)
	e.srv.Intercept(pulsarpb.BaseCommand_CLOSE_PRODUCER, func(*pulsartest.Call) pulsartest.Action { return pulsartest.Drop })
	sctx, cancel2 := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel2()
	assert.ErrorIs(t, b.Stop(sctx), context.DeadlineExceeded)
	assert.Equal(t, pulsarconn.StateClosed, b.State(), "stopped all the same")
}

func testGracefulStop(t *testing.T, e *env) {
	b := e.connected(t)
	ctx := testContext(t)
	prod, cons := NewPushLog(), NewPushLog()
	_, err := b.RegisterProducer(ctx, 1, prod)
	require.NoError(t, err)
	_, err = b.RegisterConsumer(ctx, 2, cons)
	require.NoError(t, err)
	held := e.srv.Hold(pulsarpb.BaseCommand_LOOKUP)
	errc := make(chan error, 1)
	go func() { _, err := b.LookupTopic(ctx, topic, false); errc <- err }()
	<-held.Arrived()

	require.NoError(t, b.Stop(ctx))
	assert.Equal(t, 1, e.srv.Received(pulsarpb.BaseCommand_CLOSE_PRODUCER), "producers closed first")
	assert.Equal(t, 1, e.srv.Received(pulsarpb.BaseCommand_CLOSE_CONSUMER), "consumers closed first")
	assert.ErrorIs(t, <-errc, pulsarconn.ErrClosed, "what is still pending fails")
	for _, l := range []*PushLog{prod, cons} {
		got := l.OfKind(pulsarconn.PushEnded)
		require.Len(t, got, 1, "told before Stop returns")
		assert.ErrorIs(t, got[0].Err, pulsarconn.ErrClosed)
		assert.Empty(t, l.OfKind(pulsarconn.PushDisconnected), "the end, not a disconnection")
	}
	assert.Equal(t, pulsarconn.StateClosed, b.State())
	_, err = b.LookupTopic(ctx, topic, false)
	assert.ErrorIs(t, err, pulsarconn.ErrClosed)
	_, err = b.RegisterProducer(ctx, 9, prod)
	assert.ErrorIs(t, err, pulsarconn.ErrClosed)
	assert.ErrorIs(t, b.WaitConnected(ctx), pulsarconn.ErrClosed)
	require.NoError(t, b.Stop(ctx), "Stop is idempotent")
	held.Release()
}

// testMalformedFrames: each malformed frame from the broker ends the
// connection with a clear error, and the Broker reconnects.
func testMalformedFrames(t *testing.T, e *env) {
	cases := []struct {
		name string
		raw  []byte
		want error
	}{
		{"length over the max", []byte{0xff, 0xff, 0xff, 0xff}, pulsarconn.ErrFrameTooLarge},
		{"length under 4", []byte{0, 0, 0, 2, 0, 0}, pulsarconn.ErrProtocol},
		{"command size beyond the frame", []byte{0, 0, 0, 8, 0, 0, 0, 200, 8, 18, 0, 0}, pulsarconn.ErrProtocol},
		{"not protobuf", []byte{0, 0, 0, 8, 0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff}, pulsarconn.ErrProtocol},
		{"truncated then closed", []byte{0, 0, 0, 100, 0, 0}, pulsarconn.ErrDisconnected},
	}
	b := e.connected(t)
	ctx := testContext(t)
	l := NewPushLog()
	_, err := b.RegisterConsumer(ctx, 1, l)
	require.NoError(t, err)
	for i, tc := range cases {
		require.NoError(t, b.WaitConnected(ctx))
		require.NoError(t, e.srv.WaitConns(ctx, 1))
		e.srv.SendRaw(tc.raw)
		if tc.want == pulsarconn.ErrDisconnected {
			e.srv.DropConnections()
		}
		got := l.WaitFor(testContext(t), t, pulsarconn.PushDisconnected, i+1)
		assert.ErrorIs(t, got[i].Err, tc.want, tc.name)
	}
	require.NoError(t, b.WaitConnected(ctx), "reconnects after protocol errors")
	_, err = b.LookupTopic(ctx, topic, false)
	require.NoError(t, err)
}

// testIrregularFrames: frames that are well-formed but unexpected are
// counted and logged, and the connection carries on.
func testIrregularFrames(t *testing.T, e *env) {
	b := e.connected(t)
	ctx := testContext(t)
	l := NewPushLog()
	_, err := b.RegisterConsumer(ctx, 1, l)
	require.NoError(t, err)

	// An answer to a request id never sent.
	e.srv.Push(&pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_SUCCESS.Enum(),
		Success: &pulsarpb.CommandSuccess{RequestId: proto.Uint64(424242)}})
	// A command type from the future (field 1 = 99).
	e.srv.SendRaw([]byte{0, 0, 0, 6, 0, 0, 0, 2, 0x08, 99})
	// A MESSAGE whose checksum is wrong.
	msg, err := frame.AppendMessage(nil, &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_MESSAGE.Enum(),
		Message: &pulsarpb.CommandMessage{ConsumerId: proto.Uint64(1),
			MessageId: &pulsarpb.MessageIdData{LedgerId: proto.Uint64(1), EntryId: proto.Uint64(1)}}},
		&pulsarpb.MessageMetadata{ProducerName: proto.String("p"), SequenceId: proto.Uint64(0), PublishTime: proto.Uint64(1)},
		[]byte("payload"))
	require.NoError(t, err)
	msg[len(msg)-1] ^= 0xff
	e.srv.SendRaw(msg)
	// A push for a consumer nobody registered.
	e.srv.Push(&pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_REACHED_END_OF_TOPIC.Enum(),
		ReachedEndOfTopic: &pulsarpb.CommandReachedEndOfTopic{ConsumerId: proto.Uint64(77)}})

	got := l.WaitFor(testContext(t), t, pulsarconn.PushMessage, 1)
	assert.False(t, got[0].Payload.ChecksumOK, "delivered with its checksum verdict")
	_, err = b.LookupTopic(ctx, topic, false) // a round trip orders the pushes before it
	require.NoError(t, err)
	st := b.Stats()
	assert.EqualValues(t, 1, st.UnknownRequests)
	assert.EqualValues(t, 1, st.UnknownCommands)
	assert.EqualValues(t, 1, st.BadChecksums)
	assert.EqualValues(t, 1, st.UnknownConsumers)
	assert.Equal(t, pulsarconn.StateConnected, b.State(), "none of these drops the connection")
	assert.Empty(t, l.OfKind(pulsarconn.PushDisconnected))
}

// testDialRefused: while dials are refused, fail-fast calls fail at once
// and waiting calls wait, then complete once the broker is reachable.
func testDialRefused(t *testing.T, e *env) {
	e.faults.RefuseDials(true)
	ctx := testContext(t)
	fast := e.start(t, pulsarconn.WithFailFast(true))
	testenv.WaitState(t, fast, pulsarconn.StateDisconnected)
	_, err := fast.LookupTopic(ctx, topic, false)
	assert.ErrorIs(t, err, pulsarconn.ErrDisconnected, "fail-fast fails at once")
	assert.Contains(t, err.Error(), "dial")

	waiting := e.start(t)
	errc := make(chan error, 1)
	go func() {
		_, err := waiting.LookupTopic(ctx, topic, false)
		errc <- err
	}()
	testenv.WaitState(t, waiting, pulsarconn.StateDisconnected)
	e.faults.RefuseDials(false)
	require.NoError(t, <-errc, "the waiting call completes after the reconnect")
	require.NoError(t, fast.WaitConnected(ctx))
}

// testLatency: with every byte delayed, requests and receipts still pair
// up correctly.
func testLatency(t *testing.T, e *env) {
	e.faults.SetLatency(2 * time.Millisecond)
	b := e.connected(t)
	ctx := testContext(t)
	l := NewPushLog()
	_, err := b.RegisterProducer(ctx, 1, l)
	require.NoError(t, err)
	_, err = b.Request(ctx, producerCmd(topic, 1))
	require.NoError(t, err)
	for seq := uint64(0); seq < 20; seq++ {
		require.NoError(t, b.PublishMessage(ctx, sendFrame(t, 1, seq, []byte("x"))))
	}
	for i, p := range l.WaitFor(testContext(t), t, pulsarconn.PushReceipt, 20) {
		assert.EqualValues(t, i, p.Command.GetSendReceipt().GetSequenceId())
	}
	res, err := b.LookupTopic(ctx, topic, false)
	require.NoError(t, err)
	assert.Equal(t, e.url, res.BrokerURL)
}

// testHalfOpen: a connection that swallows everything is found dead by
// keepalive (the default interval, on a fake clock), and the Broker
// reconnects once the path heals.
func testHalfOpen(t *testing.T, e *env) {
	b, clk, ctx, l := e.connectedConsumer(t)
	e.faults.SetHalfOpen(true)
	clk.Advance(core.DefaultKeepAliveInterval) // a PING, swallowed
	assert.Equal(t, pulsarconn.StateConnected, b.State())
	clk.Advance(core.DefaultKeepAliveInterval)
	got := l.WaitFor(ctx, t, pulsarconn.PushDisconnected, 1)
	assert.ErrorIs(t, got[0].Err, pulsarconn.ErrKeepaliveTimeout)
	e.faults.SetHalfOpen(false)
	clk.Advance(backoffMax)
	require.NoError(t, b.WaitConnected(ctx))
	_, err := b.LookupTopic(ctx, topic, false)
	require.NoError(t, err)
}
