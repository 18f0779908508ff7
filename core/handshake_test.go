package core_test

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn/core"
	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

func TestNewFillsDefaults(t *testing.T) {
	c := core.New(core.Config{Address: "a:6650"})
	cfg := c.Config()
	assert.Equal(t, int32(21), cfg.ProtocolVersion)
	assert.Equal(t, 10*time.Second, cfg.ConnectTimeout)
	assert.Equal(t, 30*time.Second, cfg.OperationTimeout)
	assert.Equal(t, 30*time.Second, cfg.KeepAliveInterval)
	assert.Equal(t, 100*time.Millisecond, cfg.BackoffMin)
	assert.Equal(t, 60*time.Second, cfg.BackoffMax)

	assert.Equal(t, core.StateDisconnected, c.State())
	assert.Zero(t, c.Gen())
	assert.True(t, c.NextDeadline().IsZero(), "nothing is scheduled before Start")
	assert.Equal(t, 5*1024*1024, c.MaxMessageSize())
	assert.Equal(t, 5*1024*1024+10*1024, c.MaxFrameSize())
	assert.Nil(t, c.LastError())

	custom := core.New(core.Config{ProtocolVersion: 19, ConnectTimeout: time.Second, OperationTimeout: 2 * time.Second,
		KeepAliveInterval: 3 * time.Second, BackoffMin: time.Millisecond, BackoffMax: time.Minute}).Config()
	assert.Equal(t, int32(19), custom.ProtocolVersion)
	assert.Equal(t, time.Second, custom.ConnectTimeout)
	assert.Equal(t, 2*time.Second, custom.OperationTimeout)
	assert.Equal(t, 3*time.Second, custom.KeepAliveInterval)
	assert.Equal(t, time.Millisecond, custom.BackoffMin)
	assert.Equal(t, time.Minute, custom.BackoffMax)
}

func TestStartAsksForDial(t *testing.T) {
	h := newHarness(t, core.Config{Address: "broker-1.example:6650"})
	h.start()

	effs := h.effects()
	require.Equal(t, []core.EffectKind{core.EffectDial, core.EffectState}, kinds(effs))
	assert.Equal(t, core.StateConnecting, effs[1].State)
	assert.Equal(t, uint64(1), effs[0].Gen)
	assert.Equal(t, "broker-1.example:6650", effs[0].Address)
	assert.Equal(t, t0.Add(10*time.Second), effs[0].Deadline, "the dial is bounded by the connect timeout")
	assert.Equal(t, core.StateConnecting, h.c.State())
	assert.Equal(t, t0.Add(10*time.Second), h.c.NextDeadline())
	assert.Empty(t, h.written(), "nothing to write before the connection is up")

	h.start()
	assert.Empty(t, h.effects(), "a second Start does nothing")
	assert.Equal(t, uint64(1), h.c.Gen())
}

