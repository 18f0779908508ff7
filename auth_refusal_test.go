package pulsarconn_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/adapters/memory"
	"github.com/pulsarconn/pulsarconn/adapters/tcp"
	"github.com/pulsarconn/pulsarconn/contracttest"
	"github.com/pulsarconn/pulsarconn/internal/testenv"
	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// gatedToken presents tok once release is closed: until then the Broker
// stays in its handshake.
type gatedToken struct {
	release chan struct{}
	tok     string
}

func (*gatedToken) Name() string { return "token" }
func (g *gatedToken) Initial(ctx context.Context) ([]byte, error) {
	select {
	case <-g.release:
		return []byte(g.tok), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
func (g *gatedToken) Challenge(ctx context.Context, _ []byte) ([]byte, error) { return g.Initial(ctx) }

// assertRefusal checks that err is the broker's refusal of the credentials.
func assertRefusal(t *testing.T, err error, what string) {
	t.Helper()
	assert.ErrorIs(t, err, pulsarconn.ErrAuthenticationError, what)
	assert.ErrorIs(t, err, pulsarconn.ErrClosed, what)
	assert.False(t, pulsarconn.IsRetryable(err), "%s: retryable: %v", what, err)
}

// TestRefusedCredentialsAreFinal: the broker refuses the token at the
// handshake. The Broker does not dial again, however long it waits;
// everything waiting for it, and every later call, fails at once with the
// refusal, which is not retryable; the registration's Handler is told; the
// Broker leaves its Registry; Stop returns nil.
func TestRefusedCredentialsAreFinal(t *testing.T) { synctest.Test(t, testRefusedCredentialsAreFinal) }

func testRefusedCredentialsAreFinal(t *testing.T) {
	e := memoryEnv(t, pulsartest.WithToken("right"))
	clk := memory.NewClock(time.Unix(1_700_000_000, 0))
	reg := pulsarconn.NewRegistry()
	obs := &events{}
	auth := &gatedToken{release: make(chan struct{}), tok: "wrong"}
	b := e.start(t, pulsarconn.WithClock(clk), pulsarconn.WithAuthenticator(auth),
		pulsarconn.WithRegistry(reg), pulsarconn.WithObserver(obs))
	ctx := testContext(t)
	_, listed := reg.Get(b.BrokerURL())
	require.True(t, listed)
	pushes := contracttest.NewPushLog()
	_, err := b.RegisterProducer(ctx, 1, pushes)
	require.NoError(t, err)

	// Calls made while the handshake waits for the Authenticator.
	requestErr, waitErr := make(chan error, 1), make(chan error, 1)
	go func() {
		_, err := b.LookupTopic(ctx, "persistent://public/default/t", false)
		requestErr <- err
	}()
	go func() { waitErr <- b.WaitConnected(ctx) }()
	synctest.Wait()
	close(auth.release)

	assertRefusal(t, <-requestErr, "the waiting Request")
	assertRefusal(t, <-waitErr, "the waiting WaitConnected")
	assert.Equal(t, pulsarconn.StateClosed, b.State())
	disconnected := pushes.WaitFor(ctx, t, pulsarconn.PushEnded, 1)
	assertRefusal(t, disconnected[0].Err, "the Handler's PushEnded")

	// However long it waits, the Broker dials no more.
	clk.Advance(time.Hour)
	synctest.Wait()
	assert.Equal(t, 1, e.srv.Received(pulsarpb.BaseCommand_CONNECT), "one CONNECT, not one per backoff")

	assertRefusal(t, b.WaitConnected(ctx), "WaitConnected")
	_, err = b.Request(ctx, &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_LOOKUP.Enum(),
		LookupTopic: &pulsarpb.CommandLookupTopic{Topic: proto.String("t")}})
	assertRefusal(t, err, "a later Request")
	assertRefusal(t, b.RequestAsync(ctx, &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_LOOKUP.Enum(),
		LookupTopic: &pulsarpb.CommandLookupTopic{Topic: proto.String("t")}},
		func(*pulsarpb.BaseCommand, error) { t.Error("done called for a request never sent") }), "RequestAsync")
	assertRefusal(t, b.Send(ctx, &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_FLOW.Enum(),
		Flow: &pulsarpb.CommandFlow{ConsumerId: proto.Uint64(1), MessagePermits: proto.Uint32(1)}}), "Send")
	msg, err := frame.AppendMessage(nil, &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_SEND.Enum(),
		Send: &pulsarpb.CommandSend{ProducerId: proto.Uint64(1), SequenceId: proto.Uint64(1)}},
		&pulsarpb.MessageMetadata{ProducerName: proto.String("p"), SequenceId: proto.Uint64(1), PublishTime: proto.Uint64(1)}, []byte("x"))
	require.NoError(t, err)
	assertRefusal(t, b.PublishMessage(ctx, msg), "PublishMessage")
	assertRefusal(t, b.PublishMessageOn(ctx, 1, msg), "PublishMessageOn")
	_, err = b.RequestOn(ctx, 1, &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_LOOKUP.Enum(),
		LookupTopic: &pulsarpb.CommandLookupTopic{Topic: proto.String("t")}})
	assertRefusal(t, err, "RequestOn")
	_, err = b.RegisterConsumer(ctx, 2, contracttest.NewPushLog())
	assertRefusal(t, err, "RegisterConsumer")

	_, listed = reg.Get(b.BrokerURL())
	assert.False(t, listed, "the Broker left its Registry")
	obs.waitUntil(t, func(evs []pulsarconn.Event) bool { return len(ofType[pulsarconn.HandshakeFailed](evs)) == 1 })
	assert.ErrorIs(t, ofType[pulsarconn.HandshakeFailed](obs.list())[0].Err, pulsarconn.ErrAuthenticationError)
	require.NoError(t, b.Stop(ctx))
}

