// Package command builds the Pulsar commands a producer or consumer sends,
// as *pulsarpb.BaseCommand values ready for the Broker's Request, Send and
// RequestAsync (or frame.AppendCommand and frame.AppendMessage), without
// google.golang.org/protobuf's pointer helpers.
//
// Each builder takes the command's required fields as arguments and its
// optional ones in an options struct, given at most once (a builder panics
// on more): its zero value
// leaves every optional field unset, so the broker applies the protocol's
// default. A builder sets exactly the fields its documentation names, and
// always every field the protocol requires but the request id.
//
// Request ids are not set here: the request_id field of PRODUCER,
// SUBSCRIBE, SEEK, CLOSE_*, UNSUBSCRIBE, GET_LAST_MESSAGE_ID, LOOKUP,
// PARTITIONED_METADATA, GET_TOPICS_OF_NAMESPACE and the schema commands is
// left unset (its getter reads 0). The Broker's Request, RequestOn and
// RequestAsync assign the next id of the connection (frame.SetRequestID),
// overwriting any id already there, so one command value may be sent again.
// An ACK built here has no request id either: sent with Send it asks for no
// answer; sent with Request it becomes a request answered by ACK_RESPONSE.
//
// Producer and consumer ids are the caller's: take them from the Broker's
// NewProducerID and NewConsumerID, the ids the producer or consumer is
// registered under.
package command

import (
	"maps"
	"slices"
	"time"

	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// only returns the single options value of a builder, or the zero value;
// more than one is a programming error.
func only[O any](name string, opts []O) O {
	var o O
	switch len(opts) {
	case 0:
	case 1:
		o = opts[0]
	default:
		panic("command: " + name + " takes at most one options value")
	}
	return o
}

// ptr returns a pointer to v when v is not its type's zero value, nil
// otherwise: an optional field set only when given.
func ptr[T comparable](v T) *T {
	var zero T
	if v == zero {
		return nil
	}
	return &v
}

// keyValues converts m to the wire's key-value list, sorted by key so that
// the same map always gives the same bytes. An empty m gives nil.
func keyValues(m map[string]string) []*pulsarpb.KeyValue {
	if len(m) == 0 {
		return nil
	}
	out := make([]*pulsarpb.KeyValue, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, &pulsarpb.KeyValue{Key: &k, Value: new(m[k])})
	}
	return out
}

// ProducerOptions are PRODUCER's optional fields.
type ProducerOptions struct {
	// Name is the producer's name; empty lets the broker choose one (read it
	// from the PRODUCER_SUCCESS answer's producer_name). When set, the
	// command also says whether the user chose it (user_provided_producer_name
	// = !NameFromBroker).
	Name string
	// NameFromBroker says that Name is the one the broker chose for this
	// producer before, given again when the producer is re-created.
	NameFromBroker bool
	// AccessMode is Shared (the default), Exclusive, WaitForExclusive or
	// ExclusiveWithFencing; set when not Shared.
	AccessMode pulsarpb.ProducerAccessMode
	// Epoch counts the producer's re-creations (0, the default, is unset).
	Epoch uint64
	// TopicEpoch is the topic epoch an exclusive producer got from its last
	// PRODUCER_SUCCESS (its TopicEpoch field, passed as is); nil is unset.
	TopicEpoch *uint64
	// Schema is the producer's schema (see Schema); nil is unset.
	Schema *pulsarpb.Schema
	// Metadata is set as the producer's metadata, sorted by key.
	Metadata map[string]string
	// Encrypted says the producer's messages are encrypted.
	Encrypted bool
	// InitialSubscription asks the broker to create this subscription with
	// the topic.
	InitialSubscription string
}

