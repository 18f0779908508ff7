package pool

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn/adapters/memory"
	"github.com/pulsarconn/pulsarconn/core"
)

// conn is a connection whose use the test sets: in use, or last used at
// a time.
type conn struct {
	url string

	mu       sync.Mutex
	state    core.State
	inUse    bool
	lastUsed time.Time
	checks   int // CloseIfUnused calls
	stops    int
	gate     chan struct{} // if set, Stop waits for it to close
}

func (c *conn) State() core.State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

func (c *conn) Stop(context.Context) error {
	if c.gate != nil {
		<-c.gate
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.state = core.StateClosed
	c.stops++
	return nil
}

func (c *conn) stopped() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stops
}

func (c *conn) use(inUse bool, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inUse, c.lastUsed = inUse, at
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// env is a Pool of conns on a fake clock; started lists what Start
// started, and Start fails for the URL "bad".
type env struct {
	clock   *memory.Clock
	p       *Pool[*conn]
	started []*conn
}

// closeIfUnused is the Engine's rule, on the test's figures.
func (e *env) closeIfUnused(c *conn, cutoff time.Time) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checks++
	switch {
	case c.inUse:
		return e.clock.Now(), false
	case c.lastUsed.After(cutoff):
		return c.lastUsed, false
	}
	c.state = core.StateClosing
	return time.Time{}, true
}

func newEnv(t *testing.T, maxIdle time.Duration, keep ...string) *env {
	e := &env{clock: memory.NewClock(t0)}
	e.p = New(Config[*conn]{
		Start: func(url, proxy string) (*conn, error) {
			if url == "bad" {
				return nil, errors.New("bad URL")
			}
			c := &conn{url: url, state: core.StateConnecting, lastUsed: e.clock.Now()}
			e.started = append(e.started, c)
			return c, nil
		},
		CloseIfUnused: e.closeIfUnused,
		Keep:          keep,
		Clock:         e.clock,
		MaxIdle:       maxIdle,
	})
	t.Cleanup(func() { _ = e.p.Close(context.Background()) })
	return e
}

// get is l.Get(url, ""), which must succeed.
func get(t *testing.T, l *Lease[*conn], url string) *conn {
	t.Helper()
	c, err := l.Get(url, "")
	require.NoError(t, err)
	return c
}

// TestLeaseUseCounts: a connection two Leases use is started once and
// stopped when the last of them ends; one a Lease gets twice counts once.
func TestLeaseUseCounts(t *testing.T) {
	e := newEnv(t, 0)
	l1, l2 := e.p.Lease(), e.p.Lease()
	a := get(t, l1, "a")
	again := get(t, l1, "a")
	b := get(t, l2, "a")
	assert.Same(t, a, again)
	assert.Same(t, a, b)
	assert.Len(t, e.started, 1)

	l1.End(nil)
	assert.Zero(t, a.stopped(), "l2 still uses it")
	assert.Equal(t, []*conn{a}, e.p.All())
	l2.End(nil)
	assert.Equal(t, 1, a.stopped())
	assert.Empty(t, e.p.All())
}

// TestKeptEntries: a Keep URL's connection and the one End keeps stay
// after the Lease ends, the others are stopped; a kept connection found
// closed is replaced by a new entry, kept only if a Lease keeps it.
func TestKeptEntries(t *testing.T) {
	e := newEnv(t, 0, "host")
	l := e.p.Lease()
	host := get(t, l, "host")
	through := get(t, l, "through")
	owner := get(t, l, "owner")
	l.End(owner)
	assert.Equal(t, 1, through.stopped())
	assert.Zero(t, host.stopped())
	assert.Zero(t, owner.stopped())
	assert.Equal(t, []*conn{host, owner}, e.p.All(), "ordered by URL")

	require.NoError(t, owner.Stop(context.Background()))
	l = e.p.Lease()
	again := get(t, l, "owner")
	assert.NotSame(t, owner, again)
	l.End(nil)
	assert.Equal(t, 1, again.stopped())
	assert.Equal(t, []*conn{host}, e.p.All())
}

// TestStartFails: Start's error is Get's, and nothing is held.
func TestStartFails(t *testing.T) {
	e := newEnv(t, time.Minute)
	l := e.p.Lease()
	_, err := l.Get("bad", "")
	require.EqualError(t, err, "bad URL")
	l.End(nil)
	assert.Empty(t, e.p.All())
	assert.Zero(t, e.clock.Pending(), "no idle timer for nothing held")
}

