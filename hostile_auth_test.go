package pulsarconn_test

import (
	"context"
	"fmt"
	"runtime"
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
	"github.com/pulsarconn/pulsarconn/adapters/tcp"
	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// slowAuth is an Authenticator whose Challenge blocks until released (or
// its context ends), counting the calls in flight and their peak.
type slowAuth struct {
	release chan struct{}

	inFlight, peak, calls atomic.Int64
	mu                    sync.Mutex
	last                  string // the challenge of the latest call
}

func (a *slowAuth) Name() string { return "token" }

func (a *slowAuth) Initial(context.Context) ([]byte, error) { return []byte("initial"), nil }

func (a *slowAuth) Challenge(ctx context.Context, challenge []byte) ([]byte, error) {
	a.calls.Add(1)
	n := a.inFlight.Add(1)
	defer a.inFlight.Add(-1)
	for {
		old := a.peak.Load()
		if n <= old || a.peak.CompareAndSwap(old, n) {
			break
		}
	}
	a.mu.Lock()
	a.last = string(challenge)
	a.mu.Unlock()
	select {
	case <-a.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return append([]byte("answer to "), challenge...), nil
}

// TestHostileAuthChallengeFlood: right after CONNECTED the broker sends
// 50,000 AUTH_CHALLENGEs, each with its own data, to a Broker whose
// Authenticator blocks until released. One Challenge call may be in
// flight at a time: the flood must start one call, not one per challenge,
// and hold neither a goroutine per challenge nor their memory. Once the
// call returns, the latest challenge is answered, and nothing else.
func TestHostileAuthChallengeFlood(t *testing.T) {
	const n = 50_000
	var flood []byte
	for i := range n {
		var err error
		flood, err = frame.AppendCommand(flood, &pulsarpb.BaseCommand{
			Type: pulsarpb.BaseCommand_AUTH_CHALLENGE.Enum(),
			AuthChallenge: &pulsarpb.CommandAuthChallenge{
				Challenge: &pulsarpb.AuthData{AuthMethodName: proto.String("token"), AuthData: fmt.Appendf(nil, "challenge %d", i)},
			}})
		require.NoError(t, err)
	}
	latest := fmt.Sprintf("challenge %d", n-1)

	var responses []string // the AUTH_RESPONSEs received, in order
	var respMu sync.Mutex
	answered := make(chan struct{}) // the latest challenge answered
	markAnswered := sync.OnceFunc(func() { close(answered) })
	srv := newHostileBroker(t, func(_ context.Context, _ int, c *brokerSide) {
		if c.handshake(0) != nil {
			return
		}
		// Read while flooding, so that what the client writes never
		// waits for the broker.
		var reading sync.WaitGroup
		defer reading.Wait()
		flooded := make(chan struct{})
		reading.Go(func() {
			for {
				f, err := c.fr.Next()
				if err != nil {
					return
				}
				switch f.Command.GetType() {
				case pulsarpb.BaseCommand_AUTH_RESPONSE:
					data := string(f.Command.GetAuthResponse().GetResponse().GetAuthData())
					respMu.Lock()
					responses = append(responses, data)
					respMu.Unlock()
					if data == "answer to "+latest {
						markAnswered()
					}
				case pulsarpb.BaseCommand_LOOKUP:
					// Answered after the flood: the Broker has
					// handled every challenge once it has the
					// answer. (The LOOKUP can come before the
					// flood is written.)
					<-flooded
					c.send(&pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_LOOKUP_RESPONSE.Enum(), LookupTopicResponse: &pulsarpb.CommandLookupTopicResponse{
						RequestId:        proto.Uint64(f.Command.GetLookupTopic().GetRequestId()),
						Response:         pulsarpb.CommandLookupTopicResponse_Connect.Enum(),
						BrokerServiceUrl: proto.String("pulsar://hostile:6650"),
					}})
				}
			}
		})
		c.Write(flood)
		close(flooded)
	})

	auth := &slowAuth{release: make(chan struct{})}
	runtime.GC()
	goroutinesBefore := runtime.NumGoroutine()
	probe := startMemProbe()
	// A fake clock that never moves: no keepalive or timeout acts while
	// the flood is handled, however long a loaded machine takes.
	b, err := pulsarconn.Start(srv.url(),
		pulsarconn.WithTransport(tcp.New()),
		pulsarconn.WithClock(memory.NewClock(time.Now())),
		pulsarconn.WithAuthenticator(auth))
	require.NoError(t, err)
	t.Cleanup(func() { b.Stop(context.Background()) })
	ctx := testContext(t)
	require.NoError(t, b.WaitConnected(ctx))
	_, err = b.LookupTopic(ctx, "persistent://public/default/t", false)
	require.NoError(t, err)

	// Every challenge has been read, and the first call still blocks.
	goroutines := runtime.NumGoroutine() - goroutinesBefore
	mem := probe.finish()
	t.Logf("%d challenges: %d Challenge calls at most in flight, %d made; goroutines +%d; memory: %v",
		n, auth.peak.Load(), auth.calls.Load(), goroutines, mem)
	assert.EqualValues(t, 1, auth.peak.Load(), "Challenge calls in flight at once")
	assert.EqualValues(t, 1, auth.calls.Load(), "Challenge calls made while the first blocks")
	// The Broker's own goroutines (reader, writer, the blocked call) and
	// the fake broker's two for this connection.
	assert.LessOrEqual(t, goroutines, 10, "goroutine growth")
	assert.LessOrEqual(t, mem.PeakGrowth, int64(16*mib), "heap growth")

	close(auth.release)
	waitFor(t, answered, "the answer to the latest challenge")
	require.NoError(t, b.Stop(ctx))
	respMu.Lock()
	defer respMu.Unlock()
	// The answer to challenge 0 may be replaced by the answer to the
	// latest before the writer takes it (one unwritten AUTH_RESPONSE at a
	// time, the latest kept), so the broker reads one or both.
	if assert.NotEmpty(t, responses, "AUTH_RESPONSEs") {
		assert.LessOrEqual(t, len(responses), 2, "AUTH_RESPONSEs")
		assert.Equal(t, "answer to "+latest, responses[len(responses)-1], "the latest challenge is answered last")
		if len(responses) == 2 {
			assert.Equal(t, "answer to challenge 0", responses[0], "the rest merged")
		}
	}
	assert.EqualValues(t, 2, auth.calls.Load())
	assert.EqualValues(t, 1, auth.peak.Load())
	auth.mu.Lock()
	assert.Equal(t, latest, auth.last, "the second call answers the latest challenge")
	auth.mu.Unlock()
}

// hungInitial is an Authenticator whose Initial never returns of itself:
// it waits for its context, counting the calls in flight and their peak.
type hungInitial struct{ inFlight, peak, calls atomic.Int64 }

func (*hungInitial) Name() string { return "token" }

func (a *hungInitial) Initial(ctx context.Context) ([]byte, error) {
	a.calls.Add(1)
	n := a.inFlight.Add(1)
	defer a.inFlight.Add(-1)
	for p := a.peak.Load(); n > p && !a.peak.CompareAndSwap(p, n); p = a.peak.Load() {
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

func (a *hungInitial) Challenge(ctx context.Context, _ []byte) ([]byte, error) { return a.Initial(ctx) }

// TestHungAuthenticatorAcrossAttempts: an Authenticator whose Initial
// hangs makes every handshake end at the connect timeout; each attempt's
// call is cancelled when its attempt ends, so the calls in flight, and
// the goroutines, do not grow with the attempts (they grew by one per
// attempt when the calls had the Broker's context).
func TestHungAuthenticatorAcrossAttempts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := memoryEnv(t)
		auth := &hungInitial{}
		b := e.start(t, pulsarconn.WithAuthenticator(auth))
		synctest.Wait()
		g0 := runtime.NumGoroutine()
		time.Sleep(10 * time.Minute) // fake time: connect timeouts and backoffs pass
		synctest.Wait()
		calls, g1 := auth.calls.Load(), runtime.NumGoroutine()
		t.Logf("%d attempts, calls in flight at most %d, goroutines %+d", calls, auth.peak.Load(), g1-g0)
		assert.GreaterOrEqual(t, calls, int64(5), "attempts made")
		assert.EqualValues(t, 1, auth.peak.Load(), "Initial calls in flight at once")
		assert.LessOrEqual(t, g1-g0, 2, "goroutine growth")
		assert.NotEqual(t, pulsarconn.StateConnected, b.State())
	})
}
