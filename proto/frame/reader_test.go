package frame_test

import (
	"bytes"
	"errors"
	"io"
	"math"
	"runtime"
	"strconv"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// countingReader counts the Read calls that reach the underlying stream.
type countingReader struct {
	r     io.Reader
	reads int
}

func (c *countingReader) Read(p []byte) (int, error) {
	c.reads++
	return c.r.Read(p)
}

// mixedStream returns n frames alternating PING and SEND-with-payload, and
// the commands they carry.
func mixedStream(t testing.TB, n int) ([]byte, []*pulsarpb.BaseCommand) {
	t.Helper()
	var buf []byte
	var cmds []*pulsarpb.BaseCommand
	for i := range n {
		var err error
		if i%2 == 0 {
			cmd := pingCommand()
			buf, err = frame.AppendCommand(buf, cmd)
			cmds = append(cmds, cmd)
		} else {
			cmd := sendCommand(1, uint64(i))
			buf, err = frame.AppendMessage(buf, cmd, testMetadata(), []byte("payload "+strconv.Itoa(i)))
			cmds = append(cmds, cmd)
		}
		require.NoError(t, err)
	}
	return buf, cmds
}

// readAll reads frames until an error and returns them with that error.
func readAll(fr *frame.Reader) ([]*frame.Frame, error) {
	var frames []*frame.Frame
	for {
		f, err := fr.Next()
		if err != nil {
			return frames, err
		}
		frames = append(frames, f)
	}
}

func checkFrames(t *testing.T, want []*pulsarpb.BaseCommand, got []*frame.Frame) {
	t.Helper()
	require.Len(t, got, len(want))
	for i, f := range got {
		require.True(t, proto.Equal(want[i], f.Command), "frame %d: got %v", i, f.Command)
		if f.Command.GetType() == pulsarpb.BaseCommand_SEND {
			require.NotNil(t, f.Payload, "frame %d", i)
			assert.True(t, f.Payload.ChecksumOK, "frame %d", i)
			assert.Equal(t, "payload "+strconv.Itoa(i), string(f.Payload.Data))
		} else {
			assert.Nil(t, f.Payload, "frame %d", i)
		}
	}
}

func TestReaderSplitReads(t *testing.T) {
	stream, cmds := mixedStream(t, 50)
	readers := map[string]func(io.Reader) io.Reader{
		"whole":    func(r io.Reader) io.Reader { return r },
		"one byte": iotest.OneByteReader,
		"half":     iotest.HalfReader,
		// The last chunk arrives together with io.EOF.
		"data and EOF": iotest.DataErrReader,
	}
	for name, wrap := range readers {
		t.Run(name, func(t *testing.T) {
			fr := frame.NewReader(wrap(bytes.NewReader(stream)), 0)
			frames, err := readAll(fr)
			assert.Equal(t, io.EOF, err, "a clean end of stream is io.EOF itself")
			checkFrames(t, cmds, frames)
		})
	}
}

func TestReaderManyFramesInOneRead(t *testing.T) {
	stream, cmds := mixedStream(t, 200)
	require.Less(t, len(stream), 64*1024, "the stream must fit in the read buffer for this test")

	cr := &countingReader{r: bytes.NewReader(stream)}
	fr := frame.NewReader(cr, 0)
	first, err := fr.Next()
	require.NoError(t, err)
	assert.Equal(t, 1, cr.reads, "one read takes in many frames")
	firstEncoded, err := frame.AppendCommand(nil, first.Command)
	require.NoError(t, err)
	// The first read uses the idle buffer (512 bytes); it came back
	// full, so the next uses the small one (4 KiB), then the large one,
	// which takes in the rest.
	assert.Equal(t, 512-len(firstEncoded), fr.Buffered(), "the rest of the read waits in the buffer")

	rest, err := readAll(fr)
	assert.Equal(t, io.EOF, err)
	checkFrames(t, cmds, append([]*frame.Frame{first}, rest...))
	assert.LessOrEqual(t, cr.reads, 4, "200 frames took %d reads", cr.reads)
}

func TestReaderFrameLargerThanReadBuffer(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 20_000) // 320 KB
	stream, err := frame.AppendMessage(nil, sendCommand(1, 1), testMetadata(), data)
	require.NoError(t, err)
	stream, err = frame.AppendCommand(stream, pingCommand())
	require.NoError(t, err)

	for name, r := range map[string]io.Reader{
		"whole":    bytes.NewReader(stream),
		"one byte": iotest.OneByteReader(bytes.NewReader(stream)),
		"half":     iotest.HalfReader(bytes.NewReader(stream)),
	} {
		t.Run(name, func(t *testing.T) {
			fr := frame.NewReader(r, 0)
			f, err := fr.Next()
			require.NoError(t, err)
			require.NotNil(t, f.Payload)
			assert.True(t, f.Payload.ChecksumOK)
			assert.True(t, bytes.Equal(data, f.Payload.Data))
			f, err = fr.Next()
			require.NoError(t, err)
			assert.Equal(t, pulsarpb.BaseCommand_PING, f.Command.GetType())
			_, err = fr.Next()
			assert.Equal(t, io.EOF, err)
		})
	}
}

