package engine

import (
	"context"
	"fmt"
	"slices"
)

// A caller of Request blocks until its answer comes or its context ends.
// Waiting on both takes a select on the answer's channel and the
// context's done channel, and a select costs far more than receiving
// from one channel: callgrind counted about 900 instructions of a round
// trip's 7,200 in selectgo and its locking, with 64 goroutines sharing
// one context (each select enqueues on that one channel, under its lock).
//
// So a context that requests use again and again is watched instead
// (context.AfterFunc): its requests' waiters are listed on the watch, and
// each caller receives from its answer channel alone; when the context
// ends, the watch cancels every request still listed and hands each
// waiter the context's error. A waiter leaves the list when it is
// completed (waiter.Done), under the same lock, so a listed request is
// always still pending in the core.
//
// A context is watched from the second request in a row that uses it (a
// new context per request would pay for a watch each time and gain
// nothing), while it ends and for as long as one of the maxWatches
// watches is free for it; then the select remains.

// maxWatches is how many contexts an Engine watches at once.
const maxWatches = 4

// ctxWatch watches one context for its listed waiters.
type ctxWatch struct {
	done  <-chan struct{}
	stop  func() bool // context.AfterFunc's
	first *waiter     // the listed waiters, a doubly linked list
}

// watchLocked lists w, whose request id is pending in the core, on the
// watch of ctx, starting one if it should, and reports whether it did:
// then the caller needs only w.ch. A context that is never done needs no
// watch: the report is true.
func (b *Engine) watchLocked(ctx context.Context, w *waiter) bool {
	done := ctx.Done()
	if done == nil {
		return true
	}
	var cw *ctxWatch
	for _, c := range b.watches {
		if c.done == done {
			cw = c
			break
		}
	}
	if cw == nil {
		if done != b.lastDone {
			b.lastDone = done
			return false
		}
		if cw = b.newWatchLocked(ctx); cw == nil {
			return false
		}
	}
	w.watch, w.next, w.prev = cw, cw.first, nil
	if cw.first != nil {
		cw.first.prev = w
	}
	cw.first = w
	return true
}

// newWatchLocked starts watching ctx, in place of an idle watch if all
// are taken; it returns nil if every watch has waiters.
func (b *Engine) newWatchLocked(ctx context.Context) *ctxWatch {
	if len(b.watches) == maxWatches {
		i := slices.IndexFunc(b.watches, func(c *ctxWatch) bool { return c.first == nil })
		if i < 0 {
			return nil
		}
		b.watches[i].stop()
		b.watches = slices.Delete(b.watches, i, i+1)
	}
	cw := &ctxWatch{done: ctx.Done()}
	cw.stop = context.AfterFunc(ctx, func() { b.ended(ctx, cw) })
	b.watches = append(b.watches, cw)
	return cw
}

// unwatchLocked takes w off its watch's list, if it is on one.
func (w *waiter) unwatchLocked() {
	cw := w.watch
	if cw == nil {
		return
	}
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		cw.first = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	}
	w.watch, w.next, w.prev = nil, nil, nil
}

// ended runs once ctx is done: it cancels the requests listed on cw and
// hands their callers the context's error.
func (b *Engine) ended(ctx context.Context, cw *ctxWatch) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if i := slices.Index(b.watches, cw); i >= 0 {
		b.watches = slices.Delete(b.watches, i, i+1)
	}
	freed := false
	for cw.first != nil {
		w := cw.first
		w.unwatchLocked()
		if b.core.Cancel(w.id) {
			freed = true
			w.ch <- result{err: fmt.Errorf("pulsarconn: %v request %d: %w", w.typ, w.id, ctx.Err()), cancelled: true}
		}
	}
	if freed {
		b.usedAt = b.cfg.Clock.Now()
		b.wakeSlotsLocked()
	}
}

// unwatchAllLocked stops every watch, once the Engine has ended for good:
// its requests have all been completed, and a context that outlives the
// Engine must not keep it reachable.
func (b *Engine) unwatchAllLocked() {
	for _, cw := range b.watches {
		cw.stop()
	}
	b.watches = nil
	b.lastDone = nil
}
