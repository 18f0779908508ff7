package interop

import (
	"context"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// produce creates a producer without batching on topic, sends msgs and
// returns the receipts' ids.
func produce(t testing.TB, client pulsar.Client, topic string, msgs []string) []pulsar.MessageID {
	t.Helper()
	prod, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic, DisableBatching: true})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	return sendAll(t, prod, msgs)
}

func subscribe(t testing.TB, client pulsar.Client, opts pulsar.ConsumerOptions) pulsar.Consumer {
	t.Helper()
	c, err := client.Subscribe(opts)
	if err != nil {
		t.Fatalf("Subscribe(%s, %s): %v", opts.Topic, opts.SubscriptionName, err)
	}
	t.Cleanup(c.Close)
	return c
}

// TestExclusiveSubscription: the exclusive consumer gets every message in
// order with the receipts' ids, and a second consumer on the same
// subscription is refused (ConsumerBusy).
func TestExclusiveSubscription(t *testing.T) {
	_, client := connect(t)
	topic := topicName(t)
	c1 := subscribe(t, client, pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "sub", Type: pulsar.Exclusive})
	if _, err := client.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "sub", Type: pulsar.Exclusive}); err == nil {
		t.Fatal("a second exclusive consumer was accepted")
	}
	want := payloads("excl", 5)
	ids := produce(t, client, topic, want)
	got := receiveN(t, c1, len(want))
	checkSame(t, got, want, ids)
}

// TestSharedSubscription: two consumers of a Shared subscription share
// the messages: together they get each message exactly once, each in
// publication order, and both get some.
func TestSharedSubscription(t *testing.T) {
	srv, client := connect(t)
	topic := topicName(t)
	opts := pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "sub", Type: pulsar.Shared}
	c1 := subscribe(t, client, opts)
	c2 := subscribe(t, client, opts)
	// Both have asked for messages (FLOW) before any is published.
	waitReceived(t, srv, pulsarpb.BaseCommand_FLOW, 2)
	want := payloads("shared", 20)
	ids := produce(t, client, topic, want)

	got1, got2 := receiveAll(t, len(want), c1, c2)
	if len(got1) == 0 || len(got2) == 0 {
		t.Fatalf("one consumer got nothing: %d and %d messages", len(got1), len(got2))
	}
	index := indexOf(want)
	for _, got := range [][]received{got1, got2} {
		for i, r := range got {
			k, ok := index[r.payload]
			if !ok {
				t.Fatalf("unknown message %q", r.payload)
			}
			if !sameID(r.id, ids[k]) {
				t.Errorf("%q: consumer id %v, receipt id %v", r.payload, r.id, ids[k])
			}
			if i > 0 && !before(got[i-1].id, r.id) {
				t.Errorf("out of order: %v then %v", got[i-1].id, r.id)
			}
		}
	}
	all := append(payloadsOf(got1), payloadsOf(got2)...)
	sort.Strings(all)
	sorted := slices.Clone(want)
	sort.Strings(sorted)
	if !slices.Equal(all, sorted) {
		t.Fatalf("together the consumers got %q, want each of %q once", all, sorted)
	}
}

// TestFailoverSubscription: of two Failover consumers only the first, the
// active one, gets messages; when it closes, the second takes over and
// gets what the first left unacknowledged, in order.
func TestFailoverSubscription(t *testing.T) {
	_, client := connect(t)
	topic := topicName(t)
	// Named so that the first to subscribe also sorts first: brokers pick
	// the active consumer of a non-partitioned topic by subscription order
	// or by name, depending on the release.
	opts := pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "sub", Type: pulsar.Failover, Name: "a-first"}
	c1, err := client.Subscribe(opts)
	if err != nil {
		t.Fatal(err)
	}
	opts.Name = "b-second"
	c2 := subscribe(t, client, opts)
	want := payloads("failover", 6)
	ids := produce(t, client, topic, want)

	got := receiveN(t, c1, len(want))
	checkSame(t, got, want, ids)
	for _, r := range got[:3] {
		if err := c1.Ack(r.msg); err != nil {
			t.Fatal(err)
		}
	}
	expectNothing(t, c2) // the standby gets nothing while c1 is active
	c1.Close()           // flushes the acks, then CLOSE_CONSUMER

	rest := receiveN(t, c2, 3)
	checkSame(t, rest, want[3:], ids[3:])
}

