package interop

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/apache/pulsar-client-go/pulsar/log"

	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// TestNoAuth connects without credentials to a broker that needs none:
// CONNECT carries no auth method, and a message goes through.
func TestNoAuth(t *testing.T) {
	srv, client := connect(t)
	roundTrip(t, client, topicName(t))
	c := srv.LastConnect()
	if c == nil {
		t.Fatal("no CONNECT received")
	}
	if m := c.GetAuthMethodName(); m != "" && m != "none" {
		t.Errorf("auth method %q, want none", m)
	}
	if !strings.HasPrefix(c.GetClientVersion(), "Pulsar-Go") {
		t.Errorf("client version %q: not the official Go client", c.GetClientVersion())
	}
}

// TestTokenAuth connects with the right token: CONNECT carries method
// "token" and the token, and a message goes through.
func TestTokenAuth(t *testing.T) {
	srv := pulsartest.NewTCP(t, pulsartest.WithToken("s3cret"))
	client := newClient(t, pulsar.ClientOptions{
		URL:            srv.URL(),
		Authentication: pulsar.NewAuthenticationToken("s3cret"),
	})
	roundTrip(t, client, topicName(t))
	c := srv.LastConnect()
	if c.GetAuthMethodName() != "token" || string(c.GetAuthData()) != "s3cret" {
		t.Errorf("CONNECT auth %q/%q, want token/s3cret", c.GetAuthMethodName(), c.GetAuthData())
	}
}

// TestWrongTokenRefused presents a wrong token. The broker answers
// CONNECT with ERROR{AuthenticationError} and closes the connection, so
// creating a producer fails and nothing reaches the topic. The official Go
// client does not pass the broker's error on: its handshake logs the
// ERROR's message and the lookup retries until the operation timeout, so
// the test checks the log for the broker's words.
func TestWrongTokenRefused(t *testing.T) {
	srv := pulsartest.NewTCP(t, pulsartest.WithToken("s3cret"))
	logs := &syncBuffer{}
	client := newClient(t, pulsar.ClientOptions{
		URL:              srv.URL(),
		Authentication:   pulsar.NewAuthenticationToken("wrong"),
		OperationTimeout: 2 * time.Second,
		Logger:           log.NewLoggerWithSlog(slog.New(slog.NewTextHandler(logs, nil))),
	})
	topic := topicName(t)
	_, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic})
	if err == nil {
		t.Fatal("producer created with a wrong token")
	}
	if !strings.Contains(logs.String(), "Unable to authenticate") {
		t.Fatalf("error %v; the client never saw the broker's authentication error; its log:\n%s", err, logs)
	}
	if c := srv.LastConnect(); c == nil || string(c.GetAuthData()) != "wrong" {
		t.Fatalf("CONNECT %v, want the wrong token", c)
	}
	for _, typ := range []pulsarpb.BaseCommand_Type{pulsarpb.BaseCommand_LOOKUP, pulsarpb.BaseCommand_PRODUCER} {
		if n := srv.Received(typ); n != 0 {
			t.Errorf("%d %v commands got past the refused handshake", n, typ)
		}
	}
	if got := srv.Messages(topic); len(got) != 0 {
		t.Fatalf("broker stored %q", got)
	}
}

// syncBuffer is a bytes.Buffer safe for the client's goroutines to log to.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// roundTrip produces three messages and consumes them, checking their
// order and ids.
func roundTrip(t *testing.T, client pulsar.Client, topic string) {
	t.Helper()
	cons, err := client.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "sub"})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	prod, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	want := payloads("rt", 3)
	ids := sendAll(t, prod, want)
	got := receiveN(t, cons, len(want))
	if !slices.Equal(payloadsOf(got), want) {
		t.Fatalf("consumer got %q, want %q", payloadsOf(got), want)
	}
	for i, r := range got {
		if !sameID(r.id, ids[i]) {
			t.Errorf("message %d: consumer id %v, receipt id %v", i, r.id, ids[i])
		}
		if err := cons.Ack(r.msg); err != nil {
			t.Fatal(err)
		}
	}
}