// Producer builds a PRODUCER: create producer producerID on topic.
func Producer(topic string, producerID uint64, opts ...ProducerOptions) *pulsarpb.BaseCommand {
	o := only("Producer", opts)
	p := &pulsarpb.CommandProducer{
		Topic:                   &topic,
		ProducerId:              &producerID,
		Encrypted:               ptr(o.Encrypted),
		Metadata:                keyValues(o.Metadata),
		Schema:                  o.Schema,
		Epoch:                   ptr(o.Epoch),
		TopicEpoch:              o.TopicEpoch,
		InitialSubscriptionName: ptr(o.InitialSubscription),
	}
	if o.Name != "" {
		p.ProducerName = &o.Name
		p.UserProvidedProducerName = new(!o.NameFromBroker)
	}
	if o.AccessMode != pulsarpb.ProducerAccessMode_Shared {
		p.ProducerAccessMode = o.AccessMode.Enum()
	}
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_PRODUCER.Enum(), Producer: p}
}

// SendOptions are SEND's optional fields.
type SendOptions struct {
	// NumMessages is the number of messages in the payload, for a batch; 0
	// leaves it unset (the protocol's default is 1).
	NumMessages int32
	// HighestSequenceID is the last sequence id of a batch whose messages
	// carry their own; 0 is unset.
	HighestSequenceID uint64
	// Chunk says the payload is one chunk of a larger message.
	Chunk bool
	// Marker says the payload is a marker, not a user message.
	Marker bool
}

// Send builds a SEND: the command of a payload frame that producer
// producerID publishes with sequence id sequenceID. Encode it with its
// metadata and payload (frame.AppendMessage, frame.AppendPayload) and
// publish the bytes.
func Send(producerID, sequenceID uint64, opts ...SendOptions) *pulsarpb.BaseCommand {
	o := only("Send", opts)
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_SEND.Enum(), Send: &pulsarpb.CommandSend{
		ProducerId:        &producerID,
		SequenceId:        &sequenceID,
		NumMessages:       ptr(o.NumMessages),
		HighestSequenceId: ptr(o.HighestSequenceID),
		IsChunk:           ptr(o.Chunk),
		Marker:            ptr(o.Marker),
	}}
}

// SubscribeOptions are SUBSCRIBE's optional fields.
type SubscribeOptions struct {
	// ConsumerName is the consumer's name; empty lets the broker choose.
	ConsumerName string
	// InitialPosition is where a new subscription starts: Latest (the
	// default) or Earliest; set when not Latest.
	InitialPosition pulsarpb.CommandSubscribe_InitialPosition
	// NonDurable asks for a subscription that is not stored (durable=false).
	NonDurable bool
	// ReadCompacted reads the compacted view of the topic.
	ReadCompacted bool
	// StartMessageID is where a non-durable subscription (a reader) starts;
	// nil is unset. Earliest and Latest are the topic's ends.
	StartMessageID *MessageID
	// StartRollback starts a new subscription this long before now (whole
	// seconds); 0 or less is unset.
	StartRollback time.Duration
	// PriorityLevel is the consumer's priority on a Shared subscription (0,
	// the highest, is unset).
	PriorityLevel int32
	// ReplicateState asks the broker to replicate the subscription's state
	// to other clusters.
	ReplicateState bool
	// NoTopicCreation refuses to create the topic when it does not exist
	// (force_topic_creation=false).
	NoTopicCreation bool
	// KeyShared is the Key_Shared mode and hash ranges; nil is unset (see
	// KeySharedSticky, KeySharedAutoSplit).
	KeyShared *pulsarpb.KeySharedMeta
	// Schema is the consumer's schema (see Schema); nil is unset.
	Schema *pulsarpb.Schema
	// Metadata is set as the consumer's metadata, sorted by key.
	Metadata map[string]string
	// SubscriptionProperties are set on a new subscription, sorted by key.
	SubscriptionProperties map[string]string
	// ConsumerEpoch counts the consumer's redeliveries of everything (0 is
	// unset); the broker stamps each MESSAGE with the consumer's epoch, and
	// RedeliverAll raises it.
	ConsumerEpoch uint64
}

