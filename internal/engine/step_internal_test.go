package engine

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

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

// TestAsyncWaitersAreReused: a RequestAsync's waiter is free again once
// its done function has returned and the drainer has next held the lock,
// and the next RequestAsync takes that one rather than a new one.
func TestAsyncWaitersAreReused(t *testing.T) {
	b, _ := newTestEngine(t, memory.NewClock(time.Unix(0, 0)), core.Config{OperationTimeout: time.Minute, KeepAliveInterval: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := &pulsarpb.BaseCommand{
		Type:              pulsarpb.BaseCommand_PARTITIONED_METADATA.Enum(),
		PartitionMetadata: &pulsarpb.CommandPartitionedTopicMetadata{Topic: proto.String("persistent://public/default/t")},
	}
	// request sends cmd with RequestAsync and returns the free waiters
	// seen while it is in flight and once it is answered and delivered.
	request := func() (inFlight, after []*asyncWaiter) {
		t.Helper()
		answered := make(chan error, 1)
		require.NoError(t, b.RequestAsync(ctx, cmd, func(resp *pulsarpb.BaseCommand, err error) {
			if err == nil && resp.GetPartitionMetadataResponse() == nil {
				err = fmt.Errorf("answered with %v", resp.GetType())
			}
			answered <- err
		}, false))
		b.mu.Lock()
		inFlight = slices.Clone(b.asyncFree)
		b.mu.Unlock()
		select {
		case err := <-answered:
			require.NoError(t, err)
		case <-ctx.Done():
			t.Fatal("no answer")
		}
		b.mu.Lock()
		b.queue.WaitIdleLocked()
		after = slices.Clone(b.asyncFree)
		b.mu.Unlock()
		return inFlight, after
	}

	inFlight, after := request()
	assert.Empty(t, inFlight, "the first request makes its waiter")
	require.Len(t, after, 1, "and it is free once delivered")
	w := after[0]
	assert.Equal(t, asyncWaiter{}, *w, "cleared, holding nothing of the request")

	inFlight, after = request()
	assert.Empty(t, inFlight, "the second takes it")
	assert.Equal(t, []*asyncWaiter{w}, after, "and gives the same one back")
}
