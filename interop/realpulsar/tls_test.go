package realpulsar

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulsarconn/pulsarconn"
	ptls "github.com/pulsarconn/pulsarconn/adapters/tls"
)

// events records what a Broker's Observer saw, and hands the handshake
// failures and the connection ends over on channels, so that a test waits
// for them instead of polling.
type events struct {
	mu       sync.Mutex
	all      []pulsarconn.Event
	openedAt time.Time                        // when the last ConnectionOpened came
	failed   chan pulsarconn.HandshakeFailed  // every HandshakeFailed, while there is room
	opened   chan pulsarconn.ConnectionOpened // every ConnectionOpened, while there is room
	closed   chan pulsarconn.ConnectionClosed // every ConnectionClosed, while there is room
}

func newEvents() *events {
	return &events{
		failed: make(chan pulsarconn.HandshakeFailed, 1024),
		opened: make(chan pulsarconn.ConnectionOpened, 1024),
		closed: make(chan pulsarconn.ConnectionClosed, 1024),
	}
}

// Observe implements pulsarconn.Observer; it never blocks.
func (e *events) Observe(ev pulsarconn.Event) {
	e.mu.Lock()
	e.all = append(e.all, ev)
	if _, ok := ev.(pulsarconn.ConnectionOpened); ok {
		e.openedAt = time.Now()
	}
	e.mu.Unlock()
	switch ev := ev.(type) {
	case pulsarconn.HandshakeFailed:
		select {
		case e.failed <- ev:
		default:
		}
	case pulsarconn.ConnectionOpened:
		select {
		case e.opened <- ev:
		default:
		}
	case pulsarconn.ConnectionClosed:
		select {
		case e.closed <- ev:
		default:
		}
	}
}

// lastOpened returns when the last ConnectionOpened came.
func (e *events) lastOpened() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.openedAt
}

// count returns how many of the events seen match.
func (e *events) count(match func(pulsarconn.Event) bool) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.all {
		if match(ev) {
			n++
		}
	}
	return n
}

func isClosed(ev pulsarconn.Event) bool { _, ok := ev.(pulsarconn.ConnectionClosed); return ok }
func isFailed(ev pulsarconn.Event) bool { _, ok := ev.(pulsarconn.HandshakeFailed); return ok }
func isOpened(ev pulsarconn.Event) bool { _, ok := ev.(pulsarconn.ConnectionOpened); return ok }

// within receives one value from ch within d, or fails the test.
func within[T any](t testing.TB, ch <-chan T, d time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("no %s within %v", what, d)
		var zero T
		return zero
	}
}

// startRefused starts a Broker that is expected never to connect, stops it
// when the test ends, and returns it with its event recorder.
func startRefused(t *testing.T, url string, opts ...pulsarconn.BrokerOption) (*pulsarconn.Broker, *events) {
	t.Helper()
	ev := newEvents()
	b, err := pulsarconn.Start(url, append(opts, pulsarconn.WithObserver(ev))...)
	if err != nil {
		t.Fatalf("Start(%s): %v", url, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), safety)
		defer cancel()
		if err := b.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return b, ev
}

// refusedWithin is how long a test lets a Broker that cannot connect try
// before WaitConnected gives up: long enough for several attempts against
// a broker on loopback, short enough that a hang would show.
const refusedWithin = 3 * time.Second

// waitRefused calls WaitConnected with a context of refusedWithin, checks
// that it fails at the context's end (not before, not long after) and
// returns its error.
func waitRefused(t *testing.T, b *pulsarconn.Broker) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), refusedWithin)
	defer cancel()
	t0 := time.Now()
	err := b.WaitConnected(ctx)
	took := time.Since(t0)
	if err == nil {
		t.Fatalf("WaitConnected succeeded; the connection must be refused")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitConnected: %v; want it to wrap context.DeadlineExceeded", err)
	}
	if took > refusedWithin+2*time.Second {
		t.Errorf("WaitConnected returned %v after its context ended", took-refusedWithin)
	}
	if st := b.State(); st == pulsarconn.StateConnected {
		t.Errorf("State = %v after a refused connection", st)
	}
	t.Logf("WaitConnected after %v: %v", took.Round(time.Millisecond), err)
	return err
}

