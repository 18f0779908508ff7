package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
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
	return b.request(ctx, binding{}, cmd)
}

// RequestOn: see Broker.RequestOn in the root package.
func (b *Engine) RequestOn(ctx context.Context, conn uint64, cmd *pulsarpb.BaseCommand) (*pulsarpb.BaseCommand, error) {
	if conn == 0 {
		return nil, b.connGone(conn)
	}
	return b.request(ctx, binding{conn: conn}, cmd)
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

// binding is what a call is bound to: a connection (conn, 0: any), or a
// registration's producer or consumer (reg): the connection Create
// succeeded on, or, for Create itself, any (and Create's success binds the
// registration to the connection it answered on).
type binding struct {
	conn   uint64
	reg    *Registration
	create bool
}

// connLocked returns the connection the call is bound to (0: any), or why
// it cannot be made.
func (bd binding) connLocked() (uint64, error) {
	if bd.reg == nil {
		return bd.conn, nil
	}
	return bd.reg.bindLocked(bd.create)
}

// onConnLocked reports, for a call bound to conn (0: any), whether conn is
// still the established connection.
func (b *Engine) onConnLocked(conn uint64) error {
	if conn != 0 && (b.core.State() != core.StateConnected || b.core.Gen() != conn) {
		if err := b.core.Final(); err != nil {
			return err // no connection will come back
		}
		return b.connGone(conn)
	}
	return nil
}

func (b *Engine) request(ctx context.Context, bd binding, cmd *pulsarpb.BaseCommand) (*pulsarpb.BaseCommand, error) {
	r, err := b.requestWith(ctx, bd, outgoing{cmd: cmd}, false)
	return r.cmd, err
}

// Partitions sends a PARTITIONED_METADATA request for topic and returns
// the partition count of its answer. The request is written without a
// BaseCommand (core.Conn.RequestPartitions), and the answer's frame goes
// back to the reader for reuse (handleBatch, frame.Reader.Recycle) as
// soon as the count is taken: no allocation per round trip.
func (b *Engine) Partitions(ctx context.Context, topic string) (int, error) {
	r, err := b.requestWith(ctx, binding{}, outgoing{topic: topic}, true)
	if err != nil {
		return 0, err
	}
	if r.typ != pulsarpb.BaseCommand_PARTITIONED_METADATA_RESPONSE {
		return 0, fmt.Errorf("%w: PARTITIONED_METADATA answered with %v", core.ErrProtocol, r.typ)
	}
	return int(r.partitions), nil
}

// outgoing is a request to send: cmd, or, when cmd is nil, a
// PARTITIONED_METADATA request for topic.
type outgoing struct {
	cmd   *pulsarpb.BaseCommand
	topic string
}

func (o outgoing) typ() pulsarpb.BaseCommand_Type {
	if o.cmd == nil {
		return pulsarpb.BaseCommand_PARTITIONED_METADATA
	}
	return o.cmd.GetType()
}

// requestLocked hands o to the core.
func (o outgoing) requestLocked(b *Engine, now time.Time, w core.Waiter) (uint64, error) {
	if o.cmd == nil {
		return b.core.RequestPartitions(now, o.topic, w)
	}
	return b.core.Request(now, o.cmd, w)
}

// requestWith sends o and waits for its result. With partitionsOnly the
// result carries the answer's type and partition count, not the answer.
func (b *Engine) requestWith(ctx context.Context, bd binding, o outgoing, partitionsOnly bool) (result, error) {
	w := b.getWaiter()
	if bd.create {
		w.created = bd.reg
	}
	w.partitionsOnly = partitionsOnly
	var id uint64
	var start time.Time
	var slot slot
	var watched bool
	err := b.whenUsable(ctx, true, func(now time.Time) (<-chan struct{}, error) {
		start = now
		var ch <-chan struct{}
		var err error
		id, ch, err = slot.requestLocked(b, now, bd, o, w)
		if err == nil {
			w.id, w.typ = id, o.typ()
			watched = b.watchLocked(ctx, w)
		}
		return ch, err
	})
	if err != nil {
		slot.give(b)
		b.putWaiter(w) // never handed to the core
		return result{}, err
	}
	if watched { // ctx's end comes on w.ch too (see watch.go)
		r := <-w.ch
		b.putWaiter(w)
		if !r.cancelled {
			b.observeRequest(o.typ(), start, r.err)
		}
		return r, r.err
	}
	select {
	case r := <-w.ch:
		b.putWaiter(w)
		b.observeRequest(o.typ(), start, r.err)
		return r, r.err
	case <-ctx.Done():
		b.mu.Lock()
		pending := b.core.Cancel(id)
		if pending {
			b.usedAt = b.cfg.Clock.Now()
			b.wakeSlotsLocked()
		}
		b.mu.Unlock()
		if !pending {
			// The answer won the race: the core completed the waiter,
			// under the lock, before Cancel.
			r := <-w.ch
			b.putWaiter(w)
			return r, r.err
		}
		b.putWaiter(w) // cancelled: the core will never complete it
		return result{}, fmt.Errorf("pulsarconn: %v request %d: %w", o.typ(), id, ctx.Err())
	}
}

// RequestAsync: see Broker.RequestAsync in the root package. With lent
// (Broker.RequestAsyncLent) the answer's frame is released once done
// returns.
func (b *Engine) RequestAsync(ctx context.Context, cmd *pulsarpb.BaseCommand, done func(resp *pulsarpb.BaseCommand, err error), lent bool) error {
	if done == nil {
		return errors.New("pulsarconn: RequestAsync needs a done function")
	}
	var w *asyncWaiter
	slot := slot{noWait: true}
	err := b.whenUsable(ctx, true, func(now time.Time) (<-chan struct{}, error) {
		if w == nil {
			w = b.asyncWaiterLocked()
			w.b, w.done, w.typ, w.lent = b, done, cmd.GetType(), lent
		}
		w.start = now
		_, ch, err := slot.requestLocked(b, now, binding{}, outgoing{cmd: cmd}, w)
		if err != nil && errors.Is(err, core.ErrTooManyPending) {
			err = fmt.Errorf("%w (RequestAsync does not wait for one)", err)
			return nil, errNoWait{err}
		}
		return ch, err
	})
	if err != nil {
		slot.give(b) // w, if taken, is left to the garbage collector
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
	// lent: the answer is done's only until it returns; its frame (set
	// by handleBatch, under the lock, before the drainer can take w) is
	// then released.
	lent   bool
	answer *pulsarpb.BaseCommand // the answer, until handleBatch finds its frame
	frame  *frame.Frame
}

// maxFreeAsync bounds the RequestAsync waiters an Engine keeps for reuse.
const maxFreeAsync = 1024

// asyncWaiterLocked takes a free waiter, or makes one. The waiters are
// the Engine's own, taken under its lock and handed back by the drainer
// (HandlePush, settleAsyncLocked): a sync.Pool's Get and Put cost ~3% of
// a RequestAsync round trip's instructions.
func (b *Engine) asyncWaiterLocked() *asyncWaiter {
	if n := len(b.asyncFree); n > 0 {
		w := b.asyncFree[n-1]
		b.asyncFree[n-1] = nil
		b.asyncFree = b.asyncFree[:n-1]
		return w
	}
	return new(asyncWaiter)
}

// settleAsyncLocked makes the waiters the drainer is done with free
// again; the delivery queue calls it, under the lock, on the drainer's
// goroutine after every batch.
func (b *Engine) settleAsyncLocked() {
	for i, w := range b.asyncSpent {
		if len(b.asyncFree) < maxFreeAsync {
			b.asyncFree = append(b.asyncFree, w)
		}
		b.asyncSpent[i] = nil
	}
	b.asyncSpent = b.asyncSpent[:0]
}

// Done implements core.Waiter; it runs under the engine's lock.
func (w *asyncWaiter) Done(cmd *pulsarpb.BaseCommand, err error) {
	if w.lent && cmd != nil {
		w.answer = cmd
		w.b.lent = append(w.b.lent, w)
	}
	w.b.queue.PushLocked(deliver.Item{Handler: w, Push: core.Push{Command: cmd, Err: err}})
}

// HandlePush hands the result to done. It runs on the drainer, which
// keeps w (asyncSpent) until it next holds the lock.
func (w *asyncWaiter) HandlePush(p core.Push) {
	b, done, typ, start, f := w.b, w.done, w.typ, w.start, w.frame
	*w = asyncWaiter{}
	if len(b.asyncSpent) < maxFreeAsync {
		b.asyncSpent = append(b.asyncSpent, w)
	}
	b.observeRequest(typ, start, p.Err)
	done(p.Command, p.Err)
	f.Release() // nil unless lent
}

// slot is what a caller of Request or RequestAsync holds while it waits:
// a request slot reserved in the core (core.Conn.Reserve) while it waits
// for the connection or room to write, so that the limit of
// WithMaxPendingRequests counts the callers waiting as well as the
// requests in flight; or, when none was free, its turn in the queue for
// one.
type slot struct {
	held   bool      // a slot reserved in the core
	turn   *slotTurn // in the queue for a slot, or woken with one
	noWait bool      // RequestAsync: never queues for a slot
}

// slotTurn is a caller's place in the queue for a request slot.
type slotTurn struct {
	ch       chan struct{} // closed when woken
	typ      pulsarpb.BaseCommand_Type
	reserved bool // woken with a slot reserved for it
}

// requestLocked gives back the slot held, if any, and tries the request.
// If the caller is to wait for the connection or room to write, it
// reserves a slot for the wait; when none is free it reports
// core.ErrTooManyPending and, unless the caller does not wait, queues it
// for one, returning the channel closed at its turn.
func (s *slot) requestLocked(b *Engine, now time.Time, bd binding, o outgoing, w core.Waiter) (uint64, <-chan struct{}, error) {
	if s.turn != nil { // woken, with a slot reserved for it
		s.held, s.turn = s.turn.reserved, nil
	}
	if s.held {
		b.core.Unreserve()
		s.held = false
	}
	var id uint64
	conn, err := bd.connLocked()
	if err == nil {
		err = b.onConnLocked(conn)
	}
	var room <-chan struct{}
	if err == nil {
		room, err = b.writeRoomLocked()
	}
	if err == nil {
		id, err = o.requestLocked(b, now, w)
		if err == nil {
			return id, nil, nil // the common case, without the errors.Is calls below
		}
	}
	if !errors.Is(err, core.ErrTooManyPending) {
		if b.cfg.FailFast || errors.Is(err, errConnGone) || !errors.Is(err, core.ErrDisconnected) && !errors.Is(err, ErrQueueFull) {
			return id, room, err // no wait
		}
		rerr := b.core.Reserve(o.typ())
		if rerr == nil {
			s.held = true
			return id, room, err
		}
		err = rerr
	}
	if b.cfg.FailFast || s.noWait {
		return 0, nil, err
	}
	s.turn = &slotTurn{ch: make(chan struct{}), typ: o.typ()}
	b.slotQueue = append(b.slotQueue, s.turn)
	return 0, s.turn.ch, err
}

// give gives back what the caller holds when it gives up: its slot, its
// place in the queue, or the slot its turn brought.
func (s *slot) give(b *Engine) {
	if !s.held && s.turn == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if t := s.turn; t != nil {
		if i := slices.Index(b.slotQueue, t); i >= 0 {
			b.slotQueue = slices.Delete(b.slotQueue, i, i+1)
		} else {
			s.held = t.reserved
		}
		s.turn = nil
	}
	if s.held {
		b.core.Unreserve()
		s.held = false
		b.usedAt = b.cfg.Clock.Now()
		b.wakeSlotsLocked()
	}
}

// wakeSlotsLocked hands each free request slot to the oldest caller
// queued for one: it reserves the slot for that caller, so that no
// newcomer takes it first, and wakes it. It runs after every step and
// wherever a slot is freed outside one, so a slot is never free while a
// caller waits for one.
func (b *Engine) wakeSlotsLocked() {
	n := 0
	for _, t := range b.slotQueue {
		if b.core.Reserve(t.typ) != nil {
			break
		}
		t.reserved = true
		close(t.ch)
		n++
	}
	if n > 0 {
		clear(b.slotQueue[:n])
		b.slotQueue = b.slotQueue[n:]
	}
}

// observeRequest reports a request's end to the Observer.
func (b *Engine) observeRequest(typ pulsarpb.BaseCommand_Type, start time.Time, err error) {
	if b.cfg.Observe != nil {
		b.cfg.Observe(Event{Kind: RequestCompleted, Type: typ, Latency: b.cfg.Clock.Now().Sub(start), Err: err})
	}
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
	return b.send(ctx, binding{}, cmd)
}

func (b *Engine) send(ctx context.Context, bd binding, cmd *pulsarpb.BaseCommand) error {
	return b.whenUsable(ctx, false, func(now time.Time) (<-chan struct{}, error) {
		conn, err := bd.connLocked()
		if err == nil {
			err = b.onConnLocked(conn)
		}
		if err != nil {
			return nil, err
		}
		if room, err := b.writeRoomLocked(); err != nil {
			return room, err
		}
		return nil, b.core.Send(now, cmd)
	})
}

// PublishMessage: see Broker.PublishMessage in the root package.
func (b *Engine) PublishMessage(ctx context.Context, encoded []byte) error {
	return b.publish(ctx, binding{}, encoded)
}

// PublishMessageOn: see Broker.PublishMessageOn in the root package.
func (b *Engine) PublishMessageOn(ctx context.Context, conn uint64, encoded []byte) error {
	if conn == 0 {
		return b.connGone(conn)
	}
	return b.publish(ctx, binding{conn: conn}, encoded)
}

func (b *Engine) publish(ctx context.Context, bd binding, encoded []byte) error {
	if n, ok := frame.TotalSize(encoded); !ok || int(n) != len(encoded)-4 {
		return fmt.Errorf("%w: PublishMessage needs one whole encoded frame (%d bytes, total size field %d)", core.ErrProtocol, len(encoded), n)
	}
	payload := frame.PayloadSize(encoded)
	// The common case needs neither the engine's lock nor the core: an
	// established connection with room in its queue. Taking the lock
	// for every publish made the publisher and the reader, which takes
	// it for every batch of receipts, contend for it (BenchmarkReceipts
	// and BenchmarkPublishMessage gained 5-25% in A/B runs without it).
	// A registration's binding is checked again under the writer's lock:
	// what ends or unbinds it (Close, its context, a CLOSE_PRODUCER) clears
	// it before the step's output is queued, so no SEND follows its
	// CLOSE_PRODUCER.
	var bound *atomic.Uint64
	conn := bd.conn
	if bd.reg != nil {
		bound = &bd.reg.created
		conn = bound.Load()
	}
	if c := b.conn.Load(); c != nil && (conn == 0 && bound == nil || conn == c.gen) && ctx.Err() == nil {
		if _, err := c.tryPublish(encoded, payload, bound); err == nil {
			b.published.Add(1)
			return nil
		}
		// Full, closed or not publishable: the core answers, or the
		// caller waits, below.
	}
	return b.whenUsable(ctx, false, func(now time.Time) (<-chan struct{}, error) {
		conn, err := bd.connLocked()
		if err == nil {
			err = b.onConnLocked(conn)
		}
		if err != nil {
			return nil, err
		}
		if err := b.core.CheckPublish(len(encoded)); err != nil {
			return nil, err
		}
		if err := b.core.CheckPayload(payload); err != nil {
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
// under the lock. request says that try sends a request (Engine.stepAs).
func (b *Engine) whenUsable(ctx context.Context, request bool, try func(now time.Time) (<-chan struct{}, error)) error {
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("pulsarconn: %w", err)
		}
		var ch <-chan struct{}
		var err error
		tryLocked := func(now time.Time) {
			ch, err = try(now)
			if ch == nil {
				ch = b.stateCh
			}
		}
		if b.stepAs(request, tryLocked) {
			b.queue.Drain()
		}
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
			return fmt.Errorf("%w (gave up waiting for %s: %w)", err, what, ctx.Err())
		}
	}
}

type result struct {
	cmd *pulsarpb.BaseCommand
	err error
	// For a waiter that takes only the partition count: the answer's
	// type and count (cmd is then nil).
	typ        pulsarpb.BaseCommand_Type
	partitions uint32
	// cancelled: the request's context ended first (err says so).
	cancelled bool
}

// waiter is a core.Waiter that hands the result to one waiting caller;
// for Registration.Create, a success also binds created to the connection
// it answered on. With partitionsOnly it hands over only the answer's
// type and partition count, and gives the answer back for its frame to
// be released (Engine.spent).
type waiter struct {
	ch             chan result
	created        *Registration
	partitionsOnly bool
	b              *Engine
	// The pending request's id and type, and its place on the list of
	// the watch of its context, if it is on one (watch.go).
	id         uint64
	typ        pulsarpb.BaseCommand_Type
	watch      *ctxWatch
	prev, next *waiter
}

func (b *Engine) newWaiter() *waiter { return &waiter{ch: make(chan result, 1), b: b} }

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
	return b.newWaiter()
}

func (b *Engine) putWaiter(w *waiter) {
	w.created = nil
	w.partitionsOnly = false
	b.waiters.Put(w)
}

// Done implements core.Waiter; the core completes each request once, so
// the buffered send never blocks.
func (w *waiter) Done(cmd *pulsarpb.BaseCommand, err error) {
	w.unwatchLocked()
	if w.created != nil && err == nil {
		w.created.createdLocked()
	}
	if w.partitionsOnly && cmd != nil {
		// The answer is read here, under the lock, and its frame then
		// released (handleBatch): the caller gets the count alone.
		w.ch <- result{err: err, typ: cmd.GetType(), partitions: cmd.GetPartitionMetadataResponse().GetPartitions()}
		w.b.spent = append(w.b.spent, cmd)
		return
	}
	w.ch <- result{cmd: cmd, err: err}
}
