package frame

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/bits"
)

// Reader is an incremental frame decoder over a byte stream. It reads as
// much as the stream gives (any split of frames across reads is fine) and
// never holds more than one frame, of at most the max frame size, beyond
// its read buffer; a frame over 4 KiB that has not arrived yet is held
// as it arrives, so it costs the larger of 4 KiB and twice the bytes
// received so far, not its announced size.
type Reader struct {
	r   *readBuffer
	max uint32
	hdr [4]byte
	// pm: PARTITIONED_METADATA_RESPONSE answers handed back by Recycle,
	// for the next ones read.
	pm []*hotPartitionedMetadata
	// ret: the SEND_RECEIPT and MESSAGE frames released (returns.go);
	// rc and msg: those the reader took from it, for its next ones.
	ret *returns
	rc  []*hotSendReceipt
	msg []*hotMessage
}

// maxKept bounds the answers a Reader keeps for reuse (Recycle): as many
// as a busy connection's reads bring at once.
const maxKept = 64

// Recycle is f.Release for a frame fr read, from the goroutine that
// reads fr, between its reads: a PARTITIONED_METADATA_RESPONSE then serves
// fr's next one as it is, without the shared pool that Release puts it
// in, whose Get and Put cost more than the rest of its decoding. A Reader
// keeps at most maxKept, and one once its traffic is light (Fill).
func (fr *Reader) Recycle(f *Frame) {
	if f == nil {
		return
	}
	if h, ok := f.rel.(*hotPartitionedMetadata); ok && len(fr.pm) < maxKept {
		*h = hotPartitionedMetadata{}
		fr.pm = append(fr.pm, h)
		return
	}
	f.Release()
}

// NewReader returns a Reader of r that accepts frames whose total size is
// at most maxFrameSize (DefaultMaxFrameSize when 0).
func NewReader(r io.Reader, maxFrameSize int) *Reader {
	fr := &Reader{r: newReadBuffer(r), ret: new(returns)}
	fr.SetMaxFrameSize(maxFrameSize)
	return fr
}

// SetMaxFrameSize changes the limit, e.g. after CONNECTED announced the
// broker's max_message_size. It must not be called concurrently with Next.
func (fr *Reader) SetMaxFrameSize(n int) {
	if n <= 0 {
		n = DefaultMaxFrameSize
	}
	// Saturate: the total-size field is 32 bits, and a larger int must not
	// wrap around to a small limit.
	fr.max = uint32(min(uint64(n), math.MaxUint32))
}

// Buffered reports how many bytes are already read and not yet decoded.
func (fr *Reader) Buffered() int { return fr.r.Buffered() }

// Fill blocks until some bytes are buffered: it reads the stream if
// nothing is, and returns the stream's error if that read fails. A driver
// calls it before NextBody to wait for traffic with as little of its
// goroutine's stack in use as possible: an idle reader goroutine's stack
// then shrinks to its smallest.
func (fr *Reader) Fill() error {
	if fr.r.Buffered() > 0 {
		return nil
	}
	if fr.r.light >= 2 {
		// Traffic is light (the read buffer steps down to its idle
		// size): one answer at a time, so one kept answer is enough;
		// the rest go to the shared pool, which the garbage collector
		// empties.
		if len(fr.pm) > 1 || len(fr.rc) > 1 || len(fr.msg) > 1 {
			fr.trimReturns()
		}
	}
	return fr.r.fill()
}

// Ready reports whether NextBody can return without reading the stream:
// a whole frame, or a size that NextBody rejects at once, is buffered.
// A driver uses it to take every frame a read brought in one batch.
func (fr *Reader) Ready() bool {
	n := fr.r.Buffered()
	if n < 4 {
		return false
	}
	hdr, err := fr.r.Peek(4)
	if err != nil {
		return false
	}
	size := binary.BigEndian.Uint32(hdr)
	return size > fr.max || size < minTotalSize || uint64(n) >= 4+uint64(size)
}

