package pulsartest_test

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/adapters/memory"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

var delayT0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// delayedServer is a server on a fake clock at delayT0.
func delayedServer(t *testing.T, opts ...pulsartest.Option) (*pulsartest.Server, *memory.Clock) {
	clock := memory.NewClock(delayT0)
	s := pulsartest.NewServer(append([]pulsartest.Option{pulsartest.WithClock(pulsartest.ClockOf(clock))}, opts...)...)
	t.Cleanup(func() { _ = s.Close() })
	return s, clock
}

// publishAt stores payload on topic with deliver_at_time at (none when
// zero); batch > 0 makes it a batch of that many messages.
func publishAt(s *pulsartest.Server, topic, payload string, at time.Time, batch int32) {
	md := &pulsarpb.MessageMetadata{
		ProducerName: proto.String("delayer"),
		SequenceId:   proto.Uint64(0),
		PublishTime:  proto.Uint64(uint64(delayT0.UnixMilli())),
	}
	if !at.IsZero() {
		md.DeliverAtTime = proto.Int64(at.UnixMilli())
	}
	if batch > 0 {
		md.NumMessagesInBatch = proto.Int32(batch)
	}
	b, _ := proto.Marshal(md)
	s.Publish(topic, b, []byte(payload))
}

func delayed(t *testing.T, s *pulsartest.Server) []uint64 {
	t.Helper()
	st, ok := s.Subscription("t", "sub")
	require.True(t, ok)
	return st.Delayed
}

func redeliverAll(id uint64) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{
		Type:                            pulsarpb.BaseCommand_REDELIVER_UNACKNOWLEDGED_MESSAGES.Enum(),
		RedeliverUnacknowledgedMessages: &pulsarpb.CommandRedeliverUnacknowledgedMessages{ConsumerId: proto.Uint64(id)},
	}
}

// On a Shared subscription a message with deliver_at_time an hour ahead
// is held back, the others go out; it comes out when the clock reaches
// that time, and can then be redelivered and acknowledged as any other.
func TestDelayedDeliveryShared(t *testing.T) {
	s, clock := delayedServer(t)
	publishAt(s, "t", "later", delayT0.Add(time.Hour), 0)
	publishAt(s, "t", "now", time.Time{}, 0)
	c := pipe(t, s)
	c.handshake()
	c.send(subscribeCmd(1, 1, "t", "sub", shared, earliest))
	c.expect(pulsarpb.BaseCommand_SUCCESS)
	c.send(flow(1, 10))
	m := c.expect(pulsarpb.BaseCommand_MESSAGE).GetMessage()
	assert.Equal(t, uint64(1), m.GetMessageId().GetEntryId())
	assert.Equal(t, []uint64{0}, delayed(t, s))
	backlog, _ := s.Backlog("t", "sub")
	assert.Equal(t, 2, backlog, "a held message is in the backlog")

	// A tick before the time nothing has come out: the timer is set for
	// deliver_at_time itself.
	clock.Advance(time.Hour - time.Second)
	assert.Equal(t, []uint64{0}, delayed(t, s))
	clock.Advance(time.Second)
	m = c.expect(pulsarpb.BaseCommand_MESSAGE).GetMessage()
	assert.Equal(t, uint64(0), m.GetMessageId().GetEntryId())
	assert.Equal(t, "later", string(c.body[len(c.body)-len("later"):]))
	assert.Empty(t, delayed(t, s))

	// Redelivery and acknowledgement work as usual once it is out.
	c.send(redeliverAll(1))
	got := map[uint64]bool{}
	for range 2 {
		got[c.expect(pulsarpb.BaseCommand_MESSAGE).GetMessage().GetMessageId().GetEntryId()] = true
	}
	assert.Equal(t, map[uint64]bool{0: true, 1: true}, got)
	rid := uint64(9)
	c.send(ackCmd(1, pulsarpb.CommandAck_Individual, &rid, 0, 1))
	c.expect(pulsarpb.BaseCommand_ACK_RESPONSE)
	backlog, _ = s.Backlog("t", "sub")
	assert.Equal(t, 0, backlog)
}

