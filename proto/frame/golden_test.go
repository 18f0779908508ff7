package frame_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// Golden frames, written byte by byte from the public protocol layout and
// the protobuf wire format, not produced by this package: they check our
// encoder against the specification rather than against our own decoder.
//
// Protobuf reminders used below: a field's key is (number << 3 | wire type)
// as a varint; wire type 0 is a varint, 2 is length-delimited (strings,
// bytes, sub-messages). BaseCommand.type is field 1, so its key is 0x08; the
// sub-command of type N is field N. Keys of fields 16 and up take two bytes:
// field 18 (ping), length-delimited, is 18<<3|2 = 146 = 0x92 0x01.
//
// The CRC32C values were computed with an independent bitwise CRC-32C
// (reflected polynomial 0x82F63B78) over the bytes after the checksum.
var goldenFrames = []struct {
	name string
	hex  string
	// cmd is what the frame carries; md and data are set for payload frames.
	cmd  *pulsarpb.BaseCommand
	md   *pulsarpb.MessageMetadata
	data string
	// noChecksum marks a payload frame sent the old way, without 0x0e01.
	noChecksum bool
	// decodeOnly marks frames our encoder never produces (no checksum,
	// broker entry metadata): they are checked in the decode direction only.
	decodeOnly bool
}{
	{
		name: "PING",
		hex: `00000009                   total size: 4 + 5
		      00000005                   command size
		      08 12                      type = PING (18)
		      92 01 00                   field 18, CommandPing{}, empty`,
		cmd: &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_PING.Enum(), Ping: &pulsarpb.CommandPing{}},
	},
	{
		name: "PONG",
		hex: `00000009 00000005
		      08 13                      type = PONG (19)
		      9a 01 00                   field 19 (19<<3|2 = 154), empty`,
		cmd: &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_PONG.Enum(), Pong: &pulsarpb.CommandPong{}},
	},
	{
		name: "CONNECT",
		hex: `00000010 0000000c
		      08 02                      type = CONNECT (2)
		      12 08                      field 2, 8 bytes
		        0a 04 74657374           client_version (1) = "test"
		        20 15                    protocol_version (4) = 21`,
		cmd: &pulsarpb.BaseCommand{
			Type: pulsarpb.BaseCommand_CONNECT.Enum(),
			Connect: &pulsarpb.CommandConnect{
				ClientVersion:   proto.String("test"),
				ProtocolVersion: proto.Int32(21),
			},
		},
	},
	{
		name: "LOOKUP",
		hex: `0000000f 0000000b
		      08 17                      type = LOOKUP (23)
		      ba 01 06                   field 23 (23<<3|2 = 186), 6 bytes
		        0a 01 74                 topic (1) = "t"
		        10 ac 02                 request_id (2) = 300, a two-byte varint`,
		cmd: &pulsarpb.BaseCommand{
			Type: pulsarpb.BaseCommand_LOOKUP.Enum(),
			LookupTopic: &pulsarpb.CommandLookupTopic{
				Topic:     proto.String("t"),
				RequestId: proto.Uint64(300),
			},
		},
	},
	{
		name: "SEND",
		hex: `0000001f                   total size: 4 + 8 + 2 + 4 + 4 + 7 + 2 = 31
		      00000008                   command size
		      08 06                      type = SEND (6)
		      32 04                      field 6, 4 bytes
		        08 01                    producer_id = 1
		        10 02                    sequence_id = 2
		      0e01                       checksum magic
		      41955213                   CRC32C of the 13 bytes that follow
		      00000007                   metadata size
		        0a 01 70                 producer_name (1) = "p"
		        10 02                    sequence_id (2) = 2
		        18 03                    publish_time (3) = 3
		      6869                       payload "hi"`,
		cmd: &pulsarpb.BaseCommand{
			Type: pulsarpb.BaseCommand_SEND.Enum(),
			Send: &pulsarpb.CommandSend{ProducerId: proto.Uint64(1), SequenceId: proto.Uint64(2)},
		},
		md: &pulsarpb.MessageMetadata{
			ProducerName: proto.String("p"),
			SequenceId:   proto.Uint64(2),
			PublishTime:  proto.Uint64(3),
		},
		data: "hi",
	},
	{
		name: "SEND without checksum",
		hex: `00000019                   total size: 31 - 6
		      00000008
		      08 06 32 04 08 01 10 02
		      00000007 0a0170 1002 1803  metadata size and metadata, no 0x0e01 section
		      6869`,
		cmd: &pulsarpb.BaseCommand{
			Type: pulsarpb.BaseCommand_SEND.Enum(),
			Send: &pulsarpb.CommandSend{ProducerId: proto.Uint64(1), SequenceId: proto.Uint64(2)},
		},
		md: &pulsarpb.MessageMetadata{
			ProducerName: proto.String("p"),
			SequenceId:   proto.Uint64(2),
			PublishTime:  proto.Uint64(3),
		},
		data:       "hi",
		noChecksum: true,
		decodeOnly: true,
	},
	{
		name: "MESSAGE with broker entry metadata",
		hex: `0000002e                   total size: 4 + 12 + 2 + 4 + 5 + 2 + 4 + 4 + 7 + 2 = 46
		      0000000c
		      08 09                      type = MESSAGE (9)
		      4a 08                      field 9, 8 bytes
		        08 01                    consumer_id = 1
		        12 04 08 05 10 06        message_id = {ledgerId 5, entryId 6}
		      0e02                       broker entry metadata magic
		      00000005
		        08 e8 07                 broker_timestamp = 1000
		        10 2a                    index = 42
		      0e01 41955213              checksum: same covered bytes as SEND
		      00000007 0a0170 1002 1803
		      6869`,
		cmd: &pulsarpb.BaseCommand{
			Type: pulsarpb.BaseCommand_MESSAGE.Enum(),
			Message: &pulsarpb.CommandMessage{
				ConsumerId: proto.Uint64(1),
				MessageId:  &pulsarpb.MessageIdData{LedgerId: proto.Uint64(5), EntryId: proto.Uint64(6)},
			},
		},
		md: &pulsarpb.MessageMetadata{
			ProducerName: proto.String("p"),
			SequenceId:   proto.Uint64(2),
			PublishTime:  proto.Uint64(3),
		},
		data:       "hi",
		decodeOnly: true,
	},
}

