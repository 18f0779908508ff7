package pulsarconn_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/mock/gomock"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/adapters/memory"
	"github.com/pulsarconn/pulsarconn/contracttest"
	"github.com/pulsarconn/pulsarconn/internal/testenv"
	"github.com/pulsarconn/pulsarconn/ports"
	"github.com/pulsarconn/pulsarconn/ports/portsmock"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// These tests use mocks of the ports (package portsmock) where a fake does
// not fit: an Authenticator scripted to fail on one particular call, and a
// Transport and Clock whose calls are the subject of the test. Everything
// else runs against the fake broker and the in-memory adapters.

// noJitter makes every backoff delay the lower bound of its jitter range:
// half the un-jittered delay.
func noJitter() float64 { return 0 }

// TestAuthRefreshFailureDropsAndBacksOff: the broker asks a live connection
// for fresh credentials (AUTH_CHALLENGE "PulsarAuthRefresh") three times;
// the Authenticator answers twice and fails the third time. The Broker then
// drops the connection with ErrAuthentication, backs off, and reconnects
// with fresh Initial credentials.
func TestAuthRefreshFailureDropsAndBacksOff(t *testing.T) {
	synctest.Test(t, testAuthRefreshFailureDropsAndBacksOff)
}

func testAuthRefreshFailureDropsAndBacksOff(t *testing.T) {
	const token = "s3cret"
	// The auth_data of a broker's credential-refresh challenge.
	refresh := []byte("PulsarAuthRefresh")
	errRefresh := errors.New("token source: refresh refused")

	e := memoryEnv(t, pulsartest.WithToken(token))
	ctrl := gomock.NewController(t)
	auth := portsmock.NewMockAuthenticator(ctrl)
	auth.EXPECT().Name().Return("token").MinTimes(1)
	gomock.InOrder(
		auth.EXPECT().Initial(gomock.Any()).Return([]byte(token), nil),
		auth.EXPECT().Challenge(gomock.Any(), refresh).Return([]byte(token), nil).Times(2),
		auth.EXPECT().Challenge(gomock.Any(), refresh).Return(nil, errRefresh),
		// The reconnection's CONNECT carries fresh credentials.
		auth.EXPECT().Initial(gomock.Any()).Return([]byte(token), nil),
	)

	clk := memory.NewClock(time.Unix(1_700_000_000, 0))
	// Backoff from 2s without jitter: the first delay is 1s.
	const backoff = time.Second
	b := e.start(t, pulsarconn.WithAuthenticator(auth), pulsarconn.WithClock(clk),
		pulsarconn.WithBackoff(2*backoff, time.Minute), pulsarconn.WithJitter(noJitter))
	ctx := testContext(t)
	require.NoError(t, b.WaitConnected(ctx))
	assert.Equal(t, "token", e.srv.LastConnect().GetAuthMethodName())
	assert.Equal(t, token, string(e.srv.LastConnect().GetAuthData()))
	l := contracttest.NewPushLog()
	_, err := b.RegisterConsumer(ctx, 1, l)
	require.NoError(t, err)

	for i := 1; i <= 2; i++ {
		require.Equal(t, 1, e.srv.ChallengeAll(), "challenge %d", i)
		require.NoError(t, e.srv.WaitReceived(ctx, pulsarpb.BaseCommand_AUTH_RESPONSE, i))
		assert.Equal(t, token, string(e.srv.LastAuthResponse().GetResponse().GetAuthData()))
		assert.Equal(t, pulsarconn.StateConnected, b.State(), "after challenge %d", i)
	}

	require.Equal(t, 1, e.srv.ChallengeAll(), "challenge 3")
	got := l.WaitFor(testContext(t), t, pulsarconn.PushDisconnected, 1)
	assert.ErrorIs(t, got[0].Err, pulsarconn.ErrDisconnected)
	assert.ErrorIs(t, got[0].Err, pulsarconn.ErrAuthentication)
	assert.ErrorIs(t, got[0].Err, errRefresh)
	testenv.WaitState(t, b, pulsarconn.StateDisconnected)
	done, cancel := context.WithCancel(ctx)
	cancel()
	assert.ErrorIs(t, b.WaitConnected(done), pulsarconn.ErrAuthentication, "the last error is kept")
	assert.Equal(t, 2, e.srv.Received(pulsarpb.BaseCommand_AUTH_RESPONSE), "the third challenge is not answered")

	// The fake clock's timers run inside Advance: had the backoff ended,
	// the Broker would be connecting by the time Advance returns.
	clk.Advance(backoff - time.Millisecond)
	assert.Equal(t, pulsarconn.StateDisconnected, b.State(), "still backing off")
	assert.Equal(t, 1, e.srv.Received(pulsarpb.BaseCommand_CONNECT), "no CONNECT before the backoff delay")

	clk.Advance(time.Millisecond)
	require.NoError(t, b.WaitConnected(ctx))
	assert.Equal(t, 2, e.srv.Received(pulsarpb.BaseCommand_CONNECT))
	assert.Equal(t, token, string(e.srv.LastConnect().GetAuthData()))
	assert.EqualValues(t, 1, b.Stats().Reconnects)
}

// TestDialErrorArmsBackoffTimer: a dial that fails cancels the connect
// timeout and arms one timer, for the backoff delay, instead of dialing
// again at once; the transport's own error is what WaitConnected reports.
// The calls to the Clock are the subject here, hence mocks.
func TestDialErrorArmsBackoffTimer(t *testing.T) {
	errNoRoute := errors.New("no route to broker")
	now := time.Unix(1_700_000_000, 0)

	ctrl := gomock.NewController(t)
	transport := portsmock.NewMockTransport(ctrl)
	clk := portsmock.NewMockClock(ctrl)
	connectTimer, backoffTimer := portsmock.NewMockTimer(ctrl), portsmock.NewMockTimer(ctrl)
	armed := make(chan struct{})

	clk.EXPECT().Now().Return(now).AnyTimes()
	// Once: no redial until the backoff timer fires. The default port is
	// filled in.
	transport.EXPECT().Dial(gomock.Any(), "broker-1:6650").Return(nil, errNoRoute)
	gomock.InOrder(
		clk.EXPECT().AfterFunc(10*time.Second, gomock.Any()).Return(connectTimer), // the default connect timeout
		connectTimer.EXPECT().Stop().Return(true),
		clk.EXPECT().AfterFunc(500*time.Millisecond, gomock.Any()).
			DoAndReturn(func(time.Duration, func()) ports.Timer {
				close(armed)
				return backoffTimer
			}),
		backoffTimer.EXPECT().Stop().Return(true), // by Stop
	)

	b, err := pulsarconn.Start("pulsar://broker-1",
		pulsarconn.WithTransport(transport), pulsarconn.WithClock(clk),
		pulsarconn.WithBackoff(time.Second, time.Minute), pulsarconn.WithJitter(noJitter))
	require.NoError(t, err)
	t.Cleanup(func() { b.Stop(context.Background()) })
	ctx := testContext(t)
	select {
	case <-armed:
	case <-ctx.Done():
		t.Fatal("no backoff timer armed")
	}

	assert.Equal(t, pulsarconn.StateDisconnected, b.State())
	done, cancel := context.WithCancel(ctx)
	cancel()
	err = b.WaitConnected(done)
	assert.ErrorIs(t, err, errNoRoute)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Contains(t, err.Error(), "dial broker-1:6650")
	require.NoError(t, b.Stop(ctx))
}
