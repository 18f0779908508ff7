package command_test

import (
	"math"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/proto/command"
	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// base wraps a sub-command as the BaseCommand of type t, hand-built.
func base(t pulsarpb.BaseCommand_Type, set func(*pulsarpb.BaseCommand)) *pulsarpb.BaseCommand {
	c := &pulsarpb.BaseCommand{Type: t.Enum()}
	set(c)
	return c
}

func kv(k, v string) *pulsarpb.KeyValue {
	return &pulsarpb.KeyValue{Key: proto.String(k), Value: proto.String(v)}
}

func idData(ledger, entry uint64) *pulsarpb.MessageIdData {
	return &pulsarpb.MessageIdData{LedgerId: proto.Uint64(ledger), EntryId: proto.Uint64(entry)}
}

// TestBuilders compares each builder's command with the same command built
// by hand: every field the builder documents, and no other (no request id
// either: the Broker assigns it).
func TestBuilders(t *testing.T) {
	schema := &pulsarpb.Schema{Type: pulsarpb.Schema_String.Enum(), Name: proto.String("s"),
		SchemaData: []byte("{}"), Properties: []*pulsarpb.KeyValue{kv("a", "1")}}
	publish := time.UnixMilli(1_700_000_000_123)
	for _, tc := range []struct {
		name      string
		got, want *pulsarpb.BaseCommand
	}{
		{"Producer", command.Producer("t", 7),
			base(pulsarpb.BaseCommand_PRODUCER, func(c *pulsarpb.BaseCommand) {
				c.Producer = &pulsarpb.CommandProducer{Topic: proto.String("t"), ProducerId: proto.Uint64(7)}
			})},
		{"Producer options", command.Producer("t", 7, command.ProducerOptions{
			Name: "p", AccessMode: pulsarpb.ProducerAccessMode_Exclusive, Epoch: 2, TopicEpoch: proto.Uint64(0),
			Schema:   command.Schema(pulsarpb.Schema_String, "s", []byte("{}"), map[string]string{"a": "1"}),
			Metadata: map[string]string{"z": "26", "b": "2"}, Encrypted: true, InitialSubscription: "init",
		}), base(pulsarpb.BaseCommand_PRODUCER, func(c *pulsarpb.BaseCommand) {
			c.Producer = &pulsarpb.CommandProducer{Topic: proto.String("t"), ProducerId: proto.Uint64(7),
				ProducerName: proto.String("p"), UserProvidedProducerName: proto.Bool(true),
				ProducerAccessMode: pulsarpb.ProducerAccessMode_Exclusive.Enum(), Epoch: proto.Uint64(2),
				TopicEpoch: proto.Uint64(0), Schema: schema, Metadata: []*pulsarpb.KeyValue{kv("b", "2"), kv("z", "26")},
				Encrypted: proto.Bool(true), InitialSubscriptionName: proto.String("init")}
		})},
		{"Producer name from broker", command.Producer("t", 7, command.ProducerOptions{Name: "standalone-0-1", NameFromBroker: true}),
			base(pulsarpb.BaseCommand_PRODUCER, func(c *pulsarpb.BaseCommand) {
				c.Producer = &pulsarpb.CommandProducer{Topic: proto.String("t"), ProducerId: proto.Uint64(7),
					ProducerName: proto.String("standalone-0-1"), UserProvidedProducerName: proto.Bool(false)}
			})},
		{"Send", command.Send(7, 3),
			base(pulsarpb.BaseCommand_SEND, func(c *pulsarpb.BaseCommand) {
				c.Send = &pulsarpb.CommandSend{ProducerId: proto.Uint64(7), SequenceId: proto.Uint64(3)}
			})},
		{"Send options", command.Send(7, 3, command.SendOptions{NumMessages: 5, HighestSequenceID: 7, Chunk: true, Marker: true}),
			base(pulsarpb.BaseCommand_SEND, func(c *pulsarpb.BaseCommand) {
				c.Send = &pulsarpb.CommandSend{ProducerId: proto.Uint64(7), SequenceId: proto.Uint64(3),
					NumMessages: proto.Int32(5), HighestSequenceId: proto.Uint64(7), IsChunk: proto.Bool(true), Marker: proto.Bool(true)}
			})},
		{"Subscribe", command.Subscribe("t", "s", 9, pulsarpb.CommandSubscribe_Exclusive),
			base(pulsarpb.BaseCommand_SUBSCRIBE, func(c *pulsarpb.BaseCommand) {
				c.Subscribe = &pulsarpb.CommandSubscribe{Topic: proto.String("t"), Subscription: proto.String("s"),
					ConsumerId: proto.Uint64(9), SubType: pulsarpb.CommandSubscribe_Exclusive.Enum()}
			})},
		{"Subscribe options", command.Subscribe("t", "s", 9, pulsarpb.CommandSubscribe_Key_Shared, command.SubscribeOptions{
			ConsumerName: "c", InitialPosition: pulsarpb.CommandSubscribe_Earliest, NonDurable: true, ReadCompacted: true,
			StartMessageID: &command.Earliest, StartRollback: 90 * time.Second, PriorityLevel: 2, ReplicateState: true,
			NoTopicCreation: true, KeyShared: command.KeySharedSticky(command.HashRange{Start: 0, End: 100}),
			Schema: schema, Metadata: map[string]string{"m": "1"}, SubscriptionProperties: map[string]string{"p": "2"},
			ConsumerEpoch: 4,
		}), base(pulsarpb.BaseCommand_SUBSCRIBE, func(c *pulsarpb.BaseCommand) {
			c.Subscribe = &pulsarpb.CommandSubscribe{Topic: proto.String("t"), Subscription: proto.String("s"),
				ConsumerId: proto.Uint64(9), SubType: pulsarpb.CommandSubscribe_Key_Shared.Enum(),
				ConsumerName: proto.String("c"), InitialPosition: pulsarpb.CommandSubscribe_Earliest.Enum(),
				Durable: proto.Bool(false), ReadCompacted: proto.Bool(true),
				StartMessageId:                  idData(math.MaxUint64, math.MaxUint64),
				StartMessageRollbackDurationSec: proto.Uint64(90), PriorityLevel: proto.Int32(2),
				ReplicateSubscriptionState: proto.Bool(true), ForceTopicCreation: proto.Bool(false),
				KeySharedMeta: &pulsarpb.KeySharedMeta{KeySharedMode: pulsarpb.KeySharedMode_STICKY.Enum(),
					HashRanges: []*pulsarpb.IntRange{{Start: proto.Int32(0), End: proto.Int32(100)}}},
				Schema: schema, Metadata: []*pulsarpb.KeyValue{kv("m", "1")},
				SubscriptionProperties: []*pulsarpb.KeyValue{kv("p", "2")}, ConsumerEpoch: proto.Uint64(4)}
		})},
		{"Subscribe negative rollback", command.Subscribe("t", "s", 9, pulsarpb.CommandSubscribe_Failover,
			command.SubscribeOptions{StartRollback: -time.Minute}),
			base(pulsarpb.BaseCommand_SUBSCRIBE, func(c *pulsarpb.BaseCommand) {
				c.Subscribe = &pulsarpb.CommandSubscribe{Topic: proto.String("t"), Subscription: proto.String("s"),
					ConsumerId: proto.Uint64(9), SubType: pulsarpb.CommandSubscribe_Failover.Enum()}
			})},
		{"Subscribe auto split", command.Subscribe("t", "s", 9, pulsarpb.CommandSubscribe_Key_Shared,
			command.SubscribeOptions{KeyShared: command.KeySharedAutoSplit(true)}),
			base(pulsarpb.BaseCommand_SUBSCRIBE, func(c *pulsarpb.BaseCommand) {
				c.Subscribe = &pulsarpb.CommandSubscribe{Topic: proto.String("t"), Subscription: proto.String("s"),
					ConsumerId: proto.Uint64(9), SubType: pulsarpb.CommandSubscribe_Key_Shared.Enum(),
					KeySharedMeta: &pulsarpb.KeySharedMeta{KeySharedMode: pulsarpb.KeySharedMode_AUTO_SPLIT.Enum(),
						AllowOutOfOrderDelivery: proto.Bool(true)}}
			})},
		{"Flow", command.Flow(9, 100),
			base(pulsarpb.BaseCommand_FLOW, func(c *pulsarpb.BaseCommand) {
				c.Flow = &pulsarpb.CommandFlow{ConsumerId: proto.Uint64(9), MessagePermits: proto.Uint32(100)}
			})},
		{"Ack", command.Ack(9, command.NewMessageID(1, 2), command.NewMessageID(1, 3)),
			base(pulsarpb.BaseCommand_ACK, func(c *pulsarpb.BaseCommand) {
				c.Ack = &pulsarpb.CommandAck{ConsumerId: proto.Uint64(9), AckType: pulsarpb.CommandAck_Individual.Enum(),
					MessageId: []*pulsarpb.MessageIdData{idData(1, 2), idData(1, 3)}}
			})},
		{"Ack in batch", command.Ack(9, command.NewMessageID(1, 2).InBatch(1, 4)),
			base(pulsarpb.BaseCommand_ACK, func(c *pulsarpb.BaseCommand) {
				d := idData(1, 2)
				d.AckSet = []int64{0b1101}
				c.Ack = &pulsarpb.CommandAck{ConsumerId: proto.Uint64(9), AckType: pulsarpb.CommandAck_Individual.Enum(),
					MessageId: []*pulsarpb.MessageIdData{d}}
			})},
		{"AckCumulative in batch", command.AckCumulative(9, command.NewMessageID(1, 2).InBatch(65, 70)),
			base(pulsarpb.BaseCommand_ACK, func(c *pulsarpb.BaseCommand) {
				d := idData(1, 2)
				d.AckSet = []int64{0, 0b111100} // messages 66..69 still unacknowledged
				c.Ack = &pulsarpb.CommandAck{ConsumerId: proto.Uint64(9), AckType: pulsarpb.CommandAck_Cumulative.Enum(),
					MessageId: []*pulsarpb.MessageIdData{d}}
			})},
		// An ack that leaves no message of its batch unacknowledged names the
		// whole entry: the broker moves a cursor past an entry only for an
		// ack without an ack set (with one, cumulative stops before it).
		{"AckCumulative last of batch", command.AckCumulative(9, command.NewMessageID(1, 2).InBatch(69, 70)),
			base(pulsarpb.BaseCommand_ACK, func(c *pulsarpb.BaseCommand) {
				c.Ack = &pulsarpb.CommandAck{ConsumerId: proto.Uint64(9), AckType: pulsarpb.CommandAck_Cumulative.Enum(),
					MessageId: []*pulsarpb.MessageIdData{idData(1, 2)}}
			})},
		{"Ack batch of one", command.Ack(9, command.NewMessageID(1, 2).InBatch(0, 1)),
			base(pulsarpb.BaseCommand_ACK, func(c *pulsarpb.BaseCommand) {
				c.Ack = &pulsarpb.CommandAck{ConsumerId: proto.Uint64(9), AckType: pulsarpb.CommandAck_Individual.Enum(),
					MessageId: []*pulsarpb.MessageIdData{idData(1, 2)}}
			})},
		{"Redeliver all", command.Redeliver(9),
			base(pulsarpb.BaseCommand_REDELIVER_UNACKNOWLEDGED_MESSAGES, func(c *pulsarpb.BaseCommand) {
				c.RedeliverUnacknowledgedMessages = &pulsarpb.CommandRedeliverUnacknowledgedMessages{ConsumerId: proto.Uint64(9)}
			})},
		{"RedeliverAll", command.RedeliverAll(9, 4),
			base(pulsarpb.BaseCommand_REDELIVER_UNACKNOWLEDGED_MESSAGES, func(c *pulsarpb.BaseCommand) {
				c.RedeliverUnacknowledgedMessages = &pulsarpb.CommandRedeliverUnacknowledgedMessages{ConsumerId: proto.Uint64(9),
					ConsumerEpoch: proto.Uint64(4)}
			})},
		{"Redeliver some", command.Redeliver(9, command.NewMessageID(1, 2).InBatch(0, 2)),
			base(pulsarpb.BaseCommand_REDELIVER_UNACKNOWLEDGED_MESSAGES, func(c *pulsarpb.BaseCommand) {
				c.RedeliverUnacknowledgedMessages = &pulsarpb.CommandRedeliverUnacknowledgedMessages{ConsumerId: proto.Uint64(9),
					MessageIds: []*pulsarpb.MessageIdData{idData(1, 2)}}
			})},
		{"SeekMessageID", command.SeekMessageID(9, command.MessageID{Ledger: 1, Entry: 2, Partition: 3, BatchIndex: 4, BatchSize: 5}),
			base(pulsarpb.BaseCommand_SEEK, func(c *pulsarpb.BaseCommand) {
				d := idData(1, 2)
				d.Partition, d.BatchIndex, d.BatchSize = proto.Int32(3), proto.Int32(4), proto.Int32(5)
				// The broker reads only ledger, entry and ack set: the ack
				// set says where in the batch to start (messages 4.. to
				// deliver).
				d.AckSet = []int64{0b10000}
				c.Seek = &pulsarpb.CommandSeek{ConsumerId: proto.Uint64(9), MessageId: d}
			})},
		{"SeekMessageID entry", command.SeekMessageID(9, command.NewMessageID(1, 2)),
			base(pulsarpb.BaseCommand_SEEK, func(c *pulsarpb.BaseCommand) {
				c.Seek = &pulsarpb.CommandSeek{ConsumerId: proto.Uint64(9), MessageId: idData(1, 2)}
			})},
		{"SeekTime", command.SeekTime(9, publish),
			base(pulsarpb.BaseCommand_SEEK, func(c *pulsarpb.BaseCommand) {
				c.Seek = &pulsarpb.CommandSeek{ConsumerId: proto.Uint64(9), MessagePublishTime: proto.Uint64(1_700_000_000_123)}
			})},
		{"CloseProducer", command.CloseProducer(7),
			base(pulsarpb.BaseCommand_CLOSE_PRODUCER, func(c *pulsarpb.BaseCommand) {
				c.CloseProducer = &pulsarpb.CommandCloseProducer{ProducerId: proto.Uint64(7)}
			})},
		{"CloseConsumer", command.CloseConsumer(9),
			base(pulsarpb.BaseCommand_CLOSE_CONSUMER, func(c *pulsarpb.BaseCommand) {
				c.CloseConsumer = &pulsarpb.CommandCloseConsumer{ConsumerId: proto.Uint64(9)}
			})},
		{"Unsubscribe", command.Unsubscribe(9),
			base(pulsarpb.BaseCommand_UNSUBSCRIBE, func(c *pulsarpb.BaseCommand) {
				c.Unsubscribe = &pulsarpb.CommandUnsubscribe{ConsumerId: proto.Uint64(9)}
			})},
		{"UnsubscribeForce", command.UnsubscribeForce(9),
			base(pulsarpb.BaseCommand_UNSUBSCRIBE, func(c *pulsarpb.BaseCommand) {
				c.Unsubscribe = &pulsarpb.CommandUnsubscribe{ConsumerId: proto.Uint64(9), Force: proto.Bool(true)}
			})},
		{"GetLastMessageID", command.GetLastMessageID(9),
			base(pulsarpb.BaseCommand_GET_LAST_MESSAGE_ID, func(c *pulsarpb.BaseCommand) {
				c.GetLastMessageId = &pulsarpb.CommandGetLastMessageId{ConsumerId: proto.Uint64(9)}
			})},
		{"GetSchema", command.GetSchema("t", []byte{0, 1}),
			base(pulsarpb.BaseCommand_GET_SCHEMA, func(c *pulsarpb.BaseCommand) {
				c.GetSchema = &pulsarpb.CommandGetSchema{Topic: proto.String("t"), SchemaVersion: []byte{0, 1}}
			})},
		{"GetOrCreateSchema", command.GetOrCreateSchema("t", schema),
			base(pulsarpb.BaseCommand_GET_OR_CREATE_SCHEMA, func(c *pulsarpb.BaseCommand) {
				c.GetOrCreateSchema = &pulsarpb.CommandGetOrCreateSchema{Topic: proto.String("t"), Schema: schema}
			})},
		{"GetOrCreateSchema of a primitive type", command.GetOrCreateSchema("t", command.Schema(pulsarpb.Schema_String, "", nil, nil)),
			base(pulsarpb.BaseCommand_GET_OR_CREATE_SCHEMA, func(c *pulsarpb.BaseCommand) {
				c.GetOrCreateSchema = &pulsarpb.CommandGetOrCreateSchema{Topic: proto.String("t"), Schema: &pulsarpb.Schema{
					Type: pulsarpb.Schema_String.Enum(), Name: proto.String(""), SchemaData: []byte{}}}
			})},
		{"PartitionedMetadata", command.PartitionedMetadata("t"),
			base(pulsarpb.BaseCommand_PARTITIONED_METADATA, func(c *pulsarpb.BaseCommand) {
				c.PartitionMetadata = &pulsarpb.CommandPartitionedTopicMetadata{Topic: proto.String("t")}
			})},
		{"Lookup", command.Lookup("t", command.LookupOptions{Authoritative: true, ListenerName: "internal"}),
			base(pulsarpb.BaseCommand_LOOKUP, func(c *pulsarpb.BaseCommand) {
				c.LookupTopic = &pulsarpb.CommandLookupTopic{Topic: proto.String("t"), Authoritative: proto.Bool(true),
					AdvertisedListenerName: proto.String("internal")}
			})},
		{"TopicsOfNamespace", command.TopicsOfNamespace("public/default", command.TopicsOptions{
			Mode: pulsarpb.CommandGetTopicsOfNamespace_ALL, Pattern: "o.*", Hash: "h"}),
			base(pulsarpb.BaseCommand_GET_TOPICS_OF_NAMESPACE, func(c *pulsarpb.BaseCommand) {
				c.GetTopicsOfNamespace = &pulsarpb.CommandGetTopicsOfNamespace{Namespace: proto.String("public/default"),
					Mode: pulsarpb.CommandGetTopicsOfNamespace_ALL.Enum(), TopicsPattern: proto.String("o.*"), TopicsHash: proto.String("h")}
			})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !proto.Equal(tc.got, tc.want) {
				t.Errorf("built %v\nwant  %v", tc.got, tc.want)
			}
			if _, err := frame.AppendCommand(nil, tc.got); err != nil {
				t.Errorf("does not encode: %v", err)
			}
		})
	}
}

