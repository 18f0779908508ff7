package refclient

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/proto/command"
	"github.com/pulsarconn/pulsarconn/proto/message"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// ProducerOptions configure a Producer. The zero value is usable.
type ProducerOptions struct {
	// Name is the producer's name; empty: the broker assigns one at the
	// first creation, and it is kept across re-creations.
	Name string
	// MaxPending bounds the messages sent and not yet receipted: Send and
	// SendAsync wait for room. Default 1000.
	MaxPending int
	// Compression compresses each message: NONE (the zero value), LZ4,
	// ZLIB, ZSTD or SNAPPY.
	Compression pulsarpb.CompressionType
}

// ProducerStats count what a Producer went through.
type ProducerStats struct {
	// Created counts the creations of the broker-side producer: the
	// first and every re-creation.
	Created int
	// Resent counts the messages sent again after a re-creation, because
	// no receipt had come for them: each one may be stored twice.
	Resent int
	// StrayReceipts counts receipts for no pending message: the second
	// receipt of a message sent twice.
	StrayReceipts int
}

// Producer publishes messages to one topic. It keeps sequence ids, matches
// the broker's receipts and send errors to its messages, and re-creates
// itself after a reconnection, a close by the broker or a move of the
// topic, sending again, in order, what was not receipted. All its methods
// are safe for concurrent use.
type Producer struct {
	l     *link
	opts  ProducerOptions
	slots chan struct{} // one per pending message

	// sendMu is held while publishing, so that SENDs go out in the order
	// of their sequence ids; enc and buf build the frames.
	sendMu sync.Mutex
	enc    message.Encoder
	buf    []byte

	// Guarded by l.mu.
	name     string
	nextSeq  uint64
	pending  []*outgoing // no receipt yet, by sequence id
	ending   int         // done functions returned by completeLocked or lostLocked, not yet run
	closing  bool
	drained  chan struct{} // closed when pending empties and ending is 0, while Close waits
	stats    ProducerStats
	onResend func(seq uint64) // a test's probe
}

// outgoing is a message sent, or to send, without a receipt yet.
type outgoing struct {
	msg  message.Message // with its sequence id and publish time
	done func(MessageID, error)
}

