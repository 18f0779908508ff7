package pulsartest_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

func TestFramesLogBothDirections(t *testing.T) {
	s := pulsartest.NewServer()
	t.Cleanup(func() { _ = s.Close() })
	c := pipe(t, s)
	c.handshake()
	c.send(lookup(1, "t"))
	c.expect(pulsarpb.BaseCommand_LOOKUP_RESPONSE)

	recs := s.Frames()
	require.Len(t, recs, 4)
	want := []struct {
		dir pulsartest.Direction
		typ pulsarpb.BaseCommand_Type
	}{
		{pulsartest.In, pulsarpb.BaseCommand_CONNECT},
		{pulsartest.Out, pulsarpb.BaseCommand_CONNECTED},
		{pulsartest.In, pulsarpb.BaseCommand_LOOKUP},
		{pulsartest.Out, pulsarpb.BaseCommand_LOOKUP_RESPONSE},
	}
	for i, w := range want {
		assert.Equal(t, uint64(i+1), recs[i].Seq)
		assert.Equal(t, w.dir, recs[i].Dir, i)
		assert.Equal(t, w.typ, recs[i].Type, i)
		assert.Equal(t, uint64(1), recs[i].Conn)
	}
	assert.Equal(t, uint64(1), recs[3].Command.GetLookupTopicResponse().GetRequestId())
	assert.Equal(t, "in", pulsartest.In.String())
	assert.Equal(t, "out", pulsartest.Out.String())
}

func TestWaitFrameSeesPastAndFutureFrames(t *testing.T) {
	s := pulsartest.NewServer()
	t.Cleanup(func() { _ = s.Close() })
	c := pipe(t, s)
	c.handshake()

	r, err := s.WaitFrame(ctx(t), pulsartest.FrameOf(pulsartest.Out, pulsarpb.BaseCommand_CONNECTED))
	require.NoError(t, err)
	assert.Equal(t, uint64(2), r.Seq)

	got := make(chan pulsartest.FrameRecord, 1)
	go func() {
		r, err := s.WaitFrame(ctx(t), func(r pulsartest.FrameRecord) bool {
			return r.Dir == pulsartest.In && r.Type == pulsarpb.BaseCommand_LOOKUP && r.Command.GetLookupTopic().GetRequestId() == 42
		})
		if err == nil {
			got <- r
		}
		close(got)
	}()
	c.send(lookup(41, "t"))
	c.expect(pulsarpb.BaseCommand_LOOKUP_RESPONSE)
	c.send(lookup(42, "t"))
	c.expect(pulsarpb.BaseCommand_LOOKUP_RESPONSE)
	r, ok := <-got
	require.True(t, ok)
	assert.Equal(t, uint64(42), r.Command.GetLookupTopic().GetRequestId())

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = s.WaitFrame(cancelled, func(pulsartest.FrameRecord) bool { return false })
	require.ErrorIs(t, err, context.Canceled)
}

func TestRecordLimit(t *testing.T) {
	s := pulsartest.NewServer(pulsartest.WithRecordLimit(3))
	t.Cleanup(func() { _ = s.Close() })
	c := pipe(t, s)
	c.handshake()
	for range 10 {
		c.send(ping())
		c.expect(pulsarpb.BaseCommand_PONG)
	}
	recs := s.Frames()
	require.Len(t, recs, 3)
	assert.Equal(t, uint64(22), recs[2].Seq)

	off := pulsartest.NewServer(pulsartest.WithRecordLimit(0))
	t.Cleanup(func() { _ = off.Close() })
	pipe(t, off).handshake()
	assert.Empty(t, off.Frames())
}

