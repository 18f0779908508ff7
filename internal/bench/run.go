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
	// Duration is how long each measured loop runs (default 2s).
	Duration time.Duration
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
	return Options{Duration: 150 * time.Millisecond, IdleConns: 500, ReconnectConns: 20}
}

func (o *Options) defaults() {
	if o.Duration <= 0 {
		o.Duration = 2 * time.Second
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

// counted runs f and returns its result with the heap allocations per
// operation made meanwhile, by every goroutine of the process (the
// benchmark server's hot paths allocate nothing, so they are the
// client's).
func counted(f func() (Throughput, error)) (Throughput, float64, error) {
	before := mallocs()
	t, err := f()
	if err != nil || t.Ops == 0 {
		return t, 0, err
	}
	return t, float64(mallocs()-before) / float64(t.Ops), nil
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

	for _, inflight := range []int{1, 64} {
		o.progress("request/response, %d in flight", inflight)
		raw, rawAllocs, err := counted(func() (Throughput, error) { return RawRequests(ctx, rrServer.Addr(), inflight, For(o.Duration)) })
		if err != nil {
			return nil, fmt.Errorf("bench: raw request/response: %w", err)
		}
		got, libAllocs, err := counted(func() (Throughput, error) { return LibRequests(ctx, lib, inflight, For(o.Duration)) })
		if err != nil {
			return nil, fmt.Errorf("bench: request/response: %w", err)
		}
		r.addRequests(inflight, raw, got, rawAllocs, libAllocs)
		if inflight > 1 {
			got, libAllocs, err = counted(func() (Throughput, error) { return LibRequestsAsync(ctx, lib, inflight, For(o.Duration)) })
			if err != nil {
				return nil, fmt.Errorf("bench: request/response with RequestAsync: %w", err)
			}
			r.addAsyncRequests(inflight, raw, got, rawAllocs, libAllocs)
		}
	}

	o.progress("publish into the sink")
	encoded := SendFrame(1, 0, PayloadSize)
	raw, rawAllocs, err := counted(func() (Throughput, error) { return RawPublish(ctx, sink, encoded, For(o.Duration)) })
	if err != nil {
		return nil, fmt.Errorf("bench: raw publish: %w", err)
	}
	pub, err := StartBroker(ctx, sink.URL())
	if err != nil {
		return nil, err
	}
	defer pub.Stop(context.Background())
	got, libAllocs, err := counted(func() (Throughput, error) { return LibPublish(ctx, pub, sink, encoded, For(o.Duration)) })
	if err != nil {
		return nil, fmt.Errorf("bench: publish: %w", err)
	}
	r.addPublish(raw, got, rawAllocs, libAllocs)

	o.progress("publish with receipts, window %d", o.Window)
	raw, rawAllocs, err = counted(func() (Throughput, error) {
		return RawReceipts(ctx, rrServer.Addr(), o.Window, PayloadSize, For(o.Duration))
	})
	if err != nil {
		return nil, fmt.Errorf("bench: raw receipts: %w", err)
	}
	got, libAllocs, err = counted(func() (Throughput, error) { return LibReceipts(ctx, lib, o.Window, PayloadSize, For(o.Duration)) })
	if err != nil {
		return nil, fmt.Errorf("bench: receipts: %w", err)
	}
	r.addRate("receipts", "publish with receipts (1 KiB, window "+fmt.Sprint(o.Window)+")", "messages/s", raw, got, rawAllocs, libAllocs)

	o.progress("delivery to a consumer")
	raw, rawAllocs, err = counted(func() (Throughput, error) { return RawDelivery(ctx, rrServer.Addr(), For(o.Duration)) })
	if err != nil {
		return nil, fmt.Errorf("bench: raw delivery: %w", err)
	}
	got, libAllocs, err = counted(func() (Throughput, error) { return LibDelivery(ctx, lib, For(o.Duration)) })
	if err != nil {
		return nil, fmt.Errorf("bench: delivery: %w", err)
	}
	r.addRate("delivery", "delivery to a consumer Handler (1 KiB)", "messages/s", raw, got, rawAllocs, libAllocs)

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
