package fidelity

import (
	"bytes"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// Scenario is a script of raw protocol steps.
type Scenario struct {
	// Name names the scenario and its transcript file.
	Name string
	// Run performs the steps on a Session.
	Run func(s *Session)
}

// Scenarios lists every scenario, in the order the tests run them.
var Scenarios = []Scenario{
	{"handshake", handshake},
	{"lookup", lookup},
	{"producer-lifecycle", producerLifecycle},
	{"consumer-lifecycle", consumerLifecycle},
	{"error-duplicate-producer-name", duplicateProducerName},
	{"error-second-exclusive-producer", secondExclusiveProducer},
	{"error-second-exclusive-consumer", secondExclusiveConsumer},
	{"error-unknown-consumer", unknownConsumer},
	{"error-ack-unknown-consumer", ackUnknownConsumer},
	{"error-send-unknown-producer", sendUnknownProducer},
	{"error-bad-topic-name", badTopicName},
	{"seek-message-id", seekMessageID},
	{"seek-time", seekTime},
	{"seek-time-non-durable", seekTimeNonDurable},
	{"delayed-delivery", delayedDelivery},
	{"initial-subscription-name", initialSubscriptionName},
	{"redelivery", redelivery},
	{"redelivery-exclusive", redeliveryExclusive},
	{"redelivery-after-disconnect", redeliveryAfterDisconnect},
	{"last-message-id", lastMessageID},
	{"large-message", largeMessage},
	{"error-ping-without-body", pingWithoutBody},
	{"error-seek-without-body", seekWithoutBody},
	{"error-broker-only-command", brokerOnlyCommand},
}

// ---- commands ----

func lookupCmd(rid uint64, topic string, authoritative bool) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_LOOKUP.Enum(),
		LookupTopic: &pulsarpb.CommandLookupTopic{
			Topic: proto.String(topic), RequestId: proto.Uint64(rid), Authoritative: proto.Bool(authoritative),
		},
	}
}

func partitionsCmd(rid uint64, topic string) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_PARTITIONED_METADATA.Enum(),
		PartitionMetadata: &pulsarpb.CommandPartitionedTopicMetadata{
			Topic: proto.String(topic), RequestId: proto.Uint64(rid),
		},
	}
}

func producerCmd(rid, id uint64, topic, name string, mode pulsarpb.ProducerAccessMode) *pulsarpb.BaseCommand {
	p := &pulsarpb.CommandProducer{
		Topic: proto.String(topic), ProducerId: proto.Uint64(id), RequestId: proto.Uint64(rid),
		ProducerAccessMode: mode.Enum(),
	}
	if name != "" {
		p.ProducerName = proto.String(name)
	}
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_PRODUCER.Enum(), Producer: p}
}

func closeProducerCmd(rid, id uint64) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{
		Type:          pulsarpb.BaseCommand_CLOSE_PRODUCER.Enum(),
		CloseProducer: &pulsarpb.CommandCloseProducer{ProducerId: proto.Uint64(id), RequestId: proto.Uint64(rid)},
	}
}

func subscribeCmd(rid, id uint64, topic, sub string, t pulsarpb.CommandSubscribe_SubType) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_SUBSCRIBE.Enum(),
		Subscribe: &pulsarpb.CommandSubscribe{
			Topic: proto.String(topic), Subscription: proto.String(sub), SubType: t.Enum(),
			ConsumerId: proto.Uint64(id), RequestId: proto.Uint64(rid),
			ConsumerName:    proto.String(fmt.Sprintf("consumer-%d", id)),
			InitialPosition: pulsarpb.CommandSubscribe_Earliest.Enum(),
		},
	}
}

func flowCmd(id uint64, n uint32) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_FLOW.Enum(),
		Flow: &pulsarpb.CommandFlow{ConsumerId: proto.Uint64(id), MessagePermits: proto.Uint32(n)},
	}
}

