package engine

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pulsarconn/pulsarconn/core"
	"github.com/pulsarconn/pulsarconn/internal/deliver"
	"github.com/pulsarconn/pulsarconn/ports"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// Config configures an Engine.
type Config struct {
	Core      core.Config
	URL       string // the URL dialled, for messages
	Transport ports.Transport
	Clock     ports.Clock
	Auth      ports.Authenticator
	Log       *slog.Logger
	FailFast  bool
	// WriteLimit bounds each connection's write queue in bytes, and
	// DeliveryLimit the delivery queue (<= 0: unbounded).
	WriteLimit, DeliveryLimit int
	// Observe, when set, receives the events, from the delivery queue or
	// the caller's goroutine, never under the lock.
	Observe func(Event)
	// Ended, when set, runs once, from the delivery queue, if the core
	// ends the connection for good without a Stop (the broker refused the
	// credentials).
	Ended func()
}

// EventKind says what an Event reports.
type EventKind uint8

// The events an Engine reports.
const (
	ConnectionOpened EventKind = iota + 1
	ConnectionClosed
	HandshakeFailed
	RequestCompleted
)

// Event is one event for the Observer; the façade turns it into the
// public event type of its Kind.
type Event struct {
	Kind      EventKind
	Reconnect bool
	Type      pulsarpb.BaseCommand_Type
	Latency   time.Duration
	Err       error
}

// Engine is the step engine of a Broker: the core under one lock, its
// timer, the goroutines that dial, read, write and authenticate, the
// delivery queue that runs user code outside the lock, and the publish
// gate. See docs/architecture.md.
type Engine struct {
	cfg Config

	ctx    context.Context // ends at Stop: cancels dials and authentication
	cancel context.CancelFunc
	wg     sync.WaitGroup // reader, writer, dial, auth and detached drain goroutines

	mu   sync.Mutex
	core *core.Conn
	// conn is the established connection, nil unless one is up; written
	// under mu, read without it by PublishMessage's path (the gate).
	conn    atomic.Pointer[connection]
	dialing map[uint64]context.CancelFunc
	authing map[uint64]context.CancelFunc // the Authenticator call of a connection, at most one (core)
	timer   ports.Timer
	timerAt time.Time
	stateCh chan struct{} // closed and replaced at every state change
	waiters sync.Pool     // of *waiter, for Request (see getWaiter)
	// The contexts watched for requests' callers, and the done channel
	// of the last request's context not watched (watch.go).
	watches  []*ctxWatch
	lastDone <-chan struct{}
	// spent: the answers of the batch being handled that their waiters
	// took what they need from (waiter.partitionsOnly), in the order they
	// were read; handleBatch releases their frames.
	spent []*pulsarpb.BaseCommand
	// lent: the RequestAsyncLent waiters completed with an answer of the
	// batch being handled, in the order it was read; handleBatch gives
	// each the answer's frame, which the drainer releases after done.
	lent []*asyncWaiter
	// The RequestAsync waiters free for a request (under mu), and those
	// the drainer is done with (its own; settleAsyncLocked moves them).
	asyncFree, asyncSpent []*asyncWaiter
	queue                 *deliver.Queue
	notices               notices // carries out a step's notices (flushLocked)
	// slotQueue: the callers waiting for a request slot, oldest first
	// (slot.requestLocked, wakeSlotsLocked).
	slotQueue []*slotTurn
	stopped   bool
	stopOnce  sync.Once
	stopErr   error
	stopDone  chan struct{}

	// usedAt is when the core was last seen in use (core.Conn.InUse):
	// before or after a step, or when a caller gave up its request or
	// slot; see CloseIfUnused.
	usedAt time.Time

	framesIn  atomic.Uint64
	bytesIn   atomic.Uint64
	published atomic.Uint64
	bytesOut  atomic.Uint64
}

// New returns an Engine and starts connecting.
func New(cfg Config) *Engine {
	b := &Engine{
		cfg:      cfg,
		core:     core.New(cfg.Core),
		dialing:  make(map[uint64]context.CancelFunc),
		authing:  make(map[uint64]context.CancelFunc),
		stateCh:  make(chan struct{}),
		stopDone: make(chan struct{}),
		usedAt:   cfg.Clock.Now(),
	}
	b.queue = deliver.New(&b.mu, cfg.DeliveryLimit, b.settleAsyncLocked)
	b.notices.b = b
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.do(func(now time.Time) { b.core.Start(now) })
	return b
}

// State: see Broker.State in the root package.
func (b *Engine) State() core.State {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.core.State()
}

// WatchState: see Broker.WatchState in the root package.
func (b *Engine) WatchState() (core.State, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.core.State(), b.stateCh
}

// watch returns the state, a channel closed at its next change, and why
// the last connection or attempt ended, or, once closing or closed, why
// the Engine ended (core.Conn.Final).
func (b *Engine) watch() (core.State, <-chan struct{}, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.core.Final(); err != nil {
		return b.core.State(), b.stateCh, err
	}
	return b.core.State(), b.stateCh, b.core.LastError()
}

// WaitConnected: see Broker.WaitConnected in the root package.
func (b *Engine) WaitConnected(ctx context.Context) error { return b.wait(ctx, false) }

