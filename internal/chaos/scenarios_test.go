package chaos_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/adapters/memory"
	"github.com/pulsarconn/pulsarconn/contracttest"
	"github.com/pulsarconn/pulsarconn/core"
	"github.com/pulsarconn/pulsarconn/internal/chaos"
	"github.com/pulsarconn/pulsarconn/internal/testenv"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// partitions is the partition count of topic i in the scenarios: each
// topic has its own, so that an answer given to the wrong request shows.
func partitions(i int) int { return i%29 + 1 }

func topicName(i int) string { return fmt.Sprintf("persistent://public/default/chaos-%d", i) }

// TestRequestsAcrossResets: 10,000 PARTITIONED_METADATA requests from 32
// goroutines while the proxy adds latency and resets the connection
// every 16 KB of answers. Each request completes exactly once, within its
// operation timeout (the production default), with its own topic's answer
// or a retryable error.
func TestRequestsAcrossResets(t *testing.T) {
	const (
		total     = 10_000
		topics    = 1000
		workers   = 32
		opTimeout = core.DefaultOperationTimeout
		latency   = 2 * time.Millisecond
		// slack covers scheduling under -race on a loaded machine; the
		// bound is a check, not a wait.
		slack = 3 * time.Second
	)
	w := newWorld(t)
	for i := range topics {
		w.srv.SetPartitions(topicName(i), partitions(i))
	}
	ctx := testenv.Context(t)
	b := w.start(t,
		// Fail fast: a request either runs on one connection or fails
		// at once, so its whole life is bounded by the timeout.
		pulsarconn.WithFailFast(true),
		pulsarconn.WithBackoff(5*time.Millisecond, 50*time.Millisecond))
	require.NoError(t, b.WaitConnected(ctx))
	w.proxy.SetLatency(latency)
	w.proxy.ResetAfterBytes(chaos.Downstream, 16_000)

	var (
		next        atomic.Int64
		completions [total]atomic.Int32
		mu          sync.Mutex
		classes     = map[string]int{}
		problems    []string
		slowest     time.Duration
	)
	record := func(class string, d time.Duration, problem string) {
		mu.Lock()
		defer mu.Unlock()
		classes[class]++
		slowest = max(slowest, d)
		if problem != "" {
			problems = append(problems, problem)
		}
	}
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= total {
					return
				}
				topic := i % topics
				began := time.Now()
				n, err := b.PartitionedTopicMetadata(ctx, topicName(topic))
				d := time.Since(began)
				completions[i].Add(1)
				problem := ""
				if d > opTimeout+latency*2+slack {
					problem = fmt.Sprintf("request %d took %v", i, d)
				}
				switch {
				case err == nil && n == partitions(topic):
					record("answered", d, problem)
				case err == nil:
					record("wrong answer", d, fmt.Sprintf("request %d (topic %d): %d partitions, want %d", i, topic, n, partitions(topic)))
				case !pulsarconn.IsRetryable(err):
					record("not retryable", d, fmt.Sprintf("request %d: %v", i, err))
				case errors.Is(err, pulsarconn.ErrRequestTimeout):
					record("timed out", d, problem)
				case errors.Is(err, pulsarconn.ErrDisconnected):
					record("disconnected", d, problem)
					// Wait for the next connection rather than
					// spin through the reconnection.
					_ = b.WaitConnected(ctx)
				default:
					record("other retryable", d, problem)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)

	for i := range completions {
		if c := completions[i].Load(); c != 1 {
			t.Errorf("request %d completed %d times", i, c)
		}
	}
	ps := w.proxy.Stats()
	t.Logf("%d requests in %v by %d goroutines, %v latency each way, %d resets: %v; slowest %v",
		total, elapsed.Round(time.Millisecond), workers, latency, ps.Resets, classes, slowest.Round(time.Millisecond))
	assert.Empty(t, problems)
	assert.Equal(t, total, classes["answered"]+classes["disconnected"]+classes["timed out"]+classes["other retryable"])
	assert.GreaterOrEqual(t, ps.Resets, uint64(3), "the proxy reset the connection")
	assert.Greater(t, classes["answered"], total/2, "most requests answered")
	assert.Zero(t, b.Stats().UnknownRequests, "no answer to a request that was not asked on its connection")
}

