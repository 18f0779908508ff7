package bench

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"time"
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

// Run measures every scenario, raw and through the library, in this
// process, one after the other, and returns the report.
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

	lib, err := StartBroker(ctx, rrServer.URL())
	if err != nil {
		return nil, err
	}
	defer lib.Stop(context.Background())

	// round is the budget of one turn, from when it is called.
	round := func() Budget { return For(o.Duration / time.Duration(o.Rounds)) }
	for _, inflight := range []int{1, 64} {
		o.progress("request/response, %d in flight", inflight)
		loops := []func() (Throughput, error){
			func() (Throughput, error) { return RawRequests(ctx, rrServer.Addr(), inflight, round()) },
			func() (Throughput, error) { return LibRequests(ctx, lib, inflight, round()) },
		}
		if inflight > 1 {
			loops = append(loops, func() (Throughput, error) { return LibRequestsAsync(ctx, lib, inflight, round()) })
		}
		t, allocs, err := interleave(o.Rounds, loops...)
		if err != nil {
			return nil, fmt.Errorf("bench: request/response, %d in flight: %w", inflight, err)
		}
		r.addRequests(inflight, t[0], t[1], allocs[0], allocs[1])
		if inflight > 1 {
			r.addAsyncRequests(inflight, t[0], t[2], allocs[0], allocs[2])
		}
	}

	o.progress("publish into the sink")
	encoded := SendFrame(1, 0, PayloadSize)
	pub, err := StartBroker(ctx, sink.URL())
	if err != nil {
		return nil, err
	}
	defer pub.Stop(context.Background())
	t, allocs, err := interleave(o.Rounds,
		func() (Throughput, error) { return RawPublish(ctx, sink, encoded, round()) },
		func() (Throughput, error) { return LibPublish(ctx, pub, sink, encoded, round()) })
	if err != nil {
		return nil, fmt.Errorf("bench: publish: %w", err)
	}
	r.addPublish(t[0], t[1], allocs[0], allocs[1])

	o.progress("publish with receipts, window %d", o.Window)
	t, allocs, err = interleave(o.Rounds,
		func() (Throughput, error) { return RawReceipts(ctx, rrServer.Addr(), o.Window, PayloadSize, round()) },
		func() (Throughput, error) { return LibReceipts(ctx, lib, o.Window, PayloadSize, round()) })
	if err != nil {
		return nil, fmt.Errorf("bench: publish with receipts: %w", err)
	}
	r.addRate("receipts", "publish with receipts (1 KiB, window "+fmt.Sprint(o.Window)+")", "messages/s", t[0], t[1], allocs[0], allocs[1])

	o.progress("delivery to a consumer")
	t, allocs, err = interleave(o.Rounds,
		func() (Throughput, error) { return RawDelivery(ctx, rrServer.Addr(), round()) },
		func() (Throughput, error) { return LibDelivery(ctx, lib, round()) })
	if err != nil {
		return nil, fmt.Errorf("bench: delivery: %w", err)
	}
	r.addRate("delivery", "delivery to a consumer Handler (1 KiB)", "messages/s", t[0], t[1], allocs[0], allocs[1])

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