// ackCmd acknowledges entries of ledger with a request id, so that the
// broker answers ACK_RESPONSE when it has applied it.
func ackCmd(rid, id uint64, t pulsarpb.CommandAck_AckType, ledger uint64, entries ...uint64) *pulsarpb.BaseCommand {
	a := &pulsarpb.CommandAck{ConsumerId: proto.Uint64(id), AckType: t.Enum(), RequestId: proto.Uint64(rid)}
	for _, e := range entries {
		a.MessageId = append(a.MessageId, &pulsarpb.MessageIdData{LedgerId: proto.Uint64(ledger), EntryId: proto.Uint64(e)})
	}
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_ACK.Enum(), Ack: a}
}

func closeConsumerCmd(rid, id uint64) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{
		Type:          pulsarpb.BaseCommand_CLOSE_CONSUMER.Enum(),
		CloseConsumer: &pulsarpb.CommandCloseConsumer{ConsumerId: proto.Uint64(id), RequestId: proto.Uint64(rid)},
	}
}

func unsubscribeCmd(rid, id uint64) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{
		Type:        pulsarpb.BaseCommand_UNSUBSCRIBE.Enum(),
		Unsubscribe: &pulsarpb.CommandUnsubscribe{ConsumerId: proto.Uint64(id), RequestId: proto.Uint64(rid)},
	}
}

func seekIDCmd(rid, id, ledger, entry uint64) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_SEEK.Enum(),
		Seek: &pulsarpb.CommandSeek{
			ConsumerId: proto.Uint64(id), RequestId: proto.Uint64(rid),
			MessageId: &pulsarpb.MessageIdData{LedgerId: proto.Uint64(ledger), EntryId: proto.Uint64(entry)},
		},
	}
}

func seekTimeCmd(rid, id, ms uint64) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_SEEK.Enum(),
		Seek: &pulsarpb.CommandSeek{
			ConsumerId: proto.Uint64(id), RequestId: proto.Uint64(rid), MessagePublishTime: proto.Uint64(ms),
		},
	}
}

func lastIDCmd(rid, id uint64) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{
		Type:             pulsarpb.BaseCommand_GET_LAST_MESSAGE_ID.Enum(),
		GetLastMessageId: &pulsarpb.CommandGetLastMessageId{ConsumerId: proto.Uint64(id), RequestId: proto.Uint64(rid)},
	}
}

func redeliverCmd(id, ledger uint64, entries ...uint64) *pulsarpb.BaseCommand {
	r := &pulsarpb.CommandRedeliverUnacknowledgedMessages{ConsumerId: proto.Uint64(id)}
	for _, e := range entries {
		r.MessageIds = append(r.MessageIds, &pulsarpb.MessageIdData{LedgerId: proto.Uint64(ledger), EntryId: proto.Uint64(e)})
	}
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_REDELIVER_UNACKNOWLEDGED_MESSAGES.Enum(), RedeliverUnacknowledgedMessages: r}
}

// metadata is a message's metadata: the producer's name, its sequence id
// and the publish time.
func metadata(producer string, seq uint64, publish time.Time) *pulsarpb.MessageMetadata {
	return &pulsarpb.MessageMetadata{
		ProducerName: proto.String(producer), SequenceId: proto.Uint64(seq),
		PublishTime: proto.Uint64(uint64(publish.UnixMilli())),
	}
}

// produce attaches a named producer to topic and publishes the payloads
// "m0", "m1", … (publish times now, now+1s, …), then closes it. It returns
// the ledger id of the receipts (for acks and seeks) and the publish
// times.
func produce(s *Session, step, topic string, n int) (ledger uint64, times []time.Time) {
	s.Lookup(step, topic)
	pid := s.ID()
	name := "fidelity-producer"
	s.OwnProducerName(name)
	s.Request(step, producerCmd(s.ID(), pid, topic, name, pulsarpb.ProducerAccessMode_Shared))
	base := time.Now().Truncate(time.Millisecond)
	for i := range n {
		at := base.Add(time.Duration(i) * time.Second)
		r := s.Publish(step, pid, uint64(i), metadata(name, uint64(i), at), fmt.Appendf(nil, "m%d", i))
		ledger = r.GetSendReceipt().GetMessageId().GetLedgerId()
		times = append(times, at)
	}
	s.Request(step, closeProducerCmd(s.ID(), pid))
	return ledger, times
}

