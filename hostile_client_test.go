package pulsarconn_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/adapters/memory"
	"github.com/pulsarconn/pulsarconn/contracttest"
	"github.com/pulsarconn/pulsarconn/internal/testenv"
	"github.com/pulsarconn/pulsarconn/ports"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// This file plays a cluster that is hostile to the Client: its brokers
// make it open connection after connection.

// dialOne is a Transport that dials address whatever URL it is asked
// for, so one fake broker plays every broker a lookup is sent to.
type dialOne struct {
	network *memory.Network
	address string
}

func (d dialOne) Dial(ctx context.Context, _ string) (ports.Conn, error) {
	return d.network.Dial(ctx, d.address)
}

// TestHostileRedirectsReleaseBrokers: a cluster that answers every LOOKUP
// with a Redirect to a broker URL never seen before makes each lookup
// follow the redirect limit (20) through 20 new brokers, and fail. The
// Client must not keep them: before it stopped them, each such lookup left
// 20 more Brokers running, with two goroutines each, until Close.
func TestHostileRedirectsReleaseBrokers(t *testing.T) {
	synctest.Test(t, testHostileRedirectsReleaseBrokers)
}

func testHostileRedirectsReleaseBrokers(t *testing.T) {
	const lookups = 10
	network := memory.NewNetwork()
	srv := testenv.Serve(t, network, "service:6650", pulsartest.WithRecordLimit(0)) // its own records out of the figures
	var hops atomic.Int64
	srv.InterceptEvery(pulsarpb.BaseCommand_LOOKUP, func(c *pulsartest.Call) pulsartest.Action {
		id, _ := c.RequestID()
		c.Reply(redirectAnswer(id, fmt.Sprintf("pulsar://hop-%d:6650", hops.Add(1)), false))
		return pulsartest.Handled
	})
	cl, err := pulsarconn.NewClient("pulsar://service:6650", pulsarconn.WithTransport(dialOne{network, "service:6650"}))
	require.NoError(t, err)
	ctx := testenv.Context(t)
	lookup := func() {
		_, err := cl.LookupTopic(ctx, "persistent://public/default/t")
		require.ErrorIs(t, err, pulsarconn.ErrTooManyRedirects)
	}

	lookup() // the service host's connection is made, and kept
	synctest.Wait()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	g0 := runtime.NumGoroutine()
	for range lookups {
		lookup()
	}
	synctest.Wait() // the broker's side of the connections closed
	runtime.GC()
	runtime.ReadMemStats(&after)
	g1 := runtime.NumGoroutine()
	brokers := cl.Brokers()
	registered := len(cl.Registry().All())
	heap := int64(after.HeapAlloc) - int64(before.HeapAlloc) // live bytes after a GC
	t.Logf("%d more lookups, %d redirects in all: %d Brokers held, %d in the Registry, goroutines %+d, heap held %+.2f MiB",
		lookups, hops.Load(), len(brokers), registered, g1-g0, float64(heap)/mib)

	assert.Equal(t, int64((lookups+1)*21), hops.Load(), "each lookup followed 20 redirects and failed at the 21st")
	require.Len(t, brokers, 1, "only the service host's Broker is kept")
	assert.Equal(t, "pulsar://service:6650", brokers[0].BrokerURL())
	assert.Equal(t, 1, registered)
	assert.LessOrEqual(t, g1-g0, 4, "goroutines")
	// Process-wide: other tests of the package running meanwhile count too,
	// hence a bound well above the +0.03 MiB this test holds alone (and below
	// the +1.7 MiB the Brokers it no longer keeps held).
	assert.Less(t, heap, int64(mib), "heap held")
	require.NoError(t, cl.Close(ctx))
}

// TestClientReleasesIdleBrokers: a Broker the Client keeps that has no
// registration and no request in flight for the max idle time is stopped
// and leaves the Client and its Registry; one with a registration, or a
// request in flight, stays.
// Calls on a released Broker fail with ErrClosed, and the next lookup
// starts a new one.
func TestClientReleasesIdleBrokers(t *testing.T) { synctest.Test(t, testClientReleasesIdleBrokers) }

