package pulsarconn_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/adapters/memory"
	"github.com/pulsarconn/pulsarconn/adapters/tcp"
	"github.com/pulsarconn/pulsarconn/core"
	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// This file plays brokers that are broken or hostile at the byte level,
// which pulsartest, a well-behaved fake, is built not to be. Each is a raw
// net.Listener on TCP loopback and a goroutine per connection that writes
// whatever bytes the case calls for.

// hostileBroker serves each accepted connection with serve; n is 1 for the
// first connection, 2 for the next, and so on.
type hostileBroker struct {
	l      net.Listener
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns []net.Conn
}

func newHostileBroker(t *testing.T, serve func(ctx context.Context, n int, c *brokerSide)) *hostileBroker {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	h := &hostileBroker{l: l}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		for n := 1; ; n++ {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			h.mu.Lock()
			h.conns = append(h.conns, nc)
			h.mu.Unlock()
			h.wg.Add(1)
			go func() {
				defer h.wg.Done()
				defer nc.Close()
				serve(h.ctx, n, &brokerSide{Conn: nc, fr: frame.NewReader(nc, 0)})
			}()
		}
	}()
	t.Cleanup(h.close)
	return h
}

func (h *hostileBroker) url() string { return "pulsar://" + h.l.Addr().String() }

// close stops accepting, closes every connection and waits for every
// goroutine of the broker.
func (h *hostileBroker) close() {
	h.cancel()
	h.l.Close()
	h.mu.Lock()
	for _, c := range h.conns {
		c.Close()
	}
	h.mu.Unlock()
	h.wg.Wait()
}

// brokerSide is the broker's end of one connection.
type brokerSide struct {
	net.Conn
	fr *frame.Reader
	// underway, when set, is called by trickle once some of its bytes
	// are written.
	underway func()
}

// handshake reads CONNECT and answers CONNECTED; maxMessageSize 0 leaves
// the field out.
func (c *brokerSide) handshake(maxMessageSize int32) error {
	f, err := c.fr.Next()
	if err != nil {
		return err
	}
	if f.Command.GetType() != pulsarpb.BaseCommand_CONNECT {
		return fmt.Errorf("hostile broker: %v before CONNECT", f.Command.GetType())
	}
	connected := &pulsarpb.CommandConnected{ServerVersion: proto.String("hostile"), ProtocolVersion: proto.Int32(frame.ProtocolVersion)}
	if maxMessageSize > 0 {
		connected.MaxMessageSize = proto.Int32(maxMessageSize)
	}
	return c.send(&pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_CONNECTED.Enum(), Connected: connected})
}

func (c *brokerSide) send(cmd *pulsarpb.BaseCommand) error {
	b, err := frame.AppendCommand(nil, cmd)
	if err != nil {
		return err
	}
	_, err = c.Write(b)
	return err
}

// behave answers PING with PONG, LOOKUP with a Connect answer and
// CLOSE_PRODUCER and CLOSE_CONSUMER with SUCCESS, and ignores everything
// else, until the connection ends.
func (c *brokerSide) behave() {
	for {
		f, err := c.fr.Next()
		if err != nil {
			return
		}
		var answer *pulsarpb.BaseCommand
		switch cmd := f.Command; cmd.GetType() {
		case pulsarpb.BaseCommand_PING:
			answer = &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_PONG.Enum(), Pong: &pulsarpb.CommandPong{}}
		case pulsarpb.BaseCommand_CLOSE_PRODUCER, pulsarpb.BaseCommand_CLOSE_CONSUMER:
			id, _ := frame.RequestID(cmd)
			answer = &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_SUCCESS.Enum(), Success: &pulsarpb.CommandSuccess{RequestId: proto.Uint64(id)}}
		case pulsarpb.BaseCommand_LOOKUP:
			answer = &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_LOOKUP_RESPONSE.Enum(), LookupTopicResponse: &pulsarpb.CommandLookupTopicResponse{
				RequestId:        proto.Uint64(cmd.GetLookupTopic().GetRequestId()),
				Response:         pulsarpb.CommandLookupTopicResponse_Connect.Enum(),
				BrokerServiceUrl: proto.String("pulsar://hostile:6650"),
			}}
		default:
			continue
		}
		if c.send(answer) != nil {
			return
		}
	}
}

