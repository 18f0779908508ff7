package core

import (
	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// PushKind says what a Push carries.
type PushKind uint8

// The kinds of push routed to registered producers and consumers.
const (
	// PushReceipt: SEND_RECEIPT, for a producer.
	PushReceipt PushKind = iota + 1
	// PushSendError: SEND_ERROR, for a producer.
	PushSendError
	// PushMessage: MESSAGE with its payload, for a consumer.
	PushMessage
	// PushActiveConsumerChange: ACTIVE_CONSUMER_CHANGE, for a consumer.
	PushActiveConsumerChange
	// PushReachedEndOfTopic: REACHED_END_OF_TOPIC, for a consumer.
	PushReachedEndOfTopic
	// PushClosed: the broker closed the producer or consumer
	// (CLOSE_PRODUCER / CLOSE_CONSUMER), possibly naming the broker that
	// now owns the topic.
	PushClosed
	// PushTopicMigrated: TOPIC_MIGRATED, with the new cluster's URLs.
	PushTopicMigrated
	// PushDisconnected: the connection was lost (Err says why; it matches
	// ErrDisconnected). The broker-side producer or consumer is gone; after
	// a reconnect the owner re-creates it.
	PushDisconnected
	// PushEnded: the registration has ended for good, and this is the last
	// push its Handler gets. The core sends it when the Conn ends for good:
	// at FinishClose (Err matches ErrClosed) or when the broker refused
	// the credentials (Err matches ErrClosed and ErrAuthenticationError);
	// the driver also sends it when a registration is removed.
	PushEnded
)

var pushKindNames = [...]string{
	PushReceipt:              "Receipt",
	PushSendError:            "SendError",
	PushMessage:              "Message",
	PushActiveConsumerChange: "ActiveConsumerChange",
	PushReachedEndOfTopic:    "ReachedEndOfTopic",
	PushClosed:               "Closed",
	PushTopicMigrated:        "TopicMigrated",
	PushDisconnected:         "Disconnected",
	PushEnded:                "Ended",
}

// String implements fmt.Stringer.
func (k PushKind) String() string {
	if int(k) < len(pushKindNames) && pushKindNames[k] != "" {
		return pushKindNames[k]
	}
	return "PushKind(?)"
}

// Push is one event routed to a registered producer or consumer.
type Push struct {
	Kind PushKind
	// ID is the producer or consumer id it was routed by.
	ID uint64
	// Command is the broker's command; nil for PushDisconnected and
	// PushEnded.
	Command *pulsarpb.BaseCommand
	// Payload is set for PushMessage. Payload.ChecksumOK is the checksum
	// verdict; a consumer should not trust a message without it.
	Payload *frame.Payload
	// BrokerURL and BrokerURLTLS name where the producer or consumer
	// should go next (PushClosed with an assigned broker,
	// PushTopicMigrated); empty when the broker named none.
	BrokerURL, BrokerURLTLS string
	// Err is set for PushDisconnected, PushEnded and PushSendError.
	Err error

	// frame is the frame Command and Payload came from, for Release.
	frame *frame.Frame
}

// Release hands the push's Command and Payload back to be reused for a
// later push, which saves their allocations on the hot paths: a
// PushReceipt and a PushMessage (its frame's bytes included) then cost no
// allocation. Call it once, when done with the push, from the one holder
// of the push and of every copy of it: afterwards neither Command nor
// Payload, nor anything they point to (Payload.Data and Metadata, a
// message id), may be used. A Handler that keeps what it needs copies it
// first; strings taken from the command stay valid. Not calling Release
// is always safe: the garbage collector takes them. For other kinds of
// push it does nothing.
func (p Push) Release() { p.frame.Release() }

// Handler receives the pushes of one registered producer or consumer.
//
// HandlePush is called from the connection's goroutines, one push at a
// time per connection and in the order the broker sent them; it must not
// block for long, and must not call Stop.
type Handler interface {
	HandlePush(Push)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(Push)

// HandlePush calls f(p).
func (f HandlerFunc) HandlePush(p Push) { f(p) }
