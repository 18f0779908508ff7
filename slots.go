package pulsarconn

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
)

// slots bounds the requests in flight (WithMaxPendingRequests). Taking
// and giving back a slot is one atomic operation while slots are free and
// nobody waits; a caller that finds none queues, and waiters are handed
// freed slots oldest first, never passed by a newcomer, rather than all
// woken at every one. (A buffered channel did the
// same with a channel lock per take and per give, contended by every
// caller: 3% of the CPU of 64 requests in flight.)
type slots struct {
	limit   int64
	used    atomic.Int64
	waiting atomic.Int64 // len(queue), readable without mu

	mu    sync.Mutex
	queue []chan struct{} // waiters, oldest first; closed when handed a slot
}

func newSlots(limit int) *slots { return &slots{limit: int64(limit)} }

// tryTake takes a free slot, if any and if nobody waits for one.
func (s *slots) tryTake() bool { return s.waiting.Load() == 0 && s.grab() }

// grab takes a free slot, if any, whoever waits.
func (s *slots) grab() bool {
	for {
		n := s.used.Load()
		if n >= s.limit {
			return false
		}
		if s.used.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// take takes a slot, waiting for one until ctx ends.
func (s *slots) take(ctx context.Context) error {
	if s.tryTake() {
		return nil
	}
	ch := make(chan struct{})
	s.mu.Lock()
	s.queue = append(s.queue, ch)
	s.waiting.Add(1)
	// A slot given back before this waiter was counted was not handed
	// to it: the oldest waiter looks again, now that give will see it.
	if s.queue[0] == ch && s.grab() {
		s.removeLocked(ch)
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		queued := s.removeLocked(ch)
		s.mu.Unlock()
		if !queued {
			s.give() // handed one meanwhile: pass it on
		}
		return ctx.Err()
	}
}

// give gives a slot back, handing it to the oldest waiter if any.
func (s *slots) give() {
	s.used.Add(-1)
	if s.waiting.Load() == 0 {
		return
	}
	s.mu.Lock()
	for len(s.queue) > 0 && s.grab() {
		ch := s.queue[0]
		s.queue[0] = nil
		s.queue = s.queue[1:]
		s.waiting.Add(-1)
		close(ch)
	}
	s.mu.Unlock()
}

// removeLocked takes ch out of the queue; it reports whether ch was there.
func (s *slots) removeLocked(ch chan struct{}) bool {
	i := slices.Index(s.queue, ch)
	if i < 0 {
		return false
	}
	s.queue = slices.Delete(s.queue, i, i+1)
	s.waiting.Add(-1)
	return true
}
