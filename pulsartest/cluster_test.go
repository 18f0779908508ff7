package pulsartest_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// dialURL connects to a service URL over TCP.
func dialURL(t *testing.T, url string) *client {
	t.Helper()
	return dialAddr(t, strings.TrimPrefix(url, "pulsar://"))
}

func authoritativeLookup(rid uint64, topic string) *pulsarpb.BaseCommand {
	cmd := lookup(rid, topic)
	cmd.LookupTopic.Authoritative = proto.Bool(true)
	return cmd
}

// notOwner returns the index of a broker that does not own topic.
func notOwner(c *pulsartest.Cluster, topic string) int {
	return (c.Owner(topic) + 1) % len(c.Brokers())
}

func TestClusterLookupRedirectsToTheOwner(t *testing.T) {
	c := pulsartest.StartCluster(t, 3)
	brokers := c.Brokers()
	require.Len(t, brokers, 3)
	urls := map[string]bool{}
	for _, b := range brokers {
		urls[b.URL()] = true
	}
	require.Len(t, urls, 3, "distinct advertised URLs")
	assert.Equal(t, brokers[0].URL(), c.URL())

	const topic = "persistent://public/default/orders"
	owner := c.Owner(topic)
	other := notOwner(c, topic)
	assert.Equal(t, owner, c.Owner("orders"), "names are normalised")

	cl := dialURL(t, brokers[other].URL())
	cl.handshake()
	cl.send(lookup(1, topic))
	r := cl.expect(pulsarpb.BaseCommand_LOOKUP_RESPONSE).GetLookupTopicResponse()
	assert.Equal(t, uint64(1), r.GetRequestId())
	assert.Equal(t, pulsarpb.CommandLookupTopicResponse_Redirect, r.GetResponse())
	assert.Equal(t, brokers[owner].URL(), r.GetBrokerServiceUrl())
	assert.True(t, r.GetAuthoritative())
	assert.False(t, r.GetProxyThroughServiceUrl())

	// Authoritative, even at a broker that is not the owner: Connect.
	cl.send(authoritativeLookup(2, topic))
	r = cl.expect(pulsarpb.BaseCommand_LOOKUP_RESPONSE).GetLookupTopicResponse()
	assert.Equal(t, pulsarpb.CommandLookupTopicResponse_Connect, r.GetResponse())
	assert.Equal(t, brokers[owner].URL(), r.GetBrokerServiceUrl())

	// At the owner: Connect, authoritative whatever the request said, as a
	// broker answers.
	co := dialURL(t, brokers[owner].URL())
	co.handshake()
	co.send(lookup(3, topic))
	r = co.expect(pulsarpb.BaseCommand_LOOKUP_RESPONSE).GetLookupTopicResponse()
	assert.Equal(t, pulsarpb.CommandLookupTopicResponse_Connect, r.GetResponse())
	assert.Equal(t, brokers[owner].URL(), r.GetBrokerServiceUrl())
	assert.True(t, r.GetAuthoritative())

	// Invalid names still get the broker's own answer.
	co.send(lookup(4, "a/b"))
	assert.Equal(t, pulsarpb.ServerError_InvalidTopicName, co.expect(pulsarpb.BaseCommand_LOOKUP_RESPONSE).GetLookupTopicResponse().GetError())
}

func TestClusterPartitionsAreOwnedOneByOne(t *testing.T) {
	c := pulsartest.NewCluster(4, pulsartest.WithPartitionedTopic("p", 16))
	t.Cleanup(func() { _ = c.Close() })
	owners := map[int]bool{}
	for i := range 16 {
		owners[c.Owner(fmt.Sprintf("p-partition-%d", i))] = true
	}
	assert.Greater(t, len(owners), 1, "16 partitions spread over 4 brokers")
	c.Assign("p-partition-3", 2)
	assert.Equal(t, 2, c.Owner("persistent://public/default/p-partition-3"))
	for _, b := range c.Brokers() {
		assert.True(t, strings.HasPrefix(b.URL(), "pulsar://broker-"), b.URL())
	}
}

