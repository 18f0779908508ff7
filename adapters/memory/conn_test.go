package memory_test

import (
	"context"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"

	"github.com/pulsarconn/pulsarconn/adapters/memory"
)

// TestConnContract certifies memory connections with the x/net suite that
// every net.Conn should pass, with and without latency on the network.
func TestConnContract(t *testing.T) {
	for _, latency := range []time.Duration{0, 50 * time.Microsecond} {
		t.Run("latency="+latency.String(), func(t *testing.T) {
			nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
				n := memory.NewNetwork()
				n.SetLatency(latency)
				l, err := n.Listen("pipe:0")
				if err != nil {
					return nil, nil, nil, err
				}
				accepted := make(chan net.Conn, 1)
				go func() {
					c, _ := l.Accept()
					accepted <- c
				}()
				c1, err = n.DialConn(context.Background(), l.Addr().String())
				if err != nil {
					return nil, nil, nil, err
				}
				c2 = <-accepted
				stop = func() {
					_ = c1.Close()
					_ = c2.Close()
					_ = l.Close()
				}
				return c1, c2, stop, nil
			})
		})
	}
}

// connect listens on a fresh address of n and returns both ends of one
// connection to it, closed when the test ends.
func connect(t *testing.T, n *memory.Network) (client, server net.Conn) {
	t.Helper()
	l, err := n.Listen("broker:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	client, err = n.DialConn(t.Context(), l.Addr().String())
	require.NoError(t, err)
	server, err = l.Accept()
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = client.Close()
		_ = server.Close()
	})
	return client, server
}

// result is the outcome of a Read or Write run in a goroutine.
type result struct {
	n   int
	err error
}

// goRead starts c.Read into a fresh buffer in a goroutine.
func goRead(c net.Conn, size int) <-chan result {
	ch := make(chan result, 1)
	go func() {
		n, err := c.Read(make([]byte, size))
		ch <- result{n, err}
	}()
	return ch
}

// goWrite starts c.Write(b) in a goroutine.
func goWrite(c net.Conn, b []byte) <-chan result {
	ch := make(chan result, 1)
	go func() {
		n, err := c.Write(b)
		ch <- result{n, err}
	}()
	return ch
}

// stillBlocked reports whether nothing has arrived on ch once every other
// goroutine in the synctest bubble is durably blocked.
func stillBlocked(ch <-chan result) bool {
	synctest.Wait()
	select {
	case <-ch:
		return false
	default:
		return true
	}
}

func assertTimeout(t *testing.T, err error) {
	t.Helper()
	require.Error(t, err)
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	assert.True(t, ne.Timeout(), "Timeout()")
}

func TestWriteIsBufferedUpToBufferSize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, server := connect(t, memory.NewNetwork())

		// Nobody reads, yet a write of a whole buffer returns (a Write that
		// blocked here would deadlock the bubble and fail the test).
		n, err := client.Write(make([]byte, memory.BufferSize))
		require.NoError(t, err)
		require.Equal(t, memory.BufferSize, n)

		// One byte more waits for the reader.
		done := goWrite(client, []byte{1})
		require.True(t, stillBlocked(done), "Write beyond BufferSize returned without a reader")

		_, err = io.ReadFull(server, make([]byte, 1))
		require.NoError(t, err)
		r := <-done
		require.NoError(t, r.err)
		assert.Equal(t, 1, r.n)
	})
}

// deadlineOp is an operation on the client end, for deadline tests.
type deadlineOp struct {
	name string
	set  func(c net.Conn, t time.Time) error // how the deadline is set
	do   func(c net.Conn) (int, error)       // the operation
	// block makes the operation block; ready makes it able to complete at
	// once; unblock lets a blocked operation complete.
	block, ready, unblock func(t *testing.T, client, server net.Conn)
}

func deadlineOps() []deadlineOp {
	nothing := func(*testing.T, net.Conn, net.Conn) {}
	peerWrites := func(t *testing.T, _, server net.Conn) {
		_, err := server.Write([]byte("x"))
		require.NoError(t, err)
	}
	read := func(c net.Conn) (int, error) { return c.Read(make([]byte, 8)) }
	fill := func(t *testing.T, client, _ net.Conn) {
		_, err := client.Write(make([]byte, memory.BufferSize))
		require.NoError(t, err)
	}
	peerDrains := func(t *testing.T, _, server net.Conn) {
		_, err := io.ReadFull(server, make([]byte, memory.BufferSize))
		require.NoError(t, err)
	}
	write := func(c net.Conn) (int, error) { return c.Write([]byte("x")) }
	return []deadlineOp{
		{"Read/SetReadDeadline", net.Conn.SetReadDeadline, read, nothing, peerWrites, peerWrites},
		{"Read/SetDeadline", net.Conn.SetDeadline, read, nothing, peerWrites, peerWrites},
		{"Write/SetWriteDeadline", net.Conn.SetWriteDeadline, write, fill, nothing, peerDrains},
		{"Write/SetDeadline", net.Conn.SetDeadline, write, fill, nothing, peerDrains},
	}
}

// goDo runs op.do on c in a goroutine.
func goDo(op deadlineOp, c net.Conn) <-chan result {
	ch := make(chan result, 1)
	go func() {
		n, err := op.do(c)
		ch <- result{n, err}
	}()
	return ch
}