// A frame over the whole-allocation threshold (4 KiB) is read into a
// buffer that grows as its bytes arrive; the result is the same.
func TestReaderFrameLargerThanGrowThreshold(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 200_000) // 3.2 MB
	stream, err := frame.AppendMessage(nil, sendCommand(1, 1), testMetadata(), data)
	require.NoError(t, err)
	stream, err = frame.AppendCommand(stream, pingCommand())
	require.NoError(t, err)

	for name, r := range map[string]io.Reader{
		"whole": bytes.NewReader(stream),
		"half":  iotest.HalfReader(bytes.NewReader(stream)),
	} {
		t.Run(name, func(t *testing.T) {
			fr := frame.NewReader(r, 0)
			f, err := fr.Next()
			require.NoError(t, err)
			require.NotNil(t, f.Payload)
			assert.True(t, f.Payload.ChecksumOK)
			assert.True(t, bytes.Equal(data, f.Payload.Data))
			f, err = fr.Next()
			require.NoError(t, err)
			assert.Equal(t, pulsarpb.BaseCommand_PING, f.Command.GetType())
		})
	}
}

// A peer announcing a frame of the largest size the limit allows (2 GiB
// after a CONNECTED with the largest max_message_size) and sending a few
// bytes costs about the threshold (4 KiB), not the announced size.
func TestReaderAnnouncedSizeIsNotAllocated(t *testing.T) {
	stream := []byte{0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 2, 8, 18}
	fr := frame.NewReader(bytes.NewReader(stream), math.MaxInt32)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := fr.NextBody()
	runtime.ReadMemStats(&after)
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("announced %d bytes, sent %d: allocated %d bytes", math.MaxInt32, len(stream)-4, allocated)
	assert.Less(t, allocated, uint64(64<<10))
}

func TestReaderNextBodyIsOwnedByCaller(t *testing.T) {
	stream, _ := mixedStream(t, 4)
	fr := frame.NewReader(bytes.NewReader(stream), 0)
	var bodies [][]byte
	for {
		b, err := fr.NextBody()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		bodies = append(bodies, b)
	}
	// Reading on must not have overwritten bodies handed out before.
	var again []byte
	for _, b := range bodies {
		again = append(again, withTotalSize(b)...)
	}
	assert.Equal(t, stream, again)
}

