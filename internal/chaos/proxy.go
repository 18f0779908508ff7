package chaos

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Direction is one way of a proxied connection.
type Direction int

// The two directions.
const (
	// Upstream is client to server: the bytes the proxy accepted, going
	// to the upstream address.
	Upstream Direction = iota
	// Downstream is server to client.
	Downstream
)

// String returns "upstream" or "downstream".
func (d Direction) String() string {
	if d == Upstream {
		return "upstream"
	}
	return "downstream"
}

// Stats are the proxy's counters since Listen.
type Stats struct {
	// Accepted counts the connections accepted; Active is how many are
	// open now.
	Accepted uint64
	Active   int
	// Resets counts the connections the proxy reset (RST): by ResetAll,
	// by ResetAfterBytes, or because one side reset its end.
	Resets uint64
	// Bytes and Writes count, by Direction, the bytes forwarded and the
	// Write calls that carried them (one per slice under SetSlice).
	Bytes  [2]uint64
	Writes [2]uint64
	// Held counts the times a direction stopped forwarding because the
	// proxy was half-open.
	Held uint64
}

// queueLen bounds the chunks read but not yet written in one direction.
const queueLen = 16

// readSize is the largest chunk read at once.
const readSize = 32 << 10

// Proxy forwards TCP connections from its listener to an upstream address,
// injecting faults. All its methods are safe for concurrent use.
type Proxy struct {
	ln       net.Listener
	upstream string
	ctx      context.Context // ends at Close: cancels upstream dials
	cancel   context.CancelFunc
	wg       sync.WaitGroup // the accept loop and every link's pumps

	latency   atomic.Int64 // time.Duration
	bandwidth atomic.Int64 // bytes per second per direction; 0: unlimited
	slice     atomic.Int64 // largest write; 0: no slicing
	halfOpen  atomic.Bool

	accepted atomic.Uint64
	resets   atomic.Uint64
	bytes    [2]atomic.Uint64
	writes   [2]atomic.Uint64
	held     atomic.Uint64

	mu         sync.Mutex
	closed     bool
	links      map[*link]struct{}
	resetAfter [2]int64      // the budget each new link starts with; 0: none
	resumed    chan struct{} // closed when half-open ends
	changed    chan struct{} // closed at the next change, when someone waits
	watched    atomic.Bool   // changed is not nil
}

// Listen starts a proxy on 127.0.0.1 on a free port, forwarding each
// connection to upstream (host:port), and returns once it accepts.
func Listen(upstream string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, upstream: upstream, links: make(map[*link]struct{})}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Addr returns the proxy's address, host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetLatency delays every chunk of data by d in each direction, from the
// moment the proxy read it; the stream keeps flowing meanwhile (a delay
// line, not a throttle). 0 turns it off.
func (p *Proxy) SetLatency(d time.Duration) { p.latency.Store(int64(d)) }

// SetBandwidth limits each direction of each connection to bytesPerSec,
// written in pieces of at most a hundredth of a second's worth, with no
// burst saved up while idle. 0 turns it off.
func (p *Proxy) SetBandwidth(bytesPerSec int) { p.bandwidth.Store(int64(bytesPerSec)) }

// SetSlice makes the proxy write at most n bytes per Write call (n = 1
// delivers frames one byte at a time, each in its own segment: the proxy's
// sockets have TCP_NODELAY). 0 turns it off.
func (p *Proxy) SetSlice(n int) { p.slice.Store(int64(max(n, 0))) }

// SetHalfOpen(true) stops forwarding in both directions while keeping
// every socket open, as a network partition or a dead middlebox does:
// data already read is held, not dropped, and the proxy stops reading, so
// the peers' writes back up as TCP's would. New connections are accepted
// and held too. SetHalfOpen(false) resumes, delivering what was held.
func (p *Proxy) SetHalfOpen(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on == p.halfOpen.Load() {
		return
	}
	if on {
		p.resumed = make(chan struct{})
		p.halfOpen.Store(true)
		return
	}
	p.halfOpen.Store(false)
	close(p.resumed)
}

// ResetAfterBytes resets (RST) each connection once n more bytes have been
// forwarded in direction d: the open ones n bytes from now, each new one n
// bytes after it opens. The n-th byte is the last one forwarded, so a
// frame spanning it is cut. n <= 0 turns it off.
func (p *Proxy) ResetAfterBytes(d Direction, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.resetAfter[d] = int64(max(n, 0))
	for l := range p.links {
		l.setBudget(d, p.resetAfter[d])
	}
}

