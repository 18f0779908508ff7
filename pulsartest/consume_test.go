package pulsartest_test

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

const (
	exclusive = pulsarpb.CommandSubscribe_Exclusive
	shared    = pulsarpb.CommandSubscribe_Shared
	failover  = pulsarpb.CommandSubscribe_Failover
	earliest  = pulsarpb.CommandSubscribe_Earliest
	latest    = pulsarpb.CommandSubscribe_Latest
)

// expectMessage reads a MESSAGE, checks its checksum by hand on the raw
// frame, and returns the command and the payload.
func (c *client) expectMessage() (*pulsarpb.CommandMessage, string) {
	c.t.Helper()
	f := c.next()
	require.Equal(c.t, pulsarpb.BaseCommand_MESSAGE, f.Command.GetType(), "got %v", f.Command)
	// [cmd size][cmd][0x0e01][crc32c][md size][md][payload]
	cmdSize := binary.BigEndian.Uint32(c.body)
	rest := c.body[4+cmdSize:]
	require.Equal(c.t, frame.MagicChecksum, binary.BigEndian.Uint16(rest))
	assert.Equal(c.t, binary.BigEndian.Uint32(rest[2:]), frame.Checksum(rest[6:]), "CRC32C over metadata size, metadata and payload")
	return f.Command.GetMessage(), string(f.Payload.Data)
}

func TestSubscribeFlowDeliversMessages(t *testing.T) {
	s := pulsartest.NewTCP(t)
	publish(s, "orders", "m0", "m1")
	stored := s.Stored("orders")

	c := dial(t, s)
	c.handshake()
	c.send(subscribeCmd(1, 5, "orders", "sub", exclusive, earliest))
	assert.Equal(t, uint64(1), c.expect(pulsarpb.BaseCommand_SUCCESS).GetSuccess().GetRequestId())

	c.send(flow(5, 1))
	m, payload := c.expectMessage()
	assert.Equal(t, "m0", payload)
	assert.Equal(t, uint64(5), m.GetConsumerId())
	assert.Equal(t, stored[0].LedgerID, m.GetMessageId().GetLedgerId())
	assert.Equal(t, uint64(0), m.GetMessageId().GetEntryId())
	assert.Equal(t, int32(-1), m.GetMessageId().GetPartition())
	assert.Equal(t, stored[0].Metadata, c.lastPayloadMetadata())

	// One permit, one message: the next comes with more permits, and a
	// message stored later is pushed while permits last.
	c.send(flow(5, 5))
	_, payload = c.expectMessage()
	assert.Equal(t, "m1", payload)
	publish(s, "orders", "m2")
	_, payload = c.expectMessage()
	assert.Equal(t, "m2", payload)
}

func (c *client) lastPayloadMetadata() []byte {
	f, err := frame.Parse(c.body)
	require.NoError(c.t, err)
	return f.Payload.Metadata
}

func TestSubscribeLatestStartsAtTheEnd(t *testing.T) {
	s := pulsartest.NewServer()
	t.Cleanup(func() { _ = s.Close() })
	publish(s, "t", "old")
	c := pipe(t, s)
	c.handshake()
	c.send(subscribeCmd(1, 1, "t", "sub", exclusive, latest))
	c.expect(pulsarpb.BaseCommand_SUCCESS)
	c.send(flow(1, 10))

	c.send(producerCmd(2, 1, "t", "", pulsarpb.ProducerAccessMode_Shared))
	c.expect(pulsarpb.BaseCommand_PRODUCER_SUCCESS)
	b, _ := sendFrame(t, 1, 0, "new")
	c.raw(b)
	// Receipt and delivery are both queued while SEND is handled.
	c.expect(pulsarpb.BaseCommand_SEND_RECEIPT)
	m, payload := c.expectMessage()
	assert.Equal(t, "new", payload)
	assert.Equal(t, uint64(1), m.GetMessageId().GetEntryId())
}

