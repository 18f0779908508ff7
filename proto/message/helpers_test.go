package message_test

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/message"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// compressions are every compression Pulsar defines.
var compressions = []pulsarpb.CompressionType{
	pulsarpb.CompressionType_NONE,
	pulsarpb.CompressionType_LZ4,
	pulsarpb.CompressionType_ZLIB,
	pulsarpb.CompressionType_ZSTD,
	pulsarpb.CompressionType_SNAPPY,
}

// text is a compressible payload of about n bytes.
func text(n int) []byte {
	return []byte(strings.Repeat("the quick brown fox jumps over the lazy dog. ", n/45+1)[:n])
}

// fullMessage sets every field an Encoder writes for a single message.
func fullMessage() message.Message {
	return message.Message{
		Payload:       text(3000),
		SequenceID:    41,
		PublishTime:   1_700_000_000_123,
		EventTime:     1_699_999_999_000,
		Key:           "a2V5",
		KeyB64Encoded: true,
		OrderingKey:   []byte{0, 1, 2},
		Properties:    map[string]string{"b": "2", "a": "1", "empty": ""},
		NullValue:     true,
		SchemaVersion: []byte{0, 0, 0, 7},
		DeliverAt:     1_700_000_060_000,
	}
}

// batchMessages are three messages with different fields each.
func batchMessages() []message.Message {
	return []message.Message{
		{Payload: text(500), SequenceID: 10, PublishTime: 1_700_000_000_000, EventTime: 5, Key: "k1",
			Properties: map[string]string{"p": "v"}, SchemaVersion: []byte{9}},
		{Payload: []byte{}, SequenceID: 11, OrderingKey: []byte("ok"), NullValue: true},
		{Payload: text(700), SequenceID: 12, Key: "Zm9v", KeyB64Encoded: true,
			Properties: map[string]string{"x": "1", "y": "2"}},
	}
}

// decodeFrame decodes wire with the zero Decoder and fails t on error.
func decodeFrame(t testing.TB, wire []byte) (*pulsarpb.BaseCommand, *message.Entry) {
	t.Helper()
	cmd, e, err := message.Decoder{}.DecodeFrame(wire)
	require.NoError(t, err)
	return cmd, e
}

// asMessage turns an encoded SEND frame into the MESSAGE a broker delivers
// for it, with bem as its broker entry metadata when not nil.
func asMessage(t testing.TB, send []byte, bem *pulsarpb.BrokerEntryMetadata) []byte {
	t.Helper()
	cmdSize := binary.BigEndian.Uint32(send[4:])
	section := send[8+cmdSize:]
	cmd := &pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_MESSAGE.Enum(),
		Message: &pulsarpb.CommandMessage{
			ConsumerId: new(uint64(3)),
			MessageId:  &pulsarpb.MessageIdData{LedgerId: new(uint64(7)), EntryId: new(uint64(8))},
		},
	}
	out, err := frame.AppendCommand(nil, cmd)
	require.NoError(t, err)
	if bem != nil {
		b, err := bem.MarshalVT()
		require.NoError(t, err)
		out = binary.BigEndian.AppendUint16(out, frame.MagicBrokerEntryMetadata)
		out = binary.BigEndian.AppendUint32(out, uint32(len(b)))
		out = append(out, b...)
	}
	out = append(out, section...)
	binary.BigEndian.PutUint32(out, uint32(len(out)-4))
	return out
}
