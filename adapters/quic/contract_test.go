package quic_test

import (
	"testing"

	"github.com/pulsarconn/pulsarconn/contracttest"
	"github.com/pulsarconn/pulsarconn/contracttest/harness"
)

// TestContract certifies the QUIC transport with the suite every adapter
// runs: the fake broker served over a QUIC listener, the Broker dialling
// it with a Transport that trusts the test certificate.
func TestContract(t *testing.T) { contracttest.Run(t, harness.QUIC) }