// TestCONNECT checks the handshake's first frame for each configuration.
func TestCONNECT(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  core.Config
		// authData, when the Authenticator is asked, is its answer.
		authData string
		check    func(t *testing.T, c *pulsarpb.CommandConnect)
	}{
		{
			name: "no authentication",
			cfg:  core.Config{},
			check: func(t *testing.T, c *pulsarpb.CommandConnect) {
				assert.Nil(t, c.AuthMethodName, "no auth_method_name when AuthMethod is empty")
				assert.Nil(t, c.AuthData, "no auth_data when AuthMethod is empty")
				assert.Nil(t, c.ProxyToBrokerUrl)
			},
		},
		{
			name:     "token",
			cfg:      core.Config{AuthMethod: "token"},
			authData: "eyJhbGciOiJIUzI1NiJ9.c3ViamVjdA.c2lnbmF0dXJl",
			check: func(t *testing.T, c *pulsarpb.CommandConnect) {
				assert.Equal(t, "token", c.GetAuthMethodName())
				assert.Equal(t, []byte("eyJhbGciOiJIUzI1NiJ9.c3ViamVjdA.c2lnbmF0dXJl"), c.GetAuthData())
				assert.Nil(t, c.ProxyToBrokerUrl)
			},
		},
		{
			name: "through a proxy",
			cfg:  core.Config{ProxyToBrokerURL: "broker-7.internal:6650"},
			check: func(t *testing.T, c *pulsarpb.CommandConnect) {
				assert.Equal(t, "broker-7.internal:6650", c.GetProxyToBrokerUrl())
				assert.Nil(t, c.AuthMethodName)
			},
		},
		{
			name:     "token through a proxy",
			cfg:      core.Config{AuthMethod: "token", ProxyToBrokerURL: "broker-2.internal:6651"},
			authData: "tok",
			check: func(t *testing.T, c *pulsarpb.CommandConnect) {
				assert.Equal(t, "token", c.GetAuthMethodName())
				assert.Equal(t, []byte("tok"), c.GetAuthData())
				assert.Equal(t, "broker-2.internal:6651", c.GetProxyToBrokerUrl())
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.ClientVersion = "pulsarconn/0.1.0"
			h := newHarness(t, tc.cfg)
			h.start()
			h.effects()
			h.connUp()
			effs := h.effects()
			if tc.cfg.AuthMethod == "" {
				require.Equal(t, []core.EffectKind{core.EffectState}, kinds(effs))
			} else {
				require.Equal(t, []core.EffectKind{core.EffectAuth, core.EffectState}, kinds(effs),
					"the initial credentials are asked for before CONNECT")
				assert.True(t, effs[0].Initial)
				assert.Equal(t, uint64(1), effs[0].Gen)
				assert.Nil(t, effs[0].Challenge)
				assert.Empty(t, h.written(), "CONNECT waits for the credentials")
				h.authResult(true, tc.authData, nil)
			}
			assert.Equal(t, core.StateHandshaking, effs[len(effs)-1].State)
			assert.Equal(t, core.StateHandshaking, h.c.State())

			c := h.writtenOne(pulsarpb.BaseCommand_CONNECT).GetConnect()
			assert.Equal(t, "pulsarconn/0.1.0", c.GetClientVersion())
			assert.Equal(t, int32(21), c.GetProtocolVersion())
			require.NotNil(t, c.FeatureFlags)
			assert.True(t, c.GetFeatureFlags().GetSupportsAuthRefresh(), "we answer AUTH_CHALLENGE on a live connection")
			tc.check(t, c)
		})
	}
}

func TestCONNECTED(t *testing.T) {
	h := newHarness(t, core.Config{})
	h.start()
	h.connUp()
	h.written()
	h.effects()
	require.Equal(t, frame.DefaultMaxMessageSize, h.c.MaxMessageSize(), "the default applies until CONNECTED")

	h.now = h.now.Add(20 * time.Millisecond)
	h.recv(connected("Pulsar-Server-4.0.1", 1<<20))

	assert.Equal(t, core.StateConnected, h.c.State())
	effs := withoutLogs(h.effects())
	require.Equal(t, []core.EffectKind{core.EffectState}, kinds(effs))
	assert.Equal(t, core.StateConnected, effs[0].State)
	v, p := h.c.ServerVersion()
	assert.Equal(t, "Pulsar-Server-4.0.1", v)
	assert.Equal(t, int32(21), p)
	assert.Equal(t, 1<<20, h.c.MaxMessageSize())
	assert.Equal(t, 1<<20+10*1024, h.c.MaxFrameSize())
	assert.Nil(t, h.c.LastError())
	assert.Equal(t, core.Stats{}, h.c.Stats())
	assert.Empty(t, h.written())
	assert.Equal(t, h.now.Add(30*time.Second), h.c.NextDeadline(), "the next thing to do is the keepalive PING")
}

func TestCONNECTEDWithoutMaxMessageSizeKeepsDefault(t *testing.T) {
	h := newHarness(t, core.Config{})
	h.start()
	h.connUp()
	h.recv(connected("old-broker", 0))
	require.Equal(t, core.StateConnected, h.c.State())
	assert.Equal(t, frame.DefaultMaxMessageSize, h.c.MaxMessageSize())
	assert.Equal(t, frame.DefaultMaxFrameSize, h.c.MaxFrameSize())
}

// The max message size belongs to the connection: a reconnection starts
// from the default again until its own CONNECTED says otherwise, as the
// Java client's per-connection ClientCnx does.
func TestMaxMessageSizeIsPerConnection(t *testing.T) {
	h := newHarness(t, core.Config{})
	h.start()
	h.connUp()
	h.recv(connected("small-broker", 1<<20))
	require.Equal(t, 1<<20, h.c.MaxMessageSize())

	h.connFailed(errors.New("reset"))
	h.redial()
	h.connUp()
	assert.Equal(t, frame.DefaultMaxMessageSize, h.c.MaxMessageSize(), "the new connection's reader must not use the old broker's limit")
	assert.Equal(t, frame.DefaultMaxFrameSize, h.c.MaxFrameSize())
	h.recv(connected("old-broker-without-max-message-size", 0))
	assert.Equal(t, frame.DefaultMaxMessageSize, h.c.MaxMessageSize())

	h.connFailed(errors.New("reset"))
	h.redial()
	h.connUp()
	h.recv(connected("big-broker", 8<<20))
	assert.Equal(t, 8<<20, h.c.MaxMessageSize())
	assert.Equal(t, 8<<20+10*1024, h.c.MaxFrameSize())
}