// TestKeySharedSubscription: two Key_Shared consumers share the messages
// and each key goes to one consumer only, in publication order.
func TestKeySharedSubscription(t *testing.T) {
	srv, client := connect(t)
	topic := topicName(t)
	opts := pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "sub", Type: pulsar.KeyShared}
	c1 := subscribe(t, client, opts)
	c2 := subscribe(t, client, opts)
	waitReceived(t, srv, pulsarpb.BaseCommand_FLOW, 2)

	prod, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic, DisableBatching: true})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	// An odd number of keys, so that dealing messages out in turn would
	// send each key to both consumers.
	keys := []string{"k0", "k1", "k2", "k3", "k4", "k5", "k6"}
	var want []string
	for round := range 4 {
		for _, k := range keys {
			payload := k + "-" + string(rune('0'+round))
			want = append(want, payload)
			if _, err := prod.Send(bounded(t), &pulsar.ProducerMessage{Key: k, Payload: []byte(payload)}); err != nil {
				t.Fatal(err)
			}
		}
	}

	got1, got2 := receiveAll(t, len(want), c1, c2)
	owner := map[string]int{}
	last := map[string]string{}
	for n, got := range [][]received{got1, got2} {
		for _, r := range got {
			k := r.msg.Key()
			if o, ok := owner[k]; ok && o != n {
				t.Errorf("key %q went to both consumers", k)
			}
			owner[k] = n
			if r.payload <= last[k] {
				t.Errorf("key %q: %q after %q", k, r.payload, last[k])
			}
			last[k] = r.payload
		}
	}
	if len(got1)+len(got2) != len(want) {
		t.Fatalf("got %d messages, want %d", len(got1)+len(got2), len(want))
	}
	if len(got1) == 0 || len(got2) == 0 {
		t.Fatalf("one consumer got nothing: %d and %d messages (%d keys)", len(got1), len(got2), len(keys))
	}
}

// TestInitialPosition: a new subscription at Latest sees only what is
// published after it, one at Earliest also what was there before.
func TestInitialPosition(t *testing.T) {
	_, client := connect(t)
	topic := topicName(t)
	old := payloads("old", 3)
	oldIDs := produce(t, client, topic, old)

	latest := subscribe(t, client, pulsar.ConsumerOptions{
		Topic: topic, SubscriptionName: "latest",
		SubscriptionInitialPosition: pulsar.SubscriptionPositionLatest,
	})
	earliest := subscribe(t, client, pulsar.ConsumerOptions{
		Topic: topic, SubscriptionName: "earliest",
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest,
	})
	fresh := payloads("new", 2)
	newIDs := produce(t, client, topic, fresh)

	checkSame(t, receiveN(t, latest, 2), fresh, newIDs)
	checkSame(t, receiveN(t, earliest, 5), append(old, fresh...), append(oldIDs, newIDs...))
	expectNothing(t, latest)
}

