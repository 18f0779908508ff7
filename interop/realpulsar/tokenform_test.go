package realpulsar

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/adapters/auth/basic"
	"github.com/pulsarconn/pulsarconn/adapters/auth/token"
)

// TestTokenWithWhitespaceRefused presents a valid token with white space
// around it — as read from a file ending in a newline by a client that
// does not trim it — and expects the broker (4.2, whose JWT parser is
// jjwt 0.13) to refuse it: "Compact JWT strings may not contain
// whitespace". pulsartest refuses such tokens the same way unless told to
// be lenient as older brokers were (WithLenientTokens).
func TestTokenWithWhitespaceRefused(t *testing.T) {
	rb := env(t)
	for _, tc := range []struct{ name, before, after string }{
		{"trailing newline", "", "\n"},
		{"trailing CRLF", "", "\r\n"},
		{"trailing space", "", " "},
		{"leading newline", "\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			role := uniqueRole(t)
			tok := tc.before + mintToken(t, rb.SecretFile, role, time.Now().Add(time.Hour)) + tc.after
			refusals := len(brokerLog(t, "Failed to authenticate: operation=connect", "may not contain whitespace"))
			b, ev := startRefused(t, rb.ServiceURL, pulsarconn.WithAuthenticator(token.New(tok)))
			hf := within(t, ev.failed, safety, "HandshakeFailed")
			if !errors.Is(hf.Err, pulsarconn.ErrAuthenticationError) {
				t.Fatalf("HandshakeFailed.Err = %v; want ErrAuthenticationError", hf.Err)
			}
			waitFinal(t, b)
			if n := len(brokerLog(t, "Failed to authenticate: operation=connect", "may not contain whitespace")) - refusals; n < 1 {
				t.Errorf("the broker's log has no new refusal for white space")
			}
		})
	}
}

// TestUnhandledAuthMethodIsAnonymous presents credentials of a method the
// broker has no provider for (basic, on a broker with the token provider
// only): the broker does not refuse them but connects the client as its
// anonymous role, as pulsartest does with WithAnonymousRole.
func TestUnhandledAuthMethodIsAnonymous(t *testing.T) {
	rb := env(t)
	user := uniqueRole(t)
	a, err := basic.New(user, "password")
	if err != nil {
		t.Fatal(err)
	}
	before := len(brokerLog(t, "connected with role=anonymous using authMethod=basic"))
	b := start(t, rb.ServiceURL, pulsarconn.WithAuthenticator(a))
	p := newProducer(t, b, fullName(topicName(t)))
	p.publish(t, 0)
	if n := len(brokerLog(t, "connected with role=anonymous using authMethod=basic")) - before; n < 1 {
		t.Errorf("the broker's log has no new anonymous connection with method basic")
	}
	if lines := brokerLog(t, user); len(lines) != 0 {
		t.Errorf("the broker's log names user %s:\n%s", user, strings.Join(lines, "\n"))
	}
}
