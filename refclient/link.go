package refclient

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// owner is a Producer or a Consumer, as its link sees it.
type owner interface {
	// command is the PRODUCER or SUBSCRIBE that creates the broker-side
	// producer or consumer as id.
	command(id uint64) *pulsarpb.BaseCommand
	// created is told that command was answered resp on connection conn;
	// it binds the link to conn (bindLocked) unless the object was lost
	// since epoch, and then sends what must follow (the pending messages,
	// FLOW). It is called by the keeper only.
	created(ctx context.Context, resp *pulsarpb.BaseCommand, epoch, conn uint64) error
	// pushLocked handles a push other than the link's own (receipts, send
	// errors, messages). It is called with the link's lock held and
	// returns what to run once it is released, or nil.
	pushLocked(p pulsarconn.Push) func()
	// lostLocked is told, under the link's lock, that the broker-side
	// producer or consumer is gone: for a while (end == nil), or for good
	// (end says why). It returns what to run once the lock is released,
	// or nil.
	lostLocked(end error) func()
}

// link is what a Producer and a Consumer share: the Broker that serves
// their topic, their registration there, the connection their broker-side
// producer or consumer lives on, and the keeper goroutine that re-creates
// it when it is lost (a reconnection, the broker's close, the topic's
// move), looking the topic up again when needed.
type link struct {
	client *pulsarconn.Client
	topic  string
	kind   string // "producer" or "consumer"
	owner  owner

	life context.Context // ends at the end: the keeper and its calls
	stop context.CancelFunc
	wake chan struct{} // the keeper has work: 1-buffered
	kept chan struct{} // closed when the keeper returns

	mu     sync.Mutex
	broker *pulsarconn.Broker
	reg    *pulsarconn.Registration
	gen    uint64        // counts registrations: pushes of an older one are ignored
	conn   uint64        // the connection the broker-side object lives on; 0: none
	epoch  uint64        // counts losses: a create that saw an older one is stale
	moved  bool          // look the topic up again before the next create
	ready  chan struct{} // closed while conn != 0
	gone   chan struct{} // closed when the object bound to conn is lost
	err    error         // the end: ErrClosed or a failure to re-create
	ended  chan struct{} // closed when err is set
}

func newLink(client *pulsarconn.Client, topic, kind string, o owner) *link {
	l := &link{client: client, topic: topic, kind: kind, owner: o, moved: true,
		wake: make(chan struct{}, 1), kept: make(chan struct{}),
		ready: make(chan struct{}), ended: make(chan struct{})}
	l.life, l.stop = context.WithCancel(context.Background())
	return l
}

// start creates the broker-side object, within ctx, and starts the
// keeper; on failure the link ends.
func (l *link) start(ctx context.Context) error {
	if err := l.recreate(ctx); err != nil {
		err = fmt.Errorf("refclient: create %s on %s: %w", l.kind, l.topic, err)
		l.end(err)
		close(l.kept)
		_ = l.closeRegistration(ctx)
		return err
	}
	go l.keep()
	return nil
}

// keep re-creates the broker-side object each time it is lost, until the
// link ends; a failure that retrying cannot cure ends it.
func (l *link) keep() {
	defer close(l.kept)
	for {
		select {
		case <-l.life.Done():
			return
		case <-l.wake:
		}
		if err := l.recreate(l.life); err != nil {
			if l.life.Err() == nil {
				l.end(fmt.Errorf("refclient: re-create %s on %s: %w", l.kind, l.topic, err))
			}
			return
		}
	}
}

// recreate creates the broker-side object until it exists, with a growing
// pause between failed attempts. It returns a failure that retrying
// cannot cure, or ctx's end (with the last failure).
func (l *link) recreate(ctx context.Context) error {
	pause := 100 * time.Millisecond
	for {
		l.mu.Lock()
		epoch, done := l.epoch, l.conn != 0 || l.err != nil
		l.mu.Unlock()
		if done {
			return nil
		}
		err := l.attempt(ctx, epoch)
		switch {
		case err == nil:
			continue // bound, or lost again meanwhile: look again
		case ctx.Err() != nil && !errors.Is(err, ctx.Err()):
			return fmt.Errorf("%w (last: %w)", ctx.Err(), err)
		case ctx.Err() != nil || !retryable(err):
			return err
		}
		l.mu.Lock()
		l.moved = true // the topic may have moved: look it up again
		l.mu.Unlock()
		if cerr := sleep(ctx, pause); cerr != nil {
			return fmt.Errorf("%w (last: %w)", cerr, err)
		}
		pause = min(2*pause, 10*time.Second)
	}
}

