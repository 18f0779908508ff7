// Package testenv is the environment the module's tests share: a fake
// broker (pulsartest) on an in-memory network, certificates made for a
// test, and a context that bounds a test's waits.
//
// Everything here works inside a testing/synctest bubble: the memory
// network, the fake broker and the Broker do no real I/O, so a test that
// builds its world inside synctest.Test runs on the bubble's fake clock,
// with the production timeouts, in no real time and whatever the load of
// the machine.
//
// It is test support: only tests import it (internal/depcheck lets it
// import adapters/memory, as it lets contracttest/harness).
package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/pulsarconn/pulsarconn"
)

// Timeout bounds a test's waits. It guards against a hang and is never
// what a test measures: inside a synctest bubble it is fake time, outside
// one it is long enough for any machine load.
const Timeout = 2 * time.Minute

// Context returns a context that ends after Timeout or when the test
// ends. Tests wait on it, never on time.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	t.Cleanup(cancel)
	return ctx
}

// WaitState waits, within Context(t), until b is in state want, and fails
// the test if it is not by then.
func WaitState(t testing.TB, b *pulsarconn.Broker, want pulsarconn.State) {
	t.Helper()
	ctx := Context(t)
	for {
		st, changed := b.WatchState()
		if st == want {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("state is %v, waiting for %v", st, want)
		}
	}
}