func TestReaderErrors(t *testing.T) {
	ping, err := frame.AppendCommand(nil, pingCommand())
	require.NoError(t, err)
	send, err := frame.AppendMessage(nil, sendCommand(1, 2), testMetadata(), []byte("x"))
	require.NoError(t, err)

	tests := []struct {
		name   string
		max    int
		stream []byte
		want   error
	}{
		{"empty stream", 0, nil, io.EOF},
		{"total size over the limit", 1024, u32(1025), frame.ErrFrameTooLarge},
		{"total size of 4 GiB", 0, u32(math.MaxUint32), frame.ErrFrameTooLarge},
		{"total size one over the default limit", 0, u32(frame.DefaultMaxFrameSize + 1), frame.ErrFrameTooLarge},
		{"total size 0", 0, u32(0), frame.ErrMalformed},
		{"total size 3", 0, append(u32(3), 0, 0, 0), frame.ErrMalformed},
		{"total size 4: empty command", 0, append(u32(4), u32(0)...), frame.ErrMalformed},
		{"command size larger than the frame", 0, withTotalSize(append(u32(100), ping[8:]...)), frame.ErrMalformed},
		{"bytes that are not protobuf", 0, withTotalSize(simpleBody([]byte{0xff, 0xff, 0xff})), frame.ErrMalformed},
		{"truncated total size", 0, ping[:3], io.ErrUnexpectedEOF},
		{"truncated command size", 0, ping[:6], io.ErrUnexpectedEOF},
		{"truncated command", 0, ping[:len(ping)-1], io.ErrUnexpectedEOF},
		{"truncated payload", 0, send[:len(send)-1], io.ErrUnexpectedEOF},
		{"truncated total size after a frame", 0, append(bytes.Clone(ping), 0, 0), io.ErrUnexpectedEOF},
		{"truncated metadata size", 0, withTotalSize(simpleBody(commandBytes(t, sendCommand(1, 2)), []byte{0, 0})), frame.ErrMalformed},
	}
	for _, tt := range tests {
		for name, wrap := range map[string]func(io.Reader) io.Reader{
			"whole":    func(r io.Reader) io.Reader { return r },
			"one byte": iotest.OneByteReader,
		} {
			t.Run(tt.name+"/"+name, func(t *testing.T) {
				fr := frame.NewReader(wrap(bytes.NewReader(tt.stream)), tt.max)
				_, err := readAll(fr)
				require.ErrorIs(t, err, tt.want)
				for _, other := range []error{io.EOF, io.ErrUnexpectedEOF, frame.ErrFrameTooLarge, frame.ErrMalformed} {
					if other != tt.want {
						assert.NotErrorIs(t, err, other)
					}
				}
			})
		}
	}
}

func TestReaderStreamError(t *testing.T) {
	ping, err := frame.AppendCommand(nil, pingCommand())
	require.NoError(t, err)
	broken := errors.New("connection reset")

	// The stream fails after one whole frame and inside the next.
	r := io.MultiReader(bytes.NewReader(ping), bytes.NewReader(ping[:5]), iotest.ErrReader(broken))
	fr := frame.NewReader(r, 0)
	f, err := fr.Next()
	require.NoError(t, err)
	assert.Equal(t, pulsarpb.BaseCommand_PING, f.Command.GetType())
	_, err = fr.Next()
	assert.ErrorIs(t, err, broken)
}

func TestReaderTooLargeDoesNotReadTheBody(t *testing.T) {
	// The limit is checked on the total-size field, before any body is read
	// or allocated: a stream that would block forever after the header
	// still yields the error at once.
	r := io.MultiReader(bytes.NewReader(u32(1<<30)), blockingReader{t})
	fr := frame.NewReader(iotest.OneByteReader(r), 1024)
	_, err := fr.Next()
	assert.ErrorIs(t, err, frame.ErrFrameTooLarge)
}

// blockingReader stands for a peer that stops sending: a read fails the
// test instead of hanging it.
type blockingReader struct{ t *testing.T }

func (b blockingReader) Read([]byte) (int, error) {
	b.t.Error("read past the total-size field of an oversized frame")
	return 0, io.EOF
}

func TestReaderDefaultLimitBoundary(t *testing.T) {
	// A frame of exactly DefaultMaxFrameSize bytes after its total-size
	// field is accepted by a Reader made with 0.
	stream, err := frame.AppendMessage(nil, sendCommand(1, 1), testMetadata(), nil)
	require.NoError(t, err)
	pad := frame.DefaultMaxFrameSize - (len(stream) - 4)
	stream, err = frame.AppendMessage(nil, sendCommand(1, 1), testMetadata(), make([]byte, pad))
	require.NoError(t, err)
	require.Equal(t, frame.DefaultMaxFrameSize, len(stream)-4)

	f, err := frame.NewReader(bytes.NewReader(stream), 0).Next()
	require.NoError(t, err)
	assert.Len(t, f.Payload.Data, pad)

	_, err = frame.NewReader(bytes.NewReader(stream), frame.DefaultMaxFrameSize-1).Next()
	assert.ErrorIs(t, err, frame.ErrFrameTooLarge)
}

