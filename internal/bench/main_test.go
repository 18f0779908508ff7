package bench

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if a server, a Broker or a client
// loop outlives them.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
