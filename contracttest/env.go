package contracttest

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/adapters/memory"
	"github.com/pulsarconn/pulsarconn/internal/testenv"
	"github.com/pulsarconn/pulsarconn/ports"
	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// behaviour is one entry of the suite.
type behaviour struct {
	name string
	// opts configure the fake broker for this behaviour.
	opts []pulsartest.Option
	test func(t *testing.T, e *env)
}

// env is a behaviour's world: the fake broker serving the harness's
// listener, and the transport (with its faults) that reaches it.
type env struct {
	srv       *pulsartest.Server
	url       string
	transport ports.Transport
	faults    Faults
}

func newEnv(t *testing.T, h Harness, b behaviour) *env {
	t.Helper()
	he := h(t)
	require.NotNil(t, he.Listener, "harness returned no Listener")
	require.NotNil(t, he.Transport, "harness returned no Transport")
	opts := append([]pulsartest.Option{pulsartest.WithAdvertisedURL(he.URL)}, b.opts...)
	srv := pulsartest.NewServer(opts...)
	go srv.Serve(he.Listener)
	t.Cleanup(func() { srv.Close() })
	e := &env{srv: srv, url: he.URL, transport: he.Transport, faults: he.Faults}
	if e.faults == nil {
		ft := newFaultTransport(he.Transport)
		e.transport, e.faults = ft, ft
	}
	return e
}

// backoffMax is the longest reconnection delay of the suite's Brokers.
const backoffMax = 20 * time.Millisecond

// start starts a Broker through the env's transport, with quick
// reconnection, stopped when the test ends.
func (e *env) start(t *testing.T, opts ...pulsarconn.BrokerOption) *pulsarconn.Broker {
	t.Helper()
	opts = append([]pulsarconn.BrokerOption{
		pulsarconn.WithTransport(e.transport),
		pulsarconn.WithBackoff(time.Millisecond, backoffMax),
	}, opts...)
	b, err := pulsarconn.Start(e.url, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { b.Stop(context.Background()) })
	return b
}

// connected starts a Broker and waits for its connection.
func (e *env) connected(t *testing.T, opts ...pulsarconn.BrokerOption) *pulsarconn.Broker {
	t.Helper()
	b := e.start(t, opts...)
	require.NoError(t, b.WaitConnected(testContext(t)))
	return b
}

// startOnFakeClock starts a Broker as start does, on a fake clock that
// only the behaviour moves: its timeouts, keepalive and reconnection fire
// when the behaviour says, whatever the network's or the machine's speed.
func (e *env) startOnFakeClock(t *testing.T, opts ...pulsarconn.BrokerOption) (*pulsarconn.Broker, *memory.Clock) {
	t.Helper()
	clk := memory.NewClock(time.Now())
	return e.start(t, append([]pulsarconn.BrokerOption{pulsarconn.WithClock(clk)}, opts...)...), clk
}

// connectedConsumer starts a Broker on a fake clock (startOnFakeClock),
// waits for its connection and registers consumer 1, whose pushes it logs.
func (e *env) connectedConsumer(t *testing.T) (*pulsarconn.Broker, *memory.Clock, context.Context, *PushLog) {
	t.Helper()
	b, clk := e.startOnFakeClock(t)
	ctx := testContext(t)
	require.NoError(t, b.WaitConnected(ctx))
	l := NewPushLog()
	_, err := b.RegisterConsumer(ctx, 1, l)
	require.NoError(t, err)
	return b, clk, ctx, l
}

// testContext bounds a behaviour's waits; nothing in the suite waits on
// time otherwise.
var testContext = testenv.Context

// PushLog is a pulsarconn.Handler that records the pushes it receives and
// lets a test wait for them without sleeping. It is exported for tests of
// code built on pulsarconn, which need the same thing.
type PushLog struct {
	mu     sync.Mutex
	pushes []pulsarconn.Push
	notify chan struct{}
}

// NewPushLog returns an empty PushLog.
func NewPushLog() *PushLog { return &PushLog{notify: make(chan struct{}, 1)} }

// HandlePush implements pulsarconn.Handler.
func (l *PushLog) HandlePush(p pulsarconn.Push) {
	l.mu.Lock()
	l.pushes = append(l.pushes, p)
	l.mu.Unlock()
	select {
	case l.notify <- struct{}{}:
	default:
	}
}

// WaitFor waits until n pushes of kind arrived and returns them (all of
// that kind so far, in order); it fails the test if ctx ends first.
func (l *PushLog) WaitFor(ctx context.Context, t testing.TB, kind pulsarconn.PushKind, n int) []pulsarconn.Push {
	t.Helper()
	for {
		got := l.OfKind(kind)
		if len(got) >= n {
			return got
		}
		select {
		case <-l.notify:
		case <-ctx.Done():
			t.Fatalf("waiting for %d %v pushes: got %d", n, kind, len(got))
		}
	}
}

// All returns the pushes received so far, in order.
func (l *PushLog) All() []pulsarconn.Push {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.pushes)
}

// OfKind returns the pushes of kind received so far, in order.
func (l *PushLog) OfKind(kind pulsarconn.PushKind) []pulsarconn.Push {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []pulsarconn.Push
	for _, p := range l.pushes {
		if p.Kind == kind {
			out = append(out, p)
		}
	}
	return out
}

func producerCmd(topic string, id uint64) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{
		Type:     pulsarpb.BaseCommand_PRODUCER.Enum(),
		Producer: &pulsarpb.CommandProducer{Topic: proto.String(topic), ProducerId: proto.Uint64(id)},
	}
}

func subscribeCmd(topic, sub string, id uint64) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_SUBSCRIBE.Enum(),
		Subscribe: &pulsarpb.CommandSubscribe{
			Topic: proto.String(topic), Subscription: proto.String(sub),
			SubType: pulsarpb.CommandSubscribe_Exclusive.Enum(), ConsumerId: proto.Uint64(id),
			InitialPosition: pulsarpb.CommandSubscribe_Earliest.Enum(),
		},
	}
}

func flowCmd(id uint64, permits uint32) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_FLOW.Enum(),
		Flow: &pulsarpb.CommandFlow{ConsumerId: proto.Uint64(id), MessagePermits: proto.Uint32(permits)}}
}

func sendFrame(t *testing.T, producerID, seq uint64, payload []byte) []byte {
	t.Helper()
	b, err := frame.AppendMessage(nil,
		&pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_SEND.Enum(),
			Send: &pulsarpb.CommandSend{ProducerId: proto.Uint64(producerID), SequenceId: proto.Uint64(seq)}},
		&pulsarpb.MessageMetadata{ProducerName: proto.String("p"), SequenceId: proto.Uint64(seq), PublishTime: proto.Uint64(1)},
		payload)
	require.NoError(t, err)
	return b
}

// staticToken is an Authenticator presenting a fixed token.
type staticToken string

func (staticToken) Name() string                                        { return "token" }
func (s staticToken) Initial(context.Context) ([]byte, error)           { return []byte(s), nil }
func (s staticToken) Challenge(context.Context, []byte) ([]byte, error) { return []byte(s), nil }
