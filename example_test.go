package pulsarconn_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/adapters/memory"
	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// fakeBroker starts pulsartest on an in-memory network, as a unit test
// would.
func fakeBroker() (*memory.Network, *pulsartest.Server) {
	network := memory.NewNetwork()
	l, err := network.Listen("broker:6650")
	if err != nil {
		log.Fatal(err)
	}
	srv := pulsartest.NewServer(pulsartest.WithAdvertisedURL("pulsar://broker:6650"))
	go srv.Serve(l)
	return network, srv
}

func ExampleStart() {
	network, srv := fakeBroker()
	defer srv.Close()
	srv.SetPartitions("persistent://public/default/orders", 3)

	b, err := pulsarconn.Start("pulsar://broker:6650", pulsarconn.WithTransport(network))
	if err != nil {
		log.Fatal(err)
	}
	defer b.Stop(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.WaitConnected(ctx); err != nil {
		log.Fatal(err)
	}
	res, err := b.LookupTopic(ctx, "persistent://public/default/orders", false)
	if err != nil {
		log.Fatal(err)
	}
	n, err := b.PartitionedTopicMetadata(ctx, "persistent://public/default/orders")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.BrokerURL, n)
	// Output: pulsar://broker:6650 3
}

// exampleSend encodes message seq of producer id as a SEND frame.
func exampleSend(id, seq uint64, body string) []byte {
	msg, err := frame.AppendMessage(nil,
		&pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_SEND.Enum(),
			Send: &pulsarpb.CommandSend{ProducerId: proto.Uint64(id), SequenceId: proto.Uint64(seq)}},
		&pulsarpb.MessageMetadata{ProducerName: proto.String("example"), SequenceId: proto.Uint64(seq),
			PublishTime: proto.Uint64(uint64(time.Now().UnixMilli()))},
		[]byte(body))
	if err != nil {
		log.Fatal(err)
	}
	return msg
}

func ExampleBroker_RegisterProducer() {
	network, srv := fakeBroker()
	defer srv.Close()
	b, err := pulsarconn.Start("pulsar://broker:6650", pulsarconn.WithTransport(network))
	if err != nil {
		log.Fatal(err)
	}
	defer b.Stop(context.Background())

	// The registration lives as long as the producer: its context is not
	// a request's timeout, and Close ends it. Its Handler gets this
	// producer's receipts and, last, PushEnded.
	// This one takes what it needs of a receipt, then releases it, so
	// that the next receipt reuses its memory (Push.Release).
	receipts := make(chan uint64, 1)
	id := b.NewProducerID()
	reg, err := b.RegisterProducer(context.Background(), id, pulsarconn.HandlerFunc(func(p pulsarconn.Push) {
		if p.Kind == pulsarconn.PushReceipt {
			receipts <- p.Command.GetSendReceipt().GetSequenceId()
			p.Release()
		}
	}))
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Close(context.Background())

	// Each call has its own timeout. Create makes the producer on the
	// broker and binds the registration to that connection; Publish sends
	// only there (after a PushDisconnected or PushClosed, Create again).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := reg.Create(ctx, &pulsarpb.BaseCommand{
		Type:     pulsarpb.BaseCommand_PRODUCER.Enum(),
		Producer: &pulsarpb.CommandProducer{Topic: proto.String("persistent://public/default/t"), ProducerId: proto.Uint64(id)},
	}); err != nil {
		log.Fatal(err)
	}
	if err := reg.Publish(ctx, exampleSend(id, 0, "hello")); err != nil {
		log.Fatal(err)
	}
	fmt.Println("receipt for sequence id", <-receipts)
	// Output: receipt for sequence id 0
}

