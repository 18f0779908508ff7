package tlsauth_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind: every
// Broker and fake broker an end-to-end test starts is stopped by its
// cleanup.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
