package pulsartest

import (
	"encoding/binary"
	"hash/fnv"
	"slices"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// subscription is a named cursor on a topic and the consumers attached to
// it. Every entry is in exactly one of: acked (below markDelete or in
// acked), pending (delivered, unacked), redeliver (to send again), or not
// yet dispatched (at or after next).
type subscription struct {
	name       string
	topic      *topic
	subType    pulsarpb.CommandSubscribe_SubType
	durable    bool
	consumers  []*consumer
	failover   failoverState // see failover.go
	next       uint64
	markDelete uint64
	acked      map[uint64]struct{}
	pending    map[uint64]*consumer
	// redeliver is sorted, so messages go out again oldest first.
	redeliver    []uint64
	redeliveries map[uint64]uint32
	// ackSets holds, for each batch partly acknowledged at batch index
	// level, the client's ack_set: bit i set means message i of the batch
	// is not acknowledged yet. A broker keeps it with the cursor and sends
	// it with the batch when it delivers it again, so that the client
	// skips what was acknowledged.
	ackSets map[uint64][]int64
	rr      int
	// seeking is set while SEEK disconnects the consumers: a non-durable
	// subscription outlives them then, as on a broker, so that the
	// consumers that subscribe again read from the position sought.
	seeking bool
	// delayed are the entries held back until their deliver_at_time
	// (Shared and Key_Shared only), sorted; delayTimer, when armed for
	// the time delayTarget (ms), releases them; lastTick is when it last
	// ran. See dispatchLocked.
	delayed     []uint64
	delayTimer  Timer
	delayTarget int64
	lastTick    int64
}

// consumer is a consumer attached to a connection under the client's id.
type consumer struct {
	id      uint64
	conn    *Conn
	sub     *subscription
	joined  *pulsarpb.CommandSubscribe // its SUBSCRIBE (name, priority)
	permits int64
	epoch   *uint64
	// name and metadata are the SUBSCRIBE's, for the admin API's stats.
	name     string
	metadata []*pulsarpb.KeyValue
}

func (sub *subscription) isAcked(id uint64) bool {
	if id < sub.markDelete {
		return true
	}
	_, ok := sub.acked[id]
	return ok
}

// position turns a message id into the entry it designates on t: ids of
// an older ledger (or -1, "earliest") come before the first entry, ids of
// a newer ledger (Long.MAX_VALUE, "latest") after the last.
func position(t *topic, id *pulsarpb.MessageIdData) uint64 {
	n := uint64(len(t.entries))
	ledger, entry := id.GetLedgerId(), id.GetEntryId()
	switch {
	case int64(ledger) < 0 || ledger < t.ledgerID:
		return 0
	case ledger > t.ledgerID:
		return n
	case int64(entry) < 0:
		return 0
	}
	return min(entry, n)
}

func (s *Server) handleSubscribeLocked(c *Conn, cmd *pulsarpb.BaseCommand) {
	req := cmd.GetSubscribe()
	rid := req.GetRequestId()
	name, partition, ok := parseTopic(req.GetTopic())
	if !ok {
		_ = c.Send(errorAnswer(cmd, pulsarpb.ServerError_InvalidTopicName, "Invalid topic name: "+strconv.Quote(req.GetTopic())))
		return
	}
	if c.consumers[req.GetConsumerId()] != nil {
		// Already attached: a broker answers a retried SUBSCRIBE with
		// success.
		_ = c.Send(success(rid))
		return
	}
	if s.topics[name] == nil && !req.GetForceTopicCreation() {
		_ = c.Send(errorAnswer(cmd, pulsarpb.ServerError_TopicNotFound, "Topic "+name+" does not exist"))
		return
	}
	t := s.topicLocked(name, partition)
	s.addSchemaIfNoneLocked(schemaKey(name, partition), req.GetSchema())
	sub := t.subs[req.GetSubscription()]
	if sub != nil && len(sub.consumers) > 0 {
		if sub.subType != req.GetSubType() {
			_ = c.Send(errorAnswer(cmd, pulsarpb.ServerError_ConsumerBusy, "Subscription is of different type"))
			return
		}
		if sub.subType == pulsarpb.CommandSubscribe_Exclusive {
			_ = c.Send(errorAnswer(cmd, pulsarpb.ServerError_ConsumerBusy, "Exclusive consumer is already connected"))
			return
		}
	}
	if sub == nil {
		start := uint64(len(t.entries))
		if req.GetInitialPosition() == pulsarpb.CommandSubscribe_Earliest {
			start = 0
		}
		if !req.GetDurable() && req.StartMessageId != nil {
			start = position(t, req.StartMessageId)
		}
		sub = newSubscription(t, req.GetSubscription(), req.GetDurable(), start)
	}
	sub.subType = req.GetSubType()
	cons := &consumer{id: req.GetConsumerId(), conn: c, sub: sub, name: req.GetConsumerName(), metadata: req.GetMetadata()}
	if req.ConsumerEpoch != nil {
		cons.epoch = proto.Uint64(req.GetConsumerEpoch())
	}
	cons.joined = req
	prev := sub.active()
	sub.consumers = append(sub.consumers, cons)
	c.consumers[cons.id] = cons
	// A broker tells each Failover consumer whether it is the active one
	// (failover.go).
	changed := s.failoverJoinedLocked(sub, cons, prev)
	_ = c.Send(success(rid))
	if changed {
		s.failoverChangedLocked(sub)
	}
	s.dispatchLocked(sub)
}

// newSubscription creates the subscription name on t with its cursor at
// entry start.
func newSubscription(t *topic, name string, durable bool, start uint64) *subscription {
	sub := &subscription{
		name:         name,
		topic:        t,
		durable:      durable,
		next:         start,
		markDelete:   start,
		acked:        make(map[uint64]struct{}),
		pending:      make(map[uint64]*consumer),
		redeliveries: make(map[uint64]uint32),
		ackSets:      make(map[uint64][]int64),
	}
	t.subs[name] = sub
	return sub
}

func activeConsumerChange(id uint64, active bool) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_ACTIVE_CONSUMER_CHANGE.Enum(),
		ActiveConsumerChange: &pulsarpb.CommandActiveConsumerChange{
			ConsumerId: proto.Uint64(id),
			IsActive:   proto.Bool(active),
		},
	}
}

