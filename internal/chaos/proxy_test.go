package chaos

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/pulsarconn/pulsarconn/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pair is a proxied connection: the client's end, dialed to the proxy,
// and the server's end, accepted by the upstream listener.
type pair struct {
	p              *Proxy
	client, server net.Conn
}

// newPair starts an upstream listener and a proxy in front of it, and
// opens one connection through the proxy.
func newPair(t *testing.T) *pair {
	t.Helper()
	up, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { up.Close() })
	p, err := Listen(up.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	client, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { client.Close() })
	server, err := up.Accept()
	require.NoError(t, err)
	t.Cleanup(func() { server.Close() })
	// The proxy registers the connection after its upstream dial.
	require.NoError(t, p.Wait(testenv.Context(t), func(s Stats) bool { return s.Accepted == 1 }))
	return &pair{p: p, client: client, server: server}
}

// readN reads exactly n bytes from c.
func readN(t *testing.T, c net.Conn, n int) []byte {
	t.Helper()
	buf := make([]byte, n)
	_, err := io.ReadFull(c, buf)
	require.NoError(t, err)
	return buf
}

// readToError reads from c until it fails, and returns what it read and
// the error.
func readToError(c net.Conn) ([]byte, error) {
	var got bytes.Buffer
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			return got.Bytes(), err
		}
	}
}

func TestForwardsBothWays(t *testing.T) {
	x := newPair(t)
	_, err := x.client.Write([]byte("hello"))
	require.NoError(t, err)
	assert.Equal(t, "hello", string(readN(t, x.server, 5)))
	_, err = x.server.Write([]byte("world!"))
	require.NoError(t, err)
	assert.Equal(t, "world!", string(readN(t, x.client, 6)))
	require.NoError(t, x.p.Wait(testenv.Context(t), func(s Stats) bool {
		return s.Bytes[Upstream] == 5 && s.Bytes[Downstream] == 6
	}))
	s := x.p.Stats()
	assert.EqualValues(t, 1, s.Accepted)
	assert.Equal(t, 1, s.Active)
	assert.Zero(t, s.Resets)
}

// TestSliceWritesSingleBytes: with SetSlice(1) every byte is its own
// Write, and the stream arrives intact.
func TestSliceWritesSingleBytes(t *testing.T) {
	x := newPair(t)
	x.p.SetSlice(1)
	msg := bytes.Repeat([]byte("0123456789"), 100)
	_, err := x.client.Write(msg)
	require.NoError(t, err)
	assert.Equal(t, msg, readN(t, x.server, len(msg)))
	require.NoError(t, x.p.Wait(testenv.Context(t), func(s Stats) bool { return s.Bytes[Upstream] == 1000 }))
	assert.EqualValues(t, 1000, x.p.Stats().Writes[Upstream])

	x.p.SetSlice(0)
	_, err = x.client.Write(msg)
	require.NoError(t, err)
	readN(t, x.server, len(msg))
	require.NoError(t, x.p.Wait(testenv.Context(t), func(s Stats) bool { return s.Bytes[Upstream] == 2000 }))
	assert.Less(t, x.p.Stats().Writes[Upstream], uint64(2000), "unsliced: many bytes per write")
}

// TestResetAll: both peers see an RST, not an orderly end of stream.
func TestResetAll(t *testing.T) {
	x := newPair(t)
	_, err := x.client.Write([]byte("x"))
	require.NoError(t, err)
	readN(t, x.server, 1)
	assert.Equal(t, 1, x.p.ResetAll())
	_, err = readToError(x.client)
	assert.True(t, isReset(err), "client: %v", err)
	_, err = readToError(x.server)
	assert.True(t, isReset(err), "server: %v", err)
	s := x.p.Stats()
	assert.EqualValues(t, 1, s.Resets)
	assert.Zero(t, s.Active)
	assert.Zero(t, x.p.ResetAll(), "nothing left to reset")
}

// TestResetAfterBytes: exactly n bytes go through, then an RST; a new
// connection gets the same budget.
func TestResetAfterBytes(t *testing.T) {
	x := newPair(t)
	x.p.ResetAfterBytes(Upstream, 10)
	_, err := x.client.Write(bytes.Repeat([]byte("a"), 100))
	require.NoError(t, err)
	got, err := readToError(x.server)
	assert.True(t, isReset(err), "server: %v", err)
	assert.LessOrEqual(t, len(got), 10)
	_, err = readToError(x.client)
	assert.True(t, isReset(err), "client: %v", err)
	s := x.p.Stats()
	assert.EqualValues(t, 10, s.Bytes[Upstream], "the 10th byte is the last forwarded")
	assert.EqualValues(t, 1, s.Resets)
}