func TestAckAndRedelivery(t *testing.T) {
	s := pulsartest.NewServer()
	t.Cleanup(func() { _ = s.Close() })
	publish(s, "t", "m0", "m1", "m2")
	c := pipe(t, s)
	c.handshake()
	c.send(subscribeCmd(1, 1, "t", "sub", exclusive, earliest))
	c.expect(pulsarpb.BaseCommand_SUCCESS)
	c.send(flow(1, 3))
	for range 3 {
		c.expectMessage()
	}

	// ACK with a request id is answered; without one it is not.
	c.send(ackCmd(1, pulsarpb.CommandAck_Individual, nil, 0))
	c.send(ackCmd(1, pulsarpb.CommandAck_Individual, proto.Uint64(2), 2))
	r := c.expect(pulsarpb.BaseCommand_ACK_RESPONSE).GetAckResponse()
	assert.Equal(t, uint64(2), r.GetRequestId())
	assert.Equal(t, uint64(1), r.GetConsumerId())
	assert.Empty(t, r.GetMessage(), "success")

	// Only m1 is unacked: it comes again once there are permits, without a
	// redelivery count: a broker keeps none on an Exclusive subscription.
	c.send(&pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_REDELIVER_UNACKNOWLEDGED_MESSAGES.Enum(),
		RedeliverUnacknowledgedMessages: &pulsarpb.CommandRedeliverUnacknowledgedMessages{
			ConsumerId: proto.Uint64(1),
		},
	})
	c.send(flow(1, 5))
	m, payload := c.expectMessage()
	assert.Equal(t, "m1", payload)
	assert.Nil(t, m.RedeliveryCount, "redelivery_count on an Exclusive subscription")

	// GET_LAST_MESSAGE_ID: the last entry, and the cursor's mark-delete
	// position (m0 acked, m1 not).
	c.send(&pulsarpb.BaseCommand{
		Type:             pulsarpb.BaseCommand_GET_LAST_MESSAGE_ID.Enum(),
		GetLastMessageId: &pulsarpb.CommandGetLastMessageId{ConsumerId: proto.Uint64(1), RequestId: proto.Uint64(3)},
	})
	last := c.expect(pulsarpb.BaseCommand_GET_LAST_MESSAGE_ID_RESPONSE).GetGetLastMessageIdResponse()
	assert.Equal(t, uint64(3), last.GetRequestId())
	assert.Equal(t, uint64(2), last.GetLastMessageId().GetEntryId())
	assert.Equal(t, uint64(0), last.GetConsumerMarkDeletePosition().GetEntryId())

	// A cumulative ack of m2 covers m1.
	c.send(ackCmd(1, pulsarpb.CommandAck_Cumulative, proto.Uint64(4), 2))
	c.expect(pulsarpb.BaseCommand_ACK_RESPONSE)
	c.send(&pulsarpb.BaseCommand{
		Type:             pulsarpb.BaseCommand_GET_LAST_MESSAGE_ID.Enum(),
		GetLastMessageId: &pulsarpb.CommandGetLastMessageId{ConsumerId: proto.Uint64(1), RequestId: proto.Uint64(5)},
	})
	last = c.expect(pulsarpb.BaseCommand_GET_LAST_MESSAGE_ID_RESPONSE).GetGetLastMessageIdResponse()
	assert.Equal(t, uint64(2), last.GetConsumerMarkDeletePosition().GetEntryId())
}

func TestAckForUnknownConsumer(t *testing.T) {
	s := pulsartest.NewServer()
	t.Cleanup(func() { _ = s.Close() })
	c := pipe(t, s)
	c.handshake()
	// A broker ignores it, request id or not (internal/fidelity
	// error-ack-unknown-consumer): the next frame is the PONG.
	c.send(ackCmd(42, pulsarpb.CommandAck_Individual, proto.Uint64(1), 0))
	c.send(&pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_PING.Enum(), Ping: &pulsarpb.CommandPing{}})
	c.expect(pulsarpb.BaseCommand_PONG)
}

