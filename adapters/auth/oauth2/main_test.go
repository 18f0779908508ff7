package oauth2_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind: a token
// request nobody waits for, an idle HTTP connection, a Broker or a fake
// broker not stopped.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
