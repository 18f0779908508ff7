package message_test

import (
	"fmt"
	"testing"

	"github.com/pulsarconn/pulsarconn/proto/message"
)

// benchBatch is a batch of 100 small messages with a key and a property
// each, like a producer's under load.
func benchBatch() []message.Message {
	msgs := make([]message.Message, 100)
	for i := range msgs {
		msgs[i] = message.Message{
			Payload:     fmt.Appendf(nil, `{"order":%d,"item":"widget","qty":%d,"note":"the quick brown fox"}`, i, i%7),
			SequenceID:  uint64(i),
			PublishTime: 1_700_000_000_000,
			Key:         fmt.Sprintf("customer-%d", i%10),
			Properties:  map[string]string{"source": "bench"},
		}
	}
	return msgs
}

// BenchmarkEncodeSingle encodes an uncompressed single message with a key
// and properties into a reused buffer: no allocation.
func BenchmarkEncodeSingle(b *testing.B) {
	enc := &message.Encoder{ProducerName: "bench"}
	m := fullMessage()
	m.Payload = text(256)
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	b.SetBytes(int64(len(m.Payload)))
	for b.Loop() {
		var err error
		m.SequenceID++
		if buf, err = enc.AppendSend(buf[:0], 1, &m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeBatch encodes a batch of 100 messages with each
// compression into a reused buffer.
func BenchmarkEncodeBatch(b *testing.B) {
	msgs := benchBatch()
	size := 0
	for _, m := range msgs {
		size += len(m.Payload)
	}
	for _, c := range compressions {
		b.Run(c.String(), func(b *testing.B) {
			enc := &message.Encoder{ProducerName: "bench", Compression: c}
			var buf []byte
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				var err error
				if buf, err = enc.AppendBatch(buf[:0], 1, msgs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(buf)), "frame-bytes")
		})
	}
}

// BenchmarkDecodeBatch decodes the frame of a batch of 100 messages with
// each compression: checksum, metadata, decompression and splitting.
func BenchmarkDecodeBatch(b *testing.B) {
	msgs := benchBatch()
	for _, c := range compressions {
		b.Run(c.String(), func(b *testing.B) {
			wire, err := (&message.Encoder{ProducerName: "bench", Compression: c}).AppendBatch(nil, 1, msgs)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(wire)))
			for b.Loop() {
				_, e, err := message.Decoder{}.DecodeFrame(wire)
				if err != nil || len(e.Messages) != len(msgs) {
					b.Fatal(err)
				}
			}
		})
	}
}
