package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/pulsarconn/pulsarconn/core"
	"github.com/pulsarconn/pulsarconn/internal/deliver"
	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

// Request: see Broker.Request in the root package.
func (b *Engine) Request(ctx context.Context, cmd *pulsarpb.BaseCommand) (*pulsarpb.BaseCommand, error) {
	return b.request(ctx, 0, cmd)
}

// RequestOn: see Broker.RequestOn in the root package.
func (b *Engine) RequestOn(ctx context.Context, conn uint64, cmd *pulsarpb.BaseCommand) (*pulsarpb.BaseCommand, error) {
	if conn == 0 {
		return nil, b.connGone(conn)
	}
	return b.request(ctx, conn, cmd)
}

// Connection: see Broker.Connection in the root package.
func (b *Engine) Connection() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.core.State() != core.StateConnected {
		return 0
	}
	return b.core.Gen()
}

// errConnGone marks a call bound to a connection that is gone: whenUsable
// does not wait for the next one.
var errConnGone = errors.New("connection replaced")

func (b *Engine) connGone(conn uint64) error {
	return fmt.Errorf("%w: %w (connection %d)", core.ErrDisconnected, errConnGone, conn)
}

// onConnLocked reports, for a call bound to conn (0: any), whether conn is
// still the established connection.
func (b *Engine) onConnLocked(conn uint64) error {
	if conn != 0 && (b.core.State() != core.StateConnected || b.core.Gen() != conn) {
		return b.connGone(conn)
	}
	return nil
}

func (b *Engine) request(ctx context.Context, conn uint64, cmd *pulsarpb.BaseCommand) (*pulsarpb.BaseCommand, error) {
	w := b.getWaiter()
	var id uint64
	var start time.Time
	var slot slot
	err := b.whenUsable(ctx, func(now time.Time) (<-chan struct{}, error) {
		start = now
		var ch <-chan struct{}
		var err error
		id, ch, err = slot.requestLocked(b, now, conn, cmd, w)
		return ch, err
	})
	if err != nil {
		slot.give(b)
		b.putWaiter(w) // never handed to the core
		return nil, err
	}
	select {
	case r := <-w.ch:
		b.putWaiter(w)
		b.observeRequest(cmd.GetType(), start, r.err)
		return r.cmd, r.err
	case <-ctx.Done():
		b.mu.Lock()
		pending := b.core.Cancel(id)
		if pending {
			b.signalFreedLocked(1)
		}
		b.mu.Unlock()
		if !pending {
			// The answer won the race: the core completed the waiter,
			// under the lock, before Cancel.
			r := <-w.ch
			b.putWaiter(w)
			return r.cmd, r.err
		}
		b.putWaiter(w) // cancelled: the core will never complete it
		return nil, fmt.Errorf("pulsarconn: %v request %d: %w", cmd.GetType(), id, ctx.Err())
	}
}

// RequestAsync: see Broker.RequestAsync in the root package.
func (b *Engine) RequestAsync(ctx context.Context, cmd *pulsarpb.BaseCommand, done func(resp *pulsarpb.BaseCommand, err error)) error {
	if done == nil {
		return errors.New("pulsarconn: RequestAsync needs a done function")
	}
	w := asyncWaiters.Get().(*asyncWaiter)
	w.b, w.done, w.typ = b, done, cmd.GetType()
	var slot slot
	err := b.whenUsable(ctx, func(now time.Time) (<-chan struct{}, error) {
		w.start = now
		_, ch, err := slot.requestLocked(b, now, 0, cmd, w)
		if errors.Is(err, core.ErrTooManyPending) {
			err = fmt.Errorf("%w (RequestAsync does not wait for one)", err)
			return nil, errNoWait{err}
		}
		return ch, err
	})
	if err != nil {
		slot.give(b)
		w.release()
		return err
	}
	return nil
}

// asyncWaiter completes a RequestAsync: the core completes it under the
// lock (Done), which queues it behind the pushes to deliver; the drainer
// then calls it as a Handler (HandlePush), outside the lock.
type asyncWaiter struct {
	b     *Engine
	done  func(*pulsarpb.BaseCommand, error)
	typ   pulsarpb.BaseCommand_Type
	start time.Time
}

var asyncWaiters = sync.Pool{New: func() any { return new(asyncWaiter) }}

// Done implements core.Waiter; it runs under the engine's lock.
func (w *asyncWaiter) Done(cmd *pulsarpb.BaseCommand, err error) {
	w.b.queue.PushLocked(deliver.Item{Handler: w, Push: core.Push{Command: cmd, Err: err}})
}

