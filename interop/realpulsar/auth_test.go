package realpulsar

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/adapters/auth/token"
)

// producer is a producer created on the real broker through the Broker's
// public API, as a producer library would: registered for its pushes,
// created with RequestOn on one connection, publishing with
// PublishMessageOn on that same connection.
type producer struct {
	b      *pulsarconn.Broker
	id     uint64
	topic  string
	name   string // the broker's name for it, from PRODUCER_SUCCESS
	conn   uint64 // the connection it was created on
	pushes chan pulsarconn.Push
	reg    *pulsarconn.Registration
}

// newProducer registers a producer on b for as long as the test runs and
// creates it on topic on the current connection.
func newProducer(t testing.TB, b *pulsarconn.Broker, topic string) *producer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch, h := pushes(1024)
	p := &producer{b: b, id: b.NewProducerID(), topic: topic, pushes: ch}
	reg, err := b.RegisterProducer(ctx, p.id, h)
	if err != nil {
		t.Fatalf("RegisterProducer(%d): %v", p.id, err)
	}
	p.reg = reg
	if err := p.create(bounded(t)); err != nil {
		t.Fatalf("PRODUCER %d on %s: %v", p.id, topic, err)
	}
	return p
}

// create looks the topic up, as a producer library does first (a broker
// only serves the topics of the namespace bundles it owns, and a LOOKUP is
// what makes a freshly started broker take a bundle on: PRODUCER before it
// fails with ServiceNotReady, "Please redo the lookup"), then sends
// PRODUCER for the producer's id on the Broker's current connection and
// remembers that connection.
func (p *producer) create(ctx context.Context) error {
	if err := lookupHere(ctx, p.b, p.topic); err != nil {
		return err
	}
	conn := p.b.Connection()
	ok, err := createProducer(ctx, p.b, conn, p.id, p.topic)
	if err != nil {
		return err
	}
	p.name, p.conn = ok.GetProducerName(), conn
	return nil
}

// lookupHere looks topic up on b and checks that b's broker serves it
// (the standalone broker answers Connect to itself).
func lookupHere(ctx context.Context, b *pulsarconn.Broker, topic string) error {
	res, err := b.LookupTopic(ctx, topic, false)
	if err != nil {
		return fmt.Errorf("LOOKUP %s: %w", topic, err)
	}
	if res.Redirect || res.BrokerURL != b.BrokerURL() {
		return fmt.Errorf("LOOKUP %s: %+v; want this broker, %s", topic, res, b.BrokerURL())
	}
	return nil
}

// publish sends message seq on the producer's connection and waits for its
// receipt; any other push first fails the test.
func (p *producer) publish(t testing.TB, seq uint64) {
	t.Helper()
	if err := p.send(t, seq); err != nil {
		t.Fatalf("PublishMessageOn seq %d: %v", seq, err)
	}
	p.receipt(t, seq)
}

// send publishes message seq on the producer's connection without waiting.
func (p *producer) send(t testing.TB, seq uint64) error {
	t.Helper()
	payload := []byte(fmt.Sprintf("%s message %d", t.Name(), seq))
	return p.b.PublishMessageOn(bounded(t), p.conn, sendFrame(t, p.id, seq, p.name, payload))
}

// receipt waits for the receipt of message seq.
func (p *producer) receipt(t testing.TB, seq uint64) {
	t.Helper()
	push := next(t, p.pushes, fmt.Sprintf("receipt of message %d", seq))
	if push.Kind != pulsarconn.PushReceipt {
		t.Fatalf("push %v (err %v) for producer %d; want the receipt of message %d", push.Kind, push.Err, p.id, seq)
	}
	r := push.Command.GetSendReceipt()
	if r.GetSequenceId() != seq || r.GetMessageId() == nil {
		t.Fatalf("receipt %v; want sequence id %d with a message id", r, seq)
	}
}

// readKey reads the broker's token secret.
func readKey(t testing.TB, rb realBroker) []byte {
	t.Helper()
	key, err := os.ReadFile(rb.SecretFile)
	if err != nil {
		t.Fatalf("read the token secret: %v", err)
	}
	return key
}

