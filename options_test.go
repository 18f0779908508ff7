package pulsarconn_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/adapters/memory"
	"github.com/pulsarconn/pulsarconn/internal/testenv"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// Compile-level guarantees, which this file relies on and checks where a
// test can: Start takes BrokerOptions and NewClient ClientOptions; the
// options both take return Option, which is both; WithProxyToBroker is a
// BrokerOption only and WithMaxLookupRedirects, WithLookupLimit and
// WithConnectionMaxIdleTime are ClientOptions only, so that
//
//	pulsarconn.NewClient(url, pulsarconn.WithProxyToBroker(u))  // does not compile
//	pulsarconn.Start(url, pulsarconn.WithMaxLookupRedirects(3)) // does not compile
var (
	_ pulsarconn.Option       = pulsarconn.WithObserver(nil)
	_ pulsarconn.BrokerOption = pulsarconn.WithProxyToBroker("")
	_ pulsarconn.ClientOption = pulsarconn.WithMaxLookupRedirects(0)
	_ pulsarconn.ClientOption = pulsarconn.WithLookupLimit(0, 0)
	_ pulsarconn.ClientOption = pulsarconn.WithConnectionMaxIdleTime(0)
)

func TestOneSidedOptionsAreOnlyThat(t *testing.T) {
	_, ok := any(pulsarconn.WithProxyToBroker("pulsar://b:6650")).(pulsarconn.ClientOption)
	assert.False(t, ok, "WithProxyToBroker is not a ClientOption")
	for _, o := range []pulsarconn.ClientOption{pulsarconn.WithMaxLookupRedirects(1), pulsarconn.WithLookupLimit(1, 1), pulsarconn.WithConnectionMaxIdleTime(time.Minute)} {
		_, ok := o.(pulsarconn.BrokerOption)
		assert.False(t, ok, "%T is not a BrokerOption", o)
	}
}

type constBackoff time.Duration

func (d constBackoff) Next() time.Duration { return time.Duration(d) }
func (constBackoff) Reset()                {}

// TestInvalidOptions: Start and NewClient refuse an option whose argument
// is out of range with an error naming it and matching ErrInvalidOption.
func TestInvalidOptions(t *testing.T) {
	shared := []struct {
		name string
		opt  pulsarconn.Option
		want string
	}{
		{"nil transport", pulsarconn.WithTransport(nil), "WithTransport: nil Transport"},
		{"nil clock", pulsarconn.WithClock(nil), "WithClock: nil Clock"},
		{"nil authenticator", pulsarconn.WithAuthenticator(nil), "WithAuthenticator: nil Authenticator"},
		{"nil registry", pulsarconn.WithRegistry(nil), "WithRegistry: nil Registry"},
		{"nil logger", pulsarconn.WithLogger(nil), "WithLogger: nil Logger"},
		{"nil observer", pulsarconn.WithObserver(nil), "WithObserver: nil Observer"},
		{"zero connect timeout", pulsarconn.WithConnectTimeout(0), "WithConnectTimeout: timeout must be > 0, not 0s"},
		{"negative operation timeout", pulsarconn.WithOperationTimeout(-time.Second), "WithOperationTimeout: timeout must be > 0, not -1s"},
		{"zero keepalive", pulsarconn.WithKeepAlive(0), "WithKeepAlive: interval must be > 0, not 0s"},
		{"zero backoff min", pulsarconn.WithBackoff(0, time.Second), "WithBackoff: min must be > 0, not 0s"},
		{"backoff min over max", pulsarconn.WithBackoff(2*time.Second, time.Second), "WithBackoff: min 2s must be <= max 1s"},
		{"nil backoff policy", pulsarconn.WithBackoffPolicy(nil), "WithBackoffPolicy: nil function"},
		{"backoff policy returning nil", pulsarconn.WithBackoffPolicy(func() pulsarconn.BackoffPolicy { return nil }),
			"WithBackoffPolicy: the function returned a nil BackoffPolicy"},
		{"nil jitter", pulsarconn.WithJitter(nil), "WithJitter: nil function"},
		{"rejection limit without window", pulsarconn.WithRejectionLimit(10, 0), "WithRejectionLimit: window must be > 0 when n > 0, not 0s"},
		{"negative rejection limit", pulsarconn.WithRejectionLimit(-1, time.Second), "WithRejectionLimit: n must be >= 0, not -1"},
		{"negative write queue limit", pulsarconn.WithWriteQueueLimit(-1), "WithWriteQueueLimit: n must be >= 0, not -1"},
		{"negative pending limit", pulsarconn.WithMaxPendingRequests(-1), "WithMaxPendingRequests: n must be >= 0, not -1"},
		{"negative delivery queue limit", pulsarconn.WithDeliveryQueueLimit(-1), "WithDeliveryQueueLimit: n must be >= 0, not -1"},
	}
	check := func(t *testing.T, err error, want string) {
		t.Helper()
		require.ErrorIs(t, err, pulsarconn.ErrInvalidOption)
		assert.EqualError(t, err, "pulsarconn: invalid option: "+want)
	}
	for _, tc := range shared {
		t.Run(tc.name, func(t *testing.T) {
			b, err := pulsarconn.Start("pulsar://broker:6650", tc.opt)
			assert.Nil(t, b)
			check(t, err, tc.want)
			c, err := pulsarconn.NewClient("pulsar://broker:6650", tc.opt)
			assert.Nil(t, c)
			check(t, err, tc.want)
		})
	}
	brokerOnly := []struct {
		name string
		opt  pulsarconn.BrokerOption
		want string
	}{
		{"proxy target not a URL", pulsarconn.WithProxyToBroker("http://b:80"), `WithProxyToBroker: pulsarconn: invalid URL "http://b:80"`},
	}
	for _, tc := range brokerOnly {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pulsarconn.Start("pulsar://broker:6650", tc.opt)
			require.ErrorIs(t, err, pulsarconn.ErrInvalidOption)
			assert.ErrorContains(t, err, "pulsarconn: invalid option: "+tc.want)
		})
	}
	clientOnly := []struct {
		name string
		opt  pulsarconn.ClientOption
		want string
	}{
		{"negative redirects", pulsarconn.WithMaxLookupRedirects(-1), "WithMaxLookupRedirects: n must be >= 0, not -1"},
		{"no concurrent lookups", pulsarconn.WithLookupLimit(0, 10), "WithLookupLimit: concurrent must be > 0, not 0"},
		{"negative queued lookups", pulsarconn.WithLookupLimit(1, -1), "WithLookupLimit: queued must be >= 0, not -1"},
		{"negative max idle time", pulsarconn.WithConnectionMaxIdleTime(-time.Second), "WithConnectionMaxIdleTime: d must be >= 0, not -1s"},
	}
	for _, tc := range clientOnly {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pulsarconn.NewClient("pulsar://broker:6650", tc.opt)
			check(t, err, tc.want)
		})
	}
}

