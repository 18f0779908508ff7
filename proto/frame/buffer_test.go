package frame

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// chunks returns its slices one Read at a time.
type chunks [][]byte

func (c *chunks) Read(p []byte) (int, error) {
	if len(*c) == 0 {
		return 0, io.EOF
	}
	n := copy(p, (*c)[0])
	(*c)[0] = (*c)[0][n:]
	if len((*c)[0]) == 0 {
		*c = (*c)[1:]
	}
	return n, nil
}

// TestReadBufferGrowsUnderLoadAndShrinksWhenIdle: light traffic is read
// with the idle buffer, reads that fill it step up to the small and then
// the large one, and once traffic is light again the idle one is back.
func TestReadBufferGrowsUnderLoadAndShrinksWhenIdle(t *testing.T) {
	burst := bytes.Repeat([]byte{7}, 3*largeReadBuffer)
	src := chunks{[]byte("ping"), burst, []byte("pong"), []byte("ping")}
	b := newReadBuffer(&src)
	out := make([]byte, 16)

	n, err := b.Read(out)
	require.NoError(t, err)
	assert.Equal(t, "ping", string(out[:n]))
	assert.Len(t, b.buf, idleReadBuffer, "light traffic: the idle buffer")

	got := 0
	sizes := map[int]bool{}
	for got < len(burst) {
		n, err := b.Read(out)
		require.NoError(t, err)
		got += n
		sizes[len(b.buf)] = true
	}
	assert.Equal(t, map[int]bool{idleReadBuffer: true, smallReadBuffer: true, largeReadBuffer: true}, sizes,
		"a burst steps up through every size")

	n, err = b.Read(out)
	require.NoError(t, err)
	assert.Equal(t, "pong", string(out[:n]))
	assert.Equal(t, smallReadBuffer, b.nextSize(), "one light read: a step down")
	n, err = b.Read(out)
	require.NoError(t, err)
	assert.Equal(t, "ping", string(out[:n]))
	assert.Equal(t, idleReadBuffer, b.nextSize(), "two light reads: back to the idle buffer")
	_, err = b.Read(out)
	assert.Equal(t, io.EOF, err)
	assert.Len(t, b.buf, idleReadBuffer)
}

// TestReadBufferKeepsItsSizeForSteadyTraffic: frames of a size between
// the idle and the small buffer, one per read, keep one small buffer, not
// a new one at each read (the tail of a frame just over the idle size is
// a light read, but one alone does not shrink the buffer).
func TestReadBufferKeepsItsSizeForSteadyTraffic(t *testing.T) {
	for _, size := range []int{600, 1100} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			msg := bytes.Repeat([]byte{1}, size)
			var src chunks
			for range 10 {
				src = append(src, bytes.Clone(msg))
			}
			b := newReadBuffer(&src)
			out := make([]byte, len(msg))
			var first *byte
			for i := range 10 {
				_, err := io.ReadFull(b, out)
				require.NoError(t, err)
				if i == 0 {
					first = &b.buf[0]
				}
				require.Len(t, b.buf, smallReadBuffer, "frame %d", i)
				assert.Same(t, first, &b.buf[0], "frame %d: the same buffer", i)
			}
		})
	}
}

func TestReadBufferPeek(t *testing.T) {
	src := chunks{[]byte("abcdef")}
	b := newReadBuffer(&src)
	_, err := b.Peek(1)
	assert.Error(t, err, "Peek never reads")
	out := make([]byte, 2)
	_, err = b.Read(out)
	require.NoError(t, err)
	p, err := b.Peek(4)
	require.NoError(t, err)
	assert.Equal(t, "cdef", string(p))
	assert.Equal(t, 4, b.Buffered())
	_, err = b.Peek(5)
	assert.Error(t, err)
}
