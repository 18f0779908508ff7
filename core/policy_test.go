package core_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn/core"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

func TestReadyCarriesEachKindInItsSlice(t *testing.T) {
	c := core.New(core.Config{Address: "broker.test:6650", AuthMethod: "token"})
	c.Start(t0)
	rd := c.Ready()
	require.Len(t, rd.Dials, 1)
	assert.Equal(t, core.Dial{Gen: 1, Address: "broker.test:6650", Deadline: t0.Add(core.DefaultConnectTimeout)}, rd.Dials[0])
	require.Len(t, rd.States, 1)
	assert.Equal(t, core.StateConnecting, rd.States[0].To)
	assert.Equal(t, t0.Add(core.DefaultConnectTimeout), rd.Deadline, "the deadline is the connect timeout's")
	c.Advance()
	assert.True(t, c.Ready().Empty(), "Advance forgets what was carried out")

	c.ConnUp(t0, 1)
	rd = c.Ready()
	assert.Equal(t, []core.AuthRequest{{Gen: 1, Initial: true}}, rd.Auths)
	assert.Empty(t, rd.Output, "CONNECT waits for the credentials")
}

func TestDeadlineIsComputedAtEachReady(t *testing.T) {
	h := newHarness(t, core.Config{})
	h.connect()
	ping := h.now.Add(core.DefaultKeepAliveInterval)
	assert.Equal(t, ping, h.c.Ready().Deadline)
	id, _ := h.request(lookup("persistent://public/default/a"))
	assert.Equal(t, ping, h.c.Ready().Deadline, "the request's timeout comes after the PING")
	assert.True(t, h.c.Cancel(id))
	h.advance(time.Second)
	assert.Equal(t, ping, h.c.Ready().Deadline)
}

func TestStateChangesCarryTheirEvent(t *testing.T) {
	h := newHarness(t, core.Config{})
	h.start()
	h.effects()
	h.connFailed(assert.AnError)
	states := only(h.effects(), core.EffectState)
	require.Len(t, states, 1)
	assert.Equal(t, core.EventHandshakeFailed, states[0].Event)
	assert.ErrorIs(t, states[0].Err, assert.AnError)

	opened := func() core.Effect {
		h.redial()
		h.connUp()
		h.recv(connected("Pulsar-Server-test", 0))
		states := only(h.effects(), core.EffectState)
		require.NotEmpty(t, states)
		return states[len(states)-1]
	}
	last := opened()
	assert.Equal(t, core.EventOpened, last.Event)
	assert.False(t, last.Reconnect, "the first connection")

	h.connFailed(assert.AnError)
	states = only(h.effects(), core.EffectState)
	require.Len(t, states, 1)
	assert.Equal(t, core.EventClosed, states[0].Event)

	assert.True(t, opened().Reconnect)

	h.c.BeginClose(h.now, nil)
	h.step()
	assert.Equal(t, core.EventNone, only(h.effects(), core.EffectState)[0].Event, "closing is not an event")
	h.c.FinishClose(h.now)
	h.step()
	states = only(h.effects(), core.EffectState)
	require.Len(t, states, 1)
	assert.Equal(t, core.EventClosed, states[0].Event, "a stop that began connected closes the connection")
	assert.ErrorIs(t, states[0].Err, core.ErrClosed)
}

func TestIDsAreNeverHandedOutTwice(t *testing.T) {
	c := core.New(core.Config{})
	assert.Equal(t, uint64(1), c.NewProducerID())
	assert.Equal(t, uint64(2), c.NewProducerID())
	assert.Equal(t, uint64(1), c.NewConsumerID(), "consumers count apart")
}

func TestMaxPendingRefusesBeyondTheLimit(t *testing.T) {
	h := newHarness(t, core.Config{MaxPending: 2})
	h.connect()
	h.request(lookup("persistent://public/default/a"))
	id, w := h.request(lookup("persistent://public/default/b"))
	_, err := h.c.Request(h.now, lookup("persistent://public/default/c"), &waiter{})
	assert.ErrorIs(t, err, core.ErrTooManyPending)
	h.recv(lookupConnect(id, "pulsar://b:6650"))
	assert.Equal(t, 1, w.calls)
	h.request(lookup("persistent://public/default/c"))
	assert.Equal(t, 2, h.c.Pending(), "an answer frees a slot")
	require.NoError(t, h.c.AddProducer(7, &recorder{}))
	assert.True(t, h.c.RemoveProducer(h.now, 7, nil), "a close the Conn sends itself is not refused")
	assert.Equal(t, 3, h.c.Pending())
}

func TestRejectionWindowDropsTheConnection(t *testing.T) {
	h := newHarness(t, core.Config{RejectLimit: 2, RejectWindow: 10 * time.Second})
	h.connect()
	reject := func() {
		id, w := h.request(lookup("persistent://public/default/a"))
		h.recv(lookupFailed(id, pulsarpb.ServerError_TooManyRequests, "busy"))
		require.ErrorIs(t, w.err, core.ErrTooManyRequests)
	}
	reject()
	reject()
	h.advance(11 * time.Second) // the first two leave the window
	reject()
	reject()
	assert.Equal(t, core.StateConnected, h.c.State(), "two within the window are allowed")
	h.effects()
	reject()
	assert.Equal(t, core.StateDisconnected, h.c.State(), "the third within the window drops the connection")
	closes := only(h.effects(), core.EffectClose)
	require.Len(t, closes, 1)
	assert.ErrorIs(t, closes[0].Err, core.ErrTooManyRequests)
}
