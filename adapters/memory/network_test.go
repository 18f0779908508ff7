package memory_test

import (
	"context"
	"io"
	"net"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn/adapters/memory"
	"github.com/pulsarconn/pulsarconn/ports"
)

func TestListen(t *testing.T) {
	tests := []struct {
		name     string
		first    string // listened on, and kept open, before address
		address  string
		wantAddr string // "" when Listen must fail
	}{
		{name: "fresh address", address: "broker:6650", wantAddr: "broker:6650"},
		{name: "any string", address: "anything", wantAddr: "anything"},
		{name: "taken address", first: "broker:6650", address: "broker:6650"},
		{name: "other port of a taken host", first: "broker:6650", address: "broker:6651", wantAddr: "broker:6651"},
		{name: "port 0 picks a port", address: "broker:0", wantAddr: "broker:1"},
		{name: "port 0 skips a taken port", first: "broker:1", address: "broker:0", wantAddr: "broker:2"},
		{name: "empty address", address: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n memory.Network // the zero value is ready to use
			if tt.first != "" {
				l, err := n.Listen(tt.first)
				require.NoError(t, err)
				defer l.Close()
			}
			l, err := n.Listen(tt.address)
			if tt.wantAddr == "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), "memory")
				return
			}
			require.NoError(t, err)
			defer l.Close()
			assert.Equal(t, memory.Addr(tt.wantAddr), l.Addr())
		})
	}
}

func TestListenerCloseFreesAddress(t *testing.T) {
	n := memory.NewNetwork()
	l, err := n.Listen("broker:6650")
	require.NoError(t, err)
	require.NoError(t, l.Close())
	assert.ErrorIs(t, l.Close(), net.ErrClosed, "second Close")

	_, err = n.DialConn(t.Context(), "broker:6650")
	assert.ErrorIs(t, err, memory.ErrRefused)

	l, err = n.Listen("broker:6650")
	require.NoError(t, err, "address free again")
	require.NoError(t, l.Close())
}

func TestListenerCloseUnblocksAccept(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memory.NewNetwork()
		l, err := n.Listen("broker:6650")
		require.NoError(t, err)
		accepted := make(chan error, 1)
		go func() {
			_, err := l.Accept()
			accepted <- err
		}()
		synctest.Wait()
		require.Empty(t, accepted, "Accept returned with nothing dialed")

		require.NoError(t, l.Close())
		assert.ErrorIs(t, <-accepted, net.ErrClosed)
	})
}

func TestListenerCloseResetsUnacceptedConnections(t *testing.T) {
	n := memory.NewNetwork()
	l, err := n.Listen("broker:6650")
	require.NoError(t, err)
	client, err := n.DialConn(t.Context(), "broker:6650")
	require.NoError(t, err)
	defer client.Close()
	require.Equal(t, 1, n.Conns())

	require.NoError(t, l.Close())
	_, err = client.Read(make([]byte, 1))
	assert.ErrorIs(t, err, memory.ErrReset)
	assert.Zero(t, n.Conns())
}

func TestDialErrors(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		setup   func(t *testing.T, n *memory.Network)
		ctx     context.Context
		wantErr []error // every one must match with errors.Is
	}{
		{
			name:    "nobody listens",
			setup:   func(*testing.T, *memory.Network) {},
			wantErr: []error{memory.ErrRefused, syscall.ECONNREFUSED},
		},
		{
			name: "dials refused",
			setup: func(t *testing.T, n *memory.Network) {
				listen(t, n, "broker:6650")
				n.RefuseDials(true)
			},
			wantErr: []error{memory.ErrRefused, syscall.ECONNREFUSED},
		},
		{
			name: "context already ended",
			setup: func(t *testing.T, n *memory.Network) {
				listen(t, n, "broker:6650")
			},
			ctx:     canceled,
			wantErr: []error{context.Canceled},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := memory.NewNetwork()
			tt.setup(t, n)
			ctx := tt.ctx
			if ctx == nil {
				ctx = t.Context()
			}
			c, err := n.Dial(ctx, "broker:6650")
			assert.Nil(t, c)
			require.Error(t, err)
			for _, want := range tt.wantErr {
				assert.ErrorIs(t, err, want)
			}
			assert.Contains(t, err.Error(), "broker:6650", "error names the address")
			assert.Zero(t, n.Conns())
		})
	}
}

