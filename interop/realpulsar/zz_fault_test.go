package realpulsar

// This file kills the broker. It is named zz_ so that its test runs last in
// the package; it restarts the broker before it ends, pass or fail.

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// restartWithin bounds `pulsar.sh restart`, which waits until the broker
// answers a LOOKUP (about 40 s on this machine).
const restartWithin = 5 * time.Minute

// brokerPID reads the pid of the broker process (the leader of its process
// group: pulsar.sh starts it with setsid).
func brokerPID(t testing.TB, rb realBroker) int {
	t.Helper()
	b, err := os.ReadFile(rb.PIDFile)
	if err != nil {
		t.Fatalf("read %s: %v", rb.PIDFile, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		t.Fatalf("%s holds %q, not a pid", rb.PIDFile, b)
	}
	return pid
}

// signalBroker sends sig to the broker's process group, and to the process
// itself should the group be gone.
func signalBroker(pid int, sig syscall.Signal) error {
	if err := syscall.Kill(-pid, sig); err != nil {
		return syscall.Kill(pid, sig)
	}
	return nil
}

// restartBroker runs `pulsar.sh restart`, bounded, and returns how long it
// took.
func restartBroker(t testing.TB, rb realBroker) (time.Duration, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), restartWithin)
	defer cancel()
	t0 := time.Now()
	out, err := exec.CommandContext(ctx, "bash", rb.Ctl, "restart").CombinedOutput()
	took := time.Since(t0)
	if err != nil {
		t.Logf("pulsar.sh restart output:\n%s", out)
	}
	return took, err
}

