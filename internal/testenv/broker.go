package testenv

import (
	"testing"

	"github.com/pulsarconn/pulsarconn/adapters/memory"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// Env is a fake broker on an in-memory network.
type Env struct {
	// Network is the in-memory network: the transport that reaches the
	// fake broker, and its fault controls.
	Network *memory.Network
	// Server is the fake broker.
	Server *pulsartest.Server
	// URL is the fake broker's service URL.
	URL string
}

// Host is the address of Memory's fake broker on its network.
const Host = "broker-1:6650"

// Memory starts a fake broker with opts on a fresh in-memory network, at
// Host. It is closed when the test ends.
func Memory(t testing.TB, opts ...pulsartest.Option) *Env {
	t.Helper()
	network := memory.NewNetwork()
	return &Env{Network: network, Server: Serve(t, network, Host, opts...), URL: "pulsar://" + Host}
}

// Serve starts a fake broker with opts on network, listening at address
// (host:port) and advertising pulsar://address. It is closed when the test
// ends.
func Serve(t testing.TB, network *memory.Network, address string, opts ...pulsartest.Option) *pulsartest.Server {
	t.Helper()
	l, err := network.Listen(address)
	if err != nil {
		t.Fatalf("testenv: listen on %s: %v", address, err)
	}
	srv := pulsartest.NewServer(append([]pulsartest.Option{pulsartest.WithAdvertisedURL("pulsar://" + address)}, opts...)...)
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return srv
}
