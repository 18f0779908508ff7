package memory

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pulsarconn/pulsarconn/ports"
)

// Network is an in-memory network: a namespace of listening addresses and
// the connections between them, with controls to inject faults. The zero
// value is an empty network ready to use; a Network must not be copied
// after first use. All methods are safe for concurrent use.
type Network struct {
	mu         sync.Mutex
	listeners  map[string]*listener
	open       map[*pair]struct{}
	refuse     bool
	nextPort   int
	nextClient int

	latency  atomic.Int64 // time.Duration
	halfOpen atomic.Bool
}

var _ ports.Transport = (*Network)(nil)

// pair is one connection: its two endpoints and how many are still open.
type pair struct {
	client, server *conn
	openEnds       int
}

// NewNetwork returns an empty network.
func NewNetwork() *Network { return &Network{} }

// Listen claims address and returns a listener for connections dialed to it.
// The address is any non-empty string, conventionally "host:port"; a port of
// "0" ("broker:0") picks an unused port, which the listener's Addr reports.
// Listen fails if the address is taken. Closing the listener frees it.
func (n *Network) Listen(address string) (net.Listener, error) {
	if address == "" {
		return nil, &net.OpError{Op: "listen", Net: "memory", Err: errors.New("memory: empty address")}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.listeners == nil {
		n.listeners = make(map[string]*listener)
	}
	if host, port, err := net.SplitHostPort(address); err == nil && port == "0" {
		for {
			n.nextPort++
			address = net.JoinHostPort(host, strconv.Itoa(n.nextPort))
			if _, taken := n.listeners[address]; !taken {
				break
			}
		}
	}
	if _, taken := n.listeners[address]; taken {
		return nil, &net.OpError{Op: "listen", Net: "memory", Addr: Addr(address),
			Err: fmt.Errorf("memory: address %q already in use", address)}
	}
	l := &listener{network: n, addr: Addr(address)}
	n.listeners[address] = l
	return l, nil
}

// Dial connects to the listener on address. It is DialConn returning the
// connection as a ports.Conn, which makes *Network a ports.Transport.
func (n *Network) Dial(ctx context.Context, address string) (ports.Conn, error) {
	c, err := n.DialConn(ctx, address)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// DialConn connects to the listener on address. Like a TCP connect, it
// completes once the connection is queued on the listener, before Accept
// takes it. It fails at once, with an error wrapping ErrRefused, when
// nobody listens on address or dials are refused; it fails with ctx's error
// if ctx has already ended.
func (n *Network) DialConn(ctx context.Context, address string) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, &net.OpError{Op: "dial", Net: "memory", Addr: Addr(address), Err: err}
	}
	n.mu.Lock()
	l := n.listeners[address]
	if l == nil || n.refuse {
		n.mu.Unlock()
		return nil, &net.OpError{Op: "dial", Net: "memory", Addr: Addr(address), Err: ErrRefused}
	}
	n.nextClient++
	p := newPair(n, Addr("client:"+strconv.Itoa(n.nextClient)), l.addr)
	if n.open == nil {
		n.open = make(map[*pair]struct{})
	}
	n.open[p] = struct{}{}
	n.mu.Unlock()

	if !l.enqueue(p.server) {
		// The listener closed after we found it: as if it never listened.
		n.drop(p)
		return nil, &net.OpError{Op: "dial", Net: "memory", Addr: Addr(address), Err: ErrRefused}
	}
	return p.client, nil
}

// newPair makes the two endpoints of a connection from client to server.
func newPair(n *Network, client, server Addr) *pair {
	up, down := new(pipe), new(pipe)
	p := &pair{openEnds: 2}
	p.client = &conn{network: n, pair: p, local: client, remote: server, in: down, out: up}
	p.server = &conn{network: n, pair: p, local: server, remote: client, in: up, out: down}
	return p
}

// DropAll drops every open connection, as a broker that crashes or a
// network that fails would: on both endpoints, pending and later Reads and
// Writes fail with an error wrapping ErrReset, and bytes in flight are
// lost. The endpoints still need Close to release them, but no longer count
// in Conns. Listeners are unaffected.
func (n *Network) DropAll() {
	n.mu.Lock()
	pairs := make([]*pair, 0, len(n.open))
	for p := range n.open {
		pairs = append(pairs, p)
	}
	clear(n.open)
	n.mu.Unlock()
	for _, p := range pairs {
		p.client.reset()
		p.server.reset()
	}
}

// RefuseDials makes every Dial fail with ErrRefused while on is true, even
// to an address with a listener, as a broker that is down would.
// Connections already open are unaffected.
func (n *Network) RefuseDials(on bool) {
	n.mu.Lock()
	n.refuse = on
	n.mu.Unlock()
}

// SetLatency delays the delivery of every byte written from now on, on every
// connection, by d: a Read sees it d after its Write. Bytes are still
// delivered in the order written; lowering the latency never lets later
// bytes overtake earlier ones. Zero, the default, delivers at once.
func (n *Network) SetLatency(d time.Duration) {
	n.latency.Store(int64(max(d, 0)))
}

// SetHalfOpen makes every connection half-open while on is true, as when
// the peer or the path vanished without a FIN or an RST reaching the other
// side: on both endpoints, Writes succeed and their bytes are silently
// lost, and Reads keep waiting (for their deadline or Close) without
// io.EOF or an error. A Close while on is lost the same way: the peer is
// not told, so its Reads keep waiting even after the fault is lifted, and
// its Writes fail with syscall.EPIPE only once it is.
//
// Bytes written before the fault are still delivered; bytes written while
// it is on stay lost when it is lifted; bytes written after it is lifted
// are delivered again. Dials, listeners and Conns are unaffected, and
// DropAll still resets a half-open connection.
func (n *Network) SetHalfOpen(on bool) {
	n.halfOpen.Store(on)
	if !on {
		return
	}
	// A Write blocked on a full buffer must look again: its remaining
	// bytes are now to be swallowed.
	n.mu.Lock()
	pairs := make([]*pair, 0, len(n.open))
	for p := range n.open {
		pairs = append(pairs, p)
	}
	n.mu.Unlock()
	for _, p := range pairs {
		for _, pp := range [...]*pipe{p.client.out, p.server.out} {
			pp.mu.Lock()
			pp.wakeWriters()
			pp.mu.Unlock()
		}
	}
}

// swallowing reports whether the network is half-open (SetHalfOpen).
func (n *Network) swallowing() bool { return n.halfOpen.Load() }

// delay is the latency in force.
func (n *Network) delay() time.Duration { return time.Duration(n.latency.Load()) }

// Conns returns the number of open connections: those dialed and neither
// dropped nor closed at both ends.
func (n *Network) Conns() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.open)
}

// endClosed records that one endpoint of p was closed.
func (n *Network) endClosed(p *pair) {
	n.mu.Lock()
	defer n.mu.Unlock()
	p.openEnds--
	if p.openEnds == 0 {
		delete(n.open, p)
	}
}

// drop resets one connection and stops counting it.
func (n *Network) drop(p *pair) {
	n.mu.Lock()
	delete(n.open, p)
	n.mu.Unlock()
	p.client.reset()
	p.server.reset()
}

// unlisten frees the address of l.
func (n *Network) unlisten(l *listener) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.listeners[string(l.addr)] == l {
		delete(n.listeners, string(l.addr))
	}
}