// TestKillBrokerWithRequestsInFlight kills the broker with kill -9 while
// requests, synchronous and asynchronous, and published messages are in
// flight on the Broker's connection. To make "in flight" certain rather
// than a race against a broker that answers in microseconds, the broker's
// process group is first stopped (SIGSTOP): what is sent then reaches the
// broker's socket and waits there, unanswered, until the SIGKILL.
//
// It proves: every request fails exactly once, with an error that matches
// ErrDisconnected and that IsRetryable accepts; the producer is told of the
// disconnection; nothing stays pending; calls bound to the dead connection
// fail at once; after `pulsar.sh restart` the Broker reconnects by itself,
// the producer is created again on the new connection and publishes with
// receipts, and no request is answered twice or re-sent.
func TestKillBrokerWithRequestsInFlight(t *testing.T) {
	rb := env(t)
	ev := newEvents()
	b := start(t, rb.ServiceURL,
		// Retry every second at most while the broker restarts, so that
		// the reconnection follows its return closely.
		pulsarconn.WithBackoff(100*time.Millisecond, time.Second),
		pulsarconn.WithObserver(ev))
	topic := fullName(topicName(t))
	p := newProducer(t, b, topic)
	p.publish(t, 0)
	conn0 := b.Connection()
	pid := brokerPID(t, rb)
	t.Logf("broker pid %d, connection %d", pid, conn0)

	// Whatever happens below, the broker runs again when the test ends.
	var stopped, killed, restarted bool
	t.Cleanup(func() {
		switch {
		case restarted:
		case killed:
			t.Logf("the test ended with the broker killed: restarting it")
			if took, err := restartBroker(t, rb); err != nil {
				t.Errorf("restart the broker in cleanup: %v", err)
			} else {
				t.Logf("restarted in %v", took.Round(time.Second))
			}
		case stopped:
			t.Logf("the test ended with the broker stopped: continuing it")
			if err := signalBroker(pid, syscall.SIGCONT); err != nil {
				t.Errorf("SIGCONT the broker: %v", err)
			}
		}
	})

	if err := signalBroker(pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP the broker (pid %d): %v", pid, err)
	}
	stopped = true

	// In flight: m synchronous LOOKUPs bound to the connection, n
	// asynchronous PARTITIONED_METADATA, and three SENDs.
	const n, m = 500, 20
	ctx := bounded(t)
	type result struct {
		i   int
		ok  bool
		err error
	}
	// The synchronous ones first, on goroutines of their own: most are
	// pending by the kill; one not yet sent by then fails at once all the
	// same, RequestOn being bound to the killed connection.
	syncDone := make(chan result, m)
	var wg sync.WaitGroup
	for i := range m {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := b.RequestOn(ctx, conn0, &pulsarpb.BaseCommand{
				Type:        pulsarpb.BaseCommand_LOOKUP.Enum(),
				LookupTopic: &pulsarpb.CommandLookupTopic{Topic: proto.String(topic)},
			})
			syncDone <- result{i: i, ok: err == nil, err: err}
		}()
	}
	calls := make([]atomic.Int32, n) // done calls per request
	asyncDone := make(chan result, 2*n)
	for i := range n {
		err := b.RequestAsync(ctx, &pulsarpb.BaseCommand{
			Type:              pulsarpb.BaseCommand_PARTITIONED_METADATA.Enum(),
			PartitionMetadata: &pulsarpb.CommandPartitionedTopicMetadata{Topic: proto.String(topic)},
		}, func(resp *pulsarpb.BaseCommand, err error) {
			calls[i].Add(1)
			asyncDone <- result{i: i, ok: err == nil, err: err}
		})
		if err != nil {
			t.Fatalf("RequestAsync %d: %v", i, err)
		}
	}
	for seq := uint64(1); seq <= 3; seq++ {
		if err := p.send(t, seq); err != nil {
			t.Fatalf("PublishMessageOn seq %d while the broker is stopped: %v", seq, err)
		}
	}
	pending := b.Metrics().Pending
	t.Logf("pending before the kill: %d (%d asynchronous, %d of %d synchronous)", pending, n, pending-n, m)
	if pending < n {
		t.Errorf("Metrics().Pending = %d before the kill; want at least the %d asynchronous requests", pending, n)
	}

	if err := signalBroker(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL the broker (pid %d): %v", pid, err)
	}
	killed = true
	killedAt := time.Now()

	// The Broker notices at once: the kernel closes the dead process's
	// sockets.
	cc := within(t, ev.closed, safety, "ConnectionClosed after the kill")
	t.Logf("connection closed %v after the kill: %v", time.Since(killedAt).Round(time.Millisecond), cc.Err)
	// Its Err is the cause: the dead process's kernel reset the
	// connection (the broker had unread bytes, the frames sent while it
	// was stopped), or closed it.
	if cc.Err == nil || errors.Is(cc.Err, pulsarconn.ErrClosed) ||
		!(errors.Is(cc.Err, syscall.ECONNRESET) || errors.Is(cc.Err, io.EOF)) {
		t.Errorf("ConnectionClosed.Err = %v; want the connection reset or closed by the peer", cc.Err)
	}

	// Every request ends once, with a retryable ErrDisconnected.
	check := func(what string, r result) {
		t.Helper()
		if r.ok {
			t.Errorf("%s %d succeeded; the broker was stopped before it was sent", what, r.i)
			return
		}
		if !errors.Is(r.err, pulsarconn.ErrDisconnected) || !pulsarconn.IsRetryable(r.err) {
			t.Errorf("%s %d: %v (retryable %v); want a retryable ErrDisconnected", what, r.i, r.err, pulsarconn.IsRetryable(r.err))
		}
	}
	for range n {
		check("RequestAsync", within(t, asyncDone, safety, "failure of an asynchronous request"))
	}
	for range m {
		check("RequestOn", within(t, syncDone, safety, "failure of a synchronous request"))
	}
	wg.Wait()
	push := next(t, p.pushes, "PushDisconnected of the producer")
	if push.Kind != pulsarconn.PushDisconnected || !errors.Is(push.Err, pulsarconn.ErrDisconnected) {
		t.Errorf("producer push %v (err %v); want PushDisconnected with ErrDisconnected", push.Kind, push.Err)
	}
	t.Logf("all %d requests failed within %v of the kill", n+m, time.Since(killedAt).Round(time.Millisecond))

	// Nothing stays pending, and calls bound to the dead connection fail
	// at once.
	if mt := b.Metrics(); mt.Pending != 0 || mt.State == pulsarconn.StateConnected {
		t.Errorf("Metrics() = %+v after the kill; want nothing pending and not connected", mt)
	}
	if c := b.Connection(); c == conn0 {
		t.Errorf("Connection() = %d after the kill; want it changed", c)
	}
	if err := p.send(t, 4); !errors.Is(err, pulsarconn.ErrDisconnected) {
		t.Errorf("PublishMessageOn the dead connection: %v; want ErrDisconnected", err)
	}
	// A new request waits for a connection (the default) and gives up with
	// its context; it does not linger either.
	short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_, err := b.PartitionedTopicMetadata(short, topic)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("PARTITIONED_METADATA while the broker is dead: %v; want DeadlineExceeded", err)
	}
	if pend := b.Metrics().Pending; pend != 0 {
		t.Errorf("Metrics().Pending = %d; want 0", pend)
	}

	// Restart the broker on the same data; the Broker reconnects by itself.
	took, err := restartBroker(t, rb)
	if err != nil {
		t.Fatalf("pulsar.sh restart: %v", err)
	}
	restarted = true
	t.Logf("pulsar.sh restart took %v", took.Round(100*time.Millisecond))
	if err := b.WaitConnected(bounded(t)); err != nil {
		t.Fatalf("WaitConnected after the restart: %v", err)
	}
	conn1 := b.Connection()
	if conn1 == 0 || conn1 == conn0 {
		t.Errorf("Connection() = %d after reconnecting; want a new connection (was %d)", conn1, conn0)
	}
	if op := within(t, ev.opened, safety, "ConnectionOpened"); op.Reconnect {
		// The first ConnectionOpened is the first connection's.
		t.Errorf("first ConnectionOpened has Reconnect = true")
	}
	if op := within(t, ev.opened, safety, "ConnectionOpened of the reconnection"); !op.Reconnect {
		t.Errorf("ConnectionOpened after the restart has Reconnect = false")
	}
	// The Broker kept trying on its own while the broker was down (the
	// script's own readiness check, a LOOKUP, comes after the broker
	// already accepts connections, so the Broker is usually back before
	// the script returns).
	t.Logf("reconnected %v after the kill, after %d failed attempts; Stats %+v",
		ev.lastOpened().Sub(killedAt).Round(time.Millisecond), b.Stats().HandshakeFailures, b.Stats())
	if b.Stats().HandshakeFailures == 0 {
		t.Errorf("Stats().HandshakeFailures = 0: no attempt failed while the broker was down?")
	}
	if mt := b.Metrics(); mt.Reconnects < 1 || mt.Producers != 1 {
		t.Errorf("Metrics() = %+v; want a reconnection and the producer still registered", mt)
	}

	// The producer's registration survived; its owner creates it again on
	// the new connection and publishes.
	if err := p.create(bounded(t)); err != nil {
		t.Fatalf("PRODUCER again after the restart: %v", err)
	}
	if p.conn != conn1 {
		t.Errorf("producer re-created on connection %d; want %d", p.conn, conn1)
	}
	for seq := uint64(10); seq < 13; seq++ {
		p.publish(t, seq)
	}
	if _, err := b.LookupTopic(bounded(t), topic, false); err != nil {
		t.Errorf("LOOKUP after the restart: %v", err)
	}

	// Failed once, never answered or re-sent after the reconnection.
	for i := range calls {
		if c := calls[i].Load(); c != 1 {
			t.Errorf("RequestAsync %d: done called %d times; want 1", i, c)
		}
	}
	select {
	case r := <-asyncDone:
		t.Errorf("RequestAsync %d completed again after the restart: ok=%v err=%v", r.i, r.ok, r.err)
	default:
	}
	if st := b.Stats(); st.UnknownRequests != 0 {
		t.Errorf("Stats().UnknownRequests = %d: answers came for requests no longer pending", st.UnknownRequests)
	}
	if pend := b.Metrics().Pending; pend != 0 {
		t.Errorf("Metrics().Pending = %d at the end; want 0", pend)
	}
}
