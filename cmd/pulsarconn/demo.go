package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/adapters/memory"
	pcmd "github.com/pulsarconn/pulsarconn/proto/command"
	"github.com/pulsarconn/pulsarconn/proto/message"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

const (
	demoURL        = "pulsar://demo-broker:6650"
	demoTopic      = "persistent://public/default/demo"
	demoPartitions = 4
	demoMessages   = 1000
)

const demoAbout = `
Starts pulsartest's fake broker on an in-memory network (no sockets),
connects, looks a topic up, reads its partition metadata, registers a
producer and a consumer, publishes 1,000 messages and prints the receipts,
the deliveries and the latency percentiles, then where its code is and
what to read next.`

// demoCommand runs "pulsarconn demo".
func demoCommand(ctx context.Context, _ []string, stdout, _ io.Writer) error {
	if err := demo(ctx, stdout); err != nil {
		return err
	}
	_, err := io.WriteString(stdout, demoNext)
	return err
}

// demoNext is what the demo prints last: where its code is and what to
// read next. TestDemoNamesWhatExists checks that the files and Examples
// it names exist.
const demoNext = `
This demo's code: cmd/pulsarconn/demo.go (Broker, RegisterProducer,
RegisterConsumer, Registration.Create/Publish/Send, the command builders
and the message codec, against pulsartest).
Read next:
  README.md               what the library does and does not do
  docs/architecture.md    the layers, the safe pattern for producers
  docs/pulsartest.md      the fake broker, for your own tests
  the Examples, which go doc does not print (go test -run Example -v ./... runs them):
    ExampleStart, ExampleBroker_RegisterProducer (package pulsarconn),
    Example, ExampleCluster (package pulsartest),
    ExampleNetwork, ExampleClock (package adapters/memory),
    Example_producerConsumer (package refclient: a producer and a
    consumer that survive a connection drop, in 30 lines)
`

// demo runs the whole Broker API against pulsartest on an in-memory
// network: no flags, no sockets.
func demo(ctx context.Context, w io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()

	network := memory.NewNetwork()
	l, err := network.Listen("demo-broker:6650")
	if err != nil {
		return err
	}
	srv := pulsartest.NewServer(pulsartest.WithAdvertisedURL(demoURL))
	defer srv.Close()
	srv.SetPartitions(demoTopic, demoPartitions)
	go srv.Serve(l)
	fmt.Fprintf(w, "fake broker %s listening in memory\n", demoURL)

	b, err := pulsarconn.Start(demoURL, pulsarconn.WithTransport(network))
	if err != nil {
		return err
	}
	defer b.Stop(context.Background())
	if err := b.WaitConnected(ctx); err != nil {
		return err
	}
	version, protocol := b.ServerVersion()
	fmt.Fprintf(w, "connected: server %s, protocol version %d, max message size %d\n", version, protocol, b.MaxMessageSize())

	res, err := b.LookupTopic(ctx, demoTopic, false)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "lookup %s: connect to %s authoritative=%t proxy=%t\n", demoTopic, res.BrokerURL, res.Authoritative, res.ProxyThroughServiceURL)
	n, err := b.PartitionedTopicMetadata(ctx, demoTopic)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "partitions %s: %d\n", demoTopic, n)

	// The demo publishes to one partition: the broker-side producer and
	// consumer are per partition, which is the connection layer's view.
	partition := demoTopic + "-partition-0"
	rec := newRecorder(demoMessages)

	producerID := b.NewProducerID()
	preg, err := b.RegisterProducer(ctx, producerID, pulsarconn.HandlerFunc(rec.producerPush))
	if err != nil {
		return err
	}
	defer preg.Close(context.Background())
	resp, err := preg.Create(ctx, pcmd.Producer(partition, producerID))
	if err != nil {
		return fmt.Errorf("create producer: %w", err)
	}
	producerName := resp.GetProducerSuccess().GetProducerName()
	fmt.Fprintf(w, "producer %d registered as %q on %s\n", producerID, producerName, partition)

	consumerID := b.NewConsumerID()
	creg, err := b.RegisterConsumer(ctx, consumerID, pulsarconn.HandlerFunc(rec.consumerPush))
	if err != nil {
		return err
	}
	defer creg.Close(context.Background())
	if _, err := creg.Create(ctx, pcmd.Subscribe(partition, "demo-sub", consumerID, pulsarpb.CommandSubscribe_Exclusive,
		pcmd.SubscribeOptions{InitialPosition: pulsarpb.CommandSubscribe_Earliest})); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	if err := creg.Send(ctx, pcmd.Flow(consumerID, demoMessages)); err != nil {
		return err
	}
	fmt.Fprintf(w, "consumer %d subscribed to %s with %d permits\n", consumerID, partition, demoMessages)

	start := time.Now()
	enc := message.Encoder{ProducerName: producerName}
	var buf []byte
	for seq := range uint64(demoMessages) {
		buf, err = enc.AppendSend(buf[:0], producerID, &message.Message{SequenceID: seq, Payload: fmt.Appendf(nil, "message %d", seq)})
		if err != nil {
			return err
		}
		rec.sent(seq)
		if err := preg.Publish(ctx, buf); err != nil {
			return fmt.Errorf("publish %d: %w", seq, err)
		}
	}
	if err := rec.wait(ctx); err != nil {
		return err
	}
	elapsed := time.Since(start)
	rec.report(w, elapsed)
	return nil
}

