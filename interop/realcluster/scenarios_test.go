package realcluster

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/refclient"
)

// Each scenario runs against the fake cluster (TestFake...) and the real
// one (TestReal...).

func TestFakeRedirects(t *testing.T) { redirects(t, newFake(t)) }
func TestRealRedirects(t *testing.T) { redirects(t, newReal(t)) }
func TestFakeProxy(t *testing.T)     { throughProxy(t, newFake(t)) }
func TestRealProxy(t *testing.T)     { throughProxy(t, newReal(t)) }
func TestFakeUnload(t *testing.T)    { unload(t, newFake(t)) }
func TestRealUnload(t *testing.T)    { unload(t, newReal(t)) }
func TestFakeKill(t *testing.T)      { kill(t, newFake(t)) }
func TestRealKill(t *testing.T)      { kill(t, newReal(t)) }
func TestFakeNoLoss(t *testing.T)    { noLoss(t, newFake(t), fakeNoLossMessages, true) }
func TestRealNoLoss(t *testing.T)    { noLoss(t, newReal(t), 100_000, false) }

// fakeNoLossMessages is TestFakeNoLoss's size: that of the real cluster,
// or a quarter of it under the race detector.
var fakeNoLossMessages = map[bool]int{false: 100_000, true: 25_000}[raceEnabled]

// within bounds each scenario: a cluster that does not recover fails the
// test instead of hanging it.
const within = 4 * time.Minute

func bounded(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), within)
	t.Cleanup(cancel)
	return ctx
}

// lookups counts a Client's lookups and redirects by topic, through its
// Observer.
type lookups struct {
	mu        sync.Mutex
	done      map[string]int // lookups that found the owner
	redirects int
}

func (l *lookups) Observe(e pulsarconn.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch e := e.(type) {
	case pulsarconn.LookupCompleted:
		if e.Err == nil {
			l.done[e.Topic]++
		}
	case pulsarconn.LookupRedirected:
		l.redirects++
	}
}

func (l *lookups) of(topic string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.done[topic]
}

// newClient is a Client for url whose lookups are counted; it is closed
// when the test ends.
func newClient(t *testing.T, url string) (*pulsarconn.Client, *lookups) {
	l := &lookups{done: make(map[string]int)}
	c, err := pulsarconn.NewClient(url, pulsarconn.WithObserver(l))
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = c.Close(ctx)
	})
	return c, l
}

// produceOne creates a producer on topic, sends one message, and closes
// it.
func produceOne(ctx context.Context, t *testing.T, c *pulsarconn.Client, topic string) {
	p, err := refclient.NewProducer(ctx, c, topic, refclient.ProducerOptions{})
	require.NoError(t, err, topic)
	_, err = p.Send(ctx, refclient.Message{Payload: []byte("hello")})
	require.NoError(t, err, topic)
	require.NoError(t, p.Close(ctx), topic)
}

