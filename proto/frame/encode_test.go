package frame_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// The codec encodes with vtprotobuf's generated SizeVT and
// MarshalToSizedBufferVT, and decodes with proto.Unmarshal. These tests
// hold the encoding to proto.Marshal's, byte for byte.

// vtMessage is a message with vtprotobuf's generated methods.
type vtMessage interface {
	proto.Message
	MarshalVT() ([]byte, error)
}

// decodedKinds makes a new message of each kind the codec handles.
var decodedKinds = []struct {
	name string
	new  func() vtMessage
}{
	{"BaseCommand", func() vtMessage { return new(pulsarpb.BaseCommand) }},
	{"MessageMetadata", func() vtMessage { return new(pulsarpb.MessageMetadata) }},
	{"BrokerEntryMetadata", func() vtMessage { return new(pulsarpb.BrokerEntryMetadata) }},
}

// checkEncodingMatchesProto decodes b, as each message kind, with
// proto.Unmarshal, and checks that whatever decodes encodes the same with
// the generated code as with proto.Marshal.
func checkEncodingMatchesProto(t *testing.T, b []byte) {
	t.Helper()
	for _, kind := range decodedKinds {
		m := kind.new()
		if proto.Unmarshal(b, m) != nil {
			continue
		}
		want, err := proto.Marshal(m)
		if err != nil {
			t.Fatalf("proto.Marshal of %v: %v", m, err)
		}
		got, err := m.MarshalVT()
		if err != nil {
			t.Fatalf("MarshalVT of %v: %v", m, err)
		}
		if !bytes.Equal(want, got) {
			t.Fatalf("%s from % x encodes to\n% x by proto.Marshal,\n% x by MarshalVT", kind.name, b, want, got)
		}
		if cmd, ok := m.(*pulsarpb.BaseCommand); ok {
			framed, err := frame.AppendCommand(nil, cmd)
			if err != nil {
				t.Fatalf("AppendCommand of %v: %v", cmd, err)
			}
			if !bytes.Equal(cat(u32(uint32(len(want)+4)), u32(uint32(len(want))), want), framed) {
				t.Fatalf("AppendCommand of %v: % x, want % x framed", cmd, framed, want)
			}
		}
	}
}

// tag encodes a field's key in its shortest form.
func tag(num protowire.Number, typ protowire.Type) []byte { return protowire.AppendTag(nil, num, typ) }

// lenField encodes a length-delimited field.
func lenField(num protowire.Number, v []byte) []byte {
	return protowire.AppendBytes(tag(num, protowire.BytesType), v)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// nestedReceipt encodes a SEND_RECEIPT whose message id nests levels
// first-chunk message ids: BaseCommand, CommandSendReceipt and levels+1
// MessageIdData, levels+3 messages in all.
func nestedReceipt(levels int) []byte {
	var id []byte
	for range levels {
		id = lenField(7, id) // MessageIdData.first_chunk_message_id
	}
	return cat([]byte{0x08, 0x07}, lenField(7, lenField(3, id)))
}

// sendReceiptType is a BaseCommand's type field for SEND_RECEIPT (7).
var sendReceiptType = []byte{0x08, 0x07}

// TestParseDepthLimit checks the nesting limit on both sides of
// proto.Unmarshal's 10,000 messages: a hostile broker's deep nesting is a
// malformed frame, not a goroutine stack without bound.
func TestParseDepthLimit(t *testing.T) {
	for _, levels := range []int{0, 10, 200, 10_000 - 3, 10_001 - 3} {
		cmd := nestedReceipt(levels)
		want := proto.Unmarshal(cmd, new(pulsarpb.BaseCommand))
		require.Equal(t, levels+3 > 10_000, want != nil, "proto.Unmarshal at %d messages: %v", levels+3, want)
		_, err := frame.Parse(simpleBody(cmd))
		if want != nil {
			assert.ErrorIs(t, err, frame.ErrMalformed, "%d messages", levels+3)
		} else {
			assert.NoError(t, err, "%d messages", levels+3)
		}
		checkEncodingMatchesProto(t, cmd)
	}
}

// TestParseMissingFieldsInSubMessage: the public protocol marks some
// fields required (a receipt's producer and sequence ids, a message id's
// ledger and entry), but pulsar.proto declares every field optional, so
// proto.Unmarshal accepted a sub-command without them, and Parse still
// does. Only a BaseCommand without its type is refused, by Parse itself.
func TestParseMissingFieldsInSubMessage(t *testing.T) {
	for name, sub := range map[string][]byte{
		"empty receipt":                    nil,
		"receipt without ids":              lenField(3, nil),
		"message id without ledger, entry": lenField(3, []byte{0x18, 0x01}), // partition = 1
	} {
		t.Run(name, func(t *testing.T) {
			cmd := cat(sendReceiptType, lenField(7, sub))
			require.NoError(t, proto.Unmarshal(cmd, new(pulsarpb.BaseCommand)))
			f, err := frame.Parse(simpleBody(cmd))
			require.NoError(t, err)
			r := f.Command.GetSendReceipt()
			require.NotNil(t, r)
			assert.Nil(t, r.ProducerId)
			assert.Nil(t, r.SequenceId)
			if id := r.GetMessageId(); id != nil {
				assert.Nil(t, id.LedgerId)
				assert.Nil(t, id.EntryId)
			}
			checkEncodingMatchesProto(t, cmd)
		})
	}
	t.Run("no type", func(t *testing.T) {
		cmd := lenField(7, lenField(3, nil))
		require.NoError(t, proto.Unmarshal(cmd, new(pulsarpb.BaseCommand)))
		f, err := frame.Parse(simpleBody(cmd))
		assert.ErrorIs(t, err, frame.ErrMalformed)
		assert.Nil(t, f)
	})
}

// TestEncodingMatchesProto checks AppendCommand and AppendMessage, which
// encode with the generated code, against proto.Marshal on messages with
// every kind of field the hot paths send, unknown fields included.
func TestEncodingMatchesProto(t *testing.T) {
	cmds := []*pulsarpb.BaseCommand{pingCommand(), sendCommand(1, 2)}
	for _, cmd := range benchCommands {
		cmds = append(cmds, cmd)
	}
	withUnknown := &pulsarpb.BaseCommand{}
	require.NoError(t, proto.Unmarshal(cat(sendReceiptType, tag(200, protowire.VarintType), []byte{0x2a}), withUnknown))
	cmds = append(cmds, withUnknown, &pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_ACK.Enum(),
		Ack: &pulsarpb.CommandAck{
			ConsumerId: proto.Uint64(3),
			AckType:    pulsarpb.CommandAck_Individual.Enum(),
			MessageId: []*pulsarpb.MessageIdData{
				{LedgerId: proto.Uint64(1), EntryId: proto.Uint64(2), AckSet: []int64{-1, 0, 1 << 40}},
				{LedgerId: proto.Uint64(1), EntryId: proto.Uint64(3), Partition: proto.Int32(-1)},
			},
		},
	})
	for _, cmd := range cmds {
		raw, err := proto.Marshal(cmd)
		require.NoError(t, err)
		want := cat(u32(uint32(len(raw)+4)), u32(uint32(len(raw))), raw)
		got, err := frame.AppendCommand([]byte("prefix"), cmd)
		require.NoError(t, err)
		assert.Equal(t, cat([]byte("prefix"), want), got, "%v", cmd)
	}

	md := testMetadata()
	rawMD, err := proto.Marshal(md)
	require.NoError(t, err)
	want, err := frame.AppendPayload(nil, sendCommand(1, 2), rawMD, []byte("payload"))
	require.NoError(t, err)
	got, err := frame.AppendMessage(nil, sendCommand(1, 2), md, []byte("payload"))
	require.NoError(t, err)
	assert.Equal(t, want, got)
}

