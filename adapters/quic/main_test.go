package quic_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind: a
// connection that Close failed to end, or a listener that Close did not
// stop, would show up here.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
