package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pulsarconn/pulsarconn/core"
	"github.com/pulsarconn/pulsarconn/internal/deliver"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// ---------------------------------------------------------------------------
// Registrations
// ---------------------------------------------------------------------------

// NewProducerID: see Broker.NewProducerID in the root package.
func (b *Engine) NewProducerID() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.core.NewProducerID()
}

// NewConsumerID: see Broker.NewConsumerID in the root package.
func (b *Engine) NewConsumerID() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.core.NewConsumerID()
}

// Registration is pulsarconn.Registration: a producer or consumer
// registered on an Engine (see the root package).
//
// It is the Handler the core knows: every push passes through HandlePush,
// and the step notes, under the lock, the ones that change the
// registration (notedLocked).
type Registration struct {
	b        *Engine
	h        core.Handler
	id       uint64
	producer bool
	stop     func() bool // of the context.AfterFunc; set under the lock
	once     sync.Once
	closeErr error

	// created is the connection (core generation) the broker-side
	// producer or consumer was created on by Create, 0 when none:
	// written under the engine's lock, read without it by Publish.
	created atomic.Uint64
	// done is closed, under the engine's lock, when the registration
	// ends; err, written before, says why.
	done chan struct{}
	err  error
}

// ErrRegistrationEnded: the registration has ended (Close, its context,
// the Broker's Stop or end); the error wraps why.
var ErrRegistrationEnded = errors.New("pulsarconn: registration ended")

// ErrNotCreated: the registration's producer or consumer was not created
// by Create, or the broker closed it since (CLOSE_PRODUCER or
// CLOSE_CONSUMER).
var ErrNotCreated = errors.New("pulsarconn: producer or consumer not created")

// ID returns the producer or consumer id.
func (r *Registration) ID() uint64 { return r.id }

// Done: see Registration.Done in the root package.
func (r *Registration) Done() <-chan struct{} { return r.done }

// Err: see Registration.Err in the root package.
func (r *Registration) Err() error {
	select {
	case <-r.done:
		return r.err
	default:
		return nil
	}
}

// HandlePush implements core.Handler: it hands p to the owner's Handler.
func (r *Registration) HandlePush(p core.Push) { r.h.HandlePush(p) }

// notedLocked notes, as the step queues p for delivery, what p changes:
// the broker-side producer or consumer is gone at PushClosed, and the
// registration is over at PushEnded.
func (r *Registration) notedLocked(p core.Push) {
	switch p.Kind {
	case core.PushClosed:
		r.created.Store(0)
	case core.PushEnded:
		r.endedLocked(p.Err)
	}
}

// endedLocked marks the registration ended, for err, and reports whether
// it was live.
func (r *Registration) endedLocked(err error) bool {
	select {
	case <-r.done:
		return false
	default:
	}
	r.err = err
	r.created.Store(0)
	close(r.done)
	r.stop() // a long-lived context must not keep it (and the engine)
	return true
}

// Close removes the registration and, when connected, sends CLOSE_PRODUCER
// or CLOSE_CONSUMER and waits for the broker's answer within ctx. Later
// calls return the first call's result.
func (r *Registration) Close(ctx context.Context) error {
	r.stop()
	r.once.Do(func() {
		r.closeErr = r.remove(ctx, true, fmt.Errorf("%w: %s %d closed by its owner", core.ErrClosed, r.kind(), r.id))
	})
	return r.closeErr
}

func (r *Registration) kind() string {
	if r.producer {
		return "producer"
	}
	return "consumer"
}

// remove ends the registration for why, if it is live: the Handler is
// told PushEnded, the core forgets it and, when connected, sends
// CLOSE_PRODUCER or CLOSE_CONSUMER, whose answer remove waits for if wait.
func (r *Registration) remove(ctx context.Context, wait bool, why error) error {
	var w *waiter
	var sent bool
	var start time.Time
	typ := pulsarpb.BaseCommand_CLOSE_CONSUMER
	if r.producer {
		typ = pulsarpb.BaseCommand_CLOSE_PRODUCER
	}
	b := r.b
	b.do(func(now time.Time) {
		var cw core.Waiter
		switch {
		case wait:
			w = b.newWaiter()
			cw = w
		case b.cfg.Observe != nil:
			cw = &closeWaiter{b: b, typ: typ, start: now}
		}
		start = now
		if !r.endedLocked(why) {
			return // ended already: Stop, or the Broker's end
		}
		b.queue.PushLocked(deliver.Item{Handler: r, Push: core.Push{Kind: core.PushEnded, ID: r.id, Err: why}})
		if r.producer {
			sent = b.core.RemoveProducer(now, r.id, cw)
		} else {
			sent = b.core.RemoveConsumer(now, r.id, cw)
		}
	})
	if !sent || !wait {
		return nil
	}
	select {
	case res := <-w.ch:
		b.observeRequest(typ, start, res.err)
		return res.err
	case <-ctx.Done():
		return fmt.Errorf("pulsarconn: close of %d: %w", r.id, ctx.Err())
	}
}

