package realpulsar

import (
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/proto/message"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// TestBatchAndCompressionFromOfficialClient: what the official Go client
// (apache/pulsar-client-go) publishes through the real broker — a batch
// of messages, and batches compressed with LZ4 and with ZSTD — reaches a
// consumer on this library's path (SUBSCRIBE, FLOW, MESSAGE pushes) intact:
// checksums check, the metadata names the compression and the batch size,
// and the payload decompresses and splits into exactly the messages sent.
func TestBatchAndCompressionFromOfficialClient(t *testing.T) {
	rb := env(t)
	cases := []struct {
		name        string
		compression pulsar.CompressionType
		want        pulsarpb.CompressionType
	}{
		{"none", pulsar.NoCompression, pulsarpb.CompressionType_NONE},
		{"lz4", pulsar.LZ4, pulsarpb.CompressionType_LZ4},
		{"zstd", pulsar.ZSTD, pulsarpb.CompressionType_ZSTD},
	}
	b := start(t, rb.ServiceURL)
	client, err := pulsar.NewClient(pulsar.ClientOptions{
		URL: rb.ServiceURL, OperationTimeout: safety, ConnectionTimeout: safety,
		Logger:            log.NewLoggerWithSlog(slog.New(slog.NewTextHandler(io.Discard, nil))),
		MetricsRegisterer: prometheus.NewRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := bounded(t)
			topic := fullName(topicName(t))
			const n = 10

			// Subscribe first, on this library's path.
			messages, h := pushes(16)
			cid := b.NewConsumerID()
			reg, err := b.RegisterConsumer(ctx, cid, h)
			if err != nil {
				t.Fatal(err)
			}
			defer reg.Close(ctx)
			if err := subscribe(ctx, b, cid, topic, "sub", pulsarpb.CommandSubscribe_Exclusive); err != nil {
				t.Fatalf("SUBSCRIBE: %v", err)
			}
			if err := flow(ctx, b, cid, 16); err != nil {
				t.Fatal(err)
			}

			// Publish one batch of n with the official client: SendAsync
			// fills the batch, Flush sends it as one entry.
			p, err := client.CreateProducer(pulsar.ProducerOptions{
				Topic: topic, CompressionType: tc.compression,
				BatchingMaxMessages: n, BatchingMaxPublishDelay: time.Hour,
			})
			if err != nil {
				t.Fatalf("CreateProducer: %v", err)
			}
			defer p.Close()
			sent := make(chan error, n)
			for i := range n {
				p.SendAsync(ctx, &pulsar.ProducerMessage{
					Payload:    fmt.Appendf(nil, "%s-%d", tc.name, i),
					Key:        fmt.Sprintf("key-%d", i),
					Properties: map[string]string{"index": fmt.Sprint(i)},
				}, func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) { sent <- err })
			}
			if err := p.FlushWithCtx(ctx); err != nil {
				t.Fatalf("Flush: %v", err)
			}
			for range n {
				if err := <-sent; err != nil {
					t.Fatalf("SendAsync: %v", err)
				}
			}

			push := next(t, messages, "the batch")
			if push.Kind != pulsarconn.PushMessage {
				t.Fatalf("push %v (%v), want a message", push.Kind, push.Err)
			}
			if !push.Payload.HasChecksum || !push.Payload.ChecksumOK {
				t.Fatalf("checksum carried %v, ok %v", push.Payload.HasChecksum, push.Payload.ChecksumOK)
			}
			md, err := push.Payload.DecodeMetadata()
			if err != nil {
				t.Fatal(err)
			}
			if md.GetCompression() != tc.want || md.GetNumMessagesInBatch() != n {
				t.Fatalf("metadata: compression %v, %d messages in the batch; want %v and %d",
					md.GetCompression(), md.GetNumMessagesInBatch(), tc.want, n)
			}
			e, err := message.Decode(push.Payload)
			if err != nil {
				t.Fatalf("decode %v: %v", md.GetCompression(), err)
			}
			for i, m := range e.Messages {
				wantPayload, wantKey := fmt.Sprintf("%s-%d", tc.name, i), fmt.Sprintf("key-%d", i)
				if string(m.Payload) != wantPayload || m.Key != wantKey ||
					len(m.Properties) != 1 || m.Properties["index"] != fmt.Sprint(i) {
					t.Errorf("message %d of the batch: %q key %q properties %v; want %q key %q index %d",
						i, m.Payload, m.Key, m.Properties, wantPayload, wantKey, i)
				}
			}
			// The whole batch is one entry: acknowledging its id consumes it.
			if _, err := b.Request(ctx, &pulsarpb.BaseCommand{
				Type: pulsarpb.BaseCommand_ACK.Enum(),
				Ack: &pulsarpb.CommandAck{ConsumerId: proto.Uint64(cid), AckType: pulsarpb.CommandAck_Individual.Enum(),
					MessageId: []*pulsarpb.MessageIdData{push.Command.GetMessage().GetMessageId()}},
			}); err != nil {
				t.Fatalf("ACK: %v", err)
			}
			if backlog := subscriptionBacklog(t, rb, topic, "sub"); backlog != 0 {
				t.Fatalf("backlog %d after acknowledging the batch", backlog)
			}
		})
	}
}
