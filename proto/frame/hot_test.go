package frame_test

import (
	"bytes"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// varintField encodes a varint field.
func varintField(num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(tag(num, protowire.VarintType), v)
}

// A payload as a MESSAGE carries it: a checksum over the metadata size,
// the metadata and the data.
var (
	hotMetadata = cat(lenField(1, []byte("p")), varintField(2, 7), varintField(3, 1))
	hotPayload  = cat(u32(uint32(len(hotMetadata))), hotMetadata, []byte("data"))
	hotRest     = cat(u16(frame.MagicChecksum), u32(frame.Checksum(hotPayload)), hotPayload)
)

// messageCommand is a MESSAGE BaseCommand whose CommandMessage is inner.
func messageCommand(inner ...[]byte) []byte {
	return cat(varintField(1, 9), lenField(9, cat(inner...)))
}

// hotCommands are BaseCommands of the answers Parse decodes without the
// protobuf runtime, and the rest of their frames, in the plain shape it
// takes and in shapes it leaves to proto.Unmarshal (plain is true for the
// first kind).
var hotCommands = []hotCommandCase{
	{"metadata", cat(varintField(1, 22), lenField(22, cat(varintField(1, 4), varintField(2, 123456), varintField(3, 0)))), true, nil},
	{"metadata, inner first", cat(lenField(22, cat(varintField(2, 9), varintField(1, 0))), varintField(1, 22)), true, nil},
	{"metadata failed", cat(varintField(1, 22), lenField(22, cat(varintField(2, 9), varintField(3, 1), varintField(4, 2), lenField(5, []byte("no such topic"))))), true, nil},
	{"metadata failed, a message over 127 bytes", cat(varintField(1, 22), lenField(22, cat(varintField(2, 9), varintField(3, 1), varintField(4, 2), lenField(5, bytes.Repeat([]byte("x"), 200))))), true, nil},
	{"metadata empty", cat(varintField(1, 22), lenField(22, nil)), true, nil},
	{"metadata, partitions over 32 bits", cat(varintField(1, 22), lenField(22, varintField(1, 1<<40|3))), true, nil},
	{"metadata, unknown field", cat(varintField(1, 22), lenField(22, cat(varintField(2, 9), varintField(6, 1)))), false, nil},
	{"metadata, field twice", cat(varintField(1, 22), lenField(22, cat(varintField(2, 9), varintField(2, 10)))), false, nil},
	{"metadata, unnamed enum value", cat(varintField(1, 22), lenField(22, varintField(3, 7))), false, nil},
	{"metadata, unnamed server error", cat(varintField(1, 22), lenField(22, varintField(4, 1000))), false, nil},
	{"metadata, bad UTF-8", cat(varintField(1, 22), lenField(22, lenField(5, []byte{0xff, 0xfe}))), false, nil},
	{"metadata, wire type", cat(varintField(1, 22), lenField(22, lenField(1, []byte{1}))), false, nil},
	{"metadata, truncated", cat(varintField(1, 22), lenField(22, []byte{0x08})), false, nil},
	{"metadata, type twice", cat(varintField(1, 22), varintField(1, 22), lenField(22, nil)), false, nil},
	{"metadata, inner twice", cat(varintField(1, 22), lenField(22, varintField(1, 1)), lenField(22, varintField(2, 2))), false, nil},
	{"type and inner differ", cat(varintField(1, 7), lenField(22, varintField(1, 1))), false, nil},
	{"no type", lenField(22, varintField(1, 1)), false, nil},
	{"receipt", cat(varintField(1, 7), lenField(7, cat(varintField(1, 1), varintField(2, 987654), lenField(3, cat(varintField(1, 17), varintField(2, 987654)))))), true, nil},
	{"receipt, whole id", cat(varintField(1, 7), lenField(7, cat(varintField(4, 5), lenField(3, cat(varintField(1, 17), varintField(2, 3), varintField(3, 1<<64-1), varintField(4, 2), varintField(6, 10)))))), true, nil},
	{"receipt, id length in two bytes", cat(varintField(1, 7), lenField(7, cat(varintField(1, 1), []byte{3<<3 | 2, 0x82, 0x00}, varintField(1, 17)))), true, nil},
	{"receipt, ack set", cat(varintField(1, 7), lenField(7, lenField(3, varintField(5, 1)))), false, nil},
	{"receipt, chunked id", cat(varintField(1, 7), lenField(7, lenField(3, lenField(7, varintField(1, 1))))), false, nil},
	{"receipt, id twice", cat(varintField(1, 7), lenField(7, cat(lenField(3, varintField(1, 1)), lenField(3, varintField(2, 2))))), false, nil},
	{"receipt with a payload", cat(varintField(1, 7), lenField(7, varintField(1, 1))), false, hotRest},
	{"message", messageCommand(varintField(1, 3), lenField(2, cat(varintField(1, 17), varintField(2, 42)))), true, hotRest},
	{"message, every field", messageCommand(varintField(5, 2), varintField(3, 4), lenField(2, cat(varintField(1, 17), varintField(2, 42), varintField(3, 1), varintField(4, 0), varintField(6, 3))), varintField(1, 1<<64-1)), true, hotRest},
	{"message, no checksum", messageCommand(varintField(1, 3), lenField(2, varintField(2, 1))), true, hotPayload},
	{"message, broker entry metadata", messageCommand(varintField(1, 3)), true, cat(u16(frame.MagicBrokerEntryMetadata), u32(2), varintField(1, 5), hotRest)},
	{"message, bad checksum", messageCommand(varintField(1, 3)), true, cat(u16(frame.MagicChecksum), u32(1), hotPayload)},
	{"message, no payload", messageCommand(varintField(1, 3)), true, nil},
	{"message, truncated payload", messageCommand(varintField(1, 3)), false, u32(9)},
	{"message, redelivery count over 32 bits", messageCommand(varintField(3, 1<<33|2)), true, hotRest},
	{"message, ack set", messageCommand(varintField(1, 3), varintField(4, 5)), false, hotRest},
	{"message, packed ack set", messageCommand(varintField(1, 3), lenField(4, varintField(5, 1))), false, hotRest},
	{"message, id with ack set", messageCommand(lenField(2, lenField(5, varintField(1, 1)))), false, hotRest},
	{"message, field twice", messageCommand(varintField(1, 3), varintField(1, 4)), false, hotRest},
	{"message, unknown field", messageCommand(varintField(6, 1)), false, hotRest},
	{"message, wire type", messageCommand(lenField(1, []byte{1})), false, hotRest},
	{"other command", cat(varintField(1, 18), lenField(18, varintField(1, 1))), false, nil},
}

// checkSameAsUnmarshal checks that Parse decodes the body of a frame
// carrying cmd and then rest as proto.Unmarshal decodes cmd, and rest as
// it does after a command it leaves to proto.Unmarshal (a PING).
func checkSameAsUnmarshal(t *testing.T, cmd, rest []byte) {
	t.Helper()
	want := new(pulsarpb.BaseCommand)
	wantErr := proto.Unmarshal(cmd, want)
	if wantErr == nil && want.Type == nil {
		return // Parse refuses it, as a command without a type
	}
	var wantPayload *frame.Payload
	if wantErr == nil && len(rest) != 0 {
		var ping *frame.Frame
		ping, wantErr = frame.Parse(simpleBody(cat(varintField(1, 18), lenField(18, nil)), rest))
		if wantErr == nil {
			wantPayload = ping.Payload
		}
	}
	f, err := frame.Parse(simpleBody(cmd, rest))
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("Parse(% x, % x): error %v, want %v", cmd, rest, err, wantErr)
	}
	if err != nil {
		return
	}
	if !proto.Equal(f.Command, want) {
		t.Fatalf("Parse(% x, % x) = %v, proto.Unmarshal gives %v", cmd, rest, f.Command, want)
	}
	if !reflect.DeepEqual(f.Payload, wantPayload) {
		t.Fatalf("Parse(% x, % x) has payload %+v, want %+v", cmd, rest, f.Payload, wantPayload)
	}
}

