package quic_test

import (
	"testing"

	contracttest "github.com/pulsarconn/pulsarconn/contract_test"
	"github.com/pulsarconn/pulsarconn/contract_test/harness"
)

// TestContract certifies the QUIC transport with the suite every adapter
// runs: the fake broker served over a QUIC listener, the Broker dialling
// it with a Transport that trusts the test certificate.
func TestContract(t *testing.T) { contracttest.Run(t, harness.QUIC) }