// uniqueRole is a token subject (the broker's role) no other test uses, so
// that the broker's log lines about it are this test's.
func uniqueRole(t testing.TB) string {
	return strings.ToLower(strings.ReplaceAll(topicName(t), "realpulsar-", "role-"))
}

// brokerLog returns the lines of the broker's log (PULSAR_LOG) that
// contain every one of words.
func brokerLog(t testing.TB, words ...string) []string {
	t.Helper()
	path := os.Getenv("PULSAR_LOG")
	if path == "" {
		t.Fatalf("PULSAR_LOG is not set: eval the variables `bash scripts/pulsar.sh env` prints")
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open the broker's log: %v", err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
scan:
	for sc.Scan() {
		for _, w := range words {
			if !strings.Contains(sc.Text(), w) {
				continue scan
			}
		}
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read the broker's log: %v", err)
	}
	return lines
}

// TestTokenAuthValidToken connects with a token signed with the broker's
// secret, creates a producer and publishes with a receipt.
func TestTokenAuthValidToken(t *testing.T) {
	rb := env(t)
	role := uniqueRole(t)
	ev := newEvents()
	b := start(t, rb.ServiceURL,
		pulsarconn.WithAuthenticator(token.New(mintToken(t, rb.SecretFile, role, time.Now().Add(time.Hour)))),
		pulsarconn.WithObserver(ev))
	p := newProducer(t, b, fullName(topicName(t)))
	for seq := range uint64(3) {
		p.publish(t, seq)
	}
	if n := ev.count(isFailed); n != 0 {
		t.Errorf("%d failed handshakes with a valid token", n)
	}
	if st := b.Stats(); st.HandshakeFailures != 0 || st.Reconnects != 0 {
		t.Errorf("Stats() = %+v; want no failure and no reconnection", st)
	}
	// The broker authenticated the connection as the token's subject.
	if lines := brokerLog(t, "connected with role="+role+" using authMethod=token"); len(lines) != 1 {
		t.Errorf("the broker's log has %d connections of role %s; want 1:\n%s", len(lines), role, strings.Join(lines, "\n"))
	}
}

// TestTokenAuthRefused presents tokens the broker must refuse: one signed
// with another key, one that has expired. The broker answers CONNECT with
// an AuthenticationError: the handshake fails promptly with an error
// matching ErrAuthenticationError (not retryable), the refusal is final
// (WaitConnected returns it at once and the Broker is closed), and nothing
// connects.
func TestTokenAuthRefused(t *testing.T) {
	rb := env(t)
	otherKey := make([]byte, 32)
	if _, err := rand.Read(otherKey); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		tok    func(role string) string
		reason string // in the broker's log line of the refusal
	}{
		{"another key", func(role string) string { return signToken(otherKey, role, time.Time{}) },
			"JWT signature does not match"},
		{"expired", func(role string) string { return mintToken(t, rb.SecretFile, role, time.Now().Add(-time.Minute)) },
			"JWT expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			role := uniqueRole(t)
			refusals := len(brokerLog(t, "Failed to authenticate: operation=connect", tc.reason))
			t0 := time.Now()
			b, ev := startRefused(t, rb.ServiceURL, pulsarconn.WithAuthenticator(token.New(tc.tok(role))))

			hf := within(t, ev.failed, safety, "HandshakeFailed")
			first := time.Since(t0)
			t.Logf("first handshake failure after %v: %v", first.Round(time.Millisecond), hf.Err)
			if !errors.Is(hf.Err, pulsarconn.ErrAuthenticationError) {
				t.Fatalf("HandshakeFailed.Err = %v; want ErrAuthenticationError", hf.Err)
			}
			var se *pulsarconn.ServerError
			if !errors.As(hf.Err, &se) {
				t.Errorf("HandshakeFailed.Err = %v; want a *ServerError from the broker", hf.Err)
			}
			if pulsarconn.IsRetryable(hf.Err) {
				t.Errorf("IsRetryable(%v) = true; a refused credential is not retryable", hf.Err)
			}
			if first > 5*time.Second {
				t.Errorf("the broker's refusal took %v to surface", first)
			}

			waitFinal(t, b)
			if n := ev.count(isOpened); n != 0 {
				t.Errorf("%d connections opened with a refused token", n)
			}
			if b.Connection() != 0 {
				t.Errorf("Connection() = %d; want 0", b.Connection())
			}
			// The broker logged the refusals, for this reason (the log
			// does not name the role of a refused token), and no line
			// names this role.
			if n := len(brokerLog(t, "Failed to authenticate: operation=connect", tc.reason)) - refusals; n < 1 {
				t.Errorf("the broker's log has no new refusal for %q", tc.reason)
			}
			if lines := brokerLog(t, role); len(lines) != 0 {
				t.Errorf("the broker's log names role %s, which must never authenticate:\n%s", role, strings.Join(lines, "\n"))
			}
		})
	}
}