// TestParseHotAnswers: the answers decoded without the protobuf runtime
// come out as proto.Unmarshal makes them, in one allocation (plus the
// string of an error message) when they are in the plain shape, a
// MESSAGE's Payload included.
func TestParseHotAnswers(t *testing.T) {
	for _, c := range hotCommands {
		t.Run(c.name, func(t *testing.T) {
			checkSameAsUnmarshal(t, c.cmd, c.rest)
			if !c.plain {
				return
			}
			b := simpleBody(c.cmd, c.rest)
			f, _ := frame.Parse(b)
			want := 1.0
			if r := f.Command.GetPartitionMetadataResponse(); r != nil && r.Message != nil {
				want = 2
			}
			if got := testing.AllocsPerRun(100, func() { _, _ = frame.Parse(b) }); got != want {
				t.Fatalf("Parse made %v allocations, want %v", got, want)
			}
		})
	}
}

// FuzzParseHot compares Parse with proto.Unmarshal on commands shaped
// like the hot answers, followed by payloads.
func FuzzParseHot(f *testing.F) {
	for _, c := range hotCommands {
		f.Add(c.cmd, c.rest)
	}
	f.Fuzz(func(t *testing.T, cmd, rest []byte) {
		checkSameAsUnmarshal(t, cmd, rest)
	})
}