// closeConsumer is the CLOSE_CONSUMER a broker pushes (request id -1).
func closeConsumer(id uint64, url, urlTLS string) *pulsarpb.BaseCommand {
	cc := &pulsarpb.CommandCloseConsumer{
		ConsumerId: proto.Uint64(id),
		RequestId:  proto.Uint64(noRequestID),
	}
	if url != "" {
		cc.AssignedBrokerServiceUrl = proto.String(url)
	}
	if urlTLS != "" {
		cc.AssignedBrokerServiceUrlTls = proto.String(urlTLS)
	}
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_CLOSE_CONSUMER.Enum(), CloseConsumer: cc}
}

// removeConsumerLocked detaches cons: its unacked messages go back to the
// subscription, to be sent again (to another consumer, or to the next one
// to attach). A non-durable subscription ends with its last consumer.
func (s *Server) removeConsumerLocked(cons *consumer) {
	delete(cons.conn.consumers, cons.id)
	sub := cons.sub
	i := slices.Index(sub.consumers, cons)
	if i < 0 {
		return
	}
	prev := sub.active()
	sub.consumers = slices.Delete(sub.consumers, i, i+1)
	for id, owner := range sub.pending {
		if owner == cons {
			s.redeliverLocked(sub, id, false)
		}
	}
	if sub.rr >= len(sub.consumers) {
		sub.rr = 0
	}
	if len(sub.consumers) == 0 {
		if !sub.durable && !sub.seeking {
			delete(sub.topic.subs, sub.name)
		}
		return
	}
	if sub.subType == pulsarpb.CommandSubscribe_Failover && sub.active() != prev {
		s.failoverChangedLocked(sub)
	}
	s.dispatchLocked(sub)
}

