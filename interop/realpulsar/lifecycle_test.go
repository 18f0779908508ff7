package realpulsar

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/adapters/memory"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// stallProxy forwards TCP connections on loopback to the real broker and
// can hold what the client sends: while held, the broker gets nothing, so
// a request stays unanswered for as long as a test wants, without
// stopping the broker for anyone else.
type stallProxy struct {
	ln     net.Listener
	target string

	mu   sync.Mutex
	gate chan struct{} // closed while forwarding is open
	// arrived gets a value each time bytes from the client reach a held
	// gate: the moment a request has left the client.
	arrived chan struct{}
}

func newStallProxy(t testing.TB, brokerURL string) *stallProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	open := make(chan struct{})
	close(open)
	p := &stallProxy{ln: ln, target: strings.TrimPrefix(brokerURL, "pulsar://"), gate: open, arrived: make(chan struct{}, 64)}
	var wg sync.WaitGroup
	var conns []net.Conn
	var connsMu sync.Mutex
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			connsMu.Lock()
			conns = append(conns, c, up)
			connsMu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); p.forward(up, c); up.Close() }()
			go func() { defer wg.Done(); io.Copy(c, up); c.Close() }()
		}
	}()
	t.Cleanup(func() {
		p.release()
		ln.Close()
		connsMu.Lock()
		for _, c := range conns {
			c.Close()
		}
		connsMu.Unlock()
		wg.Wait()
	})
	return p
}

// URL is the proxy's pulsar:// URL.
func (p *stallProxy) URL() string { return "pulsar://" + p.ln.Addr().String() }

// forward copies the client's bytes to the broker. It reads on while the
// gate is held, reporting each read to arrived, and writes in order once
// the gate opens.
func (p *stallProxy) forward(dst io.Writer, src io.Reader) {
	chunks := make(chan []byte, 1024)
	go func() {
		defer close(chunks)
		buf := make([]byte, 64<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				p.mu.Lock()
				gate := p.gate
				p.mu.Unlock()
				select {
				case <-gate:
				default:
					p.arrived <- struct{}{}
				}
				chunks <- append([]byte(nil), buf[:n]...)
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range chunks {
		p.mu.Lock()
		gate := p.gate
		p.mu.Unlock()
		<-gate
		if _, err := dst.Write(c); err != nil {
			for range chunks {
			}
			return
		}
	}
}

func (p *stallProxy) hold() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.gate:
		p.gate = make(chan struct{})
	default:
	}
}

func (p *stallProxy) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.gate:
	default:
		close(p.gate)
	}
}

// waitArrived waits until the client has sent something the gate holds.
func (p *stallProxy) waitArrived(t testing.TB) {
	t.Helper()
	select {
	case <-p.arrived:
	case <-time.After(safety):
		t.Fatal("the client sent nothing within the safety bound")
	}
}

func metadataRequest(topic string) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{
		Type:              pulsarpb.BaseCommand_PARTITIONED_METADATA.Enum(),
		PartitionMetadata: &pulsarpb.CommandPartitionedTopicMetadata{Topic: proto.String(topic)},
	}
}

