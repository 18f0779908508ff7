package core_test

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn/core"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// closer records the waiters BeginClose asks for, by id.
type closer struct {
	ids     []uint64
	waiters []*waiter
}

func (c *closer) waiter(id uint64) core.Waiter {
	w := &waiter{}
	c.ids = append(c.ids, id)
	c.waiters = append(c.waiters, w)
	return w
}

func TestGracefulStop(t *testing.T) {
	h := newRegistered(t, core.Config{}, []uint64{2, 1}, []uint64{9, 3})
	_, lookupW := h.request(lookup("t"))
	h.written()
	h.effects()

	cl := &closer{}
	n := h.c.BeginClose(h.now, cl.waiter)
	h.step()
	assert.Equal(t, 4, n)
	assert.Equal(t, []uint64{1, 2, 3, 9}, cl.ids, "producers, then consumers, each ascending")
	assert.Equal(t, core.StateClosing, h.c.State())
	effs := withoutLogs(h.effects())
	require.Equal(t, []core.EffectKind{core.EffectState}, kinds(effs))
	assert.Equal(t, core.StateClosing, effs[0].State)

	written := h.written()
	require.Equal(t, []pulsarpb.BaseCommand_Type{
		pulsarpb.BaseCommand_CLOSE_PRODUCER, pulsarpb.BaseCommand_CLOSE_PRODUCER,
		pulsarpb.BaseCommand_CLOSE_CONSUMER, pulsarpb.BaseCommand_CLOSE_CONSUMER,
	}, types(written))
	assert.Equal(t, uint64(1), written[0].GetCloseProducer().GetProducerId())
	assert.Equal(t, uint64(2), written[1].GetCloseProducer().GetProducerId())
	assert.Equal(t, uint64(3), written[2].GetCloseConsumer().GetConsumerId())
	assert.Equal(t, uint64(9), written[3].GetCloseConsumer().GetConsumerId())
	assert.Equal(t, 5, h.c.Pending())

	// Nothing new is taken while closing.
	_, err := h.c.Request(h.now, lookup("u"), &waiter{})
	assert.ErrorIs(t, err, core.ErrClosed)
	assert.ErrorIs(t, h.c.AddProducer(50, &recorder{}), core.ErrClosed)
	assert.ErrorIs(t, h.c.AddConsumer(50, &recorder{}), core.ErrClosed)
	assert.Zero(t, h.c.BeginClose(h.now, cl.waiter), "a second BeginClose does nothing")
	h.step()
	assert.Empty(t, h.written())
	assert.Len(t, cl.ids, 4)

	// The broker answers the closes, out of order; PING still works.
	for _, i := range []int{2, 0, 3, 1} {
		h.recv(success(requestID(t, written[i])))
		require.Equal(t, 1, cl.waiters[i].calls)
		assert.NoError(t, cl.waiters[i].err)
	}
	h.recv(ping())
	h.writtenOne(pulsarpb.BaseCommand_PONG)
	assert.Equal(t, 1, h.c.Pending(), "the lookup is still pending")
	assert.Zero(t, lookupW.calls)
	h.each(func(producer bool, id uint64, rec *recorder) {
		assert.Empty(t, rec.pushes)
	})

	gen := h.c.Gen()
	h.c.FinishClose(h.now)
	h.step()
	assert.Equal(t, core.StateClosed, h.c.State())
	require.Equal(t, 1, lookupW.calls)
	assert.ErrorIs(t, lookupW.err, core.ErrClosed)
	assert.False(t, core.IsRetryable(lookupW.err))
	h.each(func(producer bool, id uint64, rec *recorder) {
		require.Len(t, rec.pushes, 1, "producer %v id %d", producer, id)
		assert.Equal(t, core.PushEnded, rec.pushes[0].Kind)
		assert.Equal(t, id, rec.pushes[0].ID)
		assert.ErrorIs(t, rec.pushes[0].Err, core.ErrClosed)
	})
	effs = withoutLogs(h.effects())
	closes := only(effs, core.EffectClose)
	require.Len(t, closes, 1)
	assert.Equal(t, gen, closes[0].Gen)
	assert.ErrorIs(t, closes[0].Err, core.ErrClosed)
	assert.Equal(t, core.EffectState, effs[len(effs)-1].Kind)
	assert.Equal(t, core.StateClosed, effs[len(effs)-1].State)
	assert.Zero(t, h.c.Pending())
	assert.Empty(t, h.c.Producers())
	assert.Empty(t, h.c.Consumers())
	assert.True(t, h.c.NextDeadline().IsZero())

	// Closed is final.
	h.c.FinishClose(h.now)
	h.c.Start(h.now)
	h.c.Tick(h.now.Add(time.Hour))
	h.step()
	assert.Empty(t, h.effects())
	assert.Empty(t, h.written())
	h.recv(ping())
	assert.Empty(t, h.written())
	assert.ErrorIs(t, h.c.AddProducer(1, &recorder{}), core.ErrClosed)
}

