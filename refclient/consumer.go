package refclient

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/proto/command"
	"github.com/pulsarconn/pulsarconn/proto/message"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// ConsumerOptions configure a Consumer. The zero value is usable: an
// Exclusive subscription that starts at the latest message, a receiver
// queue of 1000.
type ConsumerOptions struct {
	// Type is the subscription type: Exclusive (the zero value), Shared,
	// Failover or Key_Shared.
	Type pulsarpb.CommandSubscribe_SubType
	// InitialPosition is where a new subscription starts: Latest (the
	// zero value) or Earliest.
	InitialPosition pulsarpb.CommandSubscribe_InitialPosition
	// Name is the consumer's name; empty: the broker assigns one.
	Name string
	// ReceiverQueueSize is how many messages the broker may send ahead of
	// Receive (the permits granted with FLOW). Default 1000.
	ReceiverQueueSize int
}

// ConsumerStats count what a Consumer went through.
type ConsumerStats struct {
	// Subscribed counts the SUBSCRIBEs that succeeded: the first and
	// every re-subscription.
	Subscribed int
	// Dropped counts the messages received but not yet returned by
	// Receive when the consumer was lost: the broker sends them again.
	Dropped int
	// Corrupt counts the messages whose checksum did not match: not
	// returned, and asked for again.
	Corrupt int
	// Skipped counts the messages this consumer does not handle (chunked,
	// encrypted, or not decodable): not returned, left unacknowledged.
	Skipped int
	// Purged counts the messages dropped from the queue because an Ack
	// of the same message id had succeeded: copies the broker sent again
	// before it had the Ack.
	Purged int
}

// Consumer receives the messages of one subscription of a topic. It
// grants the broker permits as Receive takes messages, acknowledges them,
// and re-subscribes after a reconnection, a close by the broker or a
// move of the topic. All its methods are safe for concurrent use.
type Consumer struct {
	l    *link
	sub  string
	opts ConsumerOptions

	// Guarded by l.mu.
	queue    []*Message           // received, not yet returned by Receive
	batches  map[MessageID][]bool // by entry: the messages of a batch Ack was called for
	arrived  chan struct{}        // closed at the next arrival, while Receive waits
	consumed int                  // returned by Receive since the last FLOW
	stats    ConsumerStats
}

