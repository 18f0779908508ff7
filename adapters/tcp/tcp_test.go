package tcp_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"

	"github.com/pulsarconn/pulsarconn/adapters/tcp"
	"github.com/pulsarconn/pulsarconn/ports"
)

// listen opens a loopback listener for the test.
func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func TestDialExchangesBytes(t *testing.T) {
	transports := []struct {
		name string
		tr   *tcp.Transport
	}{
		{"New()", tcp.New()},
		{"zero value", &tcp.Transport{}},
		{"all options", tcp.New(
			tcp.WithKeepAlive(time.Minute),
			tcp.WithConnectTimeout(5*time.Second),
			tcp.WithLocalAddr(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}),
		)},
		{"keepalive off", tcp.New(tcp.WithKeepAlive(0))},
	}
	for _, tt := range transports {
		t.Run(tt.name, func(t *testing.T) {
			l := listen(t)
			accepted := make(chan net.Conn, 1)
			go func() {
				c, err := l.Accept()
				if err == nil {
					accepted <- c
				}
				close(accepted)
			}()

			var transport ports.Transport = tt.tr
			c, err := transport.Dial(t.Context(), l.Addr().String())
			require.NoError(t, err)
			defer c.Close()
			s := <-accepted
			require.NotNil(t, s)
			defer s.Close()

			_, err = c.Write([]byte("PING"))
			require.NoError(t, err)
			buf := make([]byte, 4)
			_, err = io.ReadFull(s, buf)
			require.NoError(t, err)
			assert.Equal(t, "PING", string(buf))
		})
	}
}

func TestDialErrors(t *testing.T) {
	refusedAddr := refusedAddress(t)

	canceled, cancel := context.WithCancel(context.Background())
	cancel()

	tests := []struct {
		name    string
		tr      *tcp.Transport
		ctx     context.Context
		address string
		wantIs  error
		timeout bool
	}{
		{
			name:    "refused",
			tr:      tcp.New(),
			address: refusedAddr,
			wantIs:  syscall.ECONNREFUSED,
		},
		{
			name:    "context canceled",
			tr:      tcp.New(),
			ctx:     canceled,
			address: listen(t).Addr().String(),
			wantIs:  context.Canceled,
		},
		{
			// A connect timeout already over when the dial starts fails
			// before any packet is sent, so no unreachable address is needed.
			name:    "connect timeout",
			tr:      tcp.New(tcp.WithConnectTimeout(time.Nanosecond)),
			address: listen(t).Addr().String(),
			wantIs:  context.DeadlineExceeded,
			timeout: true,
		},
		{
			name:    "missing port",
			tr:      tcp.New(),
			address: "127.0.0.1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := tt.ctx
			if ctx == nil {
				ctx = t.Context()
			}
			c, err := tt.tr.Dial(ctx, tt.address)
			assert.Nil(t, c)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "tcp: dial "+tt.address+":", "error names what was dialed")
			var opErr *net.OpError
			assert.ErrorAs(t, err, &opErr, "wraps the net package's error")
			if tt.wantIs != nil {
				assert.ErrorIs(t, err, tt.wantIs)
			}
			if tt.timeout {
				var ne net.Error
				require.ErrorAs(t, err, &ne)
				assert.True(t, ne.Timeout())
			}
		})
	}
}

// TestConnContract certifies the connections Transport returns with the
// x/net suite that every net.Conn should pass.
func TestConnContract(t *testing.T) {
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, nil, err
		}
		accepted := make(chan net.Conn, 1)
		go func() {
			c, _ := l.Accept()
			accepted <- c
		}()
		pc, err := tcp.New().Dial(context.Background(), l.Addr().String())
		if err != nil {
			_ = l.Close()
			return nil, nil, nil, err
		}
		c1 = pc.(net.Conn)
		c2 = <-accepted
		stop = func() {
			_ = c1.Close()
			_ = c2.Close()
			_ = l.Close()
		}
		return c1, c2, stop, nil
	})
}

// refusedAddress returns a loopback address that refuses connections: a TCP
// socket bound to it that does not listen. It holds the port for the whole
// test, so no other process's listener can take it, as one could the port
// of a listener closed for the purpose (seen once under load).
func refusedAddress(t *testing.T) string {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	require.NoError(t, err)
	t.Cleanup(func() { syscall.Close(fd) })
	require.NoError(t, syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	sa, err := syscall.Getsockname(fd)
	require.NoError(t, err)
	return fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
}
