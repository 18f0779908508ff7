package pulsarconn_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/adapters/memory"
	"github.com/pulsarconn/pulsarconn/contracttest"
	"github.com/pulsarconn/pulsarconn/internal/testenv"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// cluster is a set of fake brokers on one in-memory network.
type cluster struct {
	network *memory.Network
	servers map[string]*pulsartest.Server // by host
}

func newCluster(t *testing.T, hosts ...string) *cluster {
	c := &cluster{network: memory.NewNetwork(), servers: map[string]*pulsartest.Server{}}
	for _, h := range hosts {
		srv := testenv.Serve(t, c.network, h+":6650", pulsartest.WithAdvertisedTLSURL("pulsar+ssl://"+h+":6651"))
		lt, err := c.network.Listen(h + ":6651")
		require.NoError(t, err)
		go srv.Serve(lt)
		c.servers[h] = srv
	}
	return c
}

func (c *cluster) client(t *testing.T, serviceURL string, opts ...pulsarconn.ClientOption) *pulsarconn.Client {
	opts = append([]pulsarconn.ClientOption{
		pulsarconn.WithTransport(c.network),
		pulsarconn.WithBackoff(time.Millisecond, 5*time.Millisecond),
	}, opts...)
	cl, err := pulsarconn.NewClient(serviceURL, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { cl.Close(context.Background()) })
	return cl
}

// redirectTo makes srv answer every LOOKUP with a Redirect to url.
func redirectTo(srv *pulsartest.Server, url string, authoritative bool) {
	srv.InterceptEvery(pulsarpb.BaseCommand_LOOKUP, func(c *pulsartest.Call) pulsartest.Action {
		id, _ := c.RequestID()
		c.Reply(redirectAnswer(id, url, authoritative))
		return pulsartest.Handled
	})
}

// redirectAnswer is the Redirect answer to LOOKUP request id, to url (for
// TLS too).
func redirectAnswer(id uint64, url string, authoritative bool) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_LOOKUP_RESPONSE.Enum(),
		LookupTopicResponse: &pulsarpb.CommandLookupTopicResponse{
			RequestId:        proto.Uint64(id),
			Response:         pulsarpb.CommandLookupTopicResponse_Redirect.Enum(),
			BrokerServiceUrl: proto.String(url), BrokerServiceUrlTls: proto.String(url),
			Authoritative: proto.Bool(authoritative),
		}}
}

func TestClientLookupFollowsRedirects(t *testing.T) {
	synctest.Test(t, testClientLookupFollowsRedirects)
}

func testClientLookupFollowsRedirects(t *testing.T) {
	c := newCluster(t, "service", "b1", "b2", "owner")
	redirectTo(c.servers["service"], "pulsar://b1:6650", false)
	redirectTo(c.servers["b1"], "pulsar://b2:6650", false)
	redirectTo(c.servers["b2"], "pulsar://owner:6650", true)
	var authoritative atomic.Bool
	c.servers["owner"].InterceptEvery(pulsarpb.BaseCommand_LOOKUP, func(call *pulsartest.Call) pulsartest.Action {
		authoritative.Store(call.Command().GetLookupTopic().GetAuthoritative())
		return pulsartest.Pass
	})
	cl := c.client(t, "pulsar://service")
	ctx := testContext(t)

	b, err := cl.LookupTopic(ctx, "persistent://public/default/t")
	require.NoError(t, err)
	assert.Equal(t, "pulsar://owner:6650", b.BrokerURL())
	assert.True(t, authoritative.Load(), "the authoritative flag of the last redirect is sent back")
	for _, h := range []string{"service", "b1", "b2", "owner"} {
		assert.Equal(t, 1, c.servers[h].Received(pulsarpb.BaseCommand_LOOKUP), h)
	}
	require.NoError(t, b.WaitConnected(ctx))

	// The owner's connection is reused, and listed by URL; those to the
	// brokers the lookup was redirected through were stopped at its end.
	again, err := cl.LookupTopic(ctx, "persistent://public/default/t")
	require.NoError(t, err)
	assert.Same(t, b, again)
	var urls []string
	for _, br := range cl.Brokers() {
		urls = append(urls, br.BrokerURL())
	}
	assert.Equal(t, []string{"pulsar://owner:6650", "pulsar://service:6650"}, urls)
	_, err = b.RegisterProducer(ctx, 7, contracttest.NewPushLog())
	require.NoError(t, err)
	ids, err := cl.Producers("pulsar://owner:6650")
	require.NoError(t, err)
	assert.Equal(t, []uint64{7}, ids)
}

