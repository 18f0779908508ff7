package pulsartest

import (
	"context"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// topic is one topic (or one partition of a partitioned topic): a single
// ledger whose entries are numbered from 0.
type topic struct {
	name      string
	partition int32
	ledgerID  uint64
	entries   []*entry
	// messages counts the messages of all entries (batches count each
	// message), for the index of broker entry metadata.
	messages uint64
	subs     map[string]*subscription
	// producers attached and ready; waiting are WaitForExclusive producers
	// queued behind them.
	producers map[*producer]struct{}
	waiting   []*producer
	// epoch is the topic epoch a broker gives each producer other than
	// Shared as it attaches: 0 for the first, then one more each time;
	// nil until the first.
	epoch *uint64
}

// nextEpoch moves the topic epoch on for a producer other than Shared
// attaching, and returns it.
func (t *topic) nextEpoch() *uint64 {
	if t.epoch == nil {
		t.epoch = new(uint64)
	} else {
		*t.epoch++
	}
	return proto.Uint64(*t.epoch)
}

// entry is one stored message (or batch), exactly as the producer sent it.
type entry struct {
	id          uint64
	metadata    []byte
	payload     []byte
	numMessages int32
	batched     bool
	publishTime uint64
	// key is what a Key_Shared subscription dispatches by: the ordering
	// key, else the partition key (empty when there is neither).
	key string
	// brokerTime and index are the broker entry metadata: when it was
	// stored (ms) and the index of its last message on the topic.
	brokerTime uint64
	index      uint64
	// deliverAt is the MessageMetadata's deliver_at_time (ms since the
	// epoch; 0 when unset), for the whole entry, batch or not.
	deliverAt int64
}

// Message is one stored message, as Server.Stored returns it.
type Message struct {
	// LedgerID and EntryID are its message id.
	LedgerID, EntryID uint64
	// Metadata is the raw MessageMetadata protobuf, as the producer sent it.
	Metadata []byte
	// Payload is the payload, as the producer sent it (possibly a batch,
	// possibly compressed).
	Payload []byte
}

// parseTopic validates and normalises a topic name as a broker does: a
// short name "t" is "persistent://public/default/t", "tenant/ns/t" is
// "persistent://tenant/ns/t". It returns the full name and the partition
// index ("...-partition-3" is partition 3; -1 when not a partition).
func parseTopic(name string) (string, int32, bool) {
	if name == "" {
		return "", -1, false
	}
	full := name
	if domain, rest, ok := strings.Cut(name, "://"); ok {
		if domain != "persistent" && domain != "non-persistent" {
			return "", -1, false
		}
		parts := strings.SplitN(rest, "/", 4)
		if len(parts) < 3 {
			return "", -1, false
		}
		for _, p := range parts {
			if p == "" {
				return "", -1, false
			}
		}
	} else {
		parts := strings.Split(name, "/")
		switch len(parts) {
		case 1:
			full = "persistent://public/default/" + name
		case 3:
			full = "persistent://" + name
		default:
			return "", -1, false
		}
		for _, p := range parts {
			if p == "" {
				return "", -1, false
			}
		}
	}
	partition := int32(-1)
	if i := strings.LastIndex(full, "-partition-"); i >= 0 {
		if n, err := strconv.ParseInt(full[i+len("-partition-"):], 10, 32); err == nil && n >= 0 {
			partition = int32(n)
		}
	}
	return full, partition, true
}

// topicLocked returns the topic named by a normalised name, creating it.
func (s *Server) topicLocked(name string, partition int32) *topic {
	t := s.topics[name]
	if t == nil {
		t = &topic{
			name:      name,
			partition: partition,
			ledgerID:  s.nextLedger,
			subs:      make(map[string]*subscription),
			producers: make(map[*producer]struct{}),
		}
		s.nextLedger++
		s.topics[name] = t
	}
	return t
}

// appendLocked stores a message on t; deliverLocked then sends it to the
// subscriptions with permits.
func (s *Server) appendLocked(t *topic, metadata, payload []byte) *entry {
	var md pulsarpb.MessageMetadata
	_ = proto.Unmarshal(metadata, &md) // stored as sent, even if malformed
	n := md.GetNumMessagesInBatch()
	if n < 1 {
		n = 1
	}
	t.messages += uint64(n)
	e := &entry{
		id:          uint64(len(t.entries)),
		metadata:    metadata,
		payload:     payload,
		numMessages: n,
		batched:     md.NumMessagesInBatch != nil,
		publishTime: md.GetPublishTime(),
		key:         stickyKey(&md),
		brokerTime:  uint64(s.x.now().UnixMilli()),
		index:       t.messages - 1,
		deliverAt:   md.GetDeliverAtTime(),
	}
	t.entries = append(t.entries, e)
	s.changedLocked()
	return e
}

// deliverLocked dispatches what t's subscriptions may send.
func (s *Server) deliverLocked(t *topic) {
	for _, sub := range t.subs {
		s.dispatchLocked(sub)
	}
}

// Publish stores a message on a topic as if a producer had sent it, and
// delivers it to subscribers; metadata is the raw MessageMetadata. It
// returns the message id. The topic name must be valid.
func (s *Server) Publish(topicName string, metadata, payload []byte) *pulsarpb.MessageIdData {
	name, partition, ok := parseTopic(topicName)
	if !ok {
		panic("pulsartest: Publish: invalid topic name " + strconv.Quote(topicName))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.topicLocked(name, partition)
	e := s.appendLocked(t, append([]byte(nil), metadata...), append([]byte(nil), payload...))
	s.deliverLocked(t)
	return &pulsarpb.MessageIdData{
		LedgerId:  proto.Uint64(t.ledgerID),
		EntryId:   proto.Uint64(e.id),
		Partition: proto.Int32(t.partition),
	}
}

// Messages returns copies of the payloads stored on a topic, oldest first.
func (s *Server) Messages(topicName string) [][]byte {
	stored := s.Stored(topicName)
	out := make([][]byte, len(stored))
	for i, m := range stored {
		out[i] = m.Payload
	}
	return out
}

// Stored returns copies of the messages stored on a topic, oldest first.
func (s *Server) Stored(topicName string) []Message {
	name, _, ok := parseTopic(topicName)
	if !ok {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.topics[name]
	if t == nil {
		return nil
	}
	out := make([]Message, len(t.entries))
	for i, e := range t.entries {
		out[i] = Message{
			LedgerID: t.ledgerID,
			EntryID:  e.id,
			Metadata: append([]byte(nil), e.metadata...),
			Payload:  append([]byte(nil), e.payload...),
		}
	}
	return out
}

// WaitMessages blocks until at least n messages are stored on a topic, or
// ctx ends.
func (s *Server) WaitMessages(ctx context.Context, topicName string, n int) error {
	name, _, ok := parseTopic(topicName)
	if !ok {
		name = topicName
	}
	return s.waitFor(ctx, func() bool {
		t := s.topics[name]
		return t != nil && len(t.entries) >= n
	})
}

// Backlog reports how many entries of a topic a subscription has not
// acknowledged (a batch is one entry), and false when there is no such
// subscription.
func (s *Server) Backlog(topicName, subscriptionName string) (int, bool) {
	name, _, ok := parseTopic(topicName)
	if !ok {
		return 0, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.topics[name]
	if t == nil {
		return 0, false
	}
	sub := t.subs[subscriptionName]
	if sub == nil {
		return 0, false
	}
	return len(t.entries) - int(sub.markDelete) - len(sub.acked), true
}
