package frame_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// unhex decodes a hex string that may contain spaces and newlines, so that
// test vectors can be laid out field by field.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	require.NoError(t, err)
	return b
}

func pingCommand() *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_PING.Enum(),
		Ping: &pulsarpb.CommandPing{},
	}
}

func sendCommand(producerID, sequenceID uint64) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_SEND.Enum(),
		Send: &pulsarpb.CommandSend{
			ProducerId: proto.Uint64(producerID),
			SequenceId: proto.Uint64(sequenceID),
		},
	}
}

func testMetadata() *pulsarpb.MessageMetadata {
	return &pulsarpb.MessageMetadata{
		ProducerName: proto.String("producer-1"),
		SequenceId:   proto.Uint64(7),
		PublishTime:  proto.Uint64(1_700_000_000_000),
		Properties: []*pulsarpb.KeyValue{
			{Key: proto.String("k"), Value: proto.String("v")},
		},
	}
}

// body strips the total-size field of one encoded frame, checking that it
// counts exactly the bytes after it.
func body(t testing.TB, encoded []byte) []byte {
	t.Helper()
	n, ok := frame.TotalSize(encoded)
	require.True(t, ok)
	require.Equal(t, len(encoded)-4, int(n), "total size must count every byte after itself")
	return encoded[4:]
}

// commandBytes returns the marshalled BaseCommand of cmd.
func commandBytes(t testing.TB, cmd *pulsarpb.BaseCommand) []byte {
	t.Helper()
	b, err := proto.Marshal(cmd)
	require.NoError(t, err)
	return b
}

// simpleBody builds a frame body (no total-size field) by hand: the command
// size, then the command bytes, then rest.
func simpleBody(cmd []byte, rest ...[]byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(cmd)))
	b = append(b, cmd...)
	for _, r := range rest {
		b = append(b, r...)
	}
	return b
}