func TestClientRedirectLimit(t *testing.T) {
	for _, limit := range []int{20, 3} {
		t.Run(fmt.Sprint(limit), bubble(func(t *testing.T) { testClientRedirectLimit(t, limit) }))
	}
}

func testClientRedirectLimit(t *testing.T, limit int) {
	c := newCluster(t, "loop")
	redirectTo(c.servers["loop"], "pulsar://loop:6650", false)
	var opts []pulsarconn.ClientOption
	if limit != 20 {
		opts = append(opts, pulsarconn.WithMaxLookupRedirects(limit))
	}
	cl := c.client(t, "pulsar://loop", opts...)
	_, err := cl.LookupTopic(testContext(t), "t")
	assert.ErrorIs(t, err, pulsarconn.ErrTooManyRedirects)
	assert.False(t, pulsarconn.IsRetryable(err))
	assert.Equal(t, limit+1, c.servers["loop"].Received(pulsarpb.BaseCommand_LOOKUP),
		"the first answer and %d redirects followed; the next redirect fails", limit)
}

func TestClientLookupThroughProxy(t *testing.T) { synctest.Test(t, testClientLookupThroughProxy) }

func testClientLookupThroughProxy(t *testing.T) {
	c := newCluster(t, "proxy")
	c.servers["proxy"].InterceptEvery(pulsarpb.BaseCommand_LOOKUP, func(call *pulsartest.Call) pulsartest.Action {
		id, _ := call.RequestID()
		call.Reply(&pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_LOOKUP_RESPONSE.Enum(),
			LookupTopicResponse: &pulsarpb.CommandLookupTopicResponse{
				RequestId: proto.Uint64(id), Response: pulsarpb.CommandLookupTopicResponse_Connect.Enum(),
				BrokerServiceUrl: proto.String("pulsar://hidden-broker:6650"), ProxyThroughServiceUrl: proto.Bool(true),
			}})
		return pulsartest.Handled
	})
	cl := c.client(t, "pulsar://proxy")
	ctx := testContext(t)
	b, err := cl.LookupTopic(ctx, "t")
	require.NoError(t, err)
	assert.Equal(t, "pulsar://hidden-broker:6650", b.BrokerURL())
	assert.Equal(t, "pulsar://proxy:6650", b.DialURL())
	require.NoError(t, b.WaitConnected(ctx))
	assert.Equal(t, "hidden-broker:6650", c.servers["proxy"].LastConnect().GetProxyToBrokerUrl(),
		"CONNECT names the target broker as host:port, as a real proxy requires")
}

func TestClientPicksTLSURL(t *testing.T) { synctest.Test(t, testClientPicksTLSURL) }

func testClientPicksTLSURL(t *testing.T) {
	c := newCluster(t, "service", "owner")
	c.servers["service"].InterceptEvery(pulsarpb.BaseCommand_LOOKUP, func(call *pulsartest.Call) pulsartest.Action {
		id, _ := call.RequestID()
		call.Reply(&pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_LOOKUP_RESPONSE.Enum(),
			LookupTopicResponse: &pulsarpb.CommandLookupTopicResponse{
				RequestId: proto.Uint64(id), Response: pulsarpb.CommandLookupTopicResponse_Connect.Enum(),
				BrokerServiceUrl: proto.String("pulsar://owner:6650"), BrokerServiceUrlTls: proto.String("pulsar+ssl://owner:6651"),
			}})
		return pulsartest.Handled
	})
	// The memory network stands in for TLS here; what is checked is which
	// URL the Client picks.
	cl := c.client(t, "pulsar+ssl://service")
	b, err := cl.LookupTopic(testContext(t), "t")
	require.NoError(t, err)
	assert.Equal(t, "pulsar+ssl://owner:6651", b.BrokerURL())
}

