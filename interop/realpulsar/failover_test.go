package realpulsar

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// TestFailoverActiveConsumerOfAPartition subscribes Failover consumers
// consumer-0, consumer-1 and consumer-2, in that order, to partition 1 of a
// three-partition topic, then closes consumer-0, and checks what the broker
// tells them (pulsartest's TestFailoverPartitionTranscript replays the
// same): partition i goes to the i-th consumer by name (modulo their
// number); when the active consumer changes every consumer is told, about a
// second later (activeConsumerFailoverDelayTimeMillis); a consumer that
// joins without a change is told at once that it is inactive.
func TestFailoverActiveConsumerOfAPartition(t *testing.T) {
	rb := env(t)
	name := topicName(t)
	createPartitioned(t, rb, name, 3)
	topic := fullName(name) + "-partition-1"
	b := start(t, rb.ServiceURL)
	ctx := bounded(t)
	if err := own(ctx, b, topic); err != nil {
		t.Fatal(err)
	}

	chans := map[uint64]chan pulsarconn.Push{}
	for id := uint64(1); id <= 3; id++ {
		ch, h := pushes(64)
		if _, err := b.RegisterConsumer(ctx, id, h); err != nil {
			t.Fatal(err)
		}
		chans[id] = ch
	}
	// active waits for consumer id's ACTIVE_CONSUMER_CHANGE and returns
	// its flag and how long after since it came.
	active := func(id uint64, since time.Time) (bool, time.Duration) {
		t.Helper()
		p := next(t, chans[id], fmt.Sprintf("ACTIVE_CONSUMER_CHANGE for consumer %d", id))
		if p.Kind != pulsarconn.PushActiveConsumerChange {
			t.Fatalf("consumer %d: push %v; want ACTIVE_CONSUMER_CHANGE", id, p.Kind)
		}
		return p.Command.GetActiveConsumerChange().GetIsActive(), time.Since(since)
	}
	subscribeAs := func(id uint64, consumerName string) time.Time {
		t.Helper()
		if _, err := b.Request(ctx, &pulsarpb.BaseCommand{
			Type: pulsarpb.BaseCommand_SUBSCRIBE.Enum(),
			Subscribe: &pulsarpb.CommandSubscribe{
				Topic: proto.String(topic), Subscription: proto.String("sub"),
				SubType: pulsarpb.CommandSubscribe_Failover.Enum(), ConsumerId: proto.Uint64(id),
				ConsumerName: proto.String(consumerName),
			},
		}); err != nil {
			t.Fatalf("SUBSCRIBE %s: %v", consumerName, err)
		}
		return time.Now()
	}
	const delayed = 800 * time.Millisecond // the broker's 1 s, less scheduling slack
	want := func(id uint64, since time.Time, wantActive, wantDelayed bool) {
		t.Helper()
		got, after := active(id, since)
		if got != wantActive {
			t.Errorf("consumer %d told active=%v; want %v", id, got, wantActive)
		}
		if wantDelayed && after < delayed {
			t.Errorf("consumer %d told %v after the change; want about a second later", id, after)
		}
		if !wantDelayed && after > delayed {
			t.Errorf("consumer %d told %v after its SUCCESS; want at once", id, after)
		}
	}

	t0 := subscribeAs(1, "consumer-0")
	want(1, t0, true, true)
	t1 := subscribeAs(2, "consumer-1") // 1 % 2: consumer-1
	want(1, t1, false, true)
	want(2, t1, true, true)
	t2 := subscribeAs(3, "consumer-2") // 1 % 3: still consumer-1
	want(3, t2, false, false)

	closed := time.Now()
	if _, err := b.Request(ctx, &pulsarpb.BaseCommand{
		Type:          pulsarpb.BaseCommand_CLOSE_CONSUMER.Enum(),
		CloseConsumer: &pulsarpb.CommandCloseConsumer{ConsumerId: proto.Uint64(1)},
	}); err != nil {
		t.Fatal(err)
	}
	want(2, closed, false, true) // 1 % 2 of consumer-1, consumer-2: consumer-2
	want(3, closed, true, true)
}
