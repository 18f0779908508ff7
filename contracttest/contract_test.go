package contracttest_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/pulsarconn/pulsarconn/contracttest"
	"github.com/pulsarconn/pulsarconn/contracttest/harness"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestAdapters runs the suite for every adapter of this repository, side
// by side.
func TestAdapters(t *testing.T) {
	t.Run("tcp", func(t *testing.T) { contracttest.Run(t, harness.TCP) })
	t.Run("tls", func(t *testing.T) { contracttest.Run(t, harness.TLS) })
	t.Run("memory", func(t *testing.T) { contracttest.RunInBubble(t, harness.Memory) })
	t.Run("quic", func(t *testing.T) { contracttest.Run(t, harness.QUIC) })
}