// ---- scenarios ----

// handshake: CONNECTED at the client's protocol version and at an older
// one, and a PING answered.
func handshake(s *Session) {
	s.Connect("connect-v21", 0, true)
	s.Send("ping", &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_PING.Enum(), Ping: &pulsarpb.CommandPing{}})
	s.Expect("ping", pulsarpb.BaseCommand_PONG, 1)
	s.Connect("connect-v15", 15, true)
}

// lookup: LOOKUP of a new topic, non-authoritative and authoritative;
// partitioned metadata of a missing topic, of a non-partitioned one in use
// and of a partitioned one; LOOKUP of one of its partitions.
func lookup(s *Session) {
	s.Connect("connect", 0, false)
	fresh := s.Topic("fresh")
	s.Request("lookup-new", lookupCmd(s.ID(), fresh, false))
	s.Request("lookup-authoritative", lookupCmd(s.ID(), fresh, true))
	s.Request("partitions-missing", partitionsCmd(s.ID(), s.Topic("missing")))
	used := s.Topic("used")
	produce(s, "create-non-partitioned", used, 1)
	s.Request("partitions-non-partitioned", partitionsCmd(s.ID(), used))
	parted := s.Topic("parted")
	s.Partitioned(parted, 3)
	s.Request("partitions-partitioned", partitionsCmd(s.ID(), parted))
	s.Request("lookup-partition", lookupCmd(s.ID(), parted+"-partition-1", false))
}

// producerLifecycle: PRODUCER without a name, SENDs, CLOSE_PRODUCER, and
// CLOSE_PRODUCER again for the producer that is gone.
func producerLifecycle(s *Session) {
	s.Connect("connect", 0, false)
	topic := s.Topic("t")
	s.Lookup("lookup", topic)
	pid := s.ID()
	s.Request("producer", producerCmd(s.ID(), pid, topic, "", pulsarpb.ProducerAccessMode_Shared))
	// The broker named it; the SENDs carry that name.
	name := "fidelity-generated"
	now := time.Now()
	s.Publish("send-0", pid, 0, metadata(name, 0, now), []byte("hello"))
	s.Publish("send-1", pid, 1, metadata(name, 1, now), []byte("world"))
	s.Request("close", closeProducerCmd(s.ID(), pid))
	s.Request("close-again", closeProducerCmd(s.ID(), pid))
}

// consumerLifecycle: SUBSCRIBE, FLOW and the MESSAGEs, individual and
// cumulative ACK, CLOSE_CONSUMER, SUBSCRIBE again with nothing left to
// deliver, UNSUBSCRIBE.
func consumerLifecycle(s *Session) {
	s.Connect("connect", 0, false)
	topic := s.Topic("t")
	ledger, _ := produce(s, "produce", topic, 4)
	cid := s.ID()
	s.Request("subscribe", subscribeCmd(s.ID(), cid, topic, "sub", pulsarpb.CommandSubscribe_Exclusive))
	s.Send("flow", flowCmd(cid, 10))
	s.Expect("flow", pulsarpb.BaseCommand_MESSAGE, 4)
	s.Request("ack-individual", ackCmd(s.ID(), cid, pulsarpb.CommandAck_Individual, ledger, 0))
	s.Request("ack-cumulative", ackCmd(s.ID(), cid, pulsarpb.CommandAck_Cumulative, ledger, 2))
	s.Request("close-consumer", closeConsumerCmd(s.ID(), cid))
	cid = s.ID()
	s.Request("resubscribe", subscribeCmd(s.ID(), cid, topic, "sub", pulsarpb.CommandSubscribe_Exclusive))
	s.Send("flow-rest", flowCmd(cid, 10))
	s.Expect("flow-rest", pulsarpb.BaseCommand_MESSAGE, 1)
	s.Request("ack-last", ackCmd(s.ID(), cid, pulsarpb.CommandAck_Individual, ledger, 3))
	s.Send("flow-nothing-left", flowCmd(cid, 10))
	s.ExpectNothing("flow-nothing-left")
	s.Request("unsubscribe", unsubscribeCmd(s.ID(), cid))
	s.Request("close-after-unsubscribe", closeConsumerCmd(s.ID(), cid))
}

