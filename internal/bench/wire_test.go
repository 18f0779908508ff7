package bench

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