func ExampleClient() {
	network, srv := fakeBroker()
	defer srv.Close()

	// A Client looks topics up from the service URL and holds one Broker
	// per broker URL.
	c, err := pulsarconn.NewClient("pulsar://broker:6650", pulsarconn.WithTransport(network))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const topic = "persistent://public/default/orders"
	b, err := c.LookupTopic(ctx, topic)
	if err != nil {
		log.Fatal(err)
	}

	// A producer on the Broker that owns the topic.
	receipts := make(chan uint64, 2)
	id := b.NewProducerID()
	reg, err := b.RegisterProducer(context.Background(), id, pulsarconn.HandlerFunc(func(p pulsarconn.Push) {
		if p.Kind == pulsarconn.PushReceipt {
			receipts <- p.Command.GetSendReceipt().GetSequenceId()
		}
	}))
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Close(context.Background())
	if _, err := reg.Create(ctx, &pulsarpb.BaseCommand{
		Type:     pulsarpb.BaseCommand_PRODUCER.Enum(),
		Producer: &pulsarpb.CommandProducer{Topic: proto.String(topic), ProducerId: proto.Uint64(id)},
	}); err != nil {
		log.Fatal(err)
	}
	for seq, body := range []string{"created", "paid"} {
		if err := reg.Publish(ctx, exampleSend(id, uint64(seq), body)); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println(b.BrokerURL(), <-receipts, <-receipts)
	// Output: pulsar://broker:6650 0 1
}

func ExampleBroker_RequestAsync() {
	network, srv := fakeBroker()
	defer srv.Close()
	topics := []string{"persistent://public/default/a", "persistent://public/default/b", "persistent://public/default/c"}
	for i, topic := range topics {
		srv.SetPartitions(topic, i+2)
	}
	b, err := pulsarconn.Start("pulsar://broker:6650", pulsarconn.WithTransport(network))
	if err != nil {
		log.Fatal(err)
	}
	defer b.Stop(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Every request is in flight at once, from this one goroutine; each
	// done function gets its own answer.
	answers := make([]chan int, len(topics))
	for i, topic := range topics {
		answers[i] = make(chan int, 1)
		cmd := &pulsarpb.BaseCommand{
			Type:              pulsarpb.BaseCommand_PARTITIONED_METADATA.Enum(),
			PartitionMetadata: &pulsarpb.CommandPartitionedTopicMetadata{Topic: proto.String(topic)},
		}
		err := b.RequestAsync(ctx, cmd, func(resp *pulsarpb.BaseCommand, err error) {
			if err != nil {
				log.Print(err)
				answers[i] <- -1
				return
			}
			answers[i] <- int(resp.GetPartitionMetadataResponse().GetPartitions())
		})
		if err != nil {
			log.Fatal(err)
		}
	}
	for i, topic := range topics {
		fmt.Println(topic, <-answers[i])
	}
	// Output:
	// persistent://public/default/a 2
	// persistent://public/default/b 3
	// persistent://public/default/c 4
}

// A done function that takes what it needs from the answer before it
// returns can borrow the answer instead of owning it: the connection
// reuses it for a later answer, without an allocation.
func ExampleBroker_RequestAsyncLent() {
	network, srv := fakeBroker()
	defer srv.Close()
	const topic = "persistent://public/default/orders"
	srv.SetPartitions(topic, 6)
	b, err := pulsarconn.Start("pulsar://broker:6650", pulsarconn.WithTransport(network))
	if err != nil {
		log.Fatal(err)
	}
	defer b.Stop(context.Background())

	partitions := make(chan uint32, 1)
	cmd := &pulsarpb.BaseCommand{
		Type:              pulsarpb.BaseCommand_PARTITIONED_METADATA.Enum(),
		PartitionMetadata: &pulsarpb.CommandPartitionedTopicMetadata{Topic: proto.String(topic)},
	}
	err = b.RequestAsyncLent(context.Background(), cmd, func(resp *pulsarpb.BaseCommand, err error) {
		if err != nil {
			log.Print(err)
			close(partitions)
			return
		}
		// A copy of what is needed, made before done returns: resp
		// is not done's after that.
		partitions <- resp.GetPartitionMetadataResponse().GetPartitions()
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(topic, <-partitions)
	// Output:
	// persistent://public/default/orders 6
}

// fixedBackoff is a BackoffPolicy that waits the same delay before every
// reconnection.
type fixedBackoff time.Duration

func (d fixedBackoff) Next() time.Duration { return time.Duration(d) }
func (fixedBackoff) Reset()                {}

func ExampleWithBackoffPolicy() {
	network, srv := fakeBroker()
	defer srv.Close()

	// Each Broker (and each Client lookup) gets a policy of its own from
	// the function, so a stateful policy needs no locking.
	b, err := pulsarconn.Start("pulsar://broker:6650",
		pulsarconn.WithTransport(network),
		pulsarconn.WithBackoffPolicy(func() pulsarconn.BackoffPolicy {
			return fixedBackoff(2 * time.Second)
		}))
	if err != nil {
		log.Fatal(err)
	}
	defer b.Stop(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.WaitConnected(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println(b.State())
	// Output: connected
}

func ExampleStart_invalidOption() {
	_, err := pulsarconn.Start("pulsar://broker:6650", pulsarconn.WithRejectionLimit(10, 0))
	fmt.Println(err)
	fmt.Println(errors.Is(err, pulsarconn.ErrInvalidOption))
	// Output:
	// pulsarconn: invalid option: WithRejectionLimit: window must be > 0 when n > 0, not 0s
	// true
}