// ignore reads and discards everything until the connection ends.
func (c *brokerSide) ignore() {
	for {
		if _, err := c.fr.NextBody(); err != nil {
			return
		}
	}
}

// zeros is the body of the frames trickled, shared so that the broker's
// own buffers stay out of the client's memory figures.
var zeros [16 << 10]byte

// trickle writes header, then n zero bytes, chunk bytes (at most 16 KiB)
// per tick, until the connection or ctx ends. It reads nothing meanwhile:
// what the client sends is small enough to wait in the socket's buffers.
func (c *brokerSide) trickle(ctx context.Context, header []byte, n, chunk int, every time.Duration) {
	if _, err := c.Write(header); err != nil {
		return
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for i := 1; n > 0; i++ {
		m := min(chunk, n)
		if _, err := c.Write(zeros[:m]); err != nil {
			return
		}
		n -= m
		if i == 8 && c.underway != nil {
			c.underway()
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// rawFrame is a frame with the given total-size and command-size fields
// followed by body, consistent or not.
func rawFrame(totalSize uint32, body []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, totalSize), body...)
}

func u32(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }

// connEvents records what an Observer sees of connections.
type connEvents struct {
	errs   chan error // each attempt's or connection's end, but Stop's
	opened chan struct{}
}

func watchConnections() (*connEvents, pulsarconn.Option) {
	ev := &connEvents{errs: make(chan error, 64), opened: make(chan struct{}, 64)}
	return ev, pulsarconn.WithObserver(pulsarconn.ObserverFunc(func(e pulsarconn.Event) {
		var err error
		switch e := e.(type) {
		case pulsarconn.HandshakeFailed:
			err = e.Err
		case pulsarconn.ConnectionClosed:
			err = e.Err
		case pulsarconn.ConnectionOpened:
			select {
			case ev.opened <- struct{}{}:
			default:
			}
			return
		default:
			return
		}
		if errors.Is(err, pulsarconn.ErrClosed) {
			return
		}
		select {
		case ev.errs <- err:
		default:
		}
	}))
}

// waitFor waits until ch is closed or receives.
func waitFor[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-testContext(t).Done():
		t.Fatalf("waiting for %s", what)
	}
}

func (ev *connEvents) nextErr(t *testing.T) error {
	t.Helper()
	select {
	case err := <-ev.errs:
		return err
	case <-testContext(t).Done():
		t.Fatal("no connection error")
		return nil
	}
}

// memProbe measures the heap while a test runs: its high-water mark, by
// sampling, and the bytes allocated, exactly.
type memProbe struct {
	base runtime.MemStats
	peak atomic.Uint64
	stop chan struct{}
	done chan struct{}
}

// memFigures are a memProbe's results.
type memFigures struct {
	PeakGrowth int64  // highest HeapInuse seen minus HeapInuse at the start
	Allocated  uint64 // TotalAlloc growth: every byte allocated, freed or not
}

func (f memFigures) String() string {
	return fmt.Sprintf("heap peak +%.2f MiB, allocated %.2f MiB", float64(f.PeakGrowth)/(1<<20), float64(f.Allocated)/(1<<20))
}

func startMemProbe() *memProbe {
	p := &memProbe{stop: make(chan struct{}), done: make(chan struct{})}
	runtime.GC()
	runtime.ReadMemStats(&p.base)
	p.peak.Store(p.base.HeapInuse)
	go func() {
		defer close(p.done)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		var m runtime.MemStats
		for {
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
			runtime.ReadMemStats(&m)
			p.observe(m.HeapInuse)
		}
	}()
	return p
}

func (p *memProbe) observe(inuse uint64) {
	for {
		old := p.peak.Load()
		if inuse <= old || p.peak.CompareAndSwap(old, inuse) {
			return
		}
	}
}

func (p *memProbe) finish() memFigures {
	close(p.stop)
	<-p.done
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	p.observe(m.HeapInuse)
	return memFigures{PeakGrowth: int64(p.peak.Load()) - int64(p.base.HeapInuse), Allocated: m.TotalAlloc - p.base.TotalAlloc}
}

const mib = 1 << 20

// TestHostileBrokers plays, on the first connection, a broker that breaks
// the protocol in one way, and a well-behaved broker on the connections
// after it. Each case must end the first connection with a matching error,
// allocate little while doing so whatever the broker announced, and
// reconnect.
func TestHostileBrokers(t *testing.T) {
	hugeFrame := u32(frame.DefaultMaxFrameSize) // the largest legal header
	cases := []struct {
		name      string
		connected bool // CONNECTED before misbehaving
		maxMsg    int32
		misbehave func(ctx context.Context, c *brokerSide)
		trickles  bool // misbehave is a trickle, under way once it calls c.underway
		// expires is how far the Broker's fake clock moves once the
		// misbehaviour is under way (and the connection up, if
		// connected): past the default connect timeout or two
		// keepalive intervals. 0: no timeout ends the connection.
		expires  time.Duration
		want     []error
		maxAlloc uint64 // bound on bytes allocated from Start to the error
		maxPeak  int64  // bound on heap growth
	}{
		{
			name: "4 GiB length prefix", connected: true,
			misbehave: func(_ context.Context, c *brokerSide) { c.Write(rawFrame(math.MaxUint32, make([]byte, 1024))) },
			want:      []error{pulsarconn.ErrFrameTooLarge, pulsarconn.ErrProtocol},
			maxAlloc:  2 * mib, maxPeak: 2 * mib,
		},
		{
			name:      "4 GiB length prefix before CONNECTED",
			misbehave: func(_ context.Context, c *brokerSide) { c.fr.Next(); c.Write(rawFrame(math.MaxUint32, nil)) },
			want:      []error{pulsarconn.ErrFrameTooLarge},
			maxAlloc:  2 * mib, maxPeak: 2 * mib,
		},
		{
			name: "length prefix one over the max frame", connected: true,
			misbehave: func(_ context.Context, c *brokerSide) {
				c.Write(rawFrame(frame.DefaultMaxFrameSize+1, make([]byte, 1024)))
			},
			want:     []error{pulsarconn.ErrFrameTooLarge},
			maxAlloc: 2 * mib, maxPeak: 2 * mib,
		},
		{
			name: "length prefix under 4", connected: true,
			misbehave: func(_ context.Context, c *brokerSide) { c.Write(rawFrame(3, []byte{0, 0, 0})) },
			want:      []error{pulsarconn.ErrProtocol},
			maxAlloc:  2 * mib, maxPeak: 2 * mib,
		},
		{
			name: "length prefix 0", connected: true,
			misbehave: func(_ context.Context, c *brokerSide) { c.Write(rawFrame(0, nil)) },
			want:      []error{pulsarconn.ErrProtocol},
			maxAlloc:  2 * mib, maxPeak: 2 * mib,
		},
		{
			name: "command size beyond the frame", connected: true,
			misbehave: func(_ context.Context, c *brokerSide) { c.Write(rawFrame(8, append(u32(1000), 8, 1, 0, 0))) },
			want:      []error{pulsarconn.ErrProtocol},
			maxAlloc:  2 * mib, maxPeak: 2 * mib,
		},
		{
			name: "command size of 4 GiB", connected: true,
			misbehave: func(_ context.Context, c *brokerSide) { c.Write(rawFrame(8, append(u32(math.MaxUint32), 8, 1, 0, 0))) },
			want:      []error{pulsarconn.ErrProtocol},
			maxAlloc:  2 * mib, maxPeak: 2 * mib,
		},
		{
			name: "garbage protobuf", connected: true,
			misbehave: func(_ context.Context, c *brokerSide) {
				garbage := make([]byte, 64)
				for i := range garbage {
					garbage[i] = 0xff
				}
				c.Write(rawFrame(4+64, append(u32(64), garbage...)))
			},
			want:     []error{pulsarconn.ErrProtocol},
			maxAlloc: 2 * mib, maxPeak: 2 * mib,
		},
		{
			name: "garbage protobuf before CONNECTED",
			misbehave: func(_ context.Context, c *brokerSide) {
				c.fr.Next()
				c.Write(rawFrame(4+6, append(u32(6), 0x0a, 0xff, 0xff, 0xff, 0xff, 0xff)))
			},
			want:     []error{pulsarconn.ErrProtocol},
			maxAlloc: 2 * mib, maxPeak: 2 * mib,
		},
		{
			name: "command without a type", connected: true,
			misbehave: func(_ context.Context, c *brokerSide) { c.Write(rawFrame(4, u32(0))) },
			want:      []error{pulsarconn.ErrProtocol},
			maxAlloc:  2 * mib, maxPeak: 2 * mib,
		},
		{
			name:      "no CONNECTED ever",
			misbehave: func(_ context.Context, c *brokerSide) { c.ignore() },
			expires:   core.DefaultConnectTimeout,
			want:      []error{pulsarconn.ErrConnectTimeout},
			maxAlloc:  2 * mib, maxPeak: 2 * mib,
		},
		{
			name: "no PONG ever", connected: true,
			misbehave: func(_ context.Context, c *brokerSide) { c.ignore() },
			expires:   2 * core.DefaultKeepAliveInterval,
			want:      []error{pulsarconn.ErrKeepaliveTimeout},
			maxAlloc:  2 * mib, maxPeak: 2 * mib,
		},
		{
			// A max-size frame header, then its body one byte per
			// millisecond: never a whole frame, so never a sign of
			// life.
			name: "never-ending trickle of a max-size frame", connected: true,
			misbehave: func(ctx context.Context, c *brokerSide) {
				c.trickle(ctx, hugeFrame, frame.DefaultMaxFrameSize, 1, time.Millisecond)
			},
			trickles: true, expires: 2 * core.DefaultKeepAliveInterval,
			want:     []error{pulsarconn.ErrKeepaliveTimeout},
			maxAlloc: frame.DefaultMaxFrameSize, maxPeak: frame.DefaultMaxFrameSize,
		},
		{
			name: "never-ending trickle before CONNECTED",
			misbehave: func(ctx context.Context, c *brokerSide) {
				c.fr.Next()
				c.trickle(ctx, hugeFrame, frame.DefaultMaxFrameSize, 1, time.Millisecond)
			},
			trickles: true, expires: core.DefaultConnectTimeout,
			want:     []error{pulsarconn.ErrConnectTimeout},
			maxAlloc: frame.DefaultMaxFrameSize, maxPeak: frame.DefaultMaxFrameSize,
		},
		{
			// CONNECTED may raise the frame limit to 2 GiB; a frame
			// announced at that size and sent 16 KiB per millisecond
			// must cost what arrived, not what was announced.
			name: "CONNECTED allows 2 GiB, then a 2 GiB frame trickles", connected: true, maxMsg: math.MaxInt32,
			misbehave: func(ctx context.Context, c *brokerSide) {
				c.trickle(ctx, u32(math.MaxInt32), math.MaxInt32, 16<<10, time.Millisecond)
			},
			trickles: true, expires: 2 * core.DefaultKeepAliveInterval,
			want:     []error{pulsarconn.ErrKeepaliveTimeout},
			maxAlloc: 16 * mib, maxPeak: 16 * mib,
		},
	}
	const backoffMax = 20 * time.Millisecond
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			underway := make(chan struct{})
			markUnderway := sync.OnceFunc(func() { close(underway) })
			srv := newHostileBroker(t, func(ctx context.Context, n int, c *brokerSide) {
				if n > 1 {
					if c.handshake(0) == nil {
						c.behave()
					}
					return
				}
				if tc.connected && c.handshake(tc.maxMsg) != nil {
					return
				}
				c.underway = markUnderway
				if !tc.trickles {
					markUnderway()
				}
				tc.misbehave(ctx, c)
				c.ignore()
			})
			events, observe := watchConnections()
			probe := startMemProbe()
			// The Broker's timeouts are the defaults, on a fake clock
			// moved once the misbehaviour is under way: how long a
			// loaded machine takes changes neither the error nor what
			// arrived before it.
			clk := memory.NewClock(time.Now())
			b, err := pulsarconn.Start(srv.url(),
				pulsarconn.WithTransport(tcp.New()),
				pulsarconn.WithClock(clk),
				pulsarconn.WithBackoff(time.Millisecond, backoffMax),
				observe)
			require.NoError(t, err)
			t.Cleanup(func() { b.Stop(context.Background()) })

			if tc.expires > 0 {
				waitFor(t, underway, "the misbehaviour")
				if tc.connected {
					waitFor(t, events.opened, "the connection")
				}
				clk.Advance(tc.expires)
			}
			err = events.nextErr(t)
			mem := probe.finish()
			t.Logf("error: %v", err)
			t.Logf("memory: %v", mem)
			for _, want := range tc.want {
				assert.ErrorIs(t, err, want)
			}
			assert.LessOrEqual(t, mem.Allocated, tc.maxAlloc, "bytes allocated")
			assert.LessOrEqual(t, mem.PeakGrowth, tc.maxPeak, "heap growth")

			ctx := testContext(t)
			clk.Advance(backoffMax)
			require.NoError(t, b.WaitConnected(ctx), "reconnects, to a broker that behaves")
			require.NoError(t, b.Stop(ctx))
		})
	}
}

