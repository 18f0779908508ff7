// Package deliver is the driver's one ordered delivery queue: every piece
// of user code a step calls for — a Handler's push, a RequestAsync done
// function, an Observer event, a log record — is queued under the engine's
// lock and run outside it, in order, by one goroutine at a time.
package deliver

import (
	"sync"

	"github.com/pulsarconn/pulsarconn/core"
)

// Item is one piece of user code to run: Handler.HandlePush(Push), or Run.
type Item struct {
	Handler core.Handler
	Push    core.Push
	Run     func() // an Observer event or a log record, when Handler is nil
}

// Queue is the ordered delivery queue. Its methods named Locked must be
// called with the lock given to New held; the others take it.
type Queue struct {
	mu       *sync.Mutex
	items    []Item
	spare    []Item // the drainer's other batch buffer, kept between drains
	draining bool
	drained  *sync.Cond // signalled as the queue empties and at each batch
	// queueBytes and batchBytes estimate the memory held by the queue and
	// by the batch being drained; WaitRoomLocked holds a reader back while
	// their sum exceeds limit.
	queueBytes, batchBytes, limit int
	// settle, if set, runs with the lock held after each batch the
	// drainer ran: the drainer's moment to hand back, under the lock,
	// what the batch's items set aside outside it.
	settle func()
}

// New returns a queue guarded by mu that holds back readers (WaitRoomLocked)
// beyond limit bytes (<= 0: never). settle, if not nil, is called with mu
// held after each batch of items has run, on the goroutine that ran them.
func New(mu *sync.Mutex, limit int, settle func()) *Queue {
	return &Queue{mu: mu, drained: sync.NewCond(mu), limit: limit, settle: settle}
}

// PushLocked queues it.
func (q *Queue) PushLocked(it Item) {
	q.items = append(q.items, it)
	q.queueBytes += cost(&it)
}

// ClaimLocked reports whether the caller must drain: something is queued
// and nobody drains.
func (q *Queue) ClaimLocked() bool {
	if len(q.items) > 0 && !q.draining {
		q.draining = true
		return true
	}
	return false
}

// overhead estimates what a queued item holds besides its payload: the
// item itself and the decoded command it carries.
const overhead = 512

// cost estimates the memory an item holds: the payload of a MESSAGE
// (which aliases the whole frame read for it) plus a fixed cost.
func cost(it *Item) int {
	n := overhead
	if p := it.Push.Payload; p != nil {
		n += len(p.BrokerEntryMetadata) + len(p.Metadata) + len(p.Data)
	}
	return n
}

// maxKeptBatch is the largest batch buffer kept between drains, in items
// (a few hundred KB): enough for the read batches of a busy connection,
// not for a rare burst.
const maxKeptBatch = 1024

// Drain runs the queued items, in order, outside the lock, until the queue
// is empty; call it after ClaimLocked reported true. A Handler it runs may
// call the engine: what that queues runs behind it, on this goroutine.
func (q *Queue) Drain() {
	q.mu.Lock()
	// The queue and this batch swap buffers at every round, and both are
	// kept for the next drain: making a new one each time grew it again
	// from nothing, which was 7% of the receipts benchmark's CPU.
	batch := q.spare
	q.spare = nil
	for {
		q.batchBytes = 0
		if len(q.items) == 0 {
			q.draining = false
			q.queueBytes = 0
			if cap(batch) <= maxKeptBatch {
				q.spare = batch[:0]
			}
			q.drained.Broadcast()
			q.mu.Unlock()
			return
		}
		batch, q.items = q.items, batch[:0]
		q.batchBytes, q.queueBytes = q.queueBytes, 0
		// A reader held back by the limit may go on.
		q.drained.Broadcast()
		q.mu.Unlock()
		for i := range batch {
			it := &batch[i]
			if it.Handler != nil {
				it.Handler.HandlePush(it.Push)
			} else {
				it.Run()
			}
			*it = Item{}
		}
		q.mu.Lock()
		if q.settle != nil {
			q.settle()
		}
	}
}

// DrainDetached drains on a goroutine of its own, counted in wg: for a
// caller that must not run user code (Stop, a reader about to read).
func (q *Queue) DrainDetached(wg *sync.WaitGroup) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		q.Drain()
	}()
}

// OverLimitLocked reports whether a reader should be held back: the
// pushes read and not yet run exceed the limit and another goroutine
// drains them (a reader that drains itself reads nothing meanwhile
// anyway). Not reading makes the socket's buffers fill and TCP flow
// control stop the broker, so a slow Handler costs at most the limit plus
// one frame, not memory without bound.
func (q *Queue) OverLimitLocked() bool {
	return q.limit > 0 && q.draining && q.queueBytes+q.batchBytes > q.limit
}

// WaitLocked waits until the drainer takes its next batch or finishes, or
// WakeLocked.
func (q *Queue) WaitLocked() { q.drained.Wait() }

// WakeLocked wakes the readers held back, to look again at whether they
// still should wait.
func (q *Queue) WakeLocked() { q.drained.Broadcast() }

// WaitIdleLocked waits until the queue is empty and nobody drains.
func (q *Queue) WaitIdleLocked() {
	for q.draining || len(q.items) > 0 {
		q.drained.Wait()
	}
}
