package pulsarconn_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/adapters/memory"
	"github.com/pulsarconn/pulsarconn/adapters/tcp"
	tlstransport "github.com/pulsarconn/pulsarconn/adapters/tls"
	"github.com/pulsarconn/pulsarconn/contracttest"
	"github.com/pulsarconn/pulsarconn/contracttest/harness"
	"github.com/pulsarconn/pulsarconn/internal/testenv"
	"github.com/pulsarconn/pulsarconn/ports"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// env is a fake broker and the transport that reaches it.
type env struct {
	srv       *pulsartest.Server
	url       string
	transport ports.Transport
	network   *memory.Network // nil over TCP
}

// start starts a Broker on e with quick reconnection.
func (e env) start(t *testing.T, opts ...pulsarconn.BrokerOption) *pulsarconn.Broker {
	t.Helper()
	opts = append([]pulsarconn.BrokerOption{
		pulsarconn.WithTransport(e.transport),
		pulsarconn.WithBackoff(time.Millisecond, 20*time.Millisecond),
	}, opts...)
	b, err := pulsarconn.Start(e.url, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { b.Stop(context.Background()) })
	return b
}

// connected starts a Broker and waits for its connection.
func (e env) connected(t *testing.T, opts ...pulsarconn.BrokerOption) *pulsarconn.Broker {
	t.Helper()
	b := e.start(t, opts...)
	require.NoError(t, b.WaitConnected(testContext(t)))
	return b
}

// memoryEnv starts a fake broker on an in-memory network. Tests that use
// it run in a synctest bubble (synctest.Test): time is the bubble's, so the
// production timeouts cost no real time and no outcome depends on the
// machine's load.
func memoryEnv(t *testing.T, opts ...pulsartest.Option) env {
	e := testenv.Memory(t, opts...)
	return env{srv: e.Server, url: e.URL, transport: e.Network, network: e.Network}
}

func tcpEnv(t *testing.T, opts ...pulsartest.Option) env {
	srv := pulsartest.NewTCP(t, opts...)
	return env{srv: srv, url: srv.URL(), transport: tcp.New()}
}

// forEachTransport runs test once over the in-memory network, in a
// synctest bubble, and once over TCP loopback, each against its own fake
// broker.
func forEachTransport(t *testing.T, test func(t *testing.T, e env), opts ...pulsartest.Option) {
	t.Run("memory", bubble(func(t *testing.T) { test(t, memoryEnv(t, opts...)) }))
	t.Run("tcp", func(t *testing.T) { test(t, tcpEnv(t, opts...)) })
}

// bubble returns test to run in a synctest bubble, as a subtest.
func bubble(test func(t *testing.T)) func(t *testing.T) {
	return func(t *testing.T) { synctest.Test(t, test) }
}

// testContext bounds a test's waits.
var testContext = testenv.Context

// ---------------------------------------------------------------------------

func TestStartRejectsBadURLs(t *testing.T) {
	for _, u := range []string{"http://h:6650", "pulsar://", "h:6650", "pulsar://h:0", "pulsar://h:99999", "pulsar://h/path"} {
		_, err := pulsarconn.Start(u)
		assert.ErrorIs(t, err, pulsarconn.ErrInvalidURL, u)
	}
}

func TestConnectAndWatchState(t *testing.T) {
	forEachTransport(t, func(t *testing.T, e env) {
		b := e.start(t)
		require.NoError(t, b.WaitConnected(testContext(t)))
		st, changed := b.WatchState()
		assert.Equal(t, pulsarconn.StateConnected, st)
		version, protocol := b.ServerVersion()
		assert.Equal(t, pulsartest.DefaultServerVersion, version)
		assert.EqualValues(t, 21, protocol)
		connect := e.srv.LastConnect()
		require.NotNil(t, connect)
		assert.Contains(t, connect.GetClientVersion(), "pulsarconn")
		assert.True(t, connect.GetFeatureFlags().GetSupportsAuthRefresh())

		require.NoError(t, b.Stop(testContext(t)))
		select {
		case <-changed:
		default:
			t.Fatal("state change not signalled")
		}
		assert.Equal(t, pulsarconn.StateClosed, b.State())
	})
}