// Attempt waits until the Engine is connected, or its current connection
// attempt has failed (it is disconnected with an error), or ctx ends.
func (b *Engine) Attempt(ctx context.Context) error { return b.wait(ctx, true) }

// wait waits until the Engine is connected (nil), closing or closed
// (core.ErrClosed), or, for an attempt, disconnected with an error; or
// until ctx ends.
func (b *Engine) wait(ctx context.Context, attempt bool) error {
	for {
		st, ch, last := b.watch()
		switch {
		case st == core.StateConnected:
			return nil
		case st == core.StateClosing || st == core.StateClosed:
			return last // ErrClosed, or the broker's refusal of the credentials (Final)
		case attempt && st == core.StateDisconnected && last != nil:
			return fmt.Errorf("%s: %w", b.cfg.URL, last)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			switch {
			case attempt:
				return ctx.Err()
			case last != nil:
				return fmt.Errorf("pulsarconn: not connected to %s (last error: %w): %w", b.cfg.URL, last, ctx.Err())
			}
			return fmt.Errorf("pulsarconn: not connected to %s: %w", b.cfg.URL, ctx.Err())
		}
	}
}

// Metrics: see Broker.Metrics in the root package.
func (b *Engine) Metrics() Metrics {
	b.mu.Lock()
	defer b.mu.Unlock()
	return Metrics{
		Reconnects: b.core.Stats().Reconnects,
		State:      b.core.State(),
		Pending:    b.core.Pending(),
		Producers:  len(b.core.Producers()),
		Consumers:  len(b.core.Consumers()),
		FramesIn:   b.framesIn.Load(),
		FramesOut:  b.core.FramesOut() + b.published.Load(),
		BytesIn:    b.bytesIn.Load(),
		BytesOut:   b.bytesOut.Load(),
	}
}

// Metrics are the Engine's gauges and counters.
type Metrics struct {
	State                         core.State
	Pending, Producers, Consumers int
	FramesIn, FramesOut           uint64
	BytesIn, BytesOut             uint64
	Reconnects                    uint64
}

// Stats: see Broker.Stats in the root package.
func (b *Engine) Stats() core.Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.core.Stats()
}

// ServerVersion: see Broker.ServerVersion in the root package.
func (b *Engine) ServerVersion() (string, int32) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.core.ServerVersion()
}

// MaxMessageSize: see Broker.MaxMessageSize in the root package.
func (b *Engine) MaxMessageSize() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.core.MaxMessageSize()
}

// ---------------------------------------------------------------------------
// The step: the core under the lock, then its Ready carried out
// ---------------------------------------------------------------------------

// do runs f on the core under the lock, carries out the step's Ready, and
// then runs the queued user code outside the lock, on this goroutine.
func (b *Engine) do(f func(now time.Time)) {
	if b.step(f) {
		b.queue.Drain()
	}
}

// doDetached is do for a caller that must not run user code: Stop, which
// a Handler that blocks must not hold past its context, and a new
// connection's reader, which a Handler that waited for an answer would
// keep from reading it. The queued user code runs on a goroutine of its
// own.
func (b *Engine) doDetached(f func(now time.Time)) {
	if b.step(f) {
		b.queue.DrainDetached(&b.wg)
	}
}

// step runs f on the core under the lock and carries out the step's
// Ready; it reports whether the caller must drain the delivery queue.
func (b *Engine) step(f func(now time.Time)) bool { return b.stepAs(false, f) }

// stepAs is step; request says that f sends a request (whenUsable),
// whose step may take the short way (flushRequestLocked).
func (b *Engine) stepAs(request bool, f func(now time.Time)) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.cfg.Clock.Now()
	inUse := b.core.InUse()
	f(now)
	if inUse || b.core.InUse() {
		b.usedAt = now
	}
	if request && b.flushRequestLocked() {
		return b.queue.ClaimLocked()
	}
	return b.flushLocked(now)
}

// flushRequestLocked carries out a step that wrote requests which joined
// others pending, if the core has nothing else to carry out
// (core.Conn.OutputAlone): their frames are queued and the rest is left
// as the last step set it (the deadline, the publish gate), which spares
// a quarter of a request's instructions at 64 in flight. It reports
// whether it did; if not, flushLocked must.
func (b *Engine) flushRequestLocked() bool {
	if b.core.Pending() < 2 {
		return false // the request may be the oldest: its deadline is the timer's
	}
	c := b.conn.Load()
	out, alone := b.core.OutputAlone()
	if c == nil || len(out) == 0 || !alone {
		return false
	}
	_ = c.enqueue(out, nil) // an error: the writer failed and reports it
	b.core.AdvanceOutput()
	b.keepReadingLocked() // a request's answer must be read
	return true
}

