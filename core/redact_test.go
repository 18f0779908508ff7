package core_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn/core"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// shown is everything an effect lets out of the Conn as text: errors, log
// records, pushes and answers, as a driver would log or return them.
func shown(effs []core.Effect) string {
	var b strings.Builder
	for _, e := range effs {
		fmt.Fprintf(&b, "%v|%+v|%s|%v|", e.Err, e.Push.Err, e.Msg, e.Attrs)
		if e.Result != nil {
			fmt.Fprintf(&b, "%v|", e.Result)
		}
		if e.Push.Command != nil {
			fmt.Fprintf(&b, "%v|", e.Push.Command)
		}
	}
	return b.String()
}

// TestBrokerEchoOfCredentialsRedacted: a broker that repeats the
// credentials it was sent — CONNECT's and a refresh's AUTH_RESPONSE's — in
// its handshake ERROR, its server version, an ERROR answer and a
// SEND_ERROR gets each replaced by core.Redacted wherever the Conn shows
// it: LastError, the state change's cause, its logs, completions, pushes,
// and the answers themselves. The rest of each message is kept.
func TestBrokerEchoOfCredentialsRedacted(t *testing.T) {
	const initial, refreshed = "tok-initial-123", "tok-refreshed-456"
	h := newHarness(t, core.Config{AuthMethod: "token"})
	h.start()
	h.connUp()
	h.authResult(true, initial, nil)
	h.recv(errorAnswer(0, pulsarpb.ServerError_AuthenticationError, "invalid token "+initial+" for role alice"))
	effs := h.effects()
	require.ErrorIs(t, h.c.LastError(), core.ErrAuthenticationError)
	assert.Contains(t, h.c.LastError().Error(), "invalid token [redacted] for role alice")
	assert.NotContains(t, shown(effs), initial)
	assert.Contains(t, shown(effs), "invalid token [redacted] for role alice")

	// The refusal ended that Conn: another one connects.
	h = newHarness(t, core.Config{AuthMethod: "token"})
	h.start()
	h.connUp()
	h.authResult(true, initial, nil)
	h.recv(connected("Pulsar "+initial, 0))
	version, _ := h.c.ServerVersion()
	assert.Equal(t, "Pulsar [redacted]", version)
	h.recv(authChallenge("token", "PulsarAuthRefresh"))
	h.authResult(false, refreshed, nil)
	r := &recorder{}
	require.NoError(t, h.c.AddProducer(1, r))
	id, w := h.request(lookup("t"))
	h.written()
	h.recv(errorAnswer(id, pulsarpb.ServerError_AuthorizationError, "role of "+refreshed+" (was "+initial+") may not look up t"))
	h.recv(sendError(1, 1, pulsarpb.ServerError_PersistenceError, "no write for "+refreshed))
	effs = append(effs, h.effects()...)
	require.Equal(t, 1, w.calls)
	assert.Equal(t, "role of [redacted] (was [redacted]) may not look up t", w.err.(*core.ServerError).Message)
	assert.Equal(t, "role of [redacted] (was [redacted]) may not look up t", w.result.GetError().GetMessage(), "the answer returned with the error")
	pushes := r.ofKind(core.PushSendError)
	require.Len(t, pushes, 1)
	assert.Contains(t, pushes[0].Err.Error(), "no write for [redacted]")
	for _, secret := range []string{initial, refreshed} {
		assert.NotContains(t, shown(effs), secret)
		assert.NotContains(t, fmt.Sprint(pushes[0].Command), secret)
	}
}

// TestBasicPasswordRedactedAlone: with the method "basic", a broker that
// repeats only the password of "user:password" gets it redacted too; the
// user name, not a secret, is kept.
func TestBasicPasswordRedactedAlone(t *testing.T) {
	h := newHarness(t, core.Config{AuthMethod: "basic"})
	h.start()
	h.connUp()
	h.authResult(true, "alice:pa55-word", nil)
	h.recv(errorAnswer(0, pulsarpb.ServerError_AuthenticationError, "user alice: password pa55-word is wrong"))
	effs := h.effects()
	assert.Contains(t, h.c.LastError().Error(), "user alice: password [redacted] is wrong")
	assert.NotContains(t, shown(effs), "pa55-word")
}

// TestBodylessErrorsTolerated: an ERROR in the handshake and a SEND_ERROR
// that carry no body have no message to redact, and do not crash the Conn.
func TestBodylessErrorsTolerated(t *testing.T) {
	h := newHarness(t, core.Config{AuthMethod: "token"})
	h.connect()
	h.recv(&pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_SEND_ERROR.Enum()})
	assert.Equal(t, core.StateConnected, h.c.State())

	h = newHarness(t, core.Config{AuthMethod: "token"})
	h.start()
	h.connUp()
	h.authResult(true, "a-token", nil)
	h.recv(&pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_ERROR.Enum()})
	assert.Equal(t, core.StateDisconnected, h.c.State(), "an ERROR of no kind is not a refusal of the credentials")
}

// TestLookupURLsRedacted: a broker that puts the credentials it was sent
// in a LOOKUP answer's broker URLs gets them redacted in the answer, which
// the Client quotes in its errors and logs and would dial.
func TestLookupURLsRedacted(t *testing.T) {
	const tok = "tok-in-a-url-789"
	h := newHarness(t, core.Config{AuthMethod: "token"})
	h.start()
	h.connUp()
	h.authResult(true, tok, nil)
	h.recv(connected("Pulsar", 0))
	for _, answer := range []func(uint64, string) *pulsarpb.BaseCommand{lookupRedirect, lookupConnect} {
		id, w := h.request(lookup("t"))
		h.written()
		h.recv(answer(id, "pulsar://"+tok+".example:6650"))
		require.Equal(t, 1, w.calls)
		require.NoError(t, w.err)
		assert.Equal(t, "pulsar://[redacted].example:6650", w.result.GetLookupTopicResponse().GetBrokerServiceUrl())
		assert.NotContains(t, fmt.Sprint(w.result), tok)
	}
}
