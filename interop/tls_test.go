package interop

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// TestTLS runs the official client over TLS (pulsar+ssl://, the server's
// certificate checked against a CA written for the test, hostname
// verification on), with token authentication: the lookup answers the
// TLS URL, and messages go through in order with their ids.
func TestTLS(t *testing.T) {
	srv, url, caFile := tlsServer(t, pulsartest.WithToken("tls-token"))
	client := newClient(t, pulsar.ClientOptions{
		URL:                   url,
		TLSTrustCertsFilePath: caFile,
		TLSValidateHostname:   true,
		Authentication:        pulsar.NewAuthenticationToken("tls-token"),
	})
	roundTrip(t, client, topicName(t))
	if c := srv.LastConnect(); c.GetAuthMethodName() != "token" {
		t.Errorf("CONNECT auth method %q, want token", c.GetAuthMethodName())
	}
}

// TestTLSPartitioned runs a partitioned topic over TLS: every partition's
// lookup sends the client to the TLS URL.
func TestTLSPartitioned(t *testing.T) {
	srv, url, caFile := tlsServer(t)
	client := newClient(t, pulsar.ClientOptions{
		URL:                   url,
		TLSTrustCertsFilePath: caFile,
		TLSValidateHostname:   true,
	})
	topic := topicName(t)
	srv.SetPartitions(topic, 2)
	cons := subscribe(t, client, pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "sub"})
	want := payloads("tls", 4)
	ids := produce(t, client, topic, want)
	got := receiveN(t, cons, 4)
	index := indexOf(want)
	for _, r := range got {
		k, ok := index[r.payload]
		if !ok {
			t.Fatalf("unexpected message %q", r.payload)
		}
		if !sameID(r.id, ids[k]) {
			t.Errorf("%q: id %v, receipt id %v", r.payload, r.id, ids[k])
		}
		delete(index, r.payload)
	}
	for i := range 2 {
		if n := len(srv.Messages(topic + "-partition-" + string(rune('0'+i)))); n != 2 {
			t.Errorf("partition %d stored %d messages, want 2", i, n)
		}
	}
}

// TestTLSUntrusted: a client that does not trust the server's CA cannot
// create a producer, and nothing is stored.
func TestTLSUntrusted(t *testing.T) {
	srv, url, _ := tlsServer(t)
	otherCA, _ := makeCerts(t)
	caFile := filepath.Join(t.TempDir(), "other-ca.pem")
	if err := os.WriteFile(caFile, otherCA, 0o600); err != nil {
		t.Fatal(err)
	}
	client := newClient(t, pulsar.ClientOptions{
		URL:                   url,
		TLSTrustCertsFilePath: caFile,
		TLSValidateHostname:   true,
		OperationTimeout:      2e9,
	})
	topic := topicName(t)
	if _, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic}); err == nil {
		t.Fatal("producer created over TLS with an untrusted certificate")
	}
	if c := srv.LastConnect(); c != nil {
		t.Fatalf("the server got CONNECT %v over an untrusted TLS session", c)
	}
	if got := srv.Messages(topic); len(got) != 0 {
		t.Fatalf("broker stored %q", got)
	}
}
