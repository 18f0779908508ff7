package tls_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind: a
// handshake that a cancelled context failed to abort would show up here.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
