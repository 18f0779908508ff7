package frame

import (
	"bytes"
	"io"
	"sync"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// TestHotStructSizes: a MESSAGE's struct, with the allocator's 8-byte
// header for objects over 512 bytes, stays in the 768-byte size class,
// and a PARTITIONED_METADATA_RESPONSE's in the 512-byte one.
func TestHotStructSizes(t *testing.T) {
	assert.LessOrEqual(t, unsafe.Sizeof(hotMessage{})+8, uintptr(768))
	assert.LessOrEqual(t, unsafe.Sizeof(hotPartitionedMetadata{}), uintptr(512))
}

// oneFramePerRead is a stream whose reads each bring one whole frame, so
// that the Reader decodes every frame where it lies in its buffer.
type oneFramePerRead [][]byte

func (r *oneFramePerRead) Read(p []byte) (int, error) {
	if len(*r) == 0 {
		return 0, io.EOF
	}
	n := copy(p, (*r)[0])
	*r = (*r)[1:]
	return n, nil
}

// next is the Broker's way to read: Fill waits for a read, and the frame
// it brought is then taken from the buffer.
func next(fr *Reader) (*Frame, error) {
	if err := fr.Fill(); err != nil {
		return nil, err
	}
	return fr.Next()
}

// returnsStream is n SEND_RECEIPT frames and n MESSAGE frames, in turn.
func returnsStream(t *testing.T, n int) *oneFramePerRead {
	t.Helper()
	var frames oneFramePerRead
	for i := range n {
		b, err := AppendCommand(nil, &pulsarpb.BaseCommand{
			Type: pulsarpb.BaseCommand_SEND_RECEIPT.Enum(),
			SendReceipt: &pulsarpb.CommandSendReceipt{ProducerId: proto.Uint64(1), SequenceId: proto.Uint64(uint64(i)),
				MessageId: &pulsarpb.MessageIdData{LedgerId: proto.Uint64(7), EntryId: proto.Uint64(uint64(i))}},
		})
		require.NoError(t, err)
		frames = append(frames, b)
		b, err = AppendMessage(nil, &pulsarpb.BaseCommand{
			Type: pulsarpb.BaseCommand_MESSAGE.Enum(),
			Message: &pulsarpb.CommandMessage{ConsumerId: proto.Uint64(2),
				MessageId: &pulsarpb.MessageIdData{LedgerId: proto.Uint64(7), EntryId: proto.Uint64(uint64(i))}},
		}, &pulsarpb.MessageMetadata{ProducerName: proto.String("p"), SequenceId: proto.Uint64(uint64(i)), PublishTime: proto.Uint64(1)},
			bytes.Repeat([]byte{byte(i)}, 100))
		require.NoError(t, err)
		frames = append(frames, b)
	}
	return &frames
}

// TestReleasedFramesGoBackToTheirReader: receipts and messages released,
// from another goroutine, go back to the Reader that read them and serve
// its next ones, each reading as it was sent; a frame of Parse, read by
// no Reader, does not go to one.
func TestReleasedFramesGoBackToTheirReader(t *testing.T) {
	const n = 8
	fr := NewReader(returnsStream(t, n), 0)
	var receipts, messages []*Frame
	for range n {
		r, err := next(fr)
		require.NoError(t, err)
		m, err := next(fr)
		require.NoError(t, err)
		receipts, messages = append(receipts, r), append(messages, m)
	}
	for i := range n {
		require.Equal(t, uint64(i), receipts[i].Command.GetSendReceipt().GetSequenceId())
		require.Equal(t, uint64(i), messages[i].Command.GetMessage().GetMessageId().GetEntryId())
		require.Equal(t, bytes.Repeat([]byte{byte(i)}, 100), messages[i].Payload.Data)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range n {
			receipts[i].Release()
			messages[i].Release()
		}
	})
	wg.Wait()
	assert.Len(t, fr.ret.receipts, n)
	assert.Len(t, fr.ret.messages, n)
	assert.Positive(t, fr.ret.bodies, "with the buffers they keep")

	again := returnsStream(t, 1)
	receipt := (*again)[0]
	fr.r = newReadBuffer(again)
	r, err := next(fr)
	require.NoError(t, err)
	m, err := next(fr)
	require.NoError(t, err)
	assert.Same(t, receipts[n-1], r, "the last released receipt serves the next one")
	assert.Same(t, messages[n-1], m, "and the last message")
	assert.Equal(t, uint64(0), r.Command.GetSendReceipt().GetSequenceId())
	assert.Equal(t, uint64(0), m.Command.GetMessage().GetMessageId().GetEntryId())
	assert.Equal(t, bytes.Repeat([]byte{0}, 100), m.Payload.Data)
	assert.Empty(t, fr.ret.receipts, "the reader took them all as its own")
	assert.Len(t, fr.rc, n-1)
	assert.Len(t, fr.msg, n-1)

	parsed, err := Parse(receipt[4:])
	require.NoError(t, err)
	require.Equal(t, pulsarpb.BaseCommand_SEND_RECEIPT, parsed.Command.GetType())
	parsed.Release()
	assert.Empty(t, fr.ret.receipts, "a frame Parse made goes to the shared pool")

	fr.trimReturns()
	assert.Len(t, fr.rc, 1, "light traffic keeps one")
	assert.Len(t, fr.msg, 1)
}

