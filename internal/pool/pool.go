// Package pool is the Client's pool of connections (Brokers), by URL: how
// many lookups use each, which it keeps, the release of those a lookup only
// passed through and of kept ones idle for the max idle time (on a timer),
// and stopping what it releases. It knows a connection only through Conn
// and Config, so it does not import the root package.
package pool

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/pulsarconn/pulsarconn/core"
	"github.com/pulsarconn/pulsarconn/ports"
)

// Conn is what the Pool needs of a connection.
type Conn interface {
	comparable
	// State is the connection's state: a closed one is replaced.
	State() core.State
	// Stop stops it, within ctx.
	Stop(ctx context.Context) error
}

// Config is what a Pool is built with.
type Config[C Conn] struct {
	// Start starts a connection for url, dialling proxy instead, naming url
	// as the proxy target, when proxy is set.
	Start func(url, proxy string) (C, error)
	// CloseIfUnused begins to close c if nothing has used it since cutoff,
	// and reports whether it is closing (or was already); if not, when it
	// was last in use.
	CloseIfUnused func(c C, cutoff time.Time) (lastUsed time.Time, closing bool)
	Keep          []string      // the URLs whose connections are kept (the service hosts')
	Clock         ports.Clock   // runs the idle timer
	MaxIdle       time.Duration // how long a kept connection may be unused; 0: no limit

	// Forget, when set, runs under the Pool's lock as soon as the Pool
	// lets go of c (before c is stopped, or when a closed c is
	// replaced): it unlists c, so that the connection started next for
	// the same URL can be listed at once.
	Forget func(c C)
}

// Pool holds connections by URL. Its methods are safe for concurrent use.
type Pool[C Conn] struct {
	cfg Config[C]

	mu       sync.Mutex
	held     map[string]*entry[C] // by URL
	idle     ports.Timer          // the next idle check, while held is not empty
	stopping sync.WaitGroup       // the connections removed and not yet stopped
	closed   bool
}

// entry is a connection the Pool holds.
type entry[C Conn] struct {
	c    C
	url  string
	uses int  // Leases in progress that use it
	kept bool // in Config.Keep, or kept by a Lease's End
}

// New returns an empty Pool.
func New[C Conn](cfg Config[C]) *Pool[C] {
	return &Pool[C]{cfg: cfg, held: make(map[string]*entry[C])}
}

// Lease is one lookup's uses of a Pool's connections, from Get to End. It
// is used by one goroutine at a time.
type Lease[C Conn] struct {
	p    *Pool[C]
	uses []*entry[C]
}

// Lease begins a lookup's uses of the Pool's connections.
func (p *Pool[C]) Lease() *Lease[C] { return &Lease[C]{p: p} }

// Get returns the connection for url, starting it (Config.Start) if the
// Pool holds none or a closed one, and counts it among the Lease's uses
// (once). It fails with core.ErrClosed once the Pool is closed.
func (l *Lease[C]) Get(url, proxy string) (C, error) {
	p := l.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		var zero C
		return zero, core.ErrClosed
	}
	e, ok := p.held[url]
	if !ok || e.c.State() == core.StateClosed {
		if ok {
			p.forget(e.c)
		}
		c, err := p.cfg.Start(url, proxy)
		if err != nil {
			return c, err
		}
		e = &entry[C]{c: c, url: url, kept: slices.Contains(p.cfg.Keep, url)}
		p.held[url] = e
		if p.idle == nil && p.cfg.MaxIdle > 0 {
			p.idle = p.cfg.Clock.AfterFunc(p.cfg.MaxIdle, p.releaseIdle)
		}
	}
	if !slices.Contains(l.uses, e) {
		e.uses++
		l.uses = append(l.uses, e)
	}
	return e.c, nil
}

// End ends the Lease's uses, keeping keep if it is one of them (the zero C
// keeps none): it stops those that no other Lease uses and the Pool does
// not keep.
func (l *Lease[C]) End(keep C) {
	p := l.p
	var stop []C
	p.mu.Lock()
	for _, e := range l.uses {
		e.uses--
		e.kept = e.kept || e.c == keep
		if e.uses == 0 && !e.kept && p.held[e.url] == e {
			delete(p.held, e.url)
			p.forget(e.c)
			stop = append(stop, e.c)
		}
	}
	l.uses = nil
	stopNow := p.stopLater(stop)
	p.mu.Unlock()
	stopNow()
}

// releaseIdle stops the connections no Lease uses that have not been in
// use for the max idle time, and arms the next check for when the first of
// the others could be.
func (p *Pool[C]) releaseIdle() {
	p.mu.Lock()
	p.idle = nil
	if p.closed {
		p.mu.Unlock()
		return
	}
	now := p.cfg.Clock.Now()
	next := now.Add(p.cfg.MaxIdle)
	var stop []C
	for url, e := range p.held {
		if e.uses > 0 {
			continue
		}
		used, closing := p.cfg.CloseIfUnused(e.c, now.Add(-p.cfg.MaxIdle))
		if closing {
			delete(p.held, url)
			p.forget(e.c)
			stop = append(stop, e.c)
		} else if t := used.Add(p.cfg.MaxIdle); t.Before(next) {
			next = t
		}
	}
	if len(p.held) > 0 {
		p.idle = p.cfg.Clock.AfterFunc(next.Sub(now), p.releaseIdle)
	}
	stopNow := p.stopLater(stop)
	p.mu.Unlock()
	stopNow()
}

// forget runs Config.Forget for c, if set; called with the lock held.
func (p *Pool[C]) forget(c C) {
	if p.cfg.Forget != nil {
		p.cfg.Forget(c)
	}
}

// stopLater counts conns, which the Pool has just removed under its lock,
// as stopping (Close waits for them), and returns the function that stops
// them, to call once the lock is released.
func (p *Pool[C]) stopLater(conns []C) func() {
	if len(conns) == 0 {
		return func() {}
	}
	p.stopping.Add(1)
	return func() {
		defer p.stopping.Done()
		_ = stopAll(context.Background(), conns)
	}
}

// stopAll stops conns concurrently, within ctx.
func stopAll[C Conn](ctx context.Context, conns []C) error {
	errs := make([]error, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() { errs[i] = c.Stop(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// All returns the connections the Pool holds, ordered by URL.
func (p *Pool[C]) All() []C {
	p.mu.Lock()
	defer p.mu.Unlock()
	conns := make([]C, 0, len(p.held))
	for _, url := range slices.Sorted(maps.Keys(p.held)) {
		conns = append(conns, p.held[url].c)
	}
	return conns
}

// Close stops the idle timer and every connection the Pool holds,
// concurrently, within ctx, and waits for those it released before to
// stop, within ctx too. Get fails from then on.
func (p *Pool[C]) Close(ctx context.Context) error {
	p.mu.Lock()
	p.closed = true
	if p.idle != nil {
		p.idle.Stop()
		p.idle = nil
	}
	conns := make([]C, 0, len(p.held))
	for _, e := range p.held {
		conns = append(conns, e.c)
	}
	clear(p.held)
	p.mu.Unlock()
	err := stopAll(ctx, conns)
	stopped := make(chan struct{})
	go func() {
		p.stopping.Wait()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-ctx.Done():
		err = errors.Join(err, fmt.Errorf("pulsarconn: close: connections released before still stopping: %w", ctx.Err()))
	}
	return err
}
