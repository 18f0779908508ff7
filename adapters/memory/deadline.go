package memory

import (
	"sync"
	"sync/atomic"
	"time"
)

// closedChan is returned to waiters whose deadline has already passed.
var closedChan = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

// deadline is one read or write deadline of a connection endpoint.
//
// A waiter takes a channel from wait and blocks on it. The channel is closed
// when the deadline passes and also whenever the deadline changes, so that
// a waiter re-examines the new deadline instead of sleeping on a stale one;
// a waiter that wakes must ask expired whether the deadline really passed.
type deadline struct {
	mu    sync.Mutex
	timer *time.Timer
	gen   uint64        // bumped by every set; a stale timer callback sees a newer gen
	past  atomic.Bool   // the deadline in force has passed; written with mu held
	ch    chan struct{} // created by the first waiter, closed by wake
}

// set installs t as the deadline; the zero time means none.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if t.IsZero() && d.timer == nil && !d.past.Load() {
		return // no deadline before and none now: waiters need not look again
	}
	if d.timer != nil {
		// If this timer already fired, its callback finds gen changed and
		// does nothing.
		d.timer.Stop()
		d.timer = nil
	}
	d.gen++
	var dur time.Duration
	if !t.IsZero() {
		dur = time.Until(t)
	}
	// Publish the new state before waking waiters, which re-read it.
	d.past.Store(!t.IsZero() && dur <= 0)
	d.wake()
	if t.IsZero() || dur <= 0 {
		return
	}
	gen := d.gen
	d.timer = time.AfterFunc(dur, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.gen == gen {
			d.past.Store(true)
			d.timer = nil
			d.wake()
		}
	})
}

// wake releases every current waiter. Called with d.mu held.
func (d *deadline) wake() {
	if d.ch != nil {
		close(d.ch)
		d.ch = nil
	}
}

// expired reports whether the deadline has passed. It takes no lock: it is
// on every Read and Write.
func (d *deadline) expired() bool { return d.past.Load() }

// wait returns a channel that is closed once the deadline passes or changes
// (at once if it has already passed).
func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.past.Load() {
		return closedChan
	}
	if d.ch == nil {
		d.ch = make(chan struct{})
	}
	return d.ch
}

// stop releases the timer, if any, when the endpoint closes.
func (d *deadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
}
