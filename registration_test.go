package pulsarconn_test

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"testing/synctest"
	"time"
	"weak"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/contracttest"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// producerCmd is the PRODUCER command of producer 1 (the id sendFrame's
// SEND names).
func producerCmd() *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_PRODUCER.Enum(),
		Producer: &pulsarpb.CommandProducer{Topic: proto.String("persistent://public/default/t"), ProducerId: proto.Uint64(1)}}
}

// createdProducer registers producer 1 on b with ctx, creates it and
// publishes one message, whose receipt it waits for.
func createdProducer(t *testing.T, e env, b *pulsarconn.Broker, ctx context.Context) (*pulsarconn.Registration, *contracttest.PushLog) {
	t.Helper()
	l := contracttest.NewPushLog()
	reg, err := b.RegisterProducer(ctx, 1, l)
	require.NoError(t, err)
	assert.NoError(t, reg.Err(), "live")
	err = reg.Publish(testContext(t), sendFrame(t, 0, 16))
	assert.ErrorIs(t, err, pulsarconn.ErrNotCreated, "not created yet")
	assert.False(t, pulsarconn.IsRetryable(err))
	_, err = reg.Create(testContext(t), producerCmd())
	require.NoError(t, err)
	require.NoError(t, reg.Publish(testContext(t), sendFrame(t, 0, 16)))
	l.WaitFor(testContext(t), t, pulsarconn.PushReceipt, 1)
	require.Equal(t, 1, e.srv.Received(pulsarpb.BaseCommand_SEND))
	return reg, l
}

// assertEnded checks that reg has ended for a reason matching want: Done is
// closed, its Handler's last push, and only one of its kind, is PushEnded
// with that reason, and every call fails with ErrRegistrationEnded.
func assertEnded(t *testing.T, reg *pulsarconn.Registration, l *contracttest.PushLog, want error) {
	t.Helper()
	ctx := testContext(t)
	select {
	case <-reg.Done():
	case <-ctx.Done():
		t.Fatal("Done not closed")
	}
	assert.ErrorIs(t, reg.Err(), want)
	got := l.WaitFor(ctx, t, pulsarconn.PushEnded, 1)
	synctest.Wait() // anything else queued for the Handler has come
	require.Len(t, l.OfKind(pulsarconn.PushEnded), 1, "told once")
	assert.ErrorIs(t, got[0].Err, want)
	all := l.All()
	assert.Equal(t, pulsarconn.PushEnded, all[len(all)-1].Kind, "nothing after PushEnded")

	err := reg.Publish(ctx, sendFrame(t, 9, 16))
	assert.ErrorIs(t, err, pulsarconn.ErrRegistrationEnded)
	assert.ErrorIs(t, err, want, "and says why")
	assert.False(t, pulsarconn.IsRetryable(err))
	_, err = reg.Create(ctx, producerCmd())
	assert.ErrorIs(t, err, pulsarconn.ErrRegistrationEnded)
	assert.ErrorIs(t, reg.Send(ctx, producerCmd()), pulsarconn.ErrRegistrationEnded)
	_, err = reg.Request(ctx, producerCmd())
	assert.ErrorIs(t, err, pulsarconn.ErrRegistrationEnded)
}

// TestRegistrationEndsWithItsContext: a registration whose context ends
// (the 10 s timeout the Examples used to pass) tells its Handler, and a
// Publish then fails instead of sending a SEND the broker refuses.
func TestRegistrationEndsWithItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := memoryEnv(t)
		b := e.connected(t)
		why := errors.New("the owner went away")
		ctx, cancel := context.WithCancelCause(context.Background())
		reg, l := createdProducer(t, e, b, ctx)

		cancel(why)
		assertEnded(t, reg, l, why)
		assert.ErrorIs(t, reg.Err(), context.Canceled)
		require.NoError(t, e.srv.WaitReceived(testContext(t), pulsarpb.BaseCommand_CLOSE_PRODUCER, 1))
		assert.Equal(t, 1, e.srv.Received(pulsarpb.BaseCommand_SEND), "no SEND after the end")
	})
}

func TestRegistrationClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := memoryEnv(t)
		b := e.connected(t)
		reg, l := createdProducer(t, e, b, context.Background())
		require.NoError(t, reg.Close(testContext(t)))
		assertEnded(t, reg, l, pulsarconn.ErrClosed)
		assert.Equal(t, 1, e.srv.Received(pulsarpb.BaseCommand_CLOSE_PRODUCER))
	})
}

// TestStopEndsRegistrations: Stop tells each Handler PushEnded, and no
// PushDisconnected.
func TestStopEndsRegistrations(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := memoryEnv(t)
		b := e.connected(t)
		reg, l := createdProducer(t, e, b, context.Background())
		cl := contracttest.NewPushLog()
		creg, err := b.RegisterConsumer(context.Background(), 2, cl)
		require.NoError(t, err)
		require.NoError(t, b.Stop(testContext(t)))
		assertEnded(t, reg, l, pulsarconn.ErrClosed)
		assertEnded(t, creg, cl, pulsarconn.ErrClosed)
		assert.Empty(t, l.OfKind(pulsarconn.PushDisconnected))
		assert.Empty(t, cl.OfKind(pulsarconn.PushDisconnected))
		assert.NoError(t, reg.Close(testContext(t)), "Close after Stop: nothing left to do")
		assert.Len(t, l.OfKind(pulsarconn.PushEnded), 1)
	})
}

// TestBrokerClosesTheProducer: after the broker's CLOSE_PRODUCER the
// registration stays, but Publish fails with ErrNotCreated until Create
// succeeds again.
func TestBrokerClosesTheProducer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := memoryEnv(t)
		b := e.connected(t)
		ctx := testContext(t)
		reg, l := createdProducer(t, e, b, context.Background())

		require.True(t, e.srv.CloseProducer(1, "", ""))
		l.WaitFor(ctx, t, pulsarconn.PushClosed, 1)
		err := reg.Publish(ctx, sendFrame(t, 1, 16))
		assert.ErrorIs(t, err, pulsarconn.ErrNotCreated)
		assert.False(t, pulsarconn.IsRetryable(err))
		assert.ErrorIs(t, reg.Send(ctx, producerCmd()), pulsarconn.ErrNotCreated)
		assert.NoError(t, reg.Err(), "the registration stays")
		assert.Equal(t, 1, e.srv.Received(pulsarpb.BaseCommand_SEND))

		_, err = reg.Create(ctx, producerCmd())
		require.NoError(t, err)
		require.NoError(t, reg.Publish(ctx, sendFrame(t, 1, 16)))
		l.WaitFor(ctx, t, pulsarconn.PushReceipt, 2)
		assert.Empty(t, l.OfKind(pulsarconn.PushSendError))
	})
}

// TestReconnectUnbindsTheRegistration: after a reconnect Publish fails
// retryably with ErrDisconnected, and no SEND reaches the new connection
// before Create succeeded there.
func TestReconnectUnbindsTheRegistration(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := memoryEnv(t)
		b := e.connected(t)
		ctx := testContext(t)
		reg, l := createdProducer(t, e, b, context.Background())
		first := b.Connection()

		_, changed := b.WatchState()
		e.srv.DropConnections()
		<-changed
		l.WaitFor(ctx, t, pulsarconn.PushDisconnected, 1)
		require.NoError(t, b.WaitConnected(ctx))
		require.NotEqual(t, first, b.Connection())

		err := reg.Publish(ctx, sendFrame(t, 1, 16))
		assert.ErrorIs(t, err, pulsarconn.ErrDisconnected)
		assert.True(t, pulsarconn.IsRetryable(err))
		assert.ErrorIs(t, reg.Send(ctx, producerCmd()), pulsarconn.ErrDisconnected)
		assert.Equal(t, 1, e.srv.Received(pulsarpb.BaseCommand_SEND), "nothing sent on the new connection")

		_, err = reg.Create(ctx, producerCmd())
		require.NoError(t, err)
		require.NoError(t, reg.Publish(ctx, sendFrame(t, 1, 16)))
		l.WaitFor(ctx, t, pulsarconn.PushReceipt, 2)
		assert.Empty(t, l.OfKind(pulsarconn.PushSendError), "the SEND came after its PRODUCER")
	})
}