func TestSharedSubscriptionRoundRobin(t *testing.T) {
	s := pulsartest.NewServer()
	t.Cleanup(func() { _ = s.Close() })
	a, b := pipe(t, s), pipe(t, s)
	for _, c := range []*client{a, b} {
		c.handshake()
		c.send(subscribeCmd(1, 1, "t", "sub", shared, earliest))
		c.expect(pulsarpb.BaseCommand_SUCCESS)
		c.send(flow(1, 10))
	}
	// FLOW is handled once the server read it; a round trip makes sure.
	for _, c := range []*client{a, b} {
		c.send(ping())
		c.expect(pulsarpb.BaseCommand_PONG)
	}
	publish(s, "t", "m0", "m1", "m2", "m3")
	_, p0 := a.expectMessage()
	_, p1 := b.expectMessage()
	_, p2 := a.expectMessage()
	_, p3 := b.expectMessage()
	assert.Equal(t, []string{"m0", "m1", "m2", "m3"}, []string{p0, p1, p2, p3})
}

func TestExclusiveSubscriptionIsBusy(t *testing.T) {
	s := pulsartest.NewServer()
	t.Cleanup(func() { _ = s.Close() })
	c := pipe(t, s)
	c.handshake()
	c.send(subscribeCmd(1, 1, "t", "sub", exclusive, earliest))
	c.expect(pulsarpb.BaseCommand_SUCCESS)
	c.send(subscribeCmd(2, 2, "t", "sub", exclusive, earliest))
	e := c.expect(pulsarpb.BaseCommand_ERROR).GetError()
	assert.Equal(t, uint64(2), e.GetRequestId())
	assert.Equal(t, pulsarpb.ServerError_ConsumerBusy, e.GetError())
	c.send(subscribeCmd(3, 3, "t", "sub", shared, earliest))
	assert.Equal(t, pulsarpb.ServerError_ConsumerBusy, c.expect(pulsarpb.BaseCommand_ERROR).GetError().GetError())
}

func TestFailoverActiveConsumer(t *testing.T) {
	// Without the failover delay (failover_test.go has it).
	s := pulsartest.NewServer(pulsartest.WithActiveConsumerFailoverDelay(0))
	t.Cleanup(func() { _ = s.Close() })
	publish(s, "t", "m0")
	c := pipe(t, s)
	c.handshake()
	c.send(subscribeCmd(1, 1, "t", "sub", failover, earliest))
	c.expect(pulsarpb.BaseCommand_SUCCESS)
	assert.True(t, c.expect(pulsarpb.BaseCommand_ACTIVE_CONSUMER_CHANGE).GetActiveConsumerChange().GetIsActive())
	c.send(subscribeCmd(2, 2, "t", "sub", failover, earliest))
	// The active consumer stays: the new one is told at once, before the
	// SUCCESS, as a broker does.
	ac := c.expect(pulsarpb.BaseCommand_ACTIVE_CONSUMER_CHANGE).GetActiveConsumerChange()
	assert.Equal(t, uint64(2), ac.GetConsumerId())
	assert.False(t, ac.GetIsActive())
	c.expect(pulsarpb.BaseCommand_SUCCESS)

	c.send(flow(2, 10))
	c.send(flow(1, 10))
	m, _ := c.expectMessage()
	assert.Equal(t, uint64(1), m.GetConsumerId(), "only the active consumer gets messages")

	// The active consumer leaves: the other becomes active and gets the
	// unacked message again.
	c.send(&pulsarpb.BaseCommand{
		Type:          pulsarpb.BaseCommand_CLOSE_CONSUMER.Enum(),
		CloseConsumer: &pulsarpb.CommandCloseConsumer{ConsumerId: proto.Uint64(1), RequestId: proto.Uint64(3)},
	})
	assert.Equal(t, uint64(3), c.expect(pulsarpb.BaseCommand_SUCCESS).GetSuccess().GetRequestId())
	ac = c.expect(pulsarpb.BaseCommand_ACTIVE_CONSUMER_CHANGE).GetActiveConsumerChange()
	assert.Equal(t, uint64(2), ac.GetConsumerId())
	assert.True(t, ac.GetIsActive())
	m, payload := c.expectMessage()
	assert.Equal(t, uint64(2), m.GetConsumerId())
	assert.Equal(t, "m0", payload)
}

