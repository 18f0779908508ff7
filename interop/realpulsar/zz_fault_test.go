package realpulsar

// This file kills the broker. It is named zz_ so that its test runs last in
// the package; it restarts the broker before it ends, pass or fail.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
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

// brokerGuard kills and restarts the broker for one test and makes sure
// it runs again when the test ends, whatever happened: restarted if it was
// killed and not restarted yet, continued if it was stopped and not
// killed.
type brokerGuard struct {
	t                          testing.TB
	rb                         realBroker
	pid                        int
	stopped, killed, restarted bool
}

// guardBroker reads the pid of the broker process (the leader of its
// process group: pulsar.sh starts it with setsid) and registers the
// cleanup.
func guardBroker(t testing.TB, rb realBroker) *brokerGuard {
	t.Helper()
	b, err := os.ReadFile(rb.PIDFile)
	if err != nil {
		t.Fatalf("read %s: %v", rb.PIDFile, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		t.Fatalf("%s holds %q, not a pid", rb.PIDFile, b)
	}
	g := &brokerGuard{t: t, rb: rb, pid: pid}
	t.Cleanup(func() {
		switch {
		case g.restarted:
		case g.killed:
			t.Logf("the test ended with the broker killed: restarting it")
			if took, err := g.runRestart(); err != nil {
				t.Errorf("restart the broker in cleanup: %v", err)
			} else {
				t.Logf("restarted in %v", took.Round(time.Second))
			}
		case g.stopped:
			t.Logf("the test ended with the broker stopped: continuing it")
			if err := g.signal(syscall.SIGCONT); err != nil {
				t.Errorf("SIGCONT the broker: %v", err)
			}
		}
	})
	return g
}

// signal sends sig to the broker's process group, and to the process
// itself should the group be gone.
func (g *brokerGuard) signal(sig syscall.Signal) error {
	if err := syscall.Kill(-g.pid, sig); err != nil {
		return syscall.Kill(g.pid, sig)
	}
	return nil
}

// stop freezes the broker (SIGSTOP to its group) and returns once every
// thread of the broker's process is stopped. kill(2) only queues the
// signal: a thread running on another CPU goes on until it next enters
// the kernel, and a CI run saw the broker answer 4 of 20 LOOKUPs sent
// just after the SIGSTOP. The kernel says when a thread has stopped (state
// T in /proc/PID/task/TID/stat) but offers no way to wait for that in a
// process that is not our child, so stop reads those states until all
// say so.
func (g *brokerGuard) stop() {
	g.t.Helper()
	if err := g.signal(syscall.SIGSTOP); err != nil {
		g.t.Fatalf("SIGSTOP the broker (pid %d): %v", g.pid, err)
	}
	g.stopped = true
	sent := time.Now()
	deadline := sent.Add(time.Minute)
	for reads := 1; ; reads++ {
		running, err := g.runningThreads()
		if err != nil {
			g.t.Fatalf("SIGSTOP the broker (pid %d): %v", g.pid, err)
		}
		if running == 0 {
			g.t.Logf("every thread of the broker stopped %v after the SIGSTOP (%d reads of their states)", time.Since(sent).Round(time.Microsecond), reads)
			return
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("SIGSTOP the broker (pid %d): %d threads still running after a minute", g.pid, running)
		}
		runtime.Gosched()
	}
}

// runningThreads counts the threads of the broker's process that are not
// stopped.
func (g *brokerGuard) runningThreads() (int, error) {
	dir := fmt.Sprintf("/proc/%d/task", g.pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	running := 0
	for _, task := range tasks {
		stat, err := os.ReadFile(dir + "/" + task.Name() + "/stat")
		if err != nil {
			continue // the thread has ended
		}
		// The state follows the command name, which is in parentheses
		// and may itself hold spaces or parentheses.
		i := strings.LastIndexByte(string(stat), ')')
		if i < 0 || i+2 >= len(stat) {
			return 0, fmt.Errorf("%s/%s/stat: unexpected %q", dir, task.Name(), stat)
		}
		if st := stat[i+2]; st != 'T' && st != 't' && st != 'Z' && st != 'X' {
			running++
		}
	}
	return running, nil
}

// kill is kill -9 of the broker's group; it returns when it was sent.
func (g *brokerGuard) kill() time.Time {
	g.t.Helper()
	if err := g.signal(syscall.SIGKILL); err != nil {
		g.t.Fatalf("SIGKILL the broker (pid %d): %v", g.pid, err)
	}
	g.killed = true
	return time.Now()
}

// restart runs `pulsar.sh restart`, bounded, and returns how long it took.
func (g *brokerGuard) restart() time.Duration {
	g.t.Helper()
	took, err := g.runRestart()
	if err != nil {
		g.t.Fatalf("pulsar.sh restart: %v", err)
	}
	g.restarted = true
	g.t.Logf("pulsar.sh restart took %v", took.Round(100*time.Millisecond))
	return took
}

func (g *brokerGuard) runRestart() (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), restartWithin)
	defer cancel()
	t0 := time.Now()
	out, err := exec.CommandContext(ctx, "bash", g.rb.Ctl, "restart").CombinedOutput()
	took := time.Since(t0)
	if err != nil {
		g.t.Logf("pulsar.sh restart output:\n%s", out)
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
	g := guardBroker(t, rb)
	t.Logf("broker pid %d, connection %d", g.pid, conn0)

	g.stop()

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

	killedAt := g.kill()

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
	g.restart()
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

// TestKillBrokerUnderLoad kills the broker with kill -9 in the middle of
// live traffic, without stopping it first: chains of asynchronous requests
// (each answer sends the next request) and a producer publishing with a
// window of unacknowledged messages. The connection dies wherever it
// happens to be, answers half read included. Under WithFailFast a chain
// ends at the first RequestAsync refused for the disconnection.
//
// It proves: every request sent ends exactly once, answered or failed
// with a retryable ErrDisconnected, and some were in flight; the receipts
// that came are the first messages in order, with none after the
// disconnection; nothing stays pending; after `pulsar.sh restart` the
// Broker reconnects by itself and the producer, created again on the new
// connection, publishes with receipts.
func TestKillBrokerUnderLoad(t *testing.T) {
	rb := env(t)
	ev := newEvents()
	b := start(t, rb.ServiceURL,
		pulsarconn.WithBackoff(100*time.Millisecond, time.Second),
		pulsarconn.WithFailFast(true),
		pulsarconn.WithObserver(ev))
	topic := fullName(topicName(t))
	conn0 := b.Connection()
	g := guardBroker(t, rb)
	ctx := bounded(t)

	// The chains of requests.
	const chains = 200
	var (
		sent, answered, failed, doubled atomic.Int64
		mu                              sync.Mutex
		badErrs                         []error // failures that are not a retryable ErrDisconnected
		refused                         []error // RequestAsync's own refusals, ending the chains
	)
	ended := make(chan struct{}, chains)
	warm := make(chan struct{}) // closed at the 2000th answer
	var warmOnce sync.Once
	cmd := func() *pulsarpb.BaseCommand {
		return &pulsarpb.BaseCommand{
			Type:              pulsarpb.BaseCommand_PARTITIONED_METADATA.Enum(),
			PartitionMetadata: &pulsarpb.CommandPartitionedTopicMetadata{Topic: proto.String(topic)},
		}
	}
	var issue func()
	issue = func() {
		var calls atomic.Int32
		err := b.RequestAsync(ctx, cmd(), func(_ *pulsarpb.BaseCommand, err error) {
			if calls.Add(1) > 1 {
				doubled.Add(1)
				return
			}
			if err == nil {
				if answered.Add(1) == 2000 {
					warmOnce.Do(func() { close(warm) })
				}
			} else {
				failed.Add(1)
				if !errors.Is(err, pulsarconn.ErrDisconnected) || !pulsarconn.IsRetryable(err) {
					mu.Lock()
					badErrs = append(badErrs, err)
					mu.Unlock()
				}
			}
			issue()
		})
		if err != nil {
			mu.Lock()
			refused = append(refused, err)
			mu.Unlock()
			ended <- struct{}{}
			return
		}
		sent.Add(1)
	}

	// The producer: a window of 100 messages awaiting their receipts.
	const window = 100
	slots := make(chan struct{}, window)
	dead := make(chan struct{}) // closed at the producer's PushDisconnected
	var (
		receipts []uint64
		others   []pulsarconn.Push
	)
	h := pulsarconn.HandlerFunc(func(p pulsarconn.Push) {
		mu.Lock()
		defer mu.Unlock()
		switch p.Kind {
		case pulsarconn.PushReceipt:
			receipts = append(receipts, p.Command.GetSendReceipt().GetSequenceId())
			select {
			case <-slots:
			default: // a receipt for a message not in the window
				others = append(others, p)
			}
		case pulsarconn.PushDisconnected:
			select {
			case <-dead:
				others = append(others, p)
			default:
				close(dead)
			}
		default:
			others = append(others, p)
		}
	})
	regCtx, cancelReg := context.WithCancel(context.Background())
	t.Cleanup(cancelReg)
	pid := b.NewProducerID()
	if _, err := b.RegisterProducer(regCtx, pid, h); err != nil {
		t.Fatalf("RegisterProducer: %v", err)
	}
	if err := lookupHere(ctx, b, topic); err != nil {
		t.Fatal(err)
	}
	ok, err := createProducer(ctx, b, conn0, pid, topic)
	if err != nil {
		t.Fatalf("PRODUCER: %v", err)
	}
	name := ok.GetProducerName()
	var published atomic.Uint64 // the last sequence id published
	pubErr := make(chan error, 1)
	go func() {
		for seq := uint64(1); ; seq++ {
			select {
			case slots <- struct{}{}:
			case <-dead:
				pubErr <- nil
				return
			case <-ctx.Done():
				pubErr <- ctx.Err()
				return
			}
			if err := b.PublishMessageOn(ctx, conn0, sendFrame(t, pid, seq, name, []byte("under load"))); err != nil {
				pubErr <- err
				return
			}
			published.Store(seq)
		}
	}()

	for range chains {
		issue()
	}
	within(t, warm, safety, "2000 answers before the kill")
	killedAt := g.kill()
	t.Logf("killed after %d answers, %d receipts; %d requests pending", answered.Load(), func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(receipts)
	}(), b.Metrics().Pending)

	cc := within(t, ev.closed, safety, "ConnectionClosed after the kill")
	t.Logf("connection closed %v after the kill: %v", time.Since(killedAt).Round(time.Millisecond), cc.Err)
	for i := range chains {
		within(t, ended, safety, fmt.Sprintf("the end of chain %d of %d", i+1, chains))
	}
	within(t, dead, safety, "the producer's PushDisconnected")
	if err := within(t, pubErr, safety, "the publisher's end"); err != nil && !errors.Is(err, pulsarconn.ErrDisconnected) {
		t.Errorf("the publisher ended with %v; want ErrDisconnected or the disconnection push", err)
	}

	// Every request sent ended once; those in flight failed retryably.
	t.Logf("%d requests sent: %d answered, %d failed by the disconnection; %d messages published, receipts for %d",
		sent.Load(), answered.Load(), failed.Load(), published.Load(), len(receipts))
	if s, a, f := sent.Load(), answered.Load(), failed.Load(); a+f != s {
		t.Errorf("%d requests sent, %d answered + %d failed: %d never ended", s, a, f, s-a-f)
	}
	if f := failed.Load(); f == 0 {
		t.Errorf("no request was in flight at the kill")
	}
	if d := doubled.Load(); d != 0 {
		t.Errorf("%d done functions called more than once", d)
	}
	mu.Lock()
	for _, err := range badErrs {
		t.Errorf("a request failed with %v; want a retryable ErrDisconnected", err)
	}
	for _, err := range refused {
		if !errors.Is(err, pulsarconn.ErrDisconnected) {
			t.Errorf("RequestAsync refused with %v; want ErrDisconnected (WithFailFast)", err)
		}
	}
	for i, seq := range receipts {
		if seq != uint64(i+1) {
			t.Errorf("receipt %d is for message %d; want the messages' order", i, seq)
			break
		}
	}
	if uint64(len(receipts)) > published.Load() {
		t.Errorf("%d receipts for %d messages", len(receipts), published.Load())
	}
	for _, p := range others {
		t.Errorf("unexpected producer push %v (err %v)", p.Kind, p.Err)
	}
	acked := len(receipts)
	// The messages never acknowledged free their slots: no receipt
	// comes for them after the disconnection.
	for drained := false; !drained; {
		select {
		case <-slots:
		default:
			drained = true
		}
	}
	mu.Unlock()
	if mt := b.Metrics(); mt.Pending != 0 || mt.State == pulsarconn.StateConnected {
		t.Errorf("Metrics() = %+v after the kill; want nothing pending and not connected", mt)
	}

	g.restart()
	if err := b.WaitConnected(bounded(t)); err != nil {
		t.Fatalf("WaitConnected after the restart: %v", err)
	}
	conn1 := b.Connection()
	t.Logf("reconnected %v after the kill", ev.lastOpened().Sub(killedAt).Round(time.Millisecond))
	if conn1 == conn0 {
		t.Errorf("Connection() = %d after the restart; want a new one", conn1)
	}

	// Created again on the new connection, the producer publishes: the
	// messages never acknowledged are the owner's to send again.
	if err := lookupHere(bounded(t), b, topic); err != nil {
		t.Fatal(err)
	}
	ok, err = createProducer(bounded(t), b, conn1, pid, topic)
	if err != nil {
		t.Fatalf("PRODUCER again after the restart: %v", err)
	}
	first := uint64(acked + 1)
	for seq := first; seq < first+window; seq++ {
		slots <- struct{}{}
		if err := b.PublishMessageOn(bounded(t), conn1, sendFrame(t, pid, seq, ok.GetProducerName(), []byte("after the restart"))); err != nil {
			t.Fatalf("PublishMessageOn %d after the restart: %v", seq, err)
		}
	}
	// Each receipt frees a slot: the window is empty again once all came.
	for range window {
		select {
		case slots <- struct{}{}:
		case <-time.After(safety):
			mu.Lock()
			t.Fatalf("receipts after the restart: %d of %d", len(receipts)-acked, window)
			mu.Unlock()
		}
	}
	mu.Lock()
	after := receipts[acked:]
	mu.Unlock()
	for i, seq := range after {
		if seq != first+uint64(i) {
			t.Errorf("receipt %d after the restart is for message %d; want %d", i, seq, first+uint64(i))
			break
		}
	}
	if len(after) != window {
		t.Errorf("%d receipts after the restart; want %d", len(after), window)
	}
	if d := doubled.Load(); d != 0 {
		t.Errorf("%d done functions called again after the restart", d)
	}
	if st := b.Stats(); st.UnknownRequests != 0 {
		t.Errorf("Stats().UnknownRequests = %d", st.UnknownRequests)
	}
	if pend := b.Metrics().Pending; pend != 0 {
		t.Errorf("Metrics().Pending = %d at the end; want 0", pend)
	}
}
