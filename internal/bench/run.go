package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"

	"github.com/pulsarconn/pulsarconn"
)

// Options configures Run. Zero fields take the defaults of a full run;
// Quick returns those of a run that takes a few seconds.
type Options struct {
	// Duration is how long each measured loop runs (default 2s), split
	// over Rounds.
	Duration time.Duration
	// Rounds is how many turns the loops of one scenario take (default
	// 4): raw, library, raw, library, ... each for Duration/Rounds, so
	// that a drift of the shared machine's speed weighs on both alike.
	Rounds int
	// Window is how many sends may await their receipt (default 1,000).
	Window int
	// IdleConns is the number of idle connections measured (default
	// 10,000); it needs Network.
	IdleConns int
	// Network makes the in-memory networks of the idle-connection
	// scenario (adapters/memory.NewNetwork); nil skips the scenario.
	Network func() Network
	// IdlePhase, when set, measures one phase of the idle-connection
	// scenario (IdleRaw or IdleLibrary) and returns bytes per
	// connection; cmd/pulsarconn runs MeasureIdlePhase in a fresh
	// process for each. When nil, both run in this process, after the
	// other scenarios (MeasureIdleMemory): noisier.
	IdlePhase func(ctx context.Context, phase string, n int) (float64, error)
	// ReconnectConns is the number of clients of the reconnect scenario
	// (default 100).
	ReconnectConns int
	// SecondServer, when set, starts the second, independent server of
	// every throughput scenario but publish into the sink and delivery:
	// pulsartest serving over TCP in another process, with Topic
	// partitioned in 4. It returns the server's pulsar:// URL and a
	// function that stops it; cmd/pulsarconn runs "pulsarconn serve" in
	// a child process. When nil, only the lean server is measured.
	SecondServer func(ctx context.Context) (url string, stop func() error, err error)
	// Progress, when set, gets a line as each scenario starts.
	Progress io.Writer
}

// Quick returns options for a run of a few seconds, for tests and smoke
// checks: figures from it are noisy.
func Quick() Options {
	return Options{Duration: 150 * time.Millisecond, Rounds: 1, IdleConns: 500, ReconnectConns: 20}
}

func (o *Options) defaults() {
	if o.Duration <= 0 {
		o.Duration = 2 * time.Second
	}
	if o.Rounds <= 0 {
		o.Rounds = 4
	}
	if o.Window <= 0 {
		o.Window = 1000
	}
	if o.IdleConns <= 0 {
		o.IdleConns = 10000
	}
	if o.ReconnectConns <= 0 {
		o.ReconnectConns = 100
	}
}

func (o *Options) progress(format string, args ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, format+"\n", args...)
	}
}

func (o *Options) measureIdle(ctx context.Context) (IdleMemory, error) {
	if o.IdlePhase == nil {
		return MeasureIdleMemory(ctx, o.Network, o.IdleConns)
	}
	out := IdleMemory{Conns: o.IdleConns}
	var err error
	if out.Raw, err = o.IdlePhase(ctx, IdleRaw, o.IdleConns); err != nil {
		return IdleMemory{}, err
	}
	if out.Library, err = o.IdlePhase(ctx, IdleLibrary, o.IdleConns); err != nil {
		return IdleMemory{}, err
	}
	return out, nil
}

// mallocs returns the process's count of heap allocations so far.
func mallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}

// Counted runs f and returns its result with the heap allocations per
// operation made meanwhile, by every goroutine of the process (the
// benchmark server's hot paths allocate nothing, so they are the
// client's). Run's own loops count theirs in interleave;
// interop/cmd/clientbench uses this.
func Counted(f func() (Throughput, error)) (Throughput, float64, error) {
	t, allocs, err := interleave(1, f)
	if err != nil {
		return Throughput{}, 0, err
	}
	return t[0], allocs[0], nil
}

// interleave runs each loop rounds times, in turn (first, second, ...,
// first, second, ...), and returns for each its throughput over all its
// rounds (latencies merged) and its heap allocations per operation.
func interleave(rounds int, loops ...func() (Throughput, error)) ([]Throughput, []float64, error) {
	sums := make([]Throughput, len(loops))
	mallocsOf := make([]uint64, len(loops))
	for range rounds {
		for i, loop := range loops {
			before := mallocs()
			t, err := loop()
			if err != nil {
				return nil, nil, err
			}
			mallocsOf[i] += mallocs() - before
			sum := &sums[i]
			sum.Ops += t.Ops
			sum.Bytes += t.Bytes
			sum.Elapsed += t.Elapsed
			if t.Latency != nil {
				if sum.Latency == nil {
					sum.Latency = new(Histogram)
				}
				sum.Latency.Merge(t.Latency)
			}
		}
	}
	allocs := make([]float64, len(loops))
	for i := range loops {
		if sums[i].Ops > 0 {
			allocs[i] = float64(mallocsOf[i]) / float64(sums[i].Ops)
		}
	}
	return sums, allocs, nil
}