func TestAuthChallengeDuringHandshake(t *testing.T) {
	h := newHarness(t, core.Config{AuthMethod: "sasl", ClientVersion: "cv"})
	h.start()
	h.connUp()
	h.effects()
	h.authResult(true, "initial", nil)
	assert.Equal(t, []byte("initial"), h.writtenOne(pulsarpb.BaseCommand_CONNECT).GetConnect().GetAuthData())

	for round, rt := range []struct{ challenge, response string }{
		{"challenge-1", "response-1"},
		{"challenge-2", "response-2"},
	} {
		h.recv(authChallenge("sasl", rt.challenge))
		effs := h.effects()
		require.Equal(t, []core.EffectKind{core.EffectAuth}, kinds(effs), "round %d", round+1)
		assert.False(t, effs[0].Initial)
		assert.Equal(t, []byte(rt.challenge), effs[0].Challenge)
		assert.Equal(t, uint64(1), effs[0].Gen)
		assert.Empty(t, h.written(), "the answer waits for the Authenticator")
		assert.Equal(t, core.StateHandshaking, h.c.State())

		h.authResult(false, rt.response, nil)
		r := h.writtenOne(pulsarpb.BaseCommand_AUTH_RESPONSE).GetAuthResponse()
		assert.Equal(t, "cv", r.GetClientVersion())
		assert.Equal(t, int32(21), r.GetProtocolVersion())
		assert.Equal(t, "sasl", r.GetResponse().GetAuthMethodName())
		assert.Equal(t, []byte(rt.response), r.GetResponse().GetAuthData())
	}

	h.recv(connected("s", 0))
	assert.Equal(t, core.StateConnected, h.c.State())
}

func TestAuthChallengeOnLiveConnection(t *testing.T) {
	h := newHarness(t, core.Config{AuthMethod: "token"})
	h.connect()
	_, w := h.request(lookup("persistent://public/default/t"))
	h.written()

	h.recv(authChallenge("token", "refresh"))
	effs := h.effects()
	require.Equal(t, []core.EffectKind{core.EffectAuth}, kinds(effs))
	assert.False(t, effs[0].Initial)
	assert.Equal(t, []byte("refresh"), effs[0].Challenge)
	assert.Equal(t, h.c.Gen(), effs[0].Gen)

	h.authResult(false, "fresh-token", nil)
	r := h.writtenOne(pulsarpb.BaseCommand_AUTH_RESPONSE).GetAuthResponse()
	assert.Equal(t, "token", r.GetResponse().GetAuthMethodName())
	assert.Equal(t, []byte("fresh-token"), r.GetResponse().GetAuthData())
	assert.Equal(t, core.StateConnected, h.c.State(), "a refresh does not disturb the connection")
	assert.Zero(t, w.calls)
	assert.Equal(t, 1, h.c.Pending())
}

var errAuthenticator = errors.New("token file unreadable")