// listen claims address on n until the test ends.
func listen(t *testing.T, n *memory.Network, address string) net.Listener {
	t.Helper()
	l, err := n.Listen(address)
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func TestRefuseDialsCanBeLifted(t *testing.T) {
	n := memory.NewNetwork()
	l := listen(t, n, "broker:6650")
	client, server := connect(t, n)

	n.RefuseDials(true)
	_, err := n.Dial(t.Context(), "broker:6650")
	require.ErrorIs(t, err, memory.ErrRefused)

	// Connections already open are unaffected.
	_, err = client.Write([]byte("x"))
	require.NoError(t, err)
	_, err = io.ReadFull(server, make([]byte, 1))
	require.NoError(t, err)

	n.RefuseDials(false)
	c, err := n.Dial(t.Context(), "broker:6650")
	require.NoError(t, err)
	defer c.Close()
	s, err := l.Accept()
	require.NoError(t, err)
	defer s.Close()
}

func TestNetworkIsATransport(t *testing.T) {
	var transport ports.Transport = memory.NewNetwork()
	n := transport.(*memory.Network)
	l := listen(t, n, "broker:6650")

	c, err := transport.Dial(t.Context(), "broker:6650")
	require.NoError(t, err)
	defer c.Close()
	s, err := l.Accept()
	require.NoError(t, err)
	defer s.Close()

	_, err = c.Write([]byte("ping"))
	require.NoError(t, err)
	buf := make([]byte, 4)
	_, err = io.ReadFull(s, buf)
	require.NoError(t, err)
	assert.Equal(t, "ping", string(buf))
}

func TestConnsCountsUntilBothEndsClose(t *testing.T) {
	n := memory.NewNetwork()
	assert.Zero(t, n.Conns())
	c1, s1 := connect(t, n)
	c2, s2 := connect(t, n)
	assert.Equal(t, 2, n.Conns())

	require.NoError(t, c1.Close())
	assert.Equal(t, 2, n.Conns(), "the server end of the first is still open")
	require.NoError(t, s1.Close())
	assert.Equal(t, 1, n.Conns())
	require.NoError(t, s2.Close())
	require.NoError(t, c2.Close())
	assert.Zero(t, n.Conns())
}

func TestDropAll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memory.NewNetwork()
		l := listen(t, n, "broker:0")
		c1, s1 := connect(t, n)
		c2, s2 := connect(t, n)
		_, err := c2.Write([]byte("lost in flight"))
		require.NoError(t, err)
		pending := goRead(c1, 8)
		require.True(t, stillBlocked(pending))
		require.Equal(t, 2, n.Conns())

		n.DropAll()
		assert.Zero(t, n.Conns())

		r := <-pending
		assert.ErrorIs(t, r.err, memory.ErrReset)
		assert.ErrorIs(t, r.err, syscall.ECONNRESET)
		for _, c := range []net.Conn{c1, s1, c2, s2} {
			_, err := c.Read(make([]byte, 8))
			assert.ErrorIs(t, err, memory.ErrReset, "Read on %v", c.LocalAddr())
			_, err = c.Write([]byte("x"))
			assert.ErrorIs(t, err, memory.ErrReset, "Write on %v", c.LocalAddr())
			assert.NoError(t, c.Close(), "Close after a reset")
		}
		assert.Zero(t, n.Conns())

		// Listeners survive: the client can reconnect.
		c, err := n.DialConn(t.Context(), l.Addr().String())
		require.NoError(t, err)
		defer c.Close()
		s, err := l.Accept()
		require.NoError(t, err)
		defer s.Close()
		assert.Equal(t, 1, n.Conns())
	})
}

func TestLatency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memory.NewNetwork()
		client, server := connect(t, n)

		n.SetLatency(100 * time.Millisecond)
		start := time.Now()
		_, err := client.Write([]byte("a"))
		require.NoError(t, err)
		// Lowering the latency must not let later bytes overtake "a".
		n.SetLatency(10 * time.Millisecond)
		_, err = client.Write([]byte("b"))
		require.NoError(t, err)

		buf := make([]byte, 2)
		_, err = io.ReadFull(server, buf)
		require.NoError(t, err)
		assert.Equal(t, "ab", string(buf))
		assert.Equal(t, 100*time.Millisecond, time.Since(start), "delivered after the latency")

		// The other direction, at the latency now in force.
		start = time.Now()
		_, err = server.Write([]byte("c"))
		require.NoError(t, err)
		_, err = io.ReadFull(client, buf[:1])
		require.NoError(t, err)
		assert.Equal(t, 10*time.Millisecond, time.Since(start))

		// Back to zero: delivered at once.
		n.SetLatency(0)
		start = time.Now()
		_, err = client.Write([]byte("d"))
		require.NoError(t, err)
		_, err = io.ReadFull(server, buf[:1])
		require.NoError(t, err)
		assert.Zero(t, time.Since(start))
	})
}

func TestLatencyDelaysEOFBehindData(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memory.NewNetwork()
		client, server := connect(t, n)
		n.SetLatency(time.Second)
		start := time.Now()
		_, err := client.Write([]byte("bye"))
		require.NoError(t, err)
		require.NoError(t, client.Close())

		got, err := io.ReadAll(server)
		require.NoError(t, err)
		assert.Equal(t, "bye", string(got))
		assert.Equal(t, time.Second, time.Since(start))
	})
}

func TestLatencyRespectsReadDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memory.NewNetwork()
		client, server := connect(t, n)
		n.SetLatency(time.Second)
		_, err := client.Write([]byte("late"))
		require.NoError(t, err)

		start := time.Now()
		require.NoError(t, server.SetReadDeadline(start.Add(100*time.Millisecond)))
		_, err = server.Read(make([]byte, 4))
		assertTimeout(t, err)
		assert.Equal(t, 100*time.Millisecond, time.Since(start))
	})
}