// TestIdleTimerRearmsForEarliest: the idle check stops what has been
// unused for MaxIdle, skips what a Lease uses, and arms the next check for
// when the first of the others could be.
func TestIdleTimerRearmsForEarliest(t *testing.T) {
	e := newEnv(t, 10*time.Second, "a", "b", "c")
	l := e.p.Lease()
	a, b, c := get(t, l, "a"), get(t, l, "b"), get(t, l, "c")
	l.End(nil)
	inUse := e.p.Lease()
	get(t, inUse, "c")
	a.use(false, t0.Add(3*time.Second))
	b.use(false, t0.Add(7*time.Second))
	next, ok := e.clock.NextDeadline()
	require.True(t, ok)
	assert.Equal(t, t0.Add(10*time.Second), next, "armed at the first start")

	e.clock.Advance(10 * time.Second)
	assert.Zero(t, a.stopped()+b.stopped())
	assert.Zero(t, c.checks, "a Lease uses c")
	next, _ = e.clock.NextDeadline()
	assert.Equal(t, t0.Add(13*time.Second), next, "a's idleness ends first")

	e.clock.Advance(3 * time.Second)
	assert.Equal(t, 1, a.stopped())
	assert.Zero(t, b.stopped())
	next, _ = e.clock.NextDeadline()
	assert.Equal(t, t0.Add(17*time.Second), next)

	e.clock.Advance(4 * time.Second)
	assert.Equal(t, 1, b.stopped())
	assert.Equal(t, []*conn{c}, e.p.All())
	next, _ = e.clock.NextDeadline()
	assert.Equal(t, t0.Add(27*time.Second), next, "a full MaxIdle while only c, in use, is held")

	inUse.End(nil)
	c.use(true, time.Time{})
	e.clock.Advance(10 * time.Second)
	assert.Zero(t, c.stopped(), "in use (a registration)")
	c.use(false, e.clock.Now())
	e.clock.Advance(10 * time.Second)
	assert.Equal(t, 1, c.stopped())
	assert.Empty(t, e.p.All())
	assert.Zero(t, e.clock.Pending(), "no check while nothing is held")
}

// TestCloseStopsEverything: Close stops the idle timer and what the Pool
// holds; Get then fails with core.ErrClosed.
func TestCloseStopsEverything(t *testing.T) {
	e := newEnv(t, time.Minute, "a")
	l := e.p.Lease()
	a := get(t, l, "a")
	l.End(nil)
	require.Equal(t, 1, e.clock.Pending())

	require.NoError(t, e.p.Close(context.Background()))
	assert.Equal(t, 1, a.stopped())
	assert.Zero(t, e.clock.Pending(), "the idle timer is stopped")
	assert.Empty(t, e.p.All())
	_, err := e.p.Lease().Get("a", "")
	assert.ErrorIs(t, err, core.ErrClosed)
	assert.Len(t, e.started, 1)
}

// TestCloseWaitsForReleased: Close returns only once the connections a
// Lease's End released before it have stopped.
func TestCloseWaitsForReleased(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 0)
		l := e.p.Lease()
		x := get(t, l, "x")
		x.gate = make(chan struct{})
		go l.End(nil)
		synctest.Wait() // End is in x.Stop
		assert.Empty(t, e.p.All())
		closed := make(chan error, 1)
		go func() { closed <- e.p.Close(context.Background()) }()
		synctest.Wait()
		select {
		case <-closed:
			t.Fatal("Close returned while a released connection was stopping")
		default:
		}
		close(x.gate)
		require.NoError(t, <-closed)
		assert.Equal(t, 1, x.stopped())
	})
}

// TestMaxIdleZero: with MaxIdle 0 no idle timer is armed.
func TestMaxIdleZero(t *testing.T) {
	e := newEnv(t, 0, "a")
	l := e.p.Lease()
	get(t, l, "a")
	l.End(nil)
	assert.Zero(t, e.clock.Pending())
}

// TestCloseWaitsWithinContext: Close waits for a connection released
// before, whose stop does not end, only until its context ends (Close
// promises to stop everything within ctx); it used to wait for it without
// bound.
func TestCloseWaitsWithinContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 0)
		l := e.p.Lease()
		x := get(t, l, "x")
		x.gate = make(chan struct{})
		defer close(x.gate)
		go l.End(nil)
		synctest.Wait() // End is in x.Stop
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		err := e.p.Close(ctx)
		require.ErrorIs(t, err, context.DeadlineExceeded)
	})
}
