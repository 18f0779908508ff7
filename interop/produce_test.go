package interop

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
)

// TestSendWithoutBatching sends messages one at a time with batching off:
// each is one entry, the receipts' ids increase entry by entry, the broker
// stores the payloads in order, and a consumer sees the same ids in the
// same order.
func TestSendWithoutBatching(t *testing.T) {
	srv, client := connect(t)
	topic := topicName(t)
	cons, err := client.Subscribe(pulsar.ConsumerOptions{
		Topic:            topic,
		SubscriptionName: "sub",
		Type:             pulsar.Exclusive,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	prod, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic, DisableBatching: true})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()

	want := payloads("plain", 5)
	ids := sendAll(t, prod, want)
	for i := 1; i < len(ids); i++ {
		if ids[i].LedgerID() != ids[0].LedgerID() || ids[i].EntryID() != ids[i-1].EntryID()+1 {
			t.Fatalf("receipt %d id %v does not follow %v", i, ids[i], ids[i-1])
		}
	}

	stored := srv.Messages(topic)
	if got := asStrings(stored); !slices.Equal(got, want) {
		t.Fatalf("broker stored %q, want %q", got, want)
	}
	got := receiveN(t, cons, len(want))
	if !slices.Equal(payloadsOf(got), want) {
		t.Fatalf("consumer got %q, want %q", payloadsOf(got), want)
	}
	for i, r := range got {
		if !sameID(r.id, ids[i]) {
			t.Errorf("message %d: consumer id %v, receipt id %v", i, r.id, ids[i])
		}
		if r.msg.Topic() != fullName(topic) {
			t.Errorf("message %d: topic %q, want %q", i, r.msg.Topic(), fullName(topic))
		}
		if r.msg.ProducerName() != prod.Name() {
			t.Errorf("message %d: producer %q, want %q", i, r.msg.ProducerName(), prod.Name())
		}
	}
}

// TestSendAsyncBatched publishes with SendAsync and batching on (at most
// 4 messages a batch): the broker stores each batch as one entry, the
// receipts carry the entry and the index in it, the callbacks come in
// send order, and the consumer splits the batches back into messages with
// the same ids.
func TestSendAsyncBatched(t *testing.T) {
	srv, client := connect(t)
	topic := topicName(t)
	cons, err := client.Subscribe(pulsar.ConsumerOptions{
		Topic:            topic,
		SubscriptionName: "sub",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	prod, err := client.CreateProducer(pulsar.ProducerOptions{
		Topic:                   topic,
		BatchingMaxMessages:     4,
		BatchingMaxPublishDelay: time.Hour, // batches close when full, or on Flush
	})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()

	want := payloads("batched", 10)
	ids, order := sendAsyncAll(t, prod, want)
	if !slices.Equal(order, want) {
		t.Fatalf("callbacks came in order %q, want %q", order, want)
	}
	// 10 messages at 4 a batch: entries of 4, 4 and 2 messages.
	wantIdx := []int32{0, 1, 2, 3, 0, 1, 2, 3, 0, 1}
	wantEntry := []int64{0, 0, 0, 0, 1, 1, 1, 1, 2, 2}
	for i, id := range ids {
		if id.EntryID()-ids[0].EntryID() != wantEntry[i] || id.BatchIdx() != wantIdx[i] {
			t.Errorf("receipt %d: id %v, want entry +%d index %d", i, id, wantEntry[i], wantIdx[i])
		}
	}
	if n := len(srv.Stored(topic)); n != 3 {
		t.Fatalf("broker stored %d entries, want 3 batches", n)
	}

	got := receiveN(t, cons, len(want))
	if !slices.Equal(payloadsOf(got), want) {
		t.Fatalf("consumer got %q, want %q", payloadsOf(got), want)
	}
	for i, r := range got {
		if !sameID(r.id, ids[i]) {
			t.Errorf("message %d: consumer id %v, receipt id %v", i, r.id, ids[i])
		}
	}
}

// TestCompression publishes batches compressed with each codec: the
// broker stores the payload as sent (compressed, so unlike the plain
// text), and the consumer decompresses it back to the messages, in order,
// with the receipts' ids.
func TestCompression(t *testing.T) {
	for _, tc := range []struct {
		name string
		typ  pulsar.CompressionType
	}{
		{"LZ4", pulsar.LZ4},
		{"ZLIB", pulsar.ZLib},
		{"ZSTD", pulsar.ZSTD},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, client := connect(t)
			topic := topicName(t)
			cons, err := client.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "sub"})
			if err != nil {
				t.Fatal(err)
			}
			defer cons.Close()
			prod, err := client.CreateProducer(pulsar.ProducerOptions{
				Topic:                   topic,
				CompressionType:         tc.typ,
				BatchingMaxMessages:     5,
				BatchingMaxPublishDelay: time.Hour,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer prod.Close()

			// Repetitive payloads, so that every codec shrinks them.
			want := make([]string, 5)
			for i := range want {
				want[i] = string(slices.Repeat([]byte{byte('a' + i)}, 200))
			}
			ids, _ := sendAsyncAll(t, prod, want)

			stored := srv.Stored(topic)
			if len(stored) != 1 {
				t.Fatalf("broker stored %d entries, want one batch", len(stored))
			}
			if n := len(stored[0].Payload); n >= 5*200 {
				t.Errorf("stored batch is %d bytes: not compressed", n)
			}
			got := receiveN(t, cons, len(want))
			if !slices.Equal(payloadsOf(got), want) {
				t.Fatalf("consumer got %q, want %q", payloadsOf(got), want)
			}
			for i, r := range got {
				if !sameID(r.id, ids[i]) {
					t.Errorf("message %d: consumer id %v, receipt id %v", i, r.id, ids[i])
				}
			}
		})
	}
}

// sendAsyncAll publishes each payload with SendAsync, flushes, and waits
// for every callback; it returns the ids by message and the payloads in
// the order the callbacks ran.
func sendAsyncAll(t testing.TB, p pulsar.Producer, msgs []string) ([]pulsar.MessageID, []string) {
	t.Helper()
	var (
		mu    sync.Mutex
		ids   = make([]pulsar.MessageID, len(msgs))
		order []string
		errs  []error
		wg    sync.WaitGroup
	)
	for i, m := range msgs {
		wg.Add(1)
		p.SendAsync(bounded(t), &pulsar.ProducerMessage{Payload: []byte(m)},
			func(id pulsar.MessageID, pm *pulsar.ProducerMessage, err error) {
				defer wg.Done()
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				ids[i] = id
				order = append(order, string(pm.Payload))
			})
	}
	ctx, cancel := context.WithTimeout(context.Background(), safety)
	defer cancel()
	if err := p.FlushWithCtx(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("SendAsync callbacks did not all run")
	}
	if len(errs) > 0 {
		t.Fatalf("SendAsync: %v", errs)
	}
	return ids, order
}

func asStrings(bs [][]byte) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = string(b)
	}
	return out
}