// redirects: 32 topics of a namespace of 16 bundles, each produced to
// through one Client that knows every broker; each lookup follows the
// cluster's redirects to the topic's owner, both brokers serve some, and
// the Client holds one connection per broker.
func redirects(t *testing.T, cl cluster) {
	ctx := bounded(t)
	ns := cl.NewNamespace(t)
	topics := make([]string, 32)
	for i := range topics {
		topics[i] = fmt.Sprintf("persistent://%s/t-%d", ns, i)
	}
	client, seen := newClient(t, cl.ServiceURL())

	// Produce to every topic; should one broker own them all (the load
	// manager's choice), unload the bundles of half of them, which the
	// next lookups assign again, and produce again.
	var owners map[string]string
	for round := range 4 {
		owners = make(map[string]string)
		for _, topic := range topics {
			produceOne(ctx, t, client, topic)
			owners[topic] = cl.Owner(t, topic)
		}
		used := distinct(owners)
		t.Logf("round %d: the brokers own %v topics", round, used)
		if len(used) > 1 {
			break
		}
		require.Less(t, round, 3, "every topic stayed on one broker through 3 rounds of unloads: the load manager does not spread them")
		for i, topic := range topics {
			if i%2 == 0 {
				cl.Unload(t, topic)
			}
		}
	}

	// The Client's lookup ends at each topic's owner, as the cluster
	// itself says.
	for _, topic := range topics {
		b, err := client.LookupTopic(ctx, topic)
		require.NoError(t, err)
		assert.Equal(t, owners[topic], b.BrokerURL(), "owner of %s", topic)
		assert.Equal(t, b.BrokerURL(), b.DialURL(), "no proxy: connected to the owner itself")
	}
	seen.mu.Lock()
	redirected := seen.redirects
	seen.mu.Unlock()
	assert.Positive(t, redirected, "some lookups were redirected to the other broker")

	// One connection per broker, and the brokers used are among them.
	var held []string
	for _, b := range client.Brokers() {
		held = append(held, b.BrokerURL())
	}
	t.Logf("%d lookups redirected; the Client holds %v", redirected, held)
	assert.Len(t, held, len(distinct(owners)), "one connection per broker used")
	assert.Equal(t, len(held), len(slices.Compact(slices.Sorted(slices.Values(held)))), "no broker held twice: %v", held)
	for u := range distinct(owners) {
		assert.Contains(t, held, u)
	}
	assert.Len(t, distinct(owners), 2, "both brokers own topics")
}

// distinct counts the topics of each owner.
func distinct(owners map[string]string) map[string]int {
	n := make(map[string]int)
	for _, o := range owners {
		n[o]++
	}
	return n
}

// throughProxy: a Client given only the proxy's URL; the proxy answers
// lookups with proxy_through_service_url, and the Client's connection for
// each topic goes to the proxy naming the owner in CONNECT; messages are
// produced and consumed through it.
func throughProxy(t *testing.T, cl cluster) {
	ctx := bounded(t)
	ns := cl.NewNamespace(t)
	proxyURL := canonical(t, cl.ProxyURL())

	// The proxy's own answer to LOOKUP.
	raw, err := pulsarconn.Start(proxyURL)
	require.NoError(t, err)
	defer func() { _ = raw.Stop(context.Background()) }()

	client, _ := newClient(t, proxyURL)
	owners := make(map[string]int)
	for i := range 8 {
		topic := fmt.Sprintf("persistent://%s/p-%d", ns, i)
		res, err := raw.LookupTopic(ctx, topic, false)
		require.NoError(t, err)
		assert.True(t, res.ProxyThroughServiceURL, "the proxy answers proxy_through_service_url")
		assert.False(t, res.Redirect, "the proxy follows the brokers' redirects itself")

		consumer, err := refclient.NewConsumer(ctx, client, topic, "sub", refclient.ConsumerOptions{})
		require.NoError(t, err)
		produceOne(ctx, t, client, topic)
		m, err := consumer.Receive(ctx)
		require.NoError(t, err)
		assert.Equal(t, "hello", string(m.Payload))
		require.NoError(t, consumer.Ack(ctx, m))
		require.NoError(t, consumer.Close(ctx))

		owner := cl.Owner(t, topic)
		owners[owner]++
		assert.Equal(t, owner, canonical(t, res.BrokerURL), "the proxy names the owner of %s", topic)
		b, err := client.LookupTopic(ctx, topic)
		require.NoError(t, err)
		assert.Equal(t, owner, b.BrokerURL(), "the Client's connection for %s is to its owner...", topic)
		assert.Equal(t, proxyURL, b.DialURL(), "...through the proxy")
		if s, ok := cl.(proxySeer); ok {
			addr, err := pulsarconn.ParseURL(owner)
			require.NoError(t, err)
			assert.Equal(t, addr.HostPort, s.ProxiedTo(t, owner), "the CONNECT that reached the owner names it, as host:port")
		}
	}
	for _, b := range client.Brokers() {
		assert.Equal(t, proxyURL, b.DialURL(), "every connection of the Client goes through the proxy (%s)", b.BrokerURL())
	}
	t.Logf("through the proxy, topics by owner: %v; the Client holds %d connections", owners, len(client.Brokers()))
}

