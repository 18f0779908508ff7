package pulsartest_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/adapters/memory"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

func namedSubscribe(rid, id uint64, topic, name string) *pulsarpb.BaseCommand {
	cmd := subscribeCmd(rid, id, topic, "sub", failover, earliest)
	cmd.Subscribe.ConsumerName = proto.String(name)
	return cmd
}

// synced waits until the server has handled everything sent before: a
// PING is answered after them.
func (c *client) synced() {
	c.t.Helper()
	c.send(ping())
	c.expect(pulsarpb.BaseCommand_PONG)
}

// expectActive reads ACTIVE_CONSUMER_CHANGE for consumer id.
func (c *client) expectActive(id uint64, active bool) {
	c.t.Helper()
	ac := c.expect(pulsarpb.BaseCommand_ACTIVE_CONSUMER_CHANGE).GetActiveConsumerChange()
	assert.Equal(c.t, id, ac.GetConsumerId())
	assert.Equal(c.t, active, ac.GetIsActive(), "consumer %d active", id)
}

// TestFailoverPartitionTranscript replays what Pulsar 4.2.4 sent a client
// subscribing consumers c0, c1, c2 (in that order) to partition 1 of a
// 3-partition topic, then closing c0: the active consumer of partition i
// is the i-th (mod n) by name; when it changes, every consumer is told one
// second later (activeConsumerFailoverDelayTimeMillis); when it does not, the
// new consumer is told it is inactive at once, before the SUCCESS.
func TestFailoverPartitionTranscript(t *testing.T) {
	clk := memory.NewClock(time.Unix(1_700_000_000, 0))
	s := pulsartest.NewServer(pulsartest.WithClock(pulsartest.ClockOf(clk)))
	t.Cleanup(func() { _ = s.Close() })
	armed := func(n int) { t.Helper(); assert.Equal(t, n, clk.Pending(), "armed timers") }
	const topic = "persistent://public/default/pt-partition-1"
	c := pipe(t, s)
	c.handshake()

	c.send(namedSubscribe(1, 1, topic, "consumer-0"))
	c.expect(pulsarpb.BaseCommand_SUCCESS)
	c.synced() // nothing before the delay
	armed(1)
	clk.Advance(time.Second)
	c.expectActive(1, true)

	c.send(namedSubscribe(2, 2, topic, "consumer-1"))
	c.expect(pulsarpb.BaseCommand_SUCCESS)
	c.synced()
	clk.Advance(999 * time.Millisecond)
	c.synced() // not yet
	clk.Advance(time.Millisecond)
	c.expectActive(1, false)
	c.expectActive(2, true)

	c.send(namedSubscribe(3, 3, topic, "consumer-2"))
	c.expectActive(3, false) // 1 % 3: consumer-1 stays active
	c.expect(pulsarpb.BaseCommand_SUCCESS)
	c.synced()
	armed(0)

	c.send(&pulsarpb.BaseCommand{
		Type:          pulsarpb.BaseCommand_CLOSE_CONSUMER.Enum(),
		CloseConsumer: &pulsarpb.CommandCloseConsumer{ConsumerId: proto.Uint64(1), RequestId: proto.Uint64(4)},
	})
	c.expect(pulsarpb.BaseCommand_SUCCESS)
	c.synced()
	clk.Advance(time.Second)
	c.expectActive(2, false) // 1 % 2: consumer-2
	c.expectActive(3, true)
}

// Messages go to the active consumer of the partition, also before the
// consumers are told.
func TestFailoverPartitionDeliversToItsActiveConsumer(t *testing.T) {
	s := pulsartest.NewServer(pulsartest.WithActiveConsumerFailoverDelay(0))
	t.Cleanup(func() { _ = s.Close() })
	const topic = "persistent://public/default/pt-partition-0"
	publish(s, topic, "m0")
	c := pipe(t, s)
	c.handshake()
	// Attached in the order b, a: partition 0 goes to the first by name.
	c.send(namedSubscribe(1, 1, topic, "b"))
	c.expect(pulsarpb.BaseCommand_SUCCESS)
	c.expectActive(1, true)
	c.send(namedSubscribe(2, 2, topic, "a"))
	c.expect(pulsarpb.BaseCommand_SUCCESS)
	c.expectActive(1, false)
	c.expectActive(2, true)
	c.send(flow(1, 10))
	c.send(flow(2, 10))
	m, _ := c.expectMessage()
	assert.Equal(t, uint64(2), m.GetConsumerId())
}