// redeliverLocked queues entry id to be sent again; counted says whether
// this return adds to the message's redelivery_count. A broker counts
// only what a consumer asks to have redelivered
// (REDELIVER_UNACKNOWLEDGED_MESSAGES) on a Shared or Key_Shared
// subscription: it keeps no count for Exclusive and Failover, and a
// consumer closing with messages unacknowledged is no redelivery.
func (s *Server) redeliverLocked(sub *subscription, id uint64, counted bool) {
	delete(sub.pending, id)
	if sub.isAcked(id) {
		return
	}
	i, found := slices.BinarySearch(sub.redeliver, id)
	if !found {
		sub.redeliver = slices.Insert(sub.redeliver, i, id)
		if counted {
			sub.redeliveries[id]++
		}
	}
}

// dispatchLocked pushes MESSAGE frames while there are messages to send
// and consumers with permits. A batch takes as many permits as it holds
// messages, as on a broker (permits may go below zero). On a Shared or
// Key_Shared subscription, an entry whose deliver_at_time is more than a
// tick ahead is held back instead (see WithDelayedDelivery).
func (s *Server) dispatchLocked(sub *subscription) {
	t := sub.topic
	delays := s.delaysLocked(sub)
	cutoff := s.releaseDelayedLocked(sub, delays)
	defer s.armDelayLocked(sub)
	for {
		id, again, ok := sub.peek()
		if !ok {
			return
		}
		e := t.entries[id]
		if delays && e.deliverAt > cutoff {
			if again {
				sub.redeliver = sub.redeliver[1:]
			} else {
				sub.next++
			}
			if i, found := slices.BinarySearch(sub.delayed, id); !found {
				sub.delayed = slices.Insert(sub.delayed, i, id)
			}
			continue
		}
		cons := sub.pick(e)
		if cons == nil {
			return
		}
		if again {
			sub.redeliver = sub.redeliver[1:]
		} else {
			sub.next++
		}
		cons.permits -= int64(e.numMessages)
		sub.pending[id] = cons
		s.sendMessageLocked(cons, t, e, sub.redeliveries[id], sub.ackSets[id])
	}
}

// peek returns the next entry to send: one to send again first, else the
// next one never sent.
func (sub *subscription) peek() (id uint64, again, ok bool) {
	for len(sub.redeliver) > 0 {
		id := sub.redeliver[0]
		if !sub.isAcked(id) {
			return id, true, true
		}
		sub.redeliver = sub.redeliver[1:]
	}
	for sub.next < uint64(len(sub.topic.entries)) {
		if !sub.isAcked(sub.next) {
			return sub.next, false, true
		}
		sub.next++
	}
	return 0, false, false
}

// pick chooses the consumer for entry e: the first attached for Exclusive
// and Failover, round-robin among those with permits for Shared, and for
// Key_Shared the consumer its key hashes to, so that a key's messages all
// go to one consumer, in order, while the consumers stay the same. (A
// broker splits a hash range of 65536 among the consumers and, when that
// consumer has no permits, goes on with other keys; here dispatch waits
// for it.) Consumers of a connection being detached, or whose queued
// output is over its dispatch pause (see Conn.writable), are
// skipped.
func (sub *subscription) pick(e *entry) *consumer {
	n := len(sub.consumers)
	if n == 0 {
		return nil
	}
	ready := func(cons *consumer) bool {
		return cons.permits > 0 && cons.conn.state != stateClosed && cons.conn.writable()
	}
	switch sub.subType {
	case pulsarpb.CommandSubscribe_Key_Shared:
		if cons := sub.consumers[keyHash(e.key)%uint32(n)]; ready(cons) {
			return cons
		}
		return nil
	case pulsarpb.CommandSubscribe_Shared:
		for i := range n {
			cons := sub.consumers[(sub.rr+i)%n]
			if ready(cons) {
				sub.rr = (sub.rr + i + 1) % n
				return cons
			}
		}
		return nil
	default:
		if cons := sub.active(); ready(cons) {
			return cons
		}
		return nil
	}
}

