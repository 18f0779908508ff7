package refclient

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// The commands and frames refclient sends, and the decoding of what it
// receives, are kept here, in small functions, so that the rest of the
// package reads as the logic of a producer and a consumer.

// producerCommand is the PRODUCER that creates (or re-creates) producer id
// on topic under name (empty: the broker picks one).
func producerCommand(topic string, id uint64, name string) *pulsarpb.BaseCommand {
	cmd := &pulsarpb.CommandProducer{Topic: proto.String(topic), ProducerId: proto.Uint64(id)}
	if name != "" {
		cmd.ProducerName = proto.String(name)
	}
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_PRODUCER.Enum(), Producer: cmd}
}

// encodeMetadata encodes the MessageMetadata of m, sent by producer name
// as sequence id seq at publish time now.
func encodeMetadata(name string, seq uint64, m *Message, now time.Time) ([]byte, error) {
	md := &pulsarpb.MessageMetadata{
		ProducerName: proto.String(name),
		SequenceId:   proto.Uint64(seq),
		PublishTime:  proto.Uint64(uint64(now.UnixMilli())),
	}
	if m.Key != "" {
		md.PartitionKey = proto.String(m.Key)
	}
	if !m.EventTime.IsZero() {
		md.EventTime = proto.Uint64(uint64(m.EventTime.UnixMilli()))
	}
	for _, k := range slices.Sorted(maps.Keys(m.Properties)) {
		md.Properties = append(md.Properties, &pulsarpb.KeyValue{Key: proto.String(k), Value: proto.String(m.Properties[k])})
	}
	b, err := md.MarshalVT()
	if err != nil {
		return nil, fmt.Errorf("refclient: encode message metadata: %w", err)
	}
	return b, nil
}

// appendSend appends the SEND frame of message seq, whose metadata is
// already encoded, from producer id.
func appendSend(dst []byte, id, seq uint64, metadata, payload []byte) ([]byte, error) {
	cmd := &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_SEND.Enum(),
		Send: &pulsarpb.CommandSend{ProducerId: proto.Uint64(id), SequenceId: proto.Uint64(seq)}}
	return frame.AppendPayload(dst, cmd, metadata, payload)
}

// subscribeCommand is the SUBSCRIBE that attaches consumer id to
// subscription sub of topic.
func subscribeCommand(topic, sub string, id uint64, o *ConsumerOptions) *pulsarpb.BaseCommand {
	cmd := &pulsarpb.CommandSubscribe{
		Topic:           proto.String(topic),
		Subscription:    proto.String(sub),
		SubType:         o.Type.Enum(),
		ConsumerId:      proto.Uint64(id),
		Durable:         proto.Bool(true),
		InitialPosition: o.InitialPosition.Enum(),
		// As the Pulsar clients do: a topic is created by its first
		// producer or consumer.
		ForceTopicCreation: proto.Bool(true),
	}
	if o.Name != "" {
		cmd.ConsumerName = proto.String(o.Name)
	}
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_SUBSCRIBE.Enum(), Subscribe: cmd}
}

// flowCommand grants consumer id n more messages.
func flowCommand(id uint64, n int) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_FLOW.Enum(),
		Flow: &pulsarpb.CommandFlow{ConsumerId: proto.Uint64(id), MessagePermits: proto.Uint32(uint32(n))}}
}

// ackCommand acknowledges message mid individually for consumer id. Sent
// with Request, it asks for an ACK_RESPONSE.
func ackCommand(id uint64, mid MessageID) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_ACK.Enum(),
		Ack: &pulsarpb.CommandAck{
			ConsumerId: proto.Uint64(id),
			AckType:    pulsarpb.CommandAck_Individual.Enum(),
			MessageId:  []*pulsarpb.MessageIdData{{LedgerId: proto.Uint64(mid.LedgerID), EntryId: proto.Uint64(mid.EntryID)}},
		}}
}

// redeliverCommand asks the broker to send message mid to consumer id
// again (on an Exclusive or Failover subscription: every unacknowledged
// message).
func redeliverCommand(id uint64, mid MessageID) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_REDELIVER_UNACKNOWLEDGED_MESSAGES.Enum(),
		RedeliverUnacknowledgedMessages: &pulsarpb.CommandRedeliverUnacknowledgedMessages{
			ConsumerId: proto.Uint64(id),
			MessageIds: []*pulsarpb.MessageIdData{{LedgerId: proto.Uint64(mid.LedgerID), EntryId: proto.Uint64(mid.EntryID)}},
		}}
}

// messageID turns the protocol's message id into a MessageID.
func messageID(id *pulsarpb.MessageIdData) MessageID {
	return MessageID{LedgerID: id.GetLedgerId(), EntryID: id.GetEntryId()}
}

// decodeMessages returns the messages a MESSAGE push carries (its
// payload's checksum already checked).
func decodeMessages(cmd *pulsarpb.CommandMessage, p *frame.Payload) ([]*Message, error) {
	md, err := p.DecodeMetadata()
	if err != nil {
		return nil, err
	}
	if md.NumMessagesInBatch != nil || md.GetCompression() != pulsarpb.CompressionType_NONE {
		return nil, errUnsupported
	}
	m := &Message{
		ID:              messageID(cmd.GetMessageId()),
		Payload:         append([]byte(nil), p.Data...),
		Key:             md.GetPartitionKey(),
		ProducerName:    md.GetProducerName(),
		SequenceID:      md.GetSequenceId(),
		PublishTime:     time.UnixMilli(int64(md.GetPublishTime())),
		RedeliveryCount: cmd.GetRedeliveryCount(),
	}
	if md.EventTime != nil {
		m.EventTime = time.UnixMilli(int64(md.GetEventTime()))
	}
	if len(md.Properties) > 0 {
		m.Properties = make(map[string]string, len(md.Properties))
		for _, kv := range md.Properties {
			m.Properties[kv.GetKey()] = kv.GetValue()
		}
	}
	return []*Message{m}, nil
}
