package frame

import "io"

// Sizes of the Reader's read buffer. An idle connection holds the small
// one (its reader goroutine blocks in Read on it); a read that fills the
// buffer means the peer is sending faster than we read, and the next read
// uses the large one, kept while reads keep filling it. Once traffic is
// light again (a read brings less than the small size) and everything is
// consumed, the large buffer is let go. A fixed 64 KiB bufio.Reader was
// most of a Broker's 85 KB per idle connection.
const (
	smallReadBuffer = 4 << 10
	largeReadBuffer = 64 << 10
)

// readBuffer is a buffered reader whose buffer grows under load and
// shrinks when idle.
type readBuffer struct {
	src  io.Reader
	buf  []byte
	r, w int  // unread bytes are buf[r:w]
	busy bool // the last read filled the buffer
}

func newReadBuffer(src io.Reader) *readBuffer { return &readBuffer{src: src} }

// Buffered reports how many bytes are read and not yet consumed.
func (b *readBuffer) Buffered() int { return b.w - b.r }

// Peek returns the next n buffered bytes without consuming them; it
// returns io.ErrNoProgress if fewer are buffered (it never reads).
func (b *readBuffer) Peek(n int) ([]byte, error) {
	if b.w-b.r < n {
		return nil, io.ErrNoProgress
	}
	return b.buf[b.r : b.r+n], nil
}

// Read implements io.Reader.
func (b *readBuffer) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if b.r == b.w {
		if len(p) >= largeReadBuffer {
			// A large read goes straight to p, as bufio does.
			return b.src.Read(p)
		}
		if err := b.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, b.buf[b.r:b.w])
	b.r += n
	return n, nil
}

// fill reads once into an empty buffer of the size the traffic calls for.
func (b *readBuffer) fill() error {
	size := smallReadBuffer
	if b.busy {
		size = largeReadBuffer
	}
	if len(b.buf) != size {
		b.buf = make([]byte, size)
	}
	b.r, b.w = 0, 0
	for {
		n, err := b.src.Read(b.buf)
		b.w = n
		b.busy = n == len(b.buf)
		if n > 0 {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