func TestClusterRefusesTopicsItDoesNotOwn(t *testing.T) {
	c := pulsartest.StartCluster(t, 2)
	const topic = "persistent://public/default/t"
	owner, other := c.Owner(topic), notOwner(c, topic)

	cl := dialURL(t, c.Broker(other).URL())
	cl.handshake()
	cl.send(producerCmd(1, 1, topic, "", pulsarpb.ProducerAccessMode_Shared))
	e := cl.expect(pulsarpb.BaseCommand_ERROR).GetError()
	assert.Equal(t, uint64(1), e.GetRequestId())
	assert.Equal(t, pulsarpb.ServerError_ServiceNotReady, e.GetError())
	assert.Contains(t, e.GetMessage(), "Namespace bundle for topic ("+topic+") not served by this instance")
	assert.Contains(t, e.GetMessage(), "Please redo the lookup")
	cl.send(subscribeCmd(2, 1, topic, "s", exclusive, earliest))
	assert.Equal(t, pulsarpb.ServerError_ServiceNotReady, cl.expect(pulsarpb.BaseCommand_ERROR).GetError().GetError())

	co := dialURL(t, c.Broker(owner).URL())
	co.handshake()
	co.send(producerCmd(1, 1, topic, "", pulsarpb.ProducerAccessMode_Shared))
	co.expect(pulsarpb.BaseCommand_PRODUCER_SUCCESS)
	b, _ := sendFrame(t, 1, 0, "m0")
	co.raw(b)
	co.expect(pulsarpb.BaseCommand_SEND_RECEIPT)
	// One store: every broker sees the message.
	assert.Equal(t, [][]byte{[]byte("m0")}, c.Broker(other).Messages(topic))
}

func TestClusterMoveAndUnload(t *testing.T) {
	c := pulsartest.StartCluster(t, 3)
	const topic = "persistent://public/default/moving"
	c.Assign(topic, 1)
	require.Equal(t, 1, c.Owner(topic))

	b1 := dialURL(t, c.Broker(1).URL())
	b1.handshake()
	b1.send(producerCmd(1, 7, topic, "", pulsarpb.ProducerAccessMode_Shared))
	b1.expect(pulsarpb.BaseCommand_PRODUCER_SUCCESS)
	b1.send(subscribeCmd(2, 8, topic, "sub", exclusive, earliest))
	b1.expect(pulsarpb.BaseCommand_SUCCESS)
	m, _ := sendFrame(t, 7, 0, "before the move")
	b1.raw(m)
	b1.expect(pulsarpb.BaseCommand_SEND_RECEIPT)

	assert.Equal(t, 2, c.Move(topic, 2))
	assert.Equal(t, 2, c.Owner(topic))
	cp := b1.expect(pulsarpb.BaseCommand_CLOSE_PRODUCER).GetCloseProducer()
	assert.Equal(t, uint64(7), cp.GetProducerId())
	assert.Equal(t, c.Broker(2).URL(), cp.GetAssignedBrokerServiceUrl())
	cc := b1.expect(pulsarpb.BaseCommand_CLOSE_CONSUMER).GetCloseConsumer()
	assert.Equal(t, uint64(8), cc.GetConsumerId())
	assert.Equal(t, c.Broker(2).URL(), cc.GetAssignedBrokerServiceUrl())

	// The old owner refuses; the new one has the messages and the cursor.
	b1.send(producerCmd(3, 7, topic, "", pulsarpb.ProducerAccessMode_Shared))
	assert.Equal(t, pulsarpb.ServerError_ServiceNotReady, b1.expect(pulsarpb.BaseCommand_ERROR).GetError().GetError())
	b2 := dialURL(t, c.Broker(2).URL())
	b2.handshake()
	b2.send(subscribeCmd(1, 8, topic, "sub", exclusive, earliest))
	b2.expect(pulsarpb.BaseCommand_SUCCESS)
	b2.send(flow(8, 10))
	_, payload := b2.expectMessage()
	assert.Equal(t, "before the move", payload)

	// Unload: CLOSE_CONSUMER without a URL; the owner is decided again.
	assert.Equal(t, 1, c.Unload(topic))
	cc = b2.expect(pulsarpb.BaseCommand_CLOSE_CONSUMER).GetCloseConsumer()
	assert.Empty(t, cc.GetAssignedBrokerServiceUrl())
	assert.Equal(t, 2, c.Owner(topic), "an assigned topic returns to its broker")
}

