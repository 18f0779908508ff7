package pulsarconn_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/internal/bench"
)

// TestReleasedPushesAllocateNothing: receipts and messages whose Handler
// releases them (Push.Release), and the answers RequestAsyncLent lends,
// are read and routed without an allocation each, where they cost one (a
// receipt, an answer) and two (a message, its frame's bytes and the
// decoded command) otherwise. The bench's handlers release every push
// and check each one (a receipt's sequence id, a message's entry id and
// checksum, an answer's request id), so a push reused too soon fails the
// run.
func TestReleasedPushesAllocateNothing(t *testing.T) {
	paths := []struct {
		name string
		run  func(ctx context.Context, b *pulsarconn.Broker, n int) error
	}{
		{"receipts", func(ctx context.Context, b *pulsarconn.Broker, n int) error {
			_, err := bench.LibReceipts(ctx, b, 100, bench.PayloadSize, bench.Count(n))
			return err
		}},
		{"delivery", func(ctx context.Context, b *pulsarconn.Broker, n int) error {
			_, err := bench.LibDelivery(ctx, b, bench.Count(n))
			return err
		}},
		{"lent answers", func(ctx context.Context, b *pulsarconn.Broker, n int) error {
			_, err := bench.LibRequestsAsync(ctx, b, 64, bench.Count(n))
			return err
		}},
	}
	for _, p := range paths {
		t.Run(p.name, func(t *testing.T) {
			_, b := benchBroker(t, bench.ServerConfig{})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()

			require.NoError(t, p.run(ctx, b, 2000)) // fills the pools and buffers
			const n = 100000
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			require.NoError(t, p.run(ctx, b, n))
			runtime.ReadMemStats(&after)
			// Process-wide, so the server's too (none on these paths),
			// the run's set-up (a registration, its Create or
			// SUBSCRIBE, and Close), frames split between two reads
			// (about one in 64, copied as they come) and, for delivery,
			// the warning logged for each message the server still
			// sends after the first run's consumer closed (up to its
			// 1,000 permits): a few hundredths per push.
			perPush := float64(after.Mallocs-before.Mallocs) / n
			limit := 0.1
			if raceEnabled {
				limit = 1 // its sync.Pool drops a quarter of what is put back
			}
			t.Logf("%.3f allocations per push", perPush)
			assert.LessOrEqual(t, perPush, limit)
		})
	}
}