// closeWaiter reports the broker's answer to a CLOSE_PRODUCER or
// CLOSE_CONSUMER that no caller waits for (the registration's context
// ended) to the Observer, as a RequestCompleted delivered from the queue,
// outside the lock.
type closeWaiter struct {
	b     *Engine
	typ   pulsarpb.BaseCommand_Type
	start time.Time
}

// Done implements core.Waiter; it runs under the engine's lock.
func (w *closeWaiter) Done(cmd *pulsarpb.BaseCommand, err error) {
	w.b.queue.PushLocked(deliver.Item{Handler: w, Push: core.Push{Command: cmd, Err: err}})
}

// HandlePush hands the answer to the Observer.
func (w *closeWaiter) HandlePush(p core.Push) {
	w.b.observeRequest(w.typ, w.start, p.Err)
}

// RegisterProducer: see Broker.RegisterProducer in the root package.
func (b *Engine) RegisterProducer(ctx context.Context, id uint64, h core.Handler) (*Registration, error) {
	return b.register(ctx, true, id, h)
}

// RegisterConsumer: see Broker.RegisterConsumer in the root package.
func (b *Engine) RegisterConsumer(ctx context.Context, id uint64, h core.Handler) (*Registration, error) {
	return b.register(ctx, false, id, h)
}

func (b *Engine) register(ctx context.Context, producer bool, id uint64, h core.Handler) (*Registration, error) {
	if h == nil {
		return nil, errors.New("pulsarconn: nil Handler")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("pulsarconn: register %d: %w", id, err)
	}
	r := &Registration{b: b, h: h, id: id, producer: producer, done: make(chan struct{})}
	var err error
	b.do(func(time.Time) {
		if producer {
			err = b.core.AddProducer(id, r)
		} else {
			err = b.core.AddConsumer(id, r)
		}
		if err != nil {
			return
		}
		// Set under the lock, for endedLocked. (If ctx has ended, f
		// starts at once on a goroutine of its own.)
		r.stop = context.AfterFunc(ctx, func() {
			why := fmt.Errorf("pulsarconn: %s %d: its context ended: %w", r.kind(), id, ctx.Err())
			if cause := context.Cause(ctx); cause != ctx.Err() {
				why = fmt.Errorf("%w (%w)", why, cause)
			}
			r.once.Do(func() { r.closeErr = r.remove(context.Background(), false, why) })
		})
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// Producers: see Broker.Producers in the root package.
func (b *Engine) Producers() []uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.core.Producers()
}

// Consumers: see Broker.Consumers in the root package.
func (b *Engine) Consumers() []uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.core.Consumers()
}

// ---------------------------------------------------------------------------
// Stop
// ---------------------------------------------------------------------------

// Stop: see Broker.Stop in the root package. closed runs once the
// connection is closed for good, before Stop waits for the goroutines.
func (b *Engine) Stop(ctx context.Context, closed func()) error {
	b.stopOnce.Do(func() {
		defer close(b.stopDone)
		b.stopErr = b.stop(ctx, closed)
	})
	<-b.stopDone
	return b.stopErr
}

func (b *Engine) stop(ctx context.Context, closed func()) error {
	var waiters []*waiter
	b.doDetached(func(now time.Time) {
		b.core.BeginClose(now, func(uint64) core.Waiter {
			w := b.newWaiter()
			waiters = append(waiters, w)
			return w
		})
	})
	var errs []error
wait:
	for _, w := range waiters {
		select {
		case r := <-w.ch:
			// A refused or failed close changes nothing: the
			// registration is gone either way. It is logged, not
			// returned.
			if r.err != nil {
				b.cfg.Log.Warn("close during stop failed", slog.Any("error", r.err))
			}
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("pulsarconn: stop: closing producers and consumers: %w", ctx.Err()))
			break wait
		}
	}
	b.doDetached(func(now time.Time) {
		b.core.FinishClose(now)
		b.stopped = true
		b.unwatchAllLocked()
		if b.timer != nil {
			b.timer.Stop()
			b.timer = nil
		}
	})
	b.cancel()
	closed()
	// The last deliveries (PushDisconnected to every Handler, the
	// Observer's ConnectionClosed) and the goroutines end on their own; a
	// Handler that blocks holds them up, but not Stop past ctx.
	finished := make(chan struct{})
	go func() {
		b.mu.Lock()
		b.queue.WaitIdleLocked()
		b.mu.Unlock()
		b.wg.Wait()
		close(finished)
	}()
	select {
	case <-finished:
	case <-ctx.Done():
		select {
		case <-finished:
		default:
			errs = append(errs, fmt.Errorf("pulsarconn: stop: a Handler or Observer has not returned: %w", ctx.Err()))
		}
	}
	return errors.Join(errs...)
}

