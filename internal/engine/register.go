package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
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
type Registration struct {
	b        *Engine
	id       uint64
	producer bool
	stop     func() bool
	once     sync.Once
	err      error
}

// ID returns the producer or consumer id.
func (r *Registration) ID() uint64 { return r.id }

// Close removes the registration and, when connected, sends CLOSE_PRODUCER
// or CLOSE_CONSUMER and waits for the broker's answer within ctx. Later
// calls return the first call's result.
func (r *Registration) Close(ctx context.Context) error {
	r.stop()
	r.once.Do(func() { r.err = r.remove(ctx, true) })
	return r.err
}

func (r *Registration) remove(ctx context.Context, wait bool) error {
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
			w = newWaiter()
			cw = w
		case b.cfg.Observe != nil:
			cw = &closeWaiter{b: b, typ: typ, start: now}
		}
		start = now
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
	var err error
	b.do(func(time.Time) {
		if producer {
			err = b.core.AddProducer(id, h)
		} else {
			err = b.core.AddConsumer(id, h)
		}
	})
	if err != nil {
		return nil, err
	}
	r := &Registration{b: b, id: id, producer: producer}
	r.stop = context.AfterFunc(ctx, func() {
		r.once.Do(func() { r.err = r.remove(context.Background(), false) })
	})
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
			w := newWaiter()
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
