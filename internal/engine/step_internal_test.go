package engine

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn/adapters/memory"
	"github.com/pulsarconn/pulsarconn/core"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// TestRequestsJoiningPendingOnesKeepTheTimer: a request sent while others
// are pending takes the short way (flushRequestLocked), which arms nothing; the
// timer stays at the oldest request's deadline, moves to the next one's
// when that times out, and every request times out at its own deadline.
// The first request, alone, takes the full flush, which arms the timer.
func TestRequestsJoiningPendingOnesKeepTheTimer(t *testing.T) {
	t0 := time.Unix(1000, 0)
	clock := memory.NewClock(t0)
	b, srv := newTestEngine(t, clock, core.Config{OperationTimeout: 30 * time.Second, KeepAliveInterval: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stop := srv.InterceptEvery(pulsarpb.BaseCommand_PARTITIONED_METADATA, func(*pulsartest.Call) pulsartest.Action { return pulsartest.Drop })
	defer stop()
	errs := make(chan error, 3)
	send := func() {
		go func() {
			_, err := b.Partitions(context.Background(), "persistent://public/default/t")
			errs <- err
		}()
	}
	next := func() error {
		t.Helper()
		select {
		case err := <-errs:
			return err
		case <-ctx.Done():
			t.Fatal("no request timed out")
			return nil
		}
	}
	timerAt := func() time.Time {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.timerAt
	}

	send()
	require.NoError(t, srv.WaitReceived(ctx, pulsarpb.BaseCommand_PARTITIONED_METADATA, 1))
	assert.Equal(t, t0.Add(30*time.Second), timerAt(), "armed for the first request")
	clock.Advance(10 * time.Second)
	send()
	send()
	require.NoError(t, srv.WaitReceived(ctx, pulsarpb.BaseCommand_PARTITIONED_METADATA, 3))
	assert.Equal(t, t0.Add(30*time.Second), timerAt(), "the oldest request's deadline still")

	clock.Advance(20 * time.Second)
	assert.ErrorIs(t, next(), core.ErrRequestTimeout)
	assert.Equal(t, t0.Add(40*time.Second), timerAt(), "the next request's deadline")
	clock.Advance(10 * time.Second)
	assert.ErrorIs(t, next(), core.ErrRequestTimeout)
	assert.ErrorIs(t, next(), core.ErrRequestTimeout)
}