// waitFinal checks that a Broker whose credentials the broker refused has
// ended: WaitConnected returns the refusal at once (well before a context
// of refusedWithin ends), an error matching ErrAuthenticationError and
// ErrClosed that IsRetryable reports false for, and the Broker is closed.
func waitFinal(t *testing.T, b *pulsarconn.Broker) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), refusedWithin)
	defer cancel()
	err := b.WaitConnected(ctx)
	if err == nil || ctx.Err() != nil {
		t.Fatalf("WaitConnected: %v (context: %v); want the refusal before the context ends", err, ctx.Err())
	}
	if !errors.Is(err, pulsarconn.ErrAuthenticationError) || !errors.Is(err, pulsarconn.ErrClosed) {
		t.Errorf("WaitConnected: %v; want it to match ErrAuthenticationError and ErrClosed", err)
	}
	if pulsarconn.IsRetryable(err) {
		t.Errorf("IsRetryable(%v) = true; a refusal is final", err)
	}
	if st := b.State(); st != pulsarconn.StateClosed {
		t.Errorf("State = %v after a refusal; want %v", st, pulsarconn.StateClosed)
	}
	return err
}

// TestTLSVerifiedConnection connects to the broker's TLS port, verifying
// its certificate against the CA of this run, under both names the
// certificate holds, and asks it a LOOKUP: the answer names the broker's
// own TLS URL, which the broker only fills in for a TLS listener it runs.
func TestTLSVerifiedConnection(t *testing.T) {
	rb := env(t)
	for _, url := range []string{
		rb.ServiceURLTLS, // by IP address: the certificate's IP SAN
		strings.Replace(rb.ServiceURLTLS, "127.0.0.1", "localhost", 1), // by name: its DNS SAN
	} {
		t.Run(url, func(t *testing.T) {
			ev := newEvents()
			t0 := time.Now()
			b := start(t, url,
				pulsarconn.WithTransport(ptls.New(ptls.WithRootCAFile(rb.CAFile))),
				pulsarconn.WithObserver(ev))
			t.Logf("connected over TLS in %v", time.Since(t0).Round(time.Millisecond))
			if b.Connection() == 0 {
				t.Fatalf("Connection() = 0 after WaitConnected")
			}
			if v, proto := b.ServerVersion(); v == "" || proto <= 0 {
				t.Errorf("ServerVersion() = %q, %d: CONNECTED not seen", v, proto)
			}

			topic := fullName(topicName(t))
			res, err := b.LookupTopic(bounded(t), topic, false)
			if err != nil {
				t.Fatalf("LOOKUP %s over TLS: %v", topic, err)
			}
			if res.Redirect {
				t.Errorf("LOOKUP answered Redirect on a standalone broker: %+v", res)
			}
			if res.BrokerURLTLS != rb.ServiceURLTLS {
				t.Errorf("LOOKUP BrokerURLTLS = %q; want %q", res.BrokerURLTLS, rb.ServiceURLTLS)
			}
			if n, err := b.PartitionedTopicMetadata(bounded(t), topic); err != nil || n != 0 {
				t.Errorf("PARTITIONED_METADATA over TLS = %d, %v; want 0, nil", n, err)
			}
			if n := ev.count(isFailed); n != 0 {
				t.Errorf("%d failed handshakes before connecting; want none", n)
			}
		})
	}
}