// TestRequestIDsAreAssignable checks that every request builder gives a
// command the Broker can give a request id to.
func TestRequestIDsAreAssignable(t *testing.T) {
	for _, cmd := range []*pulsarpb.BaseCommand{
		command.Producer("t", 1), command.Subscribe("t", "s", 1, pulsarpb.CommandSubscribe_Shared),
		command.SeekTime(1, time.Now()), command.CloseProducer(1), command.CloseConsumer(1),
		command.Unsubscribe(1), command.GetLastMessageID(1), command.GetSchema("t", nil),
		command.GetOrCreateSchema("t", command.Schema(pulsarpb.Schema_None, "", nil, nil)),
		command.PartitionedMetadata("t"), command.Lookup("t"), command.TopicsOfNamespace("public/default"),
		command.Ack(1, command.NewMessageID(1, 1)),
	} {
		if !frame.SetRequestID(cmd, 42) {
			t.Errorf("%v: no request id field", cmd.GetType())
			continue
		}
		if id, ok := frame.RequestID(cmd); !ok || id != 42 {
			t.Errorf("%v: request id %d, %v after SetRequestID(42)", cmd.GetType(), id, ok)
		}
	}
}

func TestMessageID(t *testing.T) {
	id := command.NewMessageID(5, 6)
	if d := id.Data(); !proto.Equal(d, idData(5, 6)) {
		t.Errorf("NewMessageID(5, 6).Data() = %v", d)
	}
	if got := command.FromData(id.Data()); got != id {
		t.Errorf("FromData(Data()) = %v, want %v", got, id)
	}
	b := command.MessageID{Ledger: 5, Entry: 6, Partition: 0, BatchIndex: 2, BatchSize: 3}
	if got := command.FromData(b.Data()); got != b {
		t.Errorf("FromData(Data()) = %+v, want %+v", got, b)
	}
	if got := b.WholeEntry(); got != (command.MessageID{Ledger: 5, Entry: 6, Partition: 0, BatchIndex: -1}) {
		t.Errorf("WholeEntry() = %+v", got)
	}
	if got := command.FromData(nil); got != command.NewMessageID(0, 0) {
		t.Errorf("FromData(nil) = %+v", got)
	}
	if s := b.String(); s != "5:6:0:2" {
		t.Errorf("String() = %q", s)
	}
}

func TestMoreThanOneOptionsPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Producer with two options values did not panic")
		}
	}()
	command.Producer("t", 1, command.ProducerOptions{}, command.ProducerOptions{})
}
