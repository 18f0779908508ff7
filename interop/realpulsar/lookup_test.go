package realpulsar

import (
	"errors"
	"net/http"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// TestLookupAuthoritative: a standalone broker owns every topic, so the
// LOOKUP of a new topic is a Connect answer (not a Redirect) to itself,
// authoritative, with its plain and TLS URLs.
func TestLookupAuthoritative(t *testing.T) {
	rb := env(t)
	b := start(t, rb.ServiceURL)
	res, err := b.LookupTopic(bounded(t), fullName(topicName(t)), false)
	if err != nil {
		t.Fatalf("LookupTopic: %v", err)
	}
	if res.Redirect {
		t.Errorf("answer is a Redirect to %s; a standalone broker owns every topic", res.BrokerURL)
	}
	if !res.Authoritative {
		t.Error("answer not authoritative")
	}
	if res.BrokerURL != rb.ServiceURL || res.BrokerURLTLS != rb.ServiceURLTLS {
		t.Errorf("answer names %s and %s, want %s and %s", res.BrokerURL, res.BrokerURLTLS, rb.ServiceURL, rb.ServiceURLTLS)
	}
	t.Logf("LOOKUP answer: %+v", *res)
}

// TestClientLookup: the Client follows the service URL's answer to a
// Broker for the topic's owner and keeps one Broker per broker URL.
func TestClientLookup(t *testing.T) {
	rb := env(t)
	c, err := pulsarconn.NewClient(rb.ServiceURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(bounded(t)) })
	first, err := c.LookupTopic(bounded(t), fullName(topicName(t)+"-a"))
	if err != nil {
		t.Fatalf("Client.LookupTopic: %v", err)
	}
	second, err := c.LookupTopic(bounded(t), fullName(topicName(t)+"-b"))
	if err != nil {
		t.Fatalf("Client.LookupTopic: %v", err)
	}
	if first != second || first.BrokerURL() != rb.ServiceURL {
		t.Errorf("two topics of one broker gave Brokers for %s and %s (same Broker: %v); want one, for %s",
			first.BrokerURL(), second.BrokerURL(), first == second, rb.ServiceURL)
	}
}

// TestPartitionedMetadata: a topic created with 4 partitions through the
// admin REST API reports 4; a non-partitioned one reports 0.
func TestPartitionedMetadata(t *testing.T) {
	rb := env(t)
	b := start(t, rb.ServiceURL)
	partitioned := topicName(t) + "-p"
	createPartitioned(t, rb, partitioned, 4)
	n, err := b.PartitionedTopicMetadata(bounded(t), fullName(partitioned))
	if err != nil || n != 4 {
		t.Fatalf("PartitionedTopicMetadata(partitioned) = %d, %v; want 4", n, err)
	}
	n, err = b.PartitionedTopicMetadata(bounded(t), fullName(topicName(t)+"-np"))
	if err != nil || n != 0 {
		t.Fatalf("PartitionedTopicMetadata(non-partitioned) = %d, %v; want 0", n, err)
	}
	// Each partition is a topic of its own that the broker serves.
	res, err := b.LookupTopic(bounded(t), fullName(partitioned)+"-partition-3", false)
	if err != nil || res.BrokerURL != rb.ServiceURL {
		t.Fatalf("LookupTopic(partition 3) = %+v, %v", res, err)
	}
}

// TestMissingTopic: what a broker answers for a topic that does not
// exist reaches the caller as a *ServerError matching ErrTopicNotFound:
// in a namespace that does not exist (LOOKUP and PARTITIONED_METADATA),
// and in a namespace where automatic topic creation is off (PRODUCER, and
// PARTITIONED_METADATA that asks not to create metadata).
func TestMissingTopic(t *testing.T) {
	rb := env(t)
	b := start(t, rb.ServiceURL)
	ctx := bounded(t)

	wantNotFound := func(what string, err error) {
		t.Helper()
		var se *pulsarconn.ServerError
		if !errors.As(err, &se) || !errors.Is(err, pulsarconn.ErrTopicNotFound) {
			t.Errorf("%s: err = %v, want a *ServerError matching ErrTopicNotFound", what, err)
			return
		}
		if se.Code != pulsarpb.ServerError_TopicNotFound {
			t.Errorf("%s: Code = %v, want TopicNotFound", what, se.Code)
		}
		if pulsarconn.IsRetryable(err) {
			t.Errorf("%s: IsRetryable(%v) = true; a missing topic does not appear by retrying", what, err)
		}
	}

	noNamespace := "persistent://public/no-such-namespace/" + topicName(t)
	_, err := b.LookupTopic(ctx, noNamespace, false)
	wantNotFound("LOOKUP in a missing namespace", err)
	_, err = b.PartitionedTopicMetadata(ctx, noNamespace)
	wantNotFound("PARTITIONED_METADATA in a missing namespace", err)

	// A namespace of this run in which topics are not created on demand.
	ns := "public/" + topicName(t)
	admin(t, rb, http.MethodPut, "/namespaces/"+ns, nil)
	admin(t, rb, http.MethodPost, "/namespaces/"+ns+"/autoTopicCreation", map[string]any{"allowAutoTopicCreation": false})
	missing := "persistent://" + ns + "/missing"
	// The LOOKUP is answered (it looks at ownership, not at the topic) and
	// makes the broker own the namespace's bundle, so that what PRODUCER
	// meets next is the missing topic.
	if err := own(ctx, b, missing); err != nil {
		t.Fatalf("LOOKUP in a namespace without automatic creation: %v", err)
	}

	_, err = b.Request(ctx, &pulsarpb.BaseCommand{
		Type:     pulsarpb.BaseCommand_PRODUCER.Enum(),
		Producer: &pulsarpb.CommandProducer{Topic: proto.String(missing), ProducerId: proto.Uint64(b.NewProducerID())},
	})
	wantNotFound("PRODUCER without automatic creation", err)
	_, err = b.Request(ctx, &pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_PARTITIONED_METADATA.Enum(),
		PartitionMetadata: &pulsarpb.CommandPartitionedTopicMetadata{
			Topic: proto.String(missing), MetadataAutoCreationEnabled: proto.Bool(false),
		},
	})
	wantNotFound("PARTITIONED_METADATA without automatic creation", err)
}