// TestSingleByteSlices runs a whole session — handshake, lookups,
// partitioned metadata, a producer and 200 receipts — with every byte in
// both directions written on its own.
func TestSingleByteSlices(t *testing.T) {
	const messages = 200
	w := newWorld(t)
	for i := range 3 {
		w.srv.SetPartitions(topicName(i), partitions(i))
	}
	w.proxy.SetSlice(1)
	ctx := testenv.Context(t)
	b := w.start(t)
	require.NoError(t, b.WaitConnected(ctx))
	version, _ := b.ServerVersion()
	assert.NotEmpty(t, version, "CONNECTED arrived byte by byte")

	for i := range 3 {
		res, err := b.LookupTopic(ctx, topicName(i), false)
		require.NoError(t, err)
		assert.Equal(t, w.srv.URL(), res.BrokerURL)
		n, err := b.PartitionedTopicMetadata(ctx, topicName(i))
		require.NoError(t, err)
		assert.Equal(t, partitions(i), n)
	}

	const topic = "persistent://public/default/chaos-sliced"
	l := contracttest.NewPushLog()
	_, err := b.RegisterProducer(ctx, 1, l)
	require.NoError(t, err)
	resp, err := b.Request(ctx, producerCmd(topic, 1))
	require.NoError(t, err)
	require.Equal(t, pulsarpb.BaseCommand_PRODUCER_SUCCESS, resp.GetType())
	s := newSender(1)
	for seq := range messages {
		require.NoError(t, b.PublishMessage(ctx, s.frame(t, uint64(seq), fmt.Appendf(nil, "message %d", seq))))
	}
	receipts := l.WaitFor(ctx, t, pulsarconn.PushReceipt, messages)
	for i, p := range receipts {
		require.EqualValues(t, i, p.Command.GetSendReceipt().GetSequenceId(), "receipts in order")
	}
	stored := w.srv.Messages(topic)
	require.Len(t, stored, messages)
	for i, m := range stored {
		require.Equal(t, fmt.Sprintf("message %d", i), string(m), "stored in order, intact")
	}
	assert.Empty(t, l.OfKind(pulsarconn.PushSendError))
	assert.Empty(t, l.OfKind(pulsarconn.PushDisconnected))

	ps := w.proxy.Stats()
	t.Logf("%d bytes up in %d writes, %d bytes down in %d writes, %d connection(s)",
		ps.Bytes[chaos.Upstream], ps.Writes[chaos.Upstream], ps.Bytes[chaos.Downstream], ps.Writes[chaos.Downstream], ps.Accepted)
	assert.Equal(t, ps.Bytes, ps.Writes, "one write per byte")
	assert.EqualValues(t, 1, ps.Accepted, "one connection throughout")
	assert.Zero(t, ps.Resets)
	assert.Zero(t, b.Stats().Reconnects)
}

// TestBandwidthAndLatency: with a bandwidth cap and latency, 200
// concurrent requests still get their own answers and 128 KiB of messages
// their receipts; throughput follows the cap. The bounds come from byte
// counts: the proxy cannot forward faster than the cap (a hard floor on
// the time taken), and the ceiling is loose.
func TestBandwidthAndLatency(t *testing.T) {
	const (
		rate     = 256 << 10 // bytes per second, each direction
		latency  = 10 * time.Millisecond
		requests = 200
		messages = 128
		size     = 1 << 10
		topic    = "persistent://public/default/chaos-shaped"
	)
	w := newWorld(t)
	for i := range requests {
		w.srv.SetPartitions(topicName(i), partitions(i))
	}
	ctx := testenv.Context(t)
	b := w.start(t)
	require.NoError(t, b.WaitConnected(ctx))
	l := contracttest.NewPushLog()
	_, err := b.RegisterProducer(ctx, 1, l)
	require.NoError(t, err)
	_, err = b.Request(ctx, producerCmd(topic, 1))
	require.NoError(t, err)

	w.proxy.SetBandwidth(rate)
	w.proxy.SetLatency(latency)
	before := w.proxy.Stats()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, requests)
	durations := make([]time.Duration, requests)
	for i := range requests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			began := time.Now()
			n, err := b.PartitionedTopicMetadata(ctx, topicName(i))
			durations[i] = time.Since(began)
			if err == nil && n != partitions(i) {
				err = fmt.Errorf("topic %d: %d partitions, want %d", i, n, partitions(i))
			}
			errs[i] = err
		}()
	}
	s := newSender(1)
	payload := make([]byte, size)
	for seq := range messages {
		require.NoError(t, b.PublishMessage(ctx, s.frame(t, uint64(seq), payload)))
	}
	wg.Wait()
	receipts := l.WaitFor(ctx, t, pulsarconn.PushReceipt, messages)
	elapsed := time.Since(start)
	after := w.proxy.Stats()

	for i, err := range errs {
		require.NoError(t, err, "request %d", i)
		// Each request crossed the proxy twice, each time delayed.
		assert.GreaterOrEqual(t, durations[i], 2*latency, "request %d", i)
	}
	for i, p := range receipts {
		require.EqualValues(t, i, p.Command.GetSendReceipt().GetSequenceId(), "receipts in order")
	}
	up := after.Bytes[chaos.Upstream] - before.Bytes[chaos.Upstream]
	ideal := time.Duration(float64(up) / rate * float64(time.Second))
	// The proxy writes a hundredth of a second's worth before it waits.
	floor := time.Duration(float64(up-rate/100) / rate * float64(time.Second))
	achieved := float64(up) / elapsed.Seconds()
	t.Logf("%d bytes up (%d down) in %v at a cap of %d B/s with %v latency: %.0f B/s (%.0f%% of the cap); ideal %v",
		up, after.Bytes[chaos.Downstream]-before.Bytes[chaos.Downstream], elapsed.Round(time.Millisecond), rate, latency,
		achieved, 100*achieved/rate, ideal.Round(time.Millisecond))
	assert.GreaterOrEqual(t, up, uint64(messages*size), "the messages went through the proxy")
	assert.GreaterOrEqual(t, elapsed, floor, "faster than the cap allows")
	// The floor is the check; the ceiling only catches a stall, with room
	// for a loaded machine.
	assert.Less(t, elapsed, 10*ideal+30*time.Second, "far slower than the cap")
}