// duplicateProducerName: a second producer with the name of one attached;
// the name again once the first has closed.
func duplicateProducerName(s *Session) {
	s.Connect("connect", 0, false)
	topic := s.Topic("t")
	s.Lookup("lookup", topic)
	s.OwnProducerName("dup")
	first := s.ID()
	s.Request("first", producerCmd(s.ID(), first, topic, "dup", pulsarpb.ProducerAccessMode_Shared))
	s.Request("second-same-name", producerCmd(s.ID(), s.ID(), topic, "dup", pulsarpb.ProducerAccessMode_Shared))
	// Once the first has closed, the name is free.
	s.Request("close-first", closeProducerCmd(s.ID(), first))
	s.Request("same-name-after-close", producerCmd(s.ID(), s.ID(), topic, "dup", pulsarpb.ProducerAccessMode_Shared))
}

// secondExclusiveProducer: an Exclusive producer where one is attached,
// and a Shared one; an Exclusive one where a Shared one is attached.
func secondExclusiveProducer(s *Session) {
	s.Connect("connect", 0, false)
	topic := s.Topic("t")
	s.Lookup("lookup", topic)
	s.Request("first-exclusive", producerCmd(s.ID(), s.ID(), topic, "", pulsarpb.ProducerAccessMode_Exclusive))
	s.Request("second-exclusive", producerCmd(s.ID(), s.ID(), topic, "", pulsarpb.ProducerAccessMode_Exclusive))
	s.Request("shared-after-exclusive", producerCmd(s.ID(), s.ID(), topic, "", pulsarpb.ProducerAccessMode_Shared))
	other := s.Topic("shared-first")
	s.Lookup("lookup-shared-first", other)
	s.Request("shared-first", producerCmd(s.ID(), s.ID(), other, "", pulsarpb.ProducerAccessMode_Shared))
	s.Request("exclusive-after-shared", producerCmd(s.ID(), s.ID(), other, "", pulsarpb.ProducerAccessMode_Exclusive))
}

// secondExclusiveConsumer: a second consumer on an Exclusive subscription,
// and a Shared one on it.
func secondExclusiveConsumer(s *Session) {
	s.Connect("connect", 0, false)
	topic := s.Topic("t")
	s.Lookup("lookup", topic)
	s.Request("first", subscribeCmd(s.ID(), s.ID(), topic, "sub", pulsarpb.CommandSubscribe_Exclusive))
	s.Request("second-exclusive", subscribeCmd(s.ID(), s.ID(), topic, "sub", pulsarpb.CommandSubscribe_Exclusive))
	s.Request("shared-on-exclusive", subscribeCmd(s.ID(), s.ID(), topic, "sub", pulsarpb.CommandSubscribe_Shared))
}

// unknownConsumer: SEEK, GET_LAST_MESSAGE_ID, UNSUBSCRIBE and
// CLOSE_CONSUMER for a consumer id never subscribed.
func unknownConsumer(s *Session) {
	s.Connect("connect", 0, false)
	const ghost = 4242
	s.Request("seek", seekIDCmd(s.ID(), ghost, 1, 0))
	s.Request("last-message-id", lastIDCmd(s.ID(), ghost))
	s.Request("unsubscribe", unsubscribeCmd(s.ID(), ghost))
	s.Request("close-consumer", closeConsumerCmd(s.ID(), ghost))
}

