// Package basic is the Authenticator for Pulsar's basic authentication: a
// user name and password, presented under the auth method name "basic".
//
// On the binary protocol the auth_data is "user:password" in plain text (the
// HTTP form, "Authorization: Basic" with base64, is not used there); a
// broker with AuthenticationProviderBasic splits it at ':' and checks the
// password against its htpasswd-style file. Because the broker expects
// exactly two parts, neither the user nor the password may contain ':', and
// neither may be empty: New refuses such credentials instead of letting
// every handshake fail. Run Pulsar's basic authentication over TLS only:
// the password travels as it is.
//
// Basic credentials do not expire, so a broker's refresh challenge
// ("PulsarAuthRefresh") is answered with the same credentials. Errors and
// the String and GoString of an Authenticator never hold the password.
package basic

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/pulsarconn/pulsarconn/adapters/auth/internal/redact"
	"github.com/pulsarconn/pulsarconn/ports"
)

// MethodName is the auth_method_name of basic authentication.
const MethodName = "basic"

// ErrInvalidCredentials is returned by New for a user or password that a
// broker could not accept; the error says which, and why, but never
// repeats the password.
var ErrInvalidCredentials = errors.New("basic: invalid credentials")

var _ ports.Authenticator = (*Authenticator)(nil)

// Authenticator presents a user and password. It is immutable, and so safe
// for concurrent use; fmt prints it through String and GoString, which
// leave the password out.
type Authenticator struct {
	user string
	data redact.Secret // "user:password"
}

// New returns an Authenticator for user and password, or an error matching
// ErrInvalidCredentials if either is empty or contains ':'.
func New(user, password string) (*Authenticator, error) {
	switch {
	case user == "":
		return nil, fmt.Errorf("%w: empty user", ErrInvalidCredentials)
	case strings.Contains(user, ":"):
		// The user is not a secret: naming it helps find the bad entry.
		return nil, fmt.Errorf("%w: user %q contains ':'", ErrInvalidCredentials, user)
	case password == "":
		return nil, fmt.Errorf("%w: empty password for user %q", ErrInvalidCredentials, user)
	case strings.Contains(password, ":"):
		return nil, fmt.Errorf("%w: the password of user %q contains ':'", ErrInvalidCredentials, user)
	}
	return &Authenticator{user: user, data: redact.NewSecret(user + ":" + password)}, nil
}

// Name returns "basic".
func (a *Authenticator) Name() string { return MethodName }

// User returns the user name.
func (a *Authenticator) User() string { return a.user }

// Initial returns "user:password" for CONNECT.
func (a *Authenticator) Initial(ctx context.Context) ([]byte, error) {
	return a.credentials(ctx)
}

// Challenge returns "user:password" again, whatever the challenge: basic
// authentication has a single step, and its credentials do not expire.
func (a *Authenticator) Challenge(ctx context.Context, _ []byte) ([]byte, error) {
	return a.credentials(ctx)
}

func (a *Authenticator) credentials(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// A fresh slice each time: the caller owns it.
	return []byte(a.data.Reveal()), nil
}

// String describes the Authenticator without its password, for logs:
// `basic.Authenticator{user: "alice", password: [redacted]}`. It has a
// value receiver so that an Authenticator printed by value is described the
// same way.
func (a Authenticator) String() string {
	return fmt.Sprintf("basic.Authenticator{user: %q, password: %s}", a.user, redact.Mark)
}

// GoString is String, so that %#v cannot print the password either.
func (a Authenticator) GoString() string { return a.String() }