func TestDeliveriesAcksAndSubscriptionState(t *testing.T) {
	s := pulsartest.NewServer()
	t.Cleanup(func() { _ = s.Close() })
	publish(s, "t", "m0", "m1", "m2")
	c := pipe(t, s)
	c.handshake()
	c.send(subscribeCmd(1, 4, "t", "sub", shared, earliest))
	c.expect(pulsarpb.BaseCommand_SUCCESS)
	require.NoError(t, s.WaitSubscribers(ctx(t), "t", "sub", 1))

	st, ok := s.Subscription("t", "sub")
	require.True(t, ok)
	assert.Equal(t, "persistent://public/default/t", st.Topic)
	assert.Equal(t, shared, st.Type)
	assert.True(t, st.Durable)
	assert.Equal(t, int64(-1), st.MarkDelete)
	assert.Equal(t, 3, st.Backlog)
	require.Len(t, st.Consumers, 1)
	assert.Equal(t, uint64(4), st.Consumers[0].ID)
	assert.Equal(t, int64(0), st.Consumers[0].Permits)

	c.send(flow(4, 5))
	for range 3 {
		c.expectMessage()
	}
	c.send(ackCmd(4, pulsarpb.CommandAck_Individual, nil, 1))
	require.NoError(t, s.WaitSubscription(ctx(t), "t", "sub", func(st pulsartest.SubscriptionState) bool {
		return len(st.Acked) == 1
	}))
	c.send(&pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_REDELIVER_UNACKNOWLEDGED_MESSAGES.Enum(),
		RedeliverUnacknowledgedMessages: &pulsarpb.CommandRedeliverUnacknowledgedMessages{
			ConsumerId: ptr(uint64(4)),
		},
	})
	c.expectMessage()
	c.expectMessage()

	d := s.Deliveries("t", "sub")
	require.Len(t, d, 5)
	assert.Equal(t, []uint64{0, 1, 2, 0, 2}, entryIDs(d))
	assert.Equal(t, uint32(0), d[0].RedeliveryCount)
	assert.Equal(t, uint32(1), d[3].RedeliveryCount)
	assert.Equal(t, uint64(4), d[0].Consumer)

	acks := s.Acks("persistent://public/default/t", "sub")
	require.Len(t, acks, 1)
	assert.Equal(t, pulsarpb.CommandAck_Individual, acks[0].Type)
	assert.Equal(t, uint64(1), acks[0].MessageIDs[0].GetEntryId())
	require.Len(t, s.Redeliveries("t", "sub"), 1)

	st, _ = s.Subscription("t", "sub")
	assert.Equal(t, uint64(3), st.ReadPosition)
	assert.Equal(t, []uint64{1}, st.Acked)
	assert.Equal(t, []uint64{0, 2}, st.Unacked)
	assert.Equal(t, 2, st.Backlog)
	assert.Equal(t, int64(0), st.Consumers[0].Permits)
	assert.Equal(t, 2, st.Consumers[0].Unacked)

	c.send(ackCmd(4, pulsarpb.CommandAck_Cumulative, nil, 2))
	require.NoError(t, s.WaitSubscription(ctx(t), "t", "sub", func(st pulsartest.SubscriptionState) bool {
		return st.MarkDelete == 2 && st.Backlog == 0
	}))

	_ = c.nc.Close()
	require.NoError(t, s.WaitSubscribers(ctx(t), "t", "sub", 0))
	_, ok = s.Subscription("t", "nope")
	assert.False(t, ok)
	assert.Nil(t, s.Deliveries("t", "nope"))
}

func ptr[T any](v T) *T { return &v }

func entryIDs(ds []pulsartest.Delivery) []uint64 {
	out := make([]uint64, len(ds))
	for i, d := range ds {
		out[i] = d.EntryID
	}
	return out
}