func TestSeekDisconnectsConsumersAndResetsCursor(t *testing.T) {
	s := pulsartest.NewServer()
	t.Cleanup(func() { _ = s.Close() })
	publish(s, "t", "m0", "m1", "m2")
	c := pipe(t, s)
	c.handshake()
	c.send(subscribeCmd(1, 1, "t", "sub", exclusive, earliest))
	c.expect(pulsarpb.BaseCommand_SUCCESS)
	c.send(flow(1, 10))
	for range 3 {
		c.expectMessage()
	}
	c.send(ackCmd(1, pulsarpb.CommandAck_Cumulative, nil, 2))

	c.send(&pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_SEEK.Enum(),
		Seek: &pulsarpb.CommandSeek{
			ConsumerId: proto.Uint64(1),
			RequestId:  proto.Uint64(2),
			MessageId:  &pulsarpb.MessageIdData{LedgerId: proto.Uint64(s.Stored("t")[1].LedgerID), EntryId: proto.Uint64(1)},
		},
	})
	// As a broker does: the consumers are disconnected, then SEEK succeeds.
	cc := c.expect(pulsarpb.BaseCommand_CLOSE_CONSUMER).GetCloseConsumer()
	assert.Equal(t, uint64(1), cc.GetConsumerId())
	assert.Equal(t, uint64(2), c.expect(pulsarpb.BaseCommand_SUCCESS).GetSuccess().GetRequestId())

	c.send(subscribeCmd(3, 1, "t", "sub", exclusive, earliest))
	c.expect(pulsarpb.BaseCommand_SUCCESS)
	c.send(flow(1, 10))
	_, payload := c.expectMessage()
	assert.Equal(t, "m1", payload)
	_, payload = c.expectMessage()
	assert.Equal(t, "m2", payload)
}

func TestSeekByPublishTime(t *testing.T) {
	s := pulsartest.NewServer()
	t.Cleanup(func() { _ = s.Close() })
	publish(s, "t", "m0", "m1", "m2") // published at base+0, +1, +2
	c := pipe(t, s)
	c.handshake()
	c.send(subscribeCmd(1, 1, "t", "sub", exclusive, latest))
	c.expect(pulsarpb.BaseCommand_SUCCESS)
	c.send(&pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_SEEK.Enum(),
		Seek: &pulsarpb.CommandSeek{
			ConsumerId:         proto.Uint64(1),
			RequestId:          proto.Uint64(2),
			MessagePublishTime: proto.Uint64(1_700_000_000_002),
		},
	})
	c.expect(pulsarpb.BaseCommand_CLOSE_CONSUMER)
	c.expect(pulsarpb.BaseCommand_SUCCESS)
	c.send(subscribeCmd(3, 1, "t", "sub", exclusive, latest))
	c.expect(pulsarpb.BaseCommand_SUCCESS)
	c.send(flow(1, 10))
	_, payload := c.expectMessage()
	assert.Equal(t, "m2", payload)
}