// ResetAll resets every open connection now, on both sides: SO_LINGER 0
// and close, so that each peer gets an RST and whatever was in flight —
// likely half a frame — is lost. It returns how many it reset.
func (p *Proxy) ResetAll() int {
	p.mu.Lock()
	links := make([]*link, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
	}
	p.mu.Unlock()
	n := 0
	for _, l := range links {
		if l.shut(true) {
			n++
		}
	}
	return n
}

// Stats returns the counters.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	active := len(p.links)
	p.mu.Unlock()
	s := Stats{
		Accepted: p.accepted.Load(),
		Active:   active,
		Resets:   p.resets.Load(),
		Held:     p.held.Load(),
	}
	for d := range 2 {
		s.Bytes[d] = p.bytes[d].Load()
		s.Writes[d] = p.writes[d].Load()
	}
	return s
}

// Wait blocks until cond holds for the proxy's Stats, or ctx ends. It is
// woken by each change of the counters; it never polls.
func (p *Proxy) Wait(ctx context.Context, cond func(Stats) bool) error {
	for {
		p.mu.Lock()
		if p.changed == nil {
			p.changed = make(chan struct{})
			p.watched.Store(true)
		}
		ch := p.changed
		p.mu.Unlock()
		// Stats is read after the channel is taken, so that no change
		// falls between the check and the wait.
		if cond(p.Stats()) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// notify wakes the waiters of Wait, if any.
func (p *Proxy) notify() {
	if !p.watched.Load() {
		return
	}
	p.mu.Lock()
	if p.changed != nil {
		close(p.changed)
		p.changed = nil
		p.watched.Store(false)
	}
	p.mu.Unlock()
}

// Close stops accepting, closes every connection (an orderly close, not a
// reset), and waits for every goroutine the proxy started.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.wg.Wait()
		return nil
	}
	p.closed = true
	links := make([]*link, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
	}
	p.mu.Unlock()
	p.cancel()
	err := p.ln.Close()
	for _, l := range links {
		l.shut(false)
	}
	p.wg.Wait()
	return err
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	var d net.Dialer
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		client := c.(*net.TCPConn)
		s, err := d.DialContext(p.ctx, "tcp", p.upstream)
		if err != nil {
			// The upstream refused: so does the proxy, abruptly.
			_ = client.SetLinger(0)
			_ = client.Close()
			continue
		}
		server := s.(*net.TCPConn)
		l := &link{p: p, conns: [2]*net.TCPConn{client, server}, done: make(chan struct{})}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			_ = client.Close()
			_ = server.Close()
			return
		}
		for d := range 2 {
			l.setBudget(Direction(d), p.resetAfter[d])
		}
		p.links[l] = struct{}{}
		p.wg.Add(4)
		p.mu.Unlock()
		p.accepted.Add(1)
		p.notify()
		for d := range 2 {
			ch := make(chan chunk, queueLen)
			go l.read(Direction(d), ch)
			go l.write(Direction(d), ch)
		}
	}
}

// waitOpen returns true at once unless the proxy is half-open; then it
// waits until it is not, and returns false if the link ends first.
func (p *Proxy) waitOpen(done <-chan struct{}) bool {
	if !p.halfOpen.Load() {
		return true
	}
	p.mu.Lock()
	resumed := p.resumed
	on := p.halfOpen.Load()
	p.mu.Unlock()
	if !on {
		return true
	}
	p.held.Add(1)
	p.notify()
	select {
	case <-resumed:
		return true
	case <-done:
		return false
	}
}

// chunk is data read from one side, stamped with the time it was read.
type chunk struct {
	data []byte
	at   time.Time
}

// link is one proxied connection: the accepted client socket and the
// upstream server socket.
type link struct {
	p     *Proxy
	conns [2]*net.TCPConn // [Upstream]: the client's (read upstream), [Downstream]: the server's
	done  chan struct{}   // closed by shut
	once  sync.Once

	bmu    sync.Mutex
	budget [2]int64 // bytes left before a reset, by direction; 0: no limit
}

// src and dst are the sockets direction d reads from and writes to.
func (l *link) src(d Direction) *net.TCPConn { return l.conns[d] }
func (l *link) dst(d Direction) *net.TCPConn { return l.conns[1-d] }

