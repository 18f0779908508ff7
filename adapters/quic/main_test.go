package quic_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pulsarconn/pulsarconn/adapters/quic"
)

// TestMain fails the package if any test leaves a goroutine behind: a
// connection that Close failed to end, or a listener that Close did not
// stop, would show up here.
//
// A closed Conn lingers, by design, until the peer closes its end or
// quic.DefaultLinger passes, and quic-go ends a connection in goroutines
// of its own. On a loaded machine that outlasted the half second that
// goleak.VerifyTestMain waits (a CI run failed on a lingering Conn whose
// peer had closed), so the check asks goleak again until DefaultLinger
// and one second more have passed: a goroutine still running then was
// never going to end.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(quic.DefaultLinger + time.Second)
		err := goleak.Find() // waits up to about half a second itself
		for err != nil && time.Now().Before(deadline) {
			err = goleak.Find()
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "goleak: Errors on successful test run: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