func TestClusterMigrate(t *testing.T) {
	c := pulsartest.StartCluster(t, 2)
	const topic = "persistent://public/default/blue"
	cl := dialURL(t, c.Broker(c.Owner(topic)).URL())
	cl.handshake()
	cl.send(producerCmd(1, 1, topic, "", pulsarpb.ProducerAccessMode_Shared))
	cl.expect(pulsarpb.BaseCommand_PRODUCER_SUCCESS)
	cl.send(subscribeCmd(2, 2, topic, "s", shared, earliest))
	cl.expect(pulsarpb.BaseCommand_SUCCESS)

	assert.Equal(t, 2, c.Migrate(topic, "pulsar://green:6650", "pulsar+ssl://green:6651"))
	tm := cl.expect(pulsarpb.BaseCommand_TOPIC_MIGRATED).GetTopicMigrated()
	assert.Equal(t, pulsarpb.CommandTopicMigrated_Producer, tm.GetResourceType())
	assert.Equal(t, uint64(1), tm.GetResourceId())
	assert.Equal(t, "pulsar://green:6650", tm.GetBrokerServiceUrl())
	assert.Equal(t, "pulsar+ssl://green:6651", tm.GetBrokerServiceUrlTls())
	cl.expect(pulsarpb.BaseCommand_CLOSE_PRODUCER)
	tm = cl.expect(pulsarpb.BaseCommand_TOPIC_MIGRATED).GetTopicMigrated()
	assert.Equal(t, pulsarpb.CommandTopicMigrated_Consumer, tm.GetResourceType())
	assert.Equal(t, uint64(2), tm.GetResourceId())
	cl.expect(pulsarpb.BaseCommand_CLOSE_CONSUMER)

	// Later comers are told too.
	cl.send(producerCmd(3, 5, topic, "", pulsarpb.ProducerAccessMode_Shared))
	cl.expect(pulsarpb.BaseCommand_PRODUCER_SUCCESS)
	assert.Equal(t, uint64(5), cl.expect(pulsarpb.BaseCommand_TOPIC_MIGRATED).GetTopicMigrated().GetResourceId())
	cl.expect(pulsarpb.BaseCommand_CLOSE_PRODUCER)
}

func TestClusterAddAndRemoveBrokers(t *testing.T) {
	c := pulsartest.StartCluster(t, 2)
	const topic = "persistent://public/default/r"
	c.Assign(topic, 1)
	cl := dialURL(t, c.Broker(1).URL())
	cl.handshake()
	cl.send(subscribeCmd(1, 3, topic, "s", exclusive, earliest))
	cl.expect(pulsarpb.BaseCommand_SUCCESS)

	added := c.AddBroker()
	require.Len(t, c.Brokers(), 3)
	assert.Same(t, added, c.Broker(2))
	assert.NotEqual(t, c.Broker(1).URL(), added.URL())
	assert.Equal(t, 1, c.Owner(topic), "adding a broker moves nothing")

	removed := c.Broker(1)
	require.NoError(t, c.RemoveBroker(1))
	require.Len(t, c.Brokers(), 2)
	cl.expect(pulsarpb.BaseCommand_CLOSE_CONSUMER)
	cl.expectClosed()
	assert.Equal(t, 0, removed.Conns())
	assert.NotSame(t, removed, c.Broker(c.Owner(topic)))
	require.Error(t, c.RemoveBroker(5))
	require.NoError(t, c.RemoveBroker(0))
	require.Error(t, c.RemoveBroker(0), "the last broker stays")
}

