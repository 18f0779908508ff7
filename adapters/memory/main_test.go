package memory_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind: a
// blocked Read, Write or Accept that Close or a deadline failed to release
// would show up here.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
