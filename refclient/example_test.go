package refclient_test

import (
	"context"
	"fmt"
	"log"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/adapters/memory"
	"github.com/pulsarconn/pulsarconn/pulsartest"
	"github.com/pulsarconn/pulsarconn/refclient"
)

// fakeBroker starts pulsartest on an in-memory network, as a unit test
// would: the only test-only part of the Example.
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

// A producer publishes 100 messages, waiting for each receipt, while the
// broker drops the connection mid-stream; a consumer receives and
// acknowledges them all. Nothing receipted is lost: both re-create
// themselves on the new connection, the producer sends again what had no
// receipt, and the consumer gets again what it had not acknowledged.
func Example_producerConsumer() {
	network, srv := fakeBroker()
	defer srv.Close()

	ctx := context.Background()
	client, err := pulsarconn.NewClient("pulsar://broker:6650", pulsarconn.WithTransport(network))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close(ctx)
	consumer, err := refclient.NewConsumer(ctx, client, "orders", "audit", refclient.ConsumerOptions{})
	if err != nil {
		log.Fatal(err)
	}
	producer, err := refclient.NewProducer(ctx, client, "orders", refclient.ProducerOptions{})
	if err != nil {
		log.Fatal(err)
	}
	srv.DropAfterFrames(100) // the broker drops the connection mid-stream
	for i := range 100 {
		if _, err := producer.Send(ctx, refclient.Message{Payload: fmt.Appendf(nil, "order %d", i)}); err != nil {
			log.Fatal(err)
		}
	}
	received := map[string]bool{} // a set: Pulsar delivers at least once
	for len(received) < 100 {
		m, err := consumer.Receive(ctx)
		if err != nil {
			log.Fatal(err)
		}
		received[string(m.Payload)] = true
		consumer.Ack(ctx, m) // if it fails, the message comes again
	}
	fmt.Println(len(received), "received; producer created", producer.Stats().Created, "times; closed:", producer.Close(ctx), consumer.Close(ctx))
	// Output:
	// 100 received; producer created 2 times; closed: <nil> <nil>
}
