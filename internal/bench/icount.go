package bench

import (
	"context"
	"fmt"

	"github.com/pulsarconn/pulsarconn"
)

// Instruction counts: a second figure for every path, beside the times.
// Times on a shared machine drift by ±10% between runs; the number of
// instructions a client executes to do n operations does not. A counted
// run is one process (CountSide) that does n operations of one path, raw
// or through the library, against servers running in another process
// (the driver's), so that only the client is counted. The driver
// (CountInstructions, in icountrun.go) runs it under valgrind's callgrind
// twice, with n1 and n2 operations, and takes the difference per
// operation, which cancels start-up and set-up.

// Targets are the servers a counted run talks to: Addr is a lean
// request/response server (4 partitions), SinkAddr a discard sink.
type Targets struct {
	Addr, SinkAddr string
	// Hold, when set, is called by the sink path once it has handed
	// over its n frames and before it closes the connection; it returns
	// when the sink has read them all (the driver knows, not the
	// counted process), so that what the client still had to write is
	// written, and counted, before the connection closes.
	Hold func()
}

func (t Targets) hold() {
	if t.Hold != nil {
		t.Hold()
	}
}

// CountPath is one path whose instructions per operation are counted.
type CountPath struct {
	// Name identifies the path in flags, JSON and the baseline.
	Name string
	// Title describes it in the table.
	Title string
	// N1 and N2 are the operation counts of the two counted runs.
	N1, N2 int
	// Sink is true for the path that publishes into the sink: the
	// driver checks that the sink received n frames of SinkFrameLen()
	// before it lets the counted run end (Targets.Hold).
	Sink bool
	// LeanOnly is true for the paths pulsartest cannot serve (it has no
	// sink and no backlog to dispatch): they are counted against the
	// lean server only.
	LeanOnly bool
	// Raw and Library do n operations.
	Raw, Library func(ctx context.Context, t Targets, n int) error
}

// countWindow is the receipts window of the counted runs: smaller than
// the timed runs' so that the counted runs stay short under valgrind.
const countWindow = 100

// SinkFrameLen is the size of each frame the sink path publishes.
func SinkFrameLen() int { return len(SendFrame(1, 0, PayloadSize)) }

// CountPaths returns the counted paths, in the order of the table.
func CountPaths() []CountPath {
	lib := func(f func(context.Context, *pulsarconn.Broker, int) (Throughput, error)) func(context.Context, Targets, int) error {
		return func(ctx context.Context, t Targets, n int) error {
			b, err := StartBroker(ctx, "pulsar://"+t.Addr)
			if err != nil {
				return err
			}
			defer b.Stop(context.Background())
			_, err = f(ctx, b, n)
			return err
		}
	}
	rawRequests := func(inflight int) func(context.Context, Targets, int) error {
		return func(ctx context.Context, t Targets, n int) error {
			_, err := RawRequests(ctx, t.Addr, inflight, Lockstep, Count(n))
			return err
		}
	}
	return []CountPath{
		{
			Name: "rr1", Title: "request/response, 1 in flight", N1: 500, N2: 4500,
			Raw: rawRequests(1),
			Library: lib(func(ctx context.Context, b *pulsarconn.Broker, n int) (Throughput, error) {
				return LibRequests(ctx, b, 1, Count(n))
			}),
		},
		{
			Name: "rr64", Title: "request/response, 64 goroutines", N1: 2000, N2: 10000,
			Raw: rawRequests(64),
			Library: lib(func(ctx context.Context, b *pulsarconn.Broker, n int) (Throughput, error) {
				return LibRequests(ctx, b, 64, Count(n))
			}),
		},
		{
			Name: "rr64async", Title: "request/response, 64 in flight (RequestAsyncLent)", N1: 2000, N2: 10000,
			Raw: rawRequests(64),
			Library: lib(func(ctx context.Context, b *pulsarconn.Broker, n int) (Throughput, error) {
				return LibRequestsAsync(ctx, b, 64, Count(n))
			}),
		},
		{
			Name: "receipts", Title: fmt.Sprintf("publish with receipts (1 KiB, window %d)", countWindow), N1: 2000, N2: 10000,
			Raw: func(ctx context.Context, t Targets, n int) error {
				_, err := RawReceipts(ctx, t.Addr, countWindow, PayloadSize, Lockstep, Count(n))
				return err
			},
			Library: lib(func(ctx context.Context, b *pulsarconn.Broker, n int) (Throughput, error) {
				return LibReceipts(ctx, b, countWindow, PayloadSize, Count(n))
			}),
		},
		{
			Name: "sink", Title: "publish into a sink (1 KiB)", N1: 10000, N2: 90000, Sink: true, LeanOnly: true,
			Raw: countRawSink, Library: countLibSink,
		},
		{
			Name: "delivery", Title: "delivery to a consumer Handler (1 KiB)", N1: 2000, N2: 10000, LeanOnly: true,
			Raw: func(ctx context.Context, t Targets, n int) error {
				_, err := RawDelivery(ctx, t.Addr, Count(n))
				return err
			},
			Library: lib(func(ctx context.Context, b *pulsarconn.Broker, n int) (Throughput, error) {
				return LibDelivery(ctx, b, Count(n))
			}),
		},
	}
}

// countRawSink writes n pre-encoded SEND frames into the sink in batches
// of up to rawBatch bytes, as RawPublish does, and closes the connection once the
// sink has read them (t.Hold).
func countRawSink(ctx context.Context, t Targets, n int) error {
	c, err := dialRaw(ctx, t.SinkAddr)
	if err != nil {
		return err
	}
	defer c.Close()
	encoded := SendFrame(1, 0, PayloadSize)
	for range n {
		if len(c.out)+len(encoded) > rawBatch {
			if err := c.flush(); err != nil {
				return err
			}
		}
		c.out = append(c.out, encoded...)
	}
	if err := c.flush(); err != nil {
		return err
	}
	t.hold()
	return nil
}

// countLibSink hands n pre-encoded SEND frames to PublishMessage, as
// LibPublish does, and stops the Broker once the sink has read them
// (t.Hold).
func countLibSink(ctx context.Context, t Targets, n int) error {
	b, err := StartBroker(ctx, "pulsar://"+t.SinkAddr)
	if err != nil {
		return err
	}
	encoded := SendFrame(1, 0, PayloadSize)
	for range n {
		if err := b.PublishMessage(ctx, encoded); err != nil {
			_ = b.Stop(context.Background())
			return err
		}
	}
	t.hold()
	return b.Stop(ctx)
}

// CountSide does n operations of the named path and side: the body of a
// counted run.
func CountSide(ctx context.Context, path, side string, t Targets, n int) error {
	for _, p := range CountPaths() {
		if p.Name != path {
			continue
		}
		switch Side(side) {
		case SideRaw:
			return p.Raw(ctx, t, n)
		case SideLibrary:
			return p.Library(ctx, t, n)
		}
		return fmt.Errorf("bench: unknown side %q (want %s or %s)", side, SideRaw, SideLibrary)
	}
	return fmt.Errorf("bench: unknown counted path %q", path)
}
