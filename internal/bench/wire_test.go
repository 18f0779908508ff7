package bench

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// TestShortTemplatesAreWhatAnEncoderWrites: a template's frame with its
// slots in their shortest form is byte for byte the frame the encoder
// writes for the same values, the server's templates all (the frame's
// sizes and the lengths of the messages around the slots shrink with
// them), and the padded one decodes to the same command.
func TestShortTemplatesAreWhatAnEncoderWrites(t *testing.T) {
	receipt := func(producer, seq, entry uint64) *pulsarpb.BaseCommand {
		return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_SEND_RECEIPT.Enum(), SendReceipt: &pulsarpb.CommandSendReceipt{
			ProducerId: ptr(producer), SequenceId: ptr(seq),
			MessageId: &pulsarpb.MessageIdData{LedgerId: ptr(uint64(1)), EntryId: ptr(entry)},
		}}
	}
	partitions := func(id uint64) *pulsarpb.BaseCommand {
		return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_PARTITIONED_METADATA_RESPONSE.Enum(),
			PartitionMetadataResponse: &pulsarpb.CommandPartitionedTopicMetadataResponse{
				Partitions: ptr(uint32(4)), RequestId: ptr(id), Response: pulsarpb.CommandPartitionedTopicMetadataResponse_Success.Enum(),
			}}
	}
	message := func(entry uint64) *pulsarpb.BaseCommand {
		return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_MESSAGE.Enum(), Message: &pulsarpb.CommandMessage{
			ConsumerId: ptr(uint64(7)), MessageId: &pulsarpb.MessageIdData{LedgerId: ptr(uint64(1)), EntryId: ptr(entry)},
		}}
	}
	md := &pulsarpb.MessageMetadata{ProducerName: ptr("bench"), SequenceId: ptr(uint64(0)), PublishTime: ptr(uint64(1))}
	payload := []byte("the payload")

	rt := mustTemplate(commandTemplate(3, receipt(sentinel(0), sentinel(1), sentinel(2))))
	pt := mustTemplate(commandTemplate(1, partitions(sentinel(0))))
	mt := mustTemplate(newTemplate(1, func(dst []byte) ([]byte, error) {
		return frame.AppendMessage(dst, message(sentinel(0)), md, payload)
	}))
	for _, v := range []uint64{0, 1, 127, 128, 300, 16383, 16384, 1 << 35, math.MaxInt64} {
		want, err := frame.AppendCommand(nil, receipt(v, v/2, v/3))
		require.NoError(t, err)
		assert.Equal(t, want, rt.short(v, v/2, v/3), "receipt %d", v)
		padded, err := frame.Parse(rt.set(v, v/2, v/3)[4:])
		require.NoError(t, err)
		assert.Equal(t, receipt(v, v/2, v/3).String(), padded.Command.String(), "padded receipt %d", v)

		want, err = frame.AppendCommand(nil, partitions(v))
		require.NoError(t, err)
		assert.Equal(t, want, pt.short(v), "partitions %d", v)

		want, err = frame.AppendMessage(nil, message(v), md, payload)
		require.NoError(t, err)
		assert.Equal(t, want, mt.short(v), "message %d", v)
	}
}

// TestTemplateRefusesALongMessageAroundASlot: a slot in a message of 128
// bytes or more, whose length could change width as short shrinks it,
// is refused when the template is made.
func TestTemplateRefusesALongMessageAroundASlot(t *testing.T) {
	_, err := commandTemplate(1, &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_SUCCESS.Enum(), Success: &pulsarpb.CommandSuccess{
		RequestId: ptr(sentinel(0)), Schema: &pulsarpb.Schema{Name: ptr(string(make([]byte, 200)))},
	}})
	assert.Error(t, err)
}