func testClientReleasesIdleBrokers(t *testing.T) {
	const idle = time.Minute
	c := newCluster(t, "service", "owner")
	redirectTo(c.servers["service"], "pulsar://owner:6650", true)
	clock := memory.NewClock(time.Unix(1_700_000_000, 0))
	cl := c.client(t, "pulsar://service", pulsarconn.WithClock(clock), pulsarconn.WithConnectionMaxIdleTime(idle),
		pulsarconn.WithOperationTimeout(10*idle))
	ctx := testenv.Context(t)
	// advance moves the clock by d in steps, letting the connections
	// answer their keepalives between them.
	advance := func(d time.Duration) {
		for ; d > 0; d -= 5 * time.Second {
			clock.Advance(min(d, 5*time.Second))
			synctest.Wait()
		}
	}
	urls := func() []string {
		var urls []string
		for _, b := range cl.Brokers() {
			urls = append(urls, b.BrokerURL())
		}
		return urls
	}
	listed := func(url string) bool {
		_, ok := cl.Registry().Get(url)
		return ok
	}

	owner, err := cl.LookupTopic(ctx, "t")
	require.NoError(t, err)
	require.NoError(t, owner.WaitConnected(ctx))
	service := cl.Brokers()[1]
	require.Equal(t, "pulsar://service:6650", service.BrokerURL())
	reg, err := owner.RegisterProducer(ctx, 1, contracttest.NewPushLog())
	require.NoError(t, err)

	advance(idle - time.Second)
	assert.Equal(t, []string{"pulsar://owner:6650", "pulsar://service:6650"}, urls(), "not idle long enough yet")
	advance(time.Second)
	assert.Equal(t, []string{"pulsar://owner:6650"}, urls(), "the service host's Broker was idle: released")
	assert.False(t, listed("pulsar://service:6650"))
	assert.Equal(t, pulsarconn.StateClosed, service.State())
	_, err = service.LookupTopic(ctx, "t", false)
	assert.ErrorIs(t, err, pulsarconn.ErrClosed)

	// The owner has a producer registered: it stays, however long.
	advance(3 * idle)
	assert.Equal(t, []string{"pulsar://owner:6650"}, urls())
	assert.Equal(t, pulsarconn.StateConnected, owner.State())

	// Without it, but with a request in flight, it stays too.
	require.NoError(t, reg.Close(ctx))
	held := c.servers["owner"].Hold(pulsarpb.BaseCommand_LOOKUP)
	answered := make(chan error, 1)
	go func() { _, err := owner.LookupTopic(ctx, "t", false); answered <- err }()
	<-held.Arrived()
	advance(2 * idle)
	assert.True(t, listed("pulsar://owner:6650"), "a request in flight")
	held.Release()
	require.NoError(t, <-answered)

	// It is idle from the answer on.
	advance(idle - 5*time.Second)
	assert.True(t, listed("pulsar://owner:6650"))
	advance(5 * time.Second)
	assert.Empty(t, urls(), "the owner's Broker was idle: released")
	assert.False(t, listed("pulsar://owner:6650"))
	_, err = owner.RegisterProducer(ctx, 2, contracttest.NewPushLog())
	assert.ErrorIs(t, err, pulsarconn.ErrClosed)

	// The next lookup starts new Brokers.
	again, err := cl.LookupTopic(ctx, "t")
	require.NoError(t, err)
	assert.NotSame(t, owner, again)
	require.NoError(t, again.WaitConnected(ctx))
	assert.Equal(t, []string{"pulsar://owner:6650", "pulsar://service:6650"}, urls())
}

// TestClientIdleReleaseOff: WithConnectionMaxIdleTime(0) keeps the
// Brokers the Client keeps until Close.
func TestClientIdleReleaseOff(t *testing.T) { synctest.Test(t, testClientIdleReleaseOff) }

