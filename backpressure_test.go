package pulsarconn_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/adapters/tcp"
	"github.com/pulsarconn/pulsarconn/contracttest"
	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// sendFrame returns an encoded SEND frame for producer 1 with a payload of
// size bytes.
func sendFrame(t *testing.T, seq uint64, size int) []byte {
	t.Helper()
	b, err := frame.AppendMessage(nil,
		&pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_SEND.Enum(), Send: &pulsarpb.CommandSend{
			ProducerId: proto.Uint64(1), SequenceId: proto.Uint64(seq)}},
		&pulsarpb.MessageMetadata{ProducerName: proto.String("p"), SequenceId: proto.Uint64(seq), PublishTime: proto.Uint64(1)},
		make([]byte, size))
	require.NoError(t, err)
	return b
}

// stallingBroker handshakes, then reads nothing until release is closed;
// then it counts the SEND frames it reads and reports their sequence ids
// on sends.
func stallingBroker(t *testing.T) (srv *hostileBroker, release chan struct{}, sends chan uint64) {
	release = make(chan struct{})
	sends = make(chan uint64, 1<<16)
	srv = newHostileBroker(t, func(ctx context.Context, _ int, c *brokerSide) {
		if c.handshake(0) != nil {
			return
		}
		select {
		case <-release:
		case <-ctx.Done():
			return
		}
		for {
			f, err := c.fr.Next()
			if err != nil {
				return
			}
			if f.Command.GetType() == pulsarpb.BaseCommand_SEND {
				sends <- f.Command.GetSend().GetSequenceId()
			}
		}
	})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	return srv, release, sends
}

// roomWait is how long a call waits for room in a full write queue before
// a test concludes that it is full. These tests need real sockets (their
// buffers are part of what is measured), so the wait is real time: long
// enough that a call slowed down by a loaded machine, rather than by a full
// queue, still gets through in time.
const roomWait = time.Second

// fillWriteQueue publishes msg until a PublishMessage cannot get room
// within roomWait, and returns how many were queued and that last error.
// The broker reads nothing, so once the socket's buffers are full the
// queue fills; a bound of max calls keeps an unbounded queue from running
// away.
func fillWriteQueue(t *testing.T, b *pulsarconn.Broker, msg []byte, max int) (int, error) {
	t.Helper()
	for n := 0; n < max; n++ {
		ctx, cancel := context.WithTimeout(testContext(t), roomWait)
		err := b.PublishMessage(ctx, msg)
		cancel()
		if err != nil {
			return n, err
		}
	}
	t.Fatalf("%d frames of %d bytes queued: the write queue is not bounded", max, len(msg))
	return 0, nil
}

func TestWriteQueueLimit(t *testing.T) {
	const limit = 256 << 10
	srv, release, sends := stallingBroker(t)
	b, err := pulsarconn.Start(srv.url(), pulsarconn.WithTransport(tcp.New()), pulsarconn.WithWriteQueueLimit(limit))
	require.NoError(t, err)
	t.Cleanup(func() { b.Stop(context.Background()) })
	ctx := testContext(t)
	require.NoError(t, b.WaitConnected(ctx))

	msg := sendFrame(t, 0, 64<<10)
	probe := startMemProbe()
	queued, err := fillWriteQueue(t, b, msg, 2000)
	mem := probe.finish()
	t.Logf("a broker that reads nothing: %d frames of %d KiB accepted (socket buffers plus the %d KiB queue); memory: %v",
		queued, len(msg)>>10, limit>>10, mem)
	t.Logf("error: %v", err)
	assert.ErrorIs(t, err, pulsarconn.ErrQueueFull)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.True(t, pulsarconn.IsRetryable(err))
	assert.LessOrEqual(t, mem.PeakGrowth, int64(2*limit+mib), "heap growth: the queue, the write in progress, slack")

	// Send and Request wait for room too, once the queue is at the limit
	// (each may overshoot it by one command).
	flow := &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_FLOW.Enum(),
		Flow: &pulsarpb.CommandFlow{ConsumerId: proto.Uint64(1), MessagePermits: proto.Uint32(1)}}
	sent := 0
	for err = nil; err == nil; sent++ {
		require.Less(t, sent, limit, "Send does not stop at the limit")
		short, cancel := context.WithTimeout(ctx, roomWait)
		err = b.Send(short, flow)
		cancel()
	}
	t.Logf("Send: %d FLOWs queued, then: %v", sent-1, err)
	assert.ErrorIs(t, err, pulsarconn.ErrQueueFull)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	short, cancel := context.WithTimeout(ctx, roomWait)
	defer cancel()
	_, err = b.LookupTopic(short, "persistent://public/default/t", false)
	assert.ErrorIs(t, err, pulsarconn.ErrQueueFull)
	assert.Equal(t, pulsarconn.StateConnected, b.State(), "a full queue is not a broken connection")

	// A publisher waiting for room gets it once the broker reads again,
	// and everything arrives in order.
	last := sendFrame(t, 1, 64<<10)
	done := make(chan error, 1)
	go func() { done <- b.PublishMessage(ctx, last) }()
	close(release)
	require.NoError(t, <-done)
	for i := range queued + 1 {
		select {
		case seq := <-sends:
			if i < queued {
				require.EqualValues(t, 0, seq)
			} else {
				require.EqualValues(t, 1, seq, "the waiting publish comes last")
			}
		case <-ctx.Done():
			t.Fatalf("the broker read %d of %d frames", i, queued+1)
		}
	}
}