// ---------------------------------------------------------------------------
// Calls bound to a registration's producer or consumer
// ---------------------------------------------------------------------------

// endedErr is the error of a call on an ended registration.
func (r *Registration) endedErr() error {
	return fmt.Errorf("%w: %s %d: %w", ErrRegistrationEnded, r.kind(), r.id, r.err)
}

// bindLocked returns the connection a call of the registration is bound
// to: for Create any (0), else the one Create succeeded on; or why none.
func (r *Registration) bindLocked(create bool) (uint64, error) {
	select {
	case <-r.done:
		return 0, r.endedErr()
	default:
	}
	if create {
		return 0, nil
	}
	if conn := r.created.Load(); conn != 0 {
		return conn, nil
	}
	return 0, r.notCreatedErr()
}

func (r *Registration) notCreatedErr() error {
	return fmt.Errorf("%w: %s %d (create it with Create, and again after the broker closed it)", ErrNotCreated, r.kind(), r.id)
}

// createdLocked binds the registration to the current connection, on
// which Create's command has just succeeded, unless it has ended.
func (r *Registration) createdLocked() {
	select {
	case <-r.done:
	default:
		r.created.Store(r.b.core.Gen())
	}
}

// Create: see Registration.Create in the root package.
func (r *Registration) Create(ctx context.Context, cmd *pulsarpb.BaseCommand) (*pulsarpb.BaseCommand, error) {
	if r.Err() != nil {
		return nil, r.endedErr()
	}
	want, id := pulsarpb.BaseCommand_SUBSCRIBE, cmd.GetSubscribe().GetConsumerId()
	if r.producer {
		want, id = pulsarpb.BaseCommand_PRODUCER, cmd.GetProducer().GetProducerId()
	}
	if t := cmd.GetType(); t != want || id != r.id {
		return nil, fmt.Errorf("pulsarconn: Create of %s %d needs a %v command for id %d, not %v for id %d", r.kind(), r.id, want, r.id, t, id)
	}
	resp, err := r.b.request(ctx, binding{reg: r, create: true}, cmd)
	if err == nil && r.Err() != nil {
		// Answered after the end (Close while the command was on its
		// way): bound to nothing, so not a success.
		return nil, r.endedErr()
	}
	return resp, err
}

// Request: see Registration.Request in the root package.
func (r *Registration) Request(ctx context.Context, cmd *pulsarpb.BaseCommand) (*pulsarpb.BaseCommand, error) {
	return r.b.request(ctx, binding{reg: r}, cmd)
}

// Send: see Registration.Send in the root package.
func (r *Registration) Send(ctx context.Context, cmd *pulsarpb.BaseCommand) error {
	return r.b.send(ctx, binding{reg: r}, cmd)
}

// Publish: see Registration.Publish in the root package.
func (r *Registration) Publish(ctx context.Context, encoded []byte) error {
	if r.Err() != nil {
		return r.endedErr()
	}
	if !r.producer {
		return fmt.Errorf("pulsarconn: Publish on consumer %d: only a producer publishes", r.id)
	}
	if r.created.Load() == 0 {
		return r.notCreatedErr()
	}
	return r.b.publish(ctx, binding{reg: r}, encoded)
}