func (l *link) setBudget(d Direction, n int64) {
	l.bmu.Lock()
	l.budget[d] = n
	l.bmu.Unlock()
}

// allow trims a write of n bytes in direction d to the reset budget.
func (l *link) allow(d Direction, n int) int {
	l.bmu.Lock()
	defer l.bmu.Unlock()
	if b := l.budget[d]; b > 0 && int64(n) > b {
		return int(b)
	}
	return n
}

// spend charges n written bytes to the budget and reports whether it is
// used up (the link must be reset).
func (l *link) spend(d Direction, n int) bool {
	l.bmu.Lock()
	defer l.bmu.Unlock()
	if l.budget[d] <= 0 {
		return false
	}
	l.budget[d] -= int64(n)
	return l.budget[d] <= 0
}

// shut closes both sockets, with an RST when reset, once. It reports
// whether this call did it.
func (l *link) shut(reset bool) bool {
	did := false
	l.once.Do(func() {
		did = true
		// Counted before the sockets close, so that a peer that sees
		// the end also sees it counted.
		if reset {
			l.p.resets.Add(1)
		}
		l.p.mu.Lock()
		delete(l.p.links, l)
		l.p.mu.Unlock()
		close(l.done)
		for _, c := range l.conns {
			if reset {
				_ = c.SetLinger(0)
			}
			_ = c.Close()
		}
		l.p.notify()
	})
	return did
}

// isReset reports whether err is the peer's RST (or a write into one).
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// read is direction d's reader: it reads chunks from the source socket
// and queues them for the writer. At the end of the stream it closes the
// queue (the writer then finishes and closes the link); a reset from the
// peer is passed on to the other side at once.
func (l *link) read(d Direction, ch chan<- chunk) {
	defer l.p.wg.Done()
	defer close(ch)
	src := l.src(d)
	buf := make([]byte, readSize)
	for {
		if !l.p.waitOpen(l.done) {
			return
		}
		n, err := src.Read(buf)
		if n > 0 {
			c := chunk{data: append([]byte(nil), buf[:n]...), at: time.Now()}
			select {
			case ch <- c:
			case <-l.done:
				return
			}
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			return // the writer flushes the queue, then closes the link
		case isReset(err):
			l.shut(true)
			return
		default:
			l.shut(false)
			return
		}
	}
}

// write is direction d's writer: it delays each chunk by the latency and
// writes it in pieces no larger than the slice size and the bandwidth
// allow, stopping while half-open, and resets the link when the reset
// budget is spent.
func (l *link) write(d Direction, ch <-chan chunk) {
	defer l.p.wg.Done()
	dst := l.dst(d)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	// wait waits until t (simulated delay, not synchronisation), and
	// returns false if the link ends first.
	wait := func(t time.Time) bool {
		dt := time.Until(t)
		if dt <= 0 {
			return true
		}
		timer.Reset(dt)
		select {
		case <-timer.C:
			return true
		case <-l.done:
			timer.Stop()
			return false
		}
	}
	var next time.Time // bandwidth: when the next piece may go
	for {
		var c chunk
		var ok bool
		select {
		case c, ok = <-ch:
		case <-l.done:
			return
		}
		if !ok {
			l.shut(false) // the source ended its stream
			return
		}
		if lat := time.Duration(l.p.latency.Load()); lat > 0 && !wait(c.at.Add(lat)) {
			return
		}
		for data := c.data; len(data) > 0; {
			if !l.p.waitOpen(l.done) {
				return
			}
			n := len(data)
			if s := int(l.p.slice.Load()); s > 0 {
				n = min(n, s)
			}
			bps := l.p.bandwidth.Load()
			if bps > 0 {
				n = min(n, int(max(bps/100, 1)))
				if now := time.Now(); next.Before(now) {
					next = now // no burst saved up while idle
				}
				if !wait(next) {
					return
				}
			}
			n = l.allow(d, n)
			w, err := dst.Write(data[:n])
			l.p.bytes[d].Add(uint64(w))
			l.p.writes[d].Add(1)
			l.p.notify()
			if bps > 0 {
				next = next.Add(time.Duration(int64(w) * int64(time.Second) / bps))
			}
			if err != nil {
				l.shut(isReset(err))
				return
			}
			if l.spend(d, w) {
				l.shut(true)
				return
			}
			data = data[w:]
		}
	}
}
