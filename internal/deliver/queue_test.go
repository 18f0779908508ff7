package deliver

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn/core"
	"github.com/pulsarconn/pulsarconn/proto/frame"
)

type handlerFunc func(core.Push)

func (f handlerFunc) HandlePush(p core.Push) { f(p) }

// TestDrainRunsInOrderOutsideTheLock: items run in the order queued, never
// with the lock held, and what an item queues runs behind it on the same
// drain.
func TestDrainRunsInOrderOutsideTheLock(t *testing.T) {
	var mu sync.Mutex
	q := New(&mu, 0, nil)
	var got []uint64
	var h core.Handler
	h = handlerFunc(func(p core.Push) {
		require.True(t, mu.TryLock(), "user code runs outside the lock")
		got = append(got, p.ID)
		if p.ID == 1 {
			q.PushLocked(Item{Handler: h, Push: core.Push{ID: 4}})
			assert.False(t, q.ClaimLocked(), "one drainer at a time")
		}
		mu.Unlock()
	})
	mu.Lock()
	q.PushLocked(Item{Handler: h, Push: core.Push{ID: 1}})
	q.PushLocked(Item{Run: func() { got = append(got, 2) }})
	q.PushLocked(Item{Handler: h, Push: core.Push{ID: 3}})
	require.True(t, q.ClaimLocked())
	mu.Unlock()
	q.Drain()
	assert.Equal(t, []uint64{1, 2, 3, 4}, got)
	mu.Lock()
	assert.False(t, q.ClaimLocked(), "nothing left")
	q.WaitIdleLocked()
	mu.Unlock()
}

// TestSettleRunsUnderTheLockAfterEachBatch: settle runs after every batch
// the drainer ran, with the lock held, before the drain ends; an item
// queued by a running item is a batch of its own.
func TestSettleRunsUnderTheLockAfterEachBatch(t *testing.T) {
	var mu sync.Mutex
	var ran []string
	q := New(&mu, 0, func() {
		assert.False(t, mu.TryLock(), "settle runs with the lock held")
		ran = append(ran, "settle")
	})
	mu.Lock()
	q.PushLocked(Item{Run: func() {
		ran = append(ran, "a")
		mu.Lock()
		q.PushLocked(Item{Run: func() { ran = append(ran, "c") }})
		mu.Unlock()
	}})
	q.PushLocked(Item{Run: func() { ran = append(ran, "b") }})
	require.True(t, q.ClaimLocked())
	mu.Unlock()
	q.Drain()
	assert.Equal(t, []string{"a", "b", "settle", "c", "settle"}, ran)
}

// TestReaderHeldBackWhileOverTheLimit: while a slow Handler holds the
// drain, the bytes queued behind it count against the limit; the reader
// may go on once the drainer takes them.
func TestReaderHeldBackWhileOverTheLimit(t *testing.T) {
	var mu sync.Mutex
	q := New(&mu, 2*overhead, nil)
	entered, release := make(chan struct{}), make(chan struct{})
	slow := handlerFunc(func(core.Push) {
		entered <- struct{}{}
		<-release
	})
	big := core.Push{Payload: &frame.Payload{Data: make([]byte, 4*overhead)}}
	mu.Lock()
	q.PushLocked(Item{Handler: slow})
	require.True(t, q.ClaimLocked())
	mu.Unlock()
	done := make(chan struct{})
	go func() {
		q.Drain()
		close(done)
	}()
	<-entered
	mu.Lock()
	assert.False(t, q.OverLimitLocked(), "one small item in the batch")
	q.PushLocked(Item{Handler: handlerFunc(func(core.Push) {}), Push: big})
	assert.True(t, q.OverLimitLocked(), "a large push queued behind the slow Handler")
	close(release)
	for q.OverLimitLocked() {
		q.WaitLocked()
	}
	mu.Unlock()
	<-done
	mu.Lock()
	assert.False(t, q.OverLimitLocked())
	mu.Unlock()
}