func testClientIdleReleaseOff(t *testing.T) {
	c := newCluster(t, "service")
	clock := memory.NewClock(time.Unix(1_700_000_000, 0))
	cl := c.client(t, "pulsar://service", pulsarconn.WithClock(clock), pulsarconn.WithConnectionMaxIdleTime(0))
	b, err := cl.LookupTopic(testenv.Context(t), "t")
	require.NoError(t, err)
	for range 100 {
		clock.Advance(10 * time.Second)
		synctest.Wait()
	}
	assert.Equal(t, []*pulsarconn.Broker{b}, cl.Brokers())
	assert.Equal(t, pulsarconn.StateConnected, b.State())
}

// TestClientKeepsBrokersLookupsUse: a Broker that two lookups pass
// through is stopped only when the last of them ends.
func TestClientKeepsBrokersLookupsUse(t *testing.T) {
	synctest.Test(t, testClientKeepsBrokersLookupsUse)
}

func testClientKeepsBrokersLookupsUse(t *testing.T) {
	c := newCluster(t, "service", "hop", "owner")
	redirectTo(c.servers["service"], "pulsar://hop:6650", false)
	toOwner := func(id uint64) *pulsarpb.BaseCommand { return redirectAnswer(id, "pulsar://owner:6650", true) }
	// The hop redirects to the owner, but leaves the first LOOKUP
	// unanswered until the test answers it.
	var firstID uint64
	var firstConn *pulsartest.Conn
	arrived := make(chan struct{})
	c.servers["hop"].InterceptEvery(pulsarpb.BaseCommand_LOOKUP, func(call *pulsartest.Call) pulsartest.Action {
		id, _ := call.RequestID()
		if firstConn == nil {
			firstID, firstConn = id, call.Conn()
			close(arrived)
			return pulsartest.Handled
		}
		call.Reply(toOwner(id))
		return pulsartest.Handled
	})
	cl := c.client(t, "pulsar://service")
	ctx := testenv.Context(t)
	urls := func() []string {
		var urls []string
		for _, b := range cl.Brokers() {
			urls = append(urls, b.BrokerURL())
		}
		return urls
	}

	slow := make(chan error, 1)
	go func() { _, err := cl.LookupTopic(ctx, "slow"); slow <- err }()
	<-arrived
	_, err := cl.LookupTopic(ctx, "fast")
	require.NoError(t, err)
	assert.Equal(t, []string{"pulsar://hop:6650", "pulsar://owner:6650", "pulsar://service:6650"}, urls(),
		"the slow lookup still uses the hop")

	require.NoError(t, firstConn.Send(toOwner(firstID)))
	require.NoError(t, <-slow)
	assert.Equal(t, []string{"pulsar://owner:6650", "pulsar://service:6650"}, urls(), "the hop, used by no lookup, is stopped")
}

// slowRemove is a Registry whose first Remove of a stopped Broker of url
// (Stop's) waits for release: it stands for the time a released Broker's
// Stop takes before it leaves the Registry.
type slowRemove struct {
	*pulsarconn.Registry
	url     string
	release chan struct{}
	once    atomic.Bool
}

func (r *slowRemove) Remove(l ports.Listing) {
	if b := l.(*pulsarconn.Broker); b.BrokerURL() == r.url && b.State() == pulsarconn.StateClosed && r.once.CompareAndSwap(false, true) {
		<-r.release
	}
	r.Registry.Remove(l)
}

// TestClientRestartsReleasedBrokerAtOnce: a lookup that passes through a
// broker the Client is releasing (the last lookup through it ended; its
// Stop has not yet taken it out of the Registry) starts a new Broker for
// it. It used to fail: the new Broker could not be listed under the URL
// the one being stopped still held (ErrAlreadyRegistered).
func TestClientRestartsReleasedBrokerAtOnce(t *testing.T) {
	synctest.Test(t, testClientRestartsReleasedBrokerAtOnce)
}