func (s *Server) sendMessageLocked(cons *consumer, t *topic, e *entry, redeliveries uint32, ackSet []int64) {
	s.x.deliveredLocked(cons, t, e, redeliveries)
	msg := &pulsarpb.CommandMessage{
		ConsumerId: proto.Uint64(cons.id),
		MessageId: &pulsarpb.MessageIdData{
			LedgerId:  proto.Uint64(t.ledgerID),
			EntryId:   proto.Uint64(e.id),
			Partition: proto.Int32(t.partition),
		},
		AckSet: slices.Clone(ackSet),
	}
	if redeliveries > 0 {
		msg.RedeliveryCount = proto.Uint32(redeliveries)
	}
	if cons.epoch != nil {
		msg.ConsumerEpoch = proto.Uint64(*cons.epoch)
	}
	cmd := &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_MESSAGE.Enum(), Message: msg}
	if s.cfg.entryMetadata && cons.conn.connect.GetFeatureFlags().GetSupportsBrokerEntryMetadata() {
		bem, _ := proto.Marshal(&pulsarpb.BrokerEntryMetadata{
			BrokerTimestamp: proto.Uint64(e.brokerTime),
			Index:           proto.Uint64(e.index),
		})
		_ = cons.conn.queue(func(b []byte) ([]byte, error) {
			return appendEntryMetadataMessage(b, cmd, bem, e.metadata, e.payload)
		}, true)
		return
	}
	_ = cons.conn.queue(func(b []byte) ([]byte, error) { return frame.AppendPayload(b, cmd, e.metadata, e.payload) }, true)
}

// appendEntryMetadataMessage appends a payload frame that carries broker
// entry metadata (magic 0x0e02, size, BrokerEntryMetadata) before the
// checksummed section; the CRC32C covers only what follows it.
func appendEntryMetadataMessage(dst []byte, cmd *pulsarpb.BaseCommand, bem, metadata, payload []byte) ([]byte, error) {
	start := len(dst)
	dst, err := frame.AppendCommand(dst, cmd)
	if err != nil {
		return dst, err
	}
	dst = binary.BigEndian.AppendUint16(dst, frame.MagicBrokerEntryMetadata)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(bem)))
	dst = append(dst, bem...)
	dst = binary.BigEndian.AppendUint16(dst, frame.MagicChecksum)
	crcAt := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	sumFrom := len(dst)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(metadata)))
	dst = append(dst, metadata...)
	dst = append(dst, payload...)
	binary.BigEndian.PutUint32(dst[crcAt:], frame.Checksum(dst[sumFrom:]))
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst, nil
}

func (s *Server) handleFlowLocked(c *Conn, flow *pulsarpb.CommandFlow) {
	cons := c.consumers[flow.GetConsumerId()]
	if cons == nil {
		return
	}
	cons.permits += int64(flow.GetMessagePermits())
	s.dispatchLocked(cons.sub)
}

// partialAck reports whether a message id acknowledges only some messages
// of a batch: its ack_set still has bits set (messages left unacked).
func partialAck(id *pulsarpb.MessageIdData) bool {
	for _, w := range id.GetAckSet() {
		if w != 0 {
			return true
		}
	}
	return false
}

