package pulsartest_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

func TestPingPong(t *testing.T) {
	s := pulsartest.NewServer()
	t.Cleanup(func() { _ = s.Close() })
	c := pipe(t, s)
	c.handshake()
	c.send(ping())
	c.expect(pulsarpb.BaseCommand_PONG)

	s.SetAnswerPings(false)
	c.send(ping())
	c.send(lookup(7, "t"))
	// Commands are handled in order: had the PING been answered, PONG
	// would come first.
	assert.Equal(t, uint64(7), c.expect(pulsarpb.BaseCommand_LOOKUP_RESPONSE).GetLookupTopicResponse().GetRequestId())
	assert.Equal(t, 2, s.Received(pulsarpb.BaseCommand_PING))

	s.SetAnswerPings(true)
	c.send(ping())
	c.expect(pulsarpb.BaseCommand_PONG)
}

func TestLookup(t *testing.T) {
	s := pulsartest.NewTCP(t, pulsartest.WithAdvertisedTLSURL("pulsar+ssl://broker.example:6651"))
	c := dial(t, s)
	c.handshake()

	c.send(lookup(3, "persistent://public/default/orders"))
	r := c.expect(pulsarpb.BaseCommand_LOOKUP_RESPONSE).GetLookupTopicResponse()
	assert.Equal(t, uint64(3), r.GetRequestId())
	assert.Equal(t, pulsarpb.CommandLookupTopicResponse_Connect, r.GetResponse())
	assert.Equal(t, s.URL(), r.GetBrokerServiceUrl())
	assert.Equal(t, "pulsar+ssl://broker.example:6651", r.GetBrokerServiceUrlTls())
	// A broker's Connect answer is authoritative though the request was
	// not: it names the owner.
	assert.True(t, r.GetAuthoritative())
	assert.False(t, r.GetProxyThroughServiceUrl())

	for i, bad := range []string{"", "a/b", "ftp://public/default/t", "persistent://public/default"} {
		c.send(lookup(uint64(10+i), bad))
		r := c.expect(pulsarpb.BaseCommand_LOOKUP_RESPONSE).GetLookupTopicResponse()
		assert.Equal(t, uint64(10+i), r.GetRequestId())
		assert.Equal(t, pulsarpb.CommandLookupTopicResponse_Failed, r.GetResponse(), bad)
		assert.Equal(t, pulsarpb.ServerError_InvalidTopicName, r.GetError(), bad)
	}
}

func TestAdvertisedURL(t *testing.T) {
	s := pulsartest.NewTCP(t, pulsartest.WithAdvertisedURL("pulsar://broker.example:6650"))
	assert.Equal(t, "pulsar://broker.example:6650", s.URL())
	assert.Empty(t, pulsartest.NewServer().URL(), "no listener yet")
}

func TestPartitionedMetadata(t *testing.T) {
	s := pulsartest.NewServer()
	t.Cleanup(func() { _ = s.Close() })
	s.SetPartitions("orders", 4)
	c := pipe(t, s)
	c.handshake()

	ask := func(rid uint64, topic string) *pulsarpb.CommandPartitionedTopicMetadataResponse {
		c.send(&pulsarpb.BaseCommand{
			Type: pulsarpb.BaseCommand_PARTITIONED_METADATA.Enum(),
			PartitionMetadata: &pulsarpb.CommandPartitionedTopicMetadata{
				Topic:     proto.String(topic),
				RequestId: proto.Uint64(rid),
			},
		})
		r := c.expect(pulsarpb.BaseCommand_PARTITIONED_METADATA_RESPONSE).GetPartitionMetadataResponse()
		require.Equal(t, rid, r.GetRequestId())
		return r
	}
	r := ask(1, "persistent://public/default/orders") // the same topic, in full
	assert.Equal(t, pulsarpb.CommandPartitionedTopicMetadataResponse_Success, r.GetResponse())
	assert.EqualValues(t, 4, r.GetPartitions())

	r = ask(2, "payments")
	assert.Equal(t, pulsarpb.CommandPartitionedTopicMetadataResponse_Success, r.GetResponse())
	assert.EqualValues(t, 0, r.GetPartitions())

	r = ask(3, "")
	assert.Equal(t, pulsarpb.CommandPartitionedTopicMetadataResponse_Failed, r.GetResponse())
	assert.Equal(t, pulsarpb.ServerError_InvalidTopicName, r.GetError())
}

func TestTopicsOfNamespace(t *testing.T) {
	s := pulsartest.NewServer()
	t.Cleanup(func() { _ = s.Close() })
	s.SetPartitions("orders", 2)
	publish(s, "payments", "x")
	publish(s, "other/ns/elsewhere", "y")
	c := pipe(t, s)
	c.handshake()
	c.send(&pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_GET_TOPICS_OF_NAMESPACE.Enum(),
		GetTopicsOfNamespace: &pulsarpb.CommandGetTopicsOfNamespace{
			RequestId: proto.Uint64(9),
			Namespace: proto.String("public/default"),
		},
	})
	r := c.expect(pulsarpb.BaseCommand_GET_TOPICS_OF_NAMESPACE_RESPONSE).GetGetTopicsOfNamespaceResponse()
	assert.Equal(t, uint64(9), r.GetRequestId())
	assert.Equal(t, []string{
		"persistent://public/default/orders-partition-0",
		"persistent://public/default/orders-partition-1",
		"persistent://public/default/payments",
	}, r.GetTopics())
}