func TestUnsubscribe(t *testing.T) {
	s := pulsartest.NewServer()
	t.Cleanup(func() { _ = s.Close() })
	publish(s, "t", "m0")
	c := pipe(t, s)
	c.handshake()
	c.send(subscribeCmd(1, 1, "t", "sub", shared, earliest))
	c.expect(pulsarpb.BaseCommand_SUCCESS)
	c.send(subscribeCmd(2, 2, "t", "sub", shared, earliest))
	c.expect(pulsarpb.BaseCommand_SUCCESS)

	unsub := func(rid uint64, force bool) {
		c.send(&pulsarpb.BaseCommand{
			Type: pulsarpb.BaseCommand_UNSUBSCRIBE.Enum(),
			Unsubscribe: &pulsarpb.CommandUnsubscribe{
				ConsumerId: proto.Uint64(1), RequestId: proto.Uint64(rid), Force: proto.Bool(force),
			},
		})
	}
	unsub(3, false) // another consumer is attached
	assert.Equal(t, pulsarpb.ServerError_MetadataError, c.expect(pulsarpb.BaseCommand_ERROR).GetError().GetError())
	unsub(4, true)
	assert.Equal(t, uint64(2), c.expect(pulsarpb.BaseCommand_CLOSE_CONSUMER).GetCloseConsumer().GetConsumerId())
	assert.Equal(t, uint64(4), c.expect(pulsarpb.BaseCommand_SUCCESS).GetSuccess().GetRequestId())

	// The subscription is gone: subscribing again at Latest sees nothing
	// old.
	c.send(subscribeCmd(5, 3, "t", "sub", shared, latest))
	c.expect(pulsarpb.BaseCommand_SUCCESS)
	c.send(flow(3, 10))
	publish(s, "t", "m1")
	_, payload := c.expectMessage()
	assert.Equal(t, "m1", payload)
}

func TestSubscribeErrors(t *testing.T) {
	s := pulsartest.NewServer()
	t.Cleanup(func() { _ = s.Close() })
	c := pipe(t, s)
	c.handshake()
	c.send(subscribeCmd(1, 1, "", "sub", exclusive, earliest))
	assert.Equal(t, pulsarpb.ServerError_InvalidTopicName, c.expect(pulsarpb.BaseCommand_ERROR).GetError().GetError())

	cmd := subscribeCmd(2, 1, "missing", "sub", exclusive, earliest)
	cmd.Subscribe.ForceTopicCreation = proto.Bool(false)
	c.send(cmd)
	assert.Equal(t, pulsarpb.ServerError_TopicNotFound, c.expect(pulsarpb.BaseCommand_ERROR).GetError().GetError())
}

func TestBatchTakesPermitsPerMessage(t *testing.T) {
	s := pulsartest.NewServer()
	t.Cleanup(func() { _ = s.Close() })
	md, err := proto.Marshal(&pulsarpb.MessageMetadata{
		ProducerName: proto.String("p"), SequenceId: proto.Uint64(0), PublishTime: proto.Uint64(1),
		NumMessagesInBatch: proto.Int32(3),
	})
	require.NoError(t, err)
	s.Publish("t", md, []byte("batch-of-3"))
	publish(s, "t", "single")

	c := pipe(t, s)
	c.handshake()
	c.send(subscribeCmd(1, 1, "t", "sub", exclusive, earliest))
	c.expect(pulsarpb.BaseCommand_SUCCESS)
	c.send(flow(1, 3))
	_, payload := c.expectMessage()
	assert.Equal(t, "batch-of-3", payload)
	// The batch used the 3 permits: the next message waits for more.
	c.send(ping())
	c.expect(pulsarpb.BaseCommand_PONG)
	c.send(flow(1, 1))
	_, payload = c.expectMessage()
	assert.Equal(t, "single", payload)

	c.send(&pulsarpb.BaseCommand{
		Type:             pulsarpb.BaseCommand_GET_LAST_MESSAGE_ID.Enum(),
		GetLastMessageId: &pulsarpb.CommandGetLastMessageId{ConsumerId: proto.Uint64(1), RequestId: proto.Uint64(2)},
	})
	last := c.expect(pulsarpb.BaseCommand_GET_LAST_MESSAGE_ID_RESPONSE).GetGetLastMessageIdResponse().GetLastMessageId()
	assert.Equal(t, uint64(1), last.GetEntryId())
	assert.Equal(t, int32(-1), last.GetBatchIndex())
}