// TestHalfOpenKeepalive: the proxy stops forwarding mid-session with both
// sockets open; keepalive notices after two intervals, the Broker
// reconnects once the path heals, and the producer carries on. The Broker
// runs on a fake clock with the production keepalive and connect timeout,
// so that a loaded machine cannot expire a healthy connection.
func TestHalfOpenKeepalive(t *testing.T) {
	const (
		keepalive  = core.DefaultKeepAliveInterval
		backoffMax = 100 * time.Millisecond
		topic      = "persistent://public/default/chaos-halfopen"
	)
	w := newWorld(t)
	ctx := testenv.Context(t)
	clk := memory.NewClock(time.Now())
	b := w.start(t, pulsarconn.WithClock(clk), pulsarconn.WithBackoff(10*time.Millisecond, backoffMax))
	require.NoError(t, b.WaitConnected(ctx))
	l := contracttest.NewPushLog()
	_, err := b.RegisterProducer(ctx, 1, l)
	require.NoError(t, err)
	_, err = b.Request(ctx, producerCmd(topic, 1))
	require.NoError(t, err)
	s := newSender(1)
	require.NoError(t, b.PublishMessage(ctx, s.frame(t, 0, []byte("before"))))
	l.WaitFor(ctx, t, pulsarconn.PushReceipt, 1)

	w.proxy.SetHalfOpen(true)
	clk.Advance(keepalive) // a PING, which the proxy holds
	require.NoError(t, w.proxy.Wait(ctx, func(s chaos.Stats) bool { return s.Held >= 1 }))
	assert.Equal(t, pulsarconn.StateConnected, b.State())
	clk.Advance(keepalive)
	got := l.WaitFor(ctx, t, pulsarconn.PushDisconnected, 1)[0]
	assert.ErrorIs(t, got.Err, pulsarconn.ErrKeepaliveTimeout)
	assert.True(t, pulsarconn.IsRetryable(got.Err))
	assert.NotEqual(t, pulsarconn.StateConnected, b.State())

	// The Broker redials while the path is still dead: the proxy takes
	// the connection and holds its CONNECT.
	clk.Advance(backoffMax)
	require.NoError(t, w.proxy.Wait(ctx, func(s chaos.Stats) bool { return s.Accepted >= 2 && s.Held >= 2 }))
	w.proxy.SetHalfOpen(false)
	require.NoError(t, b.WaitConnected(ctx))
	_, err = b.Request(ctx, producerCmd(topic, 1))
	require.NoError(t, err)
	require.NoError(t, b.PublishMessage(ctx, s.frame(t, 1, []byte("after"))))
	receipts := l.WaitFor(ctx, t, pulsarconn.PushReceipt, 2)
	assert.EqualValues(t, 1, receipts[1].Command.GetSendReceipt().GetSequenceId())

	ps := w.proxy.Stats()
	st := b.Stats()
	t.Logf("keepalive %v: dead connection detected (%v); %d connections through the proxy, %d holds, %d reconnects, %d handshake failures",
		keepalive, got.Err, ps.Accepted, ps.Held, st.Reconnects, st.HandshakeFailures)
	assert.Positive(t, ps.Held, "the proxy held traffic")
	assert.EqualValues(t, 1, st.Reconnects)
	assert.Len(t, l.OfKind(pulsarconn.PushDisconnected), 1)
	assert.Equal(t, []string{"before", "after"}, storedStrings(w.srv.Messages(topic)))
}

func storedStrings(msgs [][]byte) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = string(m)
	}
	return out
}
