package command

import (
	"fmt"
	"math"

	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// MessageID is a message's position in a topic: the ledger and entry the
// broker stored it in, the partition of a partitioned topic, and, for a
// message of a batch, its index in the batch and the batch's size.
//
// Partition and BatchIndex are -1 when they do not apply (a topic that is
// not partitioned; a message that is not part of a batch), as on the wire,
// so build one with NewMessageID or FromData rather than a literal whose
// zero Partition and BatchIndex mean partition 0 and the first message of
// a batch. BatchSize is 0 when unknown.
type MessageID struct {
	Ledger     uint64
	Entry      uint64
	Partition  int32
	BatchIndex int32
	BatchSize  int32
}

// Earliest and Latest are the broker's special positions before the first
// and after the last message of a topic, for SubscribeOptions.StartMessageID
// and SeekMessageID.
var (
	Earliest = NewMessageID(math.MaxUint64, math.MaxUint64)
	Latest   = NewMessageID(math.MaxInt64, math.MaxInt64)
)

// NewMessageID returns the id of the message at entry of ledger, in a topic
// that is not partitioned, not part of a batch.
func NewMessageID(ledger, entry uint64) MessageID {
	return MessageID{Ledger: ledger, Entry: entry, Partition: -1, BatchIndex: -1}
}

// FromData converts a message id received from the broker (in a MESSAGE,
// SEND_RECEIPT or GET_LAST_MESSAGE_ID_RESPONSE). A nil d gives the zero
// position NewMessageID(0, 0).
func FromData(d *pulsarpb.MessageIdData) MessageID {
	return MessageID{
		Ledger:     d.GetLedgerId(),
		Entry:      d.GetEntryId(),
		Partition:  d.GetPartition(),
		BatchIndex: d.GetBatchIndex(),
		BatchSize:  d.GetBatchSize(),
	}
}

// Data converts id to its wire form: ledger and entry always, the
// partition and batch index when they are not -1, the batch size when it
// is above 0.
func (id MessageID) Data() *pulsarpb.MessageIdData {
	d := &pulsarpb.MessageIdData{LedgerId: &id.Ledger, EntryId: &id.Entry}
	if id.Partition >= 0 {
		d.Partition = &id.Partition
	}
	if id.BatchIndex >= 0 {
		d.BatchIndex = &id.BatchIndex
	}
	if id.BatchSize > 0 {
		d.BatchSize = &id.BatchSize
	}
	return d
}

// InBatch returns the id of the message at index of a batch of size
// messages stored at id's entry.
func (id MessageID) InBatch(index, size int32) MessageID {
	id.BatchIndex, id.BatchSize = index, size
	return id
}

// WholeEntry returns the id of the whole entry that holds id: its batch index
// and size removed.
func (id MessageID) WholeEntry() MessageID {
	id.BatchIndex, id.BatchSize = -1, 0
	return id
}

// String formats id as ledger:entry:partition:batchIndex, as Pulsar's
// tools print message ids.
func (id MessageID) String() string {
	return fmt.Sprintf("%d:%d:%d:%d", id.Ledger, id.Entry, id.Partition, id.BatchIndex)
}

// ackData is the form of id in an ACK: ledger and entry, and, for a message
// of a batch of known size, the ack set: one bit per message of the batch,
// set for the messages still unacknowledged. cumulative clears the bits up
// to and including id's index; otherwise only id's own bit is cleared. An
// ack that leaves no bit set has no ack set: it acknowledges the whole
// entry, as the broker moves a cursor past an entry only for such an ack.
func (id MessageID) ackData(cumulative bool) *pulsarpb.MessageIdData {
	d := &pulsarpb.MessageIdData{LedgerId: &id.Ledger, EntryId: &id.Entry}
	if id.BatchIndex < 0 || id.BatchSize <= 0 || id.BatchIndex >= id.BatchSize ||
		id.BatchSize == 1 || (cumulative && id.BatchIndex == id.BatchSize-1) {
		return d
	}
	d.AckSet = id.ackSet(func(i int32) bool { return i > id.BatchIndex || (!cumulative && i < id.BatchIndex) })
	return d
}

// seekData is the form of id in a SEEK: id.Data(), and, for a message of a
// batch of known size, the ack set with the bits of the batch's messages
// from id's index on set. The broker reads only ledger, entry and ack
// set: without one it starts at the entry's first message; a broker with
// batch-index acknowledgment enabled starts at the ack set's first.
func (id MessageID) seekData() *pulsarpb.MessageIdData {
	d := id.Data()
	if id.BatchIndex >= 0 && id.BatchSize > 0 && id.BatchIndex < id.BatchSize {
		d.AckSet = id.ackSet(func(i int32) bool { return i >= id.BatchIndex })
	}
	return d
}

// ackSet returns the bits of the messages of id's batch that want, one
// bit per message, 64 a word.
func (id MessageID) ackSet(want func(i int32) bool) []int64 {
	set := make([]int64, (id.BatchSize+63)/64)
	for i := range id.BatchSize {
		if want(i) {
			set[i/64] |= 1 << (i % 64)
		}
	}
	return set
}

// entryData is the form of id naming a whole entry: ledger and entry only.
func (id MessageID) entryData() *pulsarpb.MessageIdData {
	return &pulsarpb.MessageIdData{LedgerId: &id.Ledger, EntryId: &id.Entry}
}
