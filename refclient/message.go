package refclient

import (
	"errors"
	"time"

	"github.com/pulsarconn/pulsarconn/proto/command"
)

// Errors of this package; match them with errors.Is.
var (
	// ErrClosed: the producer or consumer was closed (Close).
	ErrClosed = errors.New("refclient: closed")
)

// Message is a message to send (Payload, Key, Properties, EventTime) or
// one received, which has every field set by the consumer.
type Message struct {
	Payload    []byte
	Key        string
	Properties map[string]string
	EventTime  time.Time // zero: unset

	// Set on received messages.
	ID              MessageID
	ProducerName    string
	SequenceID      uint64
	PublishTime     time.Time
	RedeliveryCount uint32
}

// MessageID is where the broker stored a message: its ledger and entry,
// and for a message of a batch, its index in the batch and the batch's
// size.
type MessageID = command.MessageID
