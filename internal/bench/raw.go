package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"

	"net"
	"sync/atomic"
	"time"

	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// rawConn is the raw client: one TCP connection, one buffered writer, and
// frame.Reader to decode what comes back. It is the ceiling: the least a
// client must do to get the same work done.
type rawConn struct {
	nc net.Conn
	bw *bufio.Writer
	fr *frame.Reader
}

// errUnexpected is an answer the raw client did not expect.
var errUnexpected = errors.New("bench: unexpected answer")

// dialRaw connects to addr and completes the handshake.
func dialRaw(ctx context.Context, addr string) (*rawConn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("bench: dial: %w", err)
	}
	c := &rawConn{nc: nc, bw: bufio.NewWriterSize(nc, ioBufferSize), fr: frame.NewReader(nc, 0)}
	if err := c.handshake(); err != nil {
		_ = nc.Close()
		return nil, err
	}
	return c, nil
}

func (c *rawConn) handshake() error {
	if _, err := c.bw.Write(connectFrame); err != nil {
		return err
	}
	if err := c.bw.Flush(); err != nil {
		return err
	}
	f, err := c.fr.Next()
	if err != nil {
		return fmt.Errorf("bench: handshake: %w", err)
	}
	if f.Command.GetType() != pulsarpb.BaseCommand_CONNECTED {
		return fmt.Errorf("%w: %v to CONNECT", errUnexpected, f.Command.GetType())
	}
	return nil
}

func (c *rawConn) Close() error { return c.nc.Close() }

// request writes cmd and reads its answer; for set-up only.
func (c *rawConn) request(cmd *pulsarpb.BaseCommand) (*pulsarpb.BaseCommand, error) {
	buf, err := frame.AppendCommand(nil, cmd)
	if err != nil {
		return nil, err
	}
	if _, err := c.bw.Write(buf); err != nil {
		return nil, err
	}
	if err := c.bw.Flush(); err != nil {
		return nil, err
	}
	f, err := c.fr.Next()
	if err != nil {
		return nil, err
	}
	return f.Command, nil
}

// RawRequests runs request/response over one raw connection with inflight
// PARTITIONED_METADATA requests outstanding: the calling goroutine writes,
// flushing whenever the window is full; one reader goroutine decodes the
// answers and matches each to its request by id.
func RawRequests(ctx context.Context, addr string, inflight int, budget Budget) (Throughput, error) {
	c, err := dialRaw(ctx, addr)
	if err != nil {
		return Throughput{}, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.nc.Close() })
	defer stop()

	// sent[id % inflight] holds the id and send time of a request in
	// flight; answers come in order here, and a mismatch is reported.
	type slot struct{ id, at atomic.Int64 }
	sent := make([]slot, inflight)
	tokens := make(chan struct{}, inflight)
	var hist Histogram
	var answered atomic.Int64
	readErr := make(chan error, 1)
	go func() {
		readErr <- func() error {
			for {
				f, err := c.fr.Next()
				if err != nil {
					return err
				}
				id, ok := frame.RequestID(f.Command)
				if !ok || f.Command.GetType() != pulsarpb.BaseCommand_PARTITIONED_METADATA_RESPONSE {
					return fmt.Errorf("%w: %v", errUnexpected, f.Command.GetType())
				}
				s := &sent[id%uint64(inflight)]
				if uint64(s.id.Load()) != id {
					return fmt.Errorf("%w: answer to request %d, which is not in flight", errUnexpected, id)
				}
				hist.Record(time.Duration(time.Now().UnixNano() - s.at.Load()))
				answered.Add(1)
				<-tokens
			}
		}()
	}()
	buf := make([]byte, 0, 256)
	start := time.Now()
	n := 0
	for ; !budget.Done(n); n++ {
		select {
		case tokens <- struct{}{}:
		default:
			// The window is full: send what is buffered and wait.
			if err := c.bw.Flush(); err != nil {
				return Throughput{}, err
			}
			select {
			case tokens <- struct{}{}:
			case err := <-readErr:
				return Throughput{}, err
			}
		}
		id := uint64(n)
		s := &sent[id%uint64(inflight)]
		s.id.Store(int64(id))
		s.at.Store(time.Now().UnixNano())
		buf = partitionsTemplate.appendTo(buf[:0], id)
		if _, err := c.bw.Write(buf); err != nil {
			return Throughput{}, err
		}
		if inflight == 1 {
			if err := c.bw.Flush(); err != nil {
				return Throughput{}, err
			}
		}
	}
	if err := c.bw.Flush(); err != nil {
		return Throughput{}, err
	}
	// Wait for the last answers: the window drains when every token can
	// be taken again.
	for range inflight {
		select {
		case tokens <- struct{}{}:
		case err := <-readErr:
			return Throughput{}, err
		}
	}
	elapsed := time.Since(start)
	if got := answered.Load(); got != int64(n) {
		return Throughput{}, fmt.Errorf("bench: %d answers to %d requests", got, n)
	}
	_ = c.Close()
	<-readErr
	return Throughput{Ops: n, Elapsed: elapsed, Latency: &hist}, nil
}