func TestWriteQueueFullFailFast(t *testing.T) {
	srv, _, _ := stallingBroker(t)
	b, err := pulsarconn.Start(srv.url(), pulsarconn.WithTransport(tcp.New()),
		pulsarconn.WithWriteQueueLimit(64<<10), pulsarconn.WithFailFast(true))
	require.NoError(t, err)
	t.Cleanup(func() { b.Stop(context.Background()) })
	ctx := testContext(t)
	require.NoError(t, b.WaitConnected(ctx))

	msg := sendFrame(t, 0, 16<<10)
	for n := 0; ; n++ {
		require.Less(t, n, 10_000, "the write queue is not bounded")
		err := b.PublishMessage(ctx, msg) // fails at once when full
		if err != nil {
			t.Logf("full after %d frames: %v", n, err)
			assert.ErrorIs(t, err, pulsarconn.ErrQueueFull)
			assert.NotErrorIs(t, err, context.DeadlineExceeded)
			break
		}
	}
}

// A full write queue never holds the Broker's lock: Stop, whose CLOSE
// commands and final close go through the same queue, finishes at once, and
// releases a publisher waiting for room.
func TestStopWithFullWriteQueue(t *testing.T) {
	srv, _, _ := stallingBroker(t)
	b, err := pulsarconn.Start(srv.url(), pulsarconn.WithTransport(tcp.New()), pulsarconn.WithWriteQueueLimit(64<<10))
	require.NoError(t, err)
	t.Cleanup(func() { b.Stop(context.Background()) })
	ctx := testContext(t)
	require.NoError(t, b.WaitConnected(ctx))
	_, err = b.RegisterProducer(ctx, 1, contracttest.NewPushLog())
	require.NoError(t, err)
	msg := sendFrame(t, 0, 16<<10)
	_, err = fillWriteQueue(t, b, msg, 10_000)
	require.ErrorIs(t, err, pulsarconn.ErrQueueFull)

	waiting := make(chan error, 1)
	go func() { waiting <- b.PublishMessage(ctx, msg) }() // waits for room
	stopCtx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = b.Stop(stopCtx) // CLOSE_PRODUCER is queued, never answered: ends with stopCtx
	t.Logf("Stop with a full queue returned in %v: %v", time.Since(start).Round(time.Millisecond), err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, pulsarconn.StateClosed, b.State())
	assert.ErrorIs(t, <-waiting, pulsarconn.ErrClosed)
}

func TestMaxPendingRequests(t *testing.T) { synctest.Test(t, testMaxPendingRequests) }

func testMaxPendingRequests(t *testing.T) {
	e := memoryEnv(t)
	e.srv.InterceptEvery(pulsarpb.BaseCommand_LOOKUP, func(*pulsartest.Call) pulsartest.Action { return pulsartest.Drop })
	ctx := testContext(t)
	lookup := func(ctx context.Context, b *pulsarconn.Broker, errs chan<- error) {
		_, err := b.LookupTopic(ctx, "persistent://public/default/t", false)
		errs <- err
	}

	b := e.connected(t, pulsarconn.WithMaxPendingRequests(2))
	ctx1, cancel1 := context.WithCancel(ctx)
	ctx2, cancel2 := context.WithCancel(ctx)
	defer cancel2()
	errs := make(chan error, 3)
	go lookup(ctx1, b, errs)
	go lookup(ctx2, b, errs)
	require.NoError(t, e.srv.WaitReceived(ctx, pulsarpb.BaseCommand_LOOKUP, 2))
	assert.Equal(t, 2, b.Metrics().Pending)

	// A third waits for a slot until its context ends, and is not sent.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err := b.LookupTopic(short, "persistent://public/default/t", false)
	t.Logf("third request: %v", err)
	assert.ErrorIs(t, err, pulsarconn.ErrTooManyPendingRequests)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.True(t, pulsarconn.IsRetryable(err))
	assert.Equal(t, 2, e.srv.Received(pulsarpb.BaseCommand_LOOKUP))

	// A third with time to wait gets the slot of one given up.
	ctx3, cancel3 := context.WithCancel(ctx)
	defer cancel3()
	go lookup(ctx3, b, errs)
	cancel1()
	assert.ErrorIs(t, <-errs, context.Canceled)
	require.NoError(t, e.srv.WaitReceived(ctx, pulsarpb.BaseCommand_LOOKUP, 3))

	// Under fail-fast, a request beyond the limit fails at once.
	ff := e.connected(t, pulsarconn.WithMaxPendingRequests(1), pulsarconn.WithFailFast(true))
	ctx4, cancel4 := context.WithCancel(ctx)
	defer cancel4()
	go lookup(ctx4, ff, errs)
	require.NoError(t, e.srv.WaitReceived(ctx, pulsarpb.BaseCommand_LOOKUP, 4))
	_, err = ff.LookupTopic(ctx, "persistent://public/default/t", false)
	t.Logf("fail-fast: %v", err)
	assert.ErrorIs(t, err, pulsarconn.ErrTooManyPendingRequests)
	assert.NotErrorIs(t, err, context.Canceled)
	assert.NotErrorIs(t, err, context.DeadlineExceeded)
}