// TestTLSWrongCARefused trusts a CA that did not sign the broker's
// certificate: every attempt fails the TLS handshake with
// ErrUnknownAuthority (and crypto/x509's error underneath), the failure is
// reported at once rather than after a timeout, and WaitConnected returns
// when its context ends with an error that carries the TLS cause.
func TestTLSWrongCARefused(t *testing.T) {
	rb := env(t)
	t0 := time.Now()
	b, ev := startRefused(t, rb.ServiceURLTLS,
		pulsarconn.WithTransport(ptls.New(ptls.WithRootCAFile(rb.WrongCAFile))),
		pulsarconn.WithConnectTimeout(10*time.Second))

	// The first attempt fails on the certificate, well before the connect
	// timeout: the handshake is refused, not left to time out.
	hf := within(t, ev.failed, safety, "HandshakeFailed")
	first := time.Since(t0)
	t.Logf("first handshake failure after %v: %v", first.Round(time.Millisecond), hf.Err)
	if !errors.Is(hf.Err, ptls.ErrUnknownAuthority) {
		t.Fatalf("HandshakeFailed.Err = %v; want ErrUnknownAuthority", hf.Err)
	}
	if errors.Is(hf.Err, pulsarconn.ErrConnectTimeout) || first > 5*time.Second {
		t.Errorf("the first attempt took %v (%v); want a prompt refusal", first, hf.Err)
	}

	err := waitRefused(t, b)
	if !errors.Is(err, ptls.ErrUnknownAuthority) {
		t.Errorf("WaitConnected: %v; want it to wrap ErrUnknownAuthority", err)
	}
	var ua x509.UnknownAuthorityError
	if !errors.As(err, &ua) {
		t.Errorf("WaitConnected: %v; want an x509.UnknownAuthorityError underneath", err)
	}
	if b.Connection() != 0 {
		t.Errorf("Connection() = %d; want 0", b.Connection())
	}
	if n := ev.count(isOpened); n != 0 {
		t.Errorf("%d connections opened with an untrusted certificate", n)
	}
	if s := b.Stats(); s.HandshakeFailures == 0 {
		t.Errorf("Stats().HandshakeFailures = 0")
	}

	// A call while refused fails with the caller's context, not a hang.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := b.LookupTopic(ctx, fullName(topicName(t)), false); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("LOOKUP while refused: %v; want context.DeadlineExceeded", err)
	}
	if p := b.Metrics().Pending; p != 0 {
		t.Errorf("Metrics().Pending = %d after the LOOKUP gave up; want 0", p)
	}
}

// TestTLSHostnameMismatchRefused trusts the right CA but checks the
// certificate against a name it does not hold: every attempt fails with
// ErrHostnameMismatch (an x509.HostnameError underneath).
func TestTLSHostnameMismatchRefused(t *testing.T) {
	rb := env(t)
	b, ev := startRefused(t, rb.ServiceURLTLS,
		pulsarconn.WithTransport(ptls.New(ptls.WithRootCAFile(rb.CAFile), ptls.WithServerName("wrong.example"))))

	hf := within(t, ev.failed, safety, "HandshakeFailed")
	if !errors.Is(hf.Err, ptls.ErrHostnameMismatch) {
		t.Fatalf("HandshakeFailed.Err = %v; want ErrHostnameMismatch", hf.Err)
	}
	err := waitRefused(t, b)
	if !errors.Is(err, ptls.ErrHostnameMismatch) {
		t.Errorf("WaitConnected: %v; want it to wrap ErrHostnameMismatch", err)
	}
	var he x509.HostnameError
	if !errors.As(err, &he) {
		t.Errorf("WaitConnected: %v; want an x509.HostnameError underneath", err)
	} else if he.Host != "wrong.example" {
		t.Errorf("x509.HostnameError.Host = %q; want wrong.example", he.Host)
	}
	if errors.Is(err, ptls.ErrUnknownAuthority) {
		t.Errorf("WaitConnected: %v; the CA is the right one, so not ErrUnknownAuthority", err)
	}
	if n := ev.count(isOpened); n != 0 {
		t.Errorf("%d connections opened under the wrong name", n)
	}
}
