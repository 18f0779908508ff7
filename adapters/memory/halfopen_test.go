package memory_test

import (
	"bytes"
	"io"
	"net"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn/adapters/memory"
)

// TestHalfOpen: while the network is half-open, writes on both sides
// succeed and nothing arrives, not even an error; what was written before
// is still delivered, what was written during is lost, and what is written
// after the fault is lifted is delivered again.
func TestHalfOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memory.NewNetwork()
		client, server := connect(t, n)
		_, err := client.Write([]byte("early"))
		require.NoError(t, err)

		n.SetHalfOpen(true)
		for _, c := range []net.Conn{client, server} {
			k, err := c.Write([]byte("lost"))
			require.NoError(t, err, "Write on %v", c.LocalAddr())
			assert.Equal(t, 4, k, "every byte accepted")
		}
		buf := make([]byte, 16)
		k, err := server.Read(buf)
		require.NoError(t, err)
		assert.Equal(t, "early", string(buf[:k]), "written before the fault")

		pending := goRead(client, 16)
		assert.True(t, stillBlocked(pending), "the client's Read waits: no data, no EOF, no error")
		start := time.Now()
		require.NoError(t, server.SetReadDeadline(start.Add(time.Second)))
		_, err = server.Read(buf)
		assertTimeout(t, err)
		assert.Equal(t, time.Second, time.Since(start), "only the deadline ends the wait")
		require.NoError(t, server.SetReadDeadline(time.Time{}))

		n.SetHalfOpen(false)
		assert.True(t, stillBlocked(pending), "lifting the fault does not bring lost bytes back")
		_, err = server.Write([]byte("after"))
		require.NoError(t, err)
		r := <-pending
		require.NoError(t, r.err)
		assert.Equal(t, 5, r.n, `"after", not "lost"`)
		_, err = client.Write([]byte("after"))
		require.NoError(t, err)
		_, err = io.ReadFull(server, buf[:5])
		require.NoError(t, err)
		assert.Equal(t, "after", string(buf[:5]))
		assert.Equal(t, 1, n.Conns())
	})
}

// TestHalfOpenLosesClose: a Close on a half-open network does not reach
// the peer, which keeps waiting for bytes that will never come; once the
// fault is lifted, its Writes find the connection closed.
func TestHalfOpenLosesClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memory.NewNetwork()
		client, server := connect(t, n)
		n.SetHalfOpen(true)
		require.NoError(t, client.Close())

		pending := goRead(server, 8)
		assert.True(t, stillBlocked(pending), "no EOF")
		_, err := server.Write([]byte("into the void"))
		require.NoError(t, err, "no EPIPE either while the path is dead")

		n.SetHalfOpen(false)
		assert.True(t, stillBlocked(pending), "the lost close stays lost")
		_, err = server.Write([]byte("x"))
		require.ErrorIs(t, err, syscall.EPIPE)
		assert.Equal(t, 1, n.Conns(), "the server end is still open")

		require.NoError(t, server.Close())
		assert.ErrorIs(t, (<-pending).err, net.ErrClosed)
		assert.Zero(t, n.Conns())
	})
}

// TestHalfOpenReleasesBlockedWriter: a Write waiting for room in a full
// buffer completes once the network turns half-open, its remaining bytes
// swallowed.
func TestHalfOpenReleasesBlockedWriter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memory.NewNetwork()
		client, server := connect(t, n)
		_, err := client.Write(make([]byte, memory.BufferSize))
		require.NoError(t, err)
		pending := goWrite(client, []byte("more"))
		require.True(t, stillBlocked(pending), "the buffer is full")

		n.SetHalfOpen(true)
		r := <-pending
		require.NoError(t, r.err)
		assert.Equal(t, 4, r.n)

		n.SetHalfOpen(false)
		got, err := io.ReadAll(io.LimitReader(server, memory.BufferSize))
		require.NoError(t, err)
		assert.True(t, bytes.Equal(make([]byte, memory.BufferSize), got), "the bytes buffered before the fault, and only those")
		assert.True(t, stillBlocked(goRead(server, 1)), `"more" was lost`)
	})
}

// TestHalfOpenDropAll: DropAll still resets a half-open connection.
func TestHalfOpenDropAll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memory.NewNetwork()
		client, server := connect(t, n)
		n.SetHalfOpen(true)
		pending := goRead(client, 8)
		require.True(t, stillBlocked(pending))

		n.DropAll()
		assert.ErrorIs(t, (<-pending).err, memory.ErrReset)
		_, err := server.Write([]byte("x"))
		assert.ErrorIs(t, err, memory.ErrReset)
	})
}