// ackUnknownConsumer: an ACK (with a request id) for a consumer id never
// subscribed, then a PING to show that the connection lives on.
func ackUnknownConsumer(s *Session) {
	s.Connect("connect", 0, false)
	s.Send("ack", ackCmd(s.ID(), 4242, pulsarpb.CommandAck_Individual, 1, 0))
	s.ExpectNothing("ack")
	s.Send("ping", &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_PING.Enum(), Ping: &pulsarpb.CommandPing{}})
	s.Expect("ping", pulsarpb.BaseCommand_PONG, 1)
}

// sendUnknownProducer: a SEND for a producer id never created.
func sendUnknownProducer(s *Session) {
	s.Connect("connect", 0, false)
	s.Publish("send", 4242, 0, metadata("nobody", 0, time.Now()), []byte("lost"))
}

// badTopicName: LOOKUP, PARTITIONED_METADATA, PRODUCER and SUBSCRIBE on
// names a broker refuses.
func badTopicName(s *Session) {
	s.Connect("connect", 0, false)
	const bad = "bogus://public/default/x"
	const short = "public/x"
	s.Request("lookup-bad-domain", lookupCmd(s.ID(), bad, false))
	s.Request("partitions-bad-domain", partitionsCmd(s.ID(), bad))
	s.Request("producer-bad-domain", producerCmd(s.ID(), s.ID(), bad, "", pulsarpb.ProducerAccessMode_Shared))
	s.Request("subscribe-bad-domain", subscribeCmd(s.ID(), s.ID(), bad, "sub", pulsarpb.CommandSubscribe_Exclusive))
	s.Request("producer-two-part-name", producerCmd(s.ID(), s.ID(), short, "", pulsarpb.ProducerAccessMode_Shared))
}

// seekMessageID: SEEK of an Exclusive consumer back to an entry; the
// broker disconnects the consumer, which subscribes again and gets the
// messages from there.
func seekMessageID(s *Session) {
	s.Connect("connect", 0, false)
	topic := s.Topic("t")
	ledger, _ := produce(s, "produce", topic, 4)
	cid := s.ID()
	s.Request("subscribe", subscribeCmd(s.ID(), cid, topic, "sub", pulsarpb.CommandSubscribe_Exclusive))
	s.Send("flow", flowCmd(cid, 10))
	s.Expect("flow", pulsarpb.BaseCommand_MESSAGE, 4)
	s.Request("ack-all", ackCmd(s.ID(), cid, pulsarpb.CommandAck_Cumulative, ledger, 3))
	s.Request("seek", seekIDCmd(s.ID(), cid, ledger, 1))
	s.Request("resubscribe", subscribeCmd(s.ID(), cid, topic, "sub", pulsarpb.CommandSubscribe_Exclusive))
	s.Send("flow-again", flowCmd(cid, 10))
	s.Expect("flow-again", pulsarpb.BaseCommand_MESSAGE, 3)
	s.ExpectNothing("flow-again")
}

