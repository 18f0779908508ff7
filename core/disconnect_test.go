package core_test

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn/core"
	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// registered is a connected harness with producers and consumers.
type registered struct {
	*harness
	producers map[uint64]*recorder
	consumers map[uint64]*recorder
}

func newRegistered(t *testing.T, cfg core.Config, producerIDs, consumerIDs []uint64) *registered {
	t.Helper()
	r := &registered{harness: newHarness(t, cfg), producers: map[uint64]*recorder{}, consumers: map[uint64]*recorder{}}
	r.connect()
	for _, id := range producerIDs {
		r.producers[id] = &recorder{}
		require.NoError(t, r.c.AddProducer(id, r.producers[id]))
	}
	for _, id := range consumerIDs {
		r.consumers[id] = &recorder{}
		require.NoError(t, r.c.AddConsumer(id, r.consumers[id]))
	}
	return r
}

// each calls f for every handler, with its id and whether it is a producer.
func (r *registered) each(f func(producer bool, id uint64, rec *recorder)) {
	for id, rec := range r.producers {
		f(true, id, rec)
	}
	for id, rec := range r.consumers {
		f(false, id, rec)
	}
}

func TestDisconnectWithRequestsInFlight(t *testing.T) {
	errMalformed := frame.ErrMalformed
	for _, tc := range []struct {
		name  string
		lose  func(h *harness)
		cause error
	}{
		{"end of stream", func(h *harness) { h.connFailed(io.EOF) }, io.EOF},
		{"malformed frame", func(h *harness) { h.connFailed(errMalformed) }, errMalformed},
		{"keepalive", func(h *harness) { h.advance(time.Minute) }, core.ErrKeepaliveTimeout},
		{"authentication refresh fails", func(h *harness) {
			h.recv(authChallenge("token", "refresh"))
			h.authResult(false, "", errAuthenticator)
		}, errAuthenticator},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newRegistered(t, core.Config{OperationTimeout: time.Hour, AuthMethod: "token"},
				[]uint64{1, 2, 3}, []uint64{1, 4})
			var ws []*waiter
			for _, cmd := range []*pulsarpb.BaseCommand{lookup("a"), producerCmd(1, "a"), subscribeCmd(4, "b", "s")} {
				_, w := h.request(cmd)
				ws = append(ws, w)
			}
			h.written()
			h.effects()
			gen := h.c.Gen()

			tc.lose(h.harness)

			assert.Equal(t, core.StateDisconnected, h.c.State())
			assert.Zero(t, h.c.Pending())
			for i, w := range ws {
				require.Equal(t, 1, w.calls, "request %d", i+1)
				assert.Nil(t, w.result)
				assert.ErrorIs(t, w.err, core.ErrDisconnected, "request %d", i+1)
				assert.ErrorIs(t, w.err, tc.cause, "request %d", i+1)
				assert.True(t, core.IsRetryable(w.err), "request %d", i+1)
			}
			h.each(func(producer bool, id uint64, rec *recorder) {
				require.Len(t, rec.pushes, 1, "producer %v id %d", producer, id)
				p := rec.pushes[0]
				assert.Equal(t, core.PushDisconnected, p.Kind)
				assert.Equal(t, id, p.ID)
				assert.Nil(t, p.Command)
				assert.ErrorIs(t, p.Err, core.ErrDisconnected)
				assert.ErrorIs(t, p.Err, tc.cause)
			})
			closes := only(h.effects(), core.EffectClose)
			require.Len(t, closes, 1)
			assert.Equal(t, gen, closes[0].Gen)
			assert.ErrorIs(t, closes[0].Err, tc.cause)

			// The driver reports the broken connection once more.
			h.c.ConnFailed(h.now, gen, io.ErrClosedPipe)
			h.step()
			assert.Empty(t, h.effects(), "the loss is handled once")
			h.each(func(producer bool, id uint64, rec *recorder) {
				assert.Len(t, rec.pushes, 1, "told once")
			})
			for _, w := range ws {
				assert.Equal(t, 1, w.calls, "completed once")
			}

			// After the backoff, a new dial with a new generation.
			h.redial()
			assert.Equal(t, gen+1, h.c.Gen())
			h.handshake()
			assert.Equal(t, uint64(1), h.c.Stats().Reconnects)
			h.each(func(producer bool, id uint64, rec *recorder) {
				assert.Len(t, rec.pushes, 1, "reconnecting tells nothing new")
			})
			assert.Equal(t, []uint64{1, 2, 3}, h.c.Producers(), "registrations survive the loss")
			assert.Equal(t, []uint64{1, 4}, h.c.Consumers())
		})
	}
}