// TestRequestSlotsGoOldestFirst: callers waiting for a request slot get
// one in the order they came, one per slot freed, and one that gives up
// while waiting does not keep the next from its turn.
func TestRequestSlotsGoOldestFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := memoryEnv(t)
		var mu sync.Mutex
		var sent []string
		e.srv.InterceptEvery(pulsarpb.BaseCommand_LOOKUP, func(call *pulsartest.Call) pulsartest.Action {
			mu.Lock()
			defer mu.Unlock()
			sent = append(sent, call.Command().GetLookupTopic().GetTopic())
			return pulsartest.Drop
		})
		b := e.connected(t, pulsarconn.WithMaxPendingRequests(1))
		cancels := map[string]context.CancelFunc{}
		errs := make(chan error, 5)
		for _, topic := range []string{"first", "a", "b", "c", "d"} {
			ctx, cancel := context.WithCancel(testContext(t))
			cancels[topic] = cancel
			defer cancel()
			go func() {
				_, err := b.LookupTopic(ctx, topic, false)
				errs <- err
			}()
			synctest.Wait() // sent, or queued for a slot, before the next comes
		}
		sentNow := func() []string {
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(sent)
		}
		assert.Equal(t, []string{"first"}, sentNow())

		cancels["b"]() // gives up while queued
		assert.ErrorIs(t, <-errs, pulsarconn.ErrTooManyPendingRequests)
		cancels["first"]() // frees the slot, and at once a newcomer comes
		assert.ErrorIs(t, <-errs, context.Canceled)
		newcomer, cancelNewcomer := context.WithCancel(testContext(t))
		defer cancelNewcomer()
		go func() {
			_, err := b.LookupTopic(newcomer, "newcomer", false)
			errs <- err
		}()
		synctest.Wait()
		assert.Equal(t, []string{"first", "a"}, sentNow(), "the slot freed is a's, not the newcomer's")

		// c, next in the queue, gives up; then a frees its slot: it goes on
		// to d. (Cancelling both at once would let c, woken first, send
		// before it sees its own cancellation: a real outcome, but not
		// the one this test pins down.)
		cancels["c"]()
		assert.ErrorIs(t, <-errs, context.Canceled)
		synctest.Wait()
		cancels["a"]()
		assert.ErrorIs(t, <-errs, context.Canceled)
		synctest.Wait()
		cancels["d"]()
		assert.ErrorIs(t, <-errs, context.Canceled)
		synctest.Wait()
		assert.Equal(t, []string{"first", "a", "d", "newcomer"}, sentNow(), "oldest first, b and c gone")
	})
}

// TestQueuedForASlotUntilStop: a caller queued for a request slot while
// the only slot is held by a caller waiting for the connection learns of
// Stop at once, not when its context ends.
func TestQueuedForASlotUntilStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := memoryEnv(t)
		e.network.RefuseDials(true)
		b, err := pulsarconn.Start(e.url, pulsarconn.WithTransport(e.network), pulsarconn.WithMaxPendingRequests(1))
		require.NoError(t, err)
		errs := make(chan error, 2)
		for range 2 {
			go func() {
				_, err := b.LookupTopic(context.Background(), "t", false)
				errs <- err
			}()
			synctest.Wait()
		}
		start := time.Now()
		require.NoError(t, b.Stop(context.Background()))
		for range 2 {
			assert.ErrorIs(t, <-errs, pulsarconn.ErrClosed)
		}
		assert.Zero(t, time.Since(start))
	})
}