// FuzzAnswer: the raw loops' scan of a hot answer finds what the
// protobuf runtime decodes from the same frame, for any ids (one-byte
// and longer varints), with or without a payload after the command, and
// refuses the frame cut anywhere inside its command.
func FuzzAnswer(f *testing.F) {
	f.Add(uint64(0), uint64(1), uint32(4), true)
	f.Add(uint64(300), uint64(1<<40), uint32(200), false)
	f.Add(uint64(math.MaxUint64), uint64(127), uint32(math.MaxUint32), true)
	f.Fuzz(func(t *testing.T, a, b uint64, c uint32, payload bool) {
		pm := &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_PARTITIONED_METADATA_RESPONSE.Enum(),
			PartitionMetadataResponse: &pulsarpb.CommandPartitionedTopicMetadataResponse{
				Partitions: ptr(c), RequestId: ptr(a), Response: pulsarpb.CommandPartitionedTopicMetadataResponse_Failed.Enum(),
				Message: ptr("x"),
			}}
		receipt := &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_SEND_RECEIPT.Enum(), SendReceipt: &pulsarpb.CommandSendReceipt{
			ProducerId: ptr(a), SequenceId: ptr(b),
			MessageId: &pulsarpb.MessageIdData{LedgerId: ptr(b), EntryId: ptr(a)},
		}}
		message := &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_MESSAGE.Enum(), Message: &pulsarpb.CommandMessage{
			ConsumerId: ptr(a), MessageId: &pulsarpb.MessageIdData{LedgerId: ptr(b), EntryId: ptr(uint64(c))},
		}}
		for _, tc := range []struct {
			cmd  *pulsarpb.BaseCommand
			want [4]uint64
		}{
			{pm, [4]uint64{1: uint64(c), 2: a, 3: uint64(pulsarpb.CommandPartitionedTopicMetadataResponse_Failed)}},
			{receipt, [4]uint64{1: a, 2: b}},
			{message, [4]uint64{1: a}},
		} {
			var body []byte
			var err error
			if payload && tc.cmd.GetType() == pulsarpb.BaseCommand_MESSAGE {
				body, err = frame.AppendMessage(nil, tc.cmd, &pulsarpb.MessageMetadata{
					ProducerName: ptr("p"), SequenceId: ptr(b), PublishTime: ptr(uint64(1)),
				}, []byte("payload"))
			} else {
				body, err = frame.AppendCommand(nil, tc.cmd)
			}
			require.NoError(t, err)
			body = body[4:] // the bytes after the total size, as the raw loops' next returns them
			decoded, err := frame.Parse(body)
			require.NoError(t, err)
			require.Equal(t, tc.cmd.GetType(), decoded.Command.GetType())

			typ, got, rest, ok := answer(body)
			require.True(t, ok)
			assert.Equal(t, tc.cmd.GetType(), typ)
			assert.Equal(t, tc.want, got)
			cmdSize := len(body) - len(rest) - 4
			assert.Equal(t, int(uint32(body[0])<<24|uint32(body[1])<<16|uint32(body[2])<<8|uint32(body[3])), cmdSize)
			if tc.cmd.GetType() == pulsarpb.BaseCommand_MESSAGE && payload {
				data, ok := checkedPayload(rest)
				require.True(t, ok)
				assert.Equal(t, "payload", string(data))
			} else {
				assert.Empty(t, rest)
			}
			// The command's size claims its bytes: cut short, the command
			// is refused; and a command whose length field is cut is
			// malformed.
			for cut := 5; cut < 4+cmdSize; cut++ {
				_, _, _, ok := answer(body[:cut])
				assert.False(t, ok, "cut at %d of %d", cut, 4+cmdSize)
			}
		}
	})
}

// TestAnswerFindsTheSubCommandInAnyOrder: fields may come in any order on
// the wire; the sub-command before the type is found too, and a command
// without its sub-command is refused.
func TestAnswerFindsTheSubCommandInAnyOrder(t *testing.T) {
	var sub []byte
	sub = protowire.AppendTag(sub, 1, protowire.VarintType)
	sub = protowire.AppendVarint(sub, 5)
	sub = protowire.AppendTag(sub, 2, protowire.VarintType)
	sub = protowire.AppendVarint(sub, 300)
	var cmd []byte
	cmd = protowire.AppendTag(cmd, 22, protowire.BytesType)
	cmd = protowire.AppendBytes(cmd, sub)
	cmd = protowire.AppendTag(cmd, 1, protowire.VarintType) // the type, after its sub-command
	cmd = protowire.AppendVarint(cmd, 22)
	body := append([]byte{0, 0, 0, byte(len(cmd))}, cmd...)
	typ, f, rest, ok := answer(body)
	require.True(t, ok)
	assert.Equal(t, pulsarpb.BaseCommand_PARTITIONED_METADATA_RESPONSE, typ)
	assert.Equal(t, [4]uint64{1: 5, 2: 300}, f)
	assert.Empty(t, rest)

	noSub := []byte{0, 0, 0, 2, 1<<3 | 0, 22}
	_, _, _, ok = answer(noSub)
	assert.False(t, ok)
	var wrong []byte
	wrong = protowire.AppendTag(wrong, 1, protowire.VarintType)
	wrong = protowire.AppendVarint(wrong, 22)
	wrong = protowire.AppendTag(wrong, 7, protowire.BytesType) // not type 22's sub-command
	wrong = protowire.AppendBytes(wrong, sub)
	_, _, _, ok = answer(append([]byte{0, 0, 0, byte(len(wrong))}, wrong...))
	assert.False(t, ok)
}