func testClientRestartsReleasedBrokerAtOnce(t *testing.T) {
	c := newCluster(t, "service", "hop", "owner")
	redirectTo(c.servers["service"], "pulsar://hop:6650", false)
	redirectTo(c.servers["hop"], "pulsar://owner:6650", true)
	reg := &slowRemove{Registry: pulsarconn.NewRegistry(), url: "pulsar://hop:6650", release: make(chan struct{})}
	cl := c.client(t, "pulsar://service", pulsarconn.WithRegistry(reg))
	ctx := testenv.Context(t)

	first := make(chan error, 1)
	go func() { _, err := cl.LookupTopic(ctx, "first"); first <- err }()
	synctest.Wait() // the first lookup has ended; the hop's Broker is being stopped
	_, err := cl.LookupTopic(ctx, "second")
	close(reg.release)
	require.NoError(t, err, "the second lookup, through the hop again")
	require.NoError(t, <-first)
}

// TestClientReplacesRefusedBrokerAtOnce: the lookup after one the broker
// refused the credentials of starts a new Broker even while the refused
// one has not yet left the Registry (its Ended hook runs later, from its
// delivery queue). It used to fail with ErrAlreadyRegistered.
func TestClientReplacesRefusedBrokerAtOnce(t *testing.T) {
	synctest.Test(t, testClientReplacesRefusedBrokerAtOnce)
}

func testClientReplacesRefusedBrokerAtOnce(t *testing.T) {
	e := memoryEnv(t, pulsartest.WithToken("right"))
	tok := &switchToken{token: "wrong"}
	reg := &slowRemove{Registry: pulsarconn.NewRegistry(), url: e.url, release: make(chan struct{})}
	c, err := pulsarconn.NewClient(e.url, pulsarconn.WithTransport(e.transport), pulsarconn.WithAuthenticator(tok),
		pulsarconn.WithRegistry(reg))
	require.NoError(t, err)
	t.Cleanup(func() { c.Close(context.Background()) })
	ctx := testenv.Context(t)

	_, err = c.LookupTopic(ctx, "persistent://public/default/t")
	require.ErrorIs(t, err, pulsarconn.ErrAuthenticationError)
	synctest.Wait() // the refused Broker's Ended hook waits in Remove
	tok.set("right")
	_, err = c.LookupTopic(ctx, "persistent://public/default/t")
	close(reg.release)
	require.NoError(t, err)
}

// TestClientIdleFromAnswer: a kept Broker whose request is answered is
// idle from the answer on, not from the request: it used to be released
// at the first idle check after the answer (here 10 s after it), since an
// answer read from the connection did not count as a use.
func TestClientIdleFromAnswer(t *testing.T) { synctest.Test(t, testClientIdleFromAnswer) }

func testClientIdleFromAnswer(t *testing.T) {
	const idle = time.Minute
	c := newCluster(t, "service", "owner")
	redirectTo(c.servers["service"], "pulsar://owner:6650", true)
	clock := memory.NewClock(time.Unix(1_700_000_000, 0))
	// No keepalive tick in the test's time: a tick that sees the request
	// in flight counts as a use too.
	cl := c.client(t, "pulsar://service", pulsarconn.WithClock(clock), pulsarconn.WithConnectionMaxIdleTime(idle),
		pulsarconn.WithOperationTimeout(10*idle), pulsarconn.WithKeepAlive(10*idle))
	ctx := testenv.Context(t)
	advance := func(d time.Duration) {
		clock.Advance(d)
		synctest.Wait()
	}
	listed := func() bool {
		_, ok := cl.Registry().Get("pulsar://owner:6650")
		return ok
	}

	owner, err := cl.LookupTopic(ctx, "t")
	require.NoError(t, err)
	require.NoError(t, owner.WaitConnected(ctx))
	held := c.servers["owner"].Hold(pulsarpb.BaseCommand_LOOKUP)
	answered := make(chan error, 1)
	go func() { _, err := owner.LookupTopic(ctx, "t", false); answered <- err }()
	<-held.Arrived()
	advance(idle) // an idle check: in use
	advance(idle - 10*time.Second)
	held.Release()
	require.NoError(t, <-answered)
	advance(10 * time.Second) // the next idle check, 10 s after the answer
	assert.True(t, listed(), "idle for 10 s only")
	advance(idle)
	assert.False(t, listed(), "idle for the max idle time")
}