// TestResetFromPeerPropagates: a server's RST reaches the client as one.
func TestResetFromPeerPropagates(t *testing.T) {
	x := newPair(t)
	require.NoError(t, x.server.(*net.TCPConn).SetLinger(0))
	require.NoError(t, x.server.Close())
	_, err := readToError(x.client)
	assert.True(t, isReset(err), "client: %v", err)
}

// TestOrderlyClosePropagates: a client's FIN reaches the server as EOF,
// after the data before it.
func TestOrderlyClosePropagates(t *testing.T) {
	x := newPair(t)
	_, err := x.client.Write([]byte("bye"))
	require.NoError(t, err)
	require.NoError(t, x.client.Close())
	got, err := readToError(x.server)
	assert.Equal(t, "bye", string(got))
	assert.ErrorIs(t, err, io.EOF)
}

// TestHalfOpenHoldsAndResumes: while half-open nothing is forwarded and
// nothing is lost; afterwards the held bytes arrive.
func TestHalfOpenHoldsAndResumes(t *testing.T) {
	x := newPair(t)
	ctx := testenv.Context(t)
	// A round trip first, so that both readers are blocked in Read.
	_, err := x.client.Write([]byte("x"))
	require.NoError(t, err)
	readN(t, x.server, 1)
	_, err = x.server.Write([]byte("y"))
	require.NoError(t, err)
	readN(t, x.client, 1)
	require.NoError(t, x.p.Wait(ctx, func(s Stats) bool { return s.Bytes == [2]uint64{1, 1} }))

	x.p.SetHalfOpen(true)
	_, err = x.client.Write([]byte("ping"))
	require.NoError(t, err)
	// Some direction reached the gate. Whichever it was, "ping" cannot
	// pass it: it was written after SetHalfOpen returned.
	require.NoError(t, x.p.Wait(ctx, func(s Stats) bool { return s.Held >= 1 }), "%+v", x.p.Stats())
	// Nothing was written to the server: a read with a deadline already
	// passed finds nothing (a poll of what is there, not a wait).
	require.NoError(t, x.server.SetReadDeadline(time.Now()))
	_, err = x.server.Read(make([]byte, 1))
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
	require.NoError(t, x.server.SetReadDeadline(time.Time{}))
	assert.EqualValues(t, 1, x.p.Stats().Bytes[Upstream], "only the round trip's byte")

	x.p.SetHalfOpen(false)
	assert.Equal(t, "ping", string(readN(t, x.server, 4)))
	_, err = x.server.Write([]byte("pong"))
	require.NoError(t, err)
	assert.Equal(t, "pong", string(readN(t, x.client, 4)))
}

// TestLatencyDelays: a chunk arrives no sooner than the latency.
func TestLatencyDelays(t *testing.T) {
	x := newPair(t)
	const latency = 30 * time.Millisecond
	x.p.SetLatency(latency)
	start := time.Now()
	_, err := x.client.Write([]byte("a"))
	require.NoError(t, err)
	readN(t, x.server, 1)
	assert.GreaterOrEqual(t, time.Since(start), latency)
}

// TestBandwidthLimits: n bytes at r bytes/s take at least about n/r.
func TestBandwidthLimits(t *testing.T) {
	x := newPair(t)
	const rate, n = 100_000, 20_000
	x.p.SetBandwidth(rate)
	start := time.Now()
	go func() { _, _ = x.client.Write(make([]byte, n)) }()
	readN(t, x.server, n)
	elapsed := time.Since(start)
	// Each piece is a hundredth of a second's worth, paid after it
	// is written: the first piece is free.
	floor := time.Duration(float64(n-rate/100) / rate * float64(time.Second))
	assert.GreaterOrEqual(t, elapsed, floor)
	t.Logf("%d bytes at %d B/s in %v (floor %v)", n, rate, elapsed, floor)
}

// TestUpstreamRefused: a client of a proxy whose upstream is gone is
// refused abruptly.
func TestUpstreamRefused(t *testing.T) {
	up, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := up.Addr().String()
	require.NoError(t, up.Close())
	p, err := Listen(addr)
	require.NoError(t, err)
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err == nil { // else the RST beat the end of the dial
		defer c.Close()
		_, err = readToError(c)
	}
	assert.True(t, isReset(err) || errors.Is(err, io.EOF), "client: %v", err)
	assert.Zero(t, p.Stats().Accepted, "not counted as proxied")
}

// TestCloseEndsConnections: Close ends every connection (an orderly end)
// and waits for its goroutines; it may be called again.
func TestCloseEndsConnections(t *testing.T) {
	x := newPair(t)
	x.p.SetHalfOpen(true) // goroutines parked on the gate end too
	require.NoError(t, x.p.Close())
	_, err := readToError(x.client)
	assert.ErrorIs(t, err, io.EOF)
	_, err = readToError(x.server)
	assert.ErrorIs(t, err, io.EOF)
	assert.NoError(t, x.p.Close())
	_, err = net.Dial("tcp", x.p.Addr())
	assert.Error(t, err, "no longer listening")
}