// withTotalSize prefixes a body with its total-size field.
func withTotalSize(body []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

func u16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

func TestChecksumKnownAnswer(t *testing.T) {
	// The standard check value of CRC-32C (Castagnoli), as in RFC 3720
	// appendix B.4 and every CRC catalogue.
	assert.Equal(t, uint32(0xE3069283), frame.Checksum([]byte("123456789")))
	assert.Equal(t, uint32(0), frame.Checksum(nil))
	// It is not the IEEE CRC-32 (whose check value is 0xCBF43926).
	assert.NotEqual(t, uint32(0xCBF43926), frame.Checksum([]byte("123456789")))
}

func TestChecksumMatchesBitwiseReference(t *testing.T) {
	// A slow, table-free CRC-32C (reflected polynomial 0x82F63B78), so that
	// the codec's table-driven one is checked against an independent
	// implementation on many lengths.
	ref := func(b []byte) uint32 {
		crc := ^uint32(0)
		for _, c := range b {
			crc ^= uint32(c)
			for range 8 {
				if crc&1 != 0 {
					crc = crc>>1 ^ 0x82F63B78
				} else {
					crc >>= 1
				}
			}
		}
		return ^crc
	}
	data := make([]byte, 300)
	for i := range data {
		data[i] = byte(i*31 + 7)
	}
	for n := range len(data) + 1 {
		require.Equal(t, ref(data[:n]), frame.Checksum(data[:n]), "length %d", n)
	}
}

func TestRoundTripSimpleFrame(t *testing.T) {
	cmds := []*pulsarpb.BaseCommand{
		pingCommand(),
		{Type: pulsarpb.BaseCommand_PONG.Enum(), Pong: &pulsarpb.CommandPong{}},
		{
			Type: pulsarpb.BaseCommand_CONNECT.Enum(),
			Connect: &pulsarpb.CommandConnect{
				ClientVersion:   proto.String("pulsarconn test"),
				ProtocolVersion: proto.Int32(frame.ProtocolVersion),
				AuthMethodName:  proto.String("token"),
				AuthData:        []byte("secret"),
				FeatureFlags:    &pulsarpb.FeatureFlags{SupportsAuthRefresh: proto.Bool(true)},
			},
		},
		{
			Type: pulsarpb.BaseCommand_LOOKUP.Enum(),
			LookupTopic: &pulsarpb.CommandLookupTopic{
				Topic:         proto.String("persistent://public/default/t"),
				RequestId:     proto.Uint64(1<<63 + 5),
				Authoritative: proto.Bool(true),
			},
		},
		{
			Type:          pulsarpb.BaseCommand_TOPIC_MIGRATED.Enum(),
			TopicMigrated: &pulsarpb.CommandTopicMigrated{ResourceId: proto.Uint64(3)},
		},
	}
	for _, cmd := range cmds {
		t.Run(cmd.GetType().String(), func(t *testing.T) {
			prefix := []byte("existing")
			out, err := frame.AppendCommand(bytes.Clone(prefix), cmd)
			require.NoError(t, err)
			require.Equal(t, prefix, out[:len(prefix)], "AppendCommand must keep dst")

			b := body(t, out[len(prefix):])
			assert.Equal(t, len(b)-4, int(binary.BigEndian.Uint32(b)), "a simple frame is all command")

			f, err := frame.Parse(b)
			require.NoError(t, err)
			assert.True(t, proto.Equal(cmd, f.Command), "got %v", f.Command)
			assert.Nil(t, f.Payload)
		})
	}
}

func TestRoundTripPayloadFrame(t *testing.T) {
	md := testMetadata()
	mdBytes, err := proto.Marshal(md)
	require.NoError(t, err)

	for _, data := range [][]byte{nil, []byte("hello"), bytes.Repeat([]byte{0xAB}, 100_000)} {
		cmd := sendCommand(1, 7)
		viaMessage, err := frame.AppendMessage(nil, cmd, md, data)
		require.NoError(t, err)
		viaPayload, err := frame.AppendPayload(nil, cmd, mdBytes, data)
		require.NoError(t, err)
		require.Equal(t, viaPayload, viaMessage, "AppendMessage is AppendPayload with marshalled metadata")

		f, err := frame.Parse(body(t, viaMessage))
		require.NoError(t, err)
		assert.True(t, proto.Equal(cmd, f.Command))
		require.NotNil(t, f.Payload)
		p := f.Payload
		assert.True(t, p.HasChecksum)
		assert.True(t, p.ChecksumOK)
		crcAt := 8 + int(binary.BigEndian.Uint32(viaMessage[4:])) + 2
		assert.Equal(t, binary.BigEndian.Uint32(viaMessage[crcAt:]), p.Checksum, "the received CRC32C")
		assert.Equal(t, frame.Checksum(viaMessage[crcAt+4:]), p.Checksum)
		assert.Nil(t, p.BrokerEntryMetadata)
		assert.Equal(t, mdBytes, p.Metadata)
		assert.Equal(t, len(data), len(p.Data))
		assert.True(t, bytes.Equal(data, p.Data))

		gotMD, err := p.DecodeMetadata()
		require.NoError(t, err)
		assert.True(t, proto.Equal(md, gotMD))
		bem, err := p.DecodeBrokerEntryMetadata()
		require.NoError(t, err)
		assert.Nil(t, bem)
	}
}

func TestAppendPayloadAppendsToExistingFrames(t *testing.T) {
	// Several frames in one buffer, as the writer coalesces them: each must
	// have its own correct sizes and checksum.
	buf, err := frame.AppendCommand(nil, pingCommand())
	require.NoError(t, err)
	first := len(buf)
	buf, err = frame.AppendMessage(buf, sendCommand(2, 3), testMetadata(), []byte("payload"))
	require.NoError(t, err)

	f, err := frame.Parse(body(t, buf[:first]))
	require.NoError(t, err)
	assert.Equal(t, pulsarpb.BaseCommand_PING, f.Command.GetType())

	f, err = frame.Parse(body(t, buf[first:]))
	require.NoError(t, err)
	assert.Equal(t, pulsarpb.BaseCommand_SEND, f.Command.GetType())
	require.NotNil(t, f.Payload)
	assert.True(t, f.Payload.ChecksumOK)
	assert.Equal(t, []byte("payload"), f.Payload.Data)
}

func TestPayloadWithoutChecksum(t *testing.T) {
	// Old peers send payload frames with no 0x0e01 section: the metadata
	// size follows the command directly.
	md, err := proto.Marshal(testMetadata())
	require.NoError(t, err)
	b := simpleBody(commandBytes(t, sendCommand(1, 2)), u32(uint32(len(md))), md, []byte("data"))

	f, err := frame.Parse(b)
	require.NoError(t, err)
	require.NotNil(t, f.Payload)
	assert.False(t, f.Payload.HasChecksum)
	assert.True(t, f.Payload.ChecksumOK, "nothing to check counts as OK")
	assert.Zero(t, f.Payload.Checksum)
	assert.Nil(t, f.Payload.BrokerEntryMetadata)
	assert.Equal(t, md, f.Payload.Metadata)
	assert.Equal(t, []byte("data"), f.Payload.Data)
}

func TestPayloadEmptyMetadataAndData(t *testing.T) {
	b := simpleBody(commandBytes(t, sendCommand(1, 2)), u32(0))
	f, err := frame.Parse(b)
	require.NoError(t, err)
	require.NotNil(t, f.Payload)
	assert.Empty(t, f.Payload.Metadata)
	assert.Empty(t, f.Payload.Data)
}

func TestBrokerEntryMetadata(t *testing.T) {
	bem := &pulsarpb.BrokerEntryMetadata{
		BrokerTimestamp: proto.Uint64(1_700_000_000_123),
		Index:           proto.Uint64(42),
	}
	bemBytes, err := proto.Marshal(bem)
	require.NoError(t, err)
	mdBytes, err := proto.Marshal(testMetadata())
	require.NoError(t, err)
	msg := &pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_MESSAGE.Enum(),
		Message: &pulsarpb.CommandMessage{
			ConsumerId: proto.Uint64(9),
			MessageId:  &pulsarpb.MessageIdData{LedgerId: proto.Uint64(1), EntryId: proto.Uint64(2)},
		},
	}
	data := []byte("delivered")
	checked := append(u32(uint32(len(mdBytes))), mdBytes...)
	checked = append(checked, data...)

	t.Run("with checksum", func(t *testing.T) {
		b := simpleBody(commandBytes(t, msg),
			u16(frame.MagicBrokerEntryMetadata), u32(uint32(len(bemBytes))), bemBytes,
			u16(frame.MagicChecksum), u32(frame.Checksum(checked)), checked)
		f, err := frame.Parse(b)
		require.NoError(t, err)
		require.NotNil(t, f.Payload)
		p := f.Payload
		assert.Equal(t, bemBytes, p.BrokerEntryMetadata)
		assert.True(t, p.HasChecksum)
		assert.True(t, p.ChecksumOK, "the checksum covers only what follows it, not the broker entry metadata")
		assert.Equal(t, mdBytes, p.Metadata)
		assert.Equal(t, data, p.Data)

		got, err := p.DecodeBrokerEntryMetadata()
		require.NoError(t, err)
		assert.True(t, proto.Equal(bem, got), "got %v", got)
	})

	t.Run("without checksum", func(t *testing.T) {
		b := simpleBody(commandBytes(t, msg),
			u16(frame.MagicBrokerEntryMetadata), u32(uint32(len(bemBytes))), bemBytes, checked)
		f, err := frame.Parse(b)
		require.NoError(t, err)
		require.NotNil(t, f.Payload)
		assert.Equal(t, bemBytes, f.Payload.BrokerEntryMetadata)
		assert.False(t, f.Payload.HasChecksum)
		assert.Equal(t, data, f.Payload.Data)
	})

	t.Run("empty", func(t *testing.T) {
		b := simpleBody(commandBytes(t, msg),
			u16(frame.MagicBrokerEntryMetadata), u32(0),
			u16(frame.MagicChecksum), u32(frame.Checksum(checked)), checked)
		f, err := frame.Parse(b)
		require.NoError(t, err)
		require.NotNil(t, f.Payload)
		assert.NotNil(t, f.Payload.BrokerEntryMetadata, "present but empty is not absent")
		assert.Empty(t, f.Payload.BrokerEntryMetadata)
		got, err := f.Payload.DecodeBrokerEntryMetadata()
		require.NoError(t, err)
		assert.True(t, proto.Equal(&pulsarpb.BrokerEntryMetadata{}, got))
	})
}