// Subscribe builds a SUBSCRIBE: create consumer consumerID on subscription
// of topic, of type subType (Exclusive, Shared, Failover, Key_Shared).
func Subscribe(topic, subscription string, consumerID uint64, subType pulsarpb.CommandSubscribe_SubType, opts ...SubscribeOptions) *pulsarpb.BaseCommand {
	o := only("Subscribe", opts)
	s := &pulsarpb.CommandSubscribe{
		Topic:                      &topic,
		Subscription:               &subscription,
		SubType:                    subType.Enum(),
		ConsumerId:                 &consumerID,
		ConsumerName:               ptr(o.ConsumerName),
		PriorityLevel:              ptr(o.PriorityLevel),
		Metadata:                   keyValues(o.Metadata),
		ReadCompacted:              ptr(o.ReadCompacted),
		Schema:                     o.Schema,
		KeySharedMeta:              o.KeyShared,
		SubscriptionProperties:     keyValues(o.SubscriptionProperties),
		ConsumerEpoch:              ptr(o.ConsumerEpoch),
		ReplicateSubscriptionState: ptr(o.ReplicateState),
	}
	if o.StartRollback > 0 {
		s.StartMessageRollbackDurationSec = ptr(uint64(o.StartRollback / time.Second))
	}
	if o.NonDurable {
		s.Durable = new(false)
	}
	if o.NoTopicCreation {
		s.ForceTopicCreation = new(false)
	}
	if o.StartMessageID != nil {
		s.StartMessageId = o.StartMessageID.Data()
	}
	if o.InitialPosition != pulsarpb.CommandSubscribe_Latest {
		s.InitialPosition = o.InitialPosition.Enum()
	}
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_SUBSCRIBE.Enum(), Subscribe: s}
}

// HashRange is a range of key hashes, both ends included, for a sticky
// Key_Shared consumer.
type HashRange struct{ Start, End int32 }

// KeySharedAutoSplit is the Key_Shared meta of a consumer whose hash range
// the broker assigns; allowOutOfOrder lets the broker deliver a key's
// messages to a new consumer before the old one acked its own.
func KeySharedAutoSplit(allowOutOfOrder bool) *pulsarpb.KeySharedMeta {
	return &pulsarpb.KeySharedMeta{
		KeySharedMode:           pulsarpb.KeySharedMode_AUTO_SPLIT.Enum(),
		AllowOutOfOrderDelivery: ptr(allowOutOfOrder),
	}
}

// KeySharedSticky is the Key_Shared meta of a consumer that takes the
// given hash ranges.
func KeySharedSticky(ranges ...HashRange) *pulsarpb.KeySharedMeta {
	m := &pulsarpb.KeySharedMeta{KeySharedMode: pulsarpb.KeySharedMode_STICKY.Enum()}
	for _, r := range ranges {
		m.HashRanges = append(m.HashRanges, &pulsarpb.IntRange{Start: &r.Start, End: &r.End})
	}
	return m
}

// Flow builds a FLOW: grant consumer consumerID permits more messages.
func Flow(consumerID uint64, permits uint32) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_FLOW.Enum(), Flow: &pulsarpb.CommandFlow{
		ConsumerId: &consumerID, MessagePermits: &permits,
	}}
}

// Ack builds an individual ACK of the messages ids (one or more) by
// consumer consumerID.
// Each id is sent as its ledger and entry; an id of a message in a batch of
// known size above one (BatchIndex >= 0, BatchSize > 1) also carries the
// ack set that acknowledges that one message of the batch, which a broker
// with batch-index acknowledgment enabled honours (any other ignores such
// an ack: ack id.WholeEntry() once all of the entry's messages are done).
func Ack(consumerID uint64, ids ...MessageID) *pulsarpb.BaseCommand {
	data := make([]*pulsarpb.MessageIdData, len(ids))
	for i, id := range ids {
		data[i] = id.ackData(false)
	}
	return ack(consumerID, pulsarpb.CommandAck_Individual, data)
}

// AckCumulative builds a cumulative ACK: consumer consumerID acknowledges
// every message up to and including id (on an Exclusive or Failover
// subscription). id is sent as for Ack, its ack set acknowledging the
// batch's messages up to its own (a broker without batch-index
// acknowledgment moves the cursor only to the entry before); the last
// message of a batch is sent as its whole entry, without an ack set,
// which is what moves the subscription's cursor past that entry.
func AckCumulative(consumerID uint64, id MessageID) *pulsarpb.BaseCommand {
	return ack(consumerID, pulsarpb.CommandAck_Cumulative, []*pulsarpb.MessageIdData{id.ackData(true)})
}