// TestIndividualAck acknowledges every other message, then reattaches to
// the subscription: only the unacknowledged ones come back, in order,
// with their ids and no redelivery count (a broker keeps none on an
// Exclusive subscription, and a consumer closing is no redelivery).
func TestIndividualAck(t *testing.T) {
	for _, withResponse := range []bool{false, true} {
		name := "grouped"
		if withResponse {
			name = "with-response"
		}
		t.Run(name, func(t *testing.T) {
			_, client := connect(t)
			topic := topicName(t)
			opts := pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "sub", AckWithResponse: withResponse}
			c1, err := client.Subscribe(opts)
			if err != nil {
				t.Fatal(err)
			}
			want := payloads("ind", 6)
			ids := produce(t, client, topic, want)
			got := receiveN(t, c1, len(want))
			checkSame(t, got, want, ids)
			for i := 0; i < len(got); i += 2 {
				if err := c1.Ack(got[i].msg); err != nil {
					t.Fatal(err)
				}
			}
			c1.Close() // flushes pending acks before CLOSE_CONSUMER

			c2 := subscribe(t, client, opts)
			again := receiveN(t, c2, 3)
			checkSame(t, again, []string{want[1], want[3], want[5]}, []pulsar.MessageID{ids[1], ids[3], ids[5]})
			for _, r := range again {
				if r.msg.RedeliveryCount() != 0 {
					t.Errorf("%q: redelivery count %d, want 0, as from a broker", r.payload, r.msg.RedeliveryCount())
				}
			}
			expectNothing(t, c2)
		})
	}
}

// TestCumulativeAck acknowledges up to the third message cumulatively;
// after reattaching only the later ones come back.
func TestCumulativeAck(t *testing.T) {
	_, client := connect(t)
	topic := topicName(t)
	opts := pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "sub", Type: pulsar.Exclusive}
	c1, err := client.Subscribe(opts)
	if err != nil {
		t.Fatal(err)
	}
	want := payloads("cum", 5)
	ids := produce(t, client, topic, want)
	got := receiveN(t, c1, len(want))
	if err := c1.AckCumulative(got[2].msg); err != nil {
		t.Fatal(err)
	}
	c1.Close()

	c2 := subscribe(t, client, opts)
	checkSame(t, receiveN(t, c2, 2), want[3:], ids[3:])
	expectNothing(t, c2)
}

