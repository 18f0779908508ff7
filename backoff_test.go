package pulsarconn_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/adapters/memory"
	"github.com/pulsarconn/pulsarconn/internal/testenv"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// failingAuth is an Authenticator that cannot produce credentials (a token
// file that is missing, say); each call is reported on calls.
type failingAuth struct{ calls chan struct{} }

var errNoCredentials = errors.New("no token file")

func (failingAuth) Name() string { return "token" }
func (a failingAuth) Initial(context.Context) ([]byte, error) {
	a.calls <- struct{}{}
	return nil, errNoCredentials
}
func (a failingAuth) Challenge(ctx context.Context, _ []byte) ([]byte, error) { return a.Initial(ctx) }

// TestFailingAuthenticatorBacksOffNotAStorm: an Authenticator that keeps
// failing (ErrAuthentication, unlike the broker's refusal, is retried)
// gets one attempt per backoff delay, the delays doubling, and never a
// tight loop.
func TestFailingAuthenticatorBacksOffNotAStorm(t *testing.T) {
	synctest.Test(t, testFailingAuthenticatorBacksOffNotAStorm)
}

func testFailingAuthenticatorBacksOffNotAStorm(t *testing.T) {
	e := memoryEnv(t, pulsartest.WithToken("right"))
	clk := memory.NewClock(time.Unix(1_700_000_000, 0))
	obs := &events{}
	auth := failingAuth{calls: make(chan struct{}, 16)}
	b := e.start(t,
		pulsarconn.WithClock(clk),
		pulsarconn.WithAuthenticator(auth),
		pulsarconn.WithBackoff(100*time.Millisecond, 2*time.Second),
		pulsarconn.WithObserver(obs))
	const attempts = 8
	var dialedAt []time.Time
	for i := 1; i <= attempts; i++ {
		<-auth.calls
		dialedAt = append(dialedAt, clk.Now())
		testenv.WaitState(t, b, pulsarconn.StateDisconnected)
		assert.Empty(t, auth.calls, "one attempt at a time")
		next, ok := clk.NextDeadline()
		require.True(t, ok, "a reconnect is scheduled")
		if i < attempts {
			// Not after the last: a ninth attempt would race the
			// count of failures below.
			clk.Set(next)
		}
	}
	for i := 1; i < len(dialedAt); i++ {
		base := min(100*time.Millisecond<<(i-1), 2*time.Second)
		gap := dialedAt[i].Sub(dialedAt[i-1])
		assert.GreaterOrEqual(t, gap, base/2, "attempt %d came %v after the previous one", i+1, gap)
		assert.LessOrEqual(t, gap, base, "attempt %d", i+1)
	}
	obs.waitUntil(t, func(evs []pulsarconn.Event) bool {
		return len(ofType[pulsarconn.HandshakeFailed](evs)) >= attempts
	})
	failed := ofType[pulsarconn.HandshakeFailed](obs.list())
	require.Len(t, failed, attempts)
	for _, f := range failed {
		assert.ErrorIs(t, f.Err, pulsarconn.ErrAuthentication)
		assert.ErrorIs(t, f.Err, errNoCredentials)
	}
	assert.Zero(t, e.srv.Received(pulsarpb.BaseCommand_CONNECT), "no CONNECT without credentials")
}