func TestConnFailedWhileClosing(t *testing.T) {
	h := newRegistered(t, core.Config{}, []uint64{1}, []uint64{1})
	cl := &closer{}
	require.Equal(t, 2, h.c.BeginClose(h.now, cl.waiter))
	h.step()
	h.written()
	h.effects()

	gen := h.c.Gen()
	h.connFailed(io.EOF)
	assert.Equal(t, core.StateClosing, h.c.State(), "closing goes on")
	for _, w := range cl.waiters {
		require.Equal(t, 1, w.calls)
		assert.ErrorIs(t, w.err, core.ErrDisconnected)
		assert.ErrorIs(t, w.err, io.EOF)
	}
	closes := only(h.effects(), core.EffectClose)
	require.Len(t, closes, 1)
	assert.Equal(t, gen, closes[0].Gen)

	h.advance(24 * time.Hour)
	assert.Empty(t, only(h.effects(), core.EffectDial), "no reconnect while closing")
	assert.Equal(t, gen, h.c.Gen())
	assert.True(t, h.c.NextDeadline().IsZero())

	h.c.FinishClose(h.now)
	h.step()
	assert.Equal(t, core.StateClosed, h.c.State())
	for _, w := range cl.waiters {
		assert.Equal(t, 1, w.calls, "completed once")
	}
	// Each handler hears of the lost connection and then, last, of the end.
	h.each(func(producer bool, id uint64, rec *recorder) {
		require.NotEmpty(t, rec.pushes)
		last := rec.pushes[len(rec.pushes)-1]
		assert.Equal(t, core.PushEnded, last.Kind)
		assert.ErrorIs(t, last.Err, core.ErrClosed)
		assert.Len(t, rec.ofKind(core.PushDisconnected), len(rec.pushes)-1)
	})
}

func TestCloseRequestsTimeOutWhileClosing(t *testing.T) {
	h := newRegistered(t, core.Config{OperationTimeout: 5 * time.Second}, []uint64{1}, nil)
	cl := &closer{}
	h.c.BeginClose(h.now, cl.waiter)
	h.step()
	h.writtenOne(pulsarpb.BaseCommand_CLOSE_PRODUCER)
	assert.Equal(t, h.now.Add(5*time.Second), h.c.NextDeadline())
	h.advance(5 * time.Second)
	require.Equal(t, 1, cl.waiters[0].calls)
	assert.ErrorIs(t, cl.waiters[0].err, core.ErrRequestTimeout)
	assert.Equal(t, core.StateClosing, h.c.State())
	assert.Empty(t, h.written(), "no keepalive PING while closing")
}

func TestBeginCloseWithNilCloser(t *testing.T) {
	h := newRegistered(t, core.Config{}, []uint64{1}, []uint64{2})
	assert.Equal(t, 2, h.c.BeginClose(h.now, nil))
	h.step()
	written := h.written()
	require.Len(t, written, 2)
	for _, cmd := range written {
		require.NotPanics(t, func() { h.recv(success(requestID(t, cmd))) })
	}
	assert.Zero(t, h.c.Pending())
}