func TestWrongChecksum(t *testing.T) {
	out, err := frame.AppendMessage(nil, sendCommand(1, 2), testMetadata(), []byte("payload"))
	require.NoError(t, err)

	// Flip one bit in each byte the checksum covers, and in the checksum
	// itself: every corruption must be seen.
	b := body(t, out)
	cmdSize := int(binary.BigEndian.Uint32(b))
	crcAt := 4 + cmdSize + 2
	for i := crcAt; i < len(b); i++ {
		corrupt := bytes.Clone(b)
		corrupt[i] ^= 0x10
		f, err := frame.Parse(corrupt)
		if err != nil {
			// Corrupting the metadata size may make it run past the frame,
			// which is malformed rather than a checksum mismatch.
			assert.ErrorIs(t, err, frame.ErrMalformed, "byte %d", i)
			continue
		}
		require.NotNil(t, f.Payload, "byte %d", i)
		assert.True(t, f.Payload.HasChecksum, "byte %d", i)
		assert.False(t, f.Payload.ChecksumOK, "byte %d", i)
		assert.Equal(t, binary.BigEndian.Uint32(corrupt[crcAt:]), f.Payload.Checksum, "byte %d: the CRC32C as received", i)
	}
}

func TestDecodeMetadataErrors(t *testing.T) {
	p := &frame.Payload{Metadata: []byte{0x0f}, BrokerEntryMetadata: []byte{0xff}}
	_, err := p.DecodeMetadata()
	assert.ErrorIs(t, err, frame.ErrMalformed)
	_, err = p.DecodeBrokerEntryMetadata()
	assert.ErrorIs(t, err, frame.ErrMalformed)
}

