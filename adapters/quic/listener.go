package quic

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"time"

	quicgo "github.com/quic-go/quic-go"
)

// listener is the net.Listener that Listen returns.
//
// A goroutine accepts QUIC connections, and each accepted connection gets
// one that waits for its stream, so a client that is slow to open it (or
// never does) holds up nobody else. Ready connections wait in ready until
// Accept takes them.
//
// The listener owns its UDP socket and quic-go Transport, and closes them
// once it is closed and every Conn it returned is closed too: accepted
// connections outlive the listener, as TCP connections do, and nothing
// outlives them all. (quic-go's own ListenAddr would keep the socket for a
// while after a failed handshake, to repeat its CONNECTION_CLOSE.)
type listener struct {
	udp           net.PacketConn
	tr            *quicgo.Transport
	ql            *quicgo.Listener
	streamTimeout time.Duration
	linger        time.Duration

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // the accept loop and the stream waiters
	ready  chan *Conn

	once sync.Once
	done chan struct{} // closed when Accept can return no more connections
	err  error         // why, set before done is closed

	mu     sync.Mutex
	closed bool // Close was called
	live   int  // Conns made and not yet released
	freed  bool // the transport and socket are closed
}

// Listen listens for QUIC connections on the UDP address addr (for example
// "127.0.0.1:0") and returns a net.Listener whose Accept returns each
// connection, as a *Conn, once its client has opened the stream and written
// its first bytes. tlsConfig must hold the server's certificate
// (Certificates or GetCertificate); it is cloned and its NextProtos replaced
// by [ALPN], so clients offering another protocol fail the handshake.
// Handshakes that fail, and connections whose client opens no stream within
// the handshake idle timeout, are closed and never returned by Accept.
//
// Close stops listening, closes the connections not yet accepted and waits
// for the listener's goroutines; connections already accepted stay open,
// and the UDP socket is closed with the last of them. Addr reports the UDP
// address.
func Listen(addr string, tlsConfig *tls.Config, opts ...Option) (net.Listener, error) {
	cfg := newConfig(opts)
	udp, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("quic: listen %s: %w", addr, err)
	}
	tr := &quicgo.Transport{Conn: udp}
	ql, err := tr.Listen(withALPN(tlsConfig), cfg.quicConfig(true))
	if err != nil {
		_ = tr.Close()
		_ = udp.Close()
		return nil, fmt.Errorf("quic: listen %s: %w", addr, err)
	}
	l := &listener{
		udp:           udp,
		tr:            tr,
		ql:            ql,
		streamTimeout: orDefault(cfg.handshakeIdleTimeout, DefaultHandshakeIdleTimeout),
		linger:        cfg.lingerTime(),
		ready:         make(chan *Conn),
		done:          make(chan struct{}),
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.wg.Add(1)
	go l.acceptLoop()
	return l, nil
}

func (l *listener) acceptLoop() {
	defer l.wg.Done()
	for {
		qc, err := l.ql.Accept(l.ctx)
		if err != nil {
			l.finish(err)
			return
		}
		l.wg.Add(1)
		go l.awaitStream(qc)
	}
}

// awaitStream waits for qc's stream and hands the Conn to Accept.
func (l *listener) awaitStream(qc *quicgo.Conn) {
	defer l.wg.Done()
	ctx, cancel := context.WithTimeout(l.ctx, l.streamTimeout)
	s, err := qc.AcceptStream(ctx)
	cancel()
	if err != nil {
		_ = qc.CloseWithError(0, "")
		return
	}
	l.mu.Lock()
	l.live++
	l.mu.Unlock()
	c := newConn(qc, s, l.linger, l.release)
	select {
	case l.ready <- c:
	case <-l.ctx.Done():
		_ = qc.CloseWithError(0, "")
		l.release()
	}
}

// release counts one Conn's QUIC connection closed.
func (l *listener) release() {
	l.mu.Lock()
	l.live--
	l.mu.Unlock()
	l.maybeFree()
}

// maybeFree closes the transport and the socket once the listener and all
// its Conns are closed.
func (l *listener) maybeFree() {
	l.mu.Lock()
	free := l.closed && l.live == 0 && !l.freed
	l.freed = l.freed || free
	l.mu.Unlock()
	if free {
		_ = l.tr.Close()
		_ = l.udp.Close()
	}
}

// finish records why Accept can return no more connections.
func (l *listener) finish(err error) {
	l.once.Do(func() {
		l.err = err
		close(l.done)
	})
}

// Accept waits for the next connection whose stream is open.
func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.done:
		return nil, &net.OpError{Op: "accept", Net: "quic", Addr: l.Addr(), Err: l.err}
	}
}

// Close stops listening; see Listen.
func (l *listener) Close() error {
	l.finish(net.ErrClosed)
	l.cancel()
	err := l.ql.Close()
	l.wg.Wait()
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.maybeFree()
	return err
}

// Addr returns the UDP address listened on.
func (l *listener) Addr() net.Addr { return l.udp.LocalAddr() }
