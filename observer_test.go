package pulsarconn_test

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
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

// events records what an Observer saw.
type events struct {
	mu      sync.Mutex
	all     []pulsarconn.Event
	changed chan struct{} // closed at the next event, when someone waits
}

func (e *events) Observe(ev pulsarconn.Event) {
	e.mu.Lock()
	e.all = append(e.all, ev)
	if e.changed != nil {
		close(e.changed)
		e.changed = nil
	}
	e.mu.Unlock()
}

// waitUntil waits until ok holds of the events seen: a Broker delivers
// them from its queue, after the state change they report.
func (e *events) waitUntil(t *testing.T, ok func([]pulsarconn.Event) bool) {
	t.Helper()
	ctx := testContext(t)
	for {
		e.mu.Lock()
		if ok(e.all) {
			e.mu.Unlock()
			return
		}
		if e.changed == nil {
			e.changed = make(chan struct{})
		}
		ch := e.changed
		e.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("the Observer did not see the events waited for; it saw %v", e.list())
		}
	}
}

func (e *events) list() []pulsarconn.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]pulsarconn.Event(nil), e.all...)
}

func ofType[T pulsarconn.Event](evs []pulsarconn.Event) []T {
	var out []T
	for _, ev := range evs {
		if t, ok := ev.(T); ok {
			out = append(out, t)
		}
	}
	return out
}

func TestObserverSeesTheConnectionLifecycle(t *testing.T) {
	synctest.Test(t, testObserverSeesTheConnectionLifecycle)
}

func testObserverSeesTheConnectionLifecycle(t *testing.T) {
	e := memoryEnv(t)
	obs := &events{}
	b := e.connected(t, pulsarconn.WithObserver(obs))
	ctx := testContext(t)

	_, err := b.LookupTopic(ctx, "persistent://public/default/t", false)
	require.NoError(t, err)
	_, err = b.LookupTopic(ctx, "", false)
	require.Error(t, err)
	reqs := ofType[pulsarconn.RequestCompleted](obs.list())
	require.Len(t, reqs, 2)
	assert.Equal(t, pulsarpb.BaseCommand_LOOKUP, reqs[0].Type)
	assert.NoError(t, reqs[0].Err)
	assert.GreaterOrEqual(t, reqs[0].Latency, time.Duration(0))
	assert.ErrorIs(t, reqs[1].Err, pulsarconn.ErrInvalidTopicName)
	assert.Equal(t, b.BrokerURL(), reqs[0].BrokerURL)

	_, changed := b.WatchState()
	e.srv.DropConnections()
	<-changed
	require.NoError(t, b.WaitConnected(ctx))
	require.NoError(t, b.Stop(ctx))

	opened := ofType[pulsarconn.ConnectionOpened](obs.list())
	require.Len(t, opened, 2)
	assert.False(t, opened[0].Reconnect)
	assert.True(t, opened[1].Reconnect)
	closed := ofType[pulsarconn.ConnectionClosed](obs.list())
	require.Len(t, closed, 2, "the drop and the stop")
	assert.Error(t, closed[0].Err)
	assert.NotErrorIs(t, closed[0].Err, pulsarconn.ErrClosed)
	assert.ErrorIs(t, closed[1].Err, pulsarconn.ErrClosed)
	assert.Empty(t, ofType[pulsarconn.HandshakeFailed](obs.list()))
}

func TestObserverSeesHandshakeFailures(t *testing.T) {
	synctest.Test(t, testObserverSeesHandshakeFailures)
}

func testObserverSeesHandshakeFailures(t *testing.T) {
	e := memoryEnv(t, pulsartest.WithToken("right"))
	obs := &events{}
	b := e.start(t, pulsarconn.WithObserver(obs), pulsarconn.WithAuthenticator(staticToken("wrong")))
	testenv.WaitState(t, b, pulsarconn.StateClosed) // a refusal of the credentials is final
	obs.waitUntil(t, func(evs []pulsarconn.Event) bool {
		return len(ofType[pulsarconn.HandshakeFailed](evs)) > 0
	})
	failed := ofType[pulsarconn.HandshakeFailed](obs.list())
	require.Len(t, failed, 1)
	assert.ErrorIs(t, failed[0].Err, pulsarconn.ErrAuthenticationError)
	assert.Empty(t, ofType[pulsarconn.ConnectionOpened](obs.list()))
}

func TestMetrics(t *testing.T) { synctest.Test(t, testMetrics) }

