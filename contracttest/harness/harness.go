// Package harness makes contracttest environments for the adapters of
// this repository, so that each adapter's tests and the side-by-side run
// in contracttest share one definition.
package harness

import (
	ctls "crypto/tls"
	"net"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn/adapters/memory"
	"github.com/pulsarconn/pulsarconn/adapters/quic"
	"github.com/pulsarconn/pulsarconn/adapters/tcp"
	tlstransport "github.com/pulsarconn/pulsarconn/adapters/tls"
	"github.com/pulsarconn/pulsarconn/contracttest"
	"github.com/pulsarconn/pulsarconn/internal/testenv"
)

// TCP serves on 127.0.0.1 and dials with adapters/tcp.
func TCP(t testing.TB) contracttest.Env {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return contracttest.Env{Listener: l, URL: "pulsar://" + l.Addr().String(), Transport: tcp.New()}
}

// Memory serves on a fresh in-memory network, whose own fault controls
// the suite uses.
func Memory(t testing.TB) contracttest.Env {
	network := memory.NewNetwork()
	l, err := network.Listen("broker:6650")
	require.NoError(t, err)
	return contracttest.Env{Listener: l, URL: "pulsar://broker:6650", Transport: network, Faults: network}
}

// TLS serves TLS on 127.0.0.1 with a certificate made for the test by a
// test CA, and dials with adapters/tls trusting that CA, hostname
// verification on.
func TLS(t testing.TB) contracttest.Env {
	pki := testenv.NewPKI(t)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	l := ctls.NewListener(inner, pki.ServerConfig())
	return contracttest.Env{
		Listener:  l,
		URL:       "pulsar+ssl://" + inner.Addr().String(),
		Transport: tlstransport.New(tlstransport.WithRootCAs(pki.Roots())),
	}
}

// QUIC serves QUIC (experimental adapter) on 127.0.0.1 with the test CA's
// certificate, and dials with adapters/quic trusting that CA.
func QUIC(t testing.TB) contracttest.Env {
	pki := testenv.NewPKI(t)
	l, err := quic.Listen("127.0.0.1:0", pki.ServerConfig())
	require.NoError(t, err)
	return contracttest.Env{
		Listener:  l,
		URL:       "pulsar://" + l.Addr().String(),
		Transport: quic.New(pki.ClientConfig()),
	}
}
