package refclient

import (
	"errors"
	"fmt"
	"time"
)

// Errors of this package; match them with errors.Is.
var (
	// ErrClosed: the producer or consumer was closed (Close).
	ErrClosed = errors.New("refclient: closed")
)

// errUnsupported: a message this reference client does not decode.
var errUnsupported = errors.New("refclient: batched or compressed message")

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

// MessageID is where the broker stored a message: the ledger and entry of
// a non-partitioned topic.
type MessageID struct {
	LedgerID, EntryID uint64
}

// String returns "ledger:entry".
func (id MessageID) String() string { return fmt.Sprintf("%d:%d", id.LedgerID, id.EntryID) }