func (s *Server) handleAckLocked(c *Conn, cmd *pulsarpb.BaseCommand) {
	ack := cmd.GetAck()
	rid, wantsAnswer := frame.RequestID(cmd)
	cons := c.consumers[ack.GetConsumerId()]
	if cons == nil {
		// A broker ignores an ACK for a consumer it does not have on the
		// connection, request id or not: no ACK_RESPONSE comes.
		return
	}
	sub := cons.sub
	n := uint64(len(sub.topic.entries))
	for _, id := range ack.GetMessageId() {
		e := id.GetEntryId()
		if e >= n {
			continue
		}
		partial := partialAck(id)
		if ack.GetAckType() == pulsarpb.CommandAck_Cumulative {
			// A cumulative ack of part of a batch acknowledges everything
			// before the batch, and the batch's messages up to it.
			last := e
			if partial {
				last = e - 1 // wraps to MaxUint64 below entry 0: no loop
			}
			for x := sub.markDelete; x <= last && last != minusOne; x++ {
				sub.ackLocked(x)
			}
		}
		if partial {
			sub.ackBatchIndexesLocked(e, id.GetAckSet())
		} else if ack.GetAckType() != pulsarpb.CommandAck_Cumulative {
			sub.ackLocked(e)
		}
	}
	for {
		if _, ok := sub.acked[sub.markDelete]; !ok {
			break
		}
		delete(sub.acked, sub.markDelete)
		sub.markDelete++
	}
	if wantsAnswer {
		_ = c.Send(&pulsarpb.BaseCommand{
			Type: pulsarpb.BaseCommand_ACK_RESPONSE.Enum(),
			AckResponse: &pulsarpb.CommandAckResponse{
				ConsumerId: proto.Uint64(cons.id),
				RequestId:  proto.Uint64(rid),
			},
		})
	}
}

func (sub *subscription) ackLocked(id uint64) {
	if id < sub.markDelete {
		return
	}
	sub.acked[id] = struct{}{}
	delete(sub.pending, id)
	delete(sub.redeliveries, id)
	delete(sub.ackSets, id)
	if i, found := slices.BinarySearch(sub.redeliver, id); found {
		sub.redeliver = slices.Delete(sub.redeliver, i, i+1)
	}
	if i, found := slices.BinarySearch(sub.delayed, id); found {
		sub.delayed = slices.Delete(sub.delayed, i, i+1)
	}
}

// handleRedeliverLocked sends a consumer's unacked messages again. As on a
// broker, the message ids named are honoured only for Shared and
// Key_Shared; Exclusive and Failover get all their unacked messages again.
func (s *Server) handleRedeliverLocked(c *Conn, req *pulsarpb.CommandRedeliverUnacknowledgedMessages) {
	cons := c.consumers[req.GetConsumerId()]
	if cons == nil {
		return
	}
	sub := cons.sub
	if req.ConsumerEpoch != nil {
		cons.epoch = proto.Uint64(req.GetConsumerEpoch())
	}
	shared := sub.subType == pulsarpb.CommandSubscribe_Shared || sub.subType == pulsarpb.CommandSubscribe_Key_Shared
	if shared && len(req.GetMessageIds()) > 0 {
		for _, id := range req.GetMessageIds() {
			if sub.pending[id.GetEntryId()] == cons {
				s.redeliverLocked(sub, id.GetEntryId(), true)
			}
		}
	} else {
		for id, owner := range sub.pending {
			if owner == cons {
				s.redeliverLocked(sub, id, shared)
			}
		}
	}
	s.dispatchLocked(sub)
}

// consumerNotFound is the message of the ERROR a broker answers to UNSUBSCRIBE,
// SEEK and GET_LAST_MESSAGE_ID for a consumer id it does not have on the
// connection; the code is MetadataError, not ConsumerNotFound.
const consumerNotFound = "Consumer not found"

func (s *Server) handleUnsubscribeLocked(c *Conn, cmd *pulsarpb.BaseCommand) {
	req := cmd.GetUnsubscribe()
	cons := c.consumers[req.GetConsumerId()]
	if cons == nil {
		_ = c.Send(errorAnswer(cmd, pulsarpb.ServerError_MetadataError, consumerNotFound))
		return
	}
	sub := cons.sub
	if len(sub.consumers) > 1 && !req.GetForce() {
		_ = c.Send(errorAnswer(cmd, pulsarpb.ServerError_MetadataError,
			"Unconnected or shared consumer attempting to unsubscribe"))
		return
	}
	// With force, the other consumers are disconnected, and told so. (Last
	// first, so that no Failover consumer is made active on the way.)
	for _, other := range slices.Backward(slices.Clone(sub.consumers)) {
		s.removeConsumerLocked(other)
		if other != cons {
			_ = other.conn.Send(closeConsumer(other.id, "", ""))
		}
	}
	delete(sub.topic.subs, sub.name)
	_ = c.Send(success(req.GetRequestId()))
}