func testMetrics(t *testing.T) {
	e := memoryEnv(t)
	clk := memory.NewClock(time.Unix(1_700_000_000, 0)) // no keepalive PINGs while it stands still
	b := e.start(t, pulsarconn.WithClock(clk))
	ctx := testContext(t)
	require.NoError(t, b.WaitConnected(ctx))
	for range 3 {
		_, err := b.LookupTopic(ctx, "persistent://public/default/t", false)
		require.NoError(t, err)
	}
	m := b.Metrics()
	assert.Equal(t, pulsarconn.StateConnected, m.State)
	assert.EqualValues(t, 4, m.FramesOut, "CONNECT and three LOOKUPs")
	assert.EqualValues(t, 4, m.FramesIn, "CONNECTED and three answers")
	assert.Greater(t, m.BytesOut, uint64(4*8))
	assert.Greater(t, m.BytesIn, uint64(4*8))

	_, err := b.RegisterProducer(ctx, 1, contracttest.NewPushLog())
	require.NoError(t, err)
	_, err = b.RegisterConsumer(ctx, 1, contracttest.NewPushLog())
	require.NoError(t, err)
	_, err = b.RegisterConsumer(ctx, 2, contracttest.NewPushLog())
	require.NoError(t, err)
	held := e.srv.Hold(pulsarpb.BaseCommand_LOOKUP)
	errc := make(chan error, 1)
	go func() { _, err := b.LookupTopic(ctx, "t", false); errc <- err }()
	<-held.Arrived()
	m = b.Metrics()
	assert.Equal(t, 1, m.Pending)
	assert.Equal(t, 1, m.Producers)
	assert.Equal(t, 2, m.Consumers)
	held.Release()
	require.NoError(t, <-errc)
	assert.Zero(t, b.Metrics().Pending)
}

func TestClientObservesLookups(t *testing.T) { synctest.Test(t, testClientObservesLookups) }

func testClientObservesLookups(t *testing.T) {
	c := newCluster(t, "service", "b1", "owner")
	redirectTo(c.servers["service"], "pulsar://b1:6650", false)
	redirectTo(c.servers["b1"], "pulsar://owner:6650", true)
	obs := &events{}
	cl := c.client(t, "pulsar://service", pulsarconn.WithObserver(obs))
	ctx := testContext(t)
	b, err := cl.LookupTopic(ctx, "t")
	require.NoError(t, err)
	require.NoError(t, b.WaitConnected(ctx))

	redirects := ofType[pulsarconn.LookupRedirected](obs.list())
	require.Len(t, redirects, 2)
	assert.Equal(t, pulsarconn.LookupRedirected{Topic: "t", From: "pulsar://service:6650", To: "pulsar://b1:6650"}, redirects[0])
	assert.Equal(t, pulsarconn.LookupRedirected{Topic: "t", From: "pulsar://b1:6650", To: "pulsar://owner:6650"}, redirects[1])
	done := ofType[pulsarconn.LookupCompleted](obs.list())
	require.Len(t, done, 1)
	assert.Equal(t, "pulsar://owner:6650", done[0].BrokerURL)
	assert.Equal(t, 2, done[0].Redirects)
	assert.NoError(t, done[0].Err)

	m := cl.Metrics()
	assert.Equal(t, 2, m.Connections, "the service host's and the owner's; b1's was stopped")
	assert.GreaterOrEqual(t, m.Open, 1)
	assert.Zero(t, m.Lookups)
	assert.Greater(t, m.Total.FramesOut, uint64(0))
}

// TestLogsCarryNoCredentials drops an authenticated connection and checks
// that nothing logged, and no error, shows the token.
func TestLogsCarryNoCredentials(t *testing.T) { synctest.Test(t, testLogsCarryNoCredentials) }

