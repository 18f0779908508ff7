package pulsarconn

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSlotsHandedInTurn: with every slot taken, callers wait, and each
// slot given back goes to the oldest waiter.
func TestSlotsHandedInTurn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSlots(2)
		ctx := context.Background()
		require.NoError(t, s.take(ctx))
		require.NoError(t, s.take(ctx))
		assert.False(t, s.tryTake(), "both slots taken")

		var order []int
		var mu sync.Mutex
		done := make(chan struct{}, 3)
		for i := range 3 {
			go func() {
				require.NoError(t, s.take(ctx))
				mu.Lock()
				order = append(order, i)
				mu.Unlock()
				done <- struct{}{}
			}()
			synctest.Wait() // waiter i is queued before waiter i+1
		}
		assert.EqualValues(t, 3, s.waiting.Load())
		for range 3 {
			s.give()
			<-done
		}
		assert.Equal(t, []int{0, 1, 2}, order, "oldest first")
		assert.EqualValues(t, 2, s.used.Load(), "each slot handed on, none lost or made")
		assert.EqualValues(t, 0, s.waiting.Load())
	})
}

// TestSlotsWaitEndsWithContext: a waiter whose context ends leaves the
// queue without a slot, and the next give goes to the one behind it.
func TestSlotsWaitEndsWithContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSlots(1)
		require.NoError(t, s.take(context.Background()))
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- s.take(ctx) }()
		synctest.Wait()
		got := make(chan error, 1)
		go func() { got <- s.take(context.Background()) }()
		synctest.Wait()
		cancel()
		assert.ErrorIs(t, <-errc, context.Canceled)
		assert.EqualValues(t, 1, s.waiting.Load())
		s.give()
		require.NoError(t, <-got)
		assert.EqualValues(t, 1, s.used.Load())
		s.give()
		assert.EqualValues(t, 0, s.used.Load())
	})
}

// TestSlotsNeverOverTheLimit: many callers take and give slots, some
// giving up waiting; at no time do more than the limit hold one, and at
// the end every slot is free and nobody waits.
func TestSlotsNeverOverTheLimit(t *testing.T) {
	const limit, callers, rounds = 4, 32, 300
	s := newSlots(limit)
	var holders, most atomic.Int64
	var wg sync.WaitGroup
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(c), 1))
			for range rounds {
				ctx, cancel := context.WithCancel(context.Background())
				if r.IntN(4) == 0 {
					cancel() // gives up at once if it has to wait
				}
				if s.take(ctx) == nil {
					n := holders.Add(1)
					for {
						m := most.Load()
						if n <= m || most.CompareAndSwap(m, n) {
							break
						}
					}
					holders.Add(-1)
					s.give()
				}
				cancel()
			}
		}()
	}
	wg.Wait()
	assert.LessOrEqual(t, most.Load(), int64(limit))
	assert.EqualValues(t, 0, s.used.Load(), "every slot given back")
	assert.EqualValues(t, 0, s.waiting.Load())
	assert.Empty(t, s.queue)
}

// TestSlotsNoBargingPastWaiters: a slot freed while someone waits goes to
// the waiter, even to a newcomer arriving between the slot's release and
// its hand-over.
func TestSlotsNoBargingPastWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSlots(1)
		require.NoError(t, s.take(context.Background()))
		got := make(chan error, 1)
		go func() { got <- s.take(context.Background()) }()
		synctest.Wait()
		// give's first half: the slot is free, not yet handed over.
		s.used.Add(-1)
		assert.False(t, s.tryTake(), "a newcomer does not pass the waiter")
		// give's second half.
		s.used.Add(1)
		s.give()
		require.NoError(t, <-got)
		assert.EqualValues(t, 1, s.used.Load())
		assert.EqualValues(t, 0, s.waiting.Load())
	})
}
