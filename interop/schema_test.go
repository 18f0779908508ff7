package interop

import (
	"bytes"
	"testing"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// reading is the record the schema tests publish.
type reading struct {
	Sensor string  `json:"sensor"`
	Value  float64 `json:"value"`
}

const readingSchema = `{"type":"record","name":"Reading","namespace":"interop",` +
	`"fields":[{"name":"sensor","type":"string"},{"name":"value","type":"double"}]}`

// TestSchema publishes records with a JSON schema. The producer declares
// it in PRODUCER and gets its version in PRODUCER_SUCCESS; the messages
// carry that version; a message sent with another schema makes the
// producer register it (GET_OR_CREATE_SCHEMA, a new version); and the
// consumer decodes each message by fetching the schema of its version
// (GET_SCHEMA).
func TestSchema(t *testing.T) {
	srv, client := connect(t)
	topic := topicName(t)
	jsonSchema := pulsar.NewJSONSchema(readingSchema, nil)
	cons := subscribe(t, client, pulsar.ConsumerOptions{
		Topic: topic, SubscriptionName: "sub", Schema: pulsar.NewJSONSchema(readingSchema, nil),
	})
	// With batching on: the official client puts the schema version in
	// the metadata of batches only, not of messages sent alone.
	prod, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic, Schema: jsonSchema})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()

	want := []reading{{"a", 1.5}, {"b", -2}}
	var ids []pulsar.MessageID
	for _, r := range want {
		id, err := prod.Send(bounded(t), &pulsar.ProducerMessage{Value: r})
		if err != nil {
			t.Fatalf("Send(%v): %v", r, err)
		}
		ids = append(ids, id)
	}
	// A message with a schema of its own: the producer registers it.
	id, err := prod.Send(bounded(t), &pulsar.ProducerMessage{Value: "plain text", Schema: pulsar.NewStringSchema(nil)})
	if err != nil {
		t.Fatalf("Send with a second schema: %v", err)
	}
	ids = append(ids, id)
	if n := srv.Received(pulsarpb.BaseCommand_GET_OR_CREATE_SCHEMA); n != 1 {
		t.Errorf("%d GET_OR_CREATE_SCHEMA, want 1 (for the string schema)", n)
	}

	got := receiveN(t, cons, 3)
	var versions [][]byte
	for i, r := range got {
		if !sameID(r.id, ids[i]) {
			t.Errorf("message %d: id %v, receipt id %v", i, r.id, ids[i])
		}
		versions = append(versions, r.msg.SchemaVersion())
		if i < 2 {
			var v reading
			if err := r.msg.GetSchemaValue(&v); err != nil {
				t.Fatalf("message %d: GetSchemaValue: %v", i, err)
			}
			if v != want[i] {
				t.Errorf("message %d: %+v, want %+v", i, v, want[i])
			}
		}
	}
	// A broker numbers a topic's schemas from 0, as 8-byte big-endian
	// longs.
	v0, v1 := []byte{0, 0, 0, 0, 0, 0, 0, 0}, []byte{0, 0, 0, 0, 0, 0, 0, 1}
	if !bytes.Equal(versions[0], v0) || !bytes.Equal(versions[1], v0) || !bytes.Equal(versions[2], v1) {
		t.Errorf("schema versions %x, want %x %x %x", versions, v0, v0, v1)
	}
	var s *string // the client's StringSchema decodes into a *string
	if err := got[2].msg.GetSchemaValue(&s); err != nil {
		t.Fatalf("string message: GetSchemaValue: %v", err)
	}
	if s == nil || *s != "plain text" {
		t.Errorf("string message %v, want %q", s, "plain text")
	}
	if srv.Received(pulsarpb.BaseCommand_GET_SCHEMA) == 0 {
		t.Error("the consumer never asked for a schema (GET_SCHEMA)")
	}
}