// A message due within a tick (1 s) goes out at once, as on a broker
// (delayedDeliveryDeliverAtTimeStrict=false); one due later waits.
func TestDelayedDeliveryTick(t *testing.T) {
	s, clock := delayedServer(t)
	publishAt(s, "t", "soon", delayT0.Add(900*time.Millisecond), 0)
	publishAt(s, "t", "later", delayT0.Add(1500*time.Millisecond), 0)
	c := pipe(t, s)
	c.handshake()
	c.send(subscribeCmd(1, 1, "t", "sub", shared, earliest))
	c.expect(pulsarpb.BaseCommand_SUCCESS)
	c.send(flow(1, 10))
	assert.Equal(t, uint64(0), c.expect(pulsarpb.BaseCommand_MESSAGE).GetMessage().GetMessageId().GetEntryId())
	assert.Equal(t, []uint64{1}, delayed(t, s))
	clock.Advance(1500 * time.Millisecond)
	assert.Equal(t, uint64(1), c.expect(pulsarpb.BaseCommand_MESSAGE).GetMessage().GetMessageId().GetEntryId())

	// Strict (tick 0): held until the time itself.
	s2, clock2 := delayedServer(t, pulsartest.WithDelayedDeliveryTick(0))
	publishAt(s2, "t", "soon", delayT0.Add(900*time.Millisecond), 0)
	c2 := pipe(t, s2)
	c2.handshake()
	c2.send(subscribeCmd(1, 1, "t", "sub", shared, earliest))
	c2.expect(pulsarpb.BaseCommand_SUCCESS)
	c2.send(flow(1, 10))
	require.NoError(t, s2.WaitReceived(ctx(t), pulsarpb.BaseCommand_FLOW, 1))
	assert.Equal(t, []uint64{0}, delayed(t, s2))
	clock2.Advance(900 * time.Millisecond)
	assert.Equal(t, uint64(0), c2.expect(pulsarpb.BaseCommand_MESSAGE).GetMessage().GetMessageId().GetEntryId())
}

// Exclusive and Failover subscriptions get delayed messages at once, as
// on a broker; so does any subscription with delayed delivery off.
func TestDelayedDeliveryNotOnExclusiveOrFailover(t *testing.T) {
	for name, tc := range map[string]struct {
		typ  pulsarpb.CommandSubscribe_SubType
		opts []pulsartest.Option
	}{
		"exclusive":   {exclusive, nil},
		"failover":    {failover, nil},
		"shared, off": {shared, []pulsartest.Option{pulsartest.WithDelayedDelivery(false)}},
	} {
		t.Run(name, func(t *testing.T) {
			s, _ := delayedServer(t, tc.opts...)
			publishAt(s, "t", "later", delayT0.Add(time.Hour), 0)
			publishAt(s, "t", "now", time.Time{}, 0)
			c := pipe(t, s)
			c.handshake()
			c.send(subscribeCmd(1, 1, "t", "sub", tc.typ, earliest))
			c.expect(pulsarpb.BaseCommand_SUCCESS)
			// (Failover: ACTIVE_CONSUMER_CHANGE comes a second later on
			// the server's clock, which this test does not advance.)
			c.send(flow(1, 10))
			for i := range 2 {
				assert.Equal(t, uint64(i), c.expect(pulsarpb.BaseCommand_MESSAGE).GetMessage().GetMessageId().GetEntryId())
			}
			assert.Empty(t, delayed(t, s))
		})
	}
}

