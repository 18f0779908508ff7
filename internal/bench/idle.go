package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"time"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/ports"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// Network is an in-memory network (adapters/memory.Network): a Transport
// for the Brokers and a listener for the server. It is passed in because
// only the root package, cmd and tests may import adapters.
type Network interface {
	ports.Transport
	Listen(address string) (net.Listener, error)
}

// IdleMemory is what the idle-connection scenario measured, in bytes per
// connection of HeapInuse+StackInuse.
type IdleMemory struct {
	Conns int
	// Raw is the cost of a connection that did the handshake and is held
	// by nobody but its owner: the server's side of it (pulsartest), the
	// in-memory pipe, and the connection itself.
	Raw float64
	// Library is the same with a connected Broker on the client side.
	Library float64
}

// Client returns the library's own share: Library minus Raw.
func (m IdleMemory) Client() float64 { return m.Library - m.Raw }

// inUse returns HeapInuse+StackInuse after two collections.
func inUse() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse + ms.StackInuse)
}

// The two phases of the idle-connection scenario.
const (
	// IdleRaw: connections that did the handshake and are held by
	// nobody but their owner.
	IdleRaw = "raw"
	// IdleLibrary: connected Brokers.
	IdleLibrary = "library"
)

// MeasureIdleMemory measures both phases of the idle-connection scenario
// in this process, one after the other, each over a network made by
// network. A process that ran other scenarios first, or the raw phase
// before the library one, leaves heap and stack spans behind that blur
// the difference by a few KB; MeasureIdlePhase in fresh processes does
// not (see Options.IdlePhase).
func MeasureIdleMemory(ctx context.Context, network func() Network, n int) (IdleMemory, error) {
	out := IdleMemory{Conns: n}
	var err error
	if out.Raw, err = MeasureIdlePhase(ctx, network(), n, IdleRaw); err != nil {
		return IdleMemory{}, err
	}
	if out.Library, err = MeasureIdlePhase(ctx, network(), n, IdleLibrary); err != nil {
		return IdleMemory{}, err
	}
	return out, nil
}

// MeasureIdlePhase opens n connections of one phase (IdleRaw or
// IdleLibrary) over network to a pulsartest server that answers CONNECT,
// and reports what each costs in HeapInuse+StackInuse, both sides and the
// in-memory pipe included.
func MeasureIdlePhase(ctx context.Context, network Network, n int, phase string) (float64, error) {
	if phase != IdleRaw && phase != IdleLibrary {
		return 0, fmt.Errorf("bench: unknown idle phase %q (want %q or %q)", phase, IdleRaw, IdleLibrary)
	}
	const addr = "bench-idle:6650"
	srv := pulsartest.NewServer()
	defer srv.Close()
	l, err := network.Listen(addr)
	if err != nil {
		return 0, err
	}
	if err := srv.Start(l); err != nil {
		return 0, err
	}
	before := inUse()
	if phase == IdleRaw {
		raws := make([]ports.Conn, 0, n)
		defer func() {
			for _, c := range raws {
				_ = c.Close()
			}
		}()
		for range n {
			c, err := network.Dial(ctx, addr)
			if err != nil {
				return 0, err
			}
			raws = append(raws, c)
			if err := rawHandshake(c); err != nil {
				return 0, err
			}
		}
		return float64(inUse()-before) / float64(n), nil
	}
	brokers := make([]*pulsarconn.Broker, 0, n)
	defer func() { stopAll(brokers) }()
	for range n {
		b, err := pulsarconn.Start("pulsar://"+addr, pulsarconn.WithTransport(network))
		if err != nil {
			return 0, err
		}
		brokers = append(brokers, b)
	}
	for _, b := range brokers {
		if err := b.WaitConnected(ctx); err != nil {
			return 0, err
		}
	}
	return float64(inUse()-before) / float64(n), nil
}

