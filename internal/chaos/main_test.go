package chaos_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: the
// proxy, the Brokers and the fake brokers are all stopped by the tests'
// cleanups.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
