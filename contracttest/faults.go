package contracttest

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/pulsarconn/pulsarconn/ports"
)

// faultTransport injects the suite's faults into any transport, on the
// client side, for adapters whose network has no fault controls of its
// own: refused dials fail before reaching the network; latency delays
// each delivery to the reader; a half-open connection swallows every byte
// written and drops every byte received.
type faultTransport struct {
	inner ports.Transport

	mu       sync.Mutex
	refuse   bool
	latency  time.Duration
	halfOpen bool
}

var (
	_ ports.Transport = (*faultTransport)(nil)
	_ Faults          = (*faultTransport)(nil)
)

func newFaultTransport(inner ports.Transport) *faultTransport {
	return &faultTransport{inner: inner}
}

// Dial implements ports.Transport.
func (f *faultTransport) Dial(ctx context.Context, address string) (ports.Conn, error) {
	f.mu.Lock()
	refuse := f.refuse
	f.mu.Unlock()
	if refuse {
		return nil, fmt.Errorf("contracttest: dial %s: %w", address, syscall.ECONNREFUSED)
	}
	c, err := f.inner.Dial(ctx, address)
	if err != nil {
		return nil, err
	}
	return &faultConn{Conn: c, f: f}, nil
}

// RefuseDials implements Faults.
func (f *faultTransport) RefuseDials(on bool) {
	f.mu.Lock()
	f.refuse = on
	f.mu.Unlock()
}

// SetLatency implements Faults.
func (f *faultTransport) SetLatency(d time.Duration) {
	f.mu.Lock()
	f.latency = d
	f.mu.Unlock()
}

// SetHalfOpen implements Faults.
func (f *faultTransport) SetHalfOpen(on bool) {
	f.mu.Lock()
	f.halfOpen = on
	f.mu.Unlock()
}

func (f *faultTransport) state() (time.Duration, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.latency, f.halfOpen
}

type faultConn struct {
	ports.Conn
	f *faultTransport
}

// Read delivers what the network gave, late under latency, and never
// while half-open (those bytes are lost, as on a dead path).
func (c *faultConn) Read(p []byte) (int, error) {
	for {
		n, err := c.Conn.Read(p)
		latency, halfOpen := c.f.state()
		if halfOpen && err == nil {
			continue
		}
		if latency > 0 && n > 0 {
			// Simulated network delay, not a wait for an event.
			<-time.After(latency)
		}
		return n, err
	}
}

// Write accepts everything; while half-open nothing is sent.
func (c *faultConn) Write(p []byte) (int, error) {
	if _, halfOpen := c.f.state(); halfOpen {
		return len(p), nil
	}
	return c.Conn.Write(p)
}