func TestRegistryListing(t *testing.T) {
	forEachTransport(t, func(t *testing.T, e env) {
		reg := pulsarconn.NewRegistry()
		b := e.connected(t, pulsarconn.WithRegistry(reg))
		ctx := testContext(t)
		_, err := b.RegisterProducer(ctx, 3, contracttest.NewPushLog())
		require.NoError(t, err)
		_, err = b.RegisterConsumer(ctx, 8, contracttest.NewPushLog())
		require.NoError(t, err)

		ids, err := pulsarconn.ProducersAt(reg, e.url)
		require.NoError(t, err)
		assert.Equal(t, []uint64{3}, ids)
		ids, err = pulsarconn.ConsumersAt(reg, e.url)
		require.NoError(t, err)
		assert.Equal(t, []uint64{8}, ids)
		_, err = pulsarconn.ProducersAt(reg, "pulsar://elsewhere:6650")
		assert.ErrorIs(t, err, pulsarconn.ErrNotRegistered)
		_, err = pulsarconn.ProducersAt(reg, "http://x")
		assert.ErrorIs(t, err, pulsarconn.ErrInvalidURL)

		_, err = pulsarconn.Start(e.url, pulsarconn.WithTransport(e.transport), pulsarconn.WithRegistry(reg))
		assert.ErrorIs(t, err, ports.ErrAlreadyRegistered)

		require.NoError(t, b.Stop(ctx))
		_, ok := reg.Get(b.BrokerURL())
		assert.False(t, ok, "Stop removes the Broker from its registry")
	})
}

func TestRegistryCanonicalURL(t *testing.T) { synctest.Test(t, testRegistryCanonicalURL) }

func testRegistryCanonicalURL(t *testing.T) {
	e := memoryEnv(t)
	reg := pulsarconn.NewRegistry()
	b := e.start(t, pulsarconn.WithRegistry(reg))
	_, err := b.RegisterProducer(testContext(t), 3, contracttest.NewPushLog())
	require.NoError(t, err)
	ids, err := pulsarconn.ProducersAt(reg, "pulsar://broker-1") // the default port is filled in
	require.NoError(t, err)
	assert.Equal(t, []uint64{3}, ids)
	assert.Equal(t, "pulsar://broker-1:6650", b.BrokerURL())
}

// fakeClockEnv is a memory env whose Broker runs on a fake clock.
func fakeClockBroker(t *testing.T, e env, opts ...pulsarconn.BrokerOption) (*pulsarconn.Broker, *memory.Clock) {
	t.Helper()
	clk := memory.NewClock(time.Unix(1_700_000_000, 0))
	b := e.start(t, append([]pulsarconn.BrokerOption{pulsarconn.WithClock(clk)}, opts...)...)
	return b, clk
}

func TestKeepaliveExpiryAgainstSilentBroker(t *testing.T) {
	forEachTransport(t, func(t *testing.T, e env) {
		b, clk := fakeClockBroker(t, e, pulsarconn.WithKeepAlive(30*time.Second))
		ctx := testContext(t)
		require.NoError(t, b.WaitConnected(ctx))
		e.srv.SetAnswerPings(false)

		clk.Advance(30 * time.Second)
		require.NoError(t, e.srv.WaitReceived(ctx, pulsarpb.BaseCommand_PING, 1), "a PING after one interval")
		assert.Equal(t, pulsarconn.StateConnected, b.State())

		st, changed := b.WatchState()
		require.Equal(t, pulsarconn.StateConnected, st)
		clk.Advance(30 * time.Second)
		<-changed
		assert.Equal(t, pulsarconn.StateDisconnected, b.State())
		wctx, cancel := context.WithCancel(ctx)
		cancel()
		assert.ErrorIs(t, b.WaitConnected(wctx), pulsarconn.ErrKeepaliveTimeout, "the last error is kept")
	})
}

func TestKeepaliveAnsweredStaysConnected(t *testing.T) {
	synctest.Test(t, testKeepaliveAnsweredStaysConnected)
}

func testKeepaliveAnsweredStaysConnected(t *testing.T) {
	e := memoryEnv(t)
	b, clk := fakeClockBroker(t, e, pulsarconn.WithKeepAlive(30*time.Second))
	ctx := testContext(t)
	require.NoError(t, b.WaitConnected(ctx))
	for i := 1; i <= 5; i++ {
		clk.Advance(30 * time.Second)
		require.NoError(t, e.srv.WaitReceived(ctx, pulsarpb.BaseCommand_PING, i))
		// A round trip makes sure the PONG was read before time moves on.
		_, err := b.LookupTopic(ctx, "persistent://public/default/t", false)
		require.NoError(t, err)
	}
	assert.Equal(t, pulsarconn.StateConnected, b.State())
}

