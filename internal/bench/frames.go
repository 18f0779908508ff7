package bench

import (
	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// Topic is the topic every scenario names.
const Topic = "persistent://public/default/bench"

// PayloadSize is the message payload of the publish, receipts and
// delivery scenarios.
const PayloadSize = 1024

// SendFrame returns a pre-encoded SEND payload frame for producer with
// sequence id seq and a payload of size bytes: what a producer library
// hands to Broker.PublishMessage.
func SendFrame(producer, seq uint64, size int) []byte {
	t := sendTemplate(producer, size)
	return t.set(seq)
}

// sendTemplate is a SEND frame with its sequence id in a slot. The
// checksum covers the metadata and payload only, so patching the command
// leaves it valid.
func sendTemplate(producer uint64, size int) template {
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte('A' + i%26)
	}
	md := &pulsarpb.MessageMetadata{ProducerName: ptr("bench"), SequenceId: ptr(uint64(0)), PublishTime: ptr(uint64(1))}
	return mustTemplate(newTemplate(1, func(dst []byte) ([]byte, error) {
		return frame.AppendMessage(dst, &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_SEND.Enum(), Send: &pulsarpb.CommandSend{
			ProducerId: ptr(producer), SequenceId: ptr(sentinel(0)), NumMessages: ptr(int32(1)),
		}}, md, payload)
	}))
}

// The raw client's pre-encoded commands.
var (
	connectFrame = mustEncode(&pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_CONNECT.Enum(), Connect: &pulsarpb.CommandConnect{
		ClientVersion: ptr("bench-raw"), ProtocolVersion: ptr(frame.ProtocolVersion),
	}})
	partitionsTemplate = mustTemplate(commandTemplate(1, &pulsarpb.BaseCommand{
		Type:              pulsarpb.BaseCommand_PARTITIONED_METADATA.Enum(),
		PartitionMetadata: &pulsarpb.CommandPartitionedTopicMetadata{Topic: ptr(Topic), RequestId: ptr(sentinel(0))},
	}))
)

func mustEncode(cmd *pulsarpb.BaseCommand) []byte {
	b, err := frame.AppendCommand(nil, cmd)
	if err != nil {
		panic(err)
	}
	return b
}

// producerCommand is the PRODUCER request of the receipts scenario.
func producerCommand(id uint64) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_PRODUCER.Enum(), Producer: &pulsarpb.CommandProducer{
		Topic: ptr(Topic), ProducerId: ptr(id), RequestId: ptr(uint64(0)),
	}}
}

// subscribeCommand is the SUBSCRIBE request of the delivery scenario.
func subscribeCommand(id uint64) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_SUBSCRIBE.Enum(), Subscribe: &pulsarpb.CommandSubscribe{
		Topic: ptr(Topic), Subscription: ptr("bench"), SubType: pulsarpb.CommandSubscribe_Exclusive.Enum(),
		ConsumerId: ptr(id), RequestId: ptr(uint64(0)),
	}}
}

// flowCommand grants n permits to consumer id.
func flowCommand(id uint64, n uint32) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_FLOW.Enum(), Flow: &pulsarpb.CommandFlow{ConsumerId: ptr(id), MessagePermits: ptr(n)}}
}

// The delivery scenario's flow control, as a consumer with a receiver
// queue of queueSize does it: queueSize permits at first, then refill
// permits each time refill messages have arrived.
const (
	queueSize = 1000
	refill    = queueSize / 2
)

// permits returns how many permits a delivery loop that has granted
// granted asks for when it wants want more: want, but under a count
// budget never past the budget, so that no message is sent beyond the
// loop's last. (Without that, the library's loop, whose consumer's Close
// reads what was granted and not yet sent, read a tail of messages whose
// length hung on timing: its counted instructions per message varied by
// 8% between runs.)
func (b Budget) permits(granted, want int) int {
	if b.Count > 0 {
		return max(0, min(want, b.Count-granted))
	}
	return want
}
