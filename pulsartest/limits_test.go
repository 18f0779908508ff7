package pulsartest_test

import (
	"encoding/binary"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn/adapters/memory"
	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// A client that asks without reading the answers is disconnected once
// its queued output passes the limit, instead of being buffered for.
func TestNonReadingClientIsDisconnected(t *testing.T) {
	const limit = 64 << 10
	s := pulsartest.NewServer(pulsartest.WithMaxQueuedOutput(limit))
	t.Cleanup(func() { _ = s.Close() })
	c := pipe(t, s)
	c.handshake()

	// net.Pipe has no buffer: the server's writer blocks on its first
	// answer, and every later one waits in the queue. Each LOOKUP
	// answer is about 60 bytes; 10,000 of them would be ten times the
	// limit.
	b, err := frame.AppendCommand(nil, lookup(1, "t"))
	require.NoError(t, err)
	sent := 0
	var werr error
	for ; sent < 10_000 && werr == nil; sent++ {
		// Either fails once the server closed the pipe.
		if werr = c.nc.SetWriteDeadline(deadline()); werr == nil {
			_, werr = c.nc.Write(b)
		}
	}
	assert.Less(t, sent, 10_000, "the connection was never closed")
	assert.ErrorIs(t, werr, io.ErrClosedPipe)
	require.NoError(t, s.WaitConns(ctx(t), 0))
}

// A reading client is not disconnected however much it asks.
func TestReadingClientIsNotDisconnected(t *testing.T) {
	s := pulsartest.NewServer(pulsartest.WithMaxQueuedOutput(1))
	t.Cleanup(func() { _ = s.Close() })
	c := pipe(t, s)
	c.handshake()
	for i := range 100 {
		c.send(lookup(uint64(i), "t"))
		c.expect(pulsarpb.BaseCommand_LOOKUP_RESPONSE)
	}
}

// A consumer with more permits than its connection's queue holds is not
// disconnected: dispatch waits while the queue is over half the limit,
// and goes on as the client reads.
func TestSlowConsumerIsThrottledNotDisconnected(t *testing.T) {
	const limit = 64 << 10
	s := pulsartest.NewServer(pulsartest.WithMaxQueuedOutput(limit))
	t.Cleanup(func() { _ = s.Close() })
	payload := strings.Repeat("x", 4<<10)
	for range 100 { // 400 KiB: six times the limit
		publish(s, "t", payload)
	}
	c := pipe(t, s)
	c.handshake()
	c.send(subscribeCmd(1, 1, "t", "s", exclusive, earliest))
	c.expect(pulsarpb.BaseCommand_SUCCESS)
	c.send(flow(1, 1000))
	for i := range 100 {
		m := c.expect(pulsarpb.BaseCommand_MESSAGE).GetMessage()
		require.Equal(t, uint64(i), m.GetMessageId().GetEntryId())
	}
	c.send(ping())
	c.expect(pulsarpb.BaseCommand_PONG)
}

// A connection that does not complete its handshake within the timeout,
// on the server's clock, is closed; one that did stays.
func TestHandshakeTimeout(t *testing.T) {
	clock := memory.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s := pulsartest.NewServer(pulsartest.WithClock(pulsartest.ClockOf(clock)))
	t.Cleanup(func() { _ = s.Close() })

	ok := pipe(t, s)
	ok.handshake()
	silent := pipe(t, s)
	require.NoError(t, s.WaitConns(ctx(t), 2))

	clock.Advance(pulsartest.DefaultHandshakeTimeout - time.Millisecond)
	assert.Equal(t, 2, s.Conns(), "closed before the timeout")
	clock.Advance(time.Millisecond)
	silent.expectClosed()
	require.NoError(t, s.WaitConns(ctx(t), 1))

	ok.send(ping())
	ok.expect(pulsarpb.BaseCommand_PONG)
}

// WithHandshakeTimeout(0) waits for ever; another value replaces the
// default.
func TestHandshakeTimeoutOption(t *testing.T) {
	clock := memory.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s := pulsartest.NewServer(pulsartest.WithClock(pulsartest.ClockOf(clock)), pulsartest.WithHandshakeTimeout(0))
	t.Cleanup(func() { _ = s.Close() })
	c := pipe(t, s)
	require.NoError(t, s.WaitConns(ctx(t), 1))
	clock.Advance(time.Hour)
	c.handshake()

	s2 := pulsartest.NewServer(pulsartest.WithClock(pulsartest.ClockOf(clock)), pulsartest.WithHandshakeTimeout(time.Second))
	t.Cleanup(func() { _ = s2.Close() })
	c2 := pipe(t, s2)
	require.NoError(t, s2.WaitConns(ctx(t), 1))
	clock.Advance(time.Second)
	c2.expectClosed()
}

// A length prefix alone allocates little: connections that each announce
// a 5 MiB frame and send 11 bytes of it cost the server a few KiB each,
// not the announced size.
func TestAnnouncedFrameSizeIsNotAllocated(t *testing.T) {
	s := pulsartest.NewServer()
	t.Cleanup(func() { _ = s.Close() })
	const conns = 50
	head := binary.BigEndian.AppendUint32(nil, 5<<20)
	head = append(head, make([]byte, 10)...)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range conns {
		c := pipe(t, s)
		c.raw(head)
		// net.Pipe: this write returns once the server read the byte,
		// so it is inside the announced frame, its buffer allocated.
		c.raw([]byte{0})
	}
	runtime.ReadMemStats(&after)
	perConn := (after.TotalAlloc - before.TotalAlloc) / conns
	t.Logf("allocated %d bytes per connection announcing 5 MiB", perConn)
	assert.Less(t, perConn, uint64(64<<10))
}

// Close cuts short a connection the server is closing (after a protocol
// violation) while its client does not read what is queued: the writer
// blocked on that client must not keep Close waiting.
func TestCloseCutsAClosingConnection(t *testing.T) {
	s := pulsartest.NewServer()
	c := pipe(t, s)
	c.handshake()
	c.send(lookup(1, "t")) // its answer waits: the test never reads it
	c.send(connectCmd())   // a second CONNECT: the server closes after flushing
	require.NoError(t, s.WaitConns(ctx(t), 0))

	done := make(chan struct{})
	go func() {
		_ = s.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx(t).Done():
		t.Fatal("Close waits for a closing connection whose client does not read")
	}
}