// TestRefusalEndsRegistrations: a Broker ended by the broker's refusal of
// its credentials ends its registrations.
func TestRefusalEndsRegistrations(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := memoryEnv(t, pulsartest.WithToken("right"))
		auth := &gatedToken{release: make(chan struct{}), tok: "wrong"}
		b := e.start(t, pulsarconn.WithAuthenticator(auth))
		l := contracttest.NewPushLog()
		reg, err := b.RegisterProducer(context.Background(), 1, l)
		require.NoError(t, err)
		close(auth.release)
		assertEnded(t, reg, l, pulsarconn.ErrAuthenticationError)
		assert.ErrorIs(t, reg.Err(), pulsarconn.ErrClosed)
	})
}

// TestCreateChecksItsCommand: Create takes only the registration's own
// PRODUCER or SUBSCRIBE, and a consumer registration does not publish.
func TestCreateChecksItsCommand(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := memoryEnv(t)
		b := e.connected(t)
		ctx := testContext(t)
		reg, err := b.RegisterConsumer(context.Background(), 1, contracttest.NewPushLog())
		require.NoError(t, err)
		_, err = reg.Create(ctx, producerCmd())
		assert.Error(t, err, "a PRODUCER for a consumer")
		other := &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_SUBSCRIBE.Enum(), Subscribe: &pulsarpb.CommandSubscribe{
			Topic: proto.String("persistent://public/default/t"), Subscription: proto.String("s"),
			SubType: pulsarpb.CommandSubscribe_Exclusive.Enum(), ConsumerId: proto.Uint64(2)}}
		_, err = reg.Create(ctx, other)
		assert.Error(t, err, "another consumer's SUBSCRIBE")
		assert.Error(t, reg.Publish(ctx, sendFrame(t, 0, 16)))
		assert.Zero(t, e.srv.Received(pulsarpb.BaseCommand_SUBSCRIBE))

		flow := &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_FLOW.Enum(),
			Flow: &pulsarpb.CommandFlow{ConsumerId: proto.Uint64(1), MessagePermits: proto.Uint32(10)}}
		assert.ErrorIs(t, reg.Send(ctx, flow), pulsarconn.ErrNotCreated)
		other.Subscribe.ConsumerId = proto.Uint64(1)
		_, err = reg.Create(ctx, other)
		require.NoError(t, err)
		require.NoError(t, reg.Send(ctx, flow))
		require.NoError(t, e.srv.WaitReceived(ctx, pulsarpb.BaseCommand_FLOW, 1))
	})
}

// TestHandlerCreatesAndClosesItsRegistration: a Handler may call its
// Registration's Create (on PushClosed, as Create's doc says) and Close,
// which wait for the broker's answer, although it runs on the goroutine
// that reads the connection: reading goes on in another goroutine while
// the Handler waits. Before, the answer was never read and each call
// failed at the operation timeout (30 s).
func TestHandlerCreatesAndClosesItsRegistration(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := memoryEnv(t)
		b := e.connected(t)
		ctx := testContext(t)
		l := contracttest.NewPushLog()
		var reg *pulsarconn.Registration
		ready := make(chan struct{})
		results := make(chan error, 2)
		h := pulsarconn.HandlerFunc(func(p pulsarconn.Push) {
			l.HandlePush(p)
			<-ready
			switch {
			case p.Kind == pulsarconn.PushClosed:
				_, err := reg.Create(ctx, producerCmd())
				results <- err
			case p.Kind == pulsarconn.PushReceipt && p.Command.GetSendReceipt().GetSequenceId() == 1:
				results <- reg.Close(ctx)
			}
		})
		var err error
		reg, err = b.RegisterProducer(context.Background(), 1, h)
		require.NoError(t, err)
		close(ready)
		_, err = reg.Create(ctx, producerCmd())
		require.NoError(t, err)

		require.True(t, e.srv.CloseProducer(1, "", ""))
		start := time.Now()
		require.NoError(t, <-results, "Create from the Handler")
		require.NoError(t, reg.Publish(ctx, sendFrame(t, 1, 16)))
		require.NoError(t, <-results, "Close from the Handler")
		assert.Less(t, time.Since(start), time.Second, "no wait for a timeout")
		assertEnded(t, reg, l, pulsarconn.ErrClosed)
	})
}

