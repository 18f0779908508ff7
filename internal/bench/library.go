package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// StartBroker starts a Broker for url (over TCP for pulsar:// URLs) and
// waits until it is connected. Extra options come after the benchmark's
// own.
func StartBroker(ctx context.Context, url string, opts ...pulsarconn.BrokerOption) (*pulsarconn.Broker, error) {
	b, err := pulsarconn.Start(url, opts...)
	if err != nil {
		return nil, err
	}
	if err := b.WaitConnected(ctx); err != nil {
		_ = b.Stop(context.Background())
		return nil, err
	}
	return b, nil
}

// LibRequests runs request/response through b: inflight goroutines each
// call PartitionedTopicMetadata in a loop, sharing the budget.
func LibRequests(ctx context.Context, b *pulsarconn.Broker, inflight int, budget Budget) (Throughput, error) {
	sh := &shared{b: budget}
	hists := make([]Histogram, inflight)
	errs := make([]error, inflight)
	var wg sync.WaitGroup
	start := time.Now()
	for g := range inflight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := &hists[g]
			for sh.take() {
				t0 := time.Now()
				if _, err := b.PartitionedTopicMetadata(ctx, Topic); err != nil {
					errs[g] = err
					sh.over.Store(true)
					return
				}
				h.Record(time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	var hist Histogram
	for g := range hists {
		if errs[g] != nil {
			return Throughput{}, errs[g]
		}
		hist.Merge(&hists[g])
	}
	return Throughput{Ops: int(hist.Count()), Elapsed: elapsed, Latency: &hist}, nil
}

// LibRequestsAsync runs request/response through b as the raw loop does:
// one goroutine sends PARTITIONED_METADATA requests with
// RequestAsyncLent, waiting while inflight are unanswered, and the done
// function takes the answers, checking each (no other requests may share
// b meanwhile: each answer's request id must follow the last one's). No
// goroutine waits per request.
func LibRequestsAsync(ctx context.Context, b *pulsarconn.Broker, inflight int, budget Budget) (Throughput, error) {
	// The core encodes the command before RequestAsync returns, so one
	// command serves every request.
	cmd := &pulsarpb.BaseCommand{
		Type:              pulsarpb.BaseCommand_PARTITIONED_METADATA.Enum(),
		PartitionMetadata: &pulsarpb.CommandPartitionedTopicMetadata{Topic: ptr(Topic), RequestId: ptr(uint64(0))},
	}
	// Answers come in order on one connection: sent[k % inflight] is the
	// send time of the k-th request, taken back by the k-th answer.
	sent := make([]int64, inflight)
	win := newWindow(inflight)
	var hist Histogram
	var answered int
	var lastID uint64
	done := func(resp *pulsarpb.BaseCommand, err error) {
		// done calls come one at a time (they are delivered in order),
		// so hist, answered and lastID need no lock.
		if err == nil {
			// The answers are lent (RequestAsyncLent): one released
			// too soon and reused for a later answer would carry a
			// later request id than the one after lastID.
			pm := resp.GetPartitionMetadataResponse()
			switch id := pm.GetRequestId(); {
			case pm == nil:
				err = fmt.Errorf("%w: %v", errUnexpected, resp.GetType())
			case answered > 0 && id != lastID+1:
				err = fmt.Errorf("%w: request id %d after %d", errUnexpected, id, lastID)
			default:
				lastID = id
			}
		}
		if err != nil {
			win.fail(err) // only a failure escapes: no allocation per answer
		}
		hist.Record(time.Duration(time.Now().UnixNano() - sent[answered%inflight]))
		answered++
		win.end()
	}
	defer context.AfterFunc(ctx, func() { win.fail(ctx.Err()) })()
	start := time.Now()
	n := 0
	for ; !budget.Done(n); n++ {
		// Wait as the raw loop does (window): every request ends
		// (answered, failed or timed out), and the end of ctx fails
		// the window. A select with ctx.Done cost ~450 instructions a
		// request (callgrind), a token channel ~300.
		if err := win.wait(n); err != nil {
			return Throughput{}, err
		}
		sent[n%inflight] = time.Now().UnixNano()
		if err := b.RequestAsyncLent(ctx, cmd, done); err != nil {
			return Throughput{}, err
		}
	}
	if err := win.drain(n); err != nil {
		return Throughput{}, err
	}
	elapsed := time.Since(start)
	return Throughput{Ops: n, Elapsed: elapsed, Latency: &hist}, nil
}

// LibPublish hands the pre-encoded frame to b.PublishMessage in a loop and
// waits until the sink srv has read every byte.
func LibPublish(ctx context.Context, b *pulsarconn.Broker, srv *Server, encoded []byte, budget Budget) (Throughput, error) {
	base := srv.Sunk()
	start := time.Now()
	n := 0
	for ; !budget.Done(n); n++ {
		if err := b.PublishMessage(ctx, encoded); err != nil {
			return Throughput{}, err
		}
	}
	total := int64(n) * int64(len(encoded))
	if err := srv.WaitSunk(ctx, base+total); err != nil {
		return Throughput{}, err
	}
	return Throughput{Ops: n, Bytes: total, Elapsed: time.Since(start)}, nil
}

// LibReceipts registers a producer on b, creates it (PRODUCER, with the
// Registration's Create), and publishes, with its Publish, SEND frames of size-byte payloads with at most window
// unacknowledged; its Handler takes the receipts, checking their order,
// and releases each (Push.Release).
func LibReceipts(ctx context.Context, b *pulsarconn.Broker, window, size int, budget Budget) (Throughput, error) {
	id := b.NewProducerID()
	win := newWindow(window)
	var receipts atomic.Int64
	h := pulsarconn.HandlerFunc(func(p pulsarconn.Push) {
		if p.Kind != pulsarconn.PushReceipt {
			win.fail(fmt.Errorf("%w: push %v (%v)", errUnexpected, p.Kind, p.Err))
			return
		}
		want := uint64(receipts.Load())
		got := p.Command.GetSendReceipt().GetSequenceId()
		p.Release() // done with it: the next receipt reuses its memory
		if got != want {
			win.fail(fmt.Errorf("%w: receipt for %d, want %d", errUnexpected, got, want))
			return
		}
		receipts.Add(1)
		win.end()
	})
	regCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	reg, err := b.RegisterProducer(regCtx, id, h)
	if err != nil {
		return Throughput{}, err
	}
	defer reg.Close(ctx)
	if _, err := reg.Create(ctx, producerCommand(id)); err != nil {
		return Throughput{}, err
	}
	defer context.AfterFunc(ctx, func() { win.fail(ctx.Err()) })()
	send := sendTemplate(id, size)
	start := time.Now()
	n := 0
	for ; !budget.Done(n); n++ {
		// Wait as the raw loop does (window): a receipt ends a send, a
		// failure or the end of ctx fails the window.
		if err := win.wait(n); err != nil {
			return Throughput{}, err
		}
		if err := reg.Publish(ctx, send.set(uint64(n))); err != nil {
			return Throughput{}, err
		}
	}
	if err := win.drain(n); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("bench: %d receipts for %d sends: %w", receipts.Load(), n, err)
		}
		return Throughput{}, err
	}
	elapsed := time.Since(start)
	if got := receipts.Load(); got != int64(n) {
		return Throughput{}, fmt.Errorf("bench: %d receipts for %d sends", got, n)
	}
	return Throughput{Ops: n, Bytes: int64(n) * int64(len(send.buf)), Elapsed: elapsed}, nil
}