func TestClusterProxy(t *testing.T) {
	c := pulsartest.StartCluster(t, 2, pulsartest.WithProxy())
	require.NotNil(t, c.Proxy())
	assert.Equal(t, c.Proxy().URL(), c.URL())
	const topic = "persistent://public/default/via-proxy"
	owner := c.Broker(c.Owner(topic))

	// A lookup connection: Connect to the owner, through the proxy.
	lk := dialURL(t, c.URL())
	lk.handshake()
	lk.send(lookup(1, topic))
	r := lk.expect(pulsarpb.BaseCommand_LOOKUP_RESPONSE).GetLookupTopicResponse()
	assert.Equal(t, pulsarpb.CommandLookupTopicResponse_Connect, r.GetResponse())
	assert.Equal(t, owner.URL(), r.GetBrokerServiceUrl())
	assert.True(t, r.GetProxyThroughServiceUrl())
	// The proxy serves no topic itself.
	lk.send(producerCmd(2, 1, topic, "", pulsarpb.ProducerAccessMode_Shared))
	assert.Equal(t, pulsarpb.ServerError_ServiceNotReady, lk.expect(pulsarpb.BaseCommand_ERROR).GetError().GetError())

	// A connection through the proxy to the owner.
	pc := dialURL(t, c.URL())
	pc.handshake(func(cc *pulsarpb.CommandConnect) {
		cc.ProxyToBrokerUrl = proto.String(strings.TrimPrefix(owner.URL(), "pulsar://"))
	})
	pc.send(producerCmd(1, 1, topic, "", pulsarpb.ProducerAccessMode_Shared))
	pc.expect(pulsarpb.BaseCommand_PRODUCER_SUCCESS)
	assert.Equal(t, strings.TrimPrefix(owner.URL(), "pulsar://"), owner.LastConnect().GetProxyToBrokerUrl())

	// An unknown target is refused.
	bad := dialURL(t, c.URL())
	bad.send(connectCmd(func(cc *pulsarpb.CommandConnect) { cc.ProxyToBrokerUrl = proto.String("elsewhere:6650") }))
	e := bad.expect(pulsarpb.BaseCommand_ERROR).GetError()
	assert.Equal(t, pulsarpb.ServerError_ServiceNotReady, e.GetError())
	bad.expectClosed()
}

func TestClusterDialHookInMemory(t *testing.T) {
	c := pulsartest.NewCluster(2, pulsartest.WithProxy())
	t.Cleanup(func() { _ = c.Close() })
	assert.Equal(t, "pulsar://proxy:6650", c.URL())
	assert.Equal(t, "pulsar://broker-1:6650", c.Broker(1).URL())
	dial := c.DialHook()

	const topic = "persistent://public/default/mem"
	owner := c.Owner(topic)
	nc, err := dial(ctx(t), "broker-"+fmt.Sprint(owner)+":6650")
	require.NoError(t, err)
	t.Cleanup(func() { _ = nc.Close() })
	cl := &client{t: t, nc: nc, r: frame.NewReader(nc, 0)}
	cl.handshake()
	cl.send(lookup(1, topic))
	assert.Equal(t, pulsarpb.CommandLookupTopicResponse_Connect, cl.expect(pulsarpb.BaseCommand_LOOKUP_RESPONSE).GetLookupTopicResponse().GetResponse())

	pnc, err := dial(ctx(t), "pulsar://proxy:6650")
	require.NoError(t, err)
	t.Cleanup(func() { _ = pnc.Close() })
	pcl := &client{t: t, nc: pnc, r: frame.NewReader(pnc, 0)}
	pcl.handshake(func(cc *pulsarpb.CommandConnect) {
		cc.ProxyToBrokerUrl = proto.String("broker-" + fmt.Sprint(owner) + ":6650")
	})
	require.NoError(t, c.Broker(owner).WaitConns(ctx(t), 2))

	_, err = dial(ctx(t), "nowhere:6650")
	require.Error(t, err)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = dial(cancelled, "broker-0:6650")
	require.ErrorIs(t, err, context.Canceled)
}