// TestNextFrameParsesHotAnswersInPlace: NextFrame gives every frame of a
// stream as NextBody and Parse do, with its body's size. The hot answers
// it parses where they lie in the read buffer keep none of its bytes: the
// stream comes one frame per read, so each read overwrites the buffer the
// frames before it were parsed in.
func TestNextFrameParsesHotAnswersInPlace(t *testing.T) {
	var frames frameReads
	var bodies [][]byte
	for _, c := range hotCommands {
		b := simpleBody(c.cmd, c.rest)
		if _, err := frame.Parse(b); err != nil {
			continue // the malformed ones: TestParseHotAnswers has them
		}
		bodies = append(bodies, b)
		frames = append(frames, cat(u32(uint32(len(b))), b))
	}
	fr := frame.NewReader(&frames, 0)
	var got []*frame.Frame
	var sizes []int
	for {
		f, size, err := fr.NextFrame()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		got = append(got, f)
		sizes = append(sizes, size)
	}
	require.Len(t, got, len(bodies))
	for i, b := range bodies {
		want, err := frame.Parse(b)
		require.NoError(t, err)
		assert.Equal(t, len(b), sizes[i], "frame %d", i)
		assert.True(t, proto.Equal(want.Command, got[i].Command), "frame %d: %v, want %v", i, got[i].Command, want.Command)
		assert.Equal(t, want.Payload, got[i].Payload, "frame %d", i)
	}
}

// frameReads gives one of its frames per Read.
type frameReads [][]byte

func (r *frameReads) Read(p []byte) (int, error) {
	if len(*r) == 0 {
		return 0, io.EOF
	}
	n := copy(p, (*r)[0])
	if n < len((*r)[0]) {
		panic("frameReads: a frame larger than the read")
	}
	*r = (*r)[1:]
	return n, nil
}

