package interop

import (
	"errors"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// httpServer starts a pulsartest server with its admin API and HTTP
// lookup on loopback, and an official client whose service URL is the
// http:// one: the client then looks topics up, and reads partitioned
// metadata and namespace topic lists, over HTTP.
func httpServer(t *testing.T) (*pulsartest.Server, pulsar.Client) {
	t.Helper()
	srv := pulsartest.NewTCP(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.StartAdmin(l); err != nil {
		t.Fatal(err)
	}
	return srv, newClient(t, pulsar.ClientOptions{URL: srv.AdminURL()})
}

// adminCall makes one admin API request and checks its status.
func adminCall(t *testing.T, srv *pulsartest.Server, method, path, body string, want int) {
	t.Helper()
	req, err := http.NewRequestWithContext(bounded(t), method, srv.AdminURL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d", method, path, resp.StatusCode, want)
	}
}

// noBinaryLookups checks that the client looked nothing up over the
// binary protocol.
func noBinaryLookups(t *testing.T, srv *pulsartest.Server) {
	t.Helper()
	for _, typ := range []pulsarpb.BaseCommand_Type{
		pulsarpb.BaseCommand_LOOKUP, pulsarpb.BaseCommand_PARTITIONED_METADATA, pulsarpb.BaseCommand_GET_TOPICS_OF_NAMESPACE,
	} {
		if n := srv.Received(typ); n != 0 {
			t.Errorf("%d %v on the binary protocol, want none: lookups go over HTTP", n, typ)
		}
	}
}

// TestHTTPServiceURL produces and consumes with an http:// service URL.
func TestHTTPServiceURL(t *testing.T) {
	srv, client := httpServer(t)
	topic := topicName(t)
	cons, err := client.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "sub"})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	prod, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic, DisableBatching: true})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	want := payloads("http", 5)
	sendAll(t, prod, want)
	if got := payloadsOf(receiveN(t, cons, len(want))); !slices.Equal(got, want) {
		t.Fatalf("consumer got %q, want %q", got, want)
	}
	noBinaryLookups(t, srv)
}

// TestHTTPServiceURLPartitioned produces to a partitioned topic the admin
// API created: the client reads its partition count over HTTP.
func TestHTTPServiceURLPartitioned(t *testing.T) {
	srv, client := httpServer(t)
	topic := topicName(t)
	adminCall(t, srv, "PUT", "/admin/v2/persistent/public/default/"+topic+"/partitions", "3", http.StatusNoContent)
	parts, err := client.TopicPartitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 3 {
		t.Fatalf("partitions %q, want 3", parts)
	}
	cons, err := client.Subscribe(pulsar.ConsumerOptions{
		Topic: topic, SubscriptionName: "sub", SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	prod, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic, DisableBatching: true})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	want := payloads("part", 9)
	sendAll(t, prod, want)
	got := payloadsOf(receiveN(t, cons, len(want)))
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("consumer got %q, want %q", got, want)
	}
	stored := 0
	for i := range 3 {
		stored += len(srv.Messages(topic + "-partition-" + strconv.Itoa(i)))
	}
	if stored != len(want) {
		t.Fatalf("%d messages stored on the partitions, want %d", stored, len(want))
	}
	noBinaryLookups(t, srv)
}