// TestCreateAnsweredAfterTheEnd: a Create whose answer comes after the
// registration ended (Close while the PRODUCER was on its way) fails with
// ErrRegistrationEnded, as its doc says, and binds nothing. Before, it
// returned the broker's success for a registration that had ended.
func TestCreateAnsweredAfterTheEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := memoryEnv(t)
		b := e.connected(t)
		ctx := testContext(t)
		l := contracttest.NewPushLog()
		reg, err := b.RegisterProducer(context.Background(), 1, l)
		require.NoError(t, err)
		held := e.srv.Hold(pulsarpb.BaseCommand_PRODUCER)
		created := make(chan error, 1)
		go func() {
			_, err := reg.Create(ctx, producerCmd())
			created <- err
		}()
		<-held.Arrived()
		require.NoError(t, reg.Close(ctx))
		held.Release()
		err = <-created
		assert.ErrorIs(t, err, pulsarconn.ErrRegistrationEnded)
		assert.ErrorIs(t, err, pulsarconn.ErrClosed, "and says why")
		assertEnded(t, reg, l, pulsarconn.ErrClosed)
	})
}

// TestRegistrationEndsOnceWhateverTheOrder: the ways a registration ends
// that race or follow one another tell its Handler PushEnded once, with the
// first reason: its context ending while Stop waits for the broker's
// CLOSE_PRODUCER answer, and Close while disconnected; and the same id
// registered again after the end starts a new registration.
func TestRegistrationEndsOnceWhateverTheOrder(t *testing.T) {
	t.Run("context during Stop", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := memoryEnv(t)
			b := e.connected(t)
			ctx, cancel := context.WithCancel(context.Background())
			reg, l := createdProducer(t, e, b, ctx)
			held := e.srv.Hold(pulsarpb.BaseCommand_CLOSE_PRODUCER)
			stopped := make(chan error, 1)
			go func() { stopped <- b.Stop(testContext(t)) }()
			<-held.Arrived()
			cancel()
			synctest.Wait()
			held.Release()
			require.NoError(t, <-stopped)
			assertEnded(t, reg, l, context.Canceled)
			assert.NoError(t, reg.Close(testContext(t)))
			assert.Len(t, l.OfKind(pulsarconn.PushEnded), 1)
		})
	})
	t.Run("Close while disconnected, then the id again", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := memoryEnv(t)
			b := e.connected(t, pulsarconn.WithBackoff(time.Hour, time.Hour))
			reg, l := createdProducer(t, e, b, context.Background())
			e.srv.DropConnections()
			l.WaitFor(testContext(t), t, pulsarconn.PushDisconnected, 1)
			require.NoError(t, reg.Close(testContext(t)))
			assertEnded(t, reg, l, pulsarconn.ErrClosed)

			l2 := contracttest.NewPushLog()
			reg2, err := b.RegisterProducer(context.Background(), 1, l2)
			require.NoError(t, err, "the id is free again")
			assert.NoError(t, reg2.Err())
			require.NoError(t, b.Stop(testContext(t)))
			assertEnded(t, reg2, l2, pulsarconn.ErrClosed)
			assert.Len(t, l.OfKind(pulsarconn.PushEnded), 1, "the first registration is told nothing more")
		})
	})
}

// handlerForGC is a Handler with an address of its own, for a weak pointer.
type handlerForGC struct{ _ [64]byte }

func (*handlerForGC) HandlePush(pulsarconn.Push) {}

// TestEndedRegistrationLeavesItsContext: a registration ended by the
// Broker's Stop no longer hangs on the context it was registered with, so
// a long-lived context does not keep a stopped Broker's registration, its
// Handler and its engine in memory. Before, its context.AfterFunc stayed
// registered until that context ended.
func TestEndedRegistrationLeavesItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := memoryEnv(t)
		b := e.connected(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		h := &handlerForGC{}
		gone := weak.Make(h)
		reg, err := b.RegisterProducer(ctx, 1, h)
		require.NoError(t, err)
		h = nil
		require.NoError(t, b.Stop(testContext(t)))
		<-reg.Done()
		reg = nil
		runtime.GC()
		runtime.GC()
		assert.Nil(t, gone.Value(), "the Handler is kept by the live context")
	})
}
