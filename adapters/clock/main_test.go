package clock_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind: a timer
// whose callback never ran, or one stopped too late, would show up here.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