// HandlePush hands the result to done.
func (w *asyncWaiter) HandlePush(p core.Push) {
	b, done, typ, start := w.b, w.done, w.typ, w.start
	w.release()
	b.observeRequest(typ, start, p.Err)
	done(p.Command, p.Err)
}

func (w *asyncWaiter) release() {
	*w = asyncWaiter{}
	asyncWaiters.Put(w)
}

// slot is a request slot a caller holds while it waits (core.Conn.Reserve)
// — for the connection, or room in the write queue — so that the limit of
// WithMaxPendingRequests counts the callers waiting as well as the
// requests in flight.
type slot struct{ held bool }

// requestLocked gives back the slot held, if any, and tries the request;
// if the caller is to wait for the connection or room to write, it takes
// a slot for the wait, or reports core.ErrTooManyPending, with a channel
// closed when one may be free, when there is none.
func (s *slot) requestLocked(b *Engine, now time.Time, conn uint64, cmd *pulsarpb.BaseCommand, w core.Waiter) (uint64, <-chan struct{}, error) {
	if s.held {
		b.core.Unreserve()
		s.held = false
	}
	var id uint64
	err := b.onConnLocked(conn)
	var room <-chan struct{}
	if err == nil {
		room, err = b.writeRoomLocked()
	}
	if err == nil {
		id, err = b.core.Request(now, cmd, w)
	}
	if errors.Is(err, core.ErrTooManyPending) {
		return 0, nil, err // whenUsable queues the caller for a slot
	}
	if b.cfg.FailFast || errors.Is(err, errConnGone) || !errors.Is(err, core.ErrDisconnected) && !errors.Is(err, ErrQueueFull) {
		return id, room, err // no wait
	}
	if rerr := b.core.Reserve(cmd.GetType()); rerr != nil {
		return 0, nil, rerr
	}
	s.held = true
	return id, room, err
}

// give gives back the slot held, if any, when the caller gives up.
func (s *slot) give(b *Engine) {
	if s.held {
		b.mu.Lock()
		b.core.Unreserve()
		b.signalFreedLocked(1)
		b.mu.Unlock()
		s.held = false
	}
}

// observeRequest reports a request's end to the Observer.
func (b *Engine) observeRequest(typ pulsarpb.BaseCommand_Type, start time.Time, err error) {
	if b.cfg.Observe != nil {
		b.cfg.Observe(Event{Kind: RequestCompleted, Type: typ, Latency: b.cfg.Clock.Now().Sub(start), Err: err})
	}
}

// joinSlotQueueLocked puts a caller at the back of the queue of callers
// waiting for a request slot, and returns the channel closed when it is
// its turn to try again.
func (b *Engine) joinSlotQueueLocked() <-chan struct{} {
	ch := make(chan struct{})
	b.slotQueue = append(b.slotQueue, ch)
	return ch
}

// signalFreedLocked wakes the n oldest callers waiting for a request slot,
// n the number of slots freed: one woken caller per slot, not all of them.
func (b *Engine) signalFreedLocked(n int) {
	n = min(n, len(b.slotQueue))
	for _, ch := range b.slotQueue[:n] {
		close(ch)
	}
	b.slotQueue = append(b.slotQueue[:0], b.slotQueue[n:]...)
}

// leaveSlotQueue takes a caller that gives up out of the queue; one that
// had been woken passes its turn to the next.
func (b *Engine) leaveSlotQueue(ch <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, c := range b.slotQueue {
		if c == ch {
			b.slotQueue = slices.Delete(b.slotQueue, i, i+1)
			return
		}
	}
	b.signalFreedLocked(1)
}

// errNoWait wraps an error whenUsable must return at once.
type errNoWait struct{ error }

func (e errNoWait) Unwrap() error { return e.error }

// writeRoomLocked reports ErrQueueFull, with a channel to wait on, when the
// connection's write queue is at or over its limit.
func (b *Engine) writeRoomLocked() (<-chan struct{}, error) {
	c := b.conn.Load()
	if c == nil {
		return nil, nil // not connected: the core says so
	}
	room := c.full()
	if room == nil {
		return nil, nil
	}
	return room, fmt.Errorf("%w: %d bytes queued, limit %d", ErrQueueFull, c.queued.Load(), b.cfg.WriteLimit)
}

// Send: see Broker.Send in the root package.
func (b *Engine) Send(ctx context.Context, cmd *pulsarpb.BaseCommand) error {
	return b.whenUsable(ctx, func(now time.Time) (<-chan struct{}, error) {
		if room, err := b.writeRoomLocked(); err != nil {
			return room, err
		}
		return nil, b.core.Send(now, cmd)
	})
}

// PublishMessage: see Broker.PublishMessage in the root package.
func (b *Engine) PublishMessage(ctx context.Context, encoded []byte) error {
	return b.publish(ctx, 0, encoded)
}

