package memory_test

import (
	"testing"

	"github.com/pulsarconn/pulsarconn/contracttest"
	"github.com/pulsarconn/pulsarconn/contracttest/harness"
)

// TestContract certifies this adapter with the shared Broker behaviour
// suite (see docs/adapters.md).
func TestContract(t *testing.T) { contracttest.RunInBubble(t, harness.Memory) }