// Side is the client that runs a scenario.
type Side string

// The sides of a scenario.
const (
	SideRaw          Side = "raw"           // the raw loop (Lockstep where it has shapes)
	SideRawPipelined Side = "raw-pipelined" // the raw loop, Pipelined where it has shapes
	SideLibrary      Side = "library"       // pulsarconn, through its public API
)

// target is a server the scenarios run against, with the Broker the
// library's loops share.
type target struct {
	addr string             // host:port
	lib  *pulsarconn.Broker // connected to addr
	sink *Server            // publish: the lean server in sink mode; nil elsewhere
}

// loop runs budget's operations of scenario sc on side against t.
func (t *target) loop(ctx context.Context, sc Scenario, side Side, window int, budget Budget) (Throughput, error) {
	raw := side != SideLibrary
	shape := Lockstep
	if side == SideRawPipelined {
		shape = Pipelined
	}
	switch sc {
	case ScenarioRR1, ScenarioRR64, ScenarioRR64Async:
		inflight := 1
		if sc != ScenarioRR1 {
			inflight = 64
		}
		switch {
		case raw:
			return RawRequests(ctx, t.addr, inflight, shape, budget)
		case sc == ScenarioRR64Async:
			return LibRequestsAsync(ctx, t.lib, inflight, budget)
		}
		return LibRequests(ctx, t.lib, inflight, budget)
	case ScenarioPublish:
		if t.sink == nil {
			return Throughput{}, errors.New("bench: publish needs the lean server in sink mode")
		}
		if raw {
			return RawPublish(ctx, t.sink, publishFrame, budget)
		}
		return LibPublish(ctx, t.lib, t.sink, publishFrame, budget)
	case ScenarioReceipts:
		if raw {
			return RawReceipts(ctx, t.addr, window, PayloadSize, shape, budget)
		}
		return LibReceipts(ctx, t.lib, window, PayloadSize, budget)
	case ScenarioDelivery:
		if raw {
			return RawDelivery(ctx, t.addr, budget)
		}
		return LibDelivery(ctx, t.lib, budget)
	}
	return Throughput{}, fmt.Errorf("bench: no scenario %q", sc)
}

// publishFrame is the frame of the publish scenario.
var publishFrame = SendFrame(1, 0, PayloadSize)

// RunOps runs n operations of scenario sc on side against srv, a lean
// Server (in sink mode for ScenarioPublish, not for the others), and
// returns what it measured. The library's side starts a Broker first and
// stops it after, so a count of the whole call includes both: counting
// two values of n and taking the difference leaves the operations alone.
// The receipts scenario keeps a window of 1,000. Instruction counts
// (another process running this under a profiler) use it.
func RunOps(ctx context.Context, sc Scenario, side Side, srv *Server, n int) (Throughput, error) {
	if (sc == ScenarioPublish) != srv.cfg.Sink {
		return Throughput{}, fmt.Errorf("bench: scenario %s needs a server with Sink %v", sc, sc == ScenarioPublish)
	}
	t := &target{addr: srv.Addr()}
	if sc == ScenarioPublish {
		t.sink = srv
	}
	if side == SideLibrary {
		b, err := StartBroker(ctx, srv.URL())
		if err != nil {
			return Throughput{}, err
		}
		defer b.Stop(context.Background())
		t.lib = b
	}
	return t.loop(ctx, sc, side, 1000, Count(n))
}

