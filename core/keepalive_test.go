package core_test

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn/core"
	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

func TestBrokerPingAnsweredWithPong(t *testing.T) {
	h := newHarness(t, core.Config{})
	h.connect()
	for range 3 {
		h.recv(ping())
		h.writtenOne(pulsarpb.BaseCommand_PONG)
	}
	assert.Empty(t, withoutLogs(h.effects()))
	assert.Equal(t, core.Stats{}, h.c.Stats(), "PING is no irregular event")
}

func TestKeepalivePingAfterInterval(t *testing.T) {
	h := newHarness(t, core.Config{KeepAliveInterval: 30 * time.Second})
	h.connect() // CONNECTED arrives at t0

	h.advance(30*time.Second - time.Nanosecond)
	assert.Empty(t, h.written(), "no PING before the interval")
	h.advance(time.Nanosecond)
	h.writtenOne(pulsarpb.BaseCommand_PING)
	assert.Equal(t, core.StateConnected, h.c.State())
	assert.Equal(t, t0.Add(60*time.Second), h.c.NextDeadline())
}

func TestKeepaliveTimeout(t *testing.T) {
	h := newHarness(t, core.Config{KeepAliveInterval: 30 * time.Second, OperationTimeout: time.Hour})
	h.connect()
	_, w := h.request(lookup("t"))
	h.written()

	h.advance(60*time.Second - time.Nanosecond)
	assert.Equal(t, []pulsarpb.BaseCommand_Type{pulsarpb.BaseCommand_PING}, h.writtenTypes())
	assert.Equal(t, core.StateConnected, h.c.State())

	h.advance(time.Nanosecond) // two intervals without a frame
	assert.Equal(t, core.StateDisconnected, h.c.State())
	assert.Empty(t, h.written())
	assert.ErrorIs(t, h.c.LastError(), core.ErrKeepaliveTimeout)
	closes := only(h.effects(), core.EffectClose)
	require.Len(t, closes, 1)
	assert.ErrorIs(t, closes[0].Err, core.ErrKeepaliveTimeout)
	assert.Equal(t, 1, w.calls)
	assert.ErrorIs(t, w.err, core.ErrDisconnected)
	assert.ErrorIs(t, w.err, core.ErrKeepaliveTimeout)
	assert.True(t, core.IsRetryable(w.err))
	assert.Zero(t, h.c.Stats().HandshakeFailures, "the handshake had succeeded")
}

func TestKeepaliveKeptAliveByAnyFrame(t *testing.T) {
	for _, tc := range []struct {
		name string
		cmd  *pulsarpb.BaseCommand
	}{
		{"PONG", pong()},
		{"PING", ping()},
		{"SEND_RECEIPT", sendReceipt(1, 1)},
		{"SUCCESS for nobody", success(999)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, core.Config{KeepAliveInterval: 30 * time.Second})
			h.connect()
			for i := range 10 {
				h.advance(30 * time.Second)
				require.Equal(t, []pulsarpb.BaseCommand_Type{pulsarpb.BaseCommand_PING}, h.writtenTypes(), "round %d", i)
				h.advance(time.Second)
				h.recv(tc.cmd)
				h.written()
				require.Equal(t, core.StateConnected, h.c.State(), "round %d", i)
			}
			// The broker goes quiet: dead two intervals after its last frame.
			last := h.now
			h.advanceTo(last.Add(60*time.Second - time.Nanosecond))
			require.Equal(t, core.StateConnected, h.c.State())
			h.advance(time.Nanosecond)
			assert.Equal(t, core.StateDisconnected, h.c.State())
			assert.ErrorIs(t, h.c.LastError(), core.ErrKeepaliveTimeout)
		})
	}
}

func TestKeepaliveRestartsAfterReconnect(t *testing.T) {
	h := newHarness(t, core.Config{KeepAliveInterval: 10 * time.Second})
	h.connect()
	h.advance(20 * time.Second)
	require.Equal(t, core.StateDisconnected, h.c.State())
	h.redial()
	h.handshake()
	connectedAt := h.now

	h.advance(10*time.Second - time.Nanosecond)
	assert.Empty(t, h.written())
	h.advance(time.Nanosecond)
	h.writtenOne(pulsarpb.BaseCommand_PING)
	h.advanceTo(connectedAt.Add(20*time.Second - time.Nanosecond))
	assert.Equal(t, core.StateConnected, h.c.State(), "the old connection's silence does not count")
}

// TestOwnFramesKeepOnlyTheLatest: the frames the Conn writes on its own
// that only the latest of matters — PONG, PING, AUTH_RESPONSE — go in
// Ready.Latest, one per kind, written after Output: two PINGs read in one
// step get one PONG, and two answers to challenges one AUTH_RESPONSE, the
// latest.
func TestOwnFramesKeepOnlyTheLatest(t *testing.T) {
	h := newHarness(t, core.Config{AuthMethod: "token", KeepAliveInterval: 30 * time.Second})
	h.connect()
	h.effects()

	h.c.HandleFrame(h.now, h.c.Gen(), decodeFrame(t, ping()))
	h.c.HandleFrame(h.now, h.c.Gen(), decodeFrame(t, ping()))
	_, err := h.c.Request(h.now, lookup("t"), &waiter{})
	require.NoError(t, err)
	rd := h.c.Ready()
	assert.Equal(t, []pulsarpb.BaseCommand_Type{pulsarpb.BaseCommand_LOOKUP}, types(decodeAll(t, rd.Output)))
	assert.Equal(t, []pulsarpb.BaseCommand_Type{pulsarpb.BaseCommand_PONG}, types(decodeAll(t, slices.Concat(rd.Latest[:]...))))
	assert.EqualValues(t, 3, h.c.FramesOut(), "CONNECT, LOOKUP and one PONG")
	h.c.Advance()

	h.c.AuthResult(h.now, h.c.Gen(), false, []byte("first"), nil)
	h.c.AuthResult(h.now, h.c.Gen(), false, []byte("second"), nil)
	rd = h.c.Ready()
	assert.Empty(t, rd.Output)
	cmds := decodeAll(t, slices.Concat(rd.Latest[:]...))
	require.Len(t, cmds, 1)
	assert.Equal(t, "second", string(cmds[0].GetAuthResponse().GetResponse().GetAuthData()))
	h.c.Advance()
	assert.True(t, h.c.Ready().Empty())
}

// decodeFrame encodes cmd and decodes it as the reader would.
func decodeFrame(t *testing.T, cmd *pulsarpb.BaseCommand) *frame.Frame {
	t.Helper()
	b, err := frame.AppendCommand(nil, cmd)
	require.NoError(t, err)
	f, err := frame.NewReader(bytes.NewReader(b), 0).Next()
	require.NoError(t, err)
	return f
}