// attempt registers on the broker that serves the topic (looking it up
// again when it may have moved, or when the registration ended) and
// creates the broker-side object there (Registration.Create).
func (l *link) attempt(ctx context.Context, epoch uint64) error {
	l.mu.Lock()
	b, reg, moved := l.broker, l.reg, l.moved
	l.mu.Unlock()
	if moved || reg == nil || reg.Err() != nil {
		nb, err := l.client.LookupTopic(ctx, l.topic)
		if err != nil {
			return err
		}
		if nb != b || reg == nil || reg.Err() != nil {
			if reg, err = l.register(ctx, nb); err != nil {
				return err
			}
			b = nb
		}
		l.mu.Lock()
		l.moved = false
		l.mu.Unlock()
	}
	err := waitConnected(ctx, b)
	if err == nil {
		// The connection Create went to: the one current before and
		// after it. Another one in between, and it starts over.
		conn := b.Connection()
		var resp *pulsarpb.BaseCommand
		resp, err = createOn(ctx, b, conn, reg, l.owner.command(reg.ID()))
		if err == nil && conn != 0 && b.Connection() == conn {
			err = l.owner.created(ctx, resp, epoch, conn)
		}
	}
	if errors.Is(err, pulsarconn.ErrClosed) && ctx.Err() == nil {
		// The Broker was stopped (not the Client: a lookup would say
		// so): look the topic up again, for a new one.
		return fmt.Errorf("%w: %w", errBrokerGone, err)
	}
	return err
}

// errBrokerGone: the Broker the link used was stopped, or an attempt to
// connect to it failed; retried with a new lookup.
var errBrokerGone = errors.New("refclient: broker connection stopped")

// errUnreachable: an attempt to connect to the Broker failed. The broker
// may be gone for good (killed, its topics taken over by another one):
// retried with a new lookup, which finds the owner again, this broker or
// another.
var errUnreachable = errors.New("refclient: broker unreachable")

