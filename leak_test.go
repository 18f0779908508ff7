package pulsarconn_test

import (
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn"
)

// openFDs counts the process's open file descriptors, or returns -1 where
// /proc/self/fd does not exist.
func openFDs() int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(entries)
}

// TestStartStopCyclesLeakNothing starts and stops Brokers many times
// against one fake broker, half of them once connected and half at once, and checks that goroutines and file
// descriptors come back to where they were: anything a cycle left behind
// would show up multiplied by the number of cycles. (TestMain's goleak
// check then catches any goroutine left at the end.)
func TestStartStopCyclesLeakNothing(t *testing.T) {
	const (
		workers = 8
		// slack allows for goroutines and descriptors of the last
		// cycles still on their way out on the fake broker's side,
		// and for the runtime's own.
		slack = 10
	)
	for _, tc := range []struct {
		name   string
		env    func(*testing.T) env
		cycles int
	}{
		{"memory", func(t *testing.T) env { return memoryEnv(t) }, 10_000},
		{"tcp", func(t *testing.T) env { return tcpEnv(t) }, 1_000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.env(t)
			ctx := testContext(t)
			// Every other cycle stops at once, while the dial or the
			// handshake is in progress; the others once connected.
			cycle := func(i int) error {
				b, err := pulsarconn.Start(e.url, pulsarconn.WithTransport(e.transport))
				if err != nil {
					return err
				}
				if i%2 == 0 {
					if err := b.WaitConnected(ctx); err != nil {
						b.Stop(ctx)
						return err
					}
				}
				return b.Stop(ctx)
			}
			// One cycle first, so that what the first use starts once
			// (the fake broker's listener side, the runtime's timer
			// and network poller) is in the baseline.
			require.NoError(t, cycle(0))
			require.NoError(t, e.srv.WaitConns(ctx, 0))
			g0, fd0 := runtime.NumGoroutine(), openFDs()

			start := time.Now()
			var wg sync.WaitGroup
			errs := make(chan error, workers)
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := w; i < tc.cycles; i += workers {
						if err := cycle(i); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			elapsed := time.Since(start)
			require.NoError(t, e.srv.WaitConns(ctx, 0))
			g1, fd1 := runtime.NumGoroutine(), openFDs()

			t.Logf("%d Start/Stop cycles over %s in %v (%d workers): goroutines %d -> %d, file descriptors %d -> %d",
				tc.cycles, tc.name, elapsed.Round(time.Millisecond), workers, g0, g1, fd0, fd1)
			assert.LessOrEqual(t, g1, g0+slack, "goroutines")
			if fd0 >= 0 {
				assert.LessOrEqual(t, fd1, fd0+slack, "file descriptors")
			}
		})
	}
}
