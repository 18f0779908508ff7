package interop

import (
	"testing"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

func newReader(t testing.TB, client pulsar.Client, opts pulsar.ReaderOptions) pulsar.Reader {
	t.Helper()
	r, err := client.CreateReader(opts)
	if err != nil {
		t.Fatalf("CreateReader: %v", err)
	}
	t.Cleanup(r.Close)
	return r
}

// TestReaderFromEarliest reads a topic from the start: every message, in
// order, with the receipts' ids; then HasNext (which asks the broker for
// the last message id) says there is no more.
func TestReaderFromEarliest(t *testing.T) {
	srv, client := connect(t)
	topic := topicName(t)
	want := payloads("read", 4)
	ids := produce(t, client, topic, want)
	r := newReader(t, client, pulsar.ReaderOptions{Topic: topic, StartMessageID: pulsar.EarliestMessageID()})
	checkSame(t, readN(t, r, 4), want, ids)
	if r.HasNext() {
		t.Fatal("HasNext after the last message")
	}
	if srv.Received(pulsarpb.BaseCommand_GET_LAST_MESSAGE_ID) == 0 {
		t.Error("HasNext did not ask the broker (GET_LAST_MESSAGE_ID)")
	}
}

// TestReaderFromMessageID starts readers at a given message id: by
// default after it, with StartMessageIDInclusive at it.
func TestReaderFromMessageID(t *testing.T) {
	_, client := connect(t)
	topic := topicName(t)
	want := payloads("from", 5)
	ids := produce(t, client, topic, want)

	after := newReader(t, client, pulsar.ReaderOptions{Topic: topic, StartMessageID: ids[2]})
	checkSame(t, readN(t, after, 2), want[3:], ids[3:])
	if after.HasNext() {
		t.Fatal("HasNext after the last message")
	}

	at := newReader(t, client, pulsar.ReaderOptions{Topic: topic, StartMessageID: ids[2], StartMessageIDInclusive: true})
	checkSame(t, readN(t, at, 3), want[2:], ids[2:])
}

// TestReaderFromLatest sees only what is published after it started, and
// its HasNext is false until then.
func TestReaderFromLatest(t *testing.T) {
	_, client := connect(t)
	topic := topicName(t)
	produce(t, client, topic, payloads("before", 2))
	r := newReader(t, client, pulsar.ReaderOptions{Topic: topic, StartMessageID: pulsar.LatestMessageID()})
	if r.HasNext() {
		t.Fatal("HasNext on a reader at the latest position of a quiet topic")
	}
	want := payloads("after", 2)
	ids := produce(t, client, topic, want)
	checkSame(t, readN(t, r, 2), want, ids)
}

// TestReaderGetLastMessageID: a reader's GetLastMessageID names the last
// message published, for an empty topic and after each publication.
func TestReaderGetLastMessageID(t *testing.T) {
	_, client := connect(t)
	topic := topicName(t)
	// Create the topic, empty, by attaching a producer.
	prod, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic, DisableBatching: true})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	r := newReader(t, client, pulsar.ReaderOptions{Topic: topic, StartMessageID: pulsar.EarliestMessageID()})
	last, err := r.GetLastMessageID()
	if err != nil {
		t.Fatal(err)
	}
	if last.EntryID() != -1 {
		t.Fatalf("empty topic: last id %v, want entry -1", last)
	}
	for _, m := range payloads("last", 3) {
		id := sendAll(t, prod, []string{m})[0]
		last, err := r.GetLastMessageID()
		if err != nil {
			t.Fatal(err)
		}
		if last.LedgerID() != id.LedgerID() || last.EntryID() != id.EntryID() {
			t.Fatalf("last id %v, want %v", last, id)
		}
	}
}

// TestReaderFromLatestInclusive starts a reader at the latest message,
// inclusive: the client asks for the last message id and seeks to it, so
// the reader gets the last message already published, then new ones.
func TestReaderFromLatestInclusive(t *testing.T) {
	srv, client := connect(t)
	topic := topicName(t)
	want := payloads("incl", 3)
	ids := produce(t, client, topic, want)
	r := newReader(t, client, pulsar.ReaderOptions{
		Topic: topic, StartMessageID: pulsar.LatestMessageID(), StartMessageIDInclusive: true,
	})
	checkSame(t, readN(t, r, 1), want[2:], ids[2:])
	more := produce(t, client, topic, []string{"incl-new"})
	checkSame(t, readN(t, r, 1), []string{"incl-new"}, more)
	if srv.Received(pulsarpb.BaseCommand_SEEK) != 1 {
		t.Errorf("%d SEEKs, want 1", srv.Received(pulsarpb.BaseCommand_SEEK))
	}
}
