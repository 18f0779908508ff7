package refclient

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// workload is one run of a producer and a consumer on one topic while
// faults are injected: the producer sends total messages (payload: the
// message's number) with SendAsync, keeping up to window pending; the
// consumer, in one goroutine, receives each message and acknowledges it
// before it receives the next.
type workload struct {
	total, window, queue int
	// inject runs before message i is sent (faults mid-stream).
	inject func(i int)
}

// outcome is what a workload saw.
type outcome struct {
	producer ProducerStats
	consumer ConsumerStats
	stored   int // entries on the topic
	// storedTwice counts entries that repeat an earlier entry's message
	// (the same number): sent again because their receipt was lost.
	storedTwice int
	resent      int // distinct messages sent again
}

// run runs w on topic with client, checks what must hold whatever the
// faults did, and returns what it saw. srv is the broker that stores the
// topic.
func (w workload) run(t *testing.T, ctx context.Context, client *pulsarconn.Client, srv *pulsartest.Server, topic string) outcome {
	t.Helper()
	consumer, err := NewConsumer(ctx, client, topic, "check", ConsumerOptions{ReceiverQueueSize: w.queue})
	require.NoError(t, err)
	producer, err := NewProducer(ctx, client, topic, ProducerOptions{MaxPending: w.window})
	require.NoError(t, err)

	var mu sync.Mutex
	resent := map[uint64]int{} // sequence id -> times sent again
	producer.l.mu.Lock()
	producer.onResend = func(seq uint64) {
		mu.Lock()
		resent[seq]++
		mu.Unlock()
	}
	producer.l.mu.Unlock()

	// The consumer: every message it receives, in order, and every ack.
	var (
		received  []*Message
		ackFailed []error
		arrived   = make(chan struct{}, 1)
	)
	cctx, stopConsumer := context.WithCancel(ctx)
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		for {
			m, err := consumer.Receive(cctx)
			if err != nil {
				return
			}
			ackErr := consumer.Ack(cctx, m)
			mu.Lock()
			received = append(received, m)
			if ackErr != nil && cctx.Err() == nil {
				ackFailed = append(ackFailed, ackErr)
			}
			mu.Unlock()
			select {
			case arrived <- struct{}{}:
			default:
			}
		}
	}()

	// The producer: every Send's outcome, by message number.
	ids := make([]MessageID, w.total)
	errs := make([]error, w.total)
	var receipts sync.WaitGroup
	for i := range w.total {
		if w.inject != nil {
			w.inject(i)
		}
		receipts.Add(1)
		err := producer.SendAsync(ctx, Message{Payload: []byte(strconv.Itoa(i))}, func(id MessageID, err error) {
			ids[i], errs[i] = id, err
			receipts.Done()
		})
		require.NoError(t, err, "SendAsync %d", i)
	}
	receipts.Wait()

	// Every Send succeeded, and its message id is an entry of the topic
	// holding that message.
	stored := srv.Stored(topic)
	seqOf := make([]int, len(stored))
	for e, s := range stored {
		n, err := strconv.Atoi(string(s.Payload))
		require.NoError(t, err)
		seqOf[e] = n
	}
	for i := range w.total {
		require.NoError(t, errs[i], "Send %d", i)
		require.Less(t, ids[i].Entry, uint64(len(stored)), "message %d: receipt names no entry", i)
		assert.Equal(t, i, seqOf[ids[i].Entry], "message %d: its receipt names another message's entry", i)
	}
	// The producer keeps its order: the first copies of the messages are
	// stored in the order they were sent, and every one is there. A
	// message is stored twice only if it was sent again after a
	// re-creation, no more often than it was sent again.
	copies := map[int]int{}
	next := 0
	out := outcome{stored: len(stored)}
	for e, n := range seqOf {
		copies[n]++
		if copies[n] == 1 {
			assert.Equal(t, next, n, "entry %d: first copy out of order", e)
			next = n + 1
			continue
		}
		out.storedTwice++
		mu.Lock()
		again := resent[uint64(n)]
		mu.Unlock()
		assert.LessOrEqual(t, copies[n]-1, again, "message %d stored %d times but sent again %d times", n, copies[n], again)
	}
	assert.Equal(t, w.total, next, "every message stored")

	// The consumer gets every entry stored exactly once: an entry
	// received but not yet acknowledged when the consumer was lost comes
	// again, and its Ack, which waits for the re-subscription, drops the
	// copy from the queue before Receive can return it.
	for {
		mu.Lock()
		n := len(received)
		mu.Unlock()
		if n >= len(stored) {
			break
		}
		select {
		case <-arrived:
		case <-ctx.Done():
			t.Fatalf("the consumer received %d of %d entries: %v", n, len(stored), ctx.Err())
		}
	}
	stopConsumer()
	<-consumed
	seen := map[MessageID]int{}
	for _, m := range received {
		seen[m.ID]++
		assert.Equal(t, strconv.Itoa(seqOf[m.ID.Entry]), string(m.Payload), "entry %v", m.ID)
	}
	assert.Len(t, seen, len(stored), "every entry received")
	for id, n := range seen {
		assert.Equal(t, 1, n, "entry %v received %d times", id, n)
	}
	assert.Empty(t, ackFailed, "every Ack succeeded")

	require.NoError(t, producer.Close(ctx))
	require.NoError(t, consumer.Close(ctx))
	out.producer, out.consumer = producer.Stats(), consumer.Stats()
	out.resent = len(resent)
	return out
}

func (o outcome) String() string {
	return fmt.Sprintf("%d entries stored (%d of them a second copy of a message); %d sends again (of %d distinct messages); "+
		"producer created %d times, %d stray receipts; consumer subscribed %d times, %d queued messages dropped at losses, %d copies purged by an Ack",
		o.stored, o.storedTwice, o.producer.Resent, o.resent, o.producer.Created, o.producer.StrayReceipts,
		o.consumer.Subscribed, o.consumer.Dropped, o.consumer.Purged)
}
