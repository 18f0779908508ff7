package refclient_test

import (
	"context"
	"fmt"
	"log"
	"sync"

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

// A producer publishes 100 messages and waits for their receipts while
// the broker drops the connection halfway; a consumer receives and
// acknowledges them all. Nothing receipted is lost: the producer sends
// again what had no receipt, and the consumer gets again what it had not
// acknowledged.
func Example_producerConsumer() {
	network, srv := fakeBroker()
	defer srv.Close()

	ctx := context.Background()
	client, err := pulsarconn.NewClient("pulsar://broker:6650", pulsarconn.WithTransport(network))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close(ctx)
	const topic = "persistent://public/default/orders"
	consumer, err := refclient.NewConsumer(ctx, client, topic, "audit", refclient.ConsumerOptions{})
	if err != nil {
		log.Fatal(err)
	}
	producer, err := refclient.NewProducer(ctx, client, topic, refclient.ProducerOptions{})
	if err != nil {
		log.Fatal(err)
	}
	var receipts sync.WaitGroup
	for i := range 100 {
		if i == 50 {
			srv.DropConnections() // mid-stream
		}
		receipts.Add(1)
		msg := refclient.Message{Payload: fmt.Appendf(nil, "order %d", i)}
		if err := producer.SendAsync(ctx, msg, func(_ refclient.MessageID, err error) {
			if err != nil {
				log.Fatal(err)
			}
			receipts.Done()
		}); err != nil {
			log.Fatal(err)
		}
	}
	receipts.Wait()
	received := map[string]bool{}
	for len(received) < 100 {
		m, err := consumer.Receive(ctx)
		if err != nil {
			log.Fatal(err)
		}
		received[string(m.Payload)] = true
		if err := consumer.Ack(ctx, m); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println(len(received), "messages receipted, received and acknowledged")
	fmt.Println(producer.Close(ctx), consumer.Close(ctx))
	// Output:
	// 100 messages receipted, received and acknowledged
	// <nil> <nil>
}