// TestBatchIndexAck acknowledges some messages of a batch with batch index
// acknowledgement on: the ACK carries an ack_set, and after reattaching
// only the unacknowledged messages of the batch come back (the broker
// sends the batch with its ack_set, and the client skips the others).
func TestBatchIndexAck(t *testing.T) {
	srv, client := connect(t)
	topic := topicName(t)
	opts := pulsar.ConsumerOptions{
		Topic: topic, SubscriptionName: "sub",
		EnableBatchIndexAcknowledgment: true,
		AckWithResponse:                true,
	}
	c1, err := client.Subscribe(opts)
	if err != nil {
		t.Fatal(err)
	}
	prod, err := client.CreateProducer(pulsar.ProducerOptions{
		Topic: topic, BatchingMaxMessages: 4, BatchingMaxPublishDelay: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	want := payloads("bia", 4)
	ids, _ := sendAsyncAll(t, prod, want)
	if n := len(srv.Stored(topic)); n != 1 {
		t.Fatalf("stored %d entries, want one batch", n)
	}
	got := receiveN(t, c1, 4)
	checkSame(t, got, want, ids)
	for _, i := range []int{0, 2} {
		if err := c1.Ack(got[i].msg); err != nil {
			t.Fatal(err)
		}
	}
	c1.Close()

	c2 := subscribe(t, client, opts)
	again := receiveN(t, c2, 2)
	checkSame(t, again, []string{want[1], want[3]}, []pulsar.MessageID{ids[1], ids[3]})
	for _, r := range again {
		if err := c2.Ack(r.msg); err != nil {
			t.Fatal(err)
		}
	}
	if n, ok := srv.Backlog(topic, "sub"); !ok || n != 0 {
		t.Fatalf("backlog %d (%v) after acking the whole batch, want 0", n, ok)
	}
}

// TestNegativeAck: a negatively acknowledged message comes back after
// NackRedeliveryDelay with a redelivery count of 1; acknowledged ones do
// not.
func TestNegativeAck(t *testing.T) {
	srv, client := connect(t)
	topic := topicName(t)
	c := subscribe(t, client, pulsar.ConsumerOptions{
		Topic: topic, SubscriptionName: "sub", Type: pulsar.Shared,
		NackRedeliveryDelay: 50 * time.Millisecond,
	})
	want := payloads("nack", 4)
	ids := produce(t, client, topic, want)
	got := receiveN(t, c, 4)
	checkSame(t, got, want, ids)
	for i, r := range got {
		if i == 1 || i == 2 {
			c.Nack(r.msg)
			continue
		}
		if err := c.Ack(r.msg); err != nil {
			t.Fatal(err)
		}
	}
	again := receiveN(t, c, 2)
	sort.Slice(again, func(i, j int) bool { return before(again[i].id, again[j].id) })
	checkSame(t, again, want[1:3], ids[1:3])
	for _, r := range again {
		if r.msg.RedeliveryCount() != 1 {
			t.Errorf("%q: redelivery count %d, want 1", r.payload, r.msg.RedeliveryCount())
		}
		if err := c.Ack(r.msg); err != nil {
			t.Fatal(err)
		}
	}
	if srv.Received(pulsarpb.BaseCommand_REDELIVER_UNACKNOWLEDGED_MESSAGES) == 0 {
		t.Error("no REDELIVER_UNACKNOWLEDGED_MESSAGES sent")
	}
	expectNothing(t, c)
}

// TestSeekByMessageID rewinds a subscription to the second message. The
// broker disconnects the consumer (CLOSE_CONSUMER), resets the cursor to
// that message and answers SUCCESS; the client subscribes again and
// receives from there on, in order, with the same ids. The official Go
// client itself drops the message sought unless StartMessageIDInclusive
// is set (its own TestConsumerSeek sets it), so the two settings see
// different first messages.
func TestSeekByMessageID(t *testing.T) {
	for _, inclusive := range []bool{true, false} {
		name := "exclusive"
		first := 2
		if inclusive {
			name, first = "inclusive", 1
		}
		t.Run(name, func(t *testing.T) {
			srv, client := connect(t)
			topic := topicName(t)
			c := subscribe(t, client, pulsar.ConsumerOptions{
				Topic: topic, SubscriptionName: "sub", StartMessageIDInclusive: inclusive,
			})
			want := payloads("seek", 5)
			ids := produce(t, client, topic, want)
			got := receiveN(t, c, 5)
			checkSame(t, got, want, ids)
			for _, r := range got {
				if err := c.Ack(r.msg); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.Seek(ids[1]); err != nil {
				t.Fatalf("Seek: %v", err)
			}
			checkSame(t, receiveN(t, c, 5-first), want[first:], ids[first:])
			expectNothing(t, c)
			if n := srv.Received(pulsarpb.BaseCommand_SUBSCRIBE); n != 2 {
				t.Errorf("%d SUBSCRIBE commands, want 2 (the seek's disconnection makes the client subscribe again)", n)
			}
		})
	}
}

// TestSeekByTime rewinds a subscription to the publish time of the third
// message: the consumer receives from it on again.
func TestSeekByTime(t *testing.T) {
	_, client := connect(t)
	topic := topicName(t)
	c := subscribe(t, client, pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "sub"})
	want := payloads("seektime", 5)
	ids := produce(t, client, topic, want)
	got := receiveN(t, c, 5)
	checkSame(t, got, want, ids)
	for _, r := range got {
		if err := c.Ack(r.msg); err != nil {
			t.Fatal(err)
		}
	}
	// Publish times are in milliseconds and several messages may share
	// one: expect everything from the first message with that time.
	at := got[2].msg.PublishTime()
	first := 2
	for first > 0 && got[first-1].msg.PublishTime().Equal(at) {
		first--
	}
	if err := c.SeekByTime(at); err != nil {
		t.Fatalf("SeekByTime: %v", err)
	}
	checkSame(t, receiveN(t, c, 5-first), want[first:], ids[first:])
	expectNothing(t, c)
}

// TestGetLastMessageIDs: the consumer's GetLastMessageIDs names the last
// message published.
func TestGetLastMessageIDs(t *testing.T) {
	_, client := connect(t)
	topic := topicName(t)
	c := subscribe(t, client, pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "sub"})
	ids := produce(t, client, topic, payloads("last", 3))
	last, err := c.GetLastMessageIDs()
	if err != nil {
		t.Fatal(err)
	}
	if len(last) != 1 {
		t.Fatalf("%d last ids, want 1", len(last))
	}
	if last[0].LedgerID() != ids[2].LedgerID() || last[0].EntryID() != ids[2].EntryID() {
		t.Fatalf("last id %v, want %v", last[0], ids[2])
	}
	if last[0].Topic() != fullName(topic) {
		t.Errorf("last id topic %q, want %q", last[0].Topic(), fullName(topic))
	}
}

// TestCloseProducerAndConsumer closes a producer and a consumer: the
// broker sees CLOSE_PRODUCER and CLOSE_CONSUMER, the closed producer's
// Send fails, and a new consumer on the subscription gets what the closed
// one left unacknowledged.
func TestCloseProducerAndConsumer(t *testing.T) {
	srv, client := connect(t)
	topic := topicName(t)
	opts := pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "sub", Type: pulsar.Exclusive}
	c1, err := client.Subscribe(opts)
	if err != nil {
		t.Fatal(err)
	}
	prod, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic, DisableBatching: true})
	if err != nil {
		t.Fatal(err)
	}
	want := payloads("close", 2)
	ids := sendAll(t, prod, want)
	prod.Close()
	waitReceived(t, srv, pulsarpb.BaseCommand_CLOSE_PRODUCER, 1)
	if _, err := prod.Send(bounded(t), &pulsar.ProducerMessage{Payload: []byte("late")}); err == nil {
		t.Fatal("Send on a closed producer succeeded")
	}

	checkSame(t, receiveN(t, c1, 2), want, ids)
	c1.Close()
	waitReceived(t, srv, pulsarpb.BaseCommand_CLOSE_CONSUMER, 1)
	// The exclusive subscription is free again.
	c2 := subscribe(t, client, opts)
	checkSame(t, receiveN(t, c2, 2), want, ids)
	if got := asStrings(srv.Messages(topic)); !slices.Equal(got, want) {
		t.Fatalf("broker stored %q, want %q", got, want)
	}
}

