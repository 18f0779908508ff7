package realpulsar

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

const produced = 10_000

// TestProduceAndConsume: a producer registered on the real broker
// publishes 10,000 pre-encoded SENDs; every SEND_RECEIPT is routed to its
// Handler, in sequence order, none lost, with entry ids that only grow. A
// consumer then subscribes from the earliest message, grants permits with
// FLOW as it goes, gets every MESSAGE routed with a checksum that checks,
// in order and intact, and acknowledges each one; the broker's own
// statistics then show an empty backlog.
func TestProduceAndConsume(t *testing.T) {
	rb := env(t)
	b := start(t, rb.ServiceURL)
	ctx := bounded(t)
	topic := fullName(topicName(t))
	const sub = "realpulsar-sub"

	// Produce.
	receipts, h := pushes(produced)
	pid := b.NewProducerID()
	reg, err := b.RegisterProducer(ctx, pid, h)
	if err != nil {
		t.Fatal(err)
	}
	conn := b.Connection()
	ok, err := createProducer(ctx, b, conn, pid, topic)
	if err != nil {
		t.Fatalf("PRODUCER: %v", err)
	}
	for i := range produced {
		f := sendFrame(t, pid, uint64(i), ok.GetProducerName(), fmt.Appendf(nil, "message-%d", i))
		if err := b.PublishMessageOn(ctx, conn, f); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	var last *pulsarpb.MessageIdData
	for i := range produced {
		p := next(t, receipts, fmt.Sprintf("receipt %d", i))
		if p.Kind != pulsarconn.PushReceipt {
			t.Fatalf("push %d: %v (%v), want a receipt", i, p.Kind, p.Err)
		}
		r := p.Command.GetSendReceipt()
		if r.GetProducerId() != pid || r.GetSequenceId() != uint64(i) {
			t.Fatalf("receipt %d: producer %d sequence %d, want producer %d sequence %d", i, r.GetProducerId(), r.GetSequenceId(), pid, i)
		}
		id := r.GetMessageId()
		if last != nil && !(id.GetLedgerId() > last.GetLedgerId() || id.GetLedgerId() == last.GetLedgerId() && id.GetEntryId() > last.GetEntryId()) {
			t.Fatalf("receipt %d: id %d:%d does not follow %d:%d", i, id.GetLedgerId(), id.GetEntryId(), last.GetLedgerId(), last.GetEntryId())
		}
		last = id
	}
	if err := reg.Close(ctx); err != nil {
		t.Fatalf("close the producer: %v", err)
	}

	// Consume.
	messages, ch := pushes(produced)
	cid := b.NewConsumerID()
	creg, err := b.RegisterConsumer(ctx, cid, ch)
	if err != nil {
		t.Fatal(err)
	}
	defer creg.Close(ctx)
	if err := subscribe(ctx, b, cid, topic, sub, pulsarpb.CommandSubscribe_Exclusive); err != nil {
		t.Fatalf("SUBSCRIBE: %v", err)
	}
	const window = 1000
	if err := flow(ctx, b, cid, window); err != nil {
		t.Fatal(err)
	}
	for i := range produced {
		p := next(t, messages, fmt.Sprintf("message %d", i))
		if p.Kind != pulsarconn.PushMessage {
			t.Fatalf("push %d: %v (%v), want a message", i, p.Kind, p.Err)
		}
		if !p.Payload.HasChecksum || !p.Payload.ChecksumOK {
			t.Fatalf("message %d: checksum carried %v, ok %v", i, p.Payload.HasChecksum, p.Payload.ChecksumOK)
		}
		if want := fmt.Sprintf("message-%d", i); string(p.Payload.Data) != want {
			t.Fatalf("message %d: payload %q, want %q", i, p.Payload.Data, want)
		}
		md, err := p.Payload.DecodeMetadata()
		if err != nil || md.GetSequenceId() != uint64(i) || md.GetProducerName() != ok.GetProducerName() {
			t.Fatalf("message %d: metadata %v, %v", i, md, err)
		}
		m := p.Command.GetMessage()
		if err := b.Send(ctx, &pulsarpb.BaseCommand{
			Type: pulsarpb.BaseCommand_ACK.Enum(),
			Ack: &pulsarpb.CommandAck{ConsumerId: proto.Uint64(cid), AckType: pulsarpb.CommandAck_Individual.Enum(),
				MessageId: []*pulsarpb.MessageIdData{m.GetMessageId()}},
		}); err != nil {
			t.Fatalf("ACK %d: %v", i, err)
		}
		// Grant the next window when half of this one is used, as a
		// consumer's receiver queue does.
		if (i+1)%(window/2) == 0 {
			if err := flow(ctx, b, cid, window/2); err != nil {
				t.Fatal(err)
			}
		}
	}
	// An ACK with a request id is answered (ACK_RESPONSE) after the broker
	// has handled every ACK before it on this connection.
	if _, err := b.Request(ctx, &pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_ACK.Enum(),
		Ack: &pulsarpb.CommandAck{ConsumerId: proto.Uint64(cid), AckType: pulsarpb.CommandAck_Individual.Enum(),
			MessageId: []*pulsarpb.MessageIdData{last}},
	}); err != nil {
		t.Fatalf("ACK with a request id: %v", err)
	}
	if backlog := subscriptionBacklog(t, rb, topic, sub); backlog != 0 {
		t.Fatalf("the broker reports a backlog of %d after every message was acknowledged", backlog)
	}
}

// topicStats is the part of the admin API's topic statistics the tests read.
type topicStats struct {
	Publishers    []json.RawMessage `json:"publishers"`
	Subscriptions map[string]struct {
		MsgBacklog int64             `json:"msgBacklog"`
		Consumers  []json.RawMessage `json:"consumers"`
	} `json:"subscriptions"`
}

// stats reads topic's statistics (a full persistent:// name) from the
// admin API.
func stats(t testing.TB, rb realBroker, topic string) topicStats {
	t.Helper()
	const prefix = "persistent://"
	body := admin(t, rb, http.MethodGet, "/persistent/"+topic[len(prefix):]+"/stats", nil)
	var s topicStats
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatalf("topic stats: %v: %s", err, body)
	}
	return s
}

func subscriptionBacklog(t testing.TB, rb realBroker, topic, sub string) int64 {
	t.Helper()
	s, ok := stats(t, rb, topic).Subscriptions[sub]
	if !ok {
		t.Fatalf("no subscription %q on %s", sub, topic)
	}
	return s.MsgBacklog
}