// TestValidOptionsAtTheirBounds: the edges of each range are accepted.
func TestValidOptionsAtTheirBounds(t *testing.T) {
	opts := []pulsarconn.Option{
		pulsarconn.WithBackoff(time.Second, time.Second),
		pulsarconn.WithRejectionLimit(0, 0),
		pulsarconn.WithWriteQueueLimit(0),
		pulsarconn.WithMaxPendingRequests(0),
		pulsarconn.WithDeliveryQueueLimit(0),
		pulsarconn.WithBackoffPolicy(func() pulsarconn.BackoffPolicy { return constBackoff(time.Second) }),
		pulsarconn.WithTransport(memory.NewNetwork()),
	}
	var bopts []pulsarconn.BrokerOption
	copts := []pulsarconn.ClientOption{pulsarconn.WithMaxLookupRedirects(0), pulsarconn.WithLookupLimit(1, 0), pulsarconn.WithConnectionMaxIdleTime(0)}
	for _, o := range opts {
		bopts, copts = append(bopts, o), append(copts, o)
	}
	b, err := pulsarconn.Start("pulsar://broker:6650", append(bopts, pulsarconn.WithProxyToBroker("pulsar://b:6650"))...)
	require.NoError(t, err)
	b.Stop(testContext(t))
	c, err := pulsarconn.NewClient("pulsar://broker:6650", copts...)
	require.NoError(t, err)
	require.NoError(t, c.Close(testContext(t)))
}

// recordingBackoff hands out fixed delays in turn and counts its calls.
type recordingBackoff struct {
	mu     sync.Mutex
	delays []time.Duration
	next   int
	resets int
}

func (r *recordingBackoff) Next() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := r.delays[r.next%len(r.delays)]
	r.next++
	return d
}

func (r *recordingBackoff) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resets++
}

func (r *recordingBackoff) counts() (next, resets int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.next, r.resets
}

// TestBackoffPolicyDelaysAreTheReconnectDelays: with WithBackoffPolicy,
// the Broker waits exactly the policy's delays between attempts (here with
// an Authenticator that fails until it has a token, on the fake clock),
// and resets the policy once it is connected.
func TestBackoffPolicyDelaysAreTheReconnectDelays(t *testing.T) {
	e := memoryEnv(t, pulsartest.WithToken("right"))
	clk := memory.NewClock(time.Unix(1_700_000_000, 0))
	policy := &recordingBackoff{delays: []time.Duration{3 * time.Second, 250 * time.Millisecond, 7 * time.Second, time.Minute}}
	made := 0
	token := &switchToken{calls: make(chan struct{}, 16)}
	b := e.start(t,
		pulsarconn.WithClock(clk),
		pulsarconn.WithAuthenticator(token),
		pulsarconn.WithBackoffPolicy(func() pulsarconn.BackoffPolicy { made++; return policy }))
	assert.Equal(t, 1, made, "Start made one policy")
	ctx := testContext(t)

	var dialedAt []time.Time
	for i := 1; i <= len(policy.delays); i++ {
		select {
		case <-token.calls:
		case <-ctx.Done():
			t.Fatalf("attempt %d: no call of the Authenticator", i)
		}
		dialedAt = append(dialedAt, clk.Now())
		testenv.WaitState(t, b, pulsarconn.StateDisconnected)
		next, ok := clk.NextDeadline()
		require.True(t, ok, "a reconnect is scheduled")
		if i == len(policy.delays) {
			token.set("right")
		}
		clk.Set(next)
	}
	for i := 1; i < len(dialedAt); i++ {
		assert.Equal(t, policy.delays[i-1], dialedAt[i].Sub(dialedAt[i-1]), "delay before attempt %d", i+1)
	}
	testenv.WaitState(t, b, pulsarconn.StateConnected)
	nexts, resets := policy.counts()
	assert.Equal(t, len(policy.delays), nexts, "one Next per failed attempt")
	assert.Equal(t, 1, resets, "Reset once connected")
}

// switchToken presents a token that the test can change; while it has
// none, it fails (as with a token file not written yet). Each call is
// reported on calls, if set.
type switchToken struct {
	mu    sync.Mutex
	token string
	calls chan struct{}
}

func (s *switchToken) set(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token = tok
}

func (*switchToken) Name() string { return "token" }
func (s *switchToken) Initial(context.Context) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.calls != nil {
		s.calls <- struct{}{}
	}
	if s.token == "" {
		return nil, errors.New("no token yet")
	}
	return []byte(s.token), nil
}
func (s *switchToken) Challenge(ctx context.Context, _ []byte) ([]byte, error) { return s.Initial(ctx) }
