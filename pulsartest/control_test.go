package pulsartest_test

import (
	"encoding/binary"
	"errors"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

func TestInterceptActions(t *testing.T) {
	s := pulsartest.NewServer()
	t.Cleanup(func() { _ = s.Close() })
	c := pipe(t, s)
	c.handshake()

	// Handled: the interceptor answers in the command's own error form.
	s.Intercept(pulsarpb.BaseCommand_LOOKUP, func(call *pulsartest.Call) pulsartest.Action {
		rid, ok := call.RequestID()
		assert.True(t, ok)
		assert.Equal(t, uint64(1), rid)
		assert.Equal(t, "persistent://public/default/t", "persistent://public/default/"+call.Command().GetLookupTopic().GetTopic())
		require.NoError(t, call.ReplyError(pulsarpb.ServerError_ServiceNotReady, "not now"))
		return pulsartest.Handled
	})
	c.send(lookup(1, "t"))
	r := c.expect(pulsarpb.BaseCommand_LOOKUP_RESPONSE).GetLookupTopicResponse()
	assert.Equal(t, pulsarpb.CommandLookupTopicResponse_Failed, r.GetResponse())
	assert.Equal(t, pulsarpb.ServerError_ServiceNotReady, r.GetError())
	assert.Equal(t, uint64(1), r.GetRequestId())

	// One-shot: the next LOOKUP is handled as usual.
	c.send(lookup(2, "t"))
	assert.Equal(t, pulsarpb.CommandLookupTopicResponse_Connect, c.expect(pulsarpb.BaseCommand_LOOKUP_RESPONSE).GetLookupTopicResponse().GetResponse())

	// Drop: never answered (the next answer is the one to request 4).
	s.Intercept(pulsarpb.BaseCommand_LOOKUP, func(*pulsartest.Call) pulsartest.Action { return pulsartest.Drop })
	c.send(lookup(3, "t"))
	c.send(lookup(4, "t"))
	assert.Equal(t, uint64(4), c.expect(pulsarpb.BaseCommand_LOOKUP_RESPONSE).GetLookupTopicResponse().GetRequestId())

	// Pass: the interceptor looks, the server answers.
	seen := make(chan uint64, 1)
	s.Intercept(pulsarpb.BaseCommand_LOOKUP, func(call *pulsartest.Call) pulsartest.Action {
		rid, _ := call.RequestID()
		seen <- rid
		return pulsartest.Pass
	})
	c.send(lookup(5, "t"))
	assert.Equal(t, uint64(5), c.expect(pulsarpb.BaseCommand_LOOKUP_RESPONSE).GetLookupTopicResponse().GetRequestId())
	assert.Equal(t, uint64(5), <-seen)

	// Reply with any command, e.g. a Redirect.
	s.Intercept(pulsarpb.BaseCommand_LOOKUP, func(call *pulsartest.Call) pulsartest.Action {
		rid, _ := call.RequestID()
		_ = call.Reply(&pulsarpb.BaseCommand{
			Type: pulsarpb.BaseCommand_LOOKUP_RESPONSE.Enum(),
			LookupTopicResponse: &pulsarpb.CommandLookupTopicResponse{
				RequestId:        proto.Uint64(rid),
				Response:         pulsarpb.CommandLookupTopicResponse_Redirect.Enum(),
				BrokerServiceUrl: proto.String("pulsar://other:6650"),
				Authoritative:    proto.Bool(true),
			},
		})
		return pulsartest.Handled
	})
	c.send(lookup(6, "t"))
	r = c.expect(pulsarpb.BaseCommand_LOOKUP_RESPONSE).GetLookupTopicResponse()
	assert.Equal(t, pulsarpb.CommandLookupTopicResponse_Redirect, r.GetResponse())
	assert.Equal(t, "pulsar://other:6650", r.GetBrokerServiceUrl())

	// Close: the connection goes, unanswered.
	s.Intercept(pulsarpb.BaseCommand_LOOKUP, func(*pulsartest.Call) pulsartest.Action { return pulsartest.Close })
	c.send(lookup(7, "t"))
	c.expectClosed()
	assert.Equal(t, 7, s.Received(pulsarpb.BaseCommand_LOOKUP), "intercepted commands are counted")
}

func TestInterceptEvery(t *testing.T) {
	s := pulsartest.NewServer()
	t.Cleanup(func() { _ = s.Close() })
	c := pipe(t, s)
	c.handshake()
	stop := s.InterceptEvery(pulsarpb.BaseCommand_PING, func(call *pulsartest.Call) pulsartest.Action {
		_ = call.ReplyError(pulsarpb.ServerError_UnknownError, "no pings here")
		return pulsartest.Handled
	})
	for range 2 {
		c.send(ping())
		e := c.expect(pulsarpb.BaseCommand_ERROR).GetError()
		assert.Equal(t, "no pings here", e.GetMessage())
	}
	stop()
	c.send(ping())
	c.expect(pulsarpb.BaseCommand_PONG)
}

func TestInterceptConnect(t *testing.T) {
	s := pulsartest.NewServer()
	t.Cleanup(func() { _ = s.Close() })
	s.Intercept(pulsarpb.BaseCommand_CONNECT, func(call *pulsartest.Call) pulsartest.Action {
		_ = call.ReplyError(pulsarpb.ServerError_ServiceNotReady, "starting")
		return pulsartest.Close
	})
	c := pipe(t, s)
	c.send(connectCmd())
	// The interceptor's reply may or may not get out before Close: what
	// is certain is that there is no CONNECTED, and the connection ends.
	for {
		_ = c.nc.SetReadDeadline(deadline()) // fails once the pipe is closed
		body, err := c.r.NextBody()
		if err != nil {
			var ne net.Error
			require.False(t, errors.As(err, &ne) && ne.Timeout(), "connection left open")
			break
		}
		cmdSize := binary.BigEndian.Uint32(body)
		var cmd pulsarpb.BaseCommand
		require.NoError(t, proto.Unmarshal(body[4:4+cmdSize], &cmd))
		require.Equal(t, pulsarpb.BaseCommand_ERROR, cmd.GetType())
		assert.Equal(t, pulsarpb.ServerError_ServiceNotReady, cmd.GetError().GetError())
	}
}

func TestHoldReordersAnswers(t *testing.T) {
	s := pulsartest.NewServer()
	t.Cleanup(func() { _ = s.Close() })
	c := pipe(t, s)
	c.handshake()

	h := s.Hold(pulsarpb.BaseCommand_LOOKUP)
	c.send(lookup(1, "t"))
	c.send(lookup(2, "t"))
	// The second request is answered first: the first is held.
	assert.Equal(t, uint64(2), c.expect(pulsarpb.BaseCommand_LOOKUP_RESPONSE).GetLookupTopicResponse().GetRequestId())
	<-h.Arrived()
	rid, _ := h.Call().RequestID()
	assert.Equal(t, uint64(1), rid)
	h.Release()
	assert.Equal(t, uint64(1), c.expect(pulsarpb.BaseCommand_LOOKUP_RESPONSE).GetLookupTopicResponse().GetRequestId())
	h.Release() // idempotent
}

func TestHoldReleasedBeforeArrivalPasses(t *testing.T) {
	s := pulsartest.NewServer()
	t.Cleanup(func() { _ = s.Close() })
	c := pipe(t, s)
	c.handshake()
	h := s.Hold(pulsarpb.BaseCommand_PING)
	h.Release()
	c.send(ping())
	c.expect(pulsarpb.BaseCommand_PONG)
	assert.Nil(t, h.Call())
}

func TestHoldConnectDelaysHandshake(t *testing.T) {
	s := pulsartest.NewServer()
	t.Cleanup(func() { _ = s.Close() })
	h := s.Hold(pulsarpb.BaseCommand_CONNECT)
	c := pipe(t, s)
	c.send(connectCmd())
	<-h.Arrived()
	assert.Equal(t, "pulsartest-test-client", h.Call().Command().GetConnect().GetClientVersion())
	assert.Nil(t, h.Call().Conn().Connect(), "not handled yet")
	h.Release()
	c.expect(pulsarpb.BaseCommand_CONNECTED)
	assert.NotNil(t, h.Call().Conn().Connect())
}

func TestPushes(t *testing.T) {
	s := pulsartest.NewTCP(t)
	c := dial(t, s)
	c.handshake()
	c.send(producerCmd(1, 7, "t", "", pulsarpb.ProducerAccessMode_Shared))
	c.expect(pulsarpb.BaseCommand_PRODUCER_SUCCESS)
	c.send(subscribeCmd(2, 8, "t", "sub", shared, earliest))
	c.expect(pulsarpb.BaseCommand_SUCCESS)

	assert.True(t, s.TopicMigrated(pulsarpb.CommandTopicMigrated_Producer, 7, "pulsar://green:6650", "pulsar+ssl://green:6651"))
	tm := c.expect(pulsarpb.BaseCommand_TOPIC_MIGRATED).GetTopicMigrated()
	assert.Equal(t, uint64(7), tm.GetResourceId())
	assert.Equal(t, pulsarpb.CommandTopicMigrated_Producer, tm.GetResourceType())
	assert.Equal(t, "pulsar://green:6650", tm.GetBrokerServiceUrl())
	assert.Equal(t, "pulsar+ssl://green:6651", tm.GetBrokerServiceUrlTls())
	assert.False(t, s.TopicMigrated(pulsarpb.CommandTopicMigrated_Consumer, 7, "", ""), "no consumer 7")

	assert.True(t, s.ActiveConsumerChange(8, true))
	ac := c.expect(pulsarpb.BaseCommand_ACTIVE_CONSUMER_CHANGE).GetActiveConsumerChange()
	assert.Equal(t, uint64(8), ac.GetConsumerId())
	assert.True(t, ac.GetIsActive())

	assert.True(t, s.ReachedEndOfTopic(8))
	assert.Equal(t, uint64(8), c.expect(pulsarpb.BaseCommand_REACHED_END_OF_TOPIC).GetReachedEndOfTopic().GetConsumerId())

	assert.True(t, s.CloseProducer(7, "pulsar://b2:6650", ""))
	cp := c.expect(pulsarpb.BaseCommand_CLOSE_PRODUCER).GetCloseProducer()
	assert.Equal(t, uint64(7), cp.GetProducerId())
	assert.Equal(t, "pulsar://b2:6650", cp.GetAssignedBrokerServiceUrl())
	assert.Nil(t, cp.AssignedBrokerServiceUrlTls)
	assert.False(t, s.CloseProducer(7, "", ""), "forgotten")

	assert.True(t, s.CloseConsumer(8, "", "pulsar+ssl://b2:6651"))
	cc := c.expect(pulsarpb.BaseCommand_CLOSE_CONSUMER).GetCloseConsumer()
	assert.Equal(t, uint64(8), cc.GetConsumerId())
	assert.Equal(t, "pulsar+ssl://b2:6651", cc.GetAssignedBrokerServiceUrlTls())
	assert.False(t, s.ReachedEndOfTopic(8), "forgotten")

	assert.Equal(t, 1, s.Push(ping()))
	c.expect(pulsarpb.BaseCommand_PING)

	assert.Equal(t, 1, s.SendRaw([]byte{0, 0, 0, 4, 0, 0, 0, 0}))
	require.NoError(t, c.nc.SetReadDeadline(deadline()))
	body, err := c.r.NextBody()
	require.NoError(t, err)
	assert.Equal(t, []byte{0, 0, 0, 0}, body, "raw bytes arrive as written")
}

func TestDropConnections(t *testing.T) {
	s := pulsartest.NewTCP(t)
	a, b := dial(t, s), dial(t, s)
	a.handshake()
	b.handshake()
	require.NoError(t, s.WaitConns(ctx(t), 2))
	s.DropConnections()
	assert.Equal(t, 0, s.Conns())
	a.expectClosed()
	b.expectClosed()

	// The listener stays: clients can come back.
	c := dial(t, s)
	c.handshake()
	require.NoError(t, s.WaitConns(ctx(t), 1))
}

func TestGarbageClosesOnlyThatConnection(t *testing.T) {
	s := pulsartest.NewTCP(t)
	good, bad := dial(t, s), dial(t, s)
	good.handshake()
	bad.handshake()
	bad.raw([]byte{0, 0, 0, 2, 0xde, 0xad}) // total size under the minimum
	bad.expectClosed()

	good.send(ping())
	good.expect(pulsarpb.BaseCommand_PONG)

	bad2 := dial(t, s)
	bad2.handshake()
	bad2.raw([]byte{0, 0, 0, 8, 0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff}) // not a protobuf
	bad2.expectClosed()
	good.send(ping())
	good.expect(pulsarpb.BaseCommand_PONG)
}

func TestUnknownCommandsAreIgnored(t *testing.T) {
	s := pulsartest.NewServer()
	t.Cleanup(func() { _ = s.Close() })
	c := pipe(t, s)
	c.handshake()

	// A type this schema does not know (99), as a newer client might send.
	cmd := protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 99)
	b := binary.BigEndian.AppendUint32(nil, uint32(4+len(cmd)))
	b = binary.BigEndian.AppendUint32(b, uint32(len(cmd)))
	c.raw(append(b, cmd...))
	// A type the fake does not serve (transactions; this schema has no
	// body for it).
	c.send(&pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_NEW_TXN.Enum()})

	c.send(ping())
	c.expect(pulsarpb.BaseCommand_PONG)
	assert.Equal(t, 1, s.Received(pulsarpb.BaseCommand_Type(99)))
	assert.Equal(t, 1, s.Received(pulsarpb.BaseCommand_NEW_TXN))
}

func TestServeSeveralListenersAndClose(t *testing.T) {
	s := pulsartest.NewServer()
	l1, l2 := listen(t), listen(t)
	done := make(chan error, 2)
	go func() { done <- s.Serve(l1) }()
	go func() { done <- s.Serve(l2) }()

	for _, addr := range []string{l1.Addr().String(), l2.Addr().String()} {
		c := dialAddr(t, addr)
		c.handshake()
	}
	require.NoError(t, s.WaitConns(ctx(t), 2))
	require.NoError(t, s.WaitReceived(ctx(t), pulsarpb.BaseCommand_CONNECT, 2))
	require.NoError(t, s.Close())
	assert.ErrorIs(t, <-done, pulsartest.ErrServerClosed)
	assert.ErrorIs(t, <-done, pulsartest.ErrServerClosed)
	assert.Equal(t, 0, s.Conns())
	assert.ErrorIs(t, s.Serve(listen(t)), pulsartest.ErrServerClosed)
	require.NoError(t, s.Close(), "idempotent")
}
