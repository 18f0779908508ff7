package pulsarconn_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/core"
	"github.com/pulsarconn/pulsarconn/ports"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// blackhole is a transport on which dials to one address never complete
// (a host that drops SYNs); others go to the network.
type blackhole struct {
	ports.Transport
	address string
}

func (b blackhole) Dial(ctx context.Context, address string) (ports.Conn, error) {
	if address == b.address {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return b.Transport.Dial(ctx, address)
}

// With a service URL of two hosts and the first one down, lookups and
// partition metadata reach the second within one connect timeout, under
// default options: a refused dial at once, a dial that never completes at
// the connect timeout. (Time is synctest's: the timeouts are the real
// defaults, and the first lookup, which asks "down" first, takes exactly
// as long as that host takes to fail.)
func TestClientServiceHostFailover(t *testing.T) {
	for name, tc := range map[string]struct {
		down  func(c *cluster) ports.Transport
		takes time.Duration
	}{
		"refused":   {func(c *cluster) ports.Transport { return c.network }, 0},
		"blackhole": {func(c *cluster) ports.Transport { return blackhole{c.network, "down:6650"} }, core.DefaultConnectTimeout},
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newCluster(t, "up")
				c.servers["up"].SetPartitions("p", 3)
				cl, err := pulsarconn.NewClient("pulsar://down:6650,up:6650", pulsarconn.WithTransport(tc.down(c)))
				require.NoError(t, err)
				defer cl.Close(context.Background())

				start := time.Now()
				b, err := cl.LookupTopic(context.Background(), "t")
				require.NoError(t, err)
				assert.Equal(t, "pulsar://up:6650", b.BrokerURL())
				assert.Equal(t, tc.takes, time.Since(start))

				for range 2 { // round robin: one of the two asks "down" first
					start = time.Now()
					n, err := cl.PartitionedTopicMetadata(context.Background(), "p")
					require.NoError(t, err)
					assert.Equal(t, 3, n)
					assert.LessOrEqual(t, time.Since(start), core.DefaultConnectTimeout)
				}
			})
		})
	}
}

// Retryable failures are retried with backoff up to the operation timeout,
// where the lookup fails with the last failure: the backoff is cut at the
// timeout, so the lookup ends exactly then, and no request is sent after
// it.
func TestClientRetriesUntilOperationTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, "service")
		c.servers["service"].InterceptEvery(pulsarpb.BaseCommand_LOOKUP, func(call *pulsartest.Call) pulsartest.Action {
			call.ReplyError(pulsarpb.ServerError_ServiceNotReady, "never ready")
			return pulsartest.Handled
		})
		cl, err := pulsarconn.NewClient("pulsar://service", pulsarconn.WithTransport(c.network),
			pulsarconn.WithOperationTimeout(2*time.Second), pulsarconn.WithJitter(func() float64 { return 0 }))
		require.NoError(t, err)
		defer cl.Close(context.Background())

		start := time.Now()
		_, err = cl.LookupTopic(context.Background(), "t")
		assert.ErrorIs(t, err, pulsarconn.ErrServiceNotReady)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, 2*time.Second, time.Since(start))
		// Without jitter the backoffs are 50ms, 100ms, 200ms, ...: tries
		// at 0, 50ms, 150ms, 350ms, 750ms and 1.55s; the next would be at
		// 3.15s, past the timeout.
		assert.Equal(t, 6, c.servers["service"].Received(pulsarpb.BaseCommand_LOOKUP))
	})
}

// TestClientLookupRetriesUseTheBackoffPolicy: a Client's lookup retries are
// spaced by WithBackoffPolicy's policy, not by the default backoff.
func TestClientLookupRetriesUseTheBackoffPolicy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, "service")
		var at []time.Duration
		start := time.Now()
		c.servers["service"].InterceptEvery(pulsarpb.BaseCommand_LOOKUP, func(call *pulsartest.Call) pulsartest.Action {
			at = append(at, time.Since(start))
			call.ReplyError(pulsarpb.ServerError_ServiceNotReady, "never ready")
			return pulsartest.Handled
		})
		cl, err := pulsarconn.NewClient("pulsar://service", pulsarconn.WithTransport(c.network),
			pulsarconn.WithOperationTimeout(2*time.Second),
			pulsarconn.WithBackoffPolicy(func() pulsarconn.BackoffPolicy { return constBackoff(700 * time.Millisecond) }))
		require.NoError(t, err)
		defer cl.Close(context.Background())

		_, err = cl.LookupTopic(context.Background(), "t")
		assert.ErrorIs(t, err, pulsarconn.ErrServiceNotReady)
		assert.Equal(t, 2*time.Second, time.Since(start))
		assert.Equal(t, []time.Duration{0, 700 * time.Millisecond, 1400 * time.Millisecond}, at)
	})
}
