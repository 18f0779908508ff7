package frame_test

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// The benchmarks of the codec on the frames of the hot paths: the commands
// a client sends and receives per request, receipt or delivery. They use
// only the package's exported API, so the same file measures any
// implementation of it.

// benchCommands are the commands the benchmarks encode and decode, shaped
// like the ones the client and internal/bench exchange.
var benchCommands = map[string]*pulsarpb.BaseCommand{
	"PARTITIONED_METADATA": {
		Type: pulsarpb.BaseCommand_PARTITIONED_METADATA.Enum(),
		PartitionMetadata: &pulsarpb.CommandPartitionedTopicMetadata{
			Topic:     proto.String("persistent://public/default/bench-topic"),
			RequestId: proto.Uint64(123456),
		},
	},
	"PARTITIONED_METADATA_RESPONSE": {
		Type: pulsarpb.BaseCommand_PARTITIONED_METADATA_RESPONSE.Enum(),
		PartitionMetadataResponse: &pulsarpb.CommandPartitionedTopicMetadataResponse{
			Partitions: proto.Uint32(4),
			RequestId:  proto.Uint64(123456),
			Response:   pulsarpb.CommandPartitionedTopicMetadataResponse_Success.Enum(),
		},
	},
	"LOOKUP_RESPONSE": {
		Type: pulsarpb.BaseCommand_LOOKUP_RESPONSE.Enum(),
		LookupTopicResponse: &pulsarpb.CommandLookupTopicResponse{
			BrokerServiceUrl:    proto.String("pulsar://broker-1.example.com:6650"),
			BrokerServiceUrlTls: proto.String("pulsar+ssl://broker-1.example.com:6651"),
			Response:            pulsarpb.CommandLookupTopicResponse_Connect.Enum(),
			RequestId:           proto.Uint64(123456),
			Authoritative:       proto.Bool(true),
		},
	},
	"SEND_RECEIPT": {
		Type: pulsarpb.BaseCommand_SEND_RECEIPT.Enum(),
		SendReceipt: &pulsarpb.CommandSendReceipt{
			ProducerId: proto.Uint64(1),
			SequenceId: proto.Uint64(987654),
			MessageId:  &pulsarpb.MessageIdData{LedgerId: proto.Uint64(17), EntryId: proto.Uint64(987654)},
		},
	},
}

// benchMetadata is the MessageMetadata of a SEND or MESSAGE frame.
var benchMetadata = &pulsarpb.MessageMetadata{
	ProducerName: proto.String("bench"),
	SequenceId:   proto.Uint64(987654),
	PublishTime:  proto.Uint64(1_700_000_000_000),
}

func benchCommand(b *testing.B, name string) *pulsarpb.BaseCommand {
	b.Helper()
	cmd, ok := benchCommands[name]
	if !ok {
		b.Fatalf("no bench command %s", name)
	}
	return cmd
}

// BenchmarkParse decodes one frame body: a simple command, or a MESSAGE
// frame with its metadata.
func BenchmarkParse(b *testing.B) {
	for _, name := range []string{"SEND_RECEIPT", "PARTITIONED_METADATA_RESPONSE", "LOOKUP_RESPONSE"} {
		b.Run(name, func(b *testing.B) {
			out, err := frame.AppendCommand(nil, benchCommand(b, name))
			if err != nil {
				b.Fatal(err)
			}
			body := out[4:]
			b.ReportAllocs()
			for b.Loop() {
				if _, err := frame.Parse(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("MESSAGE+metadata", func(b *testing.B) {
		cmd := &pulsarpb.BaseCommand{
			Type: pulsarpb.BaseCommand_MESSAGE.Enum(),
			Message: &pulsarpb.CommandMessage{
				ConsumerId: proto.Uint64(1),
				MessageId:  &pulsarpb.MessageIdData{LedgerId: proto.Uint64(17), EntryId: proto.Uint64(987654)},
			},
		}
		out, err := frame.AppendMessage(nil, cmd, benchMetadata, make([]byte, 1024))
		if err != nil {
			b.Fatal(err)
		}
		body := out[4:]
		b.ReportAllocs()
		for b.Loop() {
			f, err := frame.Parse(body)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := f.Payload.DecodeMetadata(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAppendCommand encodes one simple frame into a reused buffer, as
// the connection's writer does.
func BenchmarkAppendCommand(b *testing.B) {
	for _, name := range []string{"PARTITIONED_METADATA", "SEND_RECEIPT"} {
		b.Run(name, func(b *testing.B) {
			cmd := benchCommand(b, name)
			buf := make([]byte, 0, 4096)
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if buf, err = frame.AppendCommand(buf[:0], cmd); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAppendMessage encodes one SEND frame with its metadata and a
// 1 KiB payload into a reused buffer.
func BenchmarkAppendMessage(b *testing.B) {
	cmd := &pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_SEND.Enum(),
		Send: &pulsarpb.CommandSend{
			ProducerId:  proto.Uint64(1),
			SequenceId:  proto.Uint64(987654),
			NumMessages: proto.Int32(1),
		},
	}
	payload := make([]byte, 1024)
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = frame.AppendMessage(buf[:0], cmd, benchMetadata, payload); err != nil {
			b.Fatal(err)
		}
	}
}