// CloseIfUnused begins to close the Engine, as Stop does, if nothing has
// used it since cutoff: no request in flight or waiting for a slot or the
// connection, no producer or consumer registered, since then. A call made
// after it fails with core.ErrClosed; the caller then calls Stop. It
// reports whether the Engine is closing (or was already), and if not,
// when it was last in use (now, if it still is).
func (b *Engine) CloseIfUnused(cutoff time.Time) (lastUsed time.Time, closing bool) {
	b.doDetached(func(now time.Time) {
		switch st := b.core.State(); {
		case st == core.StateClosing || st == core.StateClosed:
			closing = true
		case b.core.InUse():
			lastUsed = now
		case b.usedAt.After(cutoff):
			lastUsed = b.usedAt
		default:
			b.core.BeginClose(now, nil)
			closing = true
		}
	})
	return lastUsed, closing
}

// flushLocked carries out the core's Ready: dials, closes and
// authentication start; completions run; deliveries, Observer events and
// logs are queued, in order; the timer is armed; the publish gate is set;
// the output is queued for the writer. It reports whether the caller must
// drain the delivery queue.
func (b *Engine) flushLocked(now time.Time) bool {
	rd := b.core.Ready()
	for _, d := range rd.Dials {
		b.startDial(d.Gen, d.Address)
	}
	for _, c := range rd.Closes {
		b.closeGen(c.Gen)
	}
	for _, a := range rd.Auths {
		b.startAuth(a.Gen, a.Initial, a.Challenge)
	}
	b.wakeSlotsLocked()
	b.notices.rd = rd
	rd.Walk(&b.notices)
	b.notices.rd = nil
	// The timer is armed before the output is queued: once a peer can
	// see a request, its deadline is already set (tests that advance a
	// fake clock on seeing a frame rely on this order).
	b.armTimer(now, rd.Deadline)
	if b.core.Pending() > 0 {
		b.keepReadingLocked() // a request's answer must be read
	}
	if !b.stopped && b.core.State() == core.StateClosed {
		b.endedLocked()
	}
	if c := b.conn.Load(); c != nil {
		// Before the step's output is queued: a publish on the path
		// without the lock must not follow what ends the connection's
		// use.
		gate := 0
		if b.core.CheckPublish(0) == nil && b.core.Gen() == c.gen {
			gate = b.core.MaxFrameSize()
		}
		c.setGate(gate)
		if len(rd.Output) > 0 || slices.ContainsFunc(rd.Latest[:], func(f []byte) bool { return len(f) > 0 }) {
			// An error means the writer already failed; its goroutine
			// reports that to the core.
			_ = c.enqueue(rd.Output, &rd.Latest)
		}
	}
	b.core.Advance()
	return b.queue.ClaimLocked()
}

// endedLocked carries out the core's ending for good without a Stop (the
// broker refused the credentials): no timer, dial or authentication goes
// on, and Ended runs after the step's notices. Stop still waits for the
// goroutines.
func (b *Engine) endedLocked() {
	b.stopped = true
	b.unwatchAllLocked()
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	b.cancel()
	if b.cfg.Ended != nil {
		b.queue.PushLocked(deliver.Item{Run: b.cfg.Ended})
	}
}

// notices carries out a step's notices, in order, under the lock:
// completions at once, the rest queued for the delivery queue.
type notices struct {
	b  *Engine
	rd *core.Ready
}

func (n *notices) Complete(i int) {
	c := &n.rd.Completions[i]
	c.Waiter.Done(c.Result, c.Err)
}

func (n *notices) Deliver(i int) {
	d := &n.rd.Deliveries[i]
	if r, ok := d.Handler.(*Registration); ok {
		r.notedLocked(d.Push)
	}
	n.b.queue.PushLocked(deliver.Item{Handler: d.Handler, Push: d.Push})
}

func (n *notices) Log(i int) {
	l := n.rd.Logs[i]
	log := n.b.cfg.Log
	n.b.queue.PushLocked(deliver.Item{Run: func() { log.LogAttrs(context.Background(), l.Level, l.Msg, l.Attrs...) }})
}

// State wakes the watchers of the state and queues the Observer's event
// the core says the change makes.
func (n *notices) State(i int) {
	b, sc := n.b, n.rd.States[i]
	close(b.stateCh)
	b.stateCh = make(chan struct{})
	if b.cfg.Observe == nil {
		return
	}
	ev := Event{Reconnect: sc.Reconnect, Err: sc.Cause}
	switch sc.Event {
	case core.EventOpened:
		ev.Kind = ConnectionOpened
	case core.EventClosed:
		ev.Kind = ConnectionClosed
	case core.EventHandshakeFailed:
		ev.Kind = HandshakeFailed
	default:
		return
	}
	observe := b.cfg.Observe
	b.queue.PushLocked(deliver.Item{Run: func() { observe(ev) }})
}

func (b *Engine) armTimer(now, next time.Time) {
	if next.Equal(b.timerAt) || b.stopped {
		return
	}
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	b.timerAt = next
	if next.IsZero() {
		return
	}
	b.timer = b.cfg.Clock.AfterFunc(next.Sub(now), b.onTimer)
}

func (b *Engine) onTimer() {
	b.do(func(now time.Time) {
		if b.stopped {
			return
		}
		b.timerAt = time.Time{} // this timer is spent: arm the next one
		b.timer = nil
		b.core.Tick(now)
		if c := b.conn.Load(); c != nil {
			c.trim()
		}
	})
}