func testLogsCarryNoCredentials(t *testing.T) {
	const secret = "s3cret-token-value"
	e := memoryEnv(t, pulsartest.WithToken(secret))
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(lockedWriter{&mu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b := e.connected(t, pulsarconn.WithAuthenticator(staticToken(secret)), pulsarconn.WithLogger(logger))
	ctx := testContext(t)
	_, changed := b.WatchState()
	e.srv.DropConnections()
	<-changed
	require.NoError(t, b.WaitConnected(ctx))
	bad := e.start(t, pulsarconn.WithAuthenticator(staticToken(secret+"-wrong")), pulsarconn.WithLogger(logger))
	testenv.WaitState(t, bad, pulsarconn.StateClosed)
	wctx, cancel := context.WithCancel(ctx)
	cancel()
	err := bad.WaitConnected(wctx)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), secret)
	require.NoError(t, b.Stop(ctx))
	require.NoError(t, bad.Stop(ctx))

	mu.Lock()
	out := logs.String()
	mu.Unlock()
	assert.Contains(t, out, "connection lost", "the drop was logged")
	assert.Contains(t, out, `"level":"INFO","msg":"connected"`)
	assert.NotContains(t, out, secret)
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// closeEvents hands over each completed CLOSE_PRODUCER and CLOSE_CONSUMER.
type closeEvents chan pulsarconn.RequestCompleted

func (c closeEvents) Observe(ev pulsarconn.Event) {
	if rc, ok := ev.(pulsarconn.RequestCompleted); ok &&
		(rc.Type == pulsarpb.BaseCommand_CLOSE_PRODUCER || rc.Type == pulsarpb.BaseCommand_CLOSE_CONSUMER) {
		c <- rc
	}
}

// The broker's answer to the close a Registration sends — when its context
// ends, with nobody waiting, and from Close — reaches the Observer.
func TestObserverSeesRegistrationCloses(t *testing.T) {
	synctest.Test(t, testObserverSeesRegistrationCloses)
}

func testObserverSeesRegistrationCloses(t *testing.T) {
	e := memoryEnv(t)
	obs := make(closeEvents, 2)
	b := e.connected(t, pulsarconn.WithObserver(obs))
	ctx := testContext(t)

	pctx, end := context.WithCancel(ctx)
	pid := b.NewProducerID()
	_, err := b.RegisterProducer(pctx, pid, pulsarconn.HandlerFunc(func(pulsarconn.Push) {}))
	require.NoError(t, err)
	_, err = b.Request(ctx, &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_PRODUCER.Enum(),
		Producer: &pulsarpb.CommandProducer{Topic: proto.String("persistent://public/default/t"), ProducerId: proto.Uint64(pid)}})
	require.NoError(t, err)
	cid := b.NewConsumerID()
	reg, err := b.RegisterConsumer(ctx, cid, pulsarconn.HandlerFunc(func(pulsarconn.Push) {}))
	require.NoError(t, err)

	end()
	select {
	case rc := <-obs:
		assert.Equal(t, pulsarpb.BaseCommand_CLOSE_PRODUCER, rc.Type)
		assert.NoError(t, rc.Err)
		assert.Equal(t, b.BrokerURL(), rc.BrokerURL)
	case <-ctx.Done():
		t.Fatal("no RequestCompleted for the CLOSE_PRODUCER sent when the context ended")
	}
	require.NoError(t, reg.Close(ctx))
	rc := <-obs // Close returned after the answer, and observed it first
	assert.Equal(t, pulsarpb.BaseCommand_CLOSE_CONSUMER, rc.Type)
	assert.NoError(t, rc.Err)
}

// An Observer may call back into the Broker: it runs outside the Broker's
// lock, so Metrics and State on ConnectionOpened, and RequestAsync on
// ConnectionClosed, do not deadlock.
func TestObserverCallsBackIntoTheBroker(t *testing.T) {
	synctest.Test(t, testObserverCallsBackIntoTheBroker)
}

func testObserverCallsBackIntoTheBroker(t *testing.T) {
	e := memoryEnv(t)
	ctx := testContext(t)
	var self atomic.Pointer[pulsarconn.Broker]
	ready := make(chan struct{})
	opened := make(chan pulsarconn.Metrics, 2)
	sent := make(chan error, 1)
	answered := make(chan error, 1)
	obs := pulsarconn.ObserverFunc(func(ev pulsarconn.Event) {
		<-ready
		b := self.Load()
		switch ev.(type) {
		case pulsarconn.ConnectionOpened:
			opened <- b.Metrics()
		case pulsarconn.ConnectionClosed:
			if b.State() == pulsarconn.StateClosed {
				return
			}
			cmd := &pulsarpb.BaseCommand{
				Type:              pulsarpb.BaseCommand_PARTITIONED_METADATA.Enum(),
				PartitionMetadata: &pulsarpb.CommandPartitionedTopicMetadata{Topic: proto.String("t")},
			}
			// Sent once reconnected; the answer comes after this returns.
			sent <- b.RequestAsync(ctx, cmd, func(_ *pulsarpb.BaseCommand, err error) { answered <- err })
		}
	})
	b, err := pulsarconn.Start(e.url, pulsarconn.WithTransport(e.transport), pulsarconn.WithObserver(obs))
	require.NoError(t, err)
	defer b.Stop(context.Background())
	self.Store(b)
	close(ready)
	require.NoError(t, b.WaitConnected(ctx))
	assert.Equal(t, pulsarconn.StateConnected, (<-opened).State)

	e.srv.DropConnections()
	for _, ch := range []chan error{sent, answered} {
		select {
		case err := <-ch:
			require.NoError(t, err)
		case <-ctx.Done():
			t.Fatal("RequestAsync from the Observer on ConnectionClosed never finished")
		}
	}
}