// pmStream is n PARTITIONED_METADATA_RESPONSE frames, answering request
// ids first to first+n-1 with that many partitions.
func pmStream(t *testing.T, first uint64, n int) *oneFramePerRead {
	t.Helper()
	var frames oneFramePerRead
	for id := first; id < first+uint64(n); id++ {
		b, err := AppendCommand(nil, &pulsarpb.BaseCommand{
			Type: pulsarpb.BaseCommand_PARTITIONED_METADATA_RESPONSE.Enum(),
			PartitionMetadataResponse: &pulsarpb.CommandPartitionedTopicMetadataResponse{
				RequestId: proto.Uint64(id), Partitions: proto.Uint32(uint32(id))},
		})
		require.NoError(t, err)
		frames = append(frames, b)
	}
	return &frames
}

// TestReleasedAnswersGoBackToTheirReader: PARTITIONED_METADATA_RESPONSE
// answers released from another goroutine (RequestAsyncLent's drainer)
// go back to their Reader as receipts do, and serve its next answers
// once those it recycled itself are used up.
func TestReleasedAnswersGoBackToTheirReader(t *testing.T) {
	const n = 4
	fr := NewReader(pmStream(t, 1, n+1), 0)
	var answers []*Frame
	for range n {
		f, err := next(fr)
		require.NoError(t, err)
		answers = append(answers, f)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for _, f := range answers {
			f.Release()
		}
	})
	wg.Wait()
	assert.Len(t, fr.ret.pms, n)

	f, err := next(fr)
	require.NoError(t, err)
	assert.Same(t, answers[n-1], f, "the last released answer serves the next one")
	pm := f.Command.GetPartitionMetadataResponse()
	assert.Equal(t, uint64(n+1), pm.GetRequestId())
	assert.Equal(t, uint32(n+1), pm.GetPartitions())
	assert.Empty(t, fr.ret.pms, "the reader took them all as its own")
	assert.Len(t, fr.pm, n-1)

	fr.Recycle(f)
	assert.Len(t, fr.pm, n, "Recycle keeps it with the reader's own")
	fr.trimReturns()
	assert.Len(t, fr.pm, 1, "light traffic keeps one")
}

// TestReturnsAreBounded: a Reader keeps at most maxReturned of each kind,
// and messages whose buffers together stay within maxReturnedBodies.
func TestReturnsAreBounded(t *testing.T) {
	var r returns
	for range maxReturned + 1 {
		r.putReceipt(new(hotSendReceipt))
	}
	assert.Len(t, r.receipts, maxReturned)
	for range maxReturned + 1 {
		r.putPM(new(hotPartitionedMetadata))
	}
	assert.Len(t, r.pms, maxReturned)
	big := maxReturnedBodies / 4
	for range 5 {
		r.putMessage(&hotMessage{body: make([]byte, 0, big)})
	}
	assert.Len(t, r.messages, 4)
	assert.Equal(t, 4*big, r.bodies)
}