func TestBeginCloseWhileDisconnected(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prepare func(h *harness)
	}{
		{"never started", func(h *harness) {}},
		{"after a loss", func(h *harness) { h.connect(); h.connFailed(io.EOF) }},
		{"connecting", func(h *harness) { h.start() }},
		{"handshaking", func(h *harness) { h.start(); h.connUp() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, core.Config{})
			p := &recorder{}
			require.NoError(t, h.c.AddProducer(1, p))
			tc.prepare(h)
			h.written()
			h.effects()
			p.take()

			cl := &closer{}
			assert.Zero(t, h.c.BeginClose(h.now, cl.waiter))
			h.step()
			assert.Empty(t, cl.ids, "nothing to close on the broker")
			assert.Empty(t, h.written())
			assert.Equal(t, core.StateClosing, h.c.State())

			h.advance(time.Hour)
			assert.Empty(t, only(h.effects(), core.EffectDial), "no reconnect after BeginClose")
			assert.Equal(t, core.StateClosing, h.c.State())

			h.c.FinishClose(h.now)
			h.step()
			assert.Equal(t, core.StateClosed, h.c.State())
			require.Len(t, p.pushes, 1)
			assert.ErrorIs(t, p.pushes[0].Err, core.ErrClosed)
		})
	}
}

// A dial still in flight when the stop begins is closed when it
// succeeds, and the reason given is the stop.
func TestConnUpAfterBeginClose(t *testing.T) {
	h := newHarness(t, core.Config{})
	h.start()
	h.c.BeginClose(h.now, nil)
	h.step()
	h.effects()
	h.connUp()
	effs := h.effects()
	require.Equal(t, []core.EffectKind{core.EffectClose}, kinds(effs))
	assert.Equal(t, h.c.Gen(), effs[0].Gen)
	assert.ErrorIs(t, effs[0].Err, core.ErrClosed)
	assert.Empty(t, h.written(), "no CONNECT on a connection being closed")
	assert.Equal(t, core.StateClosing, h.c.State())
}

// Frames of a connection already lost must not reach the handlers, which
// were told PushDisconnected, even when the stop begins in between: the
// driver's reader may deliver a frame it decoded just before the close.
func TestFramesOfLostConnectionIgnoredWhileClosing(t *testing.T) {
	for _, tc := range []struct {
		name string
		// lose loses the connection and begins the stop, in some order.
		lose func(h *registered)
	}{
		{"lost, then BeginClose", func(h *registered) {
			h.connFailed(io.EOF)
			h.c.BeginClose(h.now, nil)
			h.step()
		}},
		{"BeginClose, then lost", func(h *registered) {
			h.c.BeginClose(h.now, nil)
			h.step()
			h.connFailed(io.EOF)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newRegistered(t, core.Config{}, []uint64{1}, []uint64{1})
			gen := h.c.Gen()
			tc.lose(h)
			require.Equal(t, core.StateClosing, h.c.State())
			h.written()
			h.effects()
			h.producers[1].take()
			h.consumers[1].take()

			h.recvBytes(gen, messageFrame(t, 1, 1, "late"))
			h.recvGen(gen, sendReceipt(1, 1))
			h.recvGen(gen, ping())
			h.recvGen(gen, authChallenge("token", "c"))
			assert.Empty(t, h.consumers[1].pushes, "no MESSAGE after PushDisconnected")
			assert.Empty(t, h.producers[1].pushes, "no receipt after PushDisconnected")
			assert.Empty(t, h.written(), "no PONG on a dead connection")
			assert.Empty(t, h.effects())
		})
	}
}

func TestDropReconnects(t *testing.T) {
	h := newHarness(t, core.Config{})
	h.connect()
	_, w := h.request(lookup("t"))
	cause := errors.New("too many rejections")
	h.c.Drop(h.now, cause)
	h.step()
	require.Equal(t, core.StateDisconnected, h.c.State())
	require.Equal(t, 1, w.calls)
	require.ErrorIs(t, w.err, core.ErrDisconnected)
	require.ErrorIs(t, w.err, cause)
	h.c.Drop(h.now, cause) // no connection: nothing happens
	require.Equal(t, core.StateDisconnected, h.c.State())
}