// seekTime: SEEK by publish time, between two messages' times and at
// exactly one message's time.
func seekTime(s *Session) {
	s.Connect("connect", 0, false)
	topic := s.Topic("t")
	ledger, times := produce(s, "produce", topic, 4)
	cid := s.ID()
	s.Request("subscribe", subscribeCmd(s.ID(), cid, topic, "sub", pulsarpb.CommandSubscribe_Exclusive))
	s.Send("flow", flowCmd(cid, 10))
	s.Expect("flow", pulsarpb.BaseCommand_MESSAGE, 4)
	s.Request("ack-all", ackCmd(s.ID(), cid, pulsarpb.CommandAck_Cumulative, ledger, 3))

	between := times[1].Add(500 * time.Millisecond)
	s.Request("seek-between", seekTimeCmd(s.ID(), cid, uint64(between.UnixMilli())))
	s.Request("resubscribe", subscribeCmd(s.ID(), cid, topic, "sub", pulsarpb.CommandSubscribe_Exclusive))
	s.Send("flow-after-between", flowCmd(cid, 10))
	s.Expect("flow-after-between", pulsarpb.BaseCommand_MESSAGE, 2)
	s.ExpectNothing("flow-after-between")

	s.Request("seek-exact", seekTimeCmd(s.ID(), cid, uint64(times[1].UnixMilli())))
	s.Request("resubscribe-2", subscribeCmd(s.ID(), cid, topic, "sub", pulsarpb.CommandSubscribe_Exclusive))
	s.Send("flow-after-exact", flowCmd(cid, 10))
	s.Expect("flow-after-exact", pulsarpb.BaseCommand_MESSAGE, 3)
	s.ExpectNothing("flow-after-exact")
}

// seekTimeNonDurable: SEEK by publish time on a non-durable subscription
// (a reader's), then the same SUBSCRIBE again, as a reader does when the
// broker disconnects it for the seek.
func seekTimeNonDurable(s *Session) {
	s.Connect("connect", 0, false)
	topic := s.Topic("t")
	_, times := produce(s, "produce", topic, 4)
	cid := s.ID()
	sub := func() *pulsarpb.BaseCommand {
		c := subscribeCmd(s.ID(), cid, topic, "reader", pulsarpb.CommandSubscribe_Exclusive)
		c.Subscribe.Durable = proto.Bool(false)
		c.Subscribe.StartMessageId = &pulsarpb.MessageIdData{LedgerId: proto.Uint64(1<<64 - 1), EntryId: proto.Uint64(1<<64 - 1)}
		return c
	}
	s.Request("subscribe", sub())
	s.Send("flow", flowCmd(cid, 10))
	s.Expect("flow", pulsarpb.BaseCommand_MESSAGE, 4)
	between := times[1].Add(500 * time.Millisecond)
	s.Request("seek", seekTimeCmd(s.ID(), cid, uint64(between.UnixMilli())))
	s.Request("resubscribe", sub())
	s.Send("flow-after-seek", flowCmd(cid, 10))
	s.Expect("flow-after-seek", pulsarpb.BaseCommand_MESSAGE, 2)
	s.ExpectNothing("flow-after-seek")
}

// delayedDelivery: a message with deliver_at_time an hour ahead, then one
// without, on a Shared subscription: only the second is delivered.
func delayedDelivery(s *Session) {
	s.Connect("connect", 0, false)
	topic := s.Topic("t")
	s.Lookup("lookup", topic)
	pid := s.ID()
	s.OwnProducerName("delayer")
	s.Request("producer", producerCmd(s.ID(), pid, topic, "delayer", pulsarpb.ProducerAccessMode_Shared))
	now := time.Now()
	md := metadata("delayer", 0, now)
	md.DeliverAtTime = proto.Int64(now.Add(time.Hour).UnixMilli())
	s.Publish("send-delayed", pid, 0, md, []byte("later"))
	s.Publish("send-now", pid, 1, metadata("delayer", 1, now), []byte("now"))
	cid := s.ID()
	s.Request("subscribe", subscribeCmd(s.ID(), cid, topic, "sub", pulsarpb.CommandSubscribe_Shared))
	s.Send("flow", flowCmd(cid, 10))
	s.Expect("flow", pulsarpb.BaseCommand_MESSAGE, 1)
	s.ExpectNothing("flow")
}

