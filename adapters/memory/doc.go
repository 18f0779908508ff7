// Package memory provides in-memory adapters for the pulsarconn ports, for
// tests: a network of byte-stream connections with fault controls
// ([Network]) and a fake clock that moves only when told to ([Clock]).
//
// # Network
//
// A [Network] is a private namespace of addresses. [Network.Listen] claims an
// address and returns a [net.Listener]; [Network.Dial] (which makes *Network
// a ports.Transport) and [Network.DialConn] connect to it. Connections are
// full [net.Conn]s: buffered in each direction up to [BufferSize], with
// deadlines, half-close on Close (the peer reads what was sent, then io.EOF)
// and certified by golang.org/x/net/nettest.TestConn. Addresses are matched
// as exact strings: "localhost:6650" and "127.0.0.1:6650" are different.
//
// The fault controls model what a broker or the network does to a client:
// [Network.DropAll] resets every connection, [Network.RefuseDials] makes
// dials fail with [ErrRefused], [Network.SetLatency] delays delivery, and
// [Network.SetHalfOpen] makes every connection half-open: writes succeed
// and nothing arrives, no EOF and no error, as when a peer or the path
// vanished without a FIN or an RST, which only a keepalive or a deadline
// detects.
// Errors match the corresponding syscall errno with errors.Is, so code that
// recognises syscall.ECONNRESET from TCP recognises it here too.
//
// # Clock
//
// A [Clock] implements ports.Clock with time that moves only through
// [Clock.Advance] and [Clock.Set], which run due timer callbacks in the
// caller's goroutine, in deadline order. A test therefore decides exactly
// when every timeout, keepalive and backoff fires.
package memory