// TestRequestTimeoutAndCancel: a request the broker has not answered ends
// with ErrRequestTimeout when the operation timeout passes (on the
// Broker's clock, a fake one here, so no test waits for it), and a
// blocking Request ends with its context; neither leaves anything pending,
// the broker's late answers are counted and dropped, and the connection
// goes on serving requests.
func TestRequestTimeoutAndCancel(t *testing.T) {
	rb := env(t)
	proxy := newStallProxy(t, rb.ServiceURL)
	clock := memory.NewClock(time.Now())
	const timeout = 5 * time.Second
	late := make(chan struct{}, 4)
	logs := slog.New(&recordWatch{msg: "ignoring answer to an unknown request", seen: late})
	b := start(t, proxy.URL(), pulsarconn.WithClock(clock), pulsarconn.WithOperationTimeout(timeout), pulsarconn.WithLogger(logs))
	topic := fullName(topicName(t))
	conn := b.Connection()

	// The operation timeout.
	proxy.hold()
	done := make(chan error, 1)
	if err := b.RequestAsync(bounded(t), metadataRequest(topic), func(_ *pulsarpb.BaseCommand, err error) { done <- err }); err != nil {
		t.Fatalf("RequestAsync: %v", err)
	}
	proxy.waitArrived(t)
	if got := b.Metrics().Pending; got != 1 {
		t.Fatalf("pending = %d with one request unanswered", got)
	}
	clock.Advance(timeout)
	select {
	case err := <-done:
		if !errors.Is(err, pulsarconn.ErrRequestTimeout) {
			t.Fatalf("request ended with %v, want ErrRequestTimeout", err)
		}
	case <-time.After(safety):
		t.Fatal("the request did not end at its timeout")
	}
	if got := b.Metrics().Pending; got != 0 {
		t.Fatalf("pending = %d after the timeout", got)
	}

	// The caller's context.
	ctx, cancel := context.WithCancel(bounded(t))
	errc := make(chan error, 1)
	go func() {
		_, err := b.Request(ctx, metadataRequest(topic))
		errc <- err
	}()
	proxy.waitArrived(t)
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Request ended with %v, want context.Canceled", err)
		}
	case <-time.After(safety):
		t.Fatal("Request did not end with its context")
	}
	if got := b.Metrics().Pending; got != 0 {
		t.Fatalf("pending = %d after the cancellation", got)
	}

	// Let the held requests through: the broker answers both, late (in
	// an order of its choosing: it handles lookups concurrently), and the
	// Broker drops both answers with a warning; a new request is answered.
	proxy.release()
	n, err := b.PartitionedTopicMetadata(bounded(t), topic)
	if err != nil || n != 0 {
		t.Fatalf("after the release: %d, %v", n, err)
	}
	for range 2 {
		select {
		case <-late:
		case <-time.After(safety):
			t.Fatalf("the broker's late answers were not both dropped; stats %+v", b.Stats())
		}
	}
	if got := b.Stats().UnknownRequests; got != 2 {
		t.Errorf("answers for requests no longer pending = %d, want the 2 late ones", got)
	}
	if got := b.Metrics().Pending; got != 0 || b.Connection() != conn {
		t.Errorf("pending %d, connection %d (was %d): want 0 and the same connection", got, b.Connection(), conn)
	}
}

// recordWatch is a slog.Handler that reports each record with message msg
// on seen, and drops every record.
type recordWatch struct {
	msg  string
	seen chan<- struct{}
}

func (w *recordWatch) Enabled(context.Context, slog.Level) bool { return true }
func (w *recordWatch) Handle(_ context.Context, r slog.Record) error {
	if r.Message == w.msg {
		w.seen <- struct{}{}
	}
	return nil
}
func (w *recordWatch) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *recordWatch) WithGroup(string) slog.Handler      { return w }

// closeWatcher is an Observer that hands over each completed CLOSE_PRODUCER
// and CLOSE_CONSUMER request.
type closeWatcher chan pulsarconn.RequestCompleted

func (w closeWatcher) Observe(e pulsarconn.Event) {
	if rc, ok := e.(pulsarconn.RequestCompleted); ok &&
		(rc.Type == pulsarpb.BaseCommand_CLOSE_PRODUCER || rc.Type == pulsarpb.BaseCommand_CLOSE_CONSUMER) {
		w <- rc
	}
}

func (w closeWatcher) next(t testing.TB, want pulsarpb.BaseCommand_Type) {
	t.Helper()
	select {
	case rc := <-w:
		if rc.Type != want || rc.Err != nil {
			t.Fatalf("%v completed with %v; want %v answered with SUCCESS", rc.Type, rc.Err, want)
		}
	case <-time.After(safety):
		t.Fatalf("no %v answered within %v", want, safety)
	}
}

