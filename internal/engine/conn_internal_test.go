package engine

import (
	"io"
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
	var wg sync.WaitGroup
	var written atomic.Uint64
	c := newConnection(1, client, 4<<20, &wg, func(uint64, error) {}, &written)

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
	wg.Wait() // the writer exits once it finds the queue empty, its buffer put back
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

// TestWriterRunsOnlyWhileThereIsSomethingToWrite: the writer goroutine
// starts with the first frame queued and exits once the queue is empty,
// so an idle connection holds none; the next frame starts another.
func TestWriterRunsOnlyWhileThereIsSomethingToWrite(t *testing.T) {
	client, server := net.Pipe()
	defer server.Close()
	var wg sync.WaitGroup
	var written atomic.Uint64
	c := newConnection(1, client, 0, &wg, func(uint64, error) {}, &written)
	defer c.close()

	read := make([]byte, 3)
	for i := range 3 {
		require.NoError(t, c.enqueue([]byte("abc")))
		_, err := ioReadFull(server, read)
		require.NoError(t, err)
		assert.Equal(t, "abc", string(read))
		// Returns only once the writer has exited on its own: the
		// connection is open and nothing else is queued.
		wg.Wait()
		c.wmu.Lock()
		assert.False(t, c.writing, "round %d: no writer while idle", i)
		c.wmu.Unlock()
	}
	assert.EqualValues(t, 9, written.Load())
}

// TestWriterFailureStopsWriting: after a failed write the connection
// reports it once and starts no other writer.
func TestWriterFailureStopsWriting(t *testing.T) {
	client, server := net.Pipe()
	server.Close()
	var wg sync.WaitGroup
	var written atomic.Uint64
	failures := make(chan error, 2)
	c := newConnection(7, client, 0, &wg, func(gen uint64, err error) {
		assert.EqualValues(t, 7, gen)
		failures <- err
	}, &written)
	require.NoError(t, c.enqueue([]byte("abc")))
	wg.Wait()
	require.Len(t, failures, 1)
	assert.ErrorIs(t, <-failures, io.ErrClosedPipe)
	require.NoError(t, c.enqueue([]byte("def")), "queued, never written")
	c.wmu.Lock()
	assert.True(t, c.writing, "no new writer after a failure")
	c.wmu.Unlock()
	wg.Wait()
	assert.Empty(t, failures)
	c.close()
}