// TestDeadlines runs in synctest bubbles, whose fake clock makes every
// deadline fire at an exact, checkable instant; time.Sleep there only moves
// that clock.
func TestDeadlines(t *testing.T) {
	for _, op := range deadlineOps() {
		t.Run(op.name, func(t *testing.T) {
			t.Run("past deadline fails at once", func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					client, server := connect(t, memory.NewNetwork())
					op.ready(t, client, server)
					require.NoError(t, op.set(client, time.Now().Add(-time.Second)))
					n, err := op.do(client)
					assert.Zero(t, n)
					assertTimeout(t, err)

					// Clearing the deadline makes the connection usable again.
					require.NoError(t, op.set(client, time.Time{}))
					n, err = op.do(client)
					require.NoError(t, err)
					assert.Equal(t, 1, n)
				})
			})
			t.Run("future deadline fires on time", func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					client, server := connect(t, memory.NewNetwork())
					op.block(t, client, server)
					start := time.Now()
					require.NoError(t, op.set(client, start.Add(time.Second)))
					r := <-goDo(op, client)
					assertTimeout(t, r.err)
					assert.Equal(t, time.Second, time.Since(start))
				})
			})
			t.Run("deadline set while blocked", func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					client, server := connect(t, memory.NewNetwork())
					op.block(t, client, server)
					done := goDo(op, client)
					require.True(t, stillBlocked(done))
					start := time.Now()
					require.NoError(t, op.set(client, start.Add(time.Second)))
					r := <-done
					assertTimeout(t, r.err)
					assert.Equal(t, time.Second, time.Since(start))
				})
			})
			t.Run("deadline extended while blocked", func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					client, server := connect(t, memory.NewNetwork())
					op.block(t, client, server)
					start := time.Now()
					require.NoError(t, op.set(client, start.Add(time.Second)))
					done := goDo(op, client)
					time.Sleep(500 * time.Millisecond)
					require.NoError(t, op.set(client, start.Add(2*time.Second)))
					r := <-done
					assertTimeout(t, r.err)
					assert.Equal(t, 2*time.Second, time.Since(start))
				})
			})
			t.Run("deadline cleared while blocked", func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					client, server := connect(t, memory.NewNetwork())
					op.block(t, client, server)
					require.NoError(t, op.set(client, time.Now().Add(time.Second)))
					done := goDo(op, client)
					time.Sleep(500 * time.Millisecond)
					require.NoError(t, op.set(client, time.Time{}))
					time.Sleep(time.Hour)
					require.True(t, stillBlocked(done), "timed out after the deadline was cleared")
					op.unblock(t, client, server)
					r := <-done
					require.NoError(t, r.err)
					assert.Equal(t, 1, r.n)
				})
			})
		})
	}
}

func TestCloseUnblocksPendingReadAndWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, _ := connect(t, memory.NewNetwork())
		_, err := client.Write(make([]byte, memory.BufferSize))
		require.NoError(t, err)
		reading := goRead(client, 8)
		writing := goWrite(client, []byte("x"))
		require.True(t, stillBlocked(reading))
		require.True(t, stillBlocked(writing))

		require.NoError(t, client.Close())
		for _, ch := range []<-chan result{reading, writing} {
			r := <-ch
			assert.ErrorIs(t, r.err, net.ErrClosed)
			assert.Zero(t, r.n)
		}
	})
}

func TestCloseUnblocksPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, server := connect(t, memory.NewNetwork())
		_, err := server.Write(make([]byte, memory.BufferSize))
		require.NoError(t, err)
		reading := goRead(server, 8)
		writing := goWrite(server, []byte("x"))
		require.True(t, stillBlocked(reading))
		require.True(t, stillBlocked(writing))

		require.NoError(t, client.Close())
		r := <-reading
		assert.Equal(t, result{0, io.EOF}, r)
		r = <-writing
		assert.ErrorIs(t, r.err, syscall.EPIPE)
	})
}

func TestCloseSemantics(t *testing.T) {
	client, server := connect(t, memory.NewNetwork())
	_, err := client.Write([]byte("last words"))
	require.NoError(t, err)
	require.NoError(t, client.Close())

	// The peer drains what was sent, then sees io.EOF, bare, as io.Reader
	// callers expect.
	got, err := io.ReadAll(server)
	require.NoError(t, err)
	assert.Equal(t, "last words", string(got))
	n, err := server.Read(make([]byte, 1))
	assert.Zero(t, n)
	assert.Equal(t, io.EOF, err)

	// The peer can no longer write: broken pipe.
	_, err = server.Write([]byte("hello?"))
	assert.ErrorIs(t, err, syscall.EPIPE)

	// The closed end fails everything with net.ErrClosed.
	_, err = client.Read(make([]byte, 1))
	assert.ErrorIs(t, err, net.ErrClosed)
	_, err = client.Write([]byte("x"))
	assert.ErrorIs(t, err, net.ErrClosed)
	assert.ErrorIs(t, client.Close(), net.ErrClosed, "second Close")

	// Closing the peer too is not an error.
	require.NoError(t, server.Close())
}

func TestAddresses(t *testing.T) {
	n := memory.NewNetwork()
	l, err := n.Listen("broker-1:6650")
	require.NoError(t, err)
	defer l.Close()
	client, err := n.DialConn(t.Context(), "broker-1:6650")
	require.NoError(t, err)
	defer client.Close()
	server, err := l.Accept()
	require.NoError(t, err)
	defer server.Close()

	for _, a := range []net.Addr{l.Addr(), client.LocalAddr(), client.RemoteAddr(), server.LocalAddr(), server.RemoteAddr()} {
		assert.Equal(t, "memory", a.Network())
	}
	assert.Equal(t, memory.Addr("broker-1:6650"), l.Addr())
	assert.Equal(t, l.Addr(), client.RemoteAddr())
	assert.Equal(t, l.Addr(), server.LocalAddr())
	assert.Equal(t, client.LocalAddr(), server.RemoteAddr())
	assert.NotEqual(t, client.LocalAddr(), client.RemoteAddr())
	assert.Equal(t, "broker-1:6650", l.Addr().String())
}