// handleSeekLocked resets a subscription's cursor. Like a broker, it first
// disconnects every consumer of the subscription (CLOSE_CONSUMER, which
// the clients answer by subscribing again), then answers SUCCESS.
func (s *Server) handleSeekLocked(c *Conn, cmd *pulsarpb.BaseCommand) {
	req := cmd.GetSeek()
	cons := c.consumers[req.GetConsumerId()]
	if cons == nil {
		_ = c.Send(errorAnswer(cmd, pulsarpb.ServerError_MetadataError, consumerNotFound))
		return
	}
	sub := cons.sub
	t := sub.topic
	var target uint64
	switch {
	case req.MessageId != nil:
		target = position(t, req.MessageId)
	case req.MessagePublishTime != nil:
		target = uint64(len(t.entries))
		for _, e := range t.entries {
			if e.publishTime >= req.GetMessagePublishTime() {
				target = e.id
				break
			}
		}
	default:
		_ = c.Send(errorAnswer(cmd, pulsarpb.ServerError_MetadataError,
			"Message id and message publish time were not present"))
		return
	}
	s.resetLocked(sub, target)
	_ = c.Send(success(req.GetRequestId()))
}

func (s *Server) handleLastMessageIDLocked(c *Conn, cmd *pulsarpb.BaseCommand) {
	req := cmd.GetGetLastMessageId()
	cons := c.consumers[req.GetConsumerId()]
	if cons == nil {
		_ = c.Send(errorAnswer(cmd, pulsarpb.ServerError_MetadataError, consumerNotFound))
		return
	}
	sub := cons.sub
	t := sub.topic
	// An empty topic's last id is -1:-1, as from a broker; batch_index is
	// -1 unless the last entry is a batch.
	last := &pulsarpb.MessageIdData{
		LedgerId:   proto.Uint64(minusOne),
		EntryId:    proto.Uint64(minusOne),
		Partition:  proto.Int32(t.partition),
		BatchIndex: proto.Int32(-1),
	}
	if n := len(t.entries); n > 0 {
		e := t.entries[n-1]
		last.LedgerId = proto.Uint64(t.ledgerID)
		last.EntryId = proto.Uint64(e.id)
		if e.batched {
			last.BatchIndex = proto.Int32(e.numMessages - 1)
		}
	}
	_ = c.Send(&pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_GET_LAST_MESSAGE_ID_RESPONSE.Enum(),
		GetLastMessageIdResponse: &pulsarpb.CommandGetLastMessageIdResponse{
			RequestId:     proto.Uint64(req.GetRequestId()),
			LastMessageId: last,
			ConsumerMarkDeletePosition: &pulsarpb.MessageIdData{
				LedgerId: proto.Uint64(t.ledgerID),
				EntryId:  proto.Uint64(sub.markDelete - 1), // minusOne when nothing is acked
			},
		},
	})
}

func (s *Server) handleCloseConsumerLocked(c *Conn, req *pulsarpb.CommandCloseConsumer) {
	// A broker answers SUCCESS even when the consumer was not there.
	_ = c.Send(success(req.GetRequestId()))
	if cons := c.consumers[req.GetConsumerId()]; cons != nil {
		s.removeConsumerLocked(cons)
	}
}

// ackBatchIndexesLocked records an acknowledgement at batch index level
// (an ACK whose message id carries an ack_set, bit i set for each message
// of the batch still unacknowledged): the batch's ack set becomes the
// intersection of what it was and ackSet, and once no bit is left the
// whole entry is acknowledged.
func (sub *subscription) ackBatchIndexesLocked(id uint64, ackSet []int64) {
	if sub.isAcked(id) {
		return
	}
	merged := slices.Clone(ackSet)
	if prev, ok := sub.ackSets[id]; ok {
		for i := range merged {
			if i < len(prev) {
				merged[i] &= prev[i]
			} else {
				merged[i] = 0
			}
		}
	}
	if !slices.ContainsFunc(merged, func(w int64) bool { return w != 0 }) {
		sub.ackLocked(id)
		return
	}
	sub.ackSets[id] = merged
}

