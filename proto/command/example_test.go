package command_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/adapters/memory"
	"github.com/pulsarconn/pulsarconn/proto/command"
	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// A consumer on a fake broker: subscribe from the earliest message, grant
// permits, receive, acknowledge. The request ids are the Broker's.
func Example() {
	network := memory.NewNetwork()
	l, err := network.Listen("broker:6650")
	if err != nil {
		log.Fatal(err)
	}
	srv := pulsartest.NewServer(pulsartest.WithAdvertisedURL("pulsar://broker:6650"))
	go srv.Serve(l)
	defer srv.Close()
	const topic = "persistent://public/default/orders"
	srv.Publish(topic, nil, []byte("order 1"))

	b, err := pulsarconn.Start("pulsar://broker:6650", pulsarconn.WithTransport(network))
	if err != nil {
		log.Fatal(err)
	}
	defer b.Stop(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	id := b.NewConsumerID()
	messages := make(chan pulsarconn.Push, 1)
	reg, err := b.RegisterConsumer(ctx, id, pulsarconn.HandlerFunc(func(p pulsarconn.Push) {
		if p.Kind == pulsarconn.PushMessage {
			messages <- p
		}
	}))
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Close(context.Background())

	if _, err := b.Request(ctx, command.Subscribe(topic, "billing", id, pulsarpb.CommandSubscribe_Shared,
		command.SubscribeOptions{InitialPosition: pulsarpb.CommandSubscribe_Earliest})); err != nil {
		log.Fatal(err)
	}
	if err := b.Send(ctx, command.Flow(id, 100)); err != nil {
		log.Fatal(err)
	}
	m := <-messages
	msgID := command.FromData(m.Command.GetMessage().GetMessageId())
	fmt.Printf("%s at entry %d\n", m.Payload.Data, msgID.Entry)
	if err := b.Send(ctx, command.Ack(id, msgID)); err != nil {
		log.Fatal(err)
	}
	// Output: order 1 at entry 0
}

// A SEND is the command of a payload frame: encode it with the message's
// metadata and payload, then publish the bytes.
func ExampleSend() {
	producerID, sequenceID := uint64(1), uint64(41)
	md := &pulsarpb.MessageMetadata{ProducerName: new("p"), SequenceId: &sequenceID, PublishTime: new(uint64(1_700_000_000_000))}
	encoded, err := frame.AppendMessage(nil, command.Send(producerID, sequenceID), md, []byte("hello"))
	if err != nil {
		log.Fatal(err)
	}
	f, err := frame.Parse(encoded[4:])
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(f.Command.GetType(), f.Command.GetSend().GetSequenceId(), string(f.Payload.Data))
	// Output: SEND 41 hello
}

// A producer that the broker named, re-created after a reconnect, gives
// the name back and says it is the broker's.
func ExampleProducer() {
	cmd := command.Producer("persistent://public/default/orders", 1, command.ProducerOptions{
		Name:           "standalone-0-7", // from the first PRODUCER_SUCCESS
		NameFromBroker: true,
		Epoch:          1,
	})
	p := cmd.GetProducer()
	fmt.Println(p.GetProducerName(), p.GetUserProvidedProducerName(), p.GetEpoch(), p.GetRequestId())
	// Output: standalone-0-7 false 1 0
}

// A reader: a non-durable subscription that starts at a given message.
func ExampleSubscribe() {
	start := command.NewMessageID(12, 3)
	cmd := command.Subscribe("persistent://public/default/orders", "reader-1", 2, pulsarpb.CommandSubscribe_Exclusive,
		command.SubscribeOptions{NonDurable: true, StartMessageID: &start})
	s := cmd.GetSubscribe()
	fmt.Println(s.GetSubType(), s.GetDurable(), command.FromData(s.GetStartMessageId()))
	// Output: Exclusive false 12:3:-1:-1
}

// Acknowledging one message of a batch sends its entry with an ack set:
// one bit per message of the batch, set for those still unacknowledged.
func ExampleAck() {
	id := command.NewMessageID(12, 3).InBatch(1, 4)
	ack := command.Ack(7, id).GetAck()
	fmt.Printf("%v %d:%d ack set %04b\n", ack.GetAckType(), ack.MessageId[0].GetLedgerId(), ack.MessageId[0].GetEntryId(), ack.MessageId[0].GetAckSet()[0])
	cumulative := command.AckCumulative(7, id).GetAck()
	fmt.Printf("%v ack set %04b\n", cumulative.GetAckType(), cumulative.MessageId[0].GetAckSet()[0])
	// Output:
	// Individual 12:3 ack set 1101
	// Cumulative ack set 1100
}

// MessageID converts the ids the broker sends (receipts, messages, the
// last message id) and back.
func ExampleFromData() {
	d := &pulsarpb.MessageIdData{LedgerId: new(uint64(12)), EntryId: new(uint64(3)), Partition: new(int32(2))}
	id := command.FromData(d)
	fmt.Println(id, id.Partition, id.BatchIndex)
	fmt.Println(command.SeekMessageID(5, id).GetSeek().GetMessageId().GetPartition())
	// Output:
	// 12:3:2:-1 2 -1
	// 2
}