// TestTokenAuthRefreshThroughChallenge connects with tokens that expire
// three seconds after they are minted. The broker, checking every second,
// sends AUTH_CHALLENGE when the token it accepted has expired; the Broker
// answers with a fresh token from the same function, and the connection
// survives round after round (four, of which the broker's log must show
// at least three accepted): the same connection id, no reconnection, no
// failed handshake, and the producer made on it before the first refresh
// still publishes with receipts after the last. The broker's log confirms
// each refresh.
func TestTokenAuthRefreshThroughChallenge(t *testing.T) {
	rb := env(t)
	key := readKey(t, rb)
	role := uniqueRole(t)
	const life = 3 * time.Second
	const rounds = 3

	var calls atomic.Int64
	called := make(chan time.Time, 64)
	auth := token.FromFunc(func(ctx context.Context) (string, error) {
		now := time.Now()
		tok := signToken(key, role, now.Add(life))
		calls.Add(1)
		select {
		case called <- now:
		default:
		}
		return tok, nil
	})
	ev := newEvents()
	b := start(t, rb.ServiceURL, pulsarconn.WithAuthenticator(auth), pulsarconn.WithObserver(ev))
	initial := within(t, called, safety, "call for the CONNECT token")
	conn := b.Connection()
	p := newProducer(t, b, fullName(topicName(t)))
	p.publish(t, 0)

	// Each round: the token expires (within life, as exp is whole
	// seconds), the broker notices within its 1 s check and challenges,
	// the Broker asks the function for a new token. The wait is the real
	// broker's clock; it is bounded well above life plus the check. The
	// broker challenges again only once it has accepted the previous
	// answer and that token has expired, so a round past the last counted
	// one proves the last counted answer accepted.
	prev := initial
	for round := 1; round <= rounds+1; round++ {
		at := within(t, called, life+10*time.Second, fmt.Sprintf("AUTH_CHALLENGE of round %d", round))
		t.Logf("round %d: challenged %v after the previous token was minted", round, at.Sub(prev).Round(time.Millisecond))
		if gap := at.Sub(prev); gap < life-time.Second {
			t.Errorf("round %d came %v after the previous token: before it could have expired", round, gap)
		}
		prev = at
		// The connection carries on: same connection, requests and
		// publishes answered, the producer made before the first refresh
		// still there.
		if got := b.Connection(); got != conn {
			t.Fatalf("round %d: Connection() = %d; want %d (no reconnection)", round, got, conn)
		}
		if _, err := b.LookupTopic(bounded(t), p.topic, false); err != nil {
			t.Fatalf("round %d: LOOKUP after the refresh: %v", round, err)
		}
		p.publish(t, uint64(round))
	}

	if got := b.Connection(); got != conn {
		t.Errorf("Connection() = %d after %d refreshes; want %d", got, rounds, conn)
	}
	if n := calls.Load(); n < 1+rounds+1 {
		t.Errorf("token function called %d times; want the CONNECT token and %d refreshes", n, rounds+1)
	}
	if st := b.Stats(); st.Reconnects != 0 || st.HandshakeFailures != 0 {
		t.Errorf("Stats() = %+v; want no reconnection and no failed handshake", st)
	}
	if m := b.Metrics(); m.Reconnects != 0 || m.State != pulsarconn.StateConnected {
		t.Errorf("Metrics() = %+v; want connected, never reconnected", m)
	}
	if n := ev.count(isClosed); n != 0 {
		t.Errorf("%d connections closed during the refreshes", n)
	}
	if n := ev.count(isOpened); n != 1 {
		t.Errorf("%d connections opened; want 1", n)
	}

	// The broker's side: it challenged this role and accepted each fresh
	// token on the live connection.
	refreshing := brokerLog(t, "Refreshing authentication credentials", role)
	refreshed := brokerLog(t, "Refreshed authentication credentials", role)
	t.Logf("broker log: %d challenges, %d refreshes for role %s", len(refreshing), len(refreshed), role)
	for _, l := range refreshed {
		t.Logf("  %s", l)
	}
	if len(refreshing) < rounds || len(refreshed) < rounds {
		t.Errorf("the broker's log shows %d challenges and %d refreshes for role %s; want at least %d of each", len(refreshing), len(refreshed), role, rounds)
	}
	// All on the one connection the role opened: the broker's lines name
	// the client's address, the same in each.
	connected := brokerLog(t, "connected with role="+role+" ")
	if len(connected) != 1 {
		t.Fatalf("the broker's log has %d connections of role %s; want 1:\n%s", len(connected), role, strings.Join(connected, "\n"))
	}
	remote := remoteOf(connected[0])
	for _, l := range append(refreshing, refreshed...) {
		if r := remoteOf(l); r != remote {
			t.Errorf("refresh on connection %s; the role connected from %s:\n%s", r, remote, l)
		}
	}
}