// NewConsumer looks topic up with client, registers on the broker that
// serves it, subscribes (SUBSCRIBE) as subscription and grants the
// receiver queue's permits (FLOW), within ctx. Close it when done: it
// holds a registration and a goroutine.
func NewConsumer(ctx context.Context, client *pulsarconn.Client, topic, subscription string, opts ConsumerOptions) (*Consumer, error) {
	if opts.ReceiverQueueSize <= 0 {
		opts.ReceiverQueueSize = 1000
	}
	c := &Consumer{sub: subscription, opts: opts}
	c.l = newLink(client, topic, "consumer", c)
	if err := c.l.start(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Stats returns the consumer's counters.
func (c *Consumer) Stats() ConsumerStats {
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	return c.stats
}

// command implements owner: the SUBSCRIBE.
func (c *Consumer) command(id uint64) *pulsarpb.BaseCommand {
	return command.Subscribe(c.l.topic, c.sub, id, c.opts.Type,
		command.SubscribeOptions{ConsumerName: c.opts.Name, InitialPosition: c.opts.InitialPosition})
}

// created implements owner: then FLOW for the whole receiver queue (it is
// empty: what it held was dropped when the consumer was lost, and the
// broker sends it again).
func (c *Consumer) created(ctx context.Context, _ *pulsarpb.BaseCommand, epoch, conn uint64) error {
	c.l.mu.Lock()
	bound := c.l.bindLocked(epoch, conn)
	if bound {
		c.stats.Subscribed++
		c.consumed = 0
	}
	reg := c.l.reg
	c.l.mu.Unlock()
	if !bound {
		return nil
	}
	return ignoreLoss(reg.Send(ctx, command.Flow(reg.ID(), uint32(c.opts.ReceiverQueueSize))))
}

// ignoreLoss returns nil for a failure the link recovers from by itself:
// the consumer's loss, after which it subscribes again.
func ignoreLoss(err error) error {
	if lost(err) {
		return nil
	}
	return err
}

// pushLocked implements owner: messages.
func (c *Consumer) pushLocked(p pulsarconn.Push) func() {
	if p.Kind != pulsarconn.PushMessage {
		return nil
	}
	cmd := p.Command.GetMessage()
	id := command.FromData(cmd.GetMessageId())
	entry, err := message.Decode(p.Payload)
	switch {
	case errors.Is(err, message.ErrChecksum):
		c.stats.Corrupt++
		c.consumed++ // its permit is used up
		reg := c.l.reg
		return func() { _ = reg.Send(c.l.life, command.Redeliver(reg.ID(), id)) }
	case err != nil:
		// Not for this client (encrypted, ...): its permit is used up,
		// and it stays unacknowledged.
		c.stats.Skipped++
		c.consumed++
		return nil
	}
	acked := c.batches[id] // of a batch partly acknowledged before
	for i, m := range entry.Messages {
		mid := id
		if entry.Batched {
			mid = id.InBatch(int32(i), int32(len(entry.Messages)))
		}
		switch {
		case i < len(acked) && acked[i]:
			c.consumed++ // Ack returned nil for it: not again
			continue
		case m.Chunk.Count > 1:
			c.stats.Skipped++
			c.consumed++
			continue
		}
		c.queue = append(c.queue, received(&m, entry.Metadata, mid, cmd.GetRedeliveryCount()))
	}
	if c.arrived != nil {
		close(c.arrived)
		c.arrived = nil
	}
	return nil
}

// received is the Message of m, decoded from an entry with metadata md.
func received(m *message.Message, md *pulsarpb.MessageMetadata, id MessageID, redeliveries uint32) *Message {
	r := &Message{
		Payload:         slices.Clone(m.Payload),
		Key:             m.Key,
		Properties:      m.Properties,
		ID:              id,
		ProducerName:    md.GetProducerName(),
		SequenceID:      m.SequenceID,
		PublishTime:     time.UnixMilli(int64(m.PublishTime)),
		RedeliveryCount: redeliveries,
	}
	if m.EventTime != 0 {
		r.EventTime = time.UnixMilli(int64(m.EventTime))
	}
	return r
}

// lostLocked implements owner: what the queue holds is dropped (the
// broker sends it again); at the end, Receive fails.
func (c *Consumer) lostLocked(end error) func() {
	c.stats.Dropped += len(c.queue)
	c.queue = nil
	if end != nil && c.arrived != nil {
		close(c.arrived)
		c.arrived = nil
	}
	return nil
}

// Receive returns the next message, waiting for one within ctx. Once the
// application has taken half the receiver queue, Receive grants the
// broker that many permits again (FLOW). It fails with ErrClosed after
// Close.
func (c *Consumer) Receive(ctx context.Context) (*Message, error) {
	for {
		c.l.mu.Lock()
		if err := c.l.err; err != nil {
			c.l.mu.Unlock()
			return nil, err
		}
		if len(c.queue) > 0 {
			m := c.queue[0]
			c.queue = c.queue[1:]
			c.consumed++
			var flow int
			reg := c.l.reg
			if c.l.conn != 0 && c.consumed >= max(c.opts.ReceiverQueueSize/2, 1) {
				flow, c.consumed = c.consumed, 0
			}
			c.l.mu.Unlock()
			// A FLOW lost with the connection is no loss: the
			// re-subscription grants the whole queue again. One not
			// sent (ctx ended) is sent by a later Receive.
			if flow > 0 && ignoreLoss(reg.Send(ctx, command.Flow(reg.ID(), uint32(flow)))) != nil {
				c.l.mu.Lock()
				c.consumed += flow
				c.l.mu.Unlock()
			}
			return m, nil
		}
		if c.arrived == nil {
			c.arrived = make(chan struct{})
		}
		arrived := c.arrived
		c.l.mu.Unlock()
		select {
		case <-arrived:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Ack acknowledges m and waits for the broker's confirmation
// (ACK_RESPONSE), within ctx. If the consumer is lost first, it
// acknowledges again once the consumer has subscribed again. Once Ack
// has returned nil, Receive does not return m again: a copy the broker
// sent before it had the Ack is dropped. A message of a batch is
// acknowledged to the broker with the last of its batch to be acknowledged
// (a broker acknowledges entries, not messages of a batch, unless told
// otherwise); Ack returns nil for the others at once.
func (c *Consumer) Ack(ctx context.Context, m *Message) error {
	id := m.ID
	if id.BatchSize > 1 {
		c.l.mu.Lock()
		whole := c.ackInBatchLocked(id)
		c.l.mu.Unlock()
		if !whole {
			return nil
		}
		id = id.WholeEntry()
	}
	for {
		at, err := c.l.waitReady(ctx)
		if err != nil {
			return err
		}
		// On the connection the consumer lives on: a broker ignores an
		// ACK for a consumer it does not have, and would never answer;
		// so one that crossed the broker's CLOSE_CONSUMER is given up
		// when the consumer is lost, and sent again once it subscribed
		// again.
		_, err = requestOn(ctx, at, command.Ack(at.reg.ID(), id))
		if err == nil {
			c.purge(id)
			return nil
		}
		if !pulsarconn.IsRetryable(err) || ctx.Err() != nil {
			return err
		}
		// Lost: wait for the consumer to be told, and subscribe again.
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			return err
		}
	}
}

// ackInBatchLocked records that id, a message of a batch, is
// acknowledged, and reports whether its whole batch now is.
func (c *Consumer) ackInBatchLocked(id MessageID) bool {
	entry := id.WholeEntry()
	acked := c.batches[entry]
	if acked == nil {
		if c.batches == nil {
			c.batches = make(map[MessageID][]bool)
		}
		acked = make([]bool, id.BatchSize)
		c.batches[entry] = acked
	}
	if id.BatchIndex >= 0 && int(id.BatchIndex) < len(acked) {
		acked[id.BatchIndex] = true
	}
	return !slices.Contains(acked, false)
}

// purge drops the queued copies of entry, acknowledged: requestOn
// returned after every push the broker sent before its answer, so any
// copy it sent is queued.
func (c *Consumer) purge(entry MessageID) {
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	delete(c.batches, entry)
	n := len(c.queue)
	c.queue = slices.DeleteFunc(c.queue, func(m *Message) bool { return m.ID.WholeEntry() == entry })
	c.stats.Purged += n - len(c.queue)
	c.consumed += n - len(c.queue) // their permits are used up
}

// Close closes the consumer on the broker (CLOSE_CONSUMER) within ctx.
// The messages received and not acknowledged go back to the subscription.
// Receive and Ack fail with ErrClosed once Close has begun.
func (c *Consumer) Close(ctx context.Context) error { return c.l.close(ctx) }

// requestOn sends cmd, a request of the consumer (an ACK with a request
// id), on the connection the consumer lives on (at) and waits for the
// answer within ctx. It is Registration.Request's binding (it fails,
// with an error matching ErrDisconnected, if that connection is not, or
// is no longer, the current one, or once the consumer is lost) with
// RequestAsync's order: it returns only once every push the broker sent
// before the answer has been handled, so that the copies of a message
// the broker sent before it had its ACK are in the queue, where Ack
// drops them.
func requestOn(ctx context.Context, at bound, cmd *pulsarpb.BaseCommand) (*pulsarpb.BaseCommand, error) {
	b, conn := at.b, at.conn
	type answer struct {
		resp *pulsarpb.BaseCommand
		err  error
	}
	ch := make(chan answer, 1)
	if b.Connection() != conn || conn == 0 {
		return nil, fmt.Errorf("%w: connection %d replaced", pulsarconn.ErrDisconnected, conn)
	}
	// RequestAsync waits for the connection, or for room in the write
	// queue, before it sends: after a loss, for the next connection,
	// which for a broker killed never comes. The wait ends when the
	// consumer is lost.
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-at.gone:
			cancel()
		case <-rctx.Done():
		}
	}()
	if err := b.RequestAsync(rctx, cmd, func(resp *pulsarpb.BaseCommand, err error) { ch <- answer{resp, err} }); err != nil {
		if ctx.Err() == nil && rctx.Err() != nil {
			return nil, fmt.Errorf("%w: the consumer was lost (%w)", pulsarconn.ErrDisconnected, err)
		}
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
	case <-at.gone:
		return nil, fmt.Errorf("%w: the consumer was lost", pulsarconn.ErrDisconnected)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
