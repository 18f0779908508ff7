package interop

import (
	"context"
	"fmt"
	"testing"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// TestClientsAgreeOnOwners: on a pulsartest cluster of 3 brokers, where a
// lookup at a non-owner answers Redirect, pulsar-client-go and our Client
// look up the same topics through the same service URL and land on the
// same owning broker for each.
func TestClientsAgreeOnOwners(t *testing.T) {
	cluster := pulsartest.StartCluster(t, 3)
	ctx := bounded(t)
	ours, err := pulsarconn.NewClient(cluster.URL())
	require.NoError(t, err)
	defer ours.Close(context.Background())
	official := newClient(t, pulsar.ClientOptions{URL: cluster.URL()})

	redirected := 0
	for i := range 12 {
		topic := fullName(fmt.Sprintf("%s-%d", topicName(t), i))
		want := cluster.Broker(cluster.Owner(topic)).URL()

		// Ours: the lookup result.
		b, err := ours.LookupTopic(ctx, topic)
		require.NoError(t, err)
		assert.Equal(t, want, b.BrokerURL(), topic)

		// Theirs: which broker its producer was created on.
		before := producersPerBroker(cluster)
		p, err := official.CreateProducer(pulsar.ProducerOptions{Topic: topic})
		require.NoError(t, err)
		after := producersPerBroker(cluster)
		var on []string
		for url, n := range after {
			if n > before[url] {
				on = append(on, url)
			}
		}
		assert.Equal(t, []string{want}, on, "pulsar-client-go's producer for %s", topic)
		p.Close()
		if cluster.Owner(topic) != 0 {
			redirected++
		}
	}
	assert.Positive(t, redirected, "some lookups went through a redirect from the service broker")
}

// producersPerBroker counts the PRODUCER_SUCCESS answers each broker sent
// (a non-owner refuses PRODUCER).
func producersPerBroker(c *pulsartest.Cluster) map[string]int {
	out := map[string]int{}
	for _, b := range c.Brokers() {
		for _, f := range b.Frames() {
			if f.Dir == pulsartest.Out && f.Type == pulsarpb.BaseCommand_PRODUCER_SUCCESS {
				out[b.URL()]++
			}
		}
	}
	return out
}
