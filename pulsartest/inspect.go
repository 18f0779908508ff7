package pulsartest

import (
	"context"
	"encoding/binary"
	"slices"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// Direction says which way a frame went.
type Direction int

const (
	// In is a frame the server read from a client.
	In Direction = iota + 1
	// Out is a frame the server queued for a client.
	Out
)

// String names the direction.
func (d Direction) String() string {
	switch d {
	case In:
		return "in"
	case Out:
		return "out"
	}
	return "Direction(?)"
}

// FrameRecord is one frame in the server's log (see Frames).
type FrameRecord struct {
	// Seq numbers the records of the server from 1, in the order they
	// were logged.
	Seq uint64
	// Conn is the ID of the connection the frame went over.
	Conn uint64
	// Dir is In for a frame read, Out for a frame sent.
	Dir Direction
	// Type is the command's type; 0 for bytes that do not parse as a
	// frame (SendRaw, SendGarbage).
	Type pulsarpb.BaseCommand_Type
	// Command is a copy of the command (shared by the records returned:
	// do not modify it); nil when it did not parse.
	Command *pulsarpb.BaseCommand
	// Payload reports whether the frame carried a message (SEND, MESSAGE).
	Payload bool
	// Time is the server's clock when the frame was logged.
	Time time.Time
}

// frameLog is the server's log of frames, with its own lock: frames are
// logged on the write path, where Server.mu may or may not be held.
type frameLog struct {
	mu      sync.Mutex
	limit   int
	seq     uint64
	recs    []logRec
	changed chan struct{}
	observe func(FrameRecord) // WithFrameObserver; nil: none
}

// logRec is a FrameRecord whose command is decoded only when a test looks
// at it: the read and write paths copy the command's bytes, and nothing
// more.
type logRec struct {
	FrameRecord
	raw []byte // the command's bytes, until decoded
}

// addUnparsed logs bytes sent that are not a whole frame (SendRaw).
func (l *frameLog) addUnparsed(c *Conn) {
	if l.limit == 0 && l.observe == nil {
		return
	}
	l.append(c, logRec{FrameRecord: FrameRecord{Conn: c.id, Dir: Out}})
}

// addIn logs a frame read, given its body: its command's bytes are kept,
// and decoded only when a test looks at them (a decoded command costs
// ten times its bytes, and a server keeps thousands of records).
func (l *frameLog) addIn(c *Conn, body []byte, payload bool) {
	if l.limit == 0 && l.observe == nil {
		return
	}
	rec := logRec{FrameRecord: FrameRecord{Conn: c.id, Dir: In, Payload: payload}}
	n := binary.BigEndian.Uint32(body) // Parse checked it
	rec.raw = slices.Clone(body[4 : 4+n])
	l.append(c, rec)
}

// addRaw logs a frame sent, given its body (the bytes after the total
// size).
func (l *frameLog) addRaw(c *Conn, body []byte) {
	if l.limit == 0 && l.observe == nil {
		return
	}
	rec := logRec{FrameRecord: FrameRecord{Conn: c.id, Dir: Out}}
	if len(body) >= 4 { // else not a frame: logged with no command
		if n := binary.BigEndian.Uint32(body); uint64(n) <= uint64(len(body)-4) {
			rec.raw = slices.Clone(body[4 : 4+n])
			rec.Payload = uint64(n)+4 < uint64(len(body))
		}
	}
	l.append(c, rec)
}

func (l *frameLog) append(c *Conn, rec logRec) {
	now := c.srv.x.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	rec.Seq = l.seq
	rec.Time = now
	if l.observe != nil {
		l.observe(rec.decoded())
	}
	if l.limit == 0 {
		return
	}
	l.recs = append(l.recs, rec)
	if l.limit > 0 && len(l.recs) > 2*l.limit {
		l.recs = slices.Delete(l.recs, 0, len(l.recs)-l.limit)
	}
	if l.changed != nil {
		close(l.changed)
		l.changed = nil
	}
}

// decoded is the record with its command decoded.
func (r logRec) decoded() FrameRecord {
	if r.raw != nil {
		cmd := new(pulsarpb.BaseCommand)
		if proto.Unmarshal(r.raw, cmd) == nil && cmd.Type != nil {
			r.Command, r.Type = cmd, cmd.GetType()
		} else {
			r.Payload = false
		}
	}
	return r.FrameRecord
}

// snapshot returns the records kept, oldest first, from sequence number
// from on.
func (l *frameLog) snapshotLocked(from uint64) []FrameRecord {
	recs := l.recs
	if l.limit > 0 && len(recs) > l.limit {
		recs = recs[len(recs)-l.limit:]
	}
	i, _ := slices.BinarySearchFunc(recs, from, func(r logRec, seq uint64) int {
		switch {
		case r.Seq < seq:
			return -1
		case r.Seq > seq:
			return 1
		}
		return 0
	})
	out := make([]FrameRecord, 0, len(recs)-i)
	for j := range recs[i:] {
		r := &recs[i+j]
		if r.raw != nil {
			r.FrameRecord = r.decoded()
			r.raw = nil
		}
		out = append(out, r.FrameRecord)
	}
	return out
}

// Frames returns the frames the server read and sent, oldest first: the
// most recent ones, up to WithRecordLimit (DefaultRecordLimit). Frames
// sent are logged when queued, in the order they will be written.
func (s *Server) Frames() []FrameRecord {
	s.x.log.mu.Lock()
	defer s.x.log.mu.Unlock()
	return s.x.log.snapshotLocked(0)
}

// WaitFrame returns the first frame of the log (see Frames) for which
// match is true, waiting for one to be logged if none is yet, until ctx
// ends. match runs without the server's locks held.
func (s *Server) WaitFrame(ctx context.Context, match func(FrameRecord) bool) (FrameRecord, error) {
	l := &s.x.log
	var next uint64
	for {
		l.mu.Lock()
		recs := l.snapshotLocked(next)
		if len(recs) == 0 {
			if l.changed == nil {
				l.changed = make(chan struct{})
			}
			ch := l.changed
			l.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return FrameRecord{}, ctx.Err()
			}
		}
		l.mu.Unlock()
		for _, r := range recs {
			if match(r) {
				return r, nil
			}
		}
		next = recs[len(recs)-1].Seq + 1
	}
}

