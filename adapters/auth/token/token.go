// Package token is the Authenticator for Pulsar's token authentication: a
// JSON Web Token (or any opaque token the broker's provider accepts),
// presented under the auth method name "token".
//
// The token comes from a string ([New]), from a file read afresh on every
// use ([FromFile]), as Kubernetes projected service-account tokens and
// secrets mounted as files are rotated in place, or from a function
// ([FromFunc]).
//
// A broker configured with AuthenticationProviderToken checks the token in
// CONNECT; when the token it accepted expires, the broker sends
// AUTH_CHALLENGE with auth_data "PulsarAuthRefresh" on the live connection
// and expects an AUTH_RESPONSE carrying a token that is still valid.
// Challenge answers every challenge with the token as it is now: for
// FromFile that is the file's current content, for FromFunc the function's
// current answer.
//
// Errors name the token file but never hold a token, and neither does the
// String or GoString of an Authenticator.
package token

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/pulsarconn/pulsarconn/adapters/auth/internal/redact"
	"github.com/pulsarconn/pulsarconn/ports"
)

// MethodName is the auth_method_name of token authentication.
const MethodName = "token"

// ErrEmpty is the cause of a failed Initial or Challenge when the token is
// empty: an empty string given to New, an empty (or whitespace-only) token
// file, or an empty answer from the FromFunc function.
var ErrEmpty = errors.New("token: empty token")

var _ ports.Authenticator = (*Authenticator)(nil)

// Authenticator presents a token. It is safe for concurrent use.
//
// fmt prints it through String and GoString, which leave the token out;
// the token itself is held where fmt cannot reach it.
type Authenticator struct {
	src *source
}

// source is where the token comes from.
type source struct {
	kind   kind
	static redact.Secret                         // kindStatic
	path   string                                // kindFile
	fn     func(context.Context) (string, error) // kindFunc
}

type kind int

const (
	kindStatic kind = iota
	kindFile
	kindFunc
)

// New returns an Authenticator that always presents tok, as given. An
// empty tok makes Initial and Challenge fail with ErrEmpty.
func New(tok string) *Authenticator {
	return &Authenticator{src: &source{kind: kindStatic, static: redact.NewSecret(tok)}}
}

// FromFile returns an Authenticator that reads its token from the file at
// path on every Initial and every Challenge, so that a token rotated on
// disk is picked up by the next handshake and the next credential refresh.
// Leading and trailing white space (a trailing newline, typically) is
// trimmed. A missing, unreadable or empty file makes the call fail with an
// error that names path but not the file's content. The file is not read
// by FromFile itself: it may appear after the Authenticator is made.
func FromFile(path string) *Authenticator {
	return &Authenticator{src: &source{kind: kindFile, path: path}}
}

// FromFunc returns an Authenticator that asks f for the token on every
// Initial and every Challenge, passing the context of the call. f must be
// safe for concurrent use, should honour ctx, and must keep tokens out of
// the errors it returns: they are passed on, wrapped. An empty answer fails
// with ErrEmpty. FromFunc panics if f is nil.
func FromFunc(f func(ctx context.Context) (string, error)) *Authenticator {
	if f == nil {
		panic("token: FromFunc(nil)")
	}
	return &Authenticator{src: &source{kind: kindFunc, fn: f}}
}

// Name returns "token".
func (a *Authenticator) Name() string { return MethodName }

// Initial returns the token for CONNECT.
func (a *Authenticator) Initial(ctx context.Context) ([]byte, error) {
	return a.token(ctx)
}

// Challenge returns the current token, whatever the challenge: token
// authentication has a single step, so the only challenge a broker sends
// on it asks for fresh credentials ("PulsarAuthRefresh").
func (a *Authenticator) Challenge(ctx context.Context, _ []byte) ([]byte, error) {
	return a.token(ctx)
}

func (a *Authenticator) token(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var tok string
	switch s := a.src; s.kind {
	case kindFunc:
		t, err := s.fn(ctx)
		if err != nil {
			return nil, fmt.Errorf("token: token function: %w", err)
		}
		if t == "" {
			return nil, fmt.Errorf("%w from the token function", ErrEmpty)
		}
		tok = t
	case kindFile:
		b, err := os.ReadFile(s.path)
		if err != nil {
			// An *fs.PathError names the file and the system's reason,
			// never its content.
			return nil, fmt.Errorf("token: reading token file: %w", err)
		}
		tok = strings.TrimSpace(string(b))
		if tok == "" {
			return nil, fmt.Errorf("%w: token file %s is empty", ErrEmpty, s.path)
		}
	default:
		if s.static.IsZero() {
			return nil, ErrEmpty
		}
		tok = s.static.Reveal()
	}
	return []byte(tok), nil
}

// String describes the Authenticator without its token, for logs:
// for example `token.Authenticator{file: "/var/run/secrets/pulsar/token"}`.
// It has a value receiver so that an Authenticator printed by value is
// described the same way.
func (a Authenticator) String() string {
	if a.src == nil {
		return "token.Authenticator(nil)"
	}
	switch s := a.src; s.kind {
	case kindFunc:
		return "token.Authenticator{func}"
	case kindFile:
		return fmt.Sprintf("token.Authenticator{file: %q}", s.path)
	default:
		return "token.Authenticator{token: " + redact.Mark + "}"
	}
}

// GoString is String, so that %#v cannot print the token either.
func (a Authenticator) GoString() string { return a.String() }
