package pulsartest_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if any goroutine outlives the tests: every server
// is closed by its test, and Close waits for all it started.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