func TestAutoCreateTopicsOff(t *testing.T) {
	s := pulsartest.NewServer(
		pulsartest.WithAutoCreateTopics(false),
		pulsartest.WithTopics("known"),
		pulsartest.WithPartitionedTopic("parted", 2),
	)
	t.Cleanup(func() { _ = s.Close() })
	c := pipe(t, s)
	c.handshake()

	c.send(lookup(1, "unknown"))
	r := c.expect(pulsarpb.BaseCommand_LOOKUP_RESPONSE).GetLookupTopicResponse()
	assert.Equal(t, pulsarpb.CommandLookupTopicResponse_Failed, r.GetResponse())
	assert.Equal(t, pulsarpb.ServerError_TopicNotFound, r.GetError())
	c.send(producerCmd(2, 1, "unknown", "", pulsarpb.ProducerAccessMode_Shared))
	e := c.expect(pulsarpb.BaseCommand_ERROR).GetError()
	assert.Equal(t, uint64(2), e.GetRequestId())
	assert.Equal(t, pulsarpb.ServerError_TopicNotFound, e.GetError())
	c.send(subscribeCmd(3, 1, "unknown", "s", exclusive, earliest))
	assert.Equal(t, pulsarpb.ServerError_TopicNotFound, c.expect(pulsarpb.BaseCommand_ERROR).GetError().GetError())

	for i, topic := range []string{"known", "parted", "parted-partition-1"} {
		c.send(lookup(uint64(10+i), topic))
		assert.Equal(t, pulsarpb.CommandLookupTopicResponse_Connect,
			c.expect(pulsarpb.BaseCommand_LOOKUP_RESPONSE).GetLookupTopicResponse().GetResponse(), topic)
	}
	c.send(producerCmd(20, 1, "known", "", pulsarpb.ProducerAccessMode_Shared))
	c.expect(pulsarpb.BaseCommand_PRODUCER_SUCCESS)
	c.send(producerCmd(21, 2, "parted-partition-1", "", pulsarpb.ProducerAccessMode_Shared))
	c.expect(pulsarpb.BaseCommand_PRODUCER_SUCCESS)
	c.send(producerCmd(22, 3, "parted-partition-2", "", pulsarpb.ProducerAccessMode_Shared))
	assert.Equal(t, pulsarpb.ServerError_TopicNotFound, c.expect(pulsarpb.BaseCommand_ERROR).GetError().GetError())

	c.send(&pulsarpb.BaseCommand{
		Type:              pulsarpb.BaseCommand_PARTITIONED_METADATA.Enum(),
		PartitionMetadata: &pulsarpb.CommandPartitionedTopicMetadata{Topic: ptr("parted"), RequestId: ptr(uint64(30))},
	})
	assert.Equal(t, uint32(2), c.expect(pulsarpb.BaseCommand_PARTITIONED_METADATA_RESPONSE).GetPartitionMetadataResponse().GetPartitions())
}

func TestDialHook(t *testing.T) {
	s := pulsartest.NewServer()
	dial := s.DialHook()
	nc, err := dial(ctx(t), "anything:6650")
	require.NoError(t, err)
	c := &client{t: t, nc: nc, r: frame.NewReader(nc, 0)}
	c.handshake()
	require.NoError(t, s.WaitConns(ctx(t), 1))
	require.NoError(t, s.Close())
	c.expectClosed()
	_, err = dial(ctx(t), "anything:6650")
	require.ErrorIs(t, err, pulsartest.ErrServerClosed)
}

func TestPublishToUnknownTopicStillWorksWithoutAutoCreate(t *testing.T) {
	s := pulsartest.NewServer(pulsartest.WithAutoCreateTopics(false))
	t.Cleanup(func() { _ = s.Close() })
	publish(s, "back-door", "m")
	c := pipe(t, s)
	c.handshake()
	c.send(producerCmd(1, 1, "back-door", "", pulsarpb.ProducerAccessMode_Shared))
	c.expect(pulsarpb.BaseCommand_PRODUCER_SUCCESS)
}

func TestWithFrameObserver(t *testing.T) {
	var mu sync.Mutex
	var seen []pulsartest.FrameRecord
	s := pulsartest.NewServer(pulsartest.WithRecordLimit(0), pulsartest.WithFrameObserver(func(r pulsartest.FrameRecord) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, r)
	}))
	t.Cleanup(func() { _ = s.Close() })
	c := pipe(t, s)
	c.handshake()
	c.send(lookup(7, "t"))
	c.expect(pulsarpb.BaseCommand_LOOKUP_RESPONSE)

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, seen, 4)
	want := []struct {
		dir pulsartest.Direction
		typ pulsarpb.BaseCommand_Type
	}{
		{pulsartest.In, pulsarpb.BaseCommand_CONNECT},
		{pulsartest.Out, pulsarpb.BaseCommand_CONNECTED},
		{pulsartest.In, pulsarpb.BaseCommand_LOOKUP},
		{pulsartest.Out, pulsarpb.BaseCommand_LOOKUP_RESPONSE},
	}
	for i, w := range want {
		assert.Equal(t, w.dir, seen[i].Dir, "record %d", i)
		assert.Equal(t, w.typ, seen[i].Type, "record %d", i)
		assert.Equal(t, w.typ, seen[i].Command.GetType(), "record %d: command decoded", i)
		assert.Equal(t, uint64(i+1), seen[i].Seq)
	}
	assert.Equal(t, uint64(7), seen[3].Command.GetLookupTopicResponse().GetRequestId())
	assert.Empty(t, s.Frames(), "WithRecordLimit(0) keeps nothing")
}
