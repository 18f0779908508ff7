package tcp_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind: a dial
// or a connection that outlived its test would show up here.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
