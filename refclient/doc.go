// Package refclient is a reference producer and consumer built on
// pulsarconn's public API only — the Client, Registrations, and the
// message codec (proto/message) and command builders (proto/command): a
// starting point to read, copy and grow, not a full Pulsar client.
//
// A Producer looks its topic up with a pulsarconn.Client, registers on the
// Broker that serves it, creates the broker-side producer
// (Registration.Create with a PRODUCER; the answer gives its name and last
// sequence id), numbers its messages with sequence ids, publishes them on
// the connection it was created on (Registration.Publish), matches the
// broker's receipts and send errors to them by sequence id, and keeps at
// most MaxPending without a receipt. A Consumer subscribes (SUBSCRIBE),
// grants the broker permits (FLOW: the receiver queue at first, then half
// of it each time Receive has taken that many), splits batches and
// decompresses, and acknowledges with ACK, waiting for the broker's
// confirmation.
//
// Both re-create their broker-side object when it is lost — a
// reconnection (PushDisconnected), the broker's close (PushClosed, as
// when a topic is unloaded or moves to another broker), a migration, the
// end of the registration (PushEnded: the Broker was stopped), and for
// the producer a SEND_ERROR — looking the topic up again when it may have
// moved, possibly onto another Broker, or when an attempt to reconnect to
// its broker fails (a broker killed closes nothing: only a lookup tells
// where its topics went). The producer then sends again, in
// sequence-id order, every message without a receipt; the consumer drops
// what it had queued and not yet returned (the broker sends it again) and
// grants its permits again.
//
// # Delivery guarantees
//
// Pulsar is at-least-once, and so is this package. Precisely:
//
//   - Send returns nil only once the broker has stored the message. The
//     first copies of a producer's messages are stored in the order they
//     were sent.
//   - A message whose receipt was lost with the connection (or that was
//     pending when a SEND_ERROR came) is sent again, and may then be
//     stored twice: a second entry with the same producer name and
//     sequence id (which a broker with deduplication enabled drops).
//     ProducerStats.Resent counts these sends.
//   - A Send that fails before its message was written (ErrClosed, a
//     message too large, no room until ctx ended) stored nothing. A Send
//     whose ctx ends while it waits for the receipt leaves the message
//     pending: it may still be stored.
//   - Every message stored is received, as long as the consumer lives: a
//     message received but not acknowledged when the consumer is lost is
//     received again, with the same MessageID.
//   - Once Ack has returned nil, Receive does not return that message
//     again: a copy the broker sent before it had the Ack is dropped, and
//     so is, in a batch sent again, a message acknowledged before. So a
//     consumer that acknowledges each message before it receives the next
//     receives each stored message exactly once; the duplicates it can
//     see are the producer's second copies (another MessageID, the same
//     producer name and sequence id). Unless the broker forgets the
//     acknowledgement: one killed (kill -9) before it persisted the
//     subscription's position, which a broker does lazily, leaves the
//     broker that takes the topic over to send those messages again,
//     with the same MessageID.
//   - A message whose checksum does not match is not returned: the
//     consumer asks for it again (REDELIVER_UNACKNOWLEDGED_MESSAGES). On
//     an Exclusive or Failover subscription the broker then sends every
//     unacknowledged message again, so those already queued may be
//     received twice.
//
// The tests check these on pulsartest, across connection resets (in
// memory, under testing/synctest) and through internal/chaos's TCP proxy,
// which cuts frames in half.
//
// # What it leaves out
//
// Partitioned topics (a producer or consumer per partition, and message
// routing), schemas, batching and chunking on the producer side, chunked
// messages on the consumer side (skipped and left unacknowledged, as are
// encrypted ones: ConsumerStats.Skipped), encryption, transactions,
// producer access modes, a send timeout (Send waits as long as its
// context allows), negative acknowledgements, an ack timeout, cumulative
// and batch-index acknowledgements (a batch is acknowledged as one entry
// once all its messages are), seek, readers and non-durable
// subscriptions, dead-letter topics, the end of a terminated topic, and
// several topics or patterns per consumer. Its pauses between failed
// re-creations use the system clock (time.NewTimer), not the Client's:
// test it under testing/synctest, as its own tests do.
//
// See docs/refclient.md.
package refclient