func TestAuthenticatorErrorLosesConnection(t *testing.T) {
	for _, tc := range []struct {
		name string
		// prepare brings the Conn to the point where an EffectAuth is
		// outstanding; it returns the initial flag of that EffectAuth.
		prepare   func(h *harness) bool
		handshake bool
	}{
		{
			name: "initial credentials",
			prepare: func(h *harness) bool {
				h.start()
				h.connUp()
				return true
			},
			handshake: true,
		},
		{
			name: "challenge during the handshake",
			prepare: func(h *harness) bool {
				h.start()
				h.connUp()
				h.authResult(true, "x", nil)
				h.effects()
				h.recv(authChallenge("token", "c"))
				return false
			},
			handshake: true,
		},
		{
			name: "challenge on a live connection",
			prepare: func(h *harness) bool {
				h.connect()
				h.recv(authChallenge("token", "c"))
				return false
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, core.Config{AuthMethod: "token"})
			initial := tc.prepare(h)
			auth := only(h.effects(), core.EffectAuth)
			require.Len(t, auth, 1)
			require.Equal(t, initial, auth[0].Initial)
			h.written()
			gen := h.c.Gen()

			h.c.AuthResult(h.now, gen, initial, nil, errAuthenticator)
			h.step()

			assert.Equal(t, core.StateDisconnected, h.c.State())
			assert.Empty(t, h.written(), "nothing is sent with failed credentials")
			closes := only(h.effects(), core.EffectClose)
			require.Len(t, closes, 1)
			assert.Equal(t, gen, closes[0].Gen)
			assert.ErrorIs(t, closes[0].Err, core.ErrAuthentication)
			assert.ErrorIs(t, closes[0].Err, errAuthenticator)
			assert.ErrorIs(t, h.c.LastError(), core.ErrAuthentication)

			// No tight loop: the next attempt waits for the backoff.
			next := h.c.NextDeadline()
			require.False(t, next.IsZero(), "a reconnect is scheduled")
			assert.GreaterOrEqual(t, next.Sub(h.now), 50*time.Millisecond)
			assert.LessOrEqual(t, next.Sub(h.now), 100*time.Millisecond)
			if tc.handshake {
				assert.Equal(t, uint64(1), h.c.Stats().HandshakeFailures)
			} else {
				assert.Zero(t, h.c.Stats().HandshakeFailures)
			}

			// A late answer of the Authenticator is ignored.
			h.c.AuthResult(h.now, gen, initial, []byte("late"), nil)
			h.step()
			assert.Empty(t, h.written())
			assert.Empty(t, h.effects())

			h.redial()
		})
	}
}

func TestAuthResultOfStaleGenerationIgnored(t *testing.T) {
	h := newHarness(t, core.Config{AuthMethod: "token"})
	h.start()
	h.connUp()
	h.effects()
	h.c.AuthResult(h.now, h.c.Gen()+1, true, []byte("x"), nil)
	h.c.AuthResult(h.now, h.c.Gen()-1, true, []byte("x"), errAuthenticator)
	h.step()
	assert.Empty(t, h.written())
	assert.Empty(t, h.effects())
	assert.Equal(t, core.StateHandshaking, h.c.State())
}

// TestHandshakeRefusedWithERROR: the broker's refusal of the credentials
// ends the Conn for good: closed, the connection closed, no reconnection.
func TestHandshakeRefusedWithERROR(t *testing.T) {
	h := newHarness(t, core.Config{AuthMethod: "token"})
	h.start()
	h.connUp()
	h.authResult(true, "a-token", nil)
	h.written()
	h.effects()

	h.recv(errorAnswer(0, pulsarpb.ServerError_AuthenticationError, "token expired"))

	assert.Equal(t, core.StateClosed, h.c.State())
	err := h.c.LastError()
	var se *core.ServerError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, pulsarpb.ServerError_AuthenticationError, se.Code)
	assert.Equal(t, "token expired", se.Message)
	assert.ErrorIs(t, err, core.ErrAuthenticationError)
	assert.NotErrorIs(t, err, core.ErrServiceNotReady)

	effs := withoutLogs(h.effects())
	require.Equal(t, []core.EffectKind{core.EffectClose, core.EffectState}, kinds(effs))
	assert.Equal(t, uint64(1), effs[0].Gen)
	assert.ErrorIs(t, effs[0].Err, core.ErrAuthenticationError)
	assert.Equal(t, core.StateClosed, effs[1].State)
	assert.Equal(t, core.EventHandshakeFailed, effs[1].Event)
	assert.Equal(t, uint64(1), h.c.Stats().HandshakeFailures)
	assert.True(t, h.c.NextDeadline().IsZero(), "no reconnection is scheduled")

	final := h.c.Final()
	assert.ErrorIs(t, final, core.ErrClosed)
	assert.ErrorIs(t, final, core.ErrAuthenticationError)
	assert.False(t, core.IsRetryable(final))
	_, err = h.c.Request(h.now, lookup("t"), &waiter{})
	assert.ErrorIs(t, err, core.ErrAuthenticationError, "later calls fail with the refusal")
	assert.NotErrorIs(t, err, core.ErrDisconnected)
	h.advance(time.Hour)
	assert.Empty(t, only(h.effects(), core.EffectDial))
}

