package refclient

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/internal/chaos"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// TestChaosProxy runs the workload over TCP through the chaos proxy,
// which resets (RST) every connection once it has carried a budget of
// bytes in either direction, cutting frames in half: SENDs, ACKs,
// receipts and MESSAGEs are lost mid-stream, over and over. The clock is
// the real one (the proxy is real TCP); nothing sleeps to wait. See
// workload.run for what is checked.
func TestChaosProxy(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	proxy, err := chaos.Listen(l.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { proxy.Close() })
	// The broker advertises the proxy, so that the Client's lookups send
	// it there too.
	srv := pulsartest.NewServer(pulsartest.WithAdvertisedURL("pulsar://" + proxy.Addr()))
	require.NoError(t, srv.Start(l))
	t.Cleanup(func() { srv.Close() })
	client, err := pulsarconn.NewClient("pulsar://"+proxy.Addr(),
		pulsarconn.WithOperationTimeout(5*time.Second))
	require.NoError(t, err)
	t.Cleanup(func() { client.Close(context.Background()) })
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	// Odd budgets, so that the cuts fall inside frames.
	proxy.ResetAfterBytes(chaos.Upstream, 40_009)
	proxy.ResetAfterBytes(chaos.Downstream, 60_013)
	w := workload{total: 3000, window: 300, queue: 200}
	start := time.Now()
	out := w.run(t, ctx, client, srv, topic)
	st := proxy.Stats()
	t.Logf("%v in %v; the proxy reset %d of %d connections", out, time.Since(start).Round(time.Millisecond), st.Resets, st.Accepted)
	assert.GreaterOrEqual(t, st.Resets, uint64(5), "connections were reset mid-stream")
	assert.Greater(t, out.producer.Created, 1)
	assert.Greater(t, out.consumer.Subscribed, 1)
}