func TestBrokerNeverAnswersConnect(t *testing.T) { synctest.Test(t, testBrokerNeverAnswersConnect) }

func testBrokerNeverAnswersConnect(t *testing.T) {
	e := memoryEnv(t)
	e.srv.SetNeverConnect(true)
	b, clk := fakeClockBroker(t, e, pulsarconn.WithConnectTimeout(10*time.Second))
	ctx := testContext(t)
	require.NoError(t, e.srv.WaitReceived(ctx, pulsarpb.BaseCommand_CONNECT, 1))
	st, changed := b.WatchState()
	require.Equal(t, pulsarconn.StateHandshaking, st)
	clk.Advance(10 * time.Second)
	<-changed
	wctx, cancel := context.WithCancel(ctx)
	cancel()
	assert.ErrorIs(t, b.WaitConnected(wctx), pulsarconn.ErrConnectTimeout)

	e.srv.SetNeverConnect(false)
	clk.Advance(time.Second) // past the backoff: dial again
	require.NoError(t, b.WaitConnected(ctx))
}

func TestRequestTimeout(t *testing.T) {
	forEachTransport(t, func(t *testing.T, e env) {
		b, clk := fakeClockBroker(t, e, pulsarconn.WithOperationTimeout(5*time.Second))
		ctx := testContext(t)
		require.NoError(t, b.WaitConnected(ctx))
		e.srv.Intercept(pulsarpb.BaseCommand_LOOKUP, func(*pulsartest.Call) pulsartest.Action { return pulsartest.Drop })
		errc := make(chan error, 1)
		go func() {
			_, err := b.LookupTopic(ctx, "persistent://public/default/t", false)
			errc <- err
		}()
		require.NoError(t, e.srv.WaitReceived(ctx, pulsarpb.BaseCommand_LOOKUP, 1))
		clk.Advance(5 * time.Second)
		err := <-errc
		assert.ErrorIs(t, err, pulsarconn.ErrRequestTimeout)
		assert.True(t, pulsarconn.IsRetryable(err))
		_, err = b.LookupTopic(ctx, "persistent://public/default/t", false)
		require.NoError(t, err, "the connection stays usable")
	})
}

func TestAuthChallengeAnswered(t *testing.T) { synctest.Test(t, testAuthChallengeAnswered) }

func testAuthChallengeAnswered(t *testing.T) {
	e := memoryEnv(t, pulsartest.WithToken("s3cret"), pulsartest.WithAuthChallenge(2))
	auth := &countingToken{token: "s3cret"}
	b := e.connected(t, pulsarconn.WithAuthenticator(auth))
	assert.Equal(t, 2, auth.challenges(), "two rounds during the handshake")

	e.srv.ChallengeAll() // a refresh on the live connection
	ctx := testContext(t)
	require.NoError(t, e.srv.WaitReceived(ctx, pulsarpb.BaseCommand_AUTH_RESPONSE, 3))
	assert.Equal(t, "s3cret", string(e.srv.LastAuthResponse().GetResponse().GetAuthData()))
	assert.Equal(t, 3, auth.challenges())
	assert.Equal(t, pulsarconn.StateConnected, b.State())
}

func TestAuthenticatorFailureBacksOff(t *testing.T) {
	synctest.Test(t, testAuthenticatorFailureBacksOff)
}

func testAuthenticatorFailureBacksOff(t *testing.T) {
	e := memoryEnv(t)
	clk := memory.NewClock(time.Unix(1_700_000_000, 0))
	auth := &countingToken{err: errors.New("token file unreadable")}
	b := e.start(t, pulsarconn.WithClock(clk), pulsarconn.WithAuthenticator(auth), pulsarconn.WithBackoff(time.Second, 10*time.Second))
	ctx := testContext(t)
	testenv.WaitState(t, b, pulsarconn.StateDisconnected)
	wctx, cancel := context.WithCancel(ctx)
	cancel()
	assert.ErrorIs(t, b.WaitConnected(wctx), pulsarconn.ErrAuthentication)
	assert.Equal(t, 1, auth.initials())
	assert.Equal(t, 0, e.srv.Received(pulsarpb.BaseCommand_CONNECT), "no CONNECT without credentials")
	// No tight loop: nothing happens until the backoff delay passes.
	clk.Advance(400 * time.Millisecond)
	assert.Equal(t, 1, auth.initials())
}