// TestHTTPServiceURLRegexConsumer subscribes by pattern: the client lists
// the namespace's topics over HTTP.
func TestHTTPServiceURLRegexConsumer(t *testing.T) {
	srv, client := httpServer(t)
	prefix := topicName(t)
	for _, s := range []string{"-a", "-b"} {
		adminCall(t, srv, "PUT", "/admin/v2/persistent/public/default/"+prefix+s, "", http.StatusNoContent)
	}
	cons, err := client.Subscribe(pulsar.ConsumerOptions{
		TopicsPattern: "persistent://public/default/" + prefix + "-.*", SubscriptionName: "sub",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	for _, s := range []string{"-a", "-b"} {
		prod, err := client.CreateProducer(pulsar.ProducerOptions{Topic: prefix + s, DisableBatching: true})
		if err != nil {
			t.Fatal(err)
		}
		sendAll(t, prod, []string{"to" + s})
		prod.Close()
	}
	got := payloadsOf(receiveN(t, cons, 2))
	slices.Sort(got)
	if !slices.Equal(got, []string{"to-a", "to-b"}) {
		t.Fatalf("consumer got %q", got)
	}
	noBinaryLookups(t, srv)
}

// TestAdminUnloadReconnects unloads a topic through the admin API: the
// client's producer and consumer, closed by the broker, look the topic up
// again (over HTTP) and attach again, and no message is lost.
func TestAdminUnloadReconnects(t *testing.T) {
	srv, client := httpServer(t)
	topic := topicName(t)
	cons, err := client.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "sub"})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	prod, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic, DisableBatching: true})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	want := payloads("unload", 6)
	sendAll(t, prod, want[:3])
	got := receiveN(t, cons, 3)
	for _, r := range got {
		if err := cons.Ack(r.msg); err != nil {
			t.Fatal(err)
		}
	}
	// The acknowledgements are applied before the unload, so that nothing
	// is delivered again.
	if err := srv.WaitSubscription(bounded(t), topic, "sub", func(st pulsartest.SubscriptionState) bool {
		return st.Backlog == 0
	}); err != nil {
		t.Fatal(err)
	}
	adminCall(t, srv, "PUT", "/admin/v2/persistent/public/default/"+topic+"/unload", "", http.StatusNoContent)
	waitReceived(t, srv, pulsarpb.BaseCommand_PRODUCER, 2)
	waitReceived(t, srv, pulsarpb.BaseCommand_SUBSCRIBE, 2)
	// The rest goes through a second producer: sending on the first while
	// it reattaches trips the race detector inside pulsar-client-go v0.19.0
	// (grabCnx writes the fields internalSingleSend reads).
	prod2, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic, DisableBatching: true})
	if err != nil {
		t.Fatal(err)
	}
	defer prod2.Close()
	sendAll(t, prod2, want[3:])
	got = append(got, receiveN(t, cons, 3)...)
	if !slices.Equal(payloadsOf(got), want) {
		t.Fatalf("consumer got %q, want %q", payloadsOf(got), want)
	}
	noBinaryLookups(t, srv)
}

// TestAdminTerminate terminates a topic through the admin API: the
// client's producer, closed and refused with TopicTerminatedError when it
// attaches again, fails its sends as terminated (or closed), as
// pulsar-client-go's TestTopicTermination expects from a broker.
func TestAdminTerminate(t *testing.T) {
	srv, client := httpServer(t)
	topic := topicName(t)
	prod, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic, DisableBatching: true})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	sendAll(t, prod, []string{"before"})
	adminCall(t, srv, "POST", "/admin/v2/persistent/public/default/"+topic+"/terminate", "", http.StatusOK)
	waitReceived(t, srv, pulsarpb.BaseCommand_PRODUCER, 2) // the reattach, refused
	// The client closes the producer on that refusal, and says so with a
	// CLOSE_PRODUCER once it counts as closing. A Send before then races
	// the close inside pulsar-client-go v0.19.0 (its event loop closes the
	// data channel a Send may be writing to: seen by -race under load, the
	// Send then blocking until its context ended).
	waitReceived(t, srv, pulsarpb.BaseCommand_CLOSE_PRODUCER, 1)
	_, err = prod.Send(bounded(t), &pulsar.ProducerMessage{Payload: []byte("after")})
	if !errors.Is(err, pulsar.ErrTopicTerminated) && !errors.Is(err, pulsar.ErrProducerClosed) {
		t.Fatalf("send after termination: %v, want ErrTopicTerminated or ErrProducerClosed", err)
	}
	if got := asStrings(srv.Messages(topic)); !slices.Equal(got, []string{"before"}) {
		t.Fatalf("broker stored %q", got)
	}
}
