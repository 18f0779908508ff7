package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// rawConn is the raw client: one TCP connection, one goroutine, a reused
// read buffer that frames are sliced from in place, and a reused write
// buffer that holds everything there is to send before one write. It
// decodes of each answer only the fields a correct client must check
// (type, request or sequence id, status), by scanning protobuf varints.
// It is the ceiling: see docs/benchmarks.md for why nothing correct does
// less.
type rawConn struct {
	nc   net.Conn
	in   []byte // read buffer: in[r:w] is read and not yet taken
	r, w int
	out  []byte // write buffer, reused
}

// errUnexpected is an answer the raw client did not expect.
var errUnexpected = errors.New("bench: unexpected answer")

// rawIdleBuffer is the read buffer of a raw connection until it runs a
// loop (idle connections keep it); loops take ioBufferSize.
const rawIdleBuffer = 512

// dialRaw connects to addr and completes the handshake.
func dialRaw(ctx context.Context, addr string) (*rawConn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("bench: dial: %w", err)
	}
	c := &rawConn{nc: nc, in: make([]byte, rawIdleBuffer)}
	if err := c.handshake(); err != nil {
		_ = nc.Close()
		return nil, err
	}
	return c, nil
}

func (c *rawConn) handshake() error {
	resp, err := c.request(connectFrame)
	if err != nil {
		return fmt.Errorf("bench: handshake: %w", err)
	}
	if resp.GetType() != pulsarpb.BaseCommand_CONNECTED {
		return fmt.Errorf("%w: %v to CONNECT", errUnexpected, resp.GetType())
	}
	return nil
}

func (c *rawConn) Close() error { return c.nc.Close() }

// loop readies the connection for a measured loop: a full-size read
// buffer, and the loop's goroutine unblocked when ctx ends.
func (c *rawConn) loop(ctx context.Context) (stop func() bool) {
	if len(c.in) < ioBufferSize {
		in := make([]byte, ioBufferSize)
		c.w = copy(in, c.in[c.r:c.w])
		c.in, c.r = in, 0
	}
	return context.AfterFunc(ctx, func() { _ = c.nc.Close() })
}

// request writes an encoded frame and decodes the answer in full; for
// set-up only.
func (c *rawConn) request(encoded []byte) (*pulsarpb.BaseCommand, error) {
	if _, err := c.nc.Write(encoded); err != nil {
		return nil, err
	}
	body, err := c.next()
	if err != nil {
		return nil, err
	}
	f, err := frame.Parse(body)
	if err != nil {
		return nil, err
	}
	return f.Command, nil
}

// ready reports whether a whole frame is buffered.
func (c *rawConn) ready() bool {
	if c.w-c.r < 4 {
		return false
	}
	return c.r+4+int(binary.BigEndian.Uint32(c.in[c.r:])) <= c.w
}

// next returns the body of the next frame (the bytes after its total
// size), reading only when no whole frame is buffered. The body aliases
// the read buffer: it is valid until the next call.
func (c *rawConn) next() ([]byte, error) {
	for {
		if c.w-c.r >= 4 {
			n := binary.BigEndian.Uint32(c.in[c.r:])
			if n < 4 || n > maxFrame {
				return nil, fmt.Errorf("%w: frame size %d", errUnexpected, n)
			}
			if end := c.r + 4 + int(n); end <= c.w {
				body := c.in[c.r+4 : end]
				c.r = end
				return body, nil
			} else if end-c.r > len(c.in) {
				in := make([]byte, end-c.r)
				c.w = copy(in, c.in[c.r:c.w])
				c.in, c.r = in, 0
			}
		}
		if err := c.fill(); err != nil {
			return nil, err
		}
	}
}

