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
	// create creates the broker-side producer or consumer, as id, on
	// connection conn of b, and binds the link to it (bindLocked) if
	// nothing happened since epoch. It is called by the keeper only.
	create(ctx context.Context, b *pulsarconn.Broker, conn, id uint64, epoch uint64) error
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

	life context.Context // ends at close: the registration and the keeper
	stop context.CancelFunc
	wake chan struct{} // the keeper has work: 1-buffered
	kept chan struct{} // closed when the keeper returns

	mu     sync.Mutex
	broker *pulsarconn.Broker
	reg    *pulsarconn.Registration
	id     uint64        // the producer or consumer id on broker
	gen    uint64        // counts registrations: pushes of an older one are ignored
	conn   uint64        // the connection the broker-side object lives on; 0: none
	epoch  uint64        // counts losses: a create that saw an older one is stale
	moved  bool          // look the topic up again before the next create
	ready  chan struct{} // closed while conn != 0
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
// again when it may have moved) and creates the broker-side object on its
// current connection.
func (l *link) attempt(ctx context.Context, epoch uint64) error {
	l.mu.Lock()
	b, id, moved := l.broker, l.id, l.moved
	l.mu.Unlock()
	if moved || b == nil {
		nb, err := l.client.LookupTopic(ctx, l.topic)
		if err != nil {
			return err
		}
		if nb != b {
			if id, err = l.register(ctx, nb); err != nil {
				return err
			}
			b = nb
		}
		l.mu.Lock()
		l.moved = false
		l.mu.Unlock()
	}
	err := b.WaitConnected(ctx)
	if err == nil {
		err = l.owner.create(ctx, b, b.Connection(), id, epoch)
	}
	if errors.Is(err, pulsarconn.ErrClosed) && ctx.Err() == nil {
		// The Broker was stopped (not the Client: a lookup would say
		// so): look the topic up again, for a new one.
		return fmt.Errorf("%w: %w", errBrokerGone, err)
	}
	return err
}

// errBrokerGone: the Broker the link used was stopped; retried with a new
// lookup.
var errBrokerGone = errors.New("refclient: broker connection stopped")

// register moves the link to Broker b: a new registration there, the
// previous one closed.
func (l *link) register(ctx context.Context, b *pulsarconn.Broker) (uint64, error) {
	l.mu.Lock()
	l.gen++
	gen, old := l.gen, l.reg
	l.mu.Unlock()
	if old != nil {
		_ = old.Close(ctx) // the broker-side object is gone or going: nothing to wait for
	}
	h := pulsarconn.HandlerFunc(func(p pulsarconn.Push) { l.handle(gen, p) })
	var reg *pulsarconn.Registration
	var err error
	var id uint64
	if l.kind == "producer" {
		id = b.NewProducerID()
		reg, err = b.RegisterProducer(l.life, id, h)
	} else {
		id = b.NewConsumerID()
		reg, err = b.RegisterConsumer(l.life, id, h)
	}
	if err != nil {
		return 0, err
	}
	l.mu.Lock()
	l.broker, l.reg, l.id = b, reg, id
	l.mu.Unlock()
	return id, nil
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
		// It comes after everything its connection delivered, and
		// before the answer of any request on a newer one (requestOn):
		// a create that waits for it sees the loss and starts over.
		after = l.lostLocked(errors.Is(p.Err, pulsarconn.ErrClosed))
	case pulsarconn.PushClosed, pulsarconn.PushTopicMigrated:
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
	l.conn = 0
	close(l.ended)
	l.stop()
	after := l.owner.lostLocked(err)
	l.mu.Unlock()
	if after != nil {
		after()
	}
}

// close ends the link with ErrClosed, closes its registration within ctx
// (CLOSE_PRODUCER or CLOSE_CONSUMER) and waits for the keeper.
func (l *link) close(ctx context.Context) error {
	l.end(ErrClosed)
	<-l.kept
	l.mu.Lock()
	reg := l.reg
	l.mu.Unlock()
	if reg == nil {
		return nil
	}
	return reg.Close(ctx)
}

// waitReady waits until the broker-side object exists, and returns the
// Broker, id and connection, or the link's end or ctx's.
func (l *link) waitReady(ctx context.Context) (*pulsarconn.Broker, uint64, uint64, error) {
	for {
		l.mu.Lock()
		b, id, conn, ready, err := l.broker, l.id, l.conn, l.ready, l.err
		l.mu.Unlock()
		if err != nil {
			return nil, 0, 0, err
		}
		if conn != 0 {
			return b, id, conn, nil
		}
		select {
		case <-ready:
		case <-l.ended:
		case <-ctx.Done():
			return nil, 0, 0, ctx.Err()
		}
	}
}

// retryable reports whether creating the broker-side object may succeed
// if tried again: what pulsarconn calls retryable, and a broker that
// still holds the previous incarnation (ProducerBusy, ConsumerBusy).
func retryable(err error) bool {
	return pulsarconn.IsRetryable(err) || errors.Is(err, pulsarconn.ErrProducerBusy) ||
		errors.Is(err, pulsarconn.ErrConsumerBusy) || errors.Is(err, errBrokerGone)
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

// requestOn sends cmd, a PRODUCER or SUBSCRIBE, on connection conn of b
// and waits for the answer within ctx. Unlike Broker.RequestOn, it
// returns only once every push the broker sent before the answer has
// been handled (RequestAsync's order): the receipts of the messages sent
// on conn before the PRODUCER are in, so a re-created producer sends again
// only what was not receipted. If conn was not, or is no longer, the
// current connection, it fails with an error matching ErrDisconnected.
func requestOn(ctx context.Context, b *pulsarconn.Broker, conn uint64, cmd *pulsarpb.BaseCommand) (*pulsarpb.BaseCommand, error) {
	type answer struct {
		resp *pulsarpb.BaseCommand
		err  error
	}
	ch := make(chan answer, 1)
	if b.Connection() != conn || conn == 0 {
		return nil, fmt.Errorf("%w: connection %d replaced", pulsarconn.ErrDisconnected, conn)
	}
	if err := b.RequestAsync(ctx, cmd, func(resp *pulsarpb.BaseCommand, err error) { ch <- answer{resp, err} }); err != nil {
		return nil, err
	}
	select {
	case a := <-ch:
		if a.err == nil && b.Connection() != conn {
			// The connection was replaced while the request waited or
			// after its answer: bind to nothing.
			return nil, fmt.Errorf("%w: connection %d replaced", pulsarconn.ErrDisconnected, conn)
		}
		return a.resp, a.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