// goldenHex strips the field-by-field comments from a golden vector: each
// line holds hex byte groups, then free text, which starts at the first word
// that is not an even run of lower-case hex digits.
func goldenHex(t testing.TB, s string) []byte {
	t.Helper()
	var digits strings.Builder
	for line := range strings.Lines(s) {
		for _, f := range strings.Fields(line) {
			if len(f)%2 != 0 || strings.Trim(f, "0123456789abcdef") != "" {
				break
			}
			digits.WriteString(f)
		}
	}
	return unhex(t, digits.String())
}

func TestGoldenEncode(t *testing.T) {
	for _, g := range goldenFrames {
		if g.decodeOnly {
			continue
		}
		t.Run(g.name, func(t *testing.T) {
			want := goldenHex(t, g.hex)
			var got []byte
			var err error
			if g.md == nil {
				got, err = frame.AppendCommand(nil, g.cmd)
			} else {
				got, err = frame.AppendMessage(nil, g.cmd, g.md, []byte(g.data))
			}
			require.NoError(t, err)
			assert.Equal(t, want, got, "got  % x\nwant % x", got, want)
		})
	}
}

func TestGoldenDecode(t *testing.T) {
	for _, g := range goldenFrames {
		t.Run(g.name, func(t *testing.T) {
			f, err := frame.Parse(body(t, goldenHex(t, g.hex)))
			require.NoError(t, err)
			assert.True(t, proto.Equal(g.cmd, f.Command), "got %v", f.Command)
			if g.md == nil {
				assert.Nil(t, f.Payload)
				return
			}
			require.NotNil(t, f.Payload)
			assert.Equal(t, !g.noChecksum, f.Payload.HasChecksum)
			assert.True(t, f.Payload.ChecksumOK)
			md, err := f.Payload.DecodeMetadata()
			require.NoError(t, err)
			assert.True(t, proto.Equal(g.md, md), "got %v", md)
			assert.Equal(t, g.data, string(f.Payload.Data))
		})
	}
}

func TestGoldenBrokerEntryMetadata(t *testing.T) {
	g := goldenFrames[len(goldenFrames)-1]
	require.Equal(t, "MESSAGE with broker entry metadata", g.name)
	f, err := frame.Parse(body(t, goldenHex(t, g.hex)))
	require.NoError(t, err)
	bem, err := f.Payload.DecodeBrokerEntryMetadata()
	require.NoError(t, err)
	assert.Equal(t, uint64(1000), bem.GetBrokerTimestamp())
	assert.Equal(t, uint64(42), bem.GetIndex())
}
