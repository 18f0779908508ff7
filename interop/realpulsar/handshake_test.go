package realpulsar

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/proto/frame"
)

// The broker runs with maxMessageSize=1048576 (scripts/pulsar.sh).
const brokerMaxMessageSize = 1 << 20

// TestHandshake: CONNECTED names a Pulsar server and protocol version 21,
// and its max_message_size (1 MiB here, not the 5 MiB default) becomes
// the Broker's limit.
func TestHandshake(t *testing.T) {
	rb := env(t)
	b := start(t, rb.ServiceURL)

	version, protocol := b.ServerVersion()
	if !strings.HasPrefix(version, "Pulsar Server") {
		t.Errorf("server_version = %q, want it to start with %q", version, "Pulsar Server")
	}
	if protocol != frame.ProtocolVersion {
		t.Errorf("protocol_version = %d, want %d (what CONNECT asked for)", protocol, frame.ProtocolVersion)
	}
	if got := b.MaxMessageSize(); got != brokerMaxMessageSize {
		t.Errorf("MaxMessageSize = %d, want the broker's %d", got, brokerMaxMessageSize)
	}
	t.Logf("CONNECTED: server_version %q, protocol_version %d, max_message_size %d", version, protocol, b.MaxMessageSize())
}

// TestMaxMessageSizeEnforced: a SEND the broker's 1 MiB limit (plus the
// 10 KiB frame padding both sides allow) admits is receipted, and one
// beyond it is refused by the Broker before it reaches the wire, with the
// connection unharmed.
func TestMaxMessageSizeEnforced(t *testing.T) {
	rb := env(t)
	b := start(t, rb.ServiceURL)
	ctx := bounded(t)
	topic := fullName(topicName(t))

	receipts, h := pushes(4)
	id := b.NewProducerID()
	reg, err := b.RegisterProducer(ctx, id, h)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close(ctx)
	conn := b.Connection()
	ok, err := createProducer(ctx, b, conn, id, topic)
	if err != nil {
		t.Fatalf("PRODUCER: %v", err)
	}

	// Just under the limit: a payload of 1 MiB less room for the metadata.
	fits := bytes.Repeat([]byte{'a'}, brokerMaxMessageSize-512)
	if err := b.PublishMessageOn(ctx, conn, sendFrame(t, id, 0, ok.GetProducerName(), fits)); err != nil {
		t.Fatalf("publish %d bytes: %v", len(fits), err)
	}
	if p := next(t, receipts, "receipt"); p.Kind != pulsarconn.PushReceipt || p.Command.GetSendReceipt().GetSequenceId() != 0 {
		t.Fatalf("after a message within the limit: push %v %v, want the receipt of sequence 0", p.Kind, p.Err)
	}

	tooBig := bytes.Repeat([]byte{'b'}, brokerMaxMessageSize+20<<10)
	err = b.PublishMessageOn(ctx, conn, sendFrame(t, id, 1, ok.GetProducerName(), tooBig))
	if !errors.Is(err, pulsarconn.ErrMessageTooLarge) {
		t.Fatalf("publish %d bytes: err = %v, want ErrMessageTooLarge", len(tooBig), err)
	}

	// The refusal cost nothing: the same producer goes on, on the same
	// connection.
	if err := b.PublishMessageOn(ctx, conn, sendFrame(t, id, 1, ok.GetProducerName(), []byte("after"))); err != nil {
		t.Fatalf("publish after the refusal: %v", err)
	}
	if p := next(t, receipts, "receipt"); p.Kind != pulsarconn.PushReceipt || p.Command.GetSendReceipt().GetSequenceId() != 1 {
		t.Fatalf("after the refusal: push %v %v, want the receipt of sequence 1", p.Kind, p.Err)
	}
	if b.Connection() != conn {
		t.Fatalf("connection changed from %d to %d", conn, b.Connection())
	}
}