// TestRefreshRefusedIsFinal: the broker refuses the credentials a live
// connection presents at a refresh (ERROR AuthenticationError with request
// id -1, then the connection closed): the Broker ends as at a refused
// handshake, without reconnecting.
func TestRefreshRefusedIsFinal(t *testing.T) { synctest.Test(t, testRefreshRefusedIsFinal) }

func testRefreshRefusedIsFinal(t *testing.T) {
	e := memoryEnv(t, pulsartest.WithToken("right"))
	clk := memory.NewClock(time.Unix(1_700_000_000, 0))
	obs := &events{}
	tok := &switchToken{token: "right"}
	b := e.connected(t, pulsarconn.WithClock(clk), pulsarconn.WithAuthenticator(tok), pulsarconn.WithObserver(obs))
	ctx := testContext(t)
	pushes := contracttest.NewPushLog()
	_, err := b.RegisterConsumer(ctx, 1, pushes)
	require.NoError(t, err)

	tok.set("expired")
	require.Equal(t, 1, e.srv.ChallengeAll())
	testenv.WaitState(t, b, pulsarconn.StateClosed)
	assertRefusal(t, b.WaitConnected(ctx), "WaitConnected")
	assertRefusal(t, pushes.WaitFor(ctx, t, pulsarconn.PushEnded, 1)[0].Err, "the Handler's PushEnded")
	obs.waitUntil(t, func(evs []pulsarconn.Event) bool { return len(ofType[pulsarconn.ConnectionClosed](evs)) == 1 })
	assert.ErrorIs(t, ofType[pulsarconn.ConnectionClosed](obs.list())[0].Err, pulsarconn.ErrAuthenticationError)

	clk.Advance(time.Hour)
	synctest.Wait()
	assert.Equal(t, 1, e.srv.Received(pulsarpb.BaseCommand_CONNECT), "no reconnection")
	require.NoError(t, b.Stop(ctx))
}

// TestClientStartsNewBrokerAfterRefusal: a Client's lookup fails at once
// with the refusal (not retried until the operation timeout); once the
// credential is fixed, the next lookup starts a new Broker, which
// connects.
func TestClientStartsNewBrokerAfterRefusal(t *testing.T) {
	synctest.Test(t, testClientStartsNewBrokerAfterRefusal)
}

func testClientStartsNewBrokerAfterRefusal(t *testing.T) {
	e := memoryEnv(t, pulsartest.WithToken("right"))
	tok := &switchToken{token: "wrong"}
	c, err := pulsarconn.NewClient(e.url, pulsarconn.WithTransport(e.transport), pulsarconn.WithAuthenticator(tok))
	require.NoError(t, err)
	t.Cleanup(func() { c.Close(context.Background()) })
	ctx := testContext(t)

	start := time.Now()
	_, err = c.LookupTopic(ctx, "persistent://public/default/t")
	assertRefusal(t, err, "the lookup")
	assert.Less(t, time.Since(start), time.Second, "failed at once, not retried")
	refused := c.Brokers()
	require.Len(t, refused, 1)
	assert.Equal(t, pulsarconn.StateClosed, refused[0].State())

	tok.set("right")
	owner, err := c.LookupTopic(ctx, "persistent://public/default/t")
	require.NoError(t, err)
	assert.NotSame(t, refused[0], owner, "a new Broker")
	require.NoError(t, owner.WaitConnected(ctx))
	assert.Equal(t, 2, e.srv.Received(pulsarpb.BaseCommand_CONNECT))
}

// echoAuth presents initial in CONNECT and refreshed at every challenge.
type echoAuth struct{ initial, refreshed string }

func (echoAuth) Name() string                                        { return "token" }
func (a echoAuth) Initial(context.Context) ([]byte, error)           { return []byte(a.initial), nil }
func (a echoAuth) Challenge(context.Context, []byte) ([]byte, error) { return []byte(a.refreshed), nil }