// waitConnected waits until b is connected, or until one of its attempts
// to connect fails (errUnreachable), or ctx ends. Waiting on for a broker
// that does not come back would keep the link from a topic that moved to
// another broker, as when its broker is killed: no CLOSE_PRODUCER or
// CLOSE_CONSUMER says so, only the lookup knows.
func waitConnected(ctx context.Context, b *pulsarconn.Broker) error {
	failures := b.Stats().HandshakeFailures
	for {
		st, changed := b.WatchState()
		switch {
		case st == pulsarconn.StateConnected:
			return nil
		case st == pulsarconn.StateClosing || st == pulsarconn.StateClosed:
			return b.WaitConnected(ctx) // ErrClosed, or the refusal
		case b.Stats().HandshakeFailures != failures:
			return fmt.Errorf("%w: %s", errUnreachable, b.BrokerURL())
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// errConnLost: the connection a Create was meant for was lost before
// its answer; retried with a new lookup.
var errConnLost = fmt.Errorf("%w: refclient: the connection was lost before the answer", pulsarconn.ErrDisconnected)

// createOn is reg.Create of cmd, given up (errConnLost) once connection
// conn of b is lost. Create waits for a connection while there is none,
// and waits on for one after a loss when its command was not yet
// written (waiting for a request slot, or room in the write queue): for
// a broker killed, that would be forever, while the topic is served
// elsewhere.
func createOn(ctx context.Context, b *pulsarconn.Broker, conn uint64, reg *pulsarconn.Registration, cmd *pulsarpb.BaseCommand) (*pulsarpb.BaseCommand, error) {
	cctx, cancel := whileConnected(ctx, b, conn)
	defer cancel()
	resp, err := reg.Create(cctx, cmd)
	if err != nil && ctx.Err() == nil && context.Cause(cctx) == errConnLost {
		return nil, fmt.Errorf("%w (%w)", errConnLost, err)
	}
	return resp, err
}

// whileConnected returns a context derived from ctx that is cancelled,
// with cause errConnLost, once connection conn of b is not the current
// one; its CancelFunc must be called.
func whileConnected(ctx context.Context, b *pulsarconn.Broker, conn uint64) (context.Context, context.CancelFunc) {
	cctx, cancel := context.WithCancelCause(ctx)
	go func() {
		for {
			st, changed := b.WatchState()
			if st != pulsarconn.StateConnected || b.Connection() != conn {
				cancel(errConnLost)
				return
			}
			select {
			case <-changed:
			case <-cctx.Done():
				return
			}
		}
	}()
	return cctx, func() { cancel(context.Canceled) }
}

// register moves the link to Broker b: a new registration there, the
// previous one closed. A registration lasts until Close, whatever
// happens to the connection: it is registered with a context that never
// ends.
func (l *link) register(ctx context.Context, b *pulsarconn.Broker) (*pulsarconn.Registration, error) {
	l.mu.Lock()
	l.gen++
	gen, old := l.gen, l.reg
	l.mu.Unlock()
	if old != nil {
		_ = old.Close(ctx) // the broker-side object is gone or going: nothing to wait for
	}
	h := pulsarconn.HandlerFunc(func(p pulsarconn.Push) { l.handle(gen, p) })
	register := b.RegisterConsumer
	id := b.NewConsumerID()
	if l.kind == "producer" {
		register, id = b.RegisterProducer, b.NewProducerID()
	}
	reg, err := register(context.Background(), id, h)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.broker, l.reg = b, reg
	l.mu.Unlock()
	return reg, nil
}

// handle is the registration's Handler.
func (l *link) handle(gen uint64, p pulsarconn.Push) {
	l.mu.Lock()
	if gen != l.gen || l.err != nil {
		l.mu.Unlock()
		return
	}
	var after func()
	switch p.Kind {
	case pulsarconn.PushDisconnected:
		// It comes after everything its connection delivered, but may
		// come after Create has answered on a newer connection: one
		// about a connection older than the current one, while the
		// object lives on the current one, is ignored.
		if l.conn == 0 || l.broker.Connection() != l.conn {
			after = l.lostLocked(false)
		}
	case pulsarconn.PushClosed, pulsarconn.PushTopicMigrated, pulsarconn.PushEnded:
		// Closed by the broker, or moved; or the registration ended
		// (the Broker was stopped): look the topic up again.
		after = l.lostLocked(true)
	default:
		after = l.owner.pushLocked(p)
	}
	l.mu.Unlock()
	if after != nil {
		after()
	}
}

// lostLocked records that the broker-side object is gone and wakes the
// keeper; moved says to look the topic up again first.
func (l *link) lostLocked(moved bool) func() {
	if l.conn != 0 {
		l.ready = make(chan struct{})
		close(l.gone)
	}
	l.conn = 0
	l.epoch++
	l.moved = l.moved || moved
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return l.owner.lostLocked(nil)
}

// bindLocked records that the broker-side object lives on conn, unless it
// was lost since epoch.
func (l *link) bindLocked(epoch, conn uint64) bool {
	if l.epoch != epoch || l.err != nil {
		return false
	}
	l.conn = conn
	l.gone = make(chan struct{})
	close(l.ready)
	return true
}

// end ends the link with err (once) and stops the keeper; the owner's
// lostLocked is told.
func (l *link) end(err error) {
	l.mu.Lock()
	if l.err != nil {
		l.mu.Unlock()
		return
	}
	l.err = err
	if l.conn != 0 {
		close(l.gone)
	}
	l.conn = 0
	close(l.ended)
	l.stop()
	after := l.owner.lostLocked(err)
	l.mu.Unlock()
	if after != nil {
		after()
	}
}

// close ends the link with ErrClosed, waits for the keeper and closes
// the registration within ctx (CLOSE_PRODUCER or CLOSE_CONSUMER).
func (l *link) close(ctx context.Context) error {
	l.end(ErrClosed)
	<-l.kept
	return l.closeRegistration(ctx)
}

func (l *link) closeRegistration(ctx context.Context) error {
	l.mu.Lock()
	reg := l.reg
	l.mu.Unlock()
	if reg == nil {
		return nil
	}
	return reg.Close(ctx)
}

// bound is where the broker-side object lives: its Broker, registration
// and connection, and a channel closed when it is lost.
type bound struct {
	b    *pulsarconn.Broker
	reg  *pulsarconn.Registration
	conn uint64
	gone <-chan struct{}
}

// waitReady waits until the broker-side object exists, and returns where
// it lives, or the link's end or ctx's.
func (l *link) waitReady(ctx context.Context) (bound, error) {
	for {
		l.mu.Lock()
		at, ready, err := bound{l.broker, l.reg, l.conn, l.gone}, l.ready, l.err
		l.mu.Unlock()
		if err != nil {
			return bound{}, err
		}
		if at.conn != 0 {
			return at, nil
		}
		select {
		case <-ready:
		case <-l.ended:
		case <-ctx.Done():
			return bound{}, ctx.Err()
		}
	}
}

// retryable reports whether creating the broker-side object may succeed
// if tried again: what pulsarconn calls retryable, and a broker that
// still holds the previous incarnation (ProducerBusy, ConsumerBusy).
func retryable(err error) bool {
	return pulsarconn.IsRetryable(err) || errors.Is(err, pulsarconn.ErrProducerBusy) ||
		errors.Is(err, pulsarconn.ErrConsumerBusy) || errors.Is(err, errBrokerGone) ||
		errors.Is(err, errUnreachable)
}

// lost reports whether a call bound to the registration failed because
// the broker-side object is gone (its connection lost, closed by the
// broker, the registration ended): the keeper re-creates it, and what
// failed is done again then.
func lost(err error) bool {
	return errors.Is(err, pulsarconn.ErrDisconnected) || errors.Is(err, pulsarconn.ErrNotCreated) ||
		errors.Is(err, pulsarconn.ErrRegistrationEnded)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