// NextBody reads one frame and returns its body (the bytes after the total
// size field) in a newly allocated slice that the caller may keep. It
// returns io.EOF at a clean end of stream, io.ErrUnexpectedEOF when the
// stream ends inside a frame, and ErrFrameTooLarge or ErrMalformed (wrapped)
// for a size out of bounds, before reading the body.
func (fr *Reader) NextBody() ([]byte, error) {
	if _, err := io.ReadFull(fr.r, fr.hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(fr.hdr[:])
	if n > fr.max {
		return nil, fmt.Errorf("%w: total size %d exceeds the limit of %d", ErrFrameTooLarge, n, fr.max)
	}
	if n < minTotalSize {
		return nil, fmt.Errorf("%w: total size %d is under the minimum of %d", ErrMalformed, n, minTotalSize)
	}
	if n <= wholeBody || int(n) <= fr.r.Buffered() {
		// Small, or already read: allocated whole.
		body := make([]byte, n)
		if _, err := io.ReadFull(fr.r, body); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		return body, nil
	}
	return fr.readLarge(int(n))
}

// wholeBody is the largest body allocated whole on reading its size
// alone. A larger one, unless already buffered, grows as its bytes
// arrive: a peer that announces a large frame (up to the limit, which
// CONNECTED may raise to 2 GiB) and sends it slowly, or never, makes the
// Reader hold about twice what it sent, not what it announced. A server
// with many such peers (a thousand connections each announcing 5 MiB)
// then holds a few KiB for each.
const wholeBody = 4 << 10

// readLarge reads a body of n bytes into a buffer that starts with what
// is buffered (at least wholeBody) and doubles as bytes arrive.
func (fr *Reader) readLarge(n int) ([]byte, error) {
	body := make([]byte, 0, min(n, max(wholeBody, fr.r.Buffered())))
	for len(body) < n {
		if len(body) == cap(body) {
			grown := make([]byte, len(body), min(n, max(2*cap(body), len(body)+fr.r.Buffered())))
			copy(grown, body)
			body = grown
		}
		m, err := fr.r.Read(body[len(body):cap(body)])
		body = body[:len(body)+m]
		if err != nil && len(body) < n {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return body, nil
}

// Next reads and parses one frame.
func (fr *Reader) Next() (*Frame, error) {
	f, _, err := fr.NextFrame()
	return f, err
}

// NextFrame reads and parses one frame, as Next does, and also returns
// the size of its body (the frame's bytes after the total size field).
// A hot answer without a payload (PARTITIONED_METADATA_RESPONSE,
// SEND_RECEIPT) that is already buffered whole is parsed where it lies in
// the read buffer: what Parse makes of it keeps none of its bytes, so the
// copy NextBody makes would be one allocation for nothing.
func (fr *Reader) NextFrame() (*Frame, int, error) {
	if buf := fr.bufferedBody(); buf != nil {
		fr.r.r += 4 + len(buf)
		if f := parseHotInPlace(buf, fr); f != nil {
			return f, len(buf), nil
		}
		// Any other frame keeps its bytes (a MESSAGE's payload aliases
		// them): a copy, as NextBody would make. A frame with a payload
		// is copied into the buffer that a recycled MESSAGE kept, if it
		// fits, and decoded into that MESSAGE's struct; if it was not a
		// MESSAGE in the plain shape, the struct goes back without it.
		if cmdSize := binary.BigEndian.Uint32(buf); uint64(cmdSize) < uint64(len(buf)-4) {
			n := len(buf)
			h := fr.takeMessage()
			body := h.body
			h.body = nil
			if cap(body) < n || cap(body) > 2*n {
				body = make([]byte, n, bodySize(n))
			}
			body = body[:n]
			copy(body, buf)
			f, err := parse(body, h)
			if f != nil && f.rel == recycler(h) {
				h.body = body
			} else {
				h.recycle()
			}
			return f, n, err
		}
		body := make([]byte, len(buf))
		copy(body, buf)
		f, err := Parse(body)
		return f, len(body), err
	}
	body, err := fr.NextBody()
	if err != nil {
		return nil, 0, err
	}
	f, err := Parse(body)
	return f, len(body), err
}

// bufferedBody returns the next frame's body where it lies in the read
// buffer, if it is buffered whole and its size is within bounds, without
// consuming it; otherwise nil.
func (fr *Reader) bufferedBody() []byte {
	hdr, err := fr.r.Peek(4)
	if err != nil {
		return nil
	}
	n := binary.BigEndian.Uint32(hdr)
	if n > fr.max || n < minTotalSize || uint64(fr.r.Buffered()) < 4+uint64(n) {
		return nil
	}
	start := fr.r.r + 4
	return fr.r.buf[start : start+int(n) : start+int(n)]
}

// maxKeptBody is the largest frame buffer a recycled MESSAGE keeps: that
// of the largest frame read whole from the read buffer, the only ones
// copied into a kept buffer.
const maxKeptBody = largeReadBuffer

// bodySize returns the capacity to give a buffer for an n-byte body
// (n > 0): n rounded up by sixteen bytes to 128, then by an eighth of a
// power of two, as the allocator's own size classes roughly do. It takes
// little more memory than n bytes (1,152 bytes for a 1,060-byte body, as
// the allocator would take anyway), and lets bodies whose sizes differ a
// little fit one another's buffers.
func bodySize(n int) int {
	if n <= 128 {
		return (n + 15) &^ 15
	}
	step := 1 << (bits.Len(uint(n-1)) - 4) // an eighth of the power of two below n
	return (n + step - 1) &^ (step - 1)
}