// remoteOf returns the client address a ServerCnx log line names
// ("[/127.0.0.1:60114]"), or "" if none.
func remoteOf(line string) string {
	i := strings.Index(line, "ServerCnx - [/")
	if i < 0 {
		return ""
	}
	rest := line[i+len("ServerCnx - [/"):]
	j := strings.IndexByte(rest, ']')
	if j < 0 {
		return ""
	}
	return rest[:j]
}

// TestTokenRefreshRefusedIsFinal connects with a token that expires after
// three seconds; when the broker challenges for fresh credentials, the
// token function answers with a token signed by another key. The broker
// refuses it, and the refusal is final: the Broker ends in StateClosed
// with an error matching ErrAuthenticationError (whether the broker
// refuses the AUTH_RESPONSE on the live connection, or drops it and
// refuses the next CONNECT), and dials no more.
func TestTokenRefreshRefusedIsFinal(t *testing.T) {
	rb := env(t)
	key := readKey(t, rb)
	otherKey := make([]byte, 32)
	if _, err := rand.Read(otherKey); err != nil {
		t.Fatal(err)
	}
	role := uniqueRole(t)
	const life = 3 * time.Second
	var calls atomic.Int64
	auth := token.FromFunc(func(ctx context.Context) (string, error) {
		if calls.Add(1) == 1 {
			return signToken(key, role, time.Now().Add(life)), nil
		}
		return signToken(otherKey, role, time.Now().Add(time.Hour)), nil
	})
	ev := newEvents()
	b := start(t, rb.ServiceURL, pulsarconn.WithAuthenticator(auth), pulsarconn.WithObserver(ev))
	_, ch := b.WatchState()
	for st := b.State(); st != pulsarconn.StateClosed; st, ch = b.WatchState() {
		select {
		case <-ch:
		case <-time.After(life + 15*time.Second):
			t.Fatalf("State = %v %v after the connection; want closed by the refused refresh", st, life+15*time.Second)
		}
	}
	err := b.WaitConnected(bounded(t))
	t.Logf("after %d token calls: %v", calls.Load(), err)
	if !errors.Is(err, pulsarconn.ErrAuthenticationError) || !errors.Is(err, pulsarconn.ErrClosed) {
		t.Errorf("WaitConnected: %v; want the refusal (ErrAuthenticationError, ErrClosed)", err)
	}
	if pulsarconn.IsRetryable(err) {
		t.Errorf("IsRetryable(%v) = true; a refusal is final", err)
	}
	if n := ev.count(isOpened); n != 1 {
		t.Errorf("%d connections opened; want 1 (none after the refusal)", n)
	}
	if n := calls.Load(); n > 3 {
		t.Errorf("token function called %d times; want the CONNECT token, the refused refresh and at most one CONNECT after it", n)
	}
}