// recorder collects the demo's receipts and deliveries.
type recorder struct {
	mu         sync.Mutex
	want       int
	sentAt     map[uint64]time.Time
	latencies  []time.Duration
	firstID    string
	lastID     string
	deliveries int
	badSums    int
	failures   []error
	done       chan struct{}
}

func newRecorder(want int) *recorder {
	return &recorder{want: want, sentAt: make(map[uint64]time.Time, want), done: make(chan struct{})}
}

func (r *recorder) sent(seq uint64) {
	r.mu.Lock()
	r.sentAt[seq] = time.Now()
	r.mu.Unlock()
}

func (r *recorder) producerPush(p pulsarconn.Push) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch p.Kind {
	case pulsarconn.PushReceipt:
		rc := p.Command.GetSendReceipt()
		if t, ok := r.sentAt[rc.GetSequenceId()]; ok {
			r.latencies = append(r.latencies, time.Since(t))
			delete(r.sentAt, rc.GetSequenceId())
		}
		id := fmt.Sprintf("seq %d -> message id %d:%d", rc.GetSequenceId(), rc.GetMessageId().GetLedgerId(), rc.GetMessageId().GetEntryId())
		if r.firstID == "" {
			r.firstID = id
		}
		r.lastID = id
	case pulsarconn.PushSendError, pulsarconn.PushDisconnected, pulsarconn.PushClosed:
		r.failures = append(r.failures, fmt.Errorf("producer: %v: %v", p.Kind, p.Err))
	}
	r.check()
}

func (r *recorder) consumerPush(p pulsarconn.Push) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch p.Kind {
	case pulsarconn.PushMessage:
		r.deliveries++
		// Decode checks the CRC32C and parses the metadata.
		if e, err := message.Decode(p.Payload); err != nil || len(e.Messages) != 1 {
			r.badSums++
		}
	case pulsarconn.PushDisconnected, pulsarconn.PushClosed:
		r.failures = append(r.failures, fmt.Errorf("consumer: %v: %v", p.Kind, p.Err))
	}
	r.check()
}

func (r *recorder) check() {
	if len(r.latencies) == r.want && r.deliveries == r.want {
		select {
		case <-r.done:
		default:
			close(r.done)
		}
	}
}

func (r *recorder) wait(ctx context.Context) error {
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		r.mu.Lock()
		defer r.mu.Unlock()
		return fmt.Errorf("waiting for receipts and deliveries: got %d receipts and %d deliveries of %d (failures: %v): %w",
			len(r.latencies), r.deliveries, r.want, r.failures, ctx.Err())
	}
}

func (r *recorder) report(w io.Writer, elapsed time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(w, "receipts: %d of %d (first %s, last %s)\n", len(r.latencies), r.want, r.firstID, r.lastID)
	fmt.Fprintf(w, "deliveries: %d of %d (checksum or decoding failures: %d)\n", r.deliveries, r.want, r.badSums)
	lat := slices.Clone(r.latencies)
	slices.Sort(lat)
	fmt.Fprintf(w, "publish-to-receipt latency: p50 %v  p90 %v  p99 %v  max %v\n",
		percentile(lat, 50), percentile(lat, 90), percentile(lat, 99), lat[len(lat)-1])
	fmt.Fprintf(w, "%d messages in %v (%.0f msg/s)\n", r.want, elapsed.Round(time.Microsecond), float64(r.want)/elapsed.Seconds())
}

// percentile returns the p-th percentile of sorted (nearest rank).
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	if i < 1 {
		i = 1
	}
	return sorted[i-1]
}
