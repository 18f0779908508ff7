package frame

import "io"

// Sizes of the Reader's read buffer. An idle connection holds the idle
// one: its reader goroutine blocks in Read on it, and the answers and
// pings of light traffic fit. A read that fills the buffer means more is
// waiting, and the next read uses the next size up. The buffer steps down
// from the large to the small size at a read that brings less than the
// small size, and back to the idle size after two reads in a row that
// bring no more than it: one light read (the tail of a frame just over
// the idle size, say) is not enough, or such frames would make a new
// buffer at every read. A fixed 64 KiB
// bufio.Reader was most of a Broker's 85 KB per idle connection, and a
// 4 KiB one still a sixth of the 24 KB left.
const (
	idleReadBuffer  = 512
	smallReadBuffer = 4 << 10
	largeReadBuffer = 64 << 10
)

// readBuffer is a buffered reader whose buffer grows under load and
// shrinks when idle.
type readBuffer struct {
	src   io.Reader
	buf   []byte
	r, w  int // unread bytes are buf[r:w]
	last  int // bytes the last read brought
	light int // reads in a row that brought at most idleReadBuffer, without filling the buffer
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

// nextSize picks the buffer for the next read from what the last one
// brought.
func (b *readBuffer) nextSize() int {
	switch {
	case len(b.buf) == 0:
		return idleReadBuffer
	case b.last == len(b.buf): // it filled the buffer: more is waiting
		if len(b.buf) < smallReadBuffer {
			return smallReadBuffer
		}
		return largeReadBuffer
	case b.light >= 2:
		return idleReadBuffer
	case len(b.buf) == largeReadBuffer && b.last < smallReadBuffer:
		return smallReadBuffer
	default:
		return len(b.buf)
	}
}

// fill reads once into an empty buffer of the size the traffic calls for.
func (b *readBuffer) fill() error {
	if size := b.nextSize(); len(b.buf) != size {
		b.buf = make([]byte, size)
	}
	b.r, b.w = 0, 0
	for {
		n, err := b.src.Read(b.buf)
		b.w = n
		if n > 0 {
			b.last = n
			if n <= idleReadBuffer && n < len(b.buf) {
				b.light++
			} else {
				b.light = 0
			}
			return nil
		}
		if err != nil {
			return err
		}
	}
}
