package pulsarconn_test

import (
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

// TestBadTokenBacksOffNotAStorm: a broker that refuses the token gets one
// CONNECT per backoff delay, the delays doubling, and never a tight loop.
func TestBadTokenBacksOffNotAStorm(t *testing.T) { synctest.Test(t, testBadTokenBacksOffNotAStorm) }

func testBadTokenBacksOffNotAStorm(t *testing.T) {
	e := memoryEnv(t, pulsartest.WithToken("right"))
	clk := memory.NewClock(time.Unix(1_700_000_000, 0))
	obs := &events{}
	b := e.start(t,
		pulsarconn.WithClock(clk),
		pulsarconn.WithAuthenticator(staticToken("wrong")),
		pulsarconn.WithBackoff(100*time.Millisecond, 2*time.Second),
		pulsarconn.WithObserver(obs))
	ctx := testContext(t)

	const attempts = 8
	var dialedAt []time.Time
	for i := 1; i <= attempts; i++ {
		require.NoError(t, e.srv.WaitReceived(ctx, pulsarpb.BaseCommand_CONNECT, i))
		dialedAt = append(dialedAt, clk.Now())
		testenv.WaitState(t, b, pulsarconn.StateDisconnected)
		assert.Equal(t, i, e.srv.Received(pulsarpb.BaseCommand_CONNECT), "one CONNECT per attempt")
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
		assert.ErrorIs(t, f.Err, pulsarconn.ErrAuthenticationError)
	}
}