type countingToken struct {
	mu              sync.Mutex
	token           string
	err             error
	nInit, nChallng int
}

func (*countingToken) Name() string { return "token" }

func (c *countingToken) Initial(context.Context) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nInit++
	return []byte(c.token), c.err
}

func (c *countingToken) Challenge(context.Context, []byte) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nChallng++
	return []byte(c.token), c.err
}

func (c *countingToken) initials() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nInit
}

func (c *countingToken) challenges() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nChallng
}

func TestSSLURLUsesVerifiedTLSByDefault(t *testing.T) {
	env := harness.TLS(t)
	srv := pulsartest.NewServer(pulsartest.WithAdvertisedURL(env.URL))
	go srv.Serve(env.Listener)
	t.Cleanup(func() { srv.Close() })

	// No transport given: pulsar+ssl:// gets adapters/tls with the
	// system's trust roots, which do not include the test CA.
	b, err := pulsarconn.Start(env.URL, pulsarconn.WithBackoff(time.Second, time.Second))
	require.NoError(t, err)
	t.Cleanup(func() { b.Stop(context.Background()) })
	testenv.WaitState(t, b, pulsarconn.StateDisconnected)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, b.WaitConnected(ctx), tlstransport.ErrUnknownAuthority)

	// With the test CA trusted, the same URL connects.
	good := env.Transport
	b2, err := pulsarconn.Start(env.URL, pulsarconn.WithTransport(good))
	require.NoError(t, err)
	t.Cleanup(func() { b2.Stop(context.Background()) })
	require.NoError(t, b2.WaitConnected(testContext(t)))
}

// staticToken is an Authenticator presenting a fixed token.
type staticToken string

func (staticToken) Name() string                                        { return "token" }
func (s staticToken) Initial(context.Context) ([]byte, error)           { return []byte(s), nil }
func (s staticToken) Challenge(context.Context, []byte) ([]byte, error) { return []byte(s), nil }

// Stop returns when its context ends even while a Handler blocks: the
// deliveries behind that Handler, and the goroutine running it, are
// abandoned to finish when it returns.
// TestStopReturnsAtItsDeadlineWhileAHandlerBlocks: a Handler that blocks
// on the PushEnded of Stop holds Stop only until its context's
// deadline, to the instant (a synctest bubble: its clock moves only when
// every goroutine waits).
func TestStopReturnsAtItsDeadlineWhileAHandlerBlocks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := memoryEnv(t)
		b := e.connected(t)
		release := make(chan struct{})
		_, err := b.RegisterProducer(context.Background(), b.NewProducerID(), pulsarconn.HandlerFunc(func(p pulsarconn.Push) {
			if p.Kind == pulsarconn.PushEnded {
				<-release
			}
		}))
		require.NoError(t, err)

		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		err = b.Stop(ctx)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, 300*time.Millisecond, time.Since(start))
		assert.Equal(t, pulsarconn.StateClosed, b.State())
		close(release)
	})
}

func TestStopReturnsWhenItsContextEndsWhileAHandlerBlocks(t *testing.T) {
	synctest.Test(t, testStopReturnsWhenItsContextEndsWhileAHandlerBlocks)
}

func testStopReturnsWhenItsContextEndsWhileAHandlerBlocks(t *testing.T) {
	e := memoryEnv(t)
	b := e.connected(t)
	blocked := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	_, err := b.RegisterProducer(context.Background(), b.NewProducerID(), pulsarconn.HandlerFunc(func(p pulsarconn.Push) {
		if p.Kind == pulsarconn.PushEnded {
			once.Do(func() { close(blocked) })
			<-release
		}
	}))
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-blocked
		cancel()
	}()
	err = b.Stop(ctx)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, pulsarconn.StateClosed, b.State())
	close(release) // the abandoned delivery finishes; Stop's goroutines end
	assert.ErrorIs(t, b.Stop(context.Background()), context.Canceled, "later calls return the first's result")
}
