package pulsarconn

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWriterReusesAndTrimsBuffers: the writer keeps its batch buffer for
// the next batch (a publisher that outruns the network must not grow a
// fresh one each time), and trim releases a large one once idle.
func TestWriterReusesAndTrimsBuffers(t *testing.T) {
	client, server := net.Pipe()
	defer server.Close()
	c := newConnection(1, client, 4<<20)
	var wg sync.WaitGroup
	var written atomic.Uint64
	wg.Add(1)
	go c.writeLoop(&wg, func(uint64, error) {}, &written)

	big := make([]byte, 2<<20)
	read := make([]byte, len(big))
	for range 2 {
		_, err := c.tryEnqueue(big)
		require.NoError(t, err)
		_, err = ioReadFull(server, read)
		require.NoError(t, err)
	}
	// The second batch was written from a reused buffer: wait until the
	// writer has put it back, by queueing a byte and reading it.
	_, err := c.tryEnqueue([]byte{1})
	require.NoError(t, err)
	_, err = ioReadFull(server, read[:1])
	require.NoError(t, err)
	c.wmu.Lock()
	kept := cap(c.spare) + cap(c.pending)
	c.wmu.Unlock()
	assert.GreaterOrEqual(t, kept, len(big), "a batch buffer is kept for reuse")

	c.trim()
	c.wmu.Lock()
	assert.LessOrEqual(t, cap(c.spare), minSpare)
	assert.LessOrEqual(t, cap(c.pending), minSpare)
	c.wmu.Unlock()
	c.close()
	wg.Wait()
	assert.EqualValues(t, 2*len(big)+1, written.Load())
}

func ioReadFull(c net.Conn, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := c.Read(p[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
