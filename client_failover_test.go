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
// defaults.)
func TestClientServiceHostFailover(t *testing.T) {
	for name, down := range map[string]func(c *cluster) ports.Transport{
		"refused":   func(c *cluster) ports.Transport { return c.network },
		"blackhole": func(c *cluster) ports.Transport { return blackhole{c.network, "down:6650"} },
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newCluster(t, "up")
				c.servers["up"].SetPartitions("p", 3)
				cl, err := pulsarconn.NewClient("pulsar://down:6650,up:6650", pulsarconn.WithTransport(down(c)))
				require.NoError(t, err)
				defer cl.Close(context.Background())

				start := time.Now()
				b, err := cl.LookupTopic(context.Background(), "t")
				require.NoError(t, err)
				assert.Equal(t, "pulsar://up:6650", b.BrokerURL())
				assert.LessOrEqual(t, time.Since(start), core.DefaultConnectTimeout)

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
