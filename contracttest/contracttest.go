// Package contracttest certifies a pulsarconn transport: it runs the whole
// Broker behaviour suite, against the fake broker pulsartest, through the
// transport under test — in the manner of golang.org/x/net/nettest's
// TestConn, which certifies a net.Conn.
//
// Every adapter of this repository (TCP, TLS, in-memory, QUIC) passes it,
// and so can yours:
//
//	func TestContract(t *testing.T) {
//		contracttest.Run(t, func(t testing.TB) contracttest.Env {
//			l, _ := mytransport.Listen("127.0.0.1:0")
//			return contracttest.Env{
//				Listener:  l,
//				URL:       "pulsar://" + l.Addr().String(),
//				Transport: mytransport.New(),
//			}
//		})
//	}
//
// See docs/adapters.md for a complete example.
package contracttest

import (
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pulsarconn/pulsarconn/ports"
)

// Env is one fresh environment for one behaviour: a listener of the
// adapter's kind, the URL a client dials to reach it, and the client
// transport that reaches it.
type Env struct {
	// Listener is where the suite serves the fake broker. The suite
	// closes it.
	Listener net.Listener
	// URL is the broker service URL for Listener: pulsar://host:port, or
	// pulsar+ssl://host:port for a transport that speaks TLS.
	URL string
	// Transport dials Listener's address.
	Transport ports.Transport
	// Faults, when set, injects network faults natively (as the
	// in-memory network does). When nil the suite wraps Transport in a
	// fault layer of its own, so every fault behaviour runs for every
	// adapter.
	Faults Faults
}

// Faults are the network faults the suite injects between the Broker and
// the fake broker.
type Faults interface {
	// RefuseDials makes new dials fail as if nothing listened.
	RefuseDials(on bool)
	// SetLatency delays the delivery of every byte by d.
	SetLatency(d time.Duration)
	// SetHalfOpen makes every connection accept writes and deliver
	// nothing, in both directions, as when a peer vanished without a
	// FIN or RST.
	SetHalfOpen(on bool)
}

// Harness makes a fresh Env for each behaviour. It should register any
// clean-up it needs with t.Cleanup.
type Harness func(t testing.TB) Env

// Run runs every behaviour of the suite, each as a subtest of t, against
// environments made by h. The list of behaviours is the same for every
// adapter.
//
// The behaviours whose outcome depends on a timeout (keepalive, request
// and connect timeouts) run the Broker on a fake clock and move it past the
// production default, so that a loaded machine cannot change their outcome
// over a real network either.
func Run(t *testing.T, h Harness) {
	t.Helper()
	run(t, h, func(t *testing.T, test func(t *testing.T)) { test(t) })
}

// RunInBubble runs the suite as Run does, each behaviour inside a
// testing/synctest bubble with h called inside it. It is for transports
// that do no real I/O, such as the in-memory network: every wait of a
// behaviour is then on the bubble's fake clock, so the behaviours take no
// real time and no outcome depends on the machine's load.
func RunInBubble(t *testing.T, h Harness) {
	t.Helper()
	run(t, h, synctest.Test)
}

func run(t *testing.T, h Harness, wrap func(t *testing.T, test func(t *testing.T))) {
	t.Helper()
	for _, b := range behaviours {
		t.Run(b.name, func(t *testing.T) {
			wrap(t, func(t *testing.T) { b.test(t, newEnv(t, h, b)) })
		})
	}
}

// Behaviours returns the names of the suite's behaviours, in the order Run
// runs them.
func Behaviours() []string {
	names := make([]string, len(behaviours))
	for i, b := range behaviours {
		names[i] = b.name
	}
	return names
}
