package pulsartest_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/adapters/memory"
	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// A unit test of a user's producer: the fake broker on the in-memory
// network of adapters/memory, a pulsarconn Broker connected to it, and the
// messages the broker stored, checked as sent.
func ExampleServer_userProducer() {
	network := memory.NewNetwork()
	l, err := network.Listen("broker:6650")
	if err != nil {
		log.Fatal(err)
	}
	srv := pulsartest.NewServer(pulsartest.WithAdvertisedURL("pulsar://broker:6650"))
	defer srv.Close()
	if err := srv.Start(l); err != nil {
		log.Fatal(err)
	}

	b, err := pulsarconn.Start(srv.URL(), pulsarconn.WithTransport(network))
	if err != nil {
		log.Fatal(err)
	}
	defer b.Stop(context.Background())

	// The producer under test: registered on the connection for as long
	// as it lives (not for a request's timeout), created on the broker,
	// then publishing three messages on the connection it was created on
	// and waiting for their receipts.
	receipts := make(chan uint64, 3)
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
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := reg.Create(ctx, &pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_PRODUCER.Enum(),
		Producer: &pulsarpb.CommandProducer{
			Topic:        proto.String("orders"),
			ProducerId:   proto.Uint64(id),
			ProducerName: proto.String("order-service"),
		},
	}); err != nil {
		log.Fatal(err)
	}
	for seq, body := range []string{"created", "paid", "shipped"} {
		msg, err := frame.AppendMessage(nil,
			&pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_SEND.Enum(),
				Send: &pulsarpb.CommandSend{ProducerId: proto.Uint64(id), SequenceId: proto.Uint64(uint64(seq))}},
			&pulsarpb.MessageMetadata{ProducerName: proto.String("order-service"), SequenceId: proto.Uint64(uint64(seq)),
				PublishTime: proto.Uint64(1_700_000_000_000)},
			[]byte(body))
		if err != nil {
			log.Fatal(err)
		}
		if err := reg.Publish(ctx, msg); err != nil {
			log.Fatal(err)
		}
	}
	for range 3 {
		<-receipts
	}

	// What the broker stored, exactly as the producer sent it.
	for _, m := range srv.Stored("orders") {
		var md pulsarpb.MessageMetadata
		if err := proto.Unmarshal(m.Metadata, &md); err != nil {
			log.Fatal(err)
		}
		fmt.Println(m.EntryID, md.GetProducerName(), md.GetSequenceId(), string(m.Payload))
	}
	// Output:
	// 0 order-service 0 created
	// 1 order-service 1 paid
	// 2 order-service 2 shipped
}

// A cluster of two brokers on the in-memory network: a lookup at the
// broker that does not own the topic is redirected to the owner, where the
// authoritative lookup is answered Connect.
func ExampleCluster() {
	c := pulsartest.NewCluster(2)
	defer c.Close()
	network := memory.NewNetwork()
	for _, b := range c.Brokers() {
		l, err := network.Listen(strings.TrimPrefix(b.URL(), "pulsar://"))
		if err != nil {
			log.Fatal(err)
		}
		if err := b.Start(l); err != nil {
			log.Fatal(err)
		}
	}
	const topic = "persistent://public/default/orders"
	c.Assign(topic, 1)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lookup := func(url string, authoritative bool) *pulsarconn.LookupResult {
		b, err := pulsarconn.Start(url, pulsarconn.WithTransport(network))
		if err != nil {
			log.Fatal(err)
		}
		defer b.Stop(context.Background())
		res, err := b.LookupTopic(ctx, topic, authoritative)
		if err != nil {
			log.Fatal(err)
		}
		return res
	}

	first := lookup(c.URL(), false) // broker-0, which does not own it
	fmt.Println("redirect:", first.Redirect, first.BrokerURL, "authoritative:", first.Authoritative)
	second := lookup(first.BrokerURL, first.Authoritative)
	fmt.Println("redirect:", second.Redirect, second.BrokerURL)
	fmt.Println("owner:", c.Owner(topic))
	// Output:
	// redirect: true pulsar://broker-1:6650 authoritative: true
	// redirect: false pulsar://broker-1:6650
	// owner: 1
}

// A declared fault: the next PRODUCER on topic "orders" is answered
// ServiceNotReady, as by a broker whose topic is being unloaded; the
// client's retry succeeds.
func ExampleServer_FailNext() {
	network := memory.NewNetwork()
	l, err := network.Listen("broker:6650")
	if err != nil {
		log.Fatal(err)
	}
	srv := pulsartest.NewServer(pulsartest.WithAdvertisedURL("pulsar://broker:6650"))
	defer srv.Close()
	if err := srv.Start(l); err != nil {
		log.Fatal(err)
	}
	fault := srv.FailNext(pulsarpb.BaseCommand_PRODUCER, 1, pulsarpb.ServerError_ServiceNotReady,
		pulsartest.OnTopic("orders"))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := pulsarconn.Start(srv.URL(), pulsarconn.WithTransport(network))
	if err != nil {
		log.Fatal(err)
	}
	defer b.Stop(context.Background())
	create := func() error {
		_, err := b.Request(ctx, &pulsarpb.BaseCommand{
			Type: pulsarpb.BaseCommand_PRODUCER.Enum(),
			Producer: &pulsarpb.CommandProducer{
				Topic:      proto.String("persistent://public/default/orders"),
				ProducerId: proto.Uint64(1),
			},
		})
		return err
	}

	err = create()
	var se *pulsarconn.ServerError
	fmt.Println(errors.As(err, &se), se.Code, pulsarconn.IsRetryable(err))
	fmt.Println(create(), fault.Fired())
	// Output:
	// true ServiceNotReady true
	// <nil> 1
}