// stickyKey is the key a Key_Shared subscription keeps together: the
// message's ordering key if it has one, else its partition key. (A batch
// has the key of its metadata, which a key-based batcher sets.)
func stickyKey(md *pulsarpb.MessageMetadata) string {
	if k := md.GetOrderingKey(); len(k) > 0 {
		return string(k)
	}
	return md.GetPartitionKey()
}

// keyHash spreads keys over Key_Shared consumers (FNV-1a; a broker uses
// Murmur3, but only the stickiness is part of the protocol).
func keyHash(key string) uint32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return h.Sum32()
}

// delaysLocked reports whether sub holds messages back until their
// deliver_at_time: delayed delivery is on (WithDelayedDelivery) and sub
// is Shared or Key_Shared. A broker applies it in the dispatcher of those
// types only; Exclusive and Failover get such messages at once.
func (s *Server) delaysLocked(sub *subscription) bool {
	if s.cfg.noDelayedDelivery {
		return false
	}
	return sub.subType == pulsarpb.CommandSubscribe_Shared || sub.subType == pulsarpb.CommandSubscribe_Key_Shared
}

// releaseDelayedLocked moves the delayed entries that are due (all of
// them when delays is false) to be sent, oldest first, as a broker
// replays them, and returns the cutoff: an entry is due when its
// deliver_at_time is at most a tick ahead of the clock, as a broker
// (delayedDeliveryDeliverAtTimeStrict=false) lets it out up to a tick
// early.
func (s *Server) releaseDelayedLocked(sub *subscription, delays bool) (cutoff int64) {
	cutoff = s.x.now().UnixMilli() + s.cfg.delayTick().Milliseconds()
	if len(sub.delayed) == 0 {
		return cutoff
	}
	kept := sub.delayed[:0]
	for _, id := range sub.delayed {
		if delays && sub.topic.entries[id].deliverAt > cutoff {
			kept = append(kept, id)
			continue
		}
		if sub.isAcked(id) {
			continue
		}
		if i, found := slices.BinarySearch(sub.redeliver, id); !found {
			sub.redeliver = slices.Insert(sub.redeliver, i, id)
		}
	}
	sub.delayed = kept
	return cutoff
}

// armDelayLocked sets the timer that releases sub's delayed entries: it
// fires at the earliest deliver_at_time, but no sooner than a tick after
// it last fired, as a broker's delayed delivery tracker does. With no
// delayed entries, it stops the timer.
func (s *Server) armDelayLocked(sub *subscription) {
	if len(sub.delayed) == 0 {
		if sub.delayTimer != nil {
			sub.delayTimer.Stop()
			sub.delayTimer, sub.delayTarget = nil, 0
		}
		return
	}
	target := sub.topic.entries[sub.delayed[0]].deliverAt
	for _, id := range sub.delayed[1:] {
		target = min(target, sub.topic.entries[id].deliverAt)
	}
	if sub.delayTimer != nil {
		if sub.delayTarget == target {
			return
		}
		sub.delayTimer.Stop()
	}
	now := s.x.now().UnixMilli()
	wait := max(target-now, sub.lastTick+s.cfg.delayTick().Milliseconds()-now, 0)
	sub.delayTarget = target
	var timer Timer
	timer = s.x.clock.AfterFunc(time.Duration(wait)*time.Millisecond, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed || sub.delayTimer != timer || sub.topic.subs[sub.name] != sub {
			return
		}
		sub.delayTimer, sub.delayTarget = nil, 0
		sub.lastTick = s.x.now().UnixMilli()
		s.dispatchLocked(sub)
	})
	sub.delayTimer = timer
}