// unload: a bundle unloaded while a producer publishes and a consumer
// consumes: the broker closes both (CLOSE_PRODUCER, CLOSE_CONSUMER; the
// connections stay), they look the topic up again and resume, on the new
// owner if it moved.
func unload(t *testing.T, cl cluster) {
	ctx := bounded(t)
	topic := fmt.Sprintf("persistent://%s/unload", cl.NewNamespace(t))
	client, seen := newClient(t, cl.ServiceURL())
	var before string
	var reconnects uint64
	var lookupsBefore int
	w := workload{total: 5000, faults: map[int]func(){2500: func() {
		before = cl.Owner(t, topic)
		reconnects = totalReconnects(client)
		lookupsBefore = seen.of(topic)
		cl.Unload(t, topic)
	}}}
	out := w.run(ctx, t, client, topic)
	after := cl.Owner(t, topic)
	t.Logf("unloaded: owner %s -> %s; %v", before, after, out)
	assert.Equal(t, reconnects, totalReconnects(client), "no connection was lost: the broker closed the producer and consumer")
	assert.GreaterOrEqual(t, out.producer.Created, 2, "the producer was created again")
	assert.GreaterOrEqual(t, out.consumer.Subscribed, 2, "the consumer subscribed again")
	assert.GreaterOrEqual(t, seen.of(topic), lookupsBefore+2, "the producer and the consumer looked the topic up again")
	if before != after {
		assert.Contains(t, brokerURLs(client), after, "the Client connected to the new owner")
	}
}

// kill: the broker that owns the topic killed (kill -9) while a producer
// publishes and a consumer consumes: the topic moves to the other broker
// and the work resumes there; the broker is then brought back.
func kill(t *testing.T, cl cluster) {
	ctx := bounded(t)
	topic := fmt.Sprintf("persistent://%s/kill", cl.NewNamespace(t))
	client, _ := newClient(t, cl.ServiceURL())
	var victim int
	var victimURL string
	w := workload{total: 5000, faults: map[int]func(){2500: func() {
		victimURL = cl.Owner(t, topic)
		victim = slices.IndexFunc(cl.BrokerURLs(), func(u string) bool { return canonical(t, u) == victimURL })
		require.GreaterOrEqual(t, victim, 0)
		cl.Kill(t, victim)
	}}}
	out := w.run(ctx, t, client, topic)
	after := cl.Owner(t, topic)
	t.Logf("killed broker %d (%s); the topic is now at %s; %v", victim+1, victimURL, after, out)
	assert.NotEqual(t, victimURL, after, "the topic moved off the killed broker")
	assert.GreaterOrEqual(t, out.producer.Created, 2, "the producer was created again")
	assert.GreaterOrEqual(t, out.consumer.Subscribed, 2, "the consumer subscribed again")
	cl.Restart(t, victim)
}