// FuzzEncodingMatchesProto is the differential check of the encoder: for
// any bytes that decode as a BaseCommand, a MessageMetadata or a
// BrokerEntryMetadata, the generated encoding is proto.Marshal's.
func FuzzEncodingMatchesProto(f *testing.F) {
	for _, g := range goldenFrames {
		b := goldenHex(f, g.hex)[4:]
		n := binary.BigEndian.Uint32(b)
		f.Add(b[4 : 4+n])
		if fr, err := frame.Parse(b); err == nil && fr.Payload != nil {
			f.Add(fr.Payload.Metadata)
			if fr.Payload.BrokerEntryMetadata != nil {
				f.Add(fr.Payload.BrokerEntryMetadata)
			}
		}
	}
	for _, cmd := range benchCommands {
		b, err := proto.Marshal(cmd)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	if b, err := proto.Marshal(testMetadata()); err == nil {
		f.Add(b)
	}
	// An unknown field whose tag is not in its shortest form: proto.Marshal
	// writes unknown fields back as they came.
	f.Add(cat(sendReceiptType, []byte{0xa0, 0x86, 0x00, 0x01}))
	f.Add(nestedReceipt(40))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkEncodingMatchesProto(t, b)
	})
}

// FuzzAppendPartitionedMetadata: the hand-written PARTITIONED_METADATA
// frame is AppendCommand's for the same command, whatever the topic (any
// length, any bytes) and request id, and appends to what dst holds.
func FuzzAppendPartitionedMetadata(f *testing.F) {
	f.Add("persistent://public/default/t", uint64(0))
	f.Add("", uint64(1))
	f.Add(string(bytes.Repeat([]byte{'x'}, 200)), uint64(1)<<63)
	f.Add("\xff\x00", uint64(128))
	f.Fuzz(func(t *testing.T, topic string, id uint64) {
		cmd := &pulsarpb.BaseCommand{
			Type: pulsarpb.BaseCommand_PARTITIONED_METADATA.Enum(),
			PartitionMetadata: &pulsarpb.CommandPartitionedTopicMetadata{
				Topic: proto.String(topic), RequestId: proto.Uint64(id),
			},
		}
		prefix := []byte("held")
		want, err := frame.AppendCommand(bytes.Clone(prefix), cmd)
		require.NoError(t, err)
		assert.Equal(t, want, frame.AppendPartitionedMetadata(bytes.Clone(prefix), topic, id))
	})
}
