package core_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind: the core
// starts none, so any found is a test's own.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
