// Package tcp provides the TCP ports.Transport: [Transport] dials brokers
// over plain TCP (pulsar:// URLs) with TCP_NODELAY on, since the driver
// already coalesces frames into few writes and Nagle's algorithm would only
// delay small requests, and TCP keepalive on, so a dead peer is noticed by
// the kernel even when the Pulsar-level PING is not due.
package tcp

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/pulsarconn/pulsarconn/ports"
)

// DefaultKeepAlive is the TCP keepalive period used unless WithKeepAlive
// says otherwise: the first probe after that much idle time, then one every
// period. It matches the Pulsar clients' 30 s keepalive interval.
const DefaultKeepAlive = 30 * time.Second

// Transport dials TCP connections to brokers. The zero value is ready to
// use and behaves like New(). A Transport is safe for concurrent use and
// must not be modified after first use.
type Transport struct {
	keepAlive      time.Duration // 0: DefaultKeepAlive; negative: off
	connectTimeout time.Duration // 0: none beyond the dial context
	localAddr      *net.TCPAddr  // nil: chosen by the kernel
}

var _ ports.Transport = (*Transport)(nil)

// Option configures a Transport.
type Option func(*Transport)

// WithKeepAlive sets the TCP keepalive period: the idle time before the
// first probe and the interval between probes. Zero or negative turns
// keepalive off. Default: DefaultKeepAlive (30 s).
func WithKeepAlive(period time.Duration) Option {
	return func(t *Transport) {
		if period <= 0 {
			period = -1
		}
		t.keepAlive = period
	}
}

// WithConnectTimeout bounds each Dial, in addition to the deadline of the
// context passed to Dial; the earlier of the two wins. Zero or negative
// means no bound of its own. Default: none beyond the context (the driver
// applies its connect timeout through the context).
func WithConnectTimeout(d time.Duration) Option {
	return func(t *Transport) { t.connectTimeout = max(d, 0) }
}

// WithLocalAddr makes connections originate from addr, for hosts with
// several interfaces. Default: nil, the kernel chooses.
func WithLocalAddr(addr *net.TCPAddr) Option {
	return func(t *Transport) { t.localAddr = addr }
}

// New returns a Transport with the given options applied in order.
func New(opts ...Option) *Transport {
	t := &Transport{}
	for _, opt := range opts {
		opt(t)
	}
	return t
}

// Dial connects to address ("host:port") over TCP. It honours ctx: its
// deadline bounds the connect, and cancelling it aborts the dial. Errors
// name the address and wrap the net package's error, so errors.Is matches
// the cause (syscall.ECONNREFUSED, context.DeadlineExceeded, ...).
func (t *Transport) Dial(ctx context.Context, address string) (ports.Conn, error) {
	d := t.dialer()
	c, err := d.DialContext(ctx, "tcp", address)
	if err != nil {
		return nil, fmt.Errorf("tcp: dial %s: %w", address, err)
	}
	if tc, ok := c.(*net.TCPConn); ok {
		// Go turns TCP_NODELAY on by default; say so explicitly, because the
		// driver's latency depends on it.
		if err := tc.SetNoDelay(true); err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("tcp: dial %s: set TCP_NODELAY: %w", address, err)
		}
	}
	return c, nil
}

// dialer builds the net.Dialer for one Dial.
func (t *Transport) dialer() *net.Dialer {
	d := &net.Dialer{Timeout: t.connectTimeout}
	if t.localAddr != nil {
		d.LocalAddr = t.localAddr
	}
	switch period := t.keepAlive; {
	case period < 0:
		d.KeepAlive = -1
	default:
		if period == 0 {
			period = DefaultKeepAlive
		}
		d.KeepAliveConfig = net.KeepAliveConfig{Enable: true, Idle: period, Interval: period}
	}
	return d
}