// TestRegistrationContextEnds: when the context a producer or consumer was
// registered with ends, the Broker sends CLOSE_PRODUCER or CLOSE_CONSUMER,
// the real broker confirms with SUCCESS, and its statistics then list no
// producer and no consumer on the topic.
func TestRegistrationContextEnds(t *testing.T) {
	rb := env(t)
	closes := make(closeWatcher, 4)
	b := start(t, rb.ServiceURL, pulsarconn.WithObserver(closes))
	topic := fullName(topicName(t))
	const sub = "ctx-sub"

	pctx, endProducer := context.WithCancel(context.Background())
	pid := b.NewProducerID()
	if _, err := b.RegisterProducer(pctx, pid, pulsarconn.HandlerFunc(func(pulsarconn.Push) {})); err != nil {
		t.Fatal(err)
	}
	if _, err := createProducer(bounded(t), b, b.Connection(), pid, topic); err != nil {
		t.Fatalf("PRODUCER: %v", err)
	}
	cctx, endConsumer := context.WithCancel(context.Background())
	cid := b.NewConsumerID()
	if _, err := b.RegisterConsumer(cctx, cid, pulsarconn.HandlerFunc(func(pulsarconn.Push) {})); err != nil {
		t.Fatal(err)
	}
	if err := subscribe(bounded(t), b, cid, topic, sub, pulsarpb.CommandSubscribe_Shared); err != nil {
		t.Fatalf("SUBSCRIBE: %v", err)
	}
	s := stats(t, rb, topic)
	if len(s.Publishers) != 1 || len(s.Subscriptions[sub].Consumers) != 1 {
		t.Fatalf("before: %d publishers, %d consumers; want 1 and 1", len(s.Publishers), len(s.Subscriptions[sub].Consumers))
	}

	endProducer()
	closes.next(t, pulsarpb.BaseCommand_CLOSE_PRODUCER)
	if s := stats(t, rb, topic); len(s.Publishers) != 0 {
		t.Fatalf("the broker still lists %d publishers after confirming CLOSE_PRODUCER", len(s.Publishers))
	}
	endConsumer()
	closes.next(t, pulsarpb.BaseCommand_CLOSE_CONSUMER)
	if s := stats(t, rb, topic); len(s.Subscriptions[sub].Consumers) != 0 {
		t.Fatalf("the broker still lists %d consumers after confirming CLOSE_CONSUMER", len(s.Subscriptions[sub].Consumers))
	}
	if p, c := b.Producers(), b.Consumers(); len(p) != 0 || len(c) != 0 {
		t.Fatalf("still registered: producers %v, consumers %v", p, c)
	}
}

// TestGracefulStop: Stop closes the producers and consumers first — the
// real broker answers each close, so Stop returns nil — then the
// connection; every Handler hears PushEnded with ErrClosed, and the
// broker lists nobody left on the topic.
func TestGracefulStop(t *testing.T) {
	rb := env(t)
	b, err := pulsarconn.Start(rb.ServiceURL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := bounded(t)
	if err := b.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	topic := fullName(topicName(t))
	const sub = "stop-sub"
	ppushes, ph := pushes(4)
	pid := b.NewProducerID()
	if _, err := b.RegisterProducer(ctx, pid, ph); err != nil {
		t.Fatal(err)
	}
	if _, err := createProducer(ctx, b, b.Connection(), pid, topic); err != nil {
		t.Fatal(err)
	}
	cpushes, ch := pushes(4)
	cid := b.NewConsumerID()
	if _, err := b.RegisterConsumer(ctx, cid, ch); err != nil {
		t.Fatal(err)
	}
	if err := subscribe(ctx, b, cid, topic, sub, pulsarpb.CommandSubscribe_Exclusive); err != nil {
		t.Fatal(err)
	}

	if err := b.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v; want nil, the broker answered every close", err)
	}
	for name, ch := range map[string]chan pulsarconn.Push{"producer": ppushes, "consumer": cpushes} {
		p := next(t, ch, name+"'s end")
		if p.Kind != pulsarconn.PushEnded || !errors.Is(p.Err, pulsarconn.ErrClosed) {
			t.Errorf("%s heard %v (%v), want PushEnded with ErrClosed", name, p.Kind, p.Err)
		}
	}
	s := stats(t, rb, topic)
	if len(s.Publishers) != 0 || len(s.Subscriptions[sub].Consumers) != 0 {
		t.Fatalf("after Stop the broker lists %d publishers and %d consumers", len(s.Publishers), len(s.Subscriptions[sub].Consumers))
	}
	if st := b.State(); st != pulsarconn.StateClosed {
		t.Fatalf("state after Stop = %v", st)
	}
	if _, err := b.LookupTopic(ctx, topic, false); !errors.Is(err, pulsarconn.ErrClosed) {
		t.Fatalf("LookupTopic after Stop: %v, want ErrClosed", err)
	}
}