// FrameOf matches the frames of type t going in direction dir, for
// WaitFrame.
func FrameOf(dir Direction, t pulsarpb.BaseCommand_Type) func(FrameRecord) bool {
	return func(r FrameRecord) bool { return r.Dir == dir && r.Type == t }
}

// decodeCommand decodes the command of a frame body (the bytes after the
// total size), or returns nil.
func decodeCommand(body []byte) *pulsarpb.BaseCommand {
	if len(body) < 4 {
		return nil
	}
	n := binary.BigEndian.Uint32(body)
	if uint64(n) > uint64(len(body)-4) {
		return nil
	}
	cmd := new(pulsarpb.BaseCommand)
	if proto.Unmarshal(body[4:4+n], cmd) != nil || cmd.Type == nil {
		return nil
	}
	return cmd
}

// subKey names a subscription: the topic's full name and the
// subscription's name.
type subKey struct{ topic, sub string }

// subLog is what the server recorded of a subscription.
type subLog struct {
	deliveries   []Delivery
	acks         []AckRecord
	redeliveries []RedeliveryRequest
}

// Delivery is one MESSAGE the server sent to a consumer.
type Delivery struct {
	// Conn is the connection's ID, Consumer the consumer's.
	Conn, Consumer uint64
	// LedgerID and EntryID are the message id (a batch is one entry).
	LedgerID, EntryID uint64
	// RedeliveryCount is the redelivery_count sent: 0 the first time.
	RedeliveryCount uint32
	// Time is the server's clock when the message was sent.
	Time time.Time
}

// AckRecord is one ACK the server read from a consumer.
type AckRecord struct {
	// Conn is the connection's ID, Consumer the consumer's.
	Conn, Consumer uint64
	// Type is Individual or Cumulative.
	Type pulsarpb.CommandAck_AckType
	// MessageIDs are copies of the ids acknowledged (with their ack_set
	// for a batch acknowledged in part).
	MessageIDs []*pulsarpb.MessageIdData
	// Time is the server's clock when the ACK was read.
	Time time.Time
}