// TestBrokerEchoedTokenRedacted: brokers that repeat the client's tokens —
// in the ERROR refusing CONNECT, in an ERROR answer, and in the refusal of
// a refresh — leave them in no log record (debug level), no Observer event
// and no returned error: each shows "[redacted]" where the token was, and
// the rest of the message.
func TestBrokerEchoedTokenRedacted(t *testing.T) {
	const initial, refreshed = "tok-initial-5f3a9c", "tok-refreshed-8d2e71"
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(lockedWriter{&mu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var seen []string // every event and error, printed
	record := func(v any) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, fmt.Sprintf("%T %+v", v, v))
	}
	observer := pulsarconn.WithObserver(pulsarconn.ObserverFunc(func(ev pulsarconn.Event) { record(ev) }))
	errorCmd := func(id uint64, code pulsarpb.ServerError, msg string) *pulsarpb.BaseCommand {
		return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_ERROR.Enum(),
			Error: &pulsarpb.CommandError{RequestId: proto.Uint64(id), Error: code.Enum(), Message: proto.String(msg)}}
	}

	// One broker refuses CONNECT, repeating its token.
	refusing := newHostileBroker(t, func(_ context.Context, _ int, c *brokerSide) {
		f, err := c.fr.Next()
		if err != nil {
			return
		}
		c.send(errorCmd(math.MaxUint64, pulsarpb.ServerError_AuthenticationError,
			"invalid token "+string(f.Command.GetConnect().GetAuthData())+" for role alice"))
		c.ignore()
	})
	// Another accepts it, answers a LOOKUP with an ERROR repeating it,
	// challenges, and refuses the refreshed token, repeating it.
	echoing := newHostileBroker(t, func(_ context.Context, _ int, c *brokerSide) {
		if c.handshake(0) != nil {
			return
		}
		for {
			f, err := c.fr.Next()
			if err != nil {
				return
			}
			switch f.Command.GetType() {
			case pulsarpb.BaseCommand_LOOKUP:
				c.send(errorCmd(f.Command.GetLookupTopic().GetRequestId(), pulsarpb.ServerError_AuthorizationError,
					"role of "+initial+" may not look up"))
				c.send(&pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_AUTH_CHALLENGE.Enum(), AuthChallenge: &pulsarpb.CommandAuthChallenge{
					Challenge: &pulsarpb.AuthData{AuthMethodName: proto.String("token"), AuthData: []byte("PulsarAuthRefresh")}}})
			case pulsarpb.BaseCommand_AUTH_RESPONSE:
				c.send(errorCmd(math.MaxUint64, pulsarpb.ServerError_AuthenticationError,
					"token "+string(f.Command.GetAuthResponse().GetResponse().GetAuthData())+" expired"))
				return
			}
		}
	})
	ctx := testContext(t)
	start := func(url string) *pulsarconn.Broker {
		b, err := pulsarconn.Start(url, pulsarconn.WithTransport(tcp.New()), pulsarconn.WithClock(memory.NewClock(time.Now())),
			pulsarconn.WithAuthenticator(echoAuth{initial, refreshed}), pulsarconn.WithLogger(logger), observer)
		require.NoError(t, err)
		t.Cleanup(func() { b.Stop(context.Background()) })
		return b
	}

	a := start(refusing.url())
	err := a.WaitConnected(ctx)
	record(err)
	assert.ErrorIs(t, err, pulsarconn.ErrAuthenticationError)
	assert.Contains(t, err.Error(), "invalid token [redacted] for role alice")

	b := start(echoing.url())
	require.NoError(t, b.WaitConnected(ctx))
	_, err = b.LookupTopic(ctx, "persistent://public/default/t", false)
	record(err)
	assert.ErrorIs(t, err, pulsarconn.ErrAuthorization)
	assert.Contains(t, err.Error(), "role of [redacted] may not look up")
	testenv.WaitState(t, b, pulsarconn.StateClosed)
	err = b.WaitConnected(ctx)
	record(err)
	assert.Contains(t, err.Error(), "token [redacted] expired")
	require.NoError(t, a.Stop(ctx))
	require.NoError(t, b.Stop(ctx))

	mu.Lock()
	defer mu.Unlock()
	all := logs.String() + strings.Join(seen, "\n")
	for _, tok := range []string{initial, refreshed} {
		assert.NotContains(t, all, tok)
	}
	assert.Contains(t, logs.String(), "invalid token [redacted] for role alice")
	assert.Contains(t, logs.String(), "token [redacted] expired")
	events := strings.Join(seen, "\n")
	assert.Contains(t, events, "HandshakeFailed")
	assert.Contains(t, events, "invalid token [redacted] for role alice")
	assert.Contains(t, events, "role of [redacted] may not look up", "the RequestCompleted event")
}