func ack(consumerID uint64, typ pulsarpb.CommandAck_AckType, ids []*pulsarpb.MessageIdData) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_ACK.Enum(), Ack: &pulsarpb.CommandAck{
		ConsumerId: &consumerID, AckType: typ.Enum(), MessageId: ids,
	}}
}

// Redeliver builds a REDELIVER_UNACKNOWLEDGED_MESSAGES: ask the broker to
// deliver again to consumer consumerID's subscription the entries of ids
// (ledger and entry each), or, with no ids, every message it delivered to
// the consumer and the consumer has not acknowledged. A broker honours the
// list on Shared and Key_Shared subscriptions only; on the others it
// redelivers everything unacknowledged.
func Redeliver(consumerID uint64, ids ...MessageID) *pulsarpb.BaseCommand {
	r := &pulsarpb.CommandRedeliverUnacknowledgedMessages{ConsumerId: &consumerID}
	for _, id := range ids {
		r.MessageIds = append(r.MessageIds, id.entryData())
	}
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_REDELIVER_UNACKNOWLEDGED_MESSAGES.Enum(), RedeliverUnacknowledgedMessages: r}
}

// RedeliverAll builds a REDELIVER_UNACKNOWLEDGED_MESSAGES of everything
// consumer consumerID has not acknowledged, carrying the consumer's new
// epoch (above the one it subscribed with, see SubscribeOptions, or last
// sent here): the broker stamps the MESSAGEs it sends from then on with
// it, so that the consumer can drop those of an older epoch still in
// flight, which the redelivery sends again.
func RedeliverAll(consumerID, epoch uint64) *pulsarpb.BaseCommand {
	cmd := Redeliver(consumerID)
	cmd.RedeliverUnacknowledgedMessages.ConsumerEpoch = &epoch
	return cmd
}

// SeekMessageID builds a SEEK: move consumer consumerID's subscription to
// id (sent as id.Data()). Earliest and Latest are the topic's ends. The
// broker reads only the ledger and entry, and for a message of a batch of
// known size an ack set added here: a broker with batch-index
// acknowledgment enabled then starts at id's message, any other at the
// first message of its batch (the consumer skips those before id).
func SeekMessageID(consumerID uint64, id MessageID) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_SEEK.Enum(), Seek: &pulsarpb.CommandSeek{
		ConsumerId: &consumerID, MessageId: id.seekData(),
	}}
}

// SeekTime builds a SEEK: move consumer consumerID's subscription to the
// first message published at or after t (in milliseconds).
func SeekTime(consumerID uint64, t time.Time) *pulsarpb.BaseCommand {
	ms := uint64(t.UnixMilli())
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_SEEK.Enum(), Seek: &pulsarpb.CommandSeek{
		ConsumerId: &consumerID, MessagePublishTime: &ms,
	}}
}

// CloseProducer builds a CLOSE_PRODUCER for producer producerID.
func CloseProducer(producerID uint64) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_CLOSE_PRODUCER.Enum(),
		CloseProducer: &pulsarpb.CommandCloseProducer{ProducerId: &producerID}}
}

// CloseConsumer builds a CLOSE_CONSUMER for consumer consumerID (its
// subscription stays).
func CloseConsumer(consumerID uint64) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_CLOSE_CONSUMER.Enum(),
		CloseConsumer: &pulsarpb.CommandCloseConsumer{ConsumerId: &consumerID}}
}

// Unsubscribe builds an UNSUBSCRIBE: delete consumer consumerID's
// subscription, which the broker refuses while other consumers use it.
func Unsubscribe(consumerID uint64) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_UNSUBSCRIBE.Enum(),
		Unsubscribe: &pulsarpb.CommandUnsubscribe{ConsumerId: &consumerID}}
}

// UnsubscribeForce is Unsubscribe with force set: the broker disconnects
// the subscription's other consumers and deletes it.
func UnsubscribeForce(consumerID uint64) *pulsarpb.BaseCommand {
	cmd := Unsubscribe(consumerID)
	cmd.Unsubscribe.Force = new(true)
	return cmd
}

