package engine

import (
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn/core"
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
		require.NoError(t, c.enqueue([]byte("abc"), nil))
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
	require.NoError(t, c.enqueue([]byte("abc"), nil))
	wg.Wait()
	require.Len(t, failures, 1)
	assert.ErrorIs(t, <-failures, io.ErrClosedPipe)
	require.NoError(t, c.enqueue([]byte("def"), nil), "queued, never written")
	c.wmu.Lock()
	assert.True(t, c.writing, "no new writer after a failure")
	c.wmu.Unlock()
	wg.Wait()
	assert.Empty(t, failures)
	c.close()
}

// TestWriterKeepsOneOfEachLatest: while the writer is blocked in a write
// (the peer reads nothing), each kind of Latest frame holds one slot: a
// newer frame replaces the one waiting, and once the peer reads, the queue
// goes out first, then one frame of each kind.
func TestWriterKeepsOneOfEachLatest(t *testing.T) {
	client, server := net.Pipe()
	defer server.Close()
	var wg sync.WaitGroup
	var written atomic.Uint64
	c := newConnection(1, client, 0, &wg, func(uint64, error) {}, &written)
	defer c.close()

	var latest [len(core.Ready{}.Latest)][]byte
	latest[1] = []byte("P0")
	require.NoError(t, c.enqueue(nil, &latest))
	got := make([]byte, 1+1+1000+4)
	_, err := ioReadFull(server, got[:1]) // the writer took it: blocked in its write
	require.NoError(t, err)
	for i := range 1000 {
		latest[1] = []byte{'P', byte('a' + i%26)}
		latest[2] = []byte{'A', byte('a' + i%26)}
		require.NoError(t, c.enqueue([]byte("q"), &latest))
		latest = [len(latest)][]byte{}
	}
	c.wmu.Lock()
	held := len(c.pending) + len(c.latest[0]) + len(c.latest[1]) + len(c.latest[2])
	c.wmu.Unlock()
	assert.LessOrEqual(t, held, 1000+2+2+2, "the queue and one frame of each kind")

	_, err = ioReadFull(server, got[1:])
	require.NoError(t, err)
	assert.Equal(t, "P0"+strings.Repeat("q", 1000)+"Pl"+"Al", string(got), "the queue, then the latest PONG and AUTH_RESPONSE")
}

// TestPublishChecksItsBindingUnderTheWritersLock: a registration's Publish
// that loaded its binding before a Close or CLOSE_PRODUCER cleared it is
// refused by the check under the writer's lock, the lock that orders it
// with the step's CLOSE_PRODUCER, so no SEND follows that.
func TestPublishChecksItsBindingUnderTheWritersLock(t *testing.T) {
	client, server := net.Pipe()
	defer server.Close()
	var wg sync.WaitGroup
	var written atomic.Uint64
	c := newConnection(7, client, 0, &wg, func(uint64, error) {}, &written)
	c.setGate(1 << 20)
	var bound atomic.Uint64
	msg := []byte{0, 0, 0, 0}
	_, err := c.tryPublish(msg, 0, &bound)
	assert.ErrorIs(t, err, errNotPublishable, "not created")
	bound.Store(6)
	_, err = c.tryPublish(msg, 0, &bound)
	assert.ErrorIs(t, err, errNotPublishable, "created on another connection")
	bound.Store(7)
	c.wmu.Lock()
	queued := len(c.pending)
	c.wmu.Unlock()
	assert.Zero(t, queued, "nothing queued")
	_, err = c.tryPublish(msg, 0, &bound)
	assert.NoError(t, err, "created on this one")
	c.close()
	wg.Wait()
}