// PublishMessageOn: see Broker.PublishMessageOn in the root package.
func (b *Engine) PublishMessageOn(ctx context.Context, conn uint64, encoded []byte) error {
	if conn == 0 {
		return b.connGone(conn)
	}
	return b.publish(ctx, conn, encoded)
}

func (b *Engine) publish(ctx context.Context, conn uint64, encoded []byte) error {
	if n, ok := frame.TotalSize(encoded); !ok || int(n) != len(encoded)-4 {
		return fmt.Errorf("%w: PublishMessage needs one whole encoded frame (%d bytes, total size field %d)", core.ErrProtocol, len(encoded), n)
	}
	// The common case needs neither the engine's lock nor the core: an
	// established connection with room in its queue. Taking the lock
	// for every publish made the publisher and the reader, which takes
	// it for every batch of receipts, contend for it (BenchmarkReceipts
	// and BenchmarkPublishMessage gained 5-25% in A/B runs without it).
	if c := b.conn.Load(); c != nil && (conn == 0 || conn == c.gen) && ctx.Err() == nil {
		if _, err := c.tryPublish(encoded); err == nil {
			b.published.Add(1)
			return nil
		}
		// Full, closed or not publishable: the core answers, or the
		// caller waits, below.
	}
	return b.whenUsable(ctx, func(now time.Time) (<-chan struct{}, error) {
		if err := b.onConnLocked(conn); err != nil {
			return nil, err
		}
		if err := b.core.CheckPublish(len(encoded)); err != nil {
			return nil, err
		}
		c := b.conn.Load()
		room, err := c.tryEnqueue(encoded)
		if err == ErrQueueFull {
			return room, fmt.Errorf("%w: %d bytes queued, limit %d, frame of %d", ErrQueueFull, c.queued.Load(), b.cfg.WriteLimit, len(encoded))
		}
		if err == nil {
			b.published.Add(1)
		}
		return nil, err
	})
}

// whenUsable runs try under the lock. While it fails with core.ErrDisconnected
// it waits for a change of state, and while it fails with ErrQueueFull for
// the channel try returned (room in the write queue), and tries again,
// until ctx ends (or fails at once under WithFailFast). The wait is never
// under the lock.
func (b *Engine) whenUsable(ctx context.Context, try func(now time.Time) (<-chan struct{}, error)) error {
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("pulsarconn: %w", err)
		}
		var ch <-chan struct{}
		var err error
		b.do(func(now time.Time) {
			ch, err = try(now)
			switch {
			case ch != nil || err == nil || b.cfg.FailFast:
			case errors.Is(err, core.ErrTooManyPending) && !errors.As(err, new(errNoWait)):
				ch = b.joinSlotQueueLocked()
			default:
				ch = b.stateCh
			}
		})
		if err == nil || b.cfg.FailFast {
			return err
		}
		var what string
		var final errNoWait
		switch {
		case errors.As(err, &final):
			return final.error
		case errors.Is(err, errConnGone):
			return err // bound to a connection that will not come back
		case errors.Is(err, core.ErrDisconnected):
			what = "the connection"
		case errors.Is(err, ErrQueueFull):
			what = "room in the write queue"
		case errors.Is(err, core.ErrTooManyPending):
			what = "a request slot"
		default:
			return err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			if what == "a request slot" {
				b.leaveSlotQueue(ch)
			}
			return fmt.Errorf("%w (gave up waiting for %s: %w)", err, what, ctx.Err())
		}
	}
}

type result struct {
	cmd *pulsarpb.BaseCommand
	err error
}

// waiter is a core.Waiter that hands the result to one waiting caller.
type waiter struct{ ch chan result }

func newWaiter() *waiter { return &waiter{ch: make(chan result, 1)} }

// getWaiter takes one of the Broker's recycled waiters (Broker.waiters):
// a waiter goes back only once its one completion has been received or can
// no longer come, so a recycled channel is always empty. Saves two
// allocations per request. The pool is the Broker's, not the package's,
// so that a channel made inside a testing/synctest bubble never reaches a
// goroutine outside it (or in another bubble): the Go runtime aborts the
// program when that happens.
func (b *Engine) getWaiter() *waiter {
	if w, ok := b.waiters.Get().(*waiter); ok {
		return w
	}
	return newWaiter()
}

func (b *Engine) putWaiter(w *waiter) { b.waiters.Put(w) }

// Done implements core.Waiter; the core completes each request once, so
// the buffered send never blocks.
func (w *waiter) Done(cmd *pulsarpb.BaseCommand, err error) { w.ch <- result{cmd, err} }