// TestHostileFloods sends, right after CONNECTED, floods of frames that
// are well-formed but unexpected: answers to request ids never used, and
// MESSAGEs for consumers never registered. Each is counted in Stats and
// dropped; the connection stays up and memory stays flat.
func TestHostileFloods(t *testing.T) {
	const n = 100_000
	cases := []struct {
		name  string
		frame func(i int) *pulsarpb.BaseCommand
		count func(pulsarconn.Stats) uint64
	}{
		{
			name: "answers to unknown request ids",
			frame: func(i int) *pulsarpb.BaseCommand {
				return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_SUCCESS.Enum(),
					Success: &pulsarpb.CommandSuccess{RequestId: proto.Uint64(1<<40 + uint64(i))}}
			},
			count: func(s pulsarconn.Stats) uint64 { return s.UnknownRequests },
		},
		{
			name: "MESSAGEs for unknown consumers",
			frame: func(i int) *pulsarpb.BaseCommand {
				return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_MESSAGE.Enum(), Message: &pulsarpb.CommandMessage{
					ConsumerId: proto.Uint64(1000 + uint64(i%7)),
					MessageId:  &pulsarpb.MessageIdData{LedgerId: proto.Uint64(1), EntryId: proto.Uint64(uint64(i))},
				}}
			},
			count: func(s pulsarconn.Stats) uint64 { return s.UnknownConsumers },
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// One chunk of 1,000 frames, written n/1,000 times: the
			// broker's own buffers stay out of the measurement.
			var chunk []byte
			md := &pulsarpb.MessageMetadata{ProducerName: proto.String("hostile"), SequenceId: proto.Uint64(1), PublishTime: proto.Uint64(1)}
			for i := range 1000 {
				cmd := tc.frame(i)
				var err error
				if cmd.GetType() == pulsarpb.BaseCommand_MESSAGE {
					chunk, err = frame.AppendMessage(chunk, cmd, md, []byte("flood"))
				} else {
					chunk, err = frame.AppendCommand(chunk, cmd)
				}
				require.NoError(t, err)
			}
			srv := newHostileBroker(t, func(_ context.Context, _ int, c *brokerSide) {
				if c.handshake(0) != nil {
					return
				}
				for range n / 1000 {
					if _, err := c.Write(chunk); err != nil {
						return
					}
				}
				c.behave()
			})
			probe := startMemProbe()
			b, err := pulsarconn.Start(srv.url(), pulsarconn.WithTransport(tcp.New()))
			require.NoError(t, err)
			t.Cleanup(func() { b.Stop(context.Background()) })
			ctx := testContext(t)
			start := time.Now()
			require.NoError(t, b.WaitConnected(ctx))
			// The broker answers this LOOKUP after the flood: once it
			// is answered, every frame of the flood has been handled.
			_, err = b.LookupTopic(ctx, "persistent://public/default/t", false)
			require.NoError(t, err)
			elapsed := time.Since(start)
			mem := probe.finish()
			t.Logf("%d frames (%d bytes) handled in %v; memory: %v", n, n/1000*len(chunk), elapsed.Round(time.Millisecond), mem)
			assert.EqualValues(t, n, tc.count(b.Stats()))
			assert.Equal(t, pulsarconn.StateConnected, b.State())
			assert.LessOrEqual(t, mem.PeakGrowth, int64(16*mib), "heap growth")
			require.NoError(t, b.Stop(ctx))
		})
	}
}
