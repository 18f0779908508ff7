package frame

import (
	"bytes"
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
// with the small buffer, a read that fills it switches to the large one,
// and once traffic is light again the large one is let go.
func TestReadBufferGrowsUnderLoadAndShrinksWhenIdle(t *testing.T) {
	burst := bytes.Repeat([]byte{7}, 3*largeReadBuffer)
	src := chunks{[]byte("ping"), burst, []byte("pong")}
	b := newReadBuffer(&src)
	out := make([]byte, 16)

	n, err := b.Read(out)
	require.NoError(t, err)
	assert.Equal(t, "ping", string(out[:n]))
	assert.Len(t, b.buf, smallReadBuffer, "light traffic: the small buffer")

	got := 0
	sizes := map[int]bool{}
	for got < len(burst) {
		n, err := b.Read(out)
		require.NoError(t, err)
		got += n
		sizes[len(b.buf)] = true
	}
	assert.True(t, sizes[largeReadBuffer], "a burst is read with the large buffer")

	n, err = b.Read(out)
	require.NoError(t, err)
	assert.Equal(t, "pong", string(out[:n]))
	assert.Len(t, b.buf, smallReadBuffer, "light again: back to the small buffer")
	_, err = b.Read(out)
	assert.Equal(t, io.EOF, err)
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