// GetLastMessageID builds a GET_LAST_MESSAGE_ID for consumer consumerID's
// topic; FromData converts the answer's last_message_id.
func GetLastMessageID(consumerID uint64) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_GET_LAST_MESSAGE_ID.Enum(),
		GetLastMessageId: &pulsarpb.CommandGetLastMessageId{ConsumerId: &consumerID}}
}

// Schema returns a schema of type typ, with name, definition data (for
// Avro, JSON and Protobuf, the schema's definition; empty for the
// primitive types) and properties (sorted by key), for ProducerOptions,
// SubscribeOptions and GetOrCreateSchema. Name, data and type are always
// set, even when empty: the protocol requires them.
func Schema(typ pulsarpb.Schema_Type, name string, data []byte, properties map[string]string) *pulsarpb.Schema {
	if data == nil {
		data = []byte{}
	}
	return &pulsarpb.Schema{Type: typ.Enum(), Name: &name, SchemaData: data, Properties: keyValues(properties)}
}

// GetSchema builds a GET_SCHEMA for topic's schema at version, or its
// latest with a nil version.
func GetSchema(topic string, version []byte) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_GET_SCHEMA.Enum(),
		GetSchema: &pulsarpb.CommandGetSchema{Topic: &topic, SchemaVersion: version}}
}

// GetOrCreateSchema builds a GET_OR_CREATE_SCHEMA: add schema to topic
// unless it has it; the answer holds its version.
func GetOrCreateSchema(topic string, schema *pulsarpb.Schema) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_GET_OR_CREATE_SCHEMA.Enum(),
		GetOrCreateSchema: &pulsarpb.CommandGetOrCreateSchema{Topic: &topic, Schema: schema}}
}

// PartitionedMetadata builds a PARTITIONED_METADATA for topic (the Broker's
// PartitionedTopicMetadata sends it too).
func PartitionedMetadata(topic string) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_PARTITIONED_METADATA.Enum(),
		PartitionMetadata: &pulsarpb.CommandPartitionedTopicMetadata{Topic: &topic}}
}

// LookupOptions are LOOKUP's optional fields.
type LookupOptions struct {
	// Authoritative is set when following a redirect the broker marked
	// authoritative.
	Authoritative bool
	// ListenerName asks for the broker's URL on that advertised listener.
	ListenerName string
}

// Lookup builds a LOOKUP for topic (the Broker's LookupTopic sends it too).
func Lookup(topic string, opts ...LookupOptions) *pulsarpb.BaseCommand {
	o := only("Lookup", opts)
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_LOOKUP.Enum(), LookupTopic: &pulsarpb.CommandLookupTopic{
		Topic:                  &topic,
		Authoritative:          ptr(o.Authoritative),
		AdvertisedListenerName: ptr(o.ListenerName),
	}}
}

// TopicsOptions are GET_TOPICS_OF_NAMESPACE's optional fields.
type TopicsOptions struct {
	// Mode is PERSISTENT (the default), NON_PERSISTENT or ALL; set when not
	// PERSISTENT.
	Mode pulsarpb.CommandGetTopicsOfNamespace_Mode
	// Pattern keeps only the topics whose name matches this regular
	// expression (on brokers that filter).
	Pattern string
	// Hash is the hash of the list the caller has, so that the broker can
	// answer "unchanged".
	Hash string
}

// TopicsOfNamespace builds a GET_TOPICS_OF_NAMESPACE for namespace
// ("tenant/namespace").
func TopicsOfNamespace(namespace string, opts ...TopicsOptions) *pulsarpb.BaseCommand {
	o := only("TopicsOfNamespace", opts)
	g := &pulsarpb.CommandGetTopicsOfNamespace{
		Namespace:     &namespace,
		TopicsPattern: ptr(o.Pattern),
		TopicsHash:    ptr(o.Hash),
	}
	if o.Mode != pulsarpb.CommandGetTopicsOfNamespace_PERSISTENT {
		g.Mode = o.Mode.Enum()
	}
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_GET_TOPICS_OF_NAMESPACE.Enum(), GetTopicsOfNamespace: g}
}
