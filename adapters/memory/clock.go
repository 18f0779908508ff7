package memory

import (
	"container/heap"
	"sync"
	"time"

	"github.com/pulsarconn/pulsarconn/ports"
)

// Clock is a fake ports.Clock whose time moves only when a test calls
// Advance or Set. Those run every timer that falls due, in deadline order
// (timers with equal deadlines in the order they were armed), synchronously
// in the caller's goroutine and without the clock's lock held, so a callback
// may read the clock and arm or stop timers. While a callback runs, Now
// reports that timer's deadline.
//
// The zero value is a clock at the zero time; use NewClock to start
// elsewhere. All methods are safe for concurrent use, but a callback must
// not call Advance or Set: they wait for the call that ran it.
type Clock struct {
	advancing sync.Mutex // serialises Advance and Set

	mu     sync.Mutex
	now    time.Time
	timers timerHeap
	seq    uint64
}

var _ ports.Clock = (*Clock)(nil)

// NewClock returns a clock that reads start until advanced.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc arms a timer that calls f once the clock has moved d past now.
// A timer with d <= 0 is due at once and runs on the next Advance or Set,
// even Advance(0): the fake clock never runs a callback by itself.
func (c *Clock) AfterFunc(d time.Duration, f func()) ports.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &fakeTimer{clock: c, when: c.now.Add(max(d, 0)), seq: c.seq, f: f}
	heap.Push(&c.timers, t)
	return t
}

// Advance moves the clock forward by d, running every timer that falls due
// on the way; timers armed by those callbacks run too if they fall due
// within d. It panics if d is negative: ports.Clock time is monotonic.
func (c *Clock) Advance(d time.Duration) {
	if d < 0 {
		panic("memory: Clock.Advance with a negative duration")
	}
	c.advancing.Lock()
	defer c.advancing.Unlock()
	c.mu.Lock()
	target := c.now.Add(d)
	c.mu.Unlock()
	c.runUntil(target)
}

// Set moves the clock to t, running every timer due by then, as Advance
// does. It panics if t is before Now: ports.Clock time is monotonic.
func (c *Clock) Set(t time.Time) {
	c.advancing.Lock()
	defer c.advancing.Unlock()
	c.mu.Lock()
	before := t.Before(c.now)
	c.mu.Unlock()
	if before {
		panic("memory: Clock.Set would move time backwards")
	}
	c.runUntil(t)
}

// runUntil runs due timers one at a time, each with the clock at its
// deadline, then leaves the clock at target. Called with c.advancing held.
func (c *Clock) runUntil(target time.Time) {
	for {
		c.mu.Lock()
		if len(c.timers) == 0 || c.timers[0].when.After(target) {
			if target.After(c.now) {
				c.now = target
			}
			c.mu.Unlock()
			return
		}
		t := heap.Pop(&c.timers).(*fakeTimer)
		if t.when.After(c.now) {
			c.now = t.when
		}
		f := t.f
		c.mu.Unlock()
		f()
	}
}

// Pending returns the number of armed timers: neither run nor stopped.
func (c *Clock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// NextDeadline returns when the earliest armed timer is due, and false if
// no timer is armed. Advancing to it runs at least that timer.
func (c *Clock) NextDeadline() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.timers) == 0 {
		return time.Time{}, false
	}
	return c.timers[0].when, true
}

// fakeTimer is a callback armed on a Clock.
type fakeTimer struct {
	clock *Clock
	when  time.Time
	seq   uint64 // arming order, to break ties between equal deadlines
	f     func()
	index int // position in the clock's heap; -1 once run or stopped
}

// Stop disarms the timer; it reports false if the timer already ran or was
// already stopped.
func (t *fakeTimer) Stop() bool {
	c := t.clock
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.index < 0 {
		return false
	}
	heap.Remove(&c.timers, t.index)
	return true
}

// timerHeap orders armed timers by deadline, then by arming order. Its
// methods implement heap.Interface and keep each timer's index current, so
// Stop can remove a timer from the middle.
type timerHeap []*fakeTimer

func (h timerHeap) Len() int { return len(h) }

func (h timerHeap) Less(i, j int) bool {
	if !h[i].when.Equal(h[j].when) {
		return h[i].when.Before(h[j].when)
	}
	return h[i].seq < h[j].seq
}

func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h *timerHeap) Push(x any) {
	t := x.(*fakeTimer)
	t.index = len(*h)
	*h = append(*h, t)
}

func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	t.index = -1
	return t
}