// TestStuckHandler floods a consumer whose Handler is stuck. Either the
// reader itself is stuck in the Handler, or (after a reconnect) another
// goroutine is and the new connection's reader keeps reading until the
// delivery limit holds it back; both ways the broker's writes stall on TCP
// flow control, memory stays near the limit whatever the flood's size,
// and once the Handler is released every message arrives, in order.
func TestStuckHandler(t *testing.T) {
	const (
		n       = 10_000
		size    = 4 << 10 // 40 MiB in all, many times the socket buffers
		limit   = 1 << 20
		perSend = 100
	)
	for _, tc := range []struct {
		name          string
		acrossConnect bool
	}{
		{"stuck on the reader", false},
		{"stuck across a reconnect", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			flood := make(chan struct{}) // registered: go on
			stalled := make(chan struct{})
			srv := newHostileBroker(t, func(ctx context.Context, conn int, c *brokerSide) {
				if c.handshake(0) != nil {
					return
				}
				select {
				case <-flood:
				case <-ctx.Done():
					return
				}
				if tc.acrossConnect && conn == 1 {
					return // the Handler gets stuck on PushDisconnected
				}
				md := &pulsarpb.MessageMetadata{ProducerName: proto.String("p"), SequenceId: proto.Uint64(1), PublishTime: proto.Uint64(1)}
				var buf []byte
				stalledOnce := false
				for i := 0; i < n; i += perSend {
					buf = buf[:0]
					for j := i; j < i+perSend; j++ {
						buf, _ = frame.AppendMessage(buf, &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_MESSAGE.Enum(),
							Message: &pulsarpb.CommandMessage{ConsumerId: proto.Uint64(1),
								MessageId: &pulsarpb.MessageIdData{LedgerId: proto.Uint64(1), EntryId: proto.Uint64(uint64(j))}}},
							md, zeros[:size])
					}
					for off := 0; off < len(buf); {
						if !stalledOnce {
							c.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
						}
						m, err := c.Write(buf[off:])
						off += m
						if errors.Is(err, os.ErrDeadlineExceeded) && !stalledOnce {
							// 300ms without room to write: the client
							// is not reading.
							stalledOnce = true
							c.SetWriteDeadline(time.Time{})
							close(stalled)
							continue
						}
						if err != nil {
							return
						}
					}
				}
				c.behave()
			})

			release := make(chan struct{})
			var releaseOnce sync.Once
			unblock := func() { releaseOnce.Do(func() { close(release) }) }
			var stuck atomic.Bool
			var mu sync.Mutex
			var entries []uint64
			got := make(chan struct{}, 1)
			handler := pulsarconn.HandlerFunc(func(p pulsarconn.Push) {
				if stuck.CompareAndSwap(false, true) {
					<-release
				}
				if p.Kind != pulsarconn.PushMessage {
					return
				}
				mu.Lock()
				entries = append(entries, p.Command.GetMessage().GetMessageId().GetEntryId())
				mu.Unlock()
				select {
				case got <- struct{}{}:
				default:
				}
			})

			b, err := pulsarconn.Start(srv.url(), pulsarconn.WithTransport(tcp.New()),
				pulsarconn.WithBackoff(time.Millisecond, 20*time.Millisecond), pulsarconn.WithDeliveryQueueLimit(limit))
			require.NoError(t, err)
			t.Cleanup(func() { b.Stop(context.Background()) })
			t.Cleanup(unblock) // runs first: Stop waits for the Handler
			ctx := testContext(t)
			_, err = b.RegisterConsumer(ctx, 1, handler)
			require.NoError(t, err)
			require.NoError(t, b.WaitConnected(ctx))

			probe := startMemProbe()
			close(flood)
			select {
			case <-stalled:
			case <-ctx.Done():
				t.Fatal("the broker's writes never stalled: the client reads without bound")
			}
			mem := probe.finish()
			read := b.Metrics().FramesIn
			t.Logf("flood of %d MESSAGEs (%d MiB): the broker stalled with %d frames read by the client; memory: %v",
				n, n*size>>20, read, mem)
			assert.LessOrEqual(t, mem.PeakGrowth, int64(8*mib), "heap growth (delivery limit %d KiB)", limit>>10)

			unblock()
			for {
				mu.Lock()
				k := len(entries)
				mu.Unlock()
				if k >= n {
					break
				}
				select {
				case <-got:
				case <-ctx.Done():
					t.Fatalf("%d of %d messages delivered", k, n)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			require.Len(t, entries, n)
			for i, e := range entries {
				if e != uint64(i) {
					t.Fatalf("message %d is entry %d: out of order", i, e)
				}
			}
		})
	}
}