func TestClientRetriesRetryableLookupErrors(t *testing.T) {
	synctest.Test(t, testClientRetriesRetryableLookupErrors)
}

func testClientRetriesRetryableLookupErrors(t *testing.T) {
	c := newCluster(t, "service")
	var failures atomic.Int32
	c.servers["service"].InterceptEvery(pulsarpb.BaseCommand_LOOKUP, func(call *pulsartest.Call) pulsartest.Action {
		switch failures.Add(1) {
		case 1:
			call.ReplyError(pulsarpb.ServerError_ServiceNotReady, "bundle unloading")
			return pulsartest.Handled
		case 2:
			call.ReplyError(pulsarpb.ServerError_TooManyRequests, "slow down")
			return pulsartest.Handled
		}
		return pulsartest.Pass
	})
	cl := c.client(t, "pulsar://service")
	b, err := cl.LookupTopic(testContext(t), "t")
	require.NoError(t, err)
	assert.Equal(t, "pulsar://service:6650", b.BrokerURL())
	assert.EqualValues(t, 3, failures.Load())

	// A non-retryable error is returned at once.
	c.servers["service"].Intercept(pulsarpb.BaseCommand_PARTITIONED_METADATA, func(call *pulsartest.Call) pulsartest.Action {
		call.ReplyError(pulsarpb.ServerError_AuthorizationError, "no")
		return pulsartest.Handled
	})
	_, err = cl.PartitionedTopicMetadata(testContext(t), "t")
	assert.ErrorIs(t, err, pulsarconn.ErrAuthorization)
	c.servers["service"].SetPartitions("p", 3)
	n, err := cl.PartitionedTopicMetadata(testContext(t), "p")
	require.NoError(t, err)
	assert.Equal(t, 3, n)
}

func TestClientRetryEndsWithContext(t *testing.T) { synctest.Test(t, testClientRetryEndsWithContext) }

func testClientRetryEndsWithContext(t *testing.T) {
	c := newCluster(t, "service")
	c.servers["service"].InterceptEvery(pulsarpb.BaseCommand_LOOKUP, func(call *pulsartest.Call) pulsartest.Action {
		call.ReplyError(pulsarpb.ServerError_ServiceNotReady, "never ready")
		return pulsartest.Handled
	})
	cl := c.client(t, "pulsar://service")
	ctx, cancel := context.WithCancel(testContext(t))
	errc := make(chan error, 1)
	go func() { _, err := cl.LookupTopic(ctx, "t"); errc <- err }()
	require.NoError(t, c.servers["service"].WaitReceived(testContext(t), pulsarpb.BaseCommand_LOOKUP, 3), "retried")
	cancel()
	err := <-errc
	assert.ErrorIs(t, err, pulsarconn.ErrServiceNotReady)
	assert.ErrorIs(t, err, context.Canceled)
}

func TestClientServiceHostsRoundRobin(t *testing.T) {
	synctest.Test(t, testClientServiceHostsRoundRobin)
}

func testClientServiceHostsRoundRobin(t *testing.T) {
	c := newCluster(t, "up")
	// "down" has no listener: dials to it are refused.
	cl := c.client(t, "pulsar://down:6650,up:6650", pulsarconn.WithFailFast(true))
	b, err := cl.LookupTopic(testContext(t), "t")
	require.NoError(t, err)
	assert.Equal(t, "pulsar://up:6650", b.BrokerURL())
}

