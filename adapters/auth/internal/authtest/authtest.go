// Package authtest holds the checks that every Authenticator adapter under
// adapters/auth runs in its tests. It imports only the standard library, so
// that the adapters' tests may share it without breaking the dependency
// rule.
package authtest

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// verbs are the fmt verbs a log line or an error wrapper might apply to an
// Authenticator.
var verbs = []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%T"}

// NoSecretPrinted fails t if secret appears in any fmt rendering of v
// (and, when v is a pointer, of the value it points to: a struct printed by
// value must not give its credentials away either; and of either held in an
// unexported field of another struct), or in the Error text of v when v is
// an error.
func NoSecretPrinted(t testing.TB, secret string, v any) {
	t.Helper()
	if secret == "" {
		t.Fatal("NoSecretPrinted: empty secret")
	}
	values := []any{v}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && !rv.IsNil() {
		values = append(values, rv.Elem().Interface())
	}
	// In an unexported field of another struct, fmt cannot call String or
	// GoString: it prints the fields, and then only what it can reach.
	for _, val := range values[:len(values):len(values)] {
		values = append(values, struct{ inner any }{val})
	}
	for _, val := range values {
		for _, verb := range verbs {
			if s := fmt.Sprintf(verb, val); strings.Contains(s, secret) {
				t.Errorf("fmt %s of a %T prints the secret: %s", verb, val, s)
			}
		}
	}
	if err, ok := v.(error); ok && strings.Contains(err.Error(), secret) {
		t.Errorf("error text holds the secret: %s", err)
	}
}

// NoSecretInErrors fails t if any non-nil error of errs holds secret in its
// text, or in the text of any error it wraps.
func NoSecretInErrors(t testing.TB, secret string, errs ...error) {
	t.Helper()
	for _, err := range errs {
		walk(err, func(e error) {
			if strings.Contains(e.Error(), secret) {
				t.Errorf("error (%T) holds the secret: %s", e, e)
			}
		})
	}
}

// walk calls f on err and on every error it wraps.
func walk(err error, f func(error)) {
	if err == nil {
		return
	}
	f(err)
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		walk(u.Unwrap(), f)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			walk(e, f)
		}
	}
}

// Context returns a context that ends when the test does, or after the
// safety limit that keeps a hung test from running forever.
func Context(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}
