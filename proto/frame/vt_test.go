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

// The codec decodes with vtprotobuf's generated UnmarshalVT where that
// gives proto.Unmarshal's result, and with proto.Unmarshal elsewhere
// (decode.go). These tests hold it to proto.Unmarshal, the reference: same
// accept or reject, same error, equal messages, and the same encoding back.

// vtMessage is a message with vtprotobuf's generated methods.
type vtMessage interface {
	proto.Message
	SizeVT() int
	MarshalVT() ([]byte, error)
	MarshalToSizedBufferVT(dst []byte) (int, error)
	UnmarshalVT(b []byte) error
}

// decodedKinds makes a new message of each kind the codec decodes.
var decodedKinds = []struct {
	name string
	new  func() vtMessage
}{
	{"BaseCommand", func() vtMessage { return new(pulsarpb.BaseCommand) }},
	{"MessageMetadata", func() vtMessage { return new(pulsarpb.MessageMetadata) }},
	{"BrokerEntryMetadata", func() vtMessage { return new(pulsarpb.BrokerEntryMetadata) }},
}

// outcome is what one decoder made of some bytes.
type outcome struct {
	msg vtMessage
	err error
}

func decodeWith(b []byte, newMsg func() vtMessage, decode func([]byte, vtMessage) error) outcome {
	m := newMsg()
	return outcome{msg: m, err: decode(b, m)}
}

func referenceDecode(b []byte, m vtMessage) error { return proto.Unmarshal(b, m) }
func codecDecode(b []byte, m vtMessage) error     { return frame.Unmarshal(b, m) }
func rawVTDecode(b []byte, m vtMessage) error     { return m.UnmarshalVT(b) }

// sameOutcome reports whether two decoders agree: both reject, or both
// accept with equal messages.
func sameOutcome(a, b outcome) bool {
	if (a.err == nil) != (b.err == nil) {
		return false
	}
	return a.err != nil || proto.Equal(a.msg, b.msg)
}