// initialSubscriptionName: after a first message, a PRODUCER names an
// initial_subscription_name and sends a second; then a consumer of that
// name asks for the latest position, which only a new subscription takes.
func initialSubscriptionName(s *Session) {
	s.Connect("connect", 0, false)
	topic := s.Topic("t")
	produce(s, "produce-first", topic, 1)
	pid := s.ID()
	s.OwnProducerName("creator")
	p := producerCmd(s.ID(), pid, topic, "creator", pulsarpb.ProducerAccessMode_Shared)
	p.Producer.InitialSubscriptionName = proto.String("holder")
	s.Request("producer", p)
	s.Publish("send", pid, 0, metadata("creator", 0, time.Now()), []byte("second"))
	cid := s.ID()
	holder := subscribeCmd(s.ID(), cid, topic, "holder", pulsarpb.CommandSubscribe_Exclusive)
	holder.Subscribe.InitialPosition = pulsarpb.CommandSubscribe_Latest.Enum()
	s.Request("subscribe-holder", holder)
	s.Send("flow", flowCmd(cid, 10))
	s.ExpectNothing("flow")
}

// redelivery: REDELIVER_UNACKNOWLEDGED_MESSAGES of a Shared consumer, for
// everything unacked and then for one message id; the redelivery counts.
func redelivery(s *Session) {
	s.Connect("connect", 0, false)
	topic := s.Topic("t")
	ledger, _ := produce(s, "produce", topic, 3)
	cid := s.ID()
	s.Request("subscribe", subscribeCmd(s.ID(), cid, topic, "sub", pulsarpb.CommandSubscribe_Shared))
	s.Send("flow", flowCmd(cid, 10))
	s.Expect("flow", pulsarpb.BaseCommand_MESSAGE, 3)
	s.Request("ack-middle", ackCmd(s.ID(), cid, pulsarpb.CommandAck_Individual, ledger, 1))
	s.Send("redeliver-all", redeliverCmd(cid, ledger))
	s.Expect("redeliver-all", pulsarpb.BaseCommand_MESSAGE, 2)
	s.Send("redeliver-one", redeliverCmd(cid, ledger, 2))
	s.Expect("redeliver-one", pulsarpb.BaseCommand_MESSAGE, 1)
	s.ExpectNothing("redeliver-one")
}

// redeliveryExclusive: REDELIVER_UNACKNOWLEDGED_MESSAGES of an Exclusive
// consumer, twice: what the redelivery count says there.
func redeliveryExclusive(s *Session) {
	s.Connect("connect", 0, false)
	topic := s.Topic("t")
	ledger, _ := produce(s, "produce", topic, 2)
	cid := s.ID()
	s.Request("subscribe", subscribeCmd(s.ID(), cid, topic, "sub", pulsarpb.CommandSubscribe_Exclusive))
	s.Send("flow", flowCmd(cid, 10))
	s.Expect("flow", pulsarpb.BaseCommand_MESSAGE, 2)
	s.Request("ack-first", ackCmd(s.ID(), cid, pulsarpb.CommandAck_Individual, ledger, 0))
	s.Send("redeliver", redeliverCmd(cid, ledger))
	s.Expect("redeliver", pulsarpb.BaseCommand_MESSAGE, 1)
	s.Send("redeliver-again", redeliverCmd(cid, ledger))
	s.Expect("redeliver-again", pulsarpb.BaseCommand_MESSAGE, 1)
	s.ExpectNothing("redeliver-again")
}

// redeliveryAfterDisconnect: the unacked messages of a Shared consumer
// that closes go to the next one; the redelivery count, then an explicit
// redelivery.
func redeliveryAfterDisconnect(s *Session) {
	s.Connect("connect", 0, false)
	topic := s.Topic("t")
	ledger, _ := produce(s, "produce", topic, 2)
	cid := s.ID()
	s.Request("subscribe", subscribeCmd(s.ID(), cid, topic, "sub", pulsarpb.CommandSubscribe_Shared))
	s.Send("flow", flowCmd(cid, 10))
	s.Expect("flow", pulsarpb.BaseCommand_MESSAGE, 2)
	s.Request("close-consumer", closeConsumerCmd(s.ID(), cid))
	cid = s.ID()
	s.Request("subscribe-again", subscribeCmd(s.ID(), cid, topic, "sub", pulsarpb.CommandSubscribe_Shared))
	s.Send("flow-again", flowCmd(cid, 10))
	s.Expect("flow-again", pulsarpb.BaseCommand_MESSAGE, 2)
	s.Send("redeliver", redeliverCmd(cid, ledger))
	s.Expect("redeliver", pulsarpb.BaseCommand_MESSAGE, 2)
	s.ExpectNothing("redeliver")
}