// fill moves the unread bytes to the front and reads once.
func (c *rawConn) fill() error {
	if c.r > 0 {
		c.w = copy(c.in, c.in[c.r:c.w])
		c.r = 0
	}
	for {
		m, err := c.nc.Read(c.in[c.w:])
		c.w += m
		if m > 0 {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// flush writes the write buffer in one call and empties it.
func (c *rawConn) flush() error {
	if len(c.out) == 0 {
		return nil
	}
	_, err := c.nc.Write(c.out)
	c.out = c.out[:0]
	return err
}

// answer scans the command of a frame body: its type, and fields 1, 2 and
// 3 of its sub-command (varints), which hold what the raw loops check of
// every hot answer: PARTITIONED_METADATA_RESPONSE's partitions, request
// id and response; SEND_RECEIPT's producer and sequence ids; MESSAGE's
// consumer id (its message id, field 2, is a message: not returned). It
// walks each field once, without a callback: in the Pulsar protocol the
// sub-command is the BaseCommand's field whose number is the type's.
func answer(body []byte) (typ pulsarpb.BaseCommand_Type, f [4]uint64, rest []byte, ok bool) {
	cmd, ok := splitFrame(body)
	if !ok {
		return 0, f, nil, false
	}
	var t uint64
	var seen bool
	var sub []byte
	subNum := -1
	b := cmd
	if len(b) > 2 && b[0] == 1<<3 && b[1] < 0x80 { // the type first, in one byte, as encoders write it
		t, seen, b = uint64(b[1]), true, b[2:]
	}
	for len(b) > 0 {
		num, wt, v, s, n := field(b)
		if n == 0 {
			return 0, f, nil, false
		}
		b = b[n:]
		switch {
		case num == 1 && wt == 0:
			t, seen = v, true
		case wt == 2 && (subNum < 0 || seen && uint64(num) == t):
			sub, subNum = s, num
		}
	}
	if !seen || uint64(subNum) != t {
		return 0, f, nil, false
	}
	for len(sub) > 0 {
		if tag := sub[0]; tag < 0x80 && tag&7 == 0 { // a varint field with a one-byte tag: inline
			v, m := uint64(0), 1
			if len(sub) > 1 && sub[1] < 0x80 {
				v = uint64(sub[1])
			} else if v, m = uvarintLong(sub[1:]); m <= 0 {
				return 0, f, nil, false
			}
			if num := int(tag >> 3); num < len(f) {
				f[num] = v
			}
			sub = sub[1+m:]
			continue
		}
		num, wt, v, _, n := field(sub)
		if n == 0 {
			return 0, f, nil, false
		}
		sub = sub[n:]
		if wt == 0 && num < len(f) {
			f[num] = v
		}
	}
	return pulsarpb.BaseCommand_Type(t), f, body[4+len(cmd):], true
}

// Scenario names a measured loop for RunOps.
type Scenario string

// The scenarios Run measures.
const (
	ScenarioRR1       Scenario = "rr1"       // request/response, 1 in flight
	ScenarioRR64      Scenario = "rr64"      // 64 in flight (the library: 64 blocked goroutines)
	ScenarioRR64Async Scenario = "rr64async" // 64 in flight (the library: RequestAsyncLent from one goroutine)
	ScenarioPublish   Scenario = "publish"   // pre-encoded 1 KiB SEND frames, no answers awaited
	ScenarioReceipts  Scenario = "receipts"  // 1 KiB SEND frames with receipts, window of 1,000
	ScenarioDelivery  Scenario = "delivery"  // MESSAGE frames to a consumer
)

// Shape is how a raw loop with several operations in flight is laid out.
type Shape int

// The shapes of a raw loop. Neither is the faster everywhere: against a
// server that answers a batch at once (the lean one) Lockstep does the
// least work; against one that answers frame by frame as it goes
// (pulsartest), Pipelined keeps both directions busy. Run measures both
// and takes the faster as the ceiling.
const (
	// Lockstep: one goroutine writes everything the window allows in one
	// write, then reads at least one answer and every other already
	// buffered, and so on.
	Lockstep Shape = iota
	// Pipelined: the caller writes, gathering what the window allows into
	// one write, while one reader goroutine takes the answers; the writer
	// waits only when the window is full, and the reader wakes it once
	// per batch of answers, not per answer.
	Pipelined
)

// windowed runs budget's operations on c with at most window unanswered:
// put appends operation i's frame, take checks the answer to operation
// i. It returns the number of operations done.
func (c *rawConn) windowed(ctx context.Context, shape Shape, window int, budget Budget, put func(dst []byte, i int) []byte, take func(body []byte, i int) error) (int, error) {
	defer c.loop(ctx)()
	if shape == Pipelined {
		return c.pipelined(window, budget, put, take)
	}
	n, answered := 0, 0
	for {
		for n-answered < window && len(c.out) < rawBatch && !budget.Done(n) {
			c.out = put(c.out, n)
			n++
		}
		if err := c.flush(); err != nil {
			return 0, err
		}
		if answered == n {
			return n, nil
		}
		for {
			body, err := c.next()
			if err != nil {
				return 0, err
			}
			if err := take(body, answered); err != nil {
				return 0, err
			}
			answered++
			if !c.ready() {
				break
			}
		}
	}
}

func (c *rawConn) pipelined(window int, budget Budget, put func(dst []byte, i int) []byte, take func(body []byte, i int) error) (int, error) {
	var answered atomic.Int64
	var waiting atomic.Bool
	wake := make(chan struct{}, 1)
	readErr := make(chan error, 1)
	go func() {
		readErr <- func() error {
			for i := 0; ; {
				body, err := c.next()
				if err != nil {
					return err
				}
				if err := take(body, i); err != nil {
					return err
				}
				i++
				if c.ready() {
					continue
				}
				answered.Store(int64(i))
				if waiting.Load() && waiting.CompareAndSwap(true, false) {
					select {
					case wake <- struct{}{}:
					default:
					}
				}
			}
		}()
	}()
	n := 0
	for {
		for n-int(answered.Load()) < window && len(c.out) < rawBatch && !budget.Done(n) {
			c.out = put(c.out, n)
			n++
		}
		if err := c.flush(); err != nil {
			return 0, err
		}
		a := int(answered.Load())
		if a == n && budget.Done(n) {
			break
		}
		if n-a < window && !budget.Done(n) {
			continue
		}
		// Nothing to send until answers come: wait for the reader, which
		// wakes a waiter after each batch. A wake left over from an
		// earlier wait only makes this loop look again.
		waiting.Store(true)
		if int(answered.Load()) != a {
			waiting.Store(false)
			continue
		}
		select {
		case <-wake:
		case err := <-readErr:
			return 0, err
		}
	}
	// Stop the reader: closing the connection ends its read.
	_ = c.nc.Close()
	<-readErr
	return n, nil
}

// RawRequests runs request/response over one raw connection with at most
// inflight PARTITIONED_METADATA requests outstanding, in the given shape,
// checking that each answer is to the oldest request in flight (answers
// come in order on one connection) and succeeded.
func RawRequests(ctx context.Context, addr string, inflight int, shape Shape, budget Budget) (Throughput, error) {
	c, err := dialRaw(ctx, addr)
	if err != nil {
		return Throughput{}, err
	}
	defer c.Close()
	sentAt := make([]atomic.Int64, inflight) // send time of request id, at id % inflight
	var hist Histogram
	start := time.Now()
	n, err := c.windowed(ctx, shape, inflight, budget, func(dst []byte, i int) []byte {
		sentAt[i%inflight].Store(time.Now().UnixNano())
		return partitionsTemplate.appendTo(dst, uint64(i))
	}, func(body []byte, i int) error {
		typ, f, _, ok := answer(body)
		if !ok || typ != pulsarpb.BaseCommand_PARTITIONED_METADATA_RESPONSE ||
			f[2] != uint64(i) || f[3] != uint64(pulsarpb.CommandPartitionedTopicMetadataResponse_Success) {
			return fmt.Errorf("%w: %v (request id %d, response %d) to request %d", errUnexpected, typ, f[2], f[3], i)
		}
		hist.Record(time.Duration(time.Now().UnixNano() - sentAt[i%inflight].Load()))
		return nil
	})
	if err != nil {
		return Throughput{}, err
	}
	return Throughput{Ops: n, Elapsed: time.Since(start), Latency: &hist}, nil
}

// rawBatch is how many bytes of frames a raw loop gathers at most
// before one write. With answers awaited it also bounds what Lockstep
// writes before it reads again, so that a large window cannot leave
// client and server both blocked writing to each other (receipts for a
// 1,000-send window fit in the socket buffers; for 100,000 they do not).
// Publishing into the sink, measured in alternating rounds on this machine:
// 128 KiB and 256 KiB the fastest (within noise of each other), 64 KiB
// (the old bufio.Writer's) 15-20% slower, 512 KiB and 1 MiB 5-15%
// slower (the batch no longer stays in the cache between the copy in and
// the kernel's copy out).
const rawBatch = 256 << 10

// RawPublish writes the pre-encoded frame into the sink srv, gathering
// rawBatch bytes per write, and waits until the sink has read
// every byte.
func RawPublish(ctx context.Context, srv *Server, encoded []byte, budget Budget) (Throughput, error) {
	c, err := dialRaw(ctx, srv.Addr())
	if err != nil {
		return Throughput{}, err
	}
	defer c.Close()
	base := srv.Sunk()
	start := time.Now()
	n := 0
	for ; !budget.Done(n); n++ {
		if len(c.out)+len(encoded) > rawBatch {
			if err := c.flush(); err != nil {
				return Throughput{}, err
			}
		}
		c.out = append(c.out, encoded...)
	}
	if err := c.flush(); err != nil {
		return Throughput{}, err
	}
	total := int64(n) * int64(len(encoded))
	if err := srv.WaitSunk(ctx, base+total); err != nil {
		return Throughput{}, err
	}
	return Throughput{Ops: n, Bytes: total, Elapsed: time.Since(start)}, nil
}

// RawReceipts publishes SEND frames of size-byte payloads with at most
// window of them unacknowledged, in the given shape, checking that the
// receipts come in order.
func RawReceipts(ctx context.Context, addr string, window, size int, shape Shape, budget Budget) (Throughput, error) {
	c, err := dialRaw(ctx, addr)
	if err != nil {
		return Throughput{}, err
	}
	defer c.Close()
	const producer = 1
	if resp, err := c.request(mustEncode(producerCommand(producer))); err != nil {
		return Throughput{}, err
	} else if resp.GetType() != pulsarpb.BaseCommand_PRODUCER_SUCCESS {
		return Throughput{}, fmt.Errorf("%w: %v to PRODUCER", errUnexpected, resp.GetType())
	}
	send := sendTemplate(producer, size)
	start := time.Now()
	n, err := c.windowed(ctx, shape, window, budget, func(dst []byte, i int) []byte {
		return send.appendTo(dst, uint64(i))
	}, func(body []byte, i int) error {
		typ, f, _, ok := answer(body)
		if !ok || typ != pulsarpb.BaseCommand_SEND_RECEIPT || f[1] != producer || f[2] != uint64(i) {
			return fmt.Errorf("%w: %v (sequence id %d, want %d)", errUnexpected, typ, f[2], i)
		}
		return nil
	})
	if err != nil {
		return Throughput{}, err
	}
	return Throughput{Ops: n, Bytes: int64(n) * int64(len(send.buf)), Elapsed: time.Since(start)}, nil
}

// RawDelivery subscribes and reads MESSAGE frames, checking each one's
// type, consumer id and CRC32C, and granting permits as a consumer with
// a 1,000-message receiver queue does.
func RawDelivery(ctx context.Context, addr string, budget Budget) (Throughput, error) {
	c, err := dialRaw(ctx, addr)
	if err != nil {
		return Throughput{}, err
	}
	defer c.Close()
	const consumer = 1
	if resp, err := c.request(mustEncode(subscribeCommand(consumer))); err != nil {
		return Throughput{}, err
	} else if resp.GetType() != pulsarpb.BaseCommand_SUCCESS {
		return Throughput{}, fmt.Errorf("%w: %v to SUBSCRIBE", errUnexpected, resp.GetType())
	}
	defer c.loop(ctx)()
	more := mustEncode(flowCommand(consumer, refill))
	granted := budget.permits(0, queueSize)
	if _, err := c.nc.Write(mustEncode(flowCommand(consumer, uint32(granted)))); err != nil {
		return Throughput{}, err
	}
	start := time.Now()
	n, bytes := 0, int64(0)
	for !budget.Done(n) {
		body, err := c.next()
		if err != nil {
			return Throughput{}, err
		}
		typ, f, rest, ok := answer(body)
		if !ok || typ != pulsarpb.BaseCommand_MESSAGE || f[1] != consumer {
			return Throughput{}, fmt.Errorf("%w: %v", errUnexpected, typ)
		}
		data, ok := checkedPayload(rest)
		if !ok {
			return Throughput{}, fmt.Errorf("%w: a MESSAGE with a bad checksum or layout", errUnexpected)
		}
		n++
		bytes += int64(len(data))
		if n%refill == 0 {
			if k := budget.permits(granted, refill); k > 0 {
				grant := more
				if k < refill {
					grant = mustEncode(flowCommand(consumer, uint32(k))) // the budget's last permits
				}
				granted += k
				if _, err := c.nc.Write(grant); err != nil {
					return Throughput{}, err
				}
			}
		}
	}
	return Throughput{Ops: n, Bytes: bytes, Elapsed: time.Since(start)}, nil
}

// checkedPayload checks the CRC32C of a payload section (magic,
// checksum, metadata size, metadata, payload) and returns the payload.
func checkedPayload(b []byte) ([]byte, bool) {
	if len(b) < 10 || binary.BigEndian.Uint16(b) != frame.MagicChecksum ||
		frame.Checksum(b[6:]) != binary.BigEndian.Uint32(b[2:]) {
		return nil, false
	}
	md := binary.BigEndian.Uint32(b[6:])
	if uint64(md) > uint64(len(b)-10) {
		return nil, false
	}
	return b[10+md:], true
}