func TestClientLookupLimit(t *testing.T) {
	t.Run("no queue", bubble(func(t *testing.T) {
		c := newCluster(t, "service")
		held := c.servers["service"].Hold(pulsarpb.BaseCommand_LOOKUP)
		cl := c.client(t, "pulsar://service", pulsarconn.WithLookupLimit(1, 0))
		ctx := testContext(t)
		errc := make(chan error, 1)
		go func() { _, err := cl.LookupTopic(ctx, "a"); errc <- err }()
		<-held.Arrived() // the one slot is taken
		_, err := cl.LookupTopic(ctx, "b")
		assert.ErrorIs(t, err, pulsarconn.ErrTooManyLookups, "refused at once")
		held.Release()
		require.NoError(t, <-errc)
		_, err = cl.LookupTopic(ctx, "b")
		require.NoError(t, err, "the slot is free again")
	}))
	t.Run("queued", bubble(func(t *testing.T) {
		c := newCluster(t, "service")
		held := c.servers["service"].Hold(pulsarpb.BaseCommand_LOOKUP)
		cl := c.client(t, "pulsar://service", pulsarconn.WithLookupLimit(1, 1))
		ctx := testContext(t)
		errc := make(chan error, 2)
		go func() { _, err := cl.LookupTopic(ctx, "a"); errc <- err }()
		<-held.Arrived()
		go func() { _, err := cl.LookupTopic(ctx, "b"); errc <- err }()
		held.Release()
		require.NoError(t, <-errc)
		require.NoError(t, <-errc, "the queued lookup runs when the slot frees")
		assert.Equal(t, 2, c.servers["service"].Received(pulsarpb.BaseCommand_LOOKUP))
	}))
}

func TestTooManyRequestsReopensConnection(t *testing.T) {
	synctest.Test(t, testTooManyRequestsReopensConnection)
}

func testTooManyRequestsReopensConnection(t *testing.T) {
	e := memoryEnv(t)
	b := e.connected(t, pulsarconn.WithRejectionLimit(2, time.Hour))
	ctx := testContext(t)
	e.srv.InterceptEvery(pulsarpb.BaseCommand_PARTITIONED_METADATA, func(call *pulsartest.Call) pulsartest.Action {
		call.ReplyError(pulsarpb.ServerError_TooManyRequests, "busy")
		return pulsartest.Handled
	})
	for range 2 {
		_, err := b.PartitionedTopicMetadata(ctx, "t")
		require.ErrorIs(t, err, pulsarconn.ErrTooManyRequests)
	}
	assert.Equal(t, pulsarconn.StateConnected, b.State(), "within the limit")
	_, changed := b.WatchState()
	_, err := b.PartitionedTopicMetadata(ctx, "t")
	require.ErrorIs(t, err, pulsarconn.ErrTooManyRequests)
	<-changed // the third rejection closes the connection
	require.NoError(t, b.WaitConnected(ctx))
	assert.EqualValues(t, 1, b.Stats().Reconnects, "and it is reopened")
}

func TestClientCloseStopsBrokers(t *testing.T) { synctest.Test(t, testClientCloseStopsBrokers) }

func testClientCloseStopsBrokers(t *testing.T) {
	c := newCluster(t, "service")
	reg := pulsarconn.NewRegistry()
	cl := c.client(t, "pulsar://service", pulsarconn.WithRegistry(reg))
	b, err := cl.LookupTopic(testContext(t), "t")
	require.NoError(t, err)
	_, ok := reg.Get("pulsar://service:6650")
	require.True(t, ok)
	require.NoError(t, cl.Close(testContext(t)))
	assert.Equal(t, pulsarconn.StateClosed, b.State())
	assert.Empty(t, reg.All(), "stopped Brokers leave the registry")
	_, err = cl.LookupTopic(testContext(t), "t")
	assert.ErrorIs(t, err, pulsarconn.ErrClosed)
}

func TestNewClientRejectsBadURLs(t *testing.T) {
	for _, u := range []string{"", "pulsar://", "http://h", "pulsar://h1,", "h1:6650"} {
		_, err := pulsarconn.NewClient(u)
		assert.ErrorIs(t, err, pulsarconn.ErrInvalidURL, u)
	}
}