// lastMessageID: GET_LAST_MESSAGE_ID on an empty topic, after messages,
// and after an ack.
func lastMessageID(s *Session) {
	s.Connect("connect", 0, false)
	topic := s.Topic("t")
	s.Lookup("lookup", topic)
	cid := s.ID()
	s.Request("subscribe", subscribeCmd(s.ID(), cid, topic, "sub", pulsarpb.CommandSubscribe_Exclusive))
	s.Request("last-empty", lastIDCmd(s.ID(), cid))
	ledger, _ := produce(s, "produce", topic, 3)
	s.Request("last-after-produce", lastIDCmd(s.ID(), cid))
	s.Request("ack-first", ackCmd(s.ID(), cid, pulsarpb.CommandAck_Individual, ledger, 0))
	s.Request("last-after-ack", lastIDCmd(s.ID(), cid))
}

// largeMessage: a SEND just over max_message_size (within the frame
// padding), then one whose frame is over the padding too.
func largeMessage(s *Session) {
	s.Connect("connect", 0, false)
	topic := s.Topic("t")
	s.Lookup("lookup", topic)
	pid := s.ID()
	s.OwnProducerName("big")
	s.Request("producer", producerCmd(s.ID(), pid, topic, "big", pulsarpb.ProducerAccessMode_Shared))
	now := time.Now()
	s.Publish("send-at-limit", pid, 0, metadata("big", 0, now), bytes.Repeat([]byte("a"), MaxMessageSize-512))
	s.Publish("send-over-limit", pid, 1, metadata("big", 1, now), bytes.Repeat([]byte("b"), MaxMessageSize+1024))
	s.Publish("send-after", pid, 2, metadata("big", 2, now), []byte("small"))
	s.Publish("send-over-frame-limit", pid, 3, metadata("big", 3, now), bytes.Repeat([]byte("c"), MaxMessageSize+64*1024))
	s.AwaitClose("send-over-frame-limit")
}

// pingWithoutBody: a PING that does not carry its sub-message.
func pingWithoutBody(s *Session) {
	s.Connect("connect", 0, false)
	s.Send("bare-ping", &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_PING.Enum()})
	s.AwaitClose("bare-ping")
}

// seekWithoutBody: a SEEK that does not carry its sub-message, with a
// consumer of id 0 attached (the id a bare SEEK reads as).
func seekWithoutBody(s *Session) {
	s.Connect("connect", 0, false)
	topic := s.Topic("t")
	s.Lookup("lookup", topic)
	s.Request("subscribe", subscribeCmd(s.ID(), 0, topic, "sub", pulsarpb.CommandSubscribe_Exclusive))
	s.Send("bare-seek", &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_SEEK.Enum()})
	s.AwaitClose("bare-seek")
}

// brokerOnlyCommand: a SEND_RECEIPT, which only a broker sends, from the
// client; then a PING, which shows whether the connection lives on.
func brokerOnlyCommand(s *Session) {
	s.Connect("connect", 0, false)
	s.Send("send-receipt", &pulsarpb.BaseCommand{
		Type:        pulsarpb.BaseCommand_SEND_RECEIPT.Enum(),
		SendReceipt: &pulsarpb.CommandSendReceipt{ProducerId: proto.Uint64(1), SequenceId: proto.Uint64(0)},
	})
	s.Send("ping", &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_PING.Enum(), Ping: &pulsarpb.CommandPing{}})
	s.Expect("ping", pulsarpb.BaseCommand_PONG, 1)
}