// rawHandshake sends CONNECT on c and reads one frame, the answer, with
// no buffer beyond the frame.
func rawHandshake(c io.ReadWriter) error {
	if _, err := c.Write(connectFrame); err != nil {
		return err
	}
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return err
	}
	body := make([]byte, binary.BigEndian.Uint32(hdr[:]))
	_, err := io.ReadFull(c, body)
	return err
}

// stopAll stops the brokers, a few at a time.
func stopAll(brokers []*pulsarconn.Broker) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for _, b := range brokers {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = b.Stop(ctx)
		}()
	}
	wg.Wait()
}

// Reconnect is what the reconnect scenario measured: the time from the
// server dropping every connection to the last client connected again.
type Reconnect struct {
	Conns   int
	Raw     time.Duration
	Library time.Duration
}

// MeasureReconnect connects n raw clients, drops every connection and
// times their redial and handshake; then does the same with n Brokers
// (backoff 1 ms to 50 ms).
func MeasureReconnect(ctx context.Context, n int) (Reconnect, error) {
	srv, err := NewServer(ServerConfig{})
	if err != nil {
		return Reconnect{}, err
	}
	defer srv.Close()
	out := Reconnect{Conns: n}
	if out.Raw, err = rawReconnect(ctx, srv, n); err != nil {
		return Reconnect{}, err
	}
	if out.Library, err = libReconnect(ctx, srv, n); err != nil {
		return Reconnect{}, err
	}
	return out, nil
}

func rawReconnect(ctx context.Context, srv *Server, n int) (time.Duration, error) {
	conns := make([]*rawConn, n)
	for i := range conns {
		c, err := dialRaw(ctx, srv.Addr())
		if err != nil {
			for _, c := range conns[:i] {
				_ = c.Close()
			}
			return 0, err
		}
		conns[i] = c
	}
	type result struct {
		c   *rawConn
		at  time.Time
		err error
	}
	results := make(chan result, n)
	for _, c := range conns {
		go func() {
			// Wait for the drop, then reconnect at once.
			_, err := c.next()
			_ = c.Close()
			if err == nil {
				results <- result{err: fmt.Errorf("%w: a frame on an idle connection", errUnexpected)}
				return
			}
			nc, err := dialRaw(ctx, srv.Addr())
			results <- result{c: nc, at: time.Now(), err: err}
		}()
	}
	t0 := time.Now()
	srv.DropConnections()
	var last time.Time
	var errs []error
	for range n {
		r := <-results
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		_ = r.c.Close()
		if r.at.After(last) {
			last = r.at
		}
	}
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	return last.Sub(t0), nil
}

func libReconnect(ctx context.Context, srv *Server, n int) (time.Duration, error) {
	brokers := make([]*pulsarconn.Broker, 0, n)
	defer func() { stopAll(brokers) }()
	for range n {
		b, err := pulsarconn.Start(srv.URL(), pulsarconn.WithBackoff(time.Millisecond, 50*time.Millisecond))
		if err != nil {
			return 0, err
		}
		brokers = append(brokers, b)
	}
	changed := make([]<-chan struct{}, n)
	for i, b := range brokers {
		if err := b.WaitConnected(ctx); err != nil {
			return 0, err
		}
		_, changed[i] = b.WatchState()
	}
	type result struct {
		at  time.Time
		err error
	}
	results := make(chan result, n)
	t0 := time.Now()
	srv.DropConnections()
	for i, b := range brokers {
		go func() {
			select {
			case <-changed[i]:
			case <-ctx.Done():
				results <- result{err: ctx.Err()}
				return
			}
			err := b.WaitConnected(ctx)
			results <- result{at: time.Now(), err: err}
		}()
	}
	var last time.Time
	var errs []error
	for range n {
		r := <-results
		if r.err != nil {
			errs = append(errs, r.err)
		} else if r.at.After(last) {
			last = r.at
		}
	}
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	return last.Sub(t0), nil
}
