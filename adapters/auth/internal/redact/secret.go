package redact

import (
	"fmt"
	"io"
)

// Secret holds a credential so that fmt cannot print it: Secret formats as
// Mark with every verb, and the credential sits behind a pointer to a
// string, which fmt shows as an address even where it cannot call Format (a
// Secret in an unexported field of a struct printed with %v, or with a verb
// that does not fit and makes fmt dump the value).
//
// The zero Secret holds the empty string.
type Secret struct {
	p *string
}

// NewSecret wraps s.
func NewSecret(s string) Secret { return Secret{p: &s} }

// Reveal returns the credential, to be sent to the broker or to a token
// endpoint and nowhere else.
func (s Secret) Reveal() string {
	if s.p == nil {
		return ""
	}
	return *s.p
}

// IsZero reports whether the credential is empty.
func (s Secret) IsZero() bool { return s.Reveal() == "" }

// String returns Mark.
func (s Secret) String() string { return Mark }

// Format writes Mark, whatever the verb.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, Mark) }
