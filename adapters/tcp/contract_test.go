package tcp_test

import (
	"testing"

	contracttest "github.com/pulsarconn/pulsarconn/contract_test"
	"github.com/pulsarconn/pulsarconn/contract_test/harness"
)

// TestContract certifies this adapter with the shared Broker behaviour
// suite (see docs/adapters.md).
func TestContract(t *testing.T) { contracttest.Run(t, harness.TCP) }