func TestParseErrors(t *testing.T) {
	ping := commandBytes(t, pingCommand())
	send := commandBytes(t, sendCommand(1, 2))
	crc := u32(frame.Checksum(u32(0)))

	tests := []struct {
		name string
		body []byte
	}{
		{"empty body", nil},
		{"body shorter than the command size", []byte{0, 0, 0}},
		{"command size larger than the frame", simpleBody(ping)[:len(ping)+3]},
		{"command size of 4 GiB", append(u32(0xFFFFFFFF), ping...)},
		{"command size one past the frame", append(u32(uint32(len(ping)+1)), ping...)},
		// Field 1 with wire type 7, which does not exist.
		{"not protobuf: bad wire type", simpleBody([]byte{0x0f, 0x01})},
		// Field 1 (type) as a varint whose value is missing.
		{"not protobuf: truncated varint", simpleBody([]byte{0x08})},
		// Field number 0 is reserved.
		{"not protobuf: field zero", simpleBody([]byte{0x00, 0x01})},
		// Field 18 (ping) says 5 bytes follow, none do.
		{"not protobuf: truncated sub-message", simpleBody([]byte{0x08, 0x12, 0x92, 0x01, 0x05})},
		{"not protobuf: text", simpleBody([]byte("hello, broker"))},
		{"command with no type: empty", simpleBody(nil)},
		{"command with no type: sub-command only", simpleBody([]byte{0x92, 0x01, 0x00})},
		{"payload of one byte", simpleBody(send, []byte{0x0e})},
		{"truncated metadata size without checksum", simpleBody(send, []byte{0, 0, 1})},
		{"truncated checksum", simpleBody(send, u16(frame.MagicChecksum), []byte{1, 2, 3})},
		{"truncated metadata size after checksum", simpleBody(send, u16(frame.MagicChecksum), crc, []byte{0, 0})},
		{"no metadata size after checksum", simpleBody(send, u16(frame.MagicChecksum), crc)},
		{"metadata beyond the frame", simpleBody(send, u16(frame.MagicChecksum), crc, u32(100), []byte{0x0a, 0x01})},
		{"metadata one byte beyond the frame", simpleBody(send, u16(frame.MagicChecksum), crc, u32(3), []byte{1, 2})},
		{"metadata size of 4 GiB", simpleBody(send, u16(frame.MagicChecksum), crc, u32(0xFFFFFFFF))},
		{"metadata beyond the frame without checksum", simpleBody(send, u32(10), []byte{1, 2, 3})},
		{"truncated broker entry metadata size", simpleBody(send, u16(frame.MagicBrokerEntryMetadata), []byte{0, 0, 0})},
		{"broker entry metadata beyond the frame", simpleBody(send, u16(frame.MagicBrokerEntryMetadata), u32(50), []byte{8, 1})},
		{"broker entry metadata size of 4 GiB", simpleBody(send, u16(frame.MagicBrokerEntryMetadata), u32(0xFFFFFFFF))},
		{"broker entry metadata and nothing after", simpleBody(send, u16(frame.MagicBrokerEntryMetadata), u32(2), []byte{8, 1})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := frame.Parse(tt.body)
			require.Error(t, err)
			assert.Nil(t, f)
			assert.ErrorIs(t, err, frame.ErrMalformed)
			assert.NotErrorIs(t, err, frame.ErrFrameTooLarge)
			assert.True(t, strings.HasPrefix(err.Error(), "pulsarconn: "), "error %q lacks the package prefix", err)
		})
	}
}