// checkSame checks messages received against payloads and receipt ids.
func checkSame(t testing.TB, got []received, want []string, ids []pulsar.MessageID) {
	t.Helper()
	if !slices.Equal(payloadsOf(got), want) {
		t.Fatalf("got %q, want %q", payloadsOf(got), want)
	}
	for i, r := range got {
		if !sameID(r.id, ids[i]) {
			t.Errorf("%q: id %v, receipt id %v", r.payload, r.id, ids[i])
		}
	}
}

// receiveAll receives from both consumers at once until n messages came
// in all, each receive bounded by safety.
func receiveAll(t testing.TB, n int, c1, c2 pulsar.Consumer) ([]received, []received) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), safety)
	defer cancel()
	var (
		mu    sync.Mutex
		got   [2][]received
		total int
		wg    sync.WaitGroup
		errs  []error
	)
	for i, c := range []pulsar.Consumer{c1, c2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				m, err := c.Receive(ctx)
				if err != nil {
					mu.Lock()
					if total < n {
						errs = append(errs, err)
					}
					mu.Unlock()
					return
				}
				if err := c.Ack(m); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
				mu.Lock()
				got[i] = append(got[i], received{payload: string(m.Payload()), id: m.ID(), msg: m})
				total++
				if total == n {
					cancel()
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("received %d of %d: %v", total, n, errs)
	}
	return got[0], got[1]
}

func indexOf(ss []string) map[string]int {
	m := make(map[string]int, len(ss))
	for i, s := range ss {
		m[s] = i
	}
	return m
}
