package pulsarconn_test

import (
	"context"
	"testing"
	"time"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/internal/bench"
)

// The benchmarks of the hot paths, against internal/bench's lean server on
// loopback TCP. Heap allocations are counted process-wide, so they include
// the server's, which are zero on these paths (see internal/bench): what
// -benchmem reports is the client's. docs/benchmarks.md has the figures
// and the profiles.

// benchBroker starts a lean server (cfg) and a Broker connected to it, both
// stopped when tb ends.
func benchBroker(tb testing.TB, cfg bench.ServerConfig) (*bench.Server, *pulsarconn.Broker) {
	tb.Helper()
	srv, err := bench.NewServer(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = srv.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	br, err := bench.StartBroker(ctx, srv.URL())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = br.Stop(context.Background()) })
	return srv, br
}

// benchContext bounds a benchmark's calls.
func benchContext(b *testing.B) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	b.Cleanup(cancel)
	return ctx
}

// BenchmarkPublishMessage measures PublishMessage of a pre-encoded 1 KiB
// SEND frame into a discard sink, up to the sink having read every byte.
func BenchmarkPublishMessage(b *testing.B) {
	srv, br := benchBroker(b, bench.ServerConfig{Sink: true})
	ctx := benchContext(b)
	encoded := bench.SendFrame(1, 0, bench.PayloadSize)
	b.SetBytes(int64(len(encoded)))
	b.ReportAllocs()
	b.ResetTimer()
	if _, err := bench.LibPublish(ctx, br, srv, encoded, bench.Count(b.N)); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkRequestResponse measures PartitionedTopicMetadata round trips
// with 1 and 64 callers in flight on one connection.
func BenchmarkRequestResponse(b *testing.B) {
	for _, inflight := range []int{1, 64} {
		b.Run(map[int]string{1: "inflight=1", 64: "inflight=64"}[inflight], func(b *testing.B) {
			_, br := benchBroker(b, bench.ServerConfig{Partitions: 4})
			ctx := benchContext(b)
			b.ReportAllocs()
			b.ResetTimer()
			t, err := bench.LibRequests(ctx, br, inflight, bench.Count(b.N))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(t.Latency.Quantile(0.99))/1e3, "p99-µs")
		})
	}
}

// BenchmarkRequestAsync measures PARTITIONED_METADATA round trips with
// RequestAsync, 64 in flight from one goroutine, as the raw loop sends
// them.
func BenchmarkRequestAsync(b *testing.B) {
	_, br := benchBroker(b, bench.ServerConfig{Partitions: 4})
	ctx := benchContext(b)
	b.ReportAllocs()
	b.ResetTimer()
	t, err := bench.LibRequestsAsync(ctx, br, 64, bench.Count(b.N))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(t.Latency.Quantile(0.99))/1e3, "p99-µs")
}

// BenchmarkReceipts measures publishing 1 KiB SEND frames with up to
// 1,000 awaiting their SEND_RECEIPT, routed to a producer Handler.
func BenchmarkReceipts(b *testing.B) {
	_, br := benchBroker(b, bench.ServerConfig{})
	ctx := benchContext(b)
	b.ReportAllocs()
	b.ResetTimer()
	if _, err := bench.LibReceipts(ctx, br, 1000, bench.PayloadSize, bench.Count(b.N)); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkDelivery measures MESSAGE frames (1 KiB payloads) routed to a
// consumer Handler, permits granted as a 1,000-message queue does.
func BenchmarkDelivery(b *testing.B) {
	_, br := benchBroker(b, bench.ServerConfig{})
	ctx := benchContext(b)
	b.ReportAllocs()
	b.ResetTimer()
	if _, err := bench.LibDelivery(ctx, br, bench.Count(b.N)); err != nil {
		b.Fatal(err)
	}
}
