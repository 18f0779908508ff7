package tcp_test

import (
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn/adapters/tcp"
)

// TestSocketOptions reads back, with getsockopt, what the kernel was told.
func TestSocketOptions(t *testing.T) {
	tests := []struct {
		name          string
		tr            *tcp.Transport
		wantKeepAlive bool
		wantIdle      time.Duration
	}{
		{"defaults", tcp.New(), true, tcp.DefaultKeepAlive},
		{"zero value", &tcp.Transport{}, true, tcp.DefaultKeepAlive},
		{"keepalive period", tcp.New(tcp.WithKeepAlive(7 * time.Second)), true, 7 * time.Second},
		{"keepalive off", tcp.New(tcp.WithKeepAlive(0)), false, 0},
		{"keepalive off (negative)", tcp.New(tcp.WithKeepAlive(-time.Second)), false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := listen(t)
			accepted := make(chan net.Conn, 1)
			go func() {
				c, _ := l.Accept()
				accepted <- c
			}()
			c, err := tt.tr.Dial(t.Context(), l.Addr().String())
			require.NoError(t, err)
			defer c.Close()
			if s := <-accepted; s != nil {
				defer s.Close()
			}

			raw, err := c.(*net.TCPConn).SyscallConn()
			require.NoError(t, err)
			var noDelay, keepAlive, idle, interval int
			var sockErr error
			require.NoError(t, raw.Control(func(fd uintptr) {
				get := func(level, opt int) int {
					v, err := syscall.GetsockoptInt(int(fd), level, opt)
					if err != nil && sockErr == nil {
						sockErr = err
					}
					return v
				}
				noDelay = get(syscall.IPPROTO_TCP, syscall.TCP_NODELAY)
				keepAlive = get(syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
				idle = get(syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE)
				interval = get(syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL)
			}))
			require.NoError(t, sockErr)

			assert.Equal(t, 1, noDelay, "TCP_NODELAY")
			if !tt.wantKeepAlive {
				assert.Zero(t, keepAlive, "SO_KEEPALIVE")
				return
			}
			assert.Equal(t, 1, keepAlive, "SO_KEEPALIVE")
			assert.Equal(t, int(tt.wantIdle/time.Second), idle, "TCP_KEEPIDLE")
			assert.Equal(t, int(tt.wantIdle/time.Second), interval, "TCP_KEEPINTVL")
		})
	}
}
