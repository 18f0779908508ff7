package authtest

import (
	"errors"
	"fmt"
	"testing"
)

// recorder is a testing.TB that counts failures instead of failing.
type recorder struct {
	testing.TB
	errors int
}

func (r *recorder) Helper()               {}
func (r *recorder) Errorf(string, ...any) { r.errors++ }
func (r *recorder) Fatal(...any)          { r.errors++ }
func (r *recorder) Fatalf(string, ...any) { r.errors++ }
func (r *recorder) Cleanup(f func())      { r.TB.Cleanup(f) }
func (r *recorder) check(t *testing.T, want bool, what string) {
	t.Helper()
	if got := r.errors > 0; got != want {
		t.Errorf("%s: flagged = %v, want %v", what, got, want)
	}
}

type leaky struct{ password string }

type hidden struct{ password string }

func (h hidden) String() string   { return "hidden" }
func (h hidden) GoString() string { return "hidden" }

// The checks must flag what leaks, or they prove nothing.
func TestChecksFlagLeaks(t *testing.T) {
	const secret = "hunter2"

	r := &recorder{TB: t}
	NoSecretPrinted(r, secret, &leaky{password: secret})
	r.check(t, true, "a struct that prints its password")

	r = &recorder{TB: t}
	NoSecretPrinted(r, secret, &hidden{password: secret})
	r.check(t, true, "a Stringer whose fields leak when it sits in an unexported field")

	r = &recorder{TB: t}
	NoSecretPrinted(r, secret, &hidden{password: "other"})
	r.check(t, false, "nothing to leak")

	r = &recorder{TB: t}
	NoSecretInErrors(r, secret, fmt.Errorf("outer: %w", errors.Join(errors.New("a"), errors.New("bad "+secret))))
	r.check(t, true, "a wrapped error with the secret")

	r = &recorder{TB: t}
	NoSecretInErrors(r, secret, errors.New("fine"), nil)
	r.check(t, false, "clean errors")
}