// TestHandshakeErrorOtherThanAuthenticationRetries: an ERROR of another
// kind in the handshake (the broker is not ready) is not a refusal of the
// credentials: the Conn reconnects after the backoff.
func TestHandshakeErrorOtherThanAuthenticationRetries(t *testing.T) {
	h := newHarness(t, core.Config{AuthMethod: "token"})
	h.start()
	h.connUp()
	h.authResult(true, "a-token", nil)
	h.effects()

	h.recv(errorAnswer(0, pulsarpb.ServerError_ServiceNotReady, "loading"))

	assert.Equal(t, core.StateDisconnected, h.c.State())
	assert.ErrorIs(t, h.c.LastError(), core.ErrServiceNotReady)
	assert.NoError(t, h.c.Final())
	next := h.c.NextDeadline().Sub(h.now)
	assert.True(t, next >= 50*time.Millisecond && next <= 100*time.Millisecond, "reconnect after %v", next)
	h.redial()
}

// TestLiveCredentialsRefused: on a live connection, an ERROR
// AuthenticationError that answers no request (request id -1, as a broker
// refuses a refresh's credentials before it closes the connection) ends the
// Conn for good: the pending request and every handler get the refusal,
// which is not retryable, and nothing reconnects. An Authenticator's own
// failure, by contrast, is retried (TestAuthenticatorErrorLosesConnection).
func TestLiveCredentialsRefused(t *testing.T) {
	h := newHarness(t, core.Config{AuthMethod: "token"})
	h.connect()
	r := &recorder{}
	require.NoError(t, h.c.AddProducer(1, r))
	_, w := h.request(lookup("t"))
	h.recv(authChallenge("token", "PulsarAuthRefresh"))
	h.authResult(false, "refreshed", nil)
	h.written()
	h.effects()

	h.recv(errorAnswer(math.MaxUint64, pulsarpb.ServerError_AuthenticationError, "refresh refused"))

	assert.Equal(t, core.StateClosed, h.c.State())
	effs := withoutLogs(h.effects())
	require.Equal(t, []core.EffectKind{core.EffectClose, core.EffectComplete, core.EffectDeliver, core.EffectState}, kinds(effs))
	assert.Equal(t, core.EventClosed, effs[3].Event)
	assert.ErrorIs(t, effs[3].Err, core.ErrAuthenticationError)
	require.Equal(t, 1, w.calls)
	for _, err := range []error{w.err, r.pushes[len(r.pushes)-1].Err, h.c.Final()} {
		assert.ErrorIs(t, err, core.ErrAuthenticationError)
		assert.ErrorIs(t, err, core.ErrClosed)
		assert.NotErrorIs(t, err, core.ErrDisconnected)
		assert.False(t, core.IsRetryable(err))
		assert.Contains(t, err.Error(), "refresh refused")
	}
	assert.Equal(t, core.PushEnded, r.pushes[len(r.pushes)-1].Kind)
	assert.Empty(t, h.c.Producers(), "registrations end with the Conn")
	assert.Equal(t, uint64(0), h.c.Stats().UnknownRequests, "a refusal, not an unknown answer")
	assert.True(t, h.c.NextDeadline().IsZero())
	assert.ErrorIs(t, h.c.Send(h.now, ping()), core.ErrAuthenticationError)
}

func TestCommandBeforeCONNECTEDIsProtocolError(t *testing.T) {
	for _, cmd := range []*pulsarpb.BaseCommand{
		success(1),
		sendReceipt(1, 1),
		lookupConnect(1, "pulsar://x:6650"),
		closeProducerPush(1, "", ""),
	} {
		t.Run(cmd.GetType().String(), func(t *testing.T) {
			h := newHarness(t, core.Config{})
			p := &recorder{}
			require.NoError(t, h.c.AddProducer(1, p))
			h.start()
			h.connUp()
			h.written()
			h.effects()

			h.recv(cmd)

			assert.Equal(t, core.StateDisconnected, h.c.State())
			assert.ErrorIs(t, h.c.LastError(), core.ErrProtocol)
			closes := only(h.effects(), core.EffectClose)
			require.Len(t, closes, 1)
			assert.ErrorIs(t, closes[0].Err, core.ErrProtocol)
			assert.Empty(t, p.pushes, "nothing is routed before CONNECTED")
		})
	}
}

func TestPingDuringHandshakeAnswered(t *testing.T) {
	h := newHarness(t, core.Config{})
	h.start()
	h.connUp()
	h.written()
	h.recv(ping())
	h.writtenOne(pulsarpb.BaseCommand_PONG)
	h.recv(pong())
	assert.Empty(t, h.written())
	assert.Equal(t, core.StateHandshaking, h.c.State(), "PING and PONG are fine before CONNECTED")
}