// Key_Shared holds delayed messages back as Shared does, and a batch is
// held whole (its metadata's deliver_at_time is the batch's).
func TestDelayedDeliveryKeySharedBatch(t *testing.T) {
	s, clock := delayedServer(t)
	publishAt(s, "t", "batch", delayT0.Add(time.Minute), 3)
	publishAt(s, "t", "now", time.Time{}, 0)
	c := pipe(t, s)
	c.handshake()
	c.send(subscribeCmd(1, 1, "t", "sub", pulsarpb.CommandSubscribe_Key_Shared, earliest))
	c.expect(pulsarpb.BaseCommand_SUCCESS)
	c.send(flow(1, 10))
	assert.Equal(t, uint64(1), c.expect(pulsarpb.BaseCommand_MESSAGE).GetMessage().GetMessageId().GetEntryId())
	assert.Equal(t, []uint64{0}, delayed(t, s))
	clock.Advance(time.Minute)
	assert.Equal(t, uint64(0), c.expect(pulsarpb.BaseCommand_MESSAGE).GetMessage().GetMessageId().GetEntryId())
	st, _ := s.Subscription("t", "sub")
	assert.Equal(t, int64(10-1-3), st.Consumers[0].Permits, "the batch took three permits")
}

// A message published while a consumer waits is held back too, and the
// timer follows the earliest held message; the timer runs at most once a
// tick.
func TestDelayedDeliveryLivePublish(t *testing.T) {
	s, clock := delayedServer(t)
	c := pipe(t, s)
	c.handshake()
	c.send(subscribeCmd(1, 1, "t", "sub", shared, earliest))
	c.expect(pulsarpb.BaseCommand_SUCCESS)
	c.send(flow(1, 10))
	require.NoError(t, s.WaitReceived(ctx(t), pulsarpb.BaseCommand_FLOW, 1))
	publishAt(s, "t", "b", delayT0.Add(10*time.Second), 0)
	publishAt(s, "t", "a", delayT0.Add(5*time.Second), 0)
	assert.Equal(t, []uint64{0, 1}, delayed(t, s))
	clock.Advance(5 * time.Second)
	assert.Equal(t, uint64(1), c.expect(pulsarpb.BaseCommand_MESSAGE).GetMessage().GetMessageId().GetEntryId())
	assert.Equal(t, []uint64{0}, delayed(t, s))
	clock.Advance(5 * time.Second)
	assert.Equal(t, uint64(0), c.expect(pulsarpb.BaseCommand_MESSAGE).GetMessage().GetMessageId().GetEntryId())
}

// A reset of the cursor through the admin API forgets the messages held
// back, as SEEK does: they are read again from the new position, held
// again, and delivered once when their time comes.
func TestDelayedDeliveryAfterAdminResetCursor(t *testing.T) {
	s, clock := delayedServer(t)
	publishAt(s, "t", "later", delayT0.Add(time.Hour), 0)
	c := pipe(t, s)
	c.handshake()
	c.send(subscribeCmd(1, 1, "t", "sub", shared, earliest))
	c.expect(pulsarpb.BaseCommand_SUCCESS)
	c.send(flow(1, 10))
	require.NoError(t, s.WaitReceived(ctx(t), pulsarpb.BaseCommand_FLOW, 1))
	require.Equal(t, []uint64{0}, delayed(t, s))

	rec := httptest.NewRecorder()
	s.AdminHandler().ServeHTTP(rec, httptest.NewRequest("POST",
		"/admin/v2/persistent/public/default/t/subscription/sub/resetcursor/0", nil))
	require.Equal(t, 204, rec.Code, rec.Body.String())
	c.expect(pulsarpb.BaseCommand_CLOSE_CONSUMER)
	assert.Empty(t, delayed(t, s), "held messages are forgotten with the old position")

	c.send(subscribeCmd(2, 2, "t", "sub", shared, earliest))
	c.expect(pulsarpb.BaseCommand_SUCCESS)
	c.send(flow(2, 10))
	require.NoError(t, s.WaitReceived(ctx(t), pulsarpb.BaseCommand_FLOW, 2))
	assert.Equal(t, []uint64{0}, delayed(t, s))
	clock.Advance(time.Hour)
	assert.Equal(t, uint64(0), c.expect(pulsarpb.BaseCommand_MESSAGE).GetMessage().GetMessageId().GetEntryId())
	c.synced() // and only once
}