func TestHandlersToldOncePerConnection(t *testing.T) {
	h := newRegistered(t, core.Config{}, []uint64{1}, []uint64{2})
	h.connFailed(io.EOF)
	// Reconnection attempts that never reach CONNECTED are no new news.
	for range 3 {
		h.redial()
		h.connUp()
		h.connFailed(errors.New("reset during handshake"))
	}
	h.redial()
	h.connFailed(errors.New("refused"))
	assert.Len(t, h.producers[1].pushes, 1)
	assert.Len(t, h.consumers[2].pushes, 1)

	h.redial()
	h.handshake()
	h.connFailed(io.EOF)
	assert.Len(t, h.producers[1].ofKind(core.PushDisconnected), 2, "each lost connection is told")
	assert.Len(t, h.consumers[2].ofKind(core.PushDisconnected), 2)
	assert.Equal(t, uint64(4), h.c.Stats().HandshakeFailures)
	assert.Equal(t, uint64(1), h.c.Stats().Reconnects)
}

func TestHandlerAddedWhileDisconnectedIsNotToldOfFailedDials(t *testing.T) {
	h := newHarness(t, core.Config{})
	p := &recorder{}
	require.NoError(t, h.c.AddProducer(1, p))
	h.start()
	h.connFailed(errors.New("refused"))
	assert.Empty(t, p.pushes, "it never had a broker-side producer to lose")
	h.redial()
	h.handshake()
	h.connFailed(io.EOF)
	require.Len(t, p.pushes, 1)
	assert.Equal(t, core.PushDisconnected, p.pushes[0].Kind)
}

func TestHandlerAddedAfterLossIsToldOfNextLoss(t *testing.T) {
	h := newHarness(t, core.Config{})
	h.connect()
	h.connFailed(io.EOF)
	h.redial()
	h.handshake()
	p := &recorder{}
	require.NoError(t, h.c.AddProducer(1, p))
	h.connFailed(io.EOF)
	require.Len(t, p.pushes, 1)
	assert.Equal(t, core.PushDisconnected, p.pushes[0].Kind)
}

func TestStaleGenerationIgnored(t *testing.T) {
	h := newRegistered(t, core.Config{}, []uint64{1}, []uint64{1})
	old := h.c.Gen()
	h.connFailed(io.EOF)
	h.redial()
	h.handshake()
	cur := h.c.Gen()
	require.Equal(t, old+1, cur)
	_, w := h.request(lookup("t"))
	h.producers[1].take()
	h.consumers[1].take()
	h.written()
	h.effects()

	h.recvGen(old, ping())
	h.recvGen(old, success(1))
	h.recvGen(old, sendReceipt(1, 1))
	h.recvGen(old, errorAnswer(0, pulsarpb.ServerError_AuthenticationError, "x"))
	assert.Empty(t, h.written(), "no PONG for a dead connection's PING")
	assert.Zero(t, w.calls, "an old connection's answer completes nothing")
	assert.Empty(t, h.producers[1].pushes)

	h.c.ConnFailed(h.now, old, io.EOF)
	h.c.AuthResult(h.now, old, false, []byte("x"), errAuthenticator)
	h.step()
	assert.Empty(t, h.effects())
	assert.Equal(t, core.StateConnected, h.c.State())
	assert.Equal(t, 1, h.c.Pending())

	h.c.ConnUp(h.now, old)
	h.step()
	effs := h.effects()
	require.Equal(t, []core.EffectKind{core.EffectClose}, kinds(effs), "a stale ConnUp is closed")
	assert.Equal(t, old, effs[0].Gen)
	assert.Equal(t, core.StateConnected, h.c.State())
	assert.Empty(t, h.written())
	assert.Equal(t, core.Stats{Reconnects: 1}, h.c.Stats())

	h.recv(success(1))
	assert.Equal(t, 1, w.calls, "the current connection still works")
}

func TestFramesAfterLossIgnored(t *testing.T) {
	h := newRegistered(t, core.Config{}, []uint64{1}, nil)
	gen := h.c.Gen()
	h.connFailed(io.EOF)
	h.producers[1].take()
	h.effects()
	// Frames still buffered from the lost connection, same generation.
	h.recvGen(gen, ping())
	h.recvGen(gen, sendReceipt(1, 1))
	assert.Empty(t, h.written())
	assert.Empty(t, h.producers[1].pushes)
	assert.Empty(t, h.effects())
	assert.Equal(t, core.StateDisconnected, h.c.State())
}

func TestConnUpTwiceIsClosed(t *testing.T) {
	h := newHarness(t, core.Config{})
	h.start()
	h.connUp()
	h.written()
	h.effects()
	h.connUp()
	effs := h.effects()
	require.Equal(t, []core.EffectKind{core.EffectClose}, kinds(effs))
	assert.Equal(t, core.StateHandshaking, h.c.State(), "the current handshake goes on")
	assert.Empty(t, h.written())
}