// noLoss: n messages published across two bundle unloads and the kill of
// the topic's broker: every message receipted once, every receipted
// message consumed; the duplicates delivered are counted and explained.
//
// acksKept says that the acknowledgements survive the kill, so that no
// message is consumed twice with the same message id: true of the fake
// (one store in memory), not of a real broker, which persists a
// subscription's position lazily (at most once a second by default) and
// so, killed, forgets the acknowledgements since: the new owner sends
// those messages again, and the test reports how many.
func noLoss(t *testing.T, cl cluster, n int, acksKept bool) {
	ctx := bounded(t)
	topic := fmt.Sprintf("persistent://%s/noloss", cl.NewNamespace(t))
	client, _ := newClient(t, cl.ServiceURL())
	victim := -1
	w := workload{total: n, faults: map[int]func(){
		n / 4: func() { cl.Unload(t, topic) },
		n / 2: func() {
			owner := cl.Owner(t, topic)
			victim = slices.IndexFunc(cl.BrokerURLs(), func(u string) bool { return canonical(t, u) == owner })
			require.GreaterOrEqual(t, victim, 0)
			cl.Kill(t, victim)
		},
		3 * n / 4: func() { cl.Unload(t, topic) },
	}}
	t0 := time.Now()
	out := w.run(ctx, t, client, topic)
	t.Logf("%d messages in %v across unload, kill, unload: %v", n, time.Since(t0).Round(time.Millisecond), out)
	// Each duplicate is a second copy stored because its first receipt
	// was lost with a connection or a closed producer: at most one per
	// message sent again.
	assert.LessOrEqual(t, out.duplicates, out.producer.Resent, "no more duplicates than messages sent again")
	if acksKept {
		assert.Zero(t, out.redelivered, "no message id consumed twice (each acknowledged before the next)")
	} else {
		t.Logf("%d messages consumed again with the same message id: acknowledged, but the killed broker had not persisted the acknowledgements", out.redelivered)
	}
	cl.Restart(t, victim)
}

func totalReconnects(c *pulsarconn.Client) uint64 {
	var n uint64
	for _, b := range c.Brokers() {
		n += b.Stats().Reconnects
	}
	return n
}

func brokerURLs(c *pulsarconn.Client) []string {
	var urls []string
	for _, b := range c.Brokers() {
		urls = append(urls, b.BrokerURL())
	}
	return urls
}

// workload is one producer and one consumer on a topic, through a
// Client: the producer sends total messages (payload: the message's
// number) with SendAsync, up to window pending; the consumer, on its own
// goroutine, receives each message and acknowledges it before the next.
// faults[i] runs before message i is sent.
type workload struct {
	total  int
	faults map[int]func()
}

// outcome is what a workload saw.
type outcome struct {
	consumed    int // messages Receive returned, the end marker excepted
	duplicates  int // of those, copies of a message already consumed (another message id)
	redelivered int // of those, a message id already consumed
	// resumeSend and resumeReceive are, for each fault in order, the
	// time from its start to the first receipt of a message sent after
	// it, and to the first message the consumer, subscribed again,
	// consumed.
	resumeSend, resumeReceive []time.Duration
	producer                  refclient.ProducerStats
	consumer                  refclient.ConsumerStats
}

func (o outcome) String() string {
	return fmt.Sprintf("consumed %d (%d duplicates: second copies; %d message ids consumed twice); resumed after each fault: receipts %v, consumer %v; "+
		"producer created %d times, %d sent again, %d stray receipts; consumer subscribed %d times, %d queued dropped at losses, %d purged by an Ack",
		o.consumed, o.duplicates, o.redelivered, o.resumeSend, o.resumeReceive,
		o.producer.Created, o.producer.Resent, o.producer.StrayReceipts,
		o.consumer.Subscribed, o.consumer.Dropped, o.consumer.Purged)
}

// endMarker is the payload of the message the producer sends once every
// other one is receipted: every stored copy of the others precedes it in
// the topic, so the consumer has them all once it receives it.
const endMarker = "end"

