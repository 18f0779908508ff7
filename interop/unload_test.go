package interop

import (
	"slices"
	"sync"
	"testing"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// idRecorder records the producer ids of PRODUCER and the consumer ids of
// SUBSCRIBE commands as the server reads them, and lets them pass: the
// ids a test needs to push CLOSE_PRODUCER or CLOSE_CONSUMER.
type idRecorder struct {
	mu        sync.Mutex
	producers []uint64
	consumers []uint64
}

func recordIDs(t testing.TB, srv *pulsartest.Server) *idRecorder {
	r := &idRecorder{}
	stopP := srv.InterceptEvery(pulsarpb.BaseCommand_PRODUCER, func(c *pulsartest.Call) pulsartest.Action {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.producers = append(r.producers, c.Command().GetProducer().GetProducerId())
		return pulsartest.Pass
	})
	stopC := srv.InterceptEvery(pulsarpb.BaseCommand_SUBSCRIBE, func(c *pulsartest.Call) pulsartest.Action {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.consumers = append(r.consumers, c.Command().GetSubscribe().GetConsumerId())
		return pulsartest.Pass
	})
	t.Cleanup(func() { stopP(); stopC() })
	return r
}

func (r *idRecorder) get() (producers, consumers []uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.producers), slices.Clone(r.consumers)
}

// TestProducerUnloaded: the broker closes a producer (CLOSE_PRODUCER, as
// when its topic is unloaded) while a SEND is on its way. As a broker
// does, the server ignores that SEND and keeps the connection; the client
// attaches the producer again under the same id and sends the message
// again. Every message is stored once, in order, with increasing ids, and
// reaches the consumer.
func TestProducerUnloaded(t *testing.T) {
	srv, client := connect(t)
	ids := recordIDs(t, srv)
	topic := topicName(t)
	cons := subscribe(t, client, pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "sub"})
	prod, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic, DisableBatching: true})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	want := payloads("unload", 6)
	all := sendAll(t, prod, want[:3])

	producers, _ := ids.get()
	if len(producers) != 1 {
		t.Fatalf("PRODUCER ids %v, want one", producers)
	}
	// The fourth message's SEND is read, and held, before the unload; the
	// server handles it after.
	held := srv.Hold(pulsarpb.BaseCommand_SEND)
	type result struct {
		id  pulsar.MessageID
		err error
	}
	inFlight := make(chan result, 1)
	prod.SendAsync(bounded(t), &pulsar.ProducerMessage{Payload: []byte(want[3])},
		func(id pulsar.MessageID, _ *pulsar.ProducerMessage, err error) { inFlight <- result{id, err} })
	select {
	case <-held.Arrived():
	case <-bounded(t).Done():
		t.Fatal("the fourth SEND never arrived")
	}
	if !srv.CloseProducer(producers[0], "", "") {
		t.Fatalf("no producer %d to close", producers[0])
	}
	held.Release() // ignored: the producer is closed
	var r result
	select {
	case r = <-inFlight:
	case <-bounded(t).Done():
		t.Fatal("the in-flight message was never confirmed")
	}
	if r.err != nil {
		t.Fatalf("in-flight message: %v", r.err)
	}
	all = append(all, r.id)
	all = append(all, sendAll(t, prod, want[4:])...)

	producers, _ = ids.get()
	if len(producers) != 2 || producers[1] != producers[0] {
		t.Fatalf("PRODUCER ids %v, want the same id twice", producers)
	}
	if n := srv.Received(pulsarpb.BaseCommand_CONNECT); n != 1 {
		t.Errorf("%d CONNECTs: the unload cost the connection", n)
	}
	for i := 1; i < len(all); i++ {
		if !before(all[i-1], all[i]) {
			t.Fatalf("receipt ids not increasing: %v then %v", all[i-1], all[i])
		}
	}
	if got := asStrings(srv.Messages(topic)); !slices.Equal(got, want) {
		t.Fatalf("broker stored %q, want %q", got, want)
	}
	checkSame(t, receiveN(t, cons, 6), want, all)
	expectNothing(t, cons)
}

// TestConsumerUnloaded: the broker closes a consumer (CLOSE_CONSUMER)
// and the client subscribes again under the same id.
//
// First with nothing in flight: what was acknowledged before the unload
// never comes back, and what is published after it arrives exactly once,
// in order, with the receipts' ids.
//
// Then with messages delivered but not yet acknowledged: the broker sends
// them again after the new SUBSCRIBE (delivery is at least once). Each
// comes back at most once more, nothing acknowledged comes back, nothing
// is lost, and once everything is acknowledged the backlog is empty.
func TestConsumerUnloaded(t *testing.T) {
	srv, client := connect(t)
	ids := recordIDs(t, srv)
	topic := topicName(t)
	cons := subscribe(t, client, pulsar.ConsumerOptions{
		Topic: topic, SubscriptionName: "sub", Type: pulsar.Exclusive,
		AckWithResponse: true, // acks are on the broker before Ack returns
	})
	unload := func(wantSubscribes int) {
		t.Helper()
		_, consumers := ids.get()
		if len(consumers) != wantSubscribes {
			t.Fatalf("SUBSCRIBE ids %v, want %d", consumers, wantSubscribes)
		}
		if !srv.CloseConsumer(consumers[0], "", "") {
			t.Fatalf("no consumer %d to close", consumers[0])
		}
	}
	ackAll := func(rs []received) {
		t.Helper()
		for _, r := range rs {
			if err := cons.Ack(r.msg); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Nothing in flight.
	want := payloads("unload", 12)
	msgIDs := produce(t, client, topic, want[:3])
	got := receiveN(t, cons, 3)
	checkSame(t, got, want[:3], msgIDs[:3])
	ackAll(got)
	unload(1)
	msgIDs = append(msgIDs, produce(t, client, topic, want[3:6])...)
	got = receiveN(t, cons, 3)
	checkSame(t, got, want[3:6], msgIDs[3:6])
	ackAll(got)
	expectNothing(t, cons)

	// want[6:9] delivered, not acknowledged, at the unload.
	msgIDs = append(msgIDs, produce(t, client, topic, want[6:9])...)
	checkSame(t, receiveN(t, cons, 3), want[6:9], msgIDs[6:9])
	unload(2)
	msgIDs = append(msgIDs, produce(t, client, topic, want[9:])...)
	index := indexOf(want)
	seen := map[string]int{}
	var order []string
	for len(order) < 6 {
		r := receiveN(t, cons, 1)[0]
		k, ok := index[r.payload]
		if !ok || k < 6 {
			t.Fatalf("%q came back after it was acknowledged", r.payload)
		}
		if !sameID(r.id, msgIDs[k]) {
			t.Errorf("%q: id %v, receipt id %v", r.payload, r.id, msgIDs[k])
		}
		seen[r.payload]++
		if seen[r.payload] == 1 {
			order = append(order, r.payload)
		} else if k >= 9 || seen[r.payload] > 2 {
			t.Fatalf("%q delivered %d times", r.payload, seen[r.payload])
		}
		ackAll([]received{r})
	}
	if !slices.Equal(order, want[6:]) {
		t.Fatalf("first deliveries %q, want %q", order, want[6:])
	}
	expectNothing(t, cons)
	_, consumers := ids.get()
	if len(consumers) != 3 || consumers[1] != consumers[0] || consumers[2] != consumers[0] {
		t.Fatalf("SUBSCRIBE ids %v, want the same id three times", consumers)
	}
	if n, ok := srv.Backlog(topic, "sub"); !ok || n != 0 {
		t.Fatalf("backlog %d (%v), want 0: an ack was lost", n, ok)
	}
}