// TestReleasedMetadataAnswerIsReused: a PARTITIONED_METADATA_RESPONSE
// read whole from the buffer and released costs no allocation, its error
// message's string aside; a string taken from a released answer stays
// as it was.
func TestReleasedMetadataAnswerIsReused(t *testing.T) {
	for _, c := range hotCommands {
		if !c.plain || !strings.HasPrefix(c.name, "metadata") {
			continue // the plain PARTITIONED_METADATA_RESPONSEs only
		}
		t.Run(c.name, func(t *testing.T) {
			body := simpleBody(c.cmd)
			one := cat(u32(uint32(len(body))), body)
			const runs = 100
			stream := bytes.Repeat(one, runs+2)
			fr := frame.NewReader(bytes.NewReader(stream), len(stream))
			first, err := fr.Next()
			require.NoError(t, err)
			msg := first.Command.GetPartitionMetadataResponse().GetMessage()
			want := proto.Clone(first.Command)
			first.Release()

			wantAllocs := 0.0
			if msg != "" {
				wantAllocs = 1
			}
			// (AllocsPerRun runs the function once more before counting.)
			allocs := testing.AllocsPerRun(runs, func() {
				f, err := fr.Next()
				if err != nil || !proto.Equal(f.Command, want) {
					t.Errorf("Next = %v, %v; want %v", f.Command, err, want)
					return
				}
				f.Release()
			})
			assert.Equal(t, wantAllocs, allocs)
			assert.Equal(t, want.(*pulsarpb.BaseCommand).GetPartitionMetadataResponse().GetMessage(), msg)
		})
	}
}

// messageFrame is a whole MESSAGE frame (size field included) for
// consumer 3, entry entry, whose payload carries data.
func messageFrame(entry uint64, data []byte) []byte {
	payload := cat(u32(uint32(len(hotMetadata))), hotMetadata, data)
	rest := cat(u16(frame.MagicChecksum), u32(frame.Checksum(payload)), payload)
	body := simpleBody(messageCommand(varintField(1, 3), lenField(2, cat(varintField(1, 17), varintField(2, entry)))), rest)
	return cat(u32(uint32(len(body))), body)
}

// TestReleasedMessageIsReused: a MESSAGE read whole from the buffer and
// released hands its allocation and its frame's bytes to the next
// message, which then costs no allocation, and each message still reads
// as it was sent; a message not released keeps its bytes meanwhile.
func TestReleasedMessageIsReused(t *testing.T) {
	const runs = 100
	// Sizes vary, within one size class of the recycled buffers.
	data := make([][]byte, runs+3)
	var frames frameReads // one per read: each is buffered whole
	for i := range data {
		data[i] = bytes.Repeat([]byte{byte(i)}, 300+i%7)
		frames = append(frames, messageFrame(uint64(i), data[i]))
	}
	r := frame.NewReader(&frames, 0)
	// next reads as the Broker does: Fill waits for a read, and the frame
	// it brought is then taken from the buffer.
	next := func() (*frame.Frame, error) {
		if err := r.Fill(); err != nil {
			return nil, err
		}
		return r.Next()
	}
	check := func(f *frame.Frame, err error, i int) bool {
		t.Helper()
		if err != nil || f.Command.GetMessage().GetMessageId().GetEntryId() != uint64(i) ||
			!f.Payload.ChecksumOK || !bytes.Equal(f.Payload.Data, data[i]) {
			t.Errorf("message %d: %v, %v", i, f, err)
			return false
		}
		return true
	}
	kept, err := next() // never released
	require.True(t, check(kept, err, 0))
	f, err := next()
	require.True(t, check(f, err, 1))
	f.Release()

	i := 2
	// (AllocsPerRun runs the function once more before counting.)
	allocs := testing.AllocsPerRun(runs, func() {
		f, err := next()
		if check(f, err, i) {
			f.Release()
		}
		i++
	})
	limit := 0.0
	if raceEnabled {
		limit = 1
	}
	assert.LessOrEqual(t, allocs, limit)
	assert.True(t, check(kept, nil, 0), "the message not released was overwritten")
}