func TestReaderSetMaxFrameSize(t *testing.T) {
	small, err := frame.AppendCommand(nil, pingCommand()) // 9 bytes after the size
	require.NoError(t, err)
	big, err := frame.AppendMessage(nil, sendCommand(1, 1), testMetadata(), make([]byte, 500))
	require.NoError(t, err)
	bigSize := len(big) - 4

	var stream []byte
	stream = append(stream, small...)
	stream = append(stream, big...)
	stream = append(stream, big...)
	stream = append(stream, big...)

	fr := frame.NewReader(bytes.NewReader(stream), 100)
	_, err = fr.Next()
	require.NoError(t, err, "a small frame is under any sane limit")

	// CONNECTED announced a larger max_message_size.
	fr.SetMaxFrameSize(bigSize)
	_, err = fr.Next()
	require.NoError(t, err, "exactly at the limit is allowed")

	// 0 means the default.
	fr.SetMaxFrameSize(0)
	_, err = fr.Next()
	require.NoError(t, err)

	fr.SetMaxFrameSize(bigSize - 1)
	_, err = fr.Next()
	require.ErrorIs(t, err, frame.ErrFrameTooLarge)
	assert.Contains(t, err.Error(), strconv.Itoa(bigSize-1), "the error names the limit")
}

func TestReaderSetMaxFrameSizeNegativeMeansDefault(t *testing.T) {
	fr := frame.NewReader(bytes.NewReader(u32(frame.DefaultMaxFrameSize+1)), -5)
	_, err := fr.Next()
	assert.ErrorIs(t, err, frame.ErrFrameTooLarge)
	assert.Contains(t, err.Error(), strconv.Itoa(frame.DefaultMaxFrameSize))
}

func TestReaderSetMaxFrameSizeBeyondUint32(t *testing.T) {
	if strconv.IntSize < 64 {
		t.Skip("an int cannot exceed the 32-bit total-size field on this platform")
	}
	// The limit must saturate, not wrap: 4 GiB + 5 would otherwise become 5,
	// under the 9 bytes of a PING.
	var u uint64 = math.MaxUint32
	huge := int(u + 6)
	ping, err := frame.AppendCommand(nil, pingCommand())
	require.NoError(t, err)
	_, err = frame.NewReader(bytes.NewReader(ping), huge).Next()
	assert.NoError(t, err)
}

func TestReaderReady(t *testing.T) {
	ping, err := frame.AppendCommand(nil, &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_PING.Enum(), Ping: &pulsarpb.CommandPing{}})
	require.NoError(t, err)
	pr, pw := io.Pipe()
	fr := frame.NewReader(pr, 64)
	assert.False(t, fr.Ready(), "nothing buffered")
	go func() {
		pw.Write(append(append([]byte{}, ping...), ping[:5]...)) // one frame and a bit
	}()
	_, err = fr.NextBody()
	require.NoError(t, err)
	assert.False(t, fr.Ready(), "only part of the next frame is buffered")
	go func() { pw.Write(ping[5:]) }()
	_, err = fr.NextBody()
	require.NoError(t, err)
	assert.False(t, fr.Ready())

	// Two whole frames in one read: both are ready without blocking.
	go func() { pw.Write(append(append([]byte{}, ping...), ping...)) }()
	_, err = fr.NextBody()
	require.NoError(t, err)
	assert.True(t, fr.Ready())
	_, err = fr.NextBody()
	require.NoError(t, err)

	// A size NextBody refuses is ready too: the error comes at once.
	go func() { pw.Write([]byte{0xff, 0xff, 0xff, 0xff}) }()
	_, err = fr.NextBody()
	assert.ErrorIs(t, err, frame.ErrFrameTooLarge)
	pw.Close()
}

// TestReaderFill: Fill reads only when nothing is buffered, and returns
// the stream's error.
func TestReaderFill(t *testing.T) {
	ping, err := frame.AppendCommand(nil, pingCommand())
	require.NoError(t, err)
	src := &countingReader{r: iotest.OneByteReader(bytes.NewReader(append(bytes.Clone(ping), ping...)))}
	fr := frame.NewReader(src, 0)

	require.NoError(t, fr.Fill())
	assert.Equal(t, 1, src.reads, "nothing was buffered: one read")
	assert.Equal(t, 1, fr.Buffered())
	require.NoError(t, fr.Fill())
	assert.Equal(t, 1, src.reads, "a byte is buffered: no read")

	for range 2 {
		_, err := fr.NextBody()
		require.NoError(t, err)
	}
	assert.Equal(t, 0, fr.Buffered())
	assert.Equal(t, io.EOF, fr.Fill(), "the stream's end")
}
