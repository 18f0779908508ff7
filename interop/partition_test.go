package interop

import (
	"fmt"
	"slices"
	"testing"

	"github.com/apache/pulsar-client-go/pulsar"
)

// TestPartitionedTopic: with 3 partitions set on the broker, the client
// lists them (TopicPartitions, from PARTITIONED_METADATA), a producer
// routes messages round-robin across them, each partition stores its
// share in order, and one consumer receives every message from all
// partitions, each partition's in order, with the receipts' ids.
func TestPartitionedTopic(t *testing.T) {
	srv, client := connect(t)
	topic := topicName(t)
	const n = 3
	srv.SetPartitions(topic, n)

	var wantParts []string
	for i := range n {
		wantParts = append(wantParts, fmt.Sprintf("%s-partition-%d", fullName(topic), i))
	}
	// The client names the partitions after the name it was given, in
	// whichever form.
	for _, name := range []string{topic, fullName(topic)} {
		parts, err := client.TopicPartitions(name)
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range parts {
			if want := fmt.Sprintf("%s-partition-%d", name, i); p != want {
				t.Errorf("TopicPartitions(%s)[%d] = %q, want %q", name, i, p, want)
			}
		}
		if len(parts) != n {
			t.Fatalf("TopicPartitions(%s) = %q, want %d partitions", name, parts, n)
		}
	}
	plain, err := client.TopicPartitions(topic + "-plain")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(plain, []string{fullName(topic + "-plain")}) {
		t.Errorf("TopicPartitions of an unpartitioned topic = %q, want just the topic", plain)
	}

	cons := subscribe(t, client, pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "sub"})
	prod, err := client.CreateProducer(pulsar.ProducerOptions{
		Topic:           topic,
		DisableBatching: true, // the default router then goes round-robin message by message
	})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()

	want := payloads("part", 9)
	ids := sendAll(t, prod, want)
	// Round-robin from wherever the router's cursor started.
	byPart := make([][]string, n)
	for i, id := range ids {
		p := int(id.PartitionIdx())
		if wantP := (int(ids[0].PartitionIdx()) + i) % n; p != wantP {
			t.Fatalf("message %d went to partition %d, want %d (round-robin)", i, p, wantP)
		}
		byPart[p] = append(byPart[p], want[i])
	}
	for i := range n {
		if got := asStrings(srv.Messages(wantParts[i])); !slices.Equal(got, byPart[i]) {
			t.Errorf("partition %d stored %q, want %q", i, got, byPart[i])
		}
	}
	if got := srv.Messages(topic); len(got) != 0 {
		t.Errorf("the partitioned topic itself stored %q", got)
	}

	got := receiveN(t, cons, len(want))
	index := indexOf(want)
	seen := map[string]bool{}
	var lastOf [n]pulsar.MessageID
	for _, r := range got {
		k, ok := index[r.payload]
		if !ok || seen[r.payload] {
			t.Fatalf("unexpected or repeated message %q", r.payload)
		}
		seen[r.payload] = true
		if !sameID(r.id, ids[k]) {
			t.Errorf("%q: id %v, receipt id %v", r.payload, r.id, ids[k])
		}
		p := r.id.PartitionIdx()
		if r.msg.Topic() != wantParts[p] {
			t.Errorf("%q: topic %q, want %q", r.payload, r.msg.Topic(), wantParts[p])
		}
		if prev := lastOf[p]; prev != nil && !before(prev, r.id) {
			t.Errorf("partition %d out of order: %v then %v", p, prev, r.id)
		}
		lastOf[p] = r.id
		if err := cons.Ack(r.msg); err != nil {
			t.Fatal(err)
		}
	}

	last, err := cons.GetLastMessageIDs()
	if err != nil {
		t.Fatal(err)
	}
	if len(last) != n {
		t.Fatalf("%d last ids, want one per partition", len(last))
	}
	// The client leaves PartitionIdx of these ids at 0; Topic names the
	// partition.
	for _, l := range last {
		p := slices.Index(wantParts, l.Topic())
		if p < 0 {
			t.Fatalf("last id of unknown topic %q", l.Topic())
		}
		if l.EntryID() != lastOf[p].EntryID() || l.LedgerID() != lastOf[p].LedgerID() {
			t.Errorf("last id of %s: %v, want %v", l.Topic(), l, lastOf[p])
		}
	}
}

// TestProducerNumPartitions: a producer on a partitioned topic knows its
// partition count, and on a plain topic it has one.
func TestProducerNumPartitions(t *testing.T) {
	srv, client := connect(t)
	partitioned, plain := topicName(t)+"-p", topicName(t)+"-n"
	srv.SetPartitions(partitioned, 4)
	for topic, want := range map[string]uint32{partitioned: 4, plain: 1} {
		prod, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic})
		if err != nil {
			t.Fatal(err)
		}
		if got := prod.(interface{ NumPartitions() uint32 }).NumPartitions(); got != want {
			t.Errorf("%s: %d partitions, want %d", topic, got, want)
		}
		prod.Close()
	}
}