func TestParseUnknownType(t *testing.T) {
	// Go's protobuf treats proto2 enums as open, so a type this package does
	// not know (a newer protocol's, say 99) decodes; deciding what to do with
	// it is the caller's business, not a framing error.
	f, err := frame.Parse(simpleBody([]byte{0x08, 0x63}))
	require.NoError(t, err)
	assert.Equal(t, pulsarpb.BaseCommand_Type(99), f.Command.GetType())
	_, ok := frame.RequestID(f.Command)
	assert.False(t, ok)
}

func TestParseDoesNotKeepCommandAliases(t *testing.T) {
	// The Payload aliases the body by contract; the decoded command must not,
	// so that a reader may reuse a body once the payload is consumed.
	cmd := &pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_AUTH_CHALLENGE.Enum(),
		AuthChallenge: &pulsarpb.CommandAuthChallenge{
			Challenge: &pulsarpb.AuthData{AuthData: []byte("challenge")},
		},
	}
	out, err := frame.AppendCommand(nil, cmd)
	require.NoError(t, err)
	f, err := frame.Parse(body(t, out))
	require.NoError(t, err)
	for i := range out {
		out[i] = 0
	}
	assert.Equal(t, []byte("challenge"), f.Command.GetAuthChallenge().GetChallenge().GetAuthData())
}

func TestTotalSize(t *testing.T) {
	_, ok := frame.TotalSize([]byte{0, 0, 1})
	assert.False(t, ok)
	n, ok := frame.TotalSize([]byte{0x01, 0x02, 0x03, 0x04, 0xff})
	assert.True(t, ok)
	assert.Equal(t, uint32(0x01020304), n)
}

func TestDefaults(t *testing.T) {
	// The defaults: max frame 5 MiB + 10 KiB until CONNECTED says otherwise;
	// protocol version 21.
	assert.Equal(t, 5*1024*1024, frame.DefaultMaxMessageSize)
	assert.Equal(t, 5*1024*1024+10*1024, frame.DefaultMaxFrameSize)
	assert.Equal(t, int32(21), frame.ProtocolVersion)
	assert.Equal(t, uint16(0x0e01), frame.MagicChecksum)
	assert.Equal(t, uint16(0x0e02), frame.MagicBrokerEntryMetadata)
}