// Run measures every scenario, raw and through the library, against the
// lean server and, when Options.SecondServer is set, against the second
// server too, all loops of a scenario taking turns, and returns the
// report.
func Run(ctx context.Context, o Options) (*Report, error) {
	o.defaults()
	r := newReport(o)
	rrServer, err := NewServer(ServerConfig{Partitions: 4})
	if err != nil {
		return nil, err
	}
	defer rrServer.Close()
	sink, err := NewServer(ServerConfig{Sink: true})
	if err != nil {
		return nil, err
	}
	defer sink.Close()
	lean, err := StartBroker(ctx, rrServer.URL())
	if err != nil {
		return nil, err
	}
	defer lean.Stop(context.Background())
	pub, err := StartBroker(ctx, sink.URL())
	if err != nil {
		return nil, err
	}
	defer pub.Stop(context.Background())
	targets := []*target{{addr: rrServer.Addr(), lib: lean}}
	sinks := []*target{{addr: sink.Addr(), lib: pub, sink: sink}}

	var second *Report
	if o.SecondServer != nil {
		url, stop, err := o.SecondServer(ctx)
		if err != nil {
			return nil, fmt.Errorf("bench: second server: %w", err)
		}
		defer stop()
		b, err := StartBroker(ctx, url)
		if err != nil {
			return nil, fmt.Errorf("bench: second server: %w", err)
		}
		defer b.Stop(context.Background())
		targets = append(targets, &target{addr: strings.TrimPrefix(url, "pulsar://"), lib: b})
		second = newReport(o)
	}
	reports := []*Report{r, second}

	// measure runs scenario sc on every target, raw and library loops
	// taking turns, and records the figures of target i in reports[i]
	// with add(i, raw, lib, rawAllocs, libAllocs).
	measure := func(name string, sc Scenario, on []*target, add func(i int, raw, lib Throughput, rawAllocs, libAllocs float64)) error {
		o.progress("%s", name)
		// Where the raw loop has two shapes, both run, and the faster is
		// the ceiling.
		sides := []Side{SideRaw, SideLibrary}
		if sc == ScenarioRR64 || sc == ScenarioRR64Async || sc == ScenarioReceipts {
			sides = []Side{SideRaw, SideRawPipelined, SideLibrary}
		}
		var loops []func() (Throughput, error)
		for _, t := range on {
			for _, side := range sides {
				loops = append(loops, func() (Throughput, error) {
					return t.loop(ctx, sc, side, o.Window, For(o.Duration/time.Duration(o.Rounds)))
				})
			}
		}
		ts, allocs, err := interleave(o.Rounds, loops...)
		if err != nil {
			return fmt.Errorf("bench: %s: %w", name, err)
		}
		for i := range on {
			k := i * len(sides)
			best := k
			for j := k + 1; j < k+len(sides)-1; j++ {
				if ts[j].PerSecond() > ts[best].PerSecond() {
					best = j
				}
			}
			lib := k + len(sides) - 1
			add(i, ts[best], ts[lib], allocs[best], allocs[lib])
		}
		return nil
	}
	for _, step := range []struct {
		name string
		sc   Scenario
		on   []*target
		add  func(i int, raw, lib Throughput, rawAllocs, libAllocs float64)
	}{
		{"request/response, 1 in flight", ScenarioRR1, targets, func(i int, raw, lib Throughput, ra, la float64) {
			reports[i].addRequests(1, raw, lib, ra, la)
		}},
		{"request/response, 64 in flight", ScenarioRR64, targets, func(i int, raw, lib Throughput, ra, la float64) {
			reports[i].addRequests(64, raw, lib, ra, la)
		}},
		// RequestAsync's raw side is the 64-in-flight raw loop, measured
		// again in turns with it.
		{"request/response, 64 in flight, RequestAsync", ScenarioRR64Async, targets, func(i int, raw, lib Throughput, ra, la float64) {
			reports[i].addAsyncRequests(64, raw, lib, ra, la)
		}},
		{"publish into the sink", ScenarioPublish, sinks, func(i int, raw, lib Throughput, ra, la float64) {
			reports[i].addPublish(raw, lib, ra, la)
		}},
		{fmt.Sprintf("publish with receipts, window %d", o.Window), ScenarioReceipts, targets, func(i int, raw, lib Throughput, ra, la float64) {
			reports[i].addRate("receipts", "publish with receipts (1 KiB, window "+fmt.Sprint(o.Window)+")", "messages/s", raw, lib, ra, la)
		}},
		{"delivery to a consumer", ScenarioDelivery, targets[:1], func(i int, raw, lib Throughput, ra, la float64) {
			reports[i].addRate("delivery", "delivery to a consumer Handler (1 KiB)", "messages/s", raw, lib, ra, la)
		}},
	} {
		if err := measure(step.name, step.sc, step.on, step.add); err != nil {
			return nil, err
		}
	}
	if second != nil {
		r.mergeSecond(second)
	}

	if o.Network != nil {
		o.progress("memory per idle connection, %d connections", o.IdleConns)
		m, err := o.measureIdle(ctx)
		if err != nil {
			return nil, fmt.Errorf("bench: idle memory: %w", err)
		}
		r.addIdle(m)
	}

	o.progress("reconnect, %d connections", o.ReconnectConns)
	rc, err := MeasureReconnect(ctx, o.ReconnectConns)
	if err != nil {
		return nil, fmt.Errorf("bench: reconnect: %w", err)
	}
	r.addReconnect(rc)
	return r, nil
}
