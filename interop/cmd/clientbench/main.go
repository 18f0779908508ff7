// Command clientbench measures the official Go client
// (github.com/apache/pulsar-client-go) on the same lean benchmark server
// and scenarios as `pulsarconn bench`, and writes its figures as JSON for
// `pulsarconn bench --compare FILE`:
//
//	cd interop && go run ./cmd/clientbench --json /tmp/pcg.json
//	cd .. && go run ./cmd/pulsarconn bench --compare /tmp/pcg.json
//
// Scenarios:
//
//   - request/response: Client.TopicPartitions (PARTITIONED_METADATA on
//     the client's one connection to the broker, MaxConnectionsPerBroker
//     1) from 1 and from 64 goroutines at once;
//   - publish with receipts: a producer with batching off sending 1 KiB
//     messages with SendAsync, at most --window awaiting their receipt.
//
// The official client has no counterpart of PublishMessage (pre-encoded
// frames) or of a raw consumer Handler, so those rows stay empty.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulsarconn/pulsarconn/internal/bench"
)

// clientName names the measured client in the report.
const clientName = "pulsar-client-go v0.19.0"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "clientbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("clientbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	duration := fs.Duration("duration", 2*time.Second, "length of each measured loop")
	quick := fs.Bool("quick", false, "150ms loops, for smoke tests")
	window := fs.Int("window", 1000, "sends awaiting their receipt")
	jsonFile := fs.String("json", "", "write the figures as JSON to this file (for pulsarconn bench --compare)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *quick {
		*duration = 150 * time.Millisecond
	}
	r := bench.NewReport(*duration)
	r.OtherClient = clientName

	rrServer, err := bench.NewServer(bench.ServerConfig{Partitions: 4})
	if err != nil {
		return err
	}
	defer rrServer.Close()
	client, err := newClient(rrServer.URL())
	if err != nil {
		return err
	}
	defer client.Close()
	// Warm up: the first call makes the connection.
	if _, err := client.TopicPartitions(bench.Topic); err != nil {
		return fmt.Errorf("TopicPartitions: %w", err)
	}
	for _, inflight := range []int{1, 64} {
		fmt.Fprintf(stderr, "request/response, %d in flight\n", inflight)
		t, allocs, err := bench.Counted(func() (bench.Throughput, error) {
			return topicPartitions(client, inflight, bench.For(*duration))
		})
		if err != nil {
			return err
		}
		r.AddOtherRequests(inflight, t, allocs)
	}

	fmt.Fprintf(stderr, "publish with receipts, window %d\n", *window)
	pubServer, err := bench.NewServer(bench.ServerConfig{}) // not partitioned: one producer
	if err != nil {
		return err
	}
	defer pubServer.Close()
	pubClient, err := newClient(pubServer.URL())
	if err != nil {
		return err
	}
	defer pubClient.Close()
	t, allocs, err := bench.Counted(func() (bench.Throughput, error) {
		return sendAsync(ctx, pubClient, *window, bench.For(*duration))
	})
	if err != nil {
		return err
	}
	r.AddOtherReceipts(*window, t, allocs)

	if err := r.WriteTable(stdout); err != nil {
		return err
	}
	if *jsonFile != "" {
		f, err := os.Create(*jsonFile)
		if err != nil {
			return err
		}
		if err := r.WriteJSON(f); err != nil {
			_ = f.Close()
			return err
		}
		return f.Close()
	}
	return nil
}

// newClient makes an official client with one connection per broker and
// its own metrics registry, silent.
func newClient(url string) (pulsar.Client, error) {
	return pulsar.NewClient(pulsar.ClientOptions{
		URL:                     url,
		ConnectionTimeout:       5 * time.Second,
		OperationTimeout:        30 * time.Second,
		MaxConnectionsPerBroker: 1,
		Logger:                  log.DefaultNopLogger(),
		MetricsRegisterer:       prometheus.NewRegistry(),
	})
}

// topicPartitions calls TopicPartitions from inflight goroutines until the
// budget is spent.
func topicPartitions(client pulsar.Client, inflight int, budget bench.Budget) (bench.Throughput, error) {
	var next atomic.Int64
	var over atomic.Bool
	hists := make([]bench.Histogram, inflight)
	errs := make([]error, inflight)
	var wg sync.WaitGroup
	start := time.Now()
	for g := range inflight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !over.Load() {
				if budget.Done(int(next.Add(1)) - 1) {
					over.Store(true)
					return
				}
				t0 := time.Now()
				parts, err := client.TopicPartitions(bench.Topic)
				if err == nil && len(parts) != 4 {
					err = fmt.Errorf("TopicPartitions: %d partitions, want 4", len(parts))
				}
				if err != nil {
					errs[g] = err
					over.Store(true)
					return
				}
				hists[g].Record(time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	var hist bench.Histogram
	for g := range hists {
		if errs[g] != nil {
			return bench.Throughput{}, errs[g]
		}
		hist.Merge(&hists[g])
	}
	return bench.Throughput{Ops: int(hist.Count()), Elapsed: elapsed, Latency: &hist}, nil
}

// sendAsync publishes 1 KiB messages with batching off, at most window
// awaiting their receipt, until the budget is spent and every receipt is
// in.
func sendAsync(ctx context.Context, client pulsar.Client, window int, budget bench.Budget) (bench.Throughput, error) {
	producer, err := client.CreateProducer(pulsar.ProducerOptions{
		Topic:              bench.Topic,
		DisableBatching:    true,
		MaxPendingMessages: window,
		SendTimeout:        30 * time.Second,
	})
	if err != nil {
		return bench.Throughput{}, fmt.Errorf("CreateProducer: %w", err)
	}
	defer producer.Close()
	payload := make([]byte, bench.PayloadSize)
	for i := range payload {
		payload[i] = byte('A' + i%26)
	}
	tokens := make(chan struct{}, window)
	var receipts atomic.Int64
	var failed atomic.Pointer[error]
	msg := &pulsar.ProducerMessage{Payload: payload}
	callback := func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
		if err != nil {
			failed.CompareAndSwap(nil, &err)
		} else {
			receipts.Add(1)
		}
		<-tokens
	}
	start := time.Now()
	n := 0
	for ; !budget.Done(n); n++ {
		select {
		case tokens <- struct{}{}:
		case <-ctx.Done():
			return bench.Throughput{}, ctx.Err()
		}
		producer.SendAsync(ctx, msg, callback)
	}
	for range window {
		select {
		case tokens <- struct{}{}:
		case <-ctx.Done():
			return bench.Throughput{}, ctx.Err()
		}
	}
	elapsed := time.Since(start)
	if e := failed.Load(); e != nil {
		return bench.Throughput{}, fmt.Errorf("SendAsync: %w", *e)
	}
	if got := receipts.Load(); got != int64(n) {
		return bench.Throughput{}, errors.New("SendAsync: receipts missing")
	}
	return bench.Throughput{Ops: n, Bytes: int64(n) * bench.PayloadSize, Elapsed: elapsed}, nil
}