// RawPublish writes the pre-encoded frame into the sink srv through one
// buffered writer, and waits until the sink has read every byte.
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
		if _, err := c.bw.Write(encoded); err != nil {
			return Throughput{}, err
		}
	}
	if err := c.bw.Flush(); err != nil {
		return Throughput{}, err
	}
	total := int64(n) * int64(len(encoded))
	if err := srv.WaitSunk(ctx, base+total); err != nil {
		return Throughput{}, err
	}
	return Throughput{Ops: n, Bytes: total, Elapsed: time.Since(start)}, nil
}

// RawReceipts publishes SEND frames of size-byte payloads with at most
// window of them unacknowledged, and reads the SEND_RECEIPTs on one
// reader goroutine, checking that they come in order.
func RawReceipts(ctx context.Context, addr string, window, size int, budget Budget) (Throughput, error) {
	c, err := dialRaw(ctx, addr)
	if err != nil {
		return Throughput{}, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.nc.Close() })
	defer stop()
	const producer = 1
	if resp, err := c.request(producerCommand(producer)); err != nil {
		return Throughput{}, err
	} else if resp.GetType() != pulsarpb.BaseCommand_PRODUCER_SUCCESS {
		return Throughput{}, fmt.Errorf("%w: %v to PRODUCER", errUnexpected, resp.GetType())
	}
	send := sendTemplate(producer, size)
	tokens := make(chan struct{}, window)
	var receipts atomic.Int64
	readErr := make(chan error, 1)
	go func() {
		readErr <- func() error {
			for want := uint64(0); ; want++ {
				f, err := c.fr.Next()
				if err != nil {
					return err
				}
				r := f.Command.GetSendReceipt()
				if r == nil || r.GetSequenceId() != want {
					return fmt.Errorf("%w: %v (sequence id %d, want %d)", errUnexpected, f.Command.GetType(), r.GetSequenceId(), want)
				}
				receipts.Add(1)
				<-tokens
			}
		}()
	}()
	start := time.Now()
	n := 0
	for ; !budget.Done(n); n++ {
		select {
		case tokens <- struct{}{}:
		default:
			if err := c.bw.Flush(); err != nil {
				return Throughput{}, err
			}
			select {
			case tokens <- struct{}{}:
			case err := <-readErr:
				return Throughput{}, err
			}
		}
		if _, err := c.bw.Write(send.set(uint64(n))); err != nil {
			return Throughput{}, err
		}
	}
	if err := c.bw.Flush(); err != nil {
		return Throughput{}, err
	}
	for range window {
		select {
		case tokens <- struct{}{}:
		case err := <-readErr:
			return Throughput{}, err
		}
	}
	elapsed := time.Since(start)
	if got := receipts.Load(); got != int64(n) {
		return Throughput{}, fmt.Errorf("bench: %d receipts for %d sends", got, n)
	}
	_ = c.Close()
	<-readErr
	return Throughput{Ops: n, Bytes: int64(n) * int64(len(send.buf)), Elapsed: elapsed}, nil
}

// RawDelivery subscribes and reads MESSAGE frames, decoding each with
// frame.Reader (which checks the CRC32C) and granting permits as a
// consumer with a 1,000-message receiver queue does.
func RawDelivery(ctx context.Context, addr string, budget Budget) (Throughput, error) {
	c, err := dialRaw(ctx, addr)
	if err != nil {
		return Throughput{}, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.nc.Close() })
	defer stop()
	const consumer = 1
	if resp, err := c.request(subscribeCommand(consumer)); err != nil {
		return Throughput{}, err
	} else if resp.GetType() != pulsarpb.BaseCommand_SUCCESS {
		return Throughput{}, fmt.Errorf("%w: %v to SUBSCRIBE", errUnexpected, resp.GetType())
	}
	more := mustEncode(flowCommand(consumer, refill))
	if _, err := c.bw.Write(mustEncode(flowCommand(consumer, queueSize))); err != nil {
		return Throughput{}, err
	}
	if err := c.bw.Flush(); err != nil {
		return Throughput{}, err
	}
	start := time.Now()
	n, bytes := 0, int64(0)
	for !budget.Done(n) {
		f, err := c.fr.Next()
		if err != nil {
			return Throughput{}, err
		}
		if f.Command.GetType() != pulsarpb.BaseCommand_MESSAGE || f.Payload == nil || !f.Payload.ChecksumOK {
			return Throughput{}, fmt.Errorf("%w: %v", errUnexpected, f.Command.GetType())
		}
		n++
		bytes += int64(len(f.Payload.Data))
		if n%refill == 0 {
			if _, err := c.bw.Write(more); err != nil {
				return Throughput{}, err
			}
			if err := c.bw.Flush(); err != nil {
				return Throughput{}, err
			}
		}
	}
	return Throughput{Ops: n, Bytes: bytes, Elapsed: time.Since(start)}, nil
}