// run runs the workload and checks: every SendAsync's callback came
// exactly once, without error; every receipted message (its message id)
// was consumed; nothing is consumed that was not sent.
func (w workload) run(ctx context.Context, t *testing.T, client *pulsarconn.Client, topic string) outcome {
	t.Helper()
	consumer, err := refclient.NewConsumer(ctx, client, topic, "sub", refclient.ConsumerOptions{})
	require.NoError(t, err)
	producer, err := refclient.NewProducer(ctx, client, topic, refclient.ProducerOptions{})
	require.NoError(t, err)

	type got struct {
		id   refclient.MessageID
		at   time.Time
		subs int // the consumer's subscriptions so far
	}
	var (
		mu       sync.Mutex
		received = make(map[int][]got) // by message number
		ackErrs  []error
	)
	consumed := make(chan error, 1)
	go func() {
		for {
			m, err := consumer.Receive(ctx)
			if err != nil {
				consumed <- fmt.Errorf("receive: %w", err)
				return
			}
			if err := consumer.Ack(ctx, m); err != nil {
				mu.Lock()
				ackErrs = append(ackErrs, err)
				mu.Unlock()
			}
			if string(m.Payload) == endMarker {
				consumed <- nil
				return
			}
			i, err := strconv.Atoi(string(m.Payload))
			if err != nil || i < 0 || i >= w.total {
				consumed <- fmt.Errorf("consumed %q, not a message sent", m.Payload)
				return
			}
			mu.Lock()
			received[i] = append(received[i], got{m.ID, time.Now(), consumer.Stats().Subscribed})
			mu.Unlock()
		}
	}()

	ids := make([]refclient.MessageID, w.total)
	errs := make([]error, w.total)
	at := make([]time.Time, w.total)
	calls := make([]atomic.Int32, w.total)
	var faultAt []time.Time
	var faultFrom, faultSubs []int
	var pending sync.WaitGroup
	for i := range w.total {
		if f := w.faults[i]; f != nil {
			faultAt, faultFrom = append(faultAt, time.Now()), append(faultFrom, i)
			faultSubs = append(faultSubs, consumer.Stats().Subscribed)
			f()
		}
		pending.Add(1)
		err := producer.SendAsync(ctx, refclient.Message{Payload: []byte(strconv.Itoa(i))}, func(id refclient.MessageID, err error) {
			if calls[i].Add(1) == 1 {
				ids[i], errs[i], at[i] = id, err, time.Now()
				pending.Done()
			}
		})
		require.NoError(t, err, "SendAsync %d", i)
	}
	receipted := make(chan struct{})
	go func() { pending.Wait(); close(receipted) }()
	select {
	case <-receipted:
	case <-ctx.Done():
		t.Fatalf("waiting for the receipts: %v", ctx.Err())
	}
	_, err = producer.Send(ctx, refclient.Message{Payload: []byte(endMarker)})
	require.NoError(t, err, "the end marker")
	select {
	case err := <-consumed:
		require.NoError(t, err)
	case <-ctx.Done():
		t.Fatalf("waiting for the consumer to reach the end marker: %v", ctx.Err())
	}

	out := outcome{producer: producer.Stats(), consumer: consumer.Stats()}
	mu.Lock()
	defer mu.Unlock()
	assert.Empty(t, ackErrs, "every Ack succeeded")
	for i := range w.total {
		require.Equal(t, int32(1), calls[i].Load(), "message %d: its callback came once", i)
		require.NoError(t, errs[i], "message %d", i)
		copies := received[i]
		byID := make(map[refclient.MessageID]int)
		for _, g := range copies {
			byID[g.id]++
		}
		require.Positive(t, byID[ids[i]], "message %d: its receipted copy %v was consumed (copies consumed: %d)", i, ids[i], len(copies))
		out.consumed += len(copies)
		out.duplicates += len(byID) - 1
		out.redelivered += len(copies) - len(byID)
	}
	// Resume times: the first receipt of a message sent after each
	// fault, and the first message consumed by the consumer subscribed
	// again after it.
	for k, from := range faultFrom {
		first, firstIn := time.Time{}, time.Time{}
		for i := from; i < min(w.total, from+1000); i++ { // sent well after: not the first
			if first.IsZero() || at[i].Before(first) {
				first = at[i]
			}
		}
		for _, copies := range received {
			for _, g := range copies {
				if g.subs > faultSubs[k] && g.at.After(faultAt[k]) && (firstIn.IsZero() || g.at.Before(firstIn)) {
					firstIn = g.at
				}
			}
		}
		out.resumeSend = append(out.resumeSend, first.Sub(faultAt[k]).Round(time.Millisecond))
		out.resumeReceive = append(out.resumeReceive, firstIn.Sub(faultAt[k]).Round(time.Millisecond))
	}
	require.NoError(t, producer.Close(ctx))
	require.NoError(t, consumer.Close(ctx))
	return out
}