// NewProducer looks topic up with client, registers on the broker that
// serves it and creates the producer there (PRODUCER), within ctx. Close
// it when done: it holds a registration and a goroutine.
func NewProducer(ctx context.Context, client *pulsarconn.Client, topic string, opts ProducerOptions) (*Producer, error) {
	if opts.MaxPending <= 0 {
		opts.MaxPending = 1000
	}
	p := &Producer{opts: opts, name: opts.Name, slots: make(chan struct{}, opts.MaxPending)}
	p.enc.Compression = opts.Compression
	p.l = newLink(client, topic, "producer", p)
	if err := p.l.start(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// Name returns the producer's name.
func (p *Producer) Name() string {
	p.l.mu.Lock()
	defer p.l.mu.Unlock()
	return p.name
}

// Stats returns the producer's counters.
func (p *Producer) Stats() ProducerStats {
	p.l.mu.Lock()
	defer p.l.mu.Unlock()
	return p.stats
}

// Send publishes m and waits for its receipt, which gives its message id.
// A nil error means the broker stored it (at least once: see the package
// documentation). It fails with ErrClosed after Close.
func (p *Producer) Send(ctx context.Context, m Message) (MessageID, error) {
	type result struct {
		id  MessageID
		err error
	}
	ch := make(chan result, 1)
	if err := p.SendAsync(ctx, m, func(id MessageID, err error) { ch <- result{id, err} }); err != nil {
		return MessageID{}, err
	}
	select {
	case r := <-ch:
		return r.id, r.err
	case <-ctx.Done():
		// The message stays pending: it may still be stored.
		return MessageID{}, ctx.Err()
	}
}

// SendAsync publishes m without waiting for its receipt: done is called
// once, with the message id or the failure, on the goroutine that
// delivers the broker's pushes, so it must not block. SendAsync waits,
// within ctx, while MaxPending messages are pending. If it returns an
// error, done is never called.
func (p *Producer) SendAsync(ctx context.Context, m Message, done func(MessageID, error)) error {
	select {
	case p.slots <- struct{}{}:
	case <-p.l.ended:
		return p.l.err
	case <-ctx.Done():
		return ctx.Err()
	}
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	p.l.mu.Lock()
	if err := p.refusalLocked(); err != nil {
		p.l.mu.Unlock()
		<-p.slots
		return err
	}
	o := &outgoing{done: done, msg: message.Message{
		Payload:     slices.Clone(m.Payload),
		SequenceID:  p.nextSeq,
		PublishTime: uint64(time.Now().UnixMilli()),
		Key:         m.Key,
		Properties:  maps.Clone(m.Properties),
	}}
	if !m.EventTime.IsZero() {
		o.msg.EventTime = uint64(m.EventTime.UnixMilli())
	}
	p.nextSeq++
	p.pending = append(p.pending, o)
	reg, conn := p.l.reg, p.l.conn
	p.l.mu.Unlock()
	if conn == 0 {
		return nil // sent once the producer is re-created
	}
	err := p.publish(ctx, reg, o)
	if err == nil || lost(err) {
		return nil // sent, or sent again once the producer is re-created
	}
	// Refused (too large, no room until ctx ended, ...): nothing was
	// written. It is the last pending message (sendMu is held).
	p.l.mu.Lock()
	if i := slices.Index(p.pending, o); i >= 0 {
		p.pending = slices.Delete(p.pending, i, i+1)
		p.drainedLocked()
	}
	p.l.mu.Unlock()
	<-p.slots
	return err
}

// refusalLocked says why a message cannot be sent, or nil.
func (p *Producer) refusalLocked() error {
	switch {
	case p.l.err != nil:
		return p.l.err
	case p.closing:
		return ErrClosed
	}
	return nil
}

// publish writes o's SEND frame where the producer was created; sendMu
// is held.
func (p *Producer) publish(ctx context.Context, reg *pulsarconn.Registration, o *outgoing) error {
	var err error
	if p.buf, err = p.enc.AppendSend(p.buf[:0], reg.ID(), &o.msg); err != nil {
		return err
	}
	return reg.Publish(ctx, p.buf)
}

// command implements owner: the PRODUCER, under the name the broker gave
// at the first creation.
func (p *Producer) command(id uint64) *pulsarpb.BaseCommand {
	p.l.mu.Lock()
	defer p.l.mu.Unlock()
	return command.Producer(p.l.topic, id, command.ProducerOptions{Name: p.name, NameFromBroker: p.opts.Name == ""})
}

// created implements owner: then the pending messages again, in order,
// on the same connection.
func (p *Producer) created(ctx context.Context, resp *pulsarpb.BaseCommand, epoch, conn uint64) error {
	ps := resp.GetProducerSuccess()
	if ps == nil {
		return fmt.Errorf("%w: PRODUCER answered with %v", pulsarconn.ErrProtocol, resp.GetType())
	}
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	p.l.mu.Lock()
	if !p.l.bindLocked(epoch, conn) {
		p.l.mu.Unlock()
		return nil
	}
	if p.stats.Created == 0 {
		p.name = ps.GetProducerName()
		p.enc.ProducerName = p.name
		p.nextSeq = uint64(ps.GetLastSequenceId() + 1)
	}
	p.stats.Created++
	again := slices.Clone(p.pending)
	p.stats.Resent += len(again)
	reg, probe := p.l.reg, p.onResend
	p.l.mu.Unlock()
	for _, o := range again {
		if probe != nil {
			probe(o.msg.SequenceID)
		}
		err := p.publish(ctx, reg, o)
		if lost(err) {
			break // lost again: the next creation sends the rest
		}
		if err != nil {
			p.complete(o.msg.SequenceID, MessageID{}, err) // refused
		}
	}
	return nil
}

// pushLocked implements owner: receipts and send errors.
func (p *Producer) pushLocked(push pulsarconn.Push) func() {
	switch push.Kind {
	case pulsarconn.PushReceipt:
		r := push.Command.GetSendReceipt()
		return p.completeLocked(r.GetSequenceId(), command.FromData(r.GetMessageId()), nil)
	case pulsarconn.PushSendError:
		seq := push.Command.GetSendError().GetSequenceId()
		if errors.Is(push.Err, pulsarconn.ErrTopicTerminated) {
			// The topic takes no more messages: this one, and the
			// later ones, fail.
			return p.completeLocked(seq, MessageID{}, push.Err)
		}
		// Anything else (the producer not there, a checksum
		// mismatch, ...): re-create it and send again what is pending.
		return p.l.lostLocked(false)
	}
	return nil
}

// complete is completeLocked, taking the lock.
func (p *Producer) complete(seq uint64, id MessageID, err error) {
	p.l.mu.Lock()
	after := p.completeLocked(seq, id, err)
	p.l.mu.Unlock()
	if after != nil {
		after()
	}
}

// completeLocked ends pending message seq with id or err; it returns the
// call of its done function, to run once the lock is released.
func (p *Producer) completeLocked(seq uint64, id MessageID, err error) func() {
	i, found := slices.BinarySearchFunc(p.pending, seq, func(o *outgoing, seq uint64) int {
		return cmp.Compare(o.msg.SequenceID, seq)
	})
	if !found {
		if err == nil {
			p.stats.StrayReceipts++
		}
		return nil
	}
	o := p.pending[i]
	p.pending = slices.Delete(p.pending, i, i+1)
	p.ending++
	return func() {
		<-p.slots
		o.done(id, err)
		p.ended()
	}
}

// ended counts a done function run; Close waits for them too.
func (p *Producer) ended() {
	p.l.mu.Lock()
	p.ending--
	p.drainedLocked()
	p.l.mu.Unlock()
}

// drainedLocked tells a waiting Close that nothing is pending and every
// done function has run.
func (p *Producer) drainedLocked() {
	if len(p.pending) == 0 && p.ending == 0 && p.drained != nil {
		close(p.drained)
		p.drained = nil
	}
}

// lostLocked implements owner: at the end, every pending message fails.
func (p *Producer) lostLocked(end error) func() {
	if end == nil {
		return nil
	}
	failed := p.pending
	p.pending = nil
	p.ending++
	return func() {
		for _, o := range failed {
			<-p.slots
			o.done(MessageID{}, end)
		}
		p.ended()
	}
}

// Close waits, within ctx, for the receipts of the messages sent (and for
// their done functions to return), then fails those still pending with
// ErrClosed and closes the producer on the broker (CLOSE_PRODUCER). Send
// and SendAsync fail with ErrClosed once Close has begun. It returns ctx's
// error if the receipts did not all come in time.
func (p *Producer) Close(ctx context.Context) error {
	p.l.mu.Lock()
	p.closing = true
	var drained chan struct{}
	if (len(p.pending) > 0 || p.ending > 0) && p.l.err == nil {
		drained = make(chan struct{})
		p.drained = drained
	}
	p.l.mu.Unlock()
	var err error
	if drained != nil {
		select {
		case <-drained:
		case <-ctx.Done():
			err = fmt.Errorf("refclient: close: receipts still pending: %w", ctx.Err())
		}
	}
	return errors.Join(err, p.l.close(ctx))
}