// RedeliveryRequest is one REDELIVER_UNACKNOWLEDGED_MESSAGES the server
// read from a consumer.
type RedeliveryRequest struct {
	// Conn is the connection's ID, Consumer the consumer's.
	Conn, Consumer uint64
	// MessageIDs are copies of the ids named; none means all unacked.
	MessageIDs []*pulsarpb.MessageIdData
	// Time is the server's clock when the request was read.
	Time time.Time
}

func (x *serverExt) subLogLocked(topicName, sub string) *subLog {
	k := subKey{topicName, sub}
	l := x.subLogs[k]
	if l == nil {
		l = &subLog{}
		x.subLogs[k] = l
	}
	return l
}

// capped appends v to list, keeping at most limit records (< 0: all).
func capped[T any](list []T, v T, limit int) []T {
	if limit == 0 {
		return list
	}
	list = append(list, v)
	if limit > 0 && len(list) > 2*limit {
		list = slices.Delete(list, 0, len(list)-limit)
	}
	return list
}

func lastN[T any](list []T, limit int) []T {
	if limit > 0 && len(list) > limit {
		list = list[len(list)-limit:]
	}
	return slices.Clone(list)
}

// deliveredLocked records a MESSAGE sent to cons.
func (x *serverExt) deliveredLocked(cons *consumer, t *topic, e *entry, redeliveries uint32) {
	if x.limit == 0 {
		return
	}
	l := x.subLogLocked(t.name, cons.sub.name)
	l.deliveries = capped(l.deliveries, Delivery{
		Conn:            cons.conn.id,
		Consumer:        cons.id,
		LedgerID:        t.ledgerID,
		EntryID:         e.id,
		RedeliveryCount: redeliveries,
		Time:            x.now(),
	}, x.limit)
}

// recordSubscriptionCommandLocked records the ACKs and redelivery requests
// read, under the subscription of their consumer.
func (x *serverExt) recordSubscriptionCommandLocked(c *Conn, cmd *pulsarpb.BaseCommand) {
	if x.limit == 0 {
		return
	}
	clone := func(ids []*pulsarpb.MessageIdData) []*pulsarpb.MessageIdData {
		out := make([]*pulsarpb.MessageIdData, len(ids))
		for i, id := range ids {
			out[i] = proto.CloneOf(id)
		}
		return out
	}
	switch cmd.GetType() {
	case pulsarpb.BaseCommand_ACK:
		ack := cmd.GetAck()
		cons := c.consumers[ack.GetConsumerId()]
		if cons == nil {
			return
		}
		l := x.subLogLocked(cons.sub.topic.name, cons.sub.name)
		l.acks = capped(l.acks, AckRecord{
			Conn: c.id, Consumer: cons.id, Type: ack.GetAckType(),
			MessageIDs: clone(ack.GetMessageId()), Time: x.now(),
		}, x.limit)
	case pulsarpb.BaseCommand_REDELIVER_UNACKNOWLEDGED_MESSAGES:
		r := cmd.GetRedeliverUnacknowledgedMessages()
		cons := c.consumers[r.GetConsumerId()]
		if cons == nil {
			return
		}
		l := x.subLogLocked(cons.sub.topic.name, cons.sub.name)
		l.redeliveries = capped(l.redeliveries, RedeliveryRequest{
			Conn: c.id, Consumer: cons.id, MessageIDs: clone(r.GetMessageIds()), Time: x.now(),
		}, x.limit)
	}
}

// subLogOf returns the log of a subscription, or nil.
func (s *Server) subLogOf(topicName, sub string) *subLog {
	name, _, ok := parseTopic(topicName)
	if !ok {
		return nil
	}
	return s.x.subLogs[subKey{name, sub}]
}

// Deliveries returns the MESSAGE frames the server sent to the consumers
// of a subscription, oldest first (the most recent, up to
// WithRecordLimit). A redelivered message appears once per delivery.
func (s *Server) Deliveries(topicName, sub string) []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.subLogOf(topicName, sub); l != nil {
		return lastN(l.deliveries, s.x.limit)
	}
	return nil
}

// Acks returns the ACKs the server read from the consumers of a
// subscription, oldest first.
func (s *Server) Acks(topicName, sub string) []AckRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.subLogOf(topicName, sub); l != nil {
		return lastN(l.acks, s.x.limit)
	}
	return nil
}