// LibDelivery registers a consumer on b, subscribes, and counts the
// MESSAGE frames its Handler receives, granting permits from the Handler
// as a consumer with a 1,000-message receiver queue does, and releasing
// each message once counted (Push.Release).
func LibDelivery(ctx context.Context, b *pulsarconn.Broker, budget Budget) (Throughput, error) {
	id := b.NewConsumerID()
	more := flowCommand(id, refill)
	granted := budget.permits(0, queueSize)
	var n int
	var bytes int64
	var end time.Time
	done := make(chan error, 1)
	finished := false
	h := pulsarconn.HandlerFunc(func(p pulsarconn.Push) {
		// Pushes come one at a time, so the handler's state needs no
		// lock; done hands it to the caller.
		if finished {
			return
		}
		if p.Kind != pulsarconn.PushMessage || p.Payload == nil || !p.Payload.ChecksumOK {
			finished = true
			done <- fmt.Errorf("%w: push %v (%v)", errUnexpected, p.Kind, p.Err)
			return
		}
		// The server numbers its entries from 0: a message out of order,
		// or one whose memory was reused too soon, shows here.
		if e := p.Command.GetMessage().GetMessageId().GetEntryId(); e != uint64(n) {
			finished = true
			done <- fmt.Errorf("%w: message %d has entry id %d", errUnexpected, n, e)
			return
		}
		n++
		bytes += int64(len(p.Payload.Data))
		p.Release() // done with it: the next message reuses its memory
		if budget.Done(n) {
			finished = true
			end = time.Now()
			done <- nil
			return
		}
		if n%refill == 0 {
			if k := budget.permits(granted, refill); k > 0 {
				cmd := more
				if k < refill {
					cmd = flowCommand(id, uint32(k)) // the budget's last permits
				}
				granted += k
				if err := b.Send(ctx, cmd); err != nil {
					finished = true
					done <- err
				}
			}
		}
	})
	regCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	reg, err := b.RegisterConsumer(regCtx, id, h)
	if err != nil {
		return Throughput{}, err
	}
	if _, err := b.Request(ctx, subscribeCommand(id)); err != nil {
		return Throughput{}, err
	}
	start := time.Now()
	if err := b.Send(ctx, flowCommand(id, uint32(granted))); err != nil {
		return Throughput{}, err
	}
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	// Close waits for CLOSE_CONSUMER's answer, which comes after the
	// MESSAGE frames already granted: the handler is quiet afterwards.
	if cerr := reg.Close(ctx); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return Throughput{}, err
	}
	return Throughput{Ops: n, Bytes: bytes, Elapsed: end.Sub(start)}, nil
}