// pmFrame is a whole PARTITIONED_METADATA_RESPONSE frame (size field
// included) for request id with n partitions.
func pmFrame(id, n uint64) []byte {
	body := simpleBody(cat(varintField(1, 22), lenField(22, cat(varintField(1, n), varintField(2, id)))))
	return cat(u32(uint32(len(body))), body)
}

// TestRecycledMetadataAnswersServeTheReader: answers handed back with
// Recycle are the next ones the Reader reads, the last one first, and
// read as they were sent; the Reader keeps at most 64 of them, and one
// once its traffic is light (at Fill); any other frame is Released.
func TestRecycledMetadataAnswersServeTheReader(t *testing.T) {
	const many = 100
	var stream []byte
	for i := range uint64(2 * many) {
		stream = append(stream, pmFrame(i, i%5)...)
	}
	fr := frame.NewReader(bytes.NewReader(stream), 0)
	first := readFrames(t, fr, many)
	for i, f := range first {
		assert.Equal(t, uint64(i), pmOf(f).GetRequestId())
		fr.Recycle(f)
	}
	fr.Recycle(nil)
	second := readFrames(t, fr, many)
	for i, f := range second {
		assert.Equal(t, uint64(many+i), pmOf(f).GetRequestId(), "read as sent")
		assert.Equal(t, uint32((many+i)%5), pmOf(f).GetPartitions(), "read as sent")
	}
	for i := range 64 {
		assert.Same(t, first[63-i], second[i], "answer %d: the 64th recycled comes first, the rest went to the pool", i)
	}

	// A SEND_RECEIPT is Released, not kept.
	receipt := simpleBody(hotCommand(t, "receipt").cmd)
	fr = frame.NewReader(bytes.NewReader(cat(u32(uint32(len(receipt))), receipt, pmFrame(1, 1))), 0)
	fs := readFrames(t, fr, 1)
	require.Equal(t, pulsarpb.BaseCommand_SEND_RECEIPT, fs[0].Command.GetType())
	fr.Recycle(fs[0])
	fs = readFrames(t, fr, 1)
	assert.Equal(t, uint64(1), pmOf(fs[0]).GetRequestId())

	// Light traffic: ten answers in one read, then one a read. At the
	// Fill after two light reads, one kept answer is left.
	lightStream := frameReads{nil, pmFrame(10, 0), pmFrame(11, 0)}
	for i := range uint64(10) {
		lightStream[0] = append(lightStream[0], pmFrame(i, 0)...)
	}
	fr = frame.NewReader(&lightStream, 0)
	ten := readFrames(t, fr, 10)
	for _, f := range ten {
		fr.Recycle(f)
	}
	fs = readFrames(t, fr, 1)
	assert.Same(t, ten[9], fs[0], "one light read is not enough")
	fr.Recycle(fs[0])
	fs = readFrames(t, fr, 1)
	assert.Same(t, ten[0], fs[0], "after two light reads")
	assert.Equal(t, uint64(11), pmOf(fs[0]).GetRequestId())
}

// hotCommandCase is a row of hotCommands.
type hotCommandCase struct {
	name  string
	cmd   []byte
	plain bool
	rest  []byte
}

// hotCommand returns the hotCommands row called name.
func hotCommand(t *testing.T, name string) hotCommandCase {
	t.Helper()
	for _, c := range hotCommands {
		if c.name == name {
			return c
		}
	}
	t.Fatalf("no hot command %q", name)
	return hotCommandCase{}
}

// readFrames waits with Fill, then reads n frames, as the engine does.
func readFrames(t *testing.T, fr *frame.Reader, n int) []*frame.Frame {
	t.Helper()
	require.NoError(t, fr.Fill())
	fs := make([]*frame.Frame, n)
	for i := range fs {
		f, _, err := fr.NextFrame()
		require.NoError(t, err)
		fs[i] = f
	}
	return fs
}

func pmOf(f *frame.Frame) *pulsarpb.CommandPartitionedTopicMetadataResponse {
	return f.Command.GetPartitionMetadataResponse()
}