// checkMatchesProto checks the codec's decoding of b, as each message
// kind, against proto.Unmarshal's, and UnmarshalVT's wherever the codec
// takes the fast path; and that what decodes encodes back as proto.Marshal
// encodes it.
func checkMatchesProto(t *testing.T, b []byte) {
	t.Helper()
	for _, kind := range decodedKinds {
		want := decodeWith(b, kind.new, referenceDecode)
		got := decodeWith(b, kind.new, codecDecode)
		if !sameOutcome(want, got) {
			t.Fatalf("%s from % x: proto.Unmarshal %v, %v; codec %v, %v", kind.name, b, want.msg, want.err, got.msg, got.err)
		}
		if want.err != nil && got.err.Error() != want.err.Error() {
			t.Fatalf("%s from % x: proto.Unmarshal fails with %q, the codec with %q", kind.name, b, want.err, got.err)
		}
		if frame.FastPathOK(b, kind.new()) {
			vt := decodeWith(b, kind.new, rawVTDecode)
			if want.err != nil || !sameOutcome(want, vt) {
				t.Fatalf("%s from % x takes the fast path, but proto.Unmarshal gives %v, %v and UnmarshalVT %v, %v",
					kind.name, b, want.msg, want.err, vt.msg, vt.err)
			}
		}
		if want.err != nil {
			continue
		}
		wantEnc, err := proto.Marshal(want.msg)
		if err != nil {
			t.Fatalf("proto.Marshal of %v: %v", want.msg, err)
		}
		gotEnc, err := got.msg.MarshalVT()
		if err != nil {
			t.Fatalf("MarshalVT of %v: %v", got.msg, err)
		}
		if !bytes.Equal(wantEnc, gotEnc) {
			t.Fatalf("%s from % x encodes to\n% x by proto.Marshal,\n% x by MarshalVT", kind.name, b, wantEnc, gotEnc)
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

// vtDisagreements are encodings, one of each class decode.go lists, that
// UnmarshalVT alone decodes otherwise than proto.Unmarshal.
var vtDisagreements = []struct {
	name string
	cmd  []byte
}{
	{
		// ping (18) as a varint: proto.Unmarshal keeps it as an unknown
		// field, UnmarshalVT fails.
		name: "known field with the wrong wire type",
		cmd:  cat([]byte{0x08, 0x12}, tag(18, protowire.VarintType), []byte{0x05}),
	},
	{
		name: "field number 2^29, one past the largest",
		cmd:  cat(sendReceiptType, []byte{0x80, 0x80, 0x80, 0x80, 0x10, 0x01}),
	},
	{
		name: "end group that does not match its start",
		cmd:  cat(sendReceiptType, tag(100, protowire.StartGroupType), tag(101, protowire.EndGroupType)),
	},
	{
		// producer_id (1) of the receipt: ten bytes, the last above 1.
		name: "varint of more than 64 bits",
		cmd: cat(sendReceiptType, lenField(7, cat([]byte{0x08},
			[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}))),
	},
	{
		// ack_set (5) of the receipt's message id, packed into one byte
		// that starts a varint; the varint's end is the next field's.
		name: "packed varint running past its field",
		cmd:  cat(sendReceiptType, lenField(7, lenField(3, []byte{0x2a, 0x01, 0x80, 0x01}))),
	},
	{
		// Field 100 as a varint, its tag in three bytes instead of two.
		name: "unknown field with a tag not in its shortest form",
		cmd:  cat(sendReceiptType, []byte{0xa0, 0x86, 0x00, 0x01}),
	},
	{
		name: "sub-messages nested deeper than 10,000",
		cmd:  nestedReceipt(10_001 - 3),
	},
}

// TestParseKeepsProtoBehaviour feeds Parse, for each class of encodings
// UnmarshalVT alone gets wrong, an example: Parse must decide it as
// proto.Unmarshal does.
func TestParseKeepsProtoBehaviour(t *testing.T) {
	for _, tt := range vtDisagreements {
		t.Run(tt.name, func(t *testing.T) {
			want := decodeWith(tt.cmd, func() vtMessage { return new(pulsarpb.BaseCommand) }, referenceDecode)
			vt := decodeWith(tt.cmd, func() vtMessage { return new(pulsarpb.BaseCommand) }, rawVTDecode)
			require.False(t, sameOutcome(want, vt),
				"UnmarshalVT now agrees with proto.Unmarshal here (%v): the case tests nothing, and decode.go may be out of date", vt.err)
			assert.False(t, frame.FastPathOK(tt.cmd, new(pulsarpb.BaseCommand)))

			f, err := frame.Parse(simpleBody(tt.cmd))
			if want.err != nil {
				require.Error(t, err)
				assert.ErrorIs(t, err, frame.ErrMalformed)
				assert.Contains(t, err.Error(), want.err.Error())
				assert.Nil(t, f)
				return
			}
			require.NoError(t, err)
			assert.True(t, proto.Equal(want.msg, f.Command), "Parse %v, proto.Unmarshal %v", f.Command, want.msg)
			checkMatchesProto(t, tt.cmd)
		})
	}
}

// TestParseDepthLimit checks the nesting limit on both sides of
// proto.Unmarshal's 10,000 messages, past the fast path's own limit.
func TestParseDepthLimit(t *testing.T) {
	fastLevels := frame.MaxFastDepth + 1 - 3
	for _, levels := range []int{0, 10, fastLevels, fastLevels + 1, 200, 10_000 - 3, 10_001 - 3} {
		cmd := nestedReceipt(levels)
		want := proto.Unmarshal(cmd, new(pulsarpb.BaseCommand))
		require.Equal(t, levels+3 > 10_000, want != nil, "proto.Unmarshal at %d messages: %v", levels+3, want)
		assert.Equal(t, levels <= fastLevels, frame.FastPathOK(cmd, new(pulsarpb.BaseCommand)), "%d messages", levels+3)
		_, err := frame.Parse(simpleBody(cmd))
		if want != nil {
			assert.ErrorIs(t, err, frame.ErrMalformed, "%d messages", levels+3)
		} else {
			assert.NoError(t, err, "%d messages", levels+3)
		}
		checkMatchesProto(t, cmd)
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
			checkMatchesProto(t, cmd)
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

// TestDecodeMetadataKeepsProtoBehaviour is TestParseKeepsProtoBehaviour's
// check for DecodeMetadata and DecodeBrokerEntryMetadata, on a metadata
// field with the wrong wire type and on a varint of more than 64 bits.
func TestDecodeMetadataKeepsProtoBehaviour(t *testing.T) {
	for name, raw := range map[string][]byte{
		"producer_name as a varint": cat(tag(1, protowire.VarintType), []byte{0x01}),
		"sequence_id of 65 bits":    {0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02},
	} {
		t.Run(name, func(t *testing.T) {
			p := &frame.Payload{Metadata: raw, BrokerEntryMetadata: raw}
			md, err := p.DecodeMetadata()
			wantMD := new(pulsarpb.MessageMetadata)
			if wantErr := proto.Unmarshal(raw, wantMD); wantErr != nil {
				assert.ErrorIs(t, err, frame.ErrMalformed)
			} else {
				require.NoError(t, err)
				assert.True(t, proto.Equal(wantMD, md))
			}
			bem, err := p.DecodeBrokerEntryMetadata()
			wantBEM := new(pulsarpb.BrokerEntryMetadata)
			if wantErr := proto.Unmarshal(raw, wantBEM); wantErr != nil {
				assert.ErrorIs(t, err, frame.ErrMalformed)
			} else {
				require.NoError(t, err)
				assert.True(t, proto.Equal(wantBEM, bem))
			}
			checkMatchesProto(t, raw)
		})
	}
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

// FuzzVTMatchesProto is the differential check of the decoder: for any
// bytes, decoded as a BaseCommand, a MessageMetadata and a
// BrokerEntryMetadata, the codec must accept exactly what proto.Unmarshal
// accepts, fail with its error, and give an equal message that encodes
// back to the same bytes; and wherever the codec trusts UnmarshalVT,
// UnmarshalVT must agree with proto.Unmarshal.
func FuzzVTMatchesProto(f *testing.F) {
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
	for _, tt := range vtDisagreements {
		if len(tt.cmd) < 1024 {
			f.Add(tt.cmd)
		}
	}
	f.Add(nestedReceipt(40))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkMatchesProto(t, b)
	})
}