// Redeliveries returns the REDELIVER_UNACKNOWLEDGED_MESSAGES the server
// read from the consumers of a subscription, oldest first.
func (s *Server) Redeliveries(topicName, sub string) []RedeliveryRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.subLogOf(topicName, sub); l != nil {
		return lastN(l.redeliveries, s.x.limit)
	}
	return nil
}

// SubscriptionState is a snapshot of a subscription's cursor (see
// Subscription). Entry ids are those of the topic's ledger, from 0.
type SubscriptionState struct {
	// Topic is the topic's full name; Name the subscription's.
	Topic, Name string
	// Type is the subscription type of the consumers attached last.
	Type pulsarpb.CommandSubscribe_SubType
	// Durable is false for a reader's (non-durable) subscription.
	Durable bool
	// ReadPosition is the next entry never dispatched yet.
	ReadPosition uint64
	// MarkDelete is the mark-delete position: every entry up to it is
	// acknowledged; -1 when none is.
	MarkDelete int64
	// Acked are the entries acknowledged individually after MarkDelete.
	Acked []uint64
	// Unacked are the entries delivered and not acknowledged yet.
	Unacked []uint64
	// ToRedeliver are the entries waiting to be sent again.
	ToRedeliver []uint64
	// Delayed are the entries held back until their deliver_at_time
	// (see WithDelayedDelivery).
	Delayed []uint64
	// Backlog is the number of entries not acknowledged.
	Backlog int
	// Consumers are the consumers attached, in the order they attached.
	Consumers []ConsumerState
}

// ConsumerState is one consumer of a SubscriptionState.
type ConsumerState struct {
	// Conn is the connection's ID, ID the consumer's.
	Conn, ID uint64
	// Permits is what is left of the FLOW permits; a batch takes one per
	// message, so it may be negative.
	Permits int64
	// Unacked is how many entries were delivered to it and not
	// acknowledged yet.
	Unacked int
}

// Subscription returns a snapshot of a subscription, and false when there
// is no such subscription.
func (s *Server) Subscription(topicName, sub string) (SubscriptionState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.subscriptionLocked(topicName, sub)
}

func (s *Server) subscriptionLocked(topicName, subName string) (SubscriptionState, bool) {
	name, _, ok := parseTopic(topicName)
	if !ok {
		return SubscriptionState{}, false
	}
	t := s.topics[name]
	if t == nil {
		return SubscriptionState{}, false
	}
	sub := t.subs[subName]
	if sub == nil {
		return SubscriptionState{}, false
	}
	st := SubscriptionState{
		Topic:        name,
		Name:         subName,
		Type:         sub.subType,
		Durable:      sub.durable,
		ReadPosition: sub.next,
		MarkDelete:   int64(sub.markDelete) - 1,
		ToRedeliver:  slices.Clone(sub.redeliver),
		Delayed:      slices.Clone(sub.delayed),
		Backlog:      len(t.entries) - int(sub.markDelete) - len(sub.acked),
	}
	for id := range sub.acked {
		st.Acked = append(st.Acked, id)
	}
	slices.Sort(st.Acked)
	unacked := make(map[*consumer]int)
	for id, cons := range sub.pending {
		st.Unacked = append(st.Unacked, id)
		unacked[cons]++
	}
	slices.Sort(st.Unacked)
	for _, cons := range sub.consumers {
		st.Consumers = append(st.Consumers, ConsumerState{
			Conn: cons.conn.id, ID: cons.id, Permits: cons.permits, Unacked: unacked[cons],
		})
	}
	return st, true
}

// WaitSubscription blocks until the subscription exists and cond, given
// its snapshot, is true, or ctx ends. cond runs with the server's lock
// held: it must not call the server.
func (s *Server) WaitSubscription(ctx context.Context, topicName, sub string, cond func(SubscriptionState) bool) error {
	return s.waitFor(ctx, func() bool {
		st, ok := s.subscriptionLocked(topicName, sub)
		return ok && cond(st)
	})
}

// WaitSubscribers blocks until exactly n consumers are attached to a
// subscription (0: until it has none, or does not exist), or ctx ends.
func (s *Server) WaitSubscribers(ctx context.Context, topicName, sub string, n int) error {
	return s.waitFor(ctx, func() bool {
		st, ok := s.subscriptionLocked(topicName, sub)
		if !ok {
			return n == 0
		}
		return len(st.Consumers) == n
	})
}