func TestConnectTimeout(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     core.Config
		prepare func(h *harness)
		state   core.State
	}{
		{"dial hangs", core.Config{ConnectTimeout: 3 * time.Second},
			func(h *harness) {}, core.StateConnecting},
		{"no answer to CONNECT", core.Config{ConnectTimeout: 3 * time.Second},
			func(h *harness) { h.connUp() }, core.StateHandshaking},
		{"authenticator does not answer", core.Config{ConnectTimeout: 3 * time.Second, AuthMethod: "token"},
			func(h *harness) { h.connUp() }, core.StateHandshaking},
		{"challenge not followed by CONNECTED", core.Config{},
			func(h *harness) {
				h.connUp()
				h.advance(5 * time.Second)
				h.recv(authChallenge("", "c"))
				h.authResult(false, "r", nil)
				require.Equal(h.t, pulsarpb.BaseCommand_AUTH_RESPONSE, h.writtenTypes()[1])
			}, core.StateHandshaking},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.cfg)
			h.start()
			timeout := h.c.Config().ConnectTimeout
			tc.prepare(h)
			h.effects()

			h.advanceTo(t0.Add(timeout - time.Nanosecond))
			require.Equal(t, tc.state, h.c.State())
			require.Empty(t, h.effects())

			h.advance(time.Nanosecond)
			assert.Equal(t, core.StateDisconnected, h.c.State())
			assert.ErrorIs(t, h.c.LastError(), core.ErrConnectTimeout)
			closes := only(h.effects(), core.EffectClose)
			require.Len(t, closes, 1)
			assert.Equal(t, uint64(1), closes[0].Gen)
			assert.ErrorIs(t, closes[0].Err, core.ErrConnectTimeout)
			assert.Equal(t, uint64(1), h.c.Stats().HandshakeFailures)
			next := h.c.NextDeadline().Sub(h.now)
			assert.True(t, next >= 50*time.Millisecond && next <= 100*time.Millisecond, "reconnect after %v", next)

			// The abandoned attempt's late events do not count.
			h.c.ConnUp(h.now, 1)
			h.step()
			effs := h.effects()
			require.Equal(t, []core.EffectKind{core.EffectClose}, kinds(effs), "a late ConnUp is closed")
			assert.Equal(t, uint64(1), effs[0].Gen)
			h.recvGen(1, connected("late", 0))
			assert.Equal(t, core.StateDisconnected, h.c.State())

			h.redial()
		})
	}
}

func TestConnFailedDuringDialAndHandshake(t *testing.T) {
	errRefused := errors.New("connection refused")
	for _, tc := range []struct {
		name    string
		prepare func(h *harness)
	}{
		{"dial", func(h *harness) {}},
		{"handshake", func(h *harness) { h.connUp() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, core.Config{})
			h.start()
			tc.prepare(h)
			h.written()
			h.effects()
			h.connFailed(errRefused)
			assert.Equal(t, core.StateDisconnected, h.c.State())
			assert.ErrorIs(t, h.c.LastError(), errRefused)
			closes := only(h.effects(), core.EffectClose)
			require.Len(t, closes, 1)
			assert.ErrorIs(t, closes[0].Err, errRefused)
			assert.Equal(t, uint64(1), h.c.Stats().HandshakeFailures)

			_, err := h.c.Request(h.now, lookup("t"), &waiter{})
			assert.ErrorIs(t, err, core.ErrDisconnected)
			assert.ErrorIs(t, err, errRefused, "the refusal says why the connection is down")
		})
	}
}

// TestLateAuthenticationErrorIsNotARefusal: an ERROR AuthenticationError
// with a request id of its own that answers no pending request (a late
// answer to a request that timed out or was cancelled) is an unknown
// answer, counted and dropped; only request id -1 refuses a live
// connection's credentials.
func TestLateAuthenticationErrorIsNotARefusal(t *testing.T) {
	h := newHarness(t, core.Config{AuthMethod: "token"})
	h.connect()
	id, w := h.request(lookup("t"))
	h.written()
	require.True(t, h.c.Cancel(id))
	h.effects()

	h.recv(errorAnswer(id, pulsarpb.ServerError_AuthenticationError, "late"))

	assert.Equal(t, core.StateConnected, h.c.State())
	assert.Zero(t, w.calls)
	assert.NoError(t, h.c.Final())
	assert.Equal(t, uint64(1), h.c.Stats().UnknownRequests)
}
