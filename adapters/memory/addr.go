package memory

import "net"

// Addr is the address of an endpoint on a [Network]: the string given to
// [Network.Listen] for a listener, or "client:N" for a dialing endpoint.
type Addr string

var _ net.Addr = Addr("")

// Network returns "memory".
func (Addr) Network() string { return "memory" }

// String returns the address itself.
func (a Addr) String() string { return string(a) }
