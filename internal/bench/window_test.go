package bench

import (
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWindowWaitsWhileFull: the loop goes on while fewer than size are in
// flight, waits on a full window until an operation ends, and a failure
// ends any wait, drain included.
func TestWindowWaitsWhileFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWindow(2)
		require.NoError(t, w.wait(0))
		require.NoError(t, w.wait(1))

		var returned atomic.Bool
		go func() {
			assert.NoError(t, w.wait(2)) // two in flight: full
			returned.Store(true)
		}()
		synctest.Wait()
		assert.False(t, returned.Load(), "waits while the window is full")
		w.end()
		synctest.Wait()
		assert.True(t, returned.Load(), "an end makes room")

		// Three started, one ended: drain waits for the other two.
		var drained atomic.Bool
		go func() {
			assert.NoError(t, w.drain(3))
			drained.Store(true)
		}()
		synctest.Wait()
		w.end()
		synctest.Wait()
		assert.False(t, drained.Load(), "one still in flight")
		w.end()
		synctest.Wait()
		assert.True(t, drained.Load())

		// A failure ends a wait at once, and every later one.
		errBroken := errors.New("broken")
		done := make(chan error, 1)
		go func() { done <- w.wait(5) }()
		synctest.Wait()
		w.fail(errBroken)
		assert.ErrorIs(t, <-done, errBroken)
		assert.ErrorIs(t, w.wait(0), errBroken)
		w.fail(errors.New("later")) // the first failure stays
		assert.ErrorIs(t, w.drain(5), errBroken)
	})
}

// TestWindowUnderRace: a loop bounded by the window and a goroutine
// ending its operations never have more than size in flight, and the
// loop sees every end (run with -race).
func TestWindowUnderRace(t *testing.T) {
	const size, total = 8, 20000
	w := newWindow(size)
	ops := make(chan int, total) // never full: only the window bounds the loop
	var started, maxInFlight atomic.Int64
	go func() {
		for range total {
			<-ops
			if inFlight := started.Load() - w.ended.Load(); inFlight > maxInFlight.Load() {
				maxInFlight.Store(inFlight)
			}
			w.end()
		}
	}()
	for n := range total {
		require.NoError(t, w.wait(n))
		started.Add(1)
		ops <- n
	}
	require.NoError(t, w.drain(total))
	assert.Equal(t, int64(total), w.ended.Load())
	assert.LessOrEqual(t, maxInFlight.Load(), int64(size))
	assert.Positive(t, maxInFlight.Load())
}