func TestBrokerEntryMetadata(t *testing.T) {
	s := pulsartest.NewServer(pulsartest.WithBrokerEntryMetadata())
	t.Cleanup(func() { _ = s.Close() })
	publish(s, "t", "m0", "m1")
	c := pipe(t, s)
	c.handshake(func(cc *pulsarpb.CommandConnect) {
		cc.FeatureFlags.SupportsBrokerEntryMetadata = proto.Bool(true)
	})
	c.send(subscribeCmd(1, 1, "t", "sub", exclusive, earliest))
	c.expect(pulsarpb.BaseCommand_SUCCESS)
	c.send(flow(1, 2))
	for i := range 2 {
		f := c.next()
		require.Equal(t, pulsarpb.BaseCommand_MESSAGE, f.Command.GetType())
		require.True(t, f.Payload.HasChecksum)
		assert.True(t, f.Payload.ChecksumOK)
		bem, err := f.Payload.DecodeBrokerEntryMetadata()
		require.NoError(t, err)
		require.NotNil(t, bem)
		assert.Equal(t, uint64(i), bem.GetIndex())
		assert.NotZero(t, bem.GetBrokerTimestamp())
	}
}

func TestEmptyTopicLastMessageID(t *testing.T) {
	s := pulsartest.NewServer()
	t.Cleanup(func() { _ = s.Close() })
	c := pipe(t, s)
	c.handshake()
	c.send(subscribeCmd(1, 1, "t", "sub", exclusive, earliest))
	c.expect(pulsarpb.BaseCommand_SUCCESS)
	c.send(&pulsarpb.BaseCommand{
		Type:             pulsarpb.BaseCommand_GET_LAST_MESSAGE_ID.Enum(),
		GetLastMessageId: &pulsarpb.CommandGetLastMessageId{ConsumerId: proto.Uint64(1), RequestId: proto.Uint64(2)},
	})
	last := c.expect(pulsarpb.BaseCommand_GET_LAST_MESSAGE_ID_RESPONSE).GetGetLastMessageIdResponse().GetLastMessageId()
	assert.Equal(t, int64(-1), int64(last.GetEntryId()), "entry -1: nothing stored")
}

func TestBacklogFollowsAcks(t *testing.T) {
	s := pulsartest.NewServer()
	t.Cleanup(func() { _ = s.Close() })
	publish(s, "t", "m0", "m1", "m2")
	c := pipe(t, s)
	c.handshake()
	c.send(subscribeCmd(1, 1, "t", "sub", shared, earliest))
	c.expect(pulsarpb.BaseCommand_SUCCESS)
	n, ok := s.Backlog("t", "sub")
	require.True(t, ok)
	assert.Equal(t, 3, n)

	c.send(ackCmd(1, pulsarpb.CommandAck_Individual, nil, 1))
	require.NoError(t, s.WaitReceived(ctx(t), pulsarpb.BaseCommand_ACK, 1))
	n, _ = s.Backlog("t", "sub")
	assert.Equal(t, 2, n)

	_, ok = s.Backlog("t", "nope")
	assert.False(t, ok)
}

func TestUnackedMessagesGoToAnotherConsumerWhenAConnectionDrops(t *testing.T) {
	s := pulsartest.NewServer()
	t.Cleanup(func() { _ = s.Close() })
	publish(s, "t", "m0", "m1")
	a, b := pipe(t, s), pipe(t, s)
	a.handshake()
	b.handshake()
	a.send(subscribeCmd(1, 1, "t", "sub", shared, earliest))
	a.expect(pulsarpb.BaseCommand_SUCCESS)
	a.send(flow(1, 10))
	a.expectMessage()
	a.expectMessage()

	b.send(subscribeCmd(1, 1, "t", "sub", shared, earliest))
	b.expect(pulsarpb.BaseCommand_SUCCESS)
	b.send(flow(1, 10))
	b.send(ping())
	b.expect(pulsarpb.BaseCommand_PONG) // nothing for b: all is pending on a

	require.NoError(t, a.nc.Close())
	m, payload := b.expectMessage()
	assert.Equal(t, "m0", payload)
	assert.Nil(t, m.RedeliveryCount, "a consumer going away is no redelivery, as on a broker")
	_, payload = b.expectMessage()
	assert.Equal(t, "m1", payload)
}
